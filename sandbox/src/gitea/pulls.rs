//! Pull requests as Gitea serves them: create, list, read, close, merge (every style, in a worktree
//! of the real repository, as Gitea merges in a temporary clone), auto-merge when the required checks
//! succeed, reviews, comments, labels and the combined commit status, with branch protection's
//! required approvals and status checks.
//!
//! Behaviour read from go-gitea/gitea main @ 82edc3da01 (1.27-dev) and forgejo main @ d883bd8f12,
//! summarised with file references in `docs/research/gitea-pulls.md`:
//! - `routers/api/v1/repo/pull.go` `CreatePullRequest` (409 "pull request already exists for these
//!   targets [...]" for an open one; 422 only when head equals base), `ListPullRequests` (no `state`:
//!   all; `limit` capped at 50), `MergePullRequest` (order of checks; 200 and 201 with empty bodies;
//!   405 texts; 409 "head out of date", raw conflict structs without `message`).
//! - `services/pull/check.go` `CheckPullMergeable`, `services/pull/merge.go`
//!   `CheckPullBranchProtections` (bare reasons on Gitea ≥ 1.24, `not allowed to merge [reason: …]`
//!   on Forgejo and older Gitea); a scheduled auto-merge skips them at request time.
//! - `services/automerge/automerge.go`: Gitea ≥ 1.23 and Forgejo always schedule (201) and merge
//!   asynchronously, re-checked on every new commit status and review; 1.22 merged at once (200) when
//!   the checks had already passed.
//! - `services/pull/merge_{merge,squash,rebase,ff_only}.go`: merge always makes a 2-parent commit;
//!   squash one commit; rebase replays (new SHAs unless head already contains base); fast-forward-only
//!   on a diverged base is an unmapped 500. `merge_commit_sha` is the base's new tip.
//! - `services/pull/commit_status.go`: required contexts are globs (`*` matches `/` too); a required
//!   context without a status is pending. `routers/api/v1/repo/status.go` combined status: latest per
//!   context; no statuses → `state: pending` on Gitea ≥ 1.25, a `null` body before and on Forgejo.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::{
    api_error, internal, not_found, parse_body, repo_json, require_repo, require_writer, user_json,
    ApiError,
};
use super::{Gitea, User};
use crate::git;

/// A pull request the sandbox keeps.
#[derive(Debug, Clone)]
pub(super) struct Pull {
    pub owner: String,
    pub repo: String,
    pub number: i64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub poster: User,
    pub labels: Vec<i64>,
    pub assignees: Vec<String>,
    pub reviewers: Vec<String>,
    pub closed: bool,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    /// The head's tip when last seen (kept after the branch is deleted).
    pub head_sha: String,
    pub created_at: String,
    /// Until then the server is still test-merging it (Gitea's `PullRequestStatusChecking`).
    pub checking_until: tokio::time::Instant,
    /// The base's head it was last test-merged against.
    pub checked_base: Option<String>,
    pub auto_merge: Option<AutoMerge>,
    pub reviews: Vec<Review>,
    pub comments: Vec<String>,
}

/// A scheduled merge (`merge_when_checks_succeed`).
#[derive(Debug, Clone)]
pub(super) struct AutoMerge {
    pub style: String,
    pub delete_branch: bool,
    pub title: String,
    pub message: String,
    pub by: User,
}

/// A review by someone (the sandbox's stand-in for another user's `POST /pulls/{n}/reviews`).
#[derive(Debug, Clone)]
pub(super) struct Review {
    pub id: i64,
    pub login: String,
    /// `APPROVED`, `REQUEST_CHANGES`, `COMMENT`.
    pub state: String,
    pub commit_id: String,
}

/// A branch protection rule's merge requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Protection {
    /// Approvals needed before a merge.
    #[serde(default)]
    pub required_approvals: u32,
    /// Required status contexts (globs); empty with `enable_status_check` means every status.
    #[serde(default)]
    pub status_check_contexts: Vec<String>,
    /// Whether status checks are required.
    #[serde(default)]
    pub enable_status_check: bool,
}

/// How long a new pull request stays "checking" (Gitea test-merges it in a queue,
/// services/pull/check.go `AddToTaskQueue`): `mergeable` is false and a merge is answered 405
/// "Please try again later" meanwhile.
const CHECKING: std::time::Duration = std::time::Duration::from_millis(300);

pub(super) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct CreatePullRequestOption {
    #[serde(default)]
    head: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    labels: Vec<i64>,
    #[serde(default)]
    assignees: Vec<String>,
    #[serde(default)]
    reviewers: Vec<String>,
}

