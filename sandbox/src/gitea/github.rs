//! GitHub's shape of the same repositories and pull requests, as GitHub Enterprise Server serves it
//! (`/api/v3` for REST, `/api/graphql`), for the pull-request mode's GitHub path: one store of pull
//! requests, reviews and statuses behind both APIs, with GitHub's requests, answers and refusals.
//!
//! Behaviour from GitHub's REST description (github/rest-api-description
//! `descriptions/api.github.com/api.github.com.2022-11-28.yaml`, github/docs
//! `src/rest/data/fpt-2022-11-28/pulls.json`) and the issue threads summarised with references in
//! `docs/research/github-pulls.md`:
//! - create: 422 `Validation Failed` with `errors[].message` "A pull request already exists for
//!   owner:branch." for an open one on the same head and base;
//! - list items carry no `merged`, `mergeable` or `mergeable_state`; `head=` needs `owner:branch`;
//! - a pull request: `mergeable` is `null` while GitHub test-merges it; `merge_commit_sha` names the
//!   test merge while open, the merge's commit once merged; `mergeable_state` `dirty`, `blocked`,
//!   `unknown` or `clean`;
//! - merge (`PUT`): 200 `{sha, merged, message: "Pull Request successfully merged"}`; 405 "Pull
//!   Request is not mergeable", `Required status check "X" is expected.`, "At least 1 approving
//!   review is required by reviewers with write access."; 409 "Head branch was modified. Review and
//!   try the merge again." when `sha` is not the head;
//! - labels by name, created when missing; combined status `pending` without statuses; check runs
//!   (none here: only GitHub Apps make them);
//! - GraphQL `enablePullRequestAutoMerge`: errors (HTTP 200) "Pull request Pull request is in clean
//!   status" when nothing is left to wait for; otherwise it merges once the requirements are met.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

use super::pulls::{self, AutoMerge, NewPull, Pull, Refused};
use super::{Access, Gitea, User};
use crate::git;

/// The routes, merged into the Gitea double's server.
pub(super) fn router(gitea: Gitea) -> Router {
    let repo = "/api/v3/repos/{owner}/{repo}";
    Router::new()
        .route(repo, get(get_repo))
        .route(&format!("{repo}/branches/{{*branch}}"), get(get_branch))
        .route(&format!("{repo}/labels"), get(list_labels))
        .route(
            &format!("{repo}/git/refs/heads/{{*branch}}"),
            axum::routing::delete(delete_branch_ref),
        )
        .route(&format!("{repo}/pulls"), get(list_pulls).post(create_pull))
        .route(
            &format!("{repo}/pulls/{{number}}"),
            get(get_pull).patch(edit_pull),
        )
        .route(
            &format!("{repo}/pulls/{{number}}/merge"),
            axum::routing::put(merge_pull),
        )
        .route(
            &format!("{repo}/pulls/{{number}}/reviews"),
            get(list_reviews),
        )
        .route(
            &format!("{repo}/pulls/{{number}}/requested_reviewers"),
            post(request_reviewers),
        )
        .route(
            &format!("{repo}/issues/{{number}}/labels"),
            post(add_labels),
        )
        .route(
            &format!("{repo}/issues/{{number}}/assignees"),
            post(add_assignees),
        )
        .route(
            &format!("{repo}/issues/{{number}}/comments"),
            post(create_comment),
        )
        .route(
            &format!("{repo}/commits/{{reference}}/status"),
            get(combined_status),
        )
        .route(
            &format!("{repo}/commits/{{reference}}/check-runs"),
            get(check_runs),
        )
        .route("/api/graphql", post(graphql))
        .with_state(gitea)
}

/// GitHub's error body.
struct GhError(StatusCode, Value);

impl IntoResponse for GhError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

fn error(status: StatusCode, message: &str) -> GhError {
    GhError(
        status,
        json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_u16().to_string(),
        }),
    )
}

fn validation(message: &str) -> GhError {
    GhError(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": "PullRequest", "code": "custom", "message": message}],
            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
            "status": "422",
        }),
    )
}