pub(super) async fn create_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = require_writer(&gitea, &headers, &owner, &name)?;
    if !gitea.pulls_enabled(&owner, &name) {
        return Err(not_found(&gitea));
    }
    let opts: CreatePullRequestOption = parse_body(&gitea, &body)?;
    if opts.title.trim().is_empty() {
        return Err(api_error(
            &gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[Title]: Required",
        ));
    }
    // `owner:branch` names a fork's branch; the sandbox has no forks, so only our own owner works.
    let head = match opts.head.split_once(':') {
        Some((o, b)) if o == owner => b.to_owned(),
        Some(_) => return Err(not_found(&gitea)),
        None => opts.head.clone(),
    };
    let base = if opts.base.is_empty() {
        gitea.default_branch(&owner, &name)
    } else {
        opts.base.clone()
    };
    if head == base {
        return Err(api_error(
            &gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid PullRequest: There are no changes between the head and the base",
        ));
    }
    let new = NewPull {
        head,
        base,
        title: opts.title,
        body: opts.body,
        labels: opts.labels,
        assignees: opts.assignees,
        reviewers: opts.reviewers,
    };
    let pull = match store_pull(&gitea, &owner, &name, &user, new).await? {
        Ok(pull) => pull,
        Err(Refused::NoBranch) => return Err(not_found(&gitea)),
        Err(Refused::Exists { number, head, base }) => {
            let repo_id = gitea.repo_id(&owner, &name);
            return Err(api_error(
                &gitea,
                StatusCode::CONFLICT,
                format!(
                    "pull request already exists for these targets [id: {number}, issue_id: {number}, head_repo_id: {repo_id}, base_repo_id: {repo_id}, head_branch: {head}, base_branch: {base}]"
                ),
            ));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(pull_json(&gitea, &pull, &user).await?),
    ))
}

/// What a new pull request is opened with.
pub(super) struct NewPull {
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub labels: Vec<i64>,
    pub assignees: Vec<String>,
    pub reviewers: Vec<String>,
}

/// Why a pull request was not opened.
pub(super) enum Refused {
    /// The head or the base does not exist.
    NoBranch,
    /// One is open for the same head and base.
    Exists {
        number: i64,
        head: String,
        base: String,
    },
}

/// Opens a pull request in the store (both forges' create).
pub(super) async fn store_pull(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    user: &User,
    new: NewPull,
) -> Result<Result<Pull, Refused>, ApiError> {
    let mut heads = Vec::new();
    for branch in [&new.head, &new.base] {
        match gitea
            .branch_head(owner, name, branch)
            .await
            .map_err(|e| internal(gitea, e))?
        {
            Some(id) => heads.push(id),
            None => return Ok(Err(Refused::NoBranch)),
        }
    }
    // Label ids that do not exist are dropped, as Gitea does.
    let known = gitea.labels(owner, name);
    let mut state = gitea.state();
    if let Some(existing) = state.pulls.iter().find(|p| {
        p.owner == owner && p.repo == name && p.head == new.head && p.base == new.base && !p.closed
    }) {
        return Ok(Err(Refused::Exists {
            number: existing.number,
            head: new.head,
            base: new.base,
        }));
    }
    let number = state
        .pulls
        .iter()
        .filter(|p| p.owner == owner && p.repo == name)
        .count() as i64
        + 1;
    let pull = Pull {
        owner: owner.to_owned(),
        repo: name.to_owned(),
        number,
        head: new.head,
        base: new.base,
        title: new.title,
        body: new.body,
        poster: user.clone(),
        labels: new
            .labels
            .into_iter()
            .filter(|id| known.iter().any(|(k, _)| k == id))
            .collect(),
        assignees: new.assignees,
        reviewers: new.reviewers,
        closed: false,
        merged: false,
        merge_commit_sha: None,
        head_sha: heads[0].clone(),
        created_at: now(),
        checking_until: tokio::time::Instant::now() + CHECKING,
        checked_base: None,
        auto_merge: None,
        reviews: Vec::new(),
        comments: Vec::new(),
    };
    state.pulls.push(pull.clone());
    Ok(Ok(pull))
}

/// The `PullRequest` JSON of `p`, with its head and mergeability as they are now.
async fn pull_json(gitea: &Gitea, p: &Pull, viewer: &User) -> Result<Value, ApiError> {
    let dir = gitea.repo_dir(&p.owner, &p.repo);
    let repo = repo_json(gitea, &p.owner, &p.repo, viewer);
    let repo_id = gitea.repo_id(&p.owner, &p.repo);
    let base_sha = gitea
        .branch_head(&p.owner, &p.repo, &p.base)
        .await
        .map_err(|e| internal(gitea, e))?
        .unwrap_or_default();
    let head_sha = current_head(gitea, p).await?;
    let mergeable = if p.merged || p.closed || is_checking(gitea, p, &base_sha) {
        false
    } else {
        !conflicts(gitea, &dir, &base_sha, &head_sha).await?
    };
    let merge_base = git::Git::new(&dir, ["merge-base", &head_sha, &base_sha])
        .text()
        .await
        .unwrap_or_default();
    let web = format!("{}/{}/{}", gitea.url(), p.owner, p.repo);
    let branch_info = |branch: &str, sha: &str| json!({"label": branch, "ref": branch, "sha": sha, "repo_id": repo_id, "repo": repo});
    let labels: Vec<Value> = gitea
        .labels(&p.owner, &p.repo)
        .into_iter()
        .filter(|(id, _)| p.labels.contains(id))
        .map(|(id, name)| label_json(gitea, &p.owner, &p.repo, id, &name))
        .collect();
    let person = |login: &str| json!({"id": 0, "login": login, "username": login, "email": format!("{login}@sandbox.invalid")});
    Ok(json!({
        "id": p.number,
        "url": format!("{web}/pulls/{}", p.number),
        "number": p.number,
        "user": user_json(gitea, &p.poster),
        "title": p.title,
        "body": p.body,
        "labels": labels,
        "milestone": null,
        "assignee": p.assignees.first().map(|a| person(a)),
        "assignees": p.assignees.iter().map(|a| person(a)).collect::<Vec<_>>(),
        "requested_reviewers": p.reviewers.iter().map(|a| person(a)).collect::<Vec<_>>(),
        "requested_reviewers_teams": [],
        "state": if p.closed { "closed" } else { "open" },
        "draft": false,
        "is_locked": false,
        "comments": p.comments.len(),
        "review_comments": 0,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
        "html_url": format!("{web}/pulls/{}", p.number),
        "diff_url": format!("{web}/pulls/{}.diff", p.number),
        "patch_url": format!("{web}/pulls/{}.patch", p.number),
        "mergeable": mergeable,
        "merged": p.merged,
        "merged_at": if p.merged { json!(now()) } else { Value::Null },
        "merge_commit_sha": p.merge_commit_sha,
        "merged_by": Value::Null,
        "allow_maintainer_edit": false,
        "merge_base": merge_base,
        "base": branch_info(&p.base, &base_sha),
        "head": branch_info(&p.head, &head_sha),
        "due_date": Value::Null,
        "created_at": p.created_at,
        "updated_at": now(),
        "closed_at": if p.closed { json!(now()) } else { Value::Null },
        "pin_order": 0,
    }))
}