fn internal(e: impl std::fmt::Display) -> GhError {
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

/// The token's user for `owner/name`: 401 "Bad credentials" for an unknown token, 404 for a
/// missing repository (GitHub hides private ones), 403 for a write without write access.
fn user(
    gitea: &Gitea,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
    write: bool,
) -> Result<User, GhError> {
    let user = match gitea.authenticate(headers) {
        Ok(Some(u)) => u.clone(),
        _ => return Err(error(StatusCode::UNAUTHORIZED, "Bad credentials")),
    };
    if !gitea.repo_exists(owner, name) {
        return Err(error(StatusCode::NOT_FOUND, "Not Found"));
    }
    if write && user.access != Access::Write {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        ));
    }
    Ok(user)
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, GhError> {
    serde_json::from_slice(bytes)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "Problems parsing JSON"))
}

/// The strings of the array `v[key]` (a request's `labels`, `assignees`, `reviewers`).
fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().map(str::to_owned))
        .collect()
}

fn person(login: &str) -> Value {
    json!({"login": login, "id": 1, "node_id": "U_sandbox", "type": "User", "site_admin": false})
}

fn api_base(gitea: &Gitea, owner: &str, name: &str) -> String {
    format!("{}/api/v3/repos/{owner}/{name}", gitea.url())
}

/// The GraphQL node id of a pull request (opaque to clients).
fn node_id(p: &Pull) -> String {
    let raw = format!("PullRequest:{}/{}#{}", p.owner, p.repo, p.number);
    format!(
        "PR_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

fn parse_node_id(id: &str) -> Option<(String, String, i64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id.strip_prefix("PR_")?)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let rest = raw.strip_prefix("PullRequest:")?;
    let (repo, number) = rest.split_once('#')?;
    let (owner, name) = repo.split_once('/')?;
    Some((owner.to_owned(), name.to_owned(), number.parse().ok()?))
}

fn label_json(gitea: &Gitea, owner: &str, name: &str, id: i64, label: &str) -> Value {
    json!({
        "id": id, "node_id": format!("LA_{id}"), "name": label, "color": "ededed",
        "default": false, "description": null,
        "url": format!("{}/labels/{label}", api_base(gitea, owner, name)),
    })
}

async fn get_repo(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    Ok(Json(json!({
        "name": name, "full_name": format!("{owner}/{name}"), "private": false,
        "default_branch": gitea.default_branch(&owner, &name),
        "html_url": format!("{}/{owner}/{name}", gitea.url()),
        "allow_auto_merge": true,
    })))
}

async fn get_branch(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, branch)): Path<(String, String, String)>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    let head = gitea
        .branch_head(&owner, &name, &branch)
        .await
        .map_err(internal)?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Branch not found"))?;
    let rule = gitea.protection(&owner, &name, &branch);
    let contexts = rule
        .as_ref()
        .filter(|r| r.enable_status_check)
        .map(|r| r.status_check_contexts.clone())
        .unwrap_or_default();
    Ok(Json(json!({
        "name": branch,
        "commit": {"sha": head, "url": format!("{}/commits/{head}", api_base(&gitea, &owner, &name))},
        "protected": rule.is_some(),
        "protection": {
            "enabled": rule.is_some(),
            "required_status_checks": {
                "enforcement_level": if contexts.is_empty() { "off" } else { "non_admins" },
                "contexts": contexts,
                "checks": contexts.iter().map(|c| json!({"context": c, "app_id": null})).collect::<Vec<_>>(),
            },
        },
        "protection_url": format!("{}/branches/{branch}/protection", api_base(&gitea, &owner, &name)),
    })))
}

async fn list_labels(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    let (page, per_page) = paging(&query);
    Ok(Json(Value::Array(
        gitea
            .labels(&owner, &name)
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|(id, l)| label_json(&gitea, &owner, &name, id, &l))
            .collect(),
    )))
}

/// `page` (from 1) and `per_page` (default 30, at most 100).
fn paging(query: &HashMap<String, String>) -> (usize, usize) {
    let num = |k: &str| {
        query
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
    };
    (
        num("page").unwrap_or(1),
        num("per_page").unwrap_or(30).min(100),
    )
}