/// Gitea's `page` (from 1) and `limit` (default 30, at most 50: `setting.API.MaxResponseItems`).
fn paging(query: &HashMap<String, String>) -> (usize, usize) {
    let num = |k: &str| {
        query
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    (num("page").unwrap_or(1), num("limit").unwrap_or(30).min(50))
}

pub(super) fn is_checking(gitea: &Gitea, p: &Pull, base_sha: &str) -> bool {
    let now = tokio::time::Instant::now();
    let mut state = gitea.state();
    let Some(stored) = state
        .pulls
        .iter_mut()
        .find(|x| x.owner == p.owner && x.repo == p.repo && x.number == p.number)
    else {
        return false;
    };
    if stored.checked_base.as_deref() != Some(base_sha) {
        // The base moved since the last look: Gitea test-merges every open pull request of a
        // branch again after a push to it (services/pull/pull.go `AddTestPullRequestTask` →
        // `checkAndUpdateStatus`), so it is "checking" for a moment.
        if stored.checked_base.is_some() {
            stored.checking_until = now + CHECKING;
        }
        stored.checked_base = Some(base_sha.to_owned());
    }
    now < stored.checking_until
}

/// The head branch's tip, or the last one seen once the branch is gone.
pub(super) async fn current_head(gitea: &Gitea, p: &Pull) -> Result<String, ApiError> {
    if p.merged || p.closed {
        return Ok(p.head_sha.clone());
    }
    Ok(gitea
        .branch_head(&p.owner, &p.repo, &p.head)
        .await
        .map_err(|e| internal(gitea, e))?
        .unwrap_or_else(|| p.head_sha.clone()))
}

/// True when merging `head` into `base` conflicts (`git merge-tree --write-tree`, git ≥ 2.38).
pub(super) async fn conflicts(
    gitea: &Gitea,
    dir: &std::path::Path,
    base: &str,
    head: &str,
) -> Result<bool, ApiError> {
    if base.is_empty() || head.is_empty() {
        return Ok(false);
    }
    let clean = git::Git::new(dir, ["merge-tree", "--write-tree", base, head])
        .succeeds()
        .await
        .map_err(|e| internal(gitea, e))?;
    Ok(!clean)
}

pub(super) fn label_json(gitea: &Gitea, owner: &str, name: &str, id: i64, label: &str) -> Value {
    json!({
        "id": id, "name": label, "exclusive": false, "is_archived": false, "color": "00aabb",
        "description": "", "url": format!("{}/api/v1/repos/{owner}/{name}/labels/{id}", gitea.url()),
    })
}

pub(super) fn find(gitea: &Gitea, owner: &str, name: &str, number: i64) -> Option<Pull> {
    gitea
        .state()
        .pulls
        .iter()
        .find(|p| p.owner == owner && p.repo == name && p.number == number)
        .cloned()
}

pub(super) fn update(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    number: i64,
    f: impl FnOnce(&mut Pull),
) {
    if let Some(p) = gitea
        .state()
        .pulls
        .iter_mut()
        .find(|p| p.owner == owner && p.repo == name && p.number == number)
    {
        f(p);
    }
}

pub(super) async fn list_pulls(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let user = require_repo(&gitea, &headers, &owner, &name)?;
    if !gitea.pulls_enabled(&owner, &name) {
        return Err(not_found(&gitea));
    }
    // No `state` means every pull request (the swagger's "default: open" is not what the code does).
    let wanted = query.get("state").map(String::as_str).unwrap_or("all");
    let mut all: Vec<Pull> = gitea
        .state()
        .pulls
        .iter()
        .filter(|p| p.owner == owner && p.repo == name)
        .filter(|p| match wanted {
            "open" => !p.closed,
            "closed" => p.closed,
            _ => true,
        })
        .cloned()
        .collect();
    if query.get("sort").map(String::as_str) != Some("oldest") {
        all.reverse();
    }
    let (page, limit) = paging(&query);
    let total = all.len();
    let mut list = Vec::new();
    for p in all.iter().skip((page - 1) * limit).take(limit) {
        list.push(pull_json(&gitea, p, &user).await?);
    }
    let mut resp = Json(Value::Array(list)).into_response();
    resp.headers_mut().insert(
        "x-total-count",
        HeaderValue::from_str(&total.to_string()).expect("digits"),
    );
    Ok(resp)
}

pub(super) async fn get_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
) -> Result<Json<Value>, ApiError> {
    let user = require_repo(&gitea, &headers, &owner, &name)?;
    let p = find(&gitea, &owner, &name, number).ok_or_else(|| not_found(&gitea))?;
    Ok(Json(pull_json(&gitea, &p, &user).await?))
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct EditPullRequestOption {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
}

pub(super) async fn edit_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = require_writer(&gitea, &headers, &owner, &name)?;
    let opts: EditPullRequestOption = parse_body(&gitea, &body)?;
    let p = find(&gitea, &owner, &name, number).ok_or_else(|| not_found(&gitea))?;
    let head = current_head(&gitea, &p).await?;
    update(&gitea, &owner, &name, number, |p| {
        if let Some(t) = opts.title {
            p.title = t;
        }
        if let Some(b) = opts.body {
            p.body = b;
        }
        if opts.state.as_deref() == Some("closed") && !p.merged {
            p.closed = true;
            p.head_sha = head;
            p.auto_merge = None;
        }
    });
    let p = find(&gitea, &owner, &name, number).ok_or_else(|| not_found(&gitea))?;
    // Gitea answers an edit with 201.
    Ok((
        StatusCode::CREATED,
        Json(pull_json(&gitea, &p, &user).await?),
    ))
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct MergePullRequestOption {
    #[serde(alias = "do", rename = "Do", default)]
    style: String,
    #[serde(alias = "merge_title_field", rename = "MergeTitleField", default)]
    title: String,
    #[serde(alias = "merge_message_field", rename = "MergeMessageField", default)]
    message: String,
    #[serde(default)]
    head_commit_id: String,
    #[serde(default)]
    delete_branch_after_merge: bool,
    #[serde(default)]
    merge_when_checks_succeed: bool,
}

const STYLES: [&str; 5] = [
    "merge",
    "rebase",
    "rebase-merge",
    "squash",
    "fast-forward-only",
];

pub(super) async fn merge_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let user = require_writer(&gitea, &headers, &owner, &name)?;
    let opts: MergePullRequestOption = parse_body(&gitea, &body)?;
    if !STYLES.contains(&opts.style.as_str()) {
        return Err(api_error(
            &gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[Do]: In",
        ));
    }
    let p = find(&gitea, &owner, &name, number).ok_or_else(|| not_found(&gitea))?;
    if p.closed && !p.merged {
        return Err(api_error(&gitea, StatusCode::NOT_FOUND, "not found"));
    }
    if p.merged {
        let profile = gitea.profile();
        let text = if profile.merge_reasons_bare() {
            "The PR is already merged"
        } else {
            ""
        };
        return Err(api_error(&gitea, StatusCode::METHOD_NOT_ALLOWED, text));
    }
    let dir = gitea.repo_dir(&owner, &name);
    let base_sha = gitea
        .branch_head(&owner, &name, &p.base)
        .await
        .map_err(|e| internal(&gitea, e))?
        .ok_or_else(|| not_found(&gitea))?;
    let head_sha = current_head(&gitea, &p).await?;
    if is_checking(&gitea, &p, &base_sha) || conflicts(&gitea, &dir, &base_sha, &head_sha).await? {
        return Err(api_error(
            &gitea,
            StatusCode::METHOD_NOT_ALLOWED,
            "Please try again later",
        ));
    }
    let scheduled_now = opts.merge_when_checks_succeed
        && (gitea.profile().auto_merge_always_schedules()
            || blocked_by(&gitea, &p, &head_sha).is_some());
    if !opts.merge_when_checks_succeed {
        if let Some(reason) = blocked_by(&gitea, &p, &head_sha) {
            return Err(api_error(
                &gitea,
                StatusCode::METHOD_NOT_ALLOWED,
                reason_text(&gitea, reason),
            ));
        }
    }
    if !opts.head_commit_id.is_empty() && opts.head_commit_id != head_sha {
        return Err(api_error(&gitea, StatusCode::CONFLICT, "head out of date"));
    }
    let plan = AutoMerge {
        style: opts.style.clone(),
        delete_branch: opts.delete_branch_after_merge,
        title: opts.title.clone(),
        message: opts.message.clone(),
        by: user.clone(),
    };
    if scheduled_now {
        if p.auto_merge.is_some() {
            return Err(api_error(
                &gitea,
                StatusCode::CONFLICT,
                format!(
                    "pull request is already scheduled to auto merge when checks succeed [pull_id: {number}]"
                ),
            ));
        }
        update(&gitea, &owner, &name, number, |p| {
            p.auto_merge = Some(plan);
            p.comments
                .push(format!("{} scheduled this to auto merge", user.login));
        });
        // The queue picks it up at once (`StartPRCheckAndAutoMerge`), off the request.
        let g = gitea.clone();
        tokio::spawn(async move { try_auto_merge(&g, &owner, &name, number).await });
        return Ok(StatusCode::CREATED.into_response());
    }
    match do_merge(&gitea, &p, &plan, &base_sha, &head_sha).await? {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(refusal) => Ok(refusal),
    }
}

/// Why the protection blocks the merge now, if it does.
pub(super) fn blocked_by(gitea: &Gitea, p: &Pull, head_sha: &str) -> Option<&'static str> {
    let rule = gitea.protection(&p.owner, &p.repo, &p.base)?;
    if rule.enable_status_check {
        let latest = latest_statuses(gitea, &p.owner, &p.repo, head_sha);
        let required: Vec<&Value> = if rule.status_check_contexts.is_empty() {
            latest.iter().collect()
        } else {
            latest
                .iter()
                .filter(|s| {
                    let c = s["context"].as_str().unwrap_or_default();
                    rule.status_check_contexts
                        .iter()
                        .any(|pat| glob_matches(pat, c))
                })
                .collect()
        };
        let missing = rule.status_check_contexts.iter().any(|pat| {
            !latest
                .iter()
                .any(|s| glob_matches(pat, s["context"].as_str().unwrap_or_default()))
        });
        let all_success = required
            .iter()
            .all(|s| matches!(s["status"].as_str(), Some("success" | "warning")));
        if missing || required.is_empty() || !all_success {
            return Some("Not all required status checks successful");
        }
    }
    let current = |state: &str| {
        p.reviews
            .iter()
            .filter(|r| r.state == state && r.commit_id == head_sha)
            .count() as u32
    };
    if current("REQUEST_CHANGES") > 0 {
        return Some("There are requested changes");
    }
    if current("APPROVED") < rule.required_approvals {
        return Some("Does not have enough approvals");
    }
    None
}

fn reason_text(gitea: &Gitea, reason: &str) -> String {
    if gitea.profile().merge_reasons_bare() {
        reason.to_owned()
    } else {
        format!("not allowed to merge [reason: {reason}]")
    }
}

/// Gitea's glob match of a required context (modules/glob: no separator, anchored); a pattern that
/// does not compile only matches itself.
pub(super) fn glob_matches(pattern: &str, context: &str) -> bool {
    match globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
    {
        Ok(g) => g.compile_matcher().is_match(context),
        Err(_) => pattern == context,
    }
}

/// The latest status of each context of `sha` (Gitea's `CommitStatus` JSON).
pub(super) fn latest_statuses(gitea: &Gitea, owner: &str, name: &str, sha: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut latest = Vec::new();
    for s in gitea.statuses(owner, name, sha) {
        let c = s["context"].as_str().unwrap_or_default().to_owned();
        if !seen.contains(&c) {
            seen.push(c);
            latest.push(s);
        }
    }
    latest
}