/// A pull request as GitHub shows it; `full` adds what only `GET /pulls/{n}` carries.
async fn pull_json(gitea: &Gitea, p: &Pull, full: bool) -> Result<Value, GhError> {
    let dir = gitea.repo_dir(&p.owner, &p.repo);
    let base_sha = gitea
        .branch_head(&p.owner, &p.repo, &p.base)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let head_sha = pulls::current_head(gitea, p)
        .await
        .map_err(|_| internal("cannot read the head"))?;
    let open = !p.closed;
    let checking = open && pulls::is_checking(gitea, p, &base_sha);
    let conflict = open
        && !checking
        && pulls::conflicts(gitea, &dir, &base_sha, &head_sha)
            .await
            .map_err(|_| internal("merge-tree"))?;
    // While open, `merge_commit_sha` is GitHub's test merge (a real commit of the merge).
    let merge_commit_sha = if p.merged {
        p.merge_commit_sha.clone()
    } else if open && !checking && !conflict {
        test_merge(&dir, &base_sha, &head_sha).await
    } else {
        None
    };
    let web = format!("{}/{}/{}", gitea.url(), p.owner, p.repo);
    let api = api_base(gitea, &p.owner, &p.repo);
    let side = |branch: &str, sha: &str| {
        json!({"label": format!("{}:{branch}", p.owner), "ref": branch, "sha": sha,
               "user": person(&p.owner), "repo": {"full_name": format!("{}/{}", p.owner, p.repo)}})
    };
    let labels: Vec<Value> = gitea
        .labels(&p.owner, &p.repo)
        .into_iter()
        .filter(|(id, _)| p.labels.contains(id))
        .map(|(id, l)| label_json(gitea, &p.owner, &p.repo, id, &l))
        .collect();
    let now = pulls::now();
    let mut v = json!({
        "url": format!("{api}/pulls/{}", p.number),
        "id": p.number,
        "node_id": node_id(p),
        "html_url": format!("{web}/pull/{}", p.number),
        "number": p.number,
        "state": if open { "open" } else { "closed" },
        "locked": false,
        "title": p.title,
        "user": person(&p.poster.login),
        "body": p.body,
        "labels": labels,
        "assignees": p.assignees.iter().map(|a| person(a)).collect::<Vec<_>>(),
        "requested_reviewers": p.reviewers.iter().map(|a| person(a)).collect::<Vec<_>>(),
        "created_at": p.created_at,
        "updated_at": now,
        "closed_at": if open { Value::Null } else { json!(now) },
        "merged_at": if p.merged { json!(now) } else { Value::Null },
        "merge_commit_sha": merge_commit_sha,
        "head": side(&p.head, &head_sha),
        "base": side(&p.base, &base_sha),
        "draft": false,
        "auto_merge": p.auto_merge.as_ref().map(|a| json!({
            "enabled_by": person(&a.by.login), "merge_method": a.style,
            "commit_title": a.title, "commit_message": a.message,
        })),
    });
    if full {
        let blocked = open && pulls::blocked_by(gitea, p, &head_sha).is_some();
        v["merged"] = json!(p.merged);
        v["mergeable"] = if !open {
            Value::Null
        } else if checking {
            // GitHub is still computing it.
            Value::Null
        } else {
            json!(!conflict)
        };
        v["mergeable_state"] = json!(match () {
            _ if !open => "unknown",
            _ if checking => "unknown",
            _ if conflict => "dirty",
            _ if blocked => "blocked",
            _ => "clean",
        });
        v["merged_by"] = Value::Null;
        v["comments"] = json!(p.comments.len());
    }
    Ok(v)
}

/// The test merge of `head` into `base`: a merge commit no branch points at.
async fn test_merge(dir: &std::path::Path, base: &str, head: &str) -> Option<String> {
    let tree = git::Git::new(dir, ["merge-tree", "--write-tree", base, head])
        .text()
        .await
        .ok()?;
    let tree = tree.lines().next()?.to_owned();
    git::Git::new(
        dir,
        [
            "commit-tree",
            &tree,
            "-p",
            base,
            "-p",
            head,
            "-m",
            "test merge",
        ],
    )
    .env("GIT_AUTHOR_NAME", "GitHub")
    .env("GIT_AUTHOR_EMAIL", "noreply@github.com")
    .env("GIT_COMMITTER_NAME", "GitHub")
    .env("GIT_COMMITTER_EMAIL", "noreply@github.com")
    .text()
    .await
    .ok()
}