/// Merges `p` with `plan` under the repository's write lock; `Err(response)` is a refusal to send.
pub(super) async fn do_merge(
    gitea: &Gitea,
    p: &Pull,
    plan: &AutoMerge,
    base_sha: &str,
    head_sha: &str,
) -> Result<Result<(), Response>, ApiError> {
    let lock = gitea.write_lock(&p.owner, &p.repo);
    let _serialized = lock.lock().await;
    let dir = gitea.repo_dir(&p.owner, &p.repo);
    // Re-read under the lock: another merge may have moved the base.
    let base_now = gitea
        .branch_head(&p.owner, &p.repo, &p.base)
        .await
        .map_err(|e| internal(gitea, e))?
        .unwrap_or_else(|| base_sha.to_owned());
    let tip = match merged_tip(gitea, &dir, p, plan, &base_now, head_sha).await? {
        Ok(tip) => tip,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let moved = git::cas_branch(&dir, &p.base, &tip, Some(&base_now))
        .await
        .map_err(|e| internal(gitea, e))?;
    if !moved {
        return Ok(Err(api_error(
            gitea,
            StatusCode::CONFLICT,
            "merge push out of date",
        )
        .into_response()));
    }
    update(gitea, &p.owner, &p.repo, p.number, |p| {
        p.merged = true;
        p.closed = true;
        p.merge_commit_sha = Some(tip.clone());
        p.head_sha = head_sha.to_owned();
        p.auto_merge = None;
    });
    if plan.delete_branch {
        // Best effort, as Gitea: a failed delete does not fail the merge.
        let _ = git::Git::new(
            &dir,
            ["update-ref", "-d", &format!("refs/heads/{}", p.head)],
        )
        .succeeds()
        .await;
    }
    Ok(Ok(()))
}

/// Computes the base's new tip for `plan.style` in a worktree of the repository (Gitea merges in a
/// temporary clone); a conflict or a diverged fast-forward is the refusal Gitea answers.
async fn merged_tip(
    gitea: &Gitea,
    dir: &std::path::Path,
    p: &Pull,
    plan: &AutoMerge,
    base: &str,
    head: &str,
) -> Result<Result<String, Response>, ApiError> {
    let fail = |e: git::GitError| internal(gitea, e);
    let style = plan.style.as_str();
    if style == "fast-forward-only" {
        let ff = git::Git::new(dir, ["merge-base", "--is-ancestor", base, head])
            .succeeds()
            .await
            .map_err(fail)?;
        return Ok(if ff {
            Ok(head.to_owned())
        } else {
            // ErrMergeDivergingFastForwardOnly is not mapped by the API.
            Err(api_error(gitea, StatusCode::INTERNAL_SERVER_ERROR, "").into_response())
        });
    }
    let work = tempfile::Builder::new()
        .prefix("sandbox-merge-")
        .tempdir()
        .map_err(|e| internal(gitea, e))?;
    let wt = work.path().join("wt");
    let wt_str = wt.to_string_lossy().into_owned();
    git::Git::new(
        dir,
        ["worktree", "add", "--detach", "--quiet", &wt_str, base],
    )
    .output()
    .await
    .map_err(fail)?;
    let result = merge_in(gitea, &wt, p, plan, base, head).await;
    let _ = git::Git::new(dir, ["worktree", "remove", "--force", &wt_str])
        .succeeds()
        .await;
    let _ = git::Git::new(dir, ["worktree", "prune"]).succeeds().await;
    result
}

async fn merge_in(
    gitea: &Gitea,
    wt: &std::path::Path,
    p: &Pull,
    plan: &AutoMerge,
    base: &str,
    head: &str,
) -> Result<Result<String, Response>, ApiError> {
    let who = &plan.by;
    let run = |args: Vec<String>| {
        git::Git::new(wt, args)
            .env("GIT_AUTHOR_NAME", who.login.clone())
            .env("GIT_AUTHOR_EMAIL", who.email.clone())
            .env("GIT_COMMITTER_NAME", who.login.clone())
            .env("GIT_COMMITTER_EMAIL", who.email.clone())
    };
    let title = if plan.title.trim().is_empty() {
        format!(
            "Merge pull request '{}' (#{}) from {} into {}",
            p.title, p.number, p.head, p.base
        )
    } else {
        plan.title.trim().to_owned()
    };
    let message = if plan.message.trim().is_empty() {
        title
    } else {
        format!("{title}\n\n{}", plan.message.trim())
    };
    let conflict = |style: &str| {
        // The raw Go error struct, without a `message` key.
        (
            StatusCode::CONFLICT,
            Json(json!({"Style": style, "StdOut": "", "StdErr": "CONFLICT (content)", "Err": {}})),
        )
            .into_response()
    };
    let s = |x: &str| x.to_owned();
    let ok = match plan.style.as_str() {
        "merge" => run(vec![s("merge"), s("--no-ff"), s("-m"), message, s(head)])
            .succeeds()
            .await
            .map_err(|e| internal(gitea, e))?,
        "squash" => {
            let merged = run(vec![s("merge"), s("--squash"), s(head)])
                .succeeds()
                .await
                .map_err(|e| internal(gitea, e))?;
            merged
                && run(vec![
                    s("commit"),
                    s("--allow-empty"),
                    s("-m"),
                    message,
                    s("--author"),
                    format!("{} <{}>", p.poster.login, p.poster.email),
                ])
                .succeeds()
                .await
                .map_err(|e| internal(gitea, e))?
        }
        "rebase" | "rebase-merge" => {
            let rebased = run(vec![s("checkout"), s("--quiet"), s("--detach"), s(head)])
                .succeeds()
                .await
                .map_err(|e| internal(gitea, e))?
                && run(vec![s("rebase"), s("--quiet"), s(base)])
                    .succeeds()
                    .await
                    .map_err(|e| internal(gitea, e))?;
            if !rebased {
                let _ = run(vec![s("rebase"), s("--abort")]).succeeds().await;
                return Ok(Err(conflict(&plan.style)));
            }
            if plan.style == "rebase-merge" {
                let tip = run(vec![s("rev-parse"), s("HEAD")])
                    .text()
                    .await
                    .map_err(|e| internal(gitea, e))?;
                run(vec![s("checkout"), s("--quiet"), s("--detach"), s(base)])
                    .succeeds()
                    .await
                    .map_err(|e| internal(gitea, e))?
                    && run(vec![s("merge"), s("--no-ff"), s("-m"), message, tip])
                        .succeeds()
                        .await
                        .map_err(|e| internal(gitea, e))?
            } else {
                true
            }
        }
        _ => false,
    };
    if !ok {
        let _ = run(vec![s("merge"), s("--abort")]).succeeds().await;
        return Ok(Err(conflict(&plan.style)));
    }
    let tip = run(vec![s("rev-parse"), s("HEAD")])
        .text()
        .await
        .map_err(|e| internal(gitea, e))?;
    Ok(Ok(tip))
}

/// Merges `number` if it is scheduled and nothing blocks it now (Gitea's auto-merge queue worker,
/// `handlePullRequestAutoMerge`); called when scheduled and on every new status and review.
pub(super) async fn try_auto_merge(gitea: &Gitea, owner: &str, name: &str, number: i64) {
    let Some(p) = find(gitea, owner, name, number) else {
        return;
    };
    let Some(plan) = p.auto_merge.clone() else {
        return;
    };
    // The queue runs once the conflict check is done.
    tokio::time::sleep_until(p.checking_until).await;
    let Ok(head) = current_head(gitea, &p).await else {
        return;
    };
    if blocked_by(gitea, &p, &head).is_some() {
        return;
    }
    let Ok(Some(base)) = gitea.branch_head(owner, name, &p.base).await else {
        return;
    };
    // A failure only reaches the server's log; the schedule stays.
    let _ = do_merge(gitea, &p, &plan, &base, &head).await;
}

/// Re-checks the scheduled merges whose head is `sha` (a new commit status arrived).
pub(super) async fn statuses_changed(gitea: &Gitea, owner: &str, name: &str, sha: &str) {
    let numbers: Vec<i64> = gitea
        .state()
        .pulls
        .iter()
        .filter(|p| p.owner == owner && p.repo == name && p.auto_merge.is_some() && !p.closed)
        .map(|p| p.number)
        .collect();
    for n in numbers {
        if let Some(p) = find(gitea, owner, name, n) {
            if current_head(gitea, &p).await.ok().as_deref() == Some(sha) {
                try_auto_merge(gitea, owner, name, n).await;
            }
        }
    }
}

pub(super) async fn list_reviews(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
) -> Result<Json<Value>, ApiError> {
    require_repo(&gitea, &headers, &owner, &name)?;
    let p = find(&gitea, &owner, &name, number).ok_or_else(|| not_found(&gitea))?;
    let head = current_head(&gitea, &p).await?;
    let reviews: Vec<Value> = p
        .reviews
        .iter()
        .map(|r| {
            json!({
                "id": r.id, "user": {"id": 0, "login": r.login}, "team": null, "state": r.state,
                "body": "", "commit_id": r.commit_id, "stale": r.commit_id != head,
                "official": true, "dismissed": false, "comments_count": 0,
                "submitted_at": now(), "updated_at": now(),
                "html_url": format!("{}/{owner}/{name}/pulls/{number}#issuecomment-{}", gitea.url(), r.id),
                "pull_request_url": format!("{}/{owner}/{name}/pulls/{number}", gitea.url()),
            })
        })
        .collect();
    Ok(Json(Value::Array(reviews)))
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct CreateIssueCommentOption {
    #[serde(default)]
    body: String,
}

pub(super) async fn create_comment(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = require_writer(&gitea, &headers, &owner, &name)?;
    let opts: CreateIssueCommentOption = parse_body(&gitea, &body)?;
    if opts.body.trim().is_empty() {
        return Err(api_error(
            &gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[Body]: Required",
        ));
    }
    find(&gitea, &owner, &name, number).ok_or_else(|| not_found(&gitea))?;
    update(&gitea, &owner, &name, number, |p| {
        p.comments.push(opts.body.clone())
    });
    let id = gitea.next_id();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "body": opts.body, "user": user_json(&gitea, &user),
            "html_url": format!("{}/{owner}/{name}/pulls/{number}#issuecomment-{id}", gitea.url()),
            "pull_request_url": format!("{}/{owner}/{name}/pulls/{number}", gitea.url()),
            "issue_url": "", "original_author": "", "original_author_id": 0,
            "assets": [], "created_at": now(), "updated_at": now(),
        })),
    ))
}

pub(super) async fn list_labels(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require_repo(&gitea, &headers, &owner, &name)?;
    let (page, limit) = paging(&query);
    let labels = gitea
        .labels(&owner, &name)
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(|(id, l)| label_json(&gitea, &owner, &name, id, &l))
        .collect();
    Ok(Json(Value::Array(labels)))
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct CreateLabelOption {
    #[serde(default)]
    name: String,
}

pub(super) async fn create_label(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_writer(&gitea, &headers, &owner, &name)?;
    let opts: CreateLabelOption = parse_body(&gitea, &body)?;
    if opts.name.trim().is_empty() {
        return Err(api_error(
            &gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[Name]: Required",
        ));
    }
    let id = gitea.add_label(&owner, &name, &opts.name);
    Ok((
        StatusCode::CREATED,
        Json(label_json(&gitea, &owner, &name, id, &opts.name)),
    ))
}

pub(super) async fn combined_status(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, reference)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = require_repo(&gitea, &headers, &owner, &name)?;
    let dir = gitea.repo_dir(&owner, &name);
    let sha = git::resolve_commit(&dir, &reference)
        .await
        .map_err(|e| internal(&gitea, e))?
        .ok_or_else(|| not_found(&gitea))?;
    let latest = latest_statuses(&gitea, &owner, &name, &sha);
    if latest.is_empty() && gitea.profile().empty_combined_status_is_null() {
        return Ok(Json(Value::Null));
    }
    let states: Vec<&str> = latest
        .iter()
        .map(|s| s["status"].as_str().unwrap_or_default())
        .collect();
    let state = if states.iter().any(|s| matches!(*s, "error" | "failure")) {
        "failure"
    } else if states.is_empty() || states.contains(&"pending") {
        "pending"
    } else {
        "success"
    };
    let base = format!("{}/api/v1/repos/{owner}/{name}", gitea.url());
    Ok(Json(json!({
        "state": state,
        "sha": sha,
        "total_count": latest.len(),
        "statuses": if latest.is_empty() { Value::Null } else { Value::Array(latest) },
        "repository": repo_json(&gitea, &owner, &name, &user),
        "commit_url": format!("{base}/commits/{sha}"),
        "url": format!("{base}/commits/{sha}/status"),
    })))
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct SandboxReview {
    login: String,
    #[serde(default = "approved")]
    state: String,
}

fn approved() -> String {
    "APPROVED".into()
}

/// `POST /_sandbox/repos/{owner}/{repo}/pulls/{n}/review {"login": "alice", "state": "APPROVED"}`:
/// another person reviews the head (what `POST /pulls/{n}/reviews` with their token does); a
/// scheduled merge is re-checked, as Gitea's `PullReviewed` notifier does.
/// Records a review by `login` at the head and re-checks a scheduled merge.
pub(super) async fn review(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    number: i64,
    login: &str,
    state: &str,
) {
    let Some(p) = find(gitea, owner, name, number) else {
        return;
    };
    let Ok(head) = current_head(gitea, &p).await else {
        return;
    };
    let id = gitea.next_id();
    update(gitea, owner, name, number, |p| {
        p.reviews.push(Review {
            id,
            login: login.to_owned(),
            state: state.to_owned(),
            commit_id: head,
        })
    });
    try_auto_merge(gitea, owner, name, number).await;
}

pub(super) async fn sandbox_review(
    State(gitea): State<Gitea>,
    Path((owner, name, number)): Path<(String, String, i64)>,
    Json(body): Json<SandboxReview>,
) -> Result<StatusCode, ApiError> {
    find(&gitea, &owner, &name, number).ok_or_else(|| not_found(&gitea))?;
    review(&gitea, &owner, &name, number, &body.login, &body.state).await;
    Ok(StatusCode::NO_CONTENT)
}