fn find(gitea: &Gitea, owner: &str, name: &str, number: i64) -> Result<Pull, GhError> {
    pulls::find(gitea, owner, name, number).ok_or_else(|| error(StatusCode::NOT_FOUND, "Not Found"))
}

async fn list_pulls(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    let state = query.get("state").map(String::as_str).unwrap_or("open");
    // `head` must be `owner:branch`; a bare branch name is ignored, as GitHub does.
    let head = query
        .get("head")
        .and_then(|h| h.split_once(':'))
        .map(|(_, b)| b.to_owned());
    let base = query.get("base").cloned();
    let mut list: Vec<Pull> = gitea
        .state()
        .pulls
        .iter()
        .filter(|p| p.owner == owner && p.repo == name)
        .filter(|p| match state {
            "open" => !p.closed,
            "closed" => p.closed,
            _ => true,
        })
        .filter(|p| head.as_ref().is_none_or(|h| &p.head == h))
        .filter(|p| base.as_ref().is_none_or(|b| &p.base == b))
        .cloned()
        .collect();
    if query.get("direction").map(String::as_str) != Some("asc") {
        list.reverse();
    }
    let (page, per_page) = paging(&query);
    let mut out = Vec::new();
    for p in list.iter().skip((page - 1) * per_page).take(per_page) {
        out.push(pull_json(&gitea, p, false).await?);
    }
    Ok(Json(Value::Array(out)))
}

#[derive(serde::Deserialize)]
struct CreatePull {
    #[serde(default)]
    title: String,
    #[serde(default)]
    head: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    body: Option<String>,
}

async fn create_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), GhError> {
    let user = user(&gitea, &headers, &owner, &name, true)?;
    let opts: CreatePull = body(&bytes)?;
    let head = opts
        .head
        .split_once(':')
        .map_or(opts.head.clone(), |(_, b)| b.to_owned());
    if opts.title.trim().is_empty() {
        return Err(validation("title wasn't supplied."));
    }
    let new = NewPull {
        head: head.clone(),
        base: opts.base.clone(),
        title: opts.title,
        body: opts.body.unwrap_or_default(),
        labels: Vec::new(),
        assignees: Vec::new(),
        reviewers: Vec::new(),
    };
    match pulls::store_pull(&gitea, &owner, &name, &user, new)
        .await
        .map_err(|_| internal("cannot store the pull request"))?
    {
        Ok(p) => Ok((
            StatusCode::CREATED,
            Json(pull_json(&gitea, &p, true).await?),
        )),
        Err(Refused::Exists { .. }) => Err(validation(&format!(
            "A pull request already exists for {owner}:{head}."
        ))),
        Err(Refused::NoBranch) => Err(GhError(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed", "status": "422",
                   "errors": [{"resource": "PullRequest", "field": "head", "code": "invalid"}]}),
        )),
    }
}

async fn get_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    let p = find(&gitea, &owner, &name, number)?;
    Ok(Json(pull_json(&gitea, &p, true).await?))
}

async fn edit_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    bytes: Bytes,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, true)?;
    let edit: Value = body(&bytes)?;
    let p = find(&gitea, &owner, &name, number)?;
    let head = pulls::current_head(&gitea, &p)
        .await
        .map_err(|_| internal("head"))?;
    pulls::update(&gitea, &owner, &name, number, |p| {
        if edit["state"] == "closed" && !p.merged {
            p.closed = true;
            p.head_sha = head;
            p.auto_merge = None;
        }
        if let Some(t) = edit["title"].as_str() {
            p.title = t.to_owned();
        }
    });
    let p = find(&gitea, &owner, &name, number)?;
    Ok(Json(pull_json(&gitea, &p, true).await?))
}

/// GitHub's words for what blocks a merge (the sandbox's protection rules).
fn blocked_message(gitea: &Gitea, p: &Pull, head: &str, reason: &str) -> String {
    match reason {
        "Not all required status checks successful" => {
            let rule = gitea
                .protection(&p.owner, &p.repo, &p.base)
                .unwrap_or_default();
            let ok: Vec<String> = gitea
                .statuses(&p.owner, &p.repo, head)
                .iter()
                .filter(|s| s["status"] == "success")
                .filter_map(|s| s["context"].as_str().map(str::to_owned))
                .collect();
            let missing = rule
                .status_check_contexts
                .iter()
                .find(|c| !ok.contains(c))
                .cloned()
                .unwrap_or_default();
            format!("Required status check \"{missing}\" is expected.")
        }
        "Does not have enough approvals" => {
            let need = gitea
                .protection(&p.owner, &p.repo, &p.base)
                .map_or(1, |r| r.required_approvals);
            if need == 1 {
                "At least 1 approving review is required by reviewers with write access.".into()
            } else {
                format!("At least {need} approving reviews are required by reviewers with write access.")
            }
        }
        _ => "Changes must be made through a pull request. Review changes were requested.".into(),
    }
}

#[derive(serde::Deserialize)]
struct MergeBody {
    #[serde(default)]
    merge_method: Option<String>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    commit_title: Option<String>,
    #[serde(default)]
    commit_message: Option<String>,
}

/// `DELETE /repos/{o}/{r}/git/refs/heads/{branch}` (GitHub REST "Delete a reference"): 204, or 422
/// "Reference does not exist". GitHub's merge API cannot delete the head branch; clients do this.
async fn delete_branch_ref(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, branch)): Path<(String, String, String)>,
) -> Result<StatusCode, GhError> {
    user(&gitea, &headers, &owner, &name, true)?;
    let exists = gitea
        .branch_head(&owner, &name, &branch)
        .await
        .map_err(internal)?
        .is_some();
    if !exists {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Reference does not exist",
        ));
    }
    let dir = gitea.repo_dir(&owner, &name);
    git::Git::new(&dir, ["update-ref", "-d", &format!("refs/heads/{branch}")])
        .succeeds()
        .await
        .map_err(|_| internal("update-ref"))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn merge_pull(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    bytes: Bytes,
) -> Result<Json<Value>, GhError> {
    let user = user(&gitea, &headers, &owner, &name, true)?;
    let opts: MergeBody = body(&bytes)?;
    let style = opts.merge_method.unwrap_or_else(|| "merge".into());
    if !["merge", "squash", "rebase"].contains(&style.as_str()) {
        return Err(validation(&format!("Invalid merge_method: {style}")));
    }
    let p = find(&gitea, &owner, &name, number)?;
    let not_mergeable = || {
        error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Pull Request is not mergeable",
        )
    };
    let base_now = gitea
        .branch_head(&owner, &name, &p.base)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    if p.closed || pulls::is_checking(&gitea, &p, &base_now) {
        return Err(not_mergeable());
    }
    let head = pulls::current_head(&gitea, &p)
        .await
        .map_err(|_| internal("head"))?;
    if opts.sha.as_deref().is_some_and(|s| s != head) {
        return Err(error(
            StatusCode::CONFLICT,
            "Head branch was modified. Review and try the merge again.",
        ));
    }
    if let Some(reason) = pulls::blocked_by(&gitea, &p, &head) {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            &blocked_message(&gitea, &p, &head, reason),
        ));
    }
    let base = gitea
        .branch_head(&owner, &name, &p.base)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let plan = AutoMerge {
        style,
        // GitHub deletes head branches by the repository's setting, off by default.
        delete_branch: false,
        title: opts.commit_title.unwrap_or_default(),
        message: opts.commit_message.unwrap_or_default(),
        by: user,
    };
    match pulls::do_merge(&gitea, &p, &plan, &base, &head)
        .await
        .map_err(|_| internal("merge"))?
    {
        Ok(()) => {
            let merged = find(&gitea, &owner, &name, number)?;
            Ok(Json(json!({
                "sha": merged.merge_commit_sha,
                "merged": true,
                "message": "Pull Request successfully merged",
            })))
        }
        Err(_) => Err(not_mergeable()),
    }
}

async fn list_reviews(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    let p = find(&gitea, &owner, &name, number)?;
    Ok(Json(Value::Array(
        p.reviews
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "node_id": format!("PRR_{}", r.id), "user": person(&r.login),
                    "body": "", "commit_id": r.commit_id, "submitted_at": pulls::now(),
                    "author_association": "COLLABORATOR",
                    // Gitea's REQUEST_CHANGES is GitHub's CHANGES_REQUESTED.
                    "state": if r.state == "REQUEST_CHANGES" { "CHANGES_REQUESTED" } else { r.state.as_str() },
                    "html_url": format!("{}/{owner}/{name}/pull/{number}#pullrequestreview-{}", gitea.url(), r.id),
                })
            })
            .collect(),
    )))
}

async fn request_reviewers(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), GhError> {
    user(&gitea, &headers, &owner, &name, true)?;
    let v: Value = body(&bytes)?;
    let logins = strings(&v, "reviewers");
    find(&gitea, &owner, &name, number)?;
    pulls::update(&gitea, &owner, &name, number, |p| {
        p.reviewers.extend(logins)
    });
    let p = find(&gitea, &owner, &name, number)?;
    Ok((
        StatusCode::CREATED,
        Json(pull_json(&gitea, &p, false).await?),
    ))
}

async fn add_labels(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    bytes: Bytes,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, true)?;
    let v: Value = body(&bytes)?;
    find(&gitea, &owner, &name, number)?;
    let names = strings(&v, "labels");
    let mut ids = Vec::new();
    for n in names {
        // A missing label is created (observed behaviour; GitHub does not document it).
        let id = match gitea
            .labels(&owner, &name)
            .into_iter()
            .find(|(_, l)| *l == n)
        {
            Some((id, _)) => id,
            None => gitea.add_label(&owner, &name, &n),
        };
        ids.push(id);
    }
    pulls::update(&gitea, &owner, &name, number, |p| {
        for id in ids {
            if !p.labels.contains(&id) {
                p.labels.push(id);
            }
        }
    });
    let p = find(&gitea, &owner, &name, number)?;
    Ok(Json(Value::Array(
        gitea
            .labels(&owner, &name)
            .into_iter()
            .filter(|(id, _)| p.labels.contains(id))
            .map(|(id, l)| label_json(&gitea, &owner, &name, id, &l))
            .collect(),
    )))
}

async fn add_assignees(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), GhError> {
    user(&gitea, &headers, &owner, &name, true)?;
    let v: Value = body(&bytes)?;
    find(&gitea, &owner, &name, number)?;
    let logins = strings(&v, "assignees");
    pulls::update(&gitea, &owner, &name, number, |p| {
        p.assignees.extend(logins)
    });
    let p = find(&gitea, &owner, &name, number)?;
    Ok((
        StatusCode::CREATED,
        Json(pull_json(&gitea, &p, false).await?),
    ))
}

async fn create_comment(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, number)): Path<(String, String, i64)>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), GhError> {
    let u = user(&gitea, &headers, &owner, &name, true)?;
    let v: Value = body(&bytes)?;
    let text = v["body"].as_str().unwrap_or_default().to_owned();
    if text.is_empty() {
        return Err(validation("body wasn't supplied."));
    }
    find(&gitea, &owner, &name, number)?;
    pulls::update(&gitea, &owner, &name, number, |p| {
        p.comments.push(text.clone())
    });
    let id = gitea.next_id();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "node_id": format!("IC_{id}"), "body": text, "user": person(&u.login),
            "html_url": format!("{}/{owner}/{name}/pull/{number}#issuecomment-{id}", gitea.url()),
            "created_at": pulls::now(), "updated_at": pulls::now(),
        })),
    ))
}

async fn combined_status(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, reference)): Path<(String, String, String)>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    let dir = gitea.repo_dir(&owner, &name);
    let sha = git::resolve_commit(&dir, &reference)
        .await
        .map_err(internal)?
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "No commit found for SHA"))?;
    let latest = pulls::latest_statuses(&gitea, &owner, &name, &sha);
    let states: Vec<&str> = latest
        .iter()
        .map(|s| s["status"].as_str().unwrap_or_default())
        .collect();
    // No statuses, or one pending: pending.
    let state = if states.iter().any(|s| matches!(*s, "error" | "failure")) {
        "failure"
    } else if states.is_empty() || states.contains(&"pending") {
        "pending"
    } else {
        "success"
    };
    let statuses: Vec<Value> = latest
        .iter()
        .map(|s| {
            json!({"state": s["status"], "context": s["context"], "description": s["description"],
                   "target_url": s["target_url"], "id": s["id"], "created_at": s["created_at"],
                   "updated_at": s["updated_at"]})
        })
        .collect();
    Ok(Json(json!({
        "state": state, "sha": sha, "total_count": statuses.len(), "statuses": statuses,
        "commit_url": format!("{}/commits/{sha}", api_base(&gitea, &owner, &name)),
        "url": format!("{}/commits/{sha}/status", api_base(&gitea, &owner, &name)),
    })))
}

async fn check_runs(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, _reference)): Path<(String, String, String)>,
) -> Result<Json<Value>, GhError> {
    user(&gitea, &headers, &owner, &name, false)?;
    // Only GitHub Apps make check runs; the sandbox has none.
    Ok(Json(json!({"total_count": 0, "check_runs": []})))
}

/// `POST /api/graphql`: only `enablePullRequestAutoMerge`.
async fn graphql(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, GhError> {
    let request: Value = body(&bytes)?;
    let query = request["query"].as_str().unwrap_or_default();
    let gql_error = |message: &str| {
        Json(json!({"data": {"enablePullRequestAutoMerge": null},
                    "errors": [{"type": "UNPROCESSABLE", "path": ["enablePullRequestAutoMerge"],
                                "message": message}]}))
    };
    if !query.contains("enablePullRequestAutoMerge") {
        return Ok(Json(
            json!({"errors": [{"message": "the sandbox answers only enablePullRequestAutoMerge"}]}),
        ));
    }
    let vars = &request["variables"];
    let Some((owner, name, number)) = vars["id"]
        .as_str()
        .or_else(|| vars["pullRequestId"].as_str())
        .and_then(parse_node_id)
    else {
        return Ok(Json(json!({"errors": [{"type": "NOT_FOUND",
            "message": "Could not resolve to a node with the global id"}]})));
    };
    let u = user(&gitea, &headers, &owner, &name, true)?;
    let p = find(&gitea, &owner, &name, number)?;
    if p.closed {
        return Ok(gql_error("Pull request is closed"));
    }
    let head = pulls::current_head(&gitea, &p)
        .await
        .map_err(|_| internal("head"))?;
    let dir = gitea.repo_dir(&owner, &name);
    let base = gitea
        .branch_head(&owner, &name, &p.base)
        .await
        .map_err(internal)?
        .unwrap_or_default();
    let clean = !pulls::is_checking(&gitea, &p, &base)
        && pulls::blocked_by(&gitea, &p, &head).is_none()
        && !pulls::conflicts(&gitea, &dir, &base, &head)
            .await
            .map_err(|_| internal("merge-tree"))?;
    if clean {
        return Ok(gql_error("Pull request Pull request is in clean status"));
    }
    let method = vars["method"]
        .as_str()
        .or_else(|| vars["mergeMethod"].as_str())
        .unwrap_or("MERGE")
        .to_ascii_lowercase();
    // The commit headline and body, as the mutation's variables name them.
    let text = |keys: [&str; 2]| {
        keys.iter()
            .find_map(|k| vars[*k].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let (title, message) = (
        text(["headline", "commitHeadline"]),
        text(["body", "commitBody"]),
    );
    pulls::update(&gitea, &owner, &name, number, |p| {
        p.auto_merge = Some(AutoMerge {
            style: method,
            delete_branch: false,
            title,
            message,
            by: u,
        })
    });
    let g = gitea.clone();
    tokio::spawn(async move { pulls::try_auto_merge(&g, &owner, &name, number).await });
    Ok(Json(
        json!({"data": {"enablePullRequestAutoMerge": {"pullRequest": {"id": node_id(&p)}}}}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_round_trip() {
        let id = "PR_".to_owned()
            + &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("PullRequest:o/r#12");
        assert_eq!(parse_node_id(&id), Some(("o".into(), "r".into(), 12)));
        assert_eq!(parse_node_id("PR_%%%"), None);
    }
}
