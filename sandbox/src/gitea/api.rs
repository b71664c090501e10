//! The `/api/v1` subset of Gitea, with Gitea's JSON shapes (checked against
//! `sandbox/specs/gitea-swagger.json` by the contract tests) and status codes.
//!
//! Read endpoints and their JSON builders live here; the contents writes (the part with real
//! concurrency semantics) live in [`super::files`]. Every endpoint but `/version` needs a token,
//! because the sandbox's repositories are private; writes need the write token (403 otherwise).

use std::collections::HashMap;
use std::path::Path as FsPath;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};

use super::{Access, Gitea, User};
use crate::git::{self, CommitInfo, GitError, TreeEntry};

pub(super) fn router(gitea: Gitea) -> Router {
    let repo = "/api/v1/repos/{owner}/{repo}";
    Router::new()
        .route("/api/v1/version", get(version))
        .route(repo, get(get_repo))
        .route(&format!("{repo}/branches/{{*branch}}"), get(get_branch))
        .route(
            &format!("{repo}/contents"),
            get(get_root_contents).post(super::files::change_files),
        )
        .route(
            &format!("{repo}/contents/{{*path}}"),
            get(get_contents)
                .put(super::files::update_file)
                .post(super::files::create_file),
        )
        .route(
            &format!("{repo}/statuses/{{sha}}"),
            get(list_statuses).post(create_status),
        )
        .route(&format!("{repo}/git/commits/{{sha}}"), get(get_commit))
        .route(&format!("{repo}/compare/{{*basehead}}"), get(compare))
        .route(
            &format!("{repo}/pulls"),
            get(super::pulls::list_pulls).post(super::pulls::create_pull),
        )
        .route(
            &format!("{repo}/pulls/{{number}}"),
            get(super::pulls::get_pull).patch(super::pulls::edit_pull),
        )
        .route(
            &format!("{repo}/pulls/{{number}}/merge"),
            post(super::pulls::merge_pull),
        )
        .route(
            &format!("{repo}/pulls/{{number}}/reviews"),
            get(super::pulls::list_reviews),
        )
        .route(
            &format!("{repo}/issues/{{number}}/comments"),
            post(super::pulls::create_comment),
        )
        .route(
            &format!("{repo}/labels"),
            get(super::pulls::list_labels).post(super::pulls::create_label),
        )
        .route(
            &format!("{repo}/commits/{{reference}}/status"),
            get(super::pulls::combined_status),
        )
        .route(
            "/_sandbox/repos/{owner}/{repo}/pulls/{number}/review",
            post(super::pulls::sandbox_review),
        )
        .route("/_sandbox/profile", post(admin_profile))
        .route(
            "/_sandbox/repos/{owner}/{repo}/settings",
            post(admin_repo_settings),
        )
        .with_state(gitea)
}

/// Gitea's error answer: the status and `{"message": ..., "url": <swagger URL>}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
    url: String,
    /// The `errors` member 404 bodies carry (see [`crate::profile::NotFoundErrors`]).
    errors: Option<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "message": self.message, "url": self.url });
        if let Some(errors) = self.errors {
            body["errors"] = errors;
        }
        (self.status, Json(body)).into_response()
    }
}

pub(super) fn api_error(gitea: &Gitea, status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
        url: format!("{}/api/swagger", gitea.url()),
        errors: None,
    }
}

/// A failure of the sandbox itself: 500, with the message Gitea would hide in production.
pub(super) fn internal(gitea: &Gitea, e: impl std::fmt::Display) -> ApiError {
    api_error(gitea, StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub(super) fn not_found(gitea: &Gitea) -> ApiError {
    not_found_because(gitea, "The target couldn't be found.")
}

/// Gitea's `APIErrorNotFound` with a message: a 404 whose body has the profile's `errors` member.
pub(super) fn not_found_because(gitea: &Gitea, message: &str) -> ApiError {
    let errors = match gitea.profile().not_found_errors {
        crate::profile::NotFoundErrors::Null => Value::Null,
        crate::profile::NotFoundErrors::Empty => json!([]),
    };
    ApiError {
        errors: Some(errors),
        ..api_error(gitea, StatusCode::NOT_FOUND, message)
    }
}

async fn version(State(gitea): State<Gitea>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    if gitea.requires_signin_view() && !matches!(gitea.authenticate(&headers), Ok(Some(_))) {
        return Err(api_error(
            &gitea,
            StatusCode::FORBIDDEN,
            "Only signed in user is allowed to call APIs.".to_owned(),
        ));
    }
    Ok(Json(json!({ "version": gitea.version() })))
}

/// The authenticated user, or the 401 Gitea sends.
pub(super) fn require_user(gitea: &Gitea, headers: &HeaderMap) -> Result<User, ApiError> {
    match gitea.authenticate(headers) {
        Ok(Some(user)) => Ok(user.clone()),
        Ok(None) => Err(api_error(
            gitea,
            StatusCode::UNAUTHORIZED,
            "token is required",
        )),
        Err(()) => Err(api_error(
            gitea,
            StatusCode::UNAUTHORIZED,
            "user does not exist or token is invalid",
        )),
    }
}

/// The user, who must hold the write token, of an existing repository; else Gitea's 401/403/404.
pub(super) fn require_writer(
    gitea: &Gitea,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
) -> Result<User, ApiError> {
    let user = require_repo(gitea, headers, owner, name)?;
    if user.access != Access::Write {
        return Err(api_error(
            gitea,
            StatusCode::FORBIDDEN,
            "token does not have at least one of required scope(s), required=[write:repository], token scope=read:repository",
        ));
    }
    Ok(user)
}

/// The authenticated user of an existing repository; else Gitea's 401/404.
pub(super) fn require_repo(
    gitea: &Gitea,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
) -> Result<User, ApiError> {
    let user = require_user(gitea, headers)?;
    if !gitea.repo_exists(owner, name) {
        return Err(not_found(gitea));
    }
    Ok(user)
}

/// Parse a JSON request body as Gitea's binding does: malformed input is a 422.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(
    gitea: &Gitea,
    body: &Bytes,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        api_error(
            gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid request body: {e}"),
        )
    })
}

fn packed_ref_exists(dir: &FsPath, branch: &str) -> bool {
    std::fs::read_to_string(dir.join("packed-refs"))
        .map(|text| {
            text.lines()
                .any(|l| l.ends_with(&format!(" refs/heads/{branch}")))
        })
        .unwrap_or(false)
}

pub(super) fn user_json(gitea: &Gitea, user: &User) -> Value {
    json!({
        "id": user.id,
        "login": user.login,
        "login_name": "",
        "full_name": "",
        "email": user.email,
        "avatar_url": format!("{}/avatars/{}", gitea.url(), user.login),
        "html_url": format!("{}/{}", gitea.url(), user.login),
        "language": "",
        "is_admin": false,
        "restricted": false,
        "active": true,
        "prohibit_login": false,
        "location": "",
        "website": "",
        "description": "",
        "visibility": "public",
        "followers_count": 0,
        "following_count": 0,
        "starred_repos_count": 0,
        "username": user.login,
        "created": "2026-01-01T00:00:00Z",
        "last_login": "2026-01-01T00:00:00Z",
    })
}

fn owner_json(gitea: &Gitea, owner: &str) -> Value {
    if owner == gitea.inner.writer.login {
        return user_json(gitea, &gitea.inner.writer);
    }
    let pseudo = User {
        id: 1000,
        login: owner.into(),
        email: format!("{owner}@sandbox.invalid"),
        access: super::Access::Read,
    };
    user_json(gitea, &pseudo)
}

pub(super) fn repo_json(gitea: &Gitea, owner: &str, name: &str, user: &User) -> Value {
    let base = gitea.url();
    let default_branch = gitea.default_branch(owner, name);
    let empty = !gitea
        .repo_dir(owner, name)
        .join("refs/heads")
        .join(&default_branch)
        .exists()
        && !packed_ref_exists(&gitea.repo_dir(owner, name), &default_branch);
    let write = user.access == super::Access::Write;
    json!({
        "id": gitea.repo_id(owner, name),
        "owner": owner_json(gitea, owner),
        "name": name,
        "full_name": format!("{owner}/{name}"),
        "description": "",
        "empty": empty,
        "private": true,
        "fork": false,
        "template": false,
        "mirror": false,
        "size": 0,
        "language": "",
        "languages_url": format!("{base}/api/v1/repos/{owner}/{name}/languages"),
        "html_url": format!("{base}/{owner}/{name}"),
        "url": format!("{base}/api/v1/repos/{owner}/{name}"),
        "link": "",
        "ssh_url": format!("git@127.0.0.1:{owner}/{name}.git"),
        "clone_url": format!("{base}/{owner}/{name}.git"),
        "original_url": "",
        "website": "",
        "stars_count": 0,
        "forks_count": 0,
        "watchers_count": 1,
        "open_issues_count": 0,
        "open_pr_counter": 0,
        "release_counter": 0,
        "default_branch": default_branch,
        "archived": false,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "archived_at": "1970-01-01T00:00:00Z",
        "permissions": { "admin": write, "push": write, "pull": true },
        "has_code": true,
        "has_issues": true,
        "has_wiki": false,
        "has_pull_requests": true,
        "has_projects": false,
        "has_releases": true,
        "has_packages": false,
        "has_actions": true,
        "ignore_whitespace_conflicts": false,
        "allow_merge_commits": true,
        "allow_rebase": true,
        "allow_rebase_explicit": true,
        "allow_squash_merge": true,
        "allow_fast_forward_only_merge": true,
        "allow_rebase_update": true,
        "default_delete_branch_after_merge": false,
        "default_merge_style": "merge",
        "default_allow_maintainer_edit": false,
        "avatar_url": "",
        "internal": false,
        "mirror_interval": "",
        "object_format_name": "sha1",
        "mirror_updated": "0001-01-01T00:00:00Z",
        "topics": [],
        "licenses": [],
    })
}

/// `CommitUser`: name, email and date of a commit's author or committer.
fn commit_user(person: &git::Person) -> Value {
    json!({ "name": person.name, "email": person.email, "date": person.rfc3339() })
}

/// An unsigned commit's verification, as Gitea reports it.
pub(super) fn verification() -> Value {
    json!({
        "verified": false,
        "reason": "gpg.error.not_signed_commit",
        "signature": "",
        "payload": "",
    })
}

/// The known user with this email, as Gitea maps commit authors to accounts.
fn user_by_email(gitea: &Gitea, email: &str) -> Option<Value> {
    [&gitea.inner.writer, &gitea.inner.reader]
        .into_iter()
        .find(|u| u.email == email)
        .map(|u| user_json(gitea, u))
}

pub(super) fn api_base(gitea: &Gitea, owner: &str, name: &str) -> String {
    format!("{}/api/v1/repos/{owner}/{name}", gitea.url())
}

/// `FileCommitResponse` for a commit just written.
pub(super) fn file_commit_json(gitea: &Gitea, owner: &str, name: &str, c: &CommitInfo) -> Value {
    let api = api_base(gitea, owner, name);
    json!({
        "url": format!("{api}/git/commits/{}", c.sha),
        "sha": c.sha,
        "created": c.committer.rfc3339(),
        "html_url": format!("{}/{owner}/{name}/commit/{}", gitea.url(), c.sha),
        "author": commit_user(&c.author),
        "committer": commit_user(&c.committer),
        "parents": c.parents.iter().map(|p| json!({
            "url": format!("{api}/git/commits/{p}"),
            "sha": p,
        })).collect::<Vec<_>>(),
        "message": c.message,
        "tree": { "url": format!("{api}/git/trees/{}", c.tree), "sha": c.tree },
    })
}

/// `Commit` (as `GET /git/commits/{sha}` and `compare` return it), with files and stats.
async fn commit_json(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    dir: &FsPath,
    c: &CommitInfo,
) -> Result<Value, GitError> {
    let api = api_base(gitea, owner, name);
    let numstat = git::Git::new(
        dir,
        [
            "diff-tree",
            "-r",
            "--root",
            "--no-commit-id",
            "--numstat",
            &c.sha,
        ],
    )
    .text()
    .await?;
    let name_status = git::Git::new(
        dir,
        [
            "diff-tree",
            "-r",
            "--root",
            "--no-commit-id",
            "--name-status",
            &c.sha,
        ],
    )
    .text()
    .await?;
    let (mut additions, mut deletions) = (0i64, 0i64);
    for line in numstat.lines() {
        let mut fields = line.split('\t');
        additions += fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        deletions += fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    }
    let files: Vec<Value> = name_status
        .lines()
        .filter_map(|line| {
            let (status, path) = line.split_once('\t')?;
            let status = match status.chars().next()? {
                'A' => "added",
                'D' => "removed",
                'R' => "renamed",
                'C' => "copied",
                _ => "modified",
            };
            Some(json!({ "filename": path, "status": status }))
        })
        .collect();
    let mut commit = json!({
        "url": format!("{api}/git/commits/{}", c.sha),
        "sha": c.sha,
        "created": c.committer.rfc3339(),
        "html_url": format!("{}/{owner}/{name}/commit/{}", gitea.url(), c.sha),
        "commit": {
            "url": format!("{api}/git/commits/{}", c.sha),
            "author": commit_user(&c.author),
            "committer": commit_user(&c.committer),
            "message": c.message,
            "tree": { "url": format!("{api}/git/trees/{}", c.tree), "sha": c.tree, "created": c.committer.rfc3339() },
            "verification": verification(),
        },
        "parents": c.parents.iter().map(|p| json!({
            "url": format!("{api}/git/commits/{p}"),
            "sha": p,
        })).collect::<Vec<_>>(),
        "files": files,
        "stats": { "total": additions + deletions, "additions": additions, "deletions": deletions },
    });
    // Gitea sends `null` when no account has the email; the sandbox leaves the key out instead,
    // which clients read the same way and which the swagger schema (an object) accepts.
    if let Some(user) = user_by_email(gitea, &c.author.email) {
        commit["author"] = user;
    }
    if let Some(user) = user_by_email(gitea, &c.committer.email) {
        commit["committer"] = user;
    }
    Ok(commit)
}

/// `PayloadCommit`, the head commit of a `Branch`.
fn payload_commit_json(gitea: &Gitea, owner: &str, name: &str, c: &CommitInfo) -> Value {
    let person = |p: &git::Person| {
        let username = [&gitea.inner.writer, &gitea.inner.reader]
            .into_iter()
            .find(|u| u.email == p.email)
            .map(|u| u.login.clone())
            .unwrap_or_default();
        json!({ "name": p.name, "email": p.email, "username": username })
    };
    json!({
        "id": c.sha,
        "message": c.message,
        "url": format!("{}/{owner}/{name}/commit/{}", gitea.url(), c.sha),
        "author": person(&c.author),
        "committer": person(&c.committer),
        "verification": verification(),
        "timestamp": c.committer.rfc3339(),
    })
}

async fn get_repo(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = require_repo(&gitea, &headers, &owner, &name)?;
    Ok(Json(repo_json(&gitea, &owner, &name, &user)))
}

async fn get_branch(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, branch)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = require_repo(&gitea, &headers, &owner, &name)?;
    let head = gitea
        .branch_head(&owner, &name, &branch)
        .await
        .map_err(|e| internal(&gitea, e))?
        .ok_or_else(|| {
            api_error(
                &gitea,
                StatusCode::NOT_FOUND,
                format!("branch does not exist [name: {branch}]"),
            )
        })?;
    let dir = gitea.repo_dir(&owner, &name);
    let commit = git::read_commit(&dir, &head)
        .await
        .map_err(|e| internal(&gitea, e))?;
    let rule = gitea.protection(&owner, &name, &branch);
    let protected = rule.is_some();
    let rule = rule.unwrap_or_default();
    let can_push = user.access == Access::Write && !protected;
    Ok(Json(json!({
        "name": branch,
        "commit": payload_commit_json(&gitea, &owner, &name, &commit),
        "protected": protected,
        "required_approvals": rule.required_approvals,
        "enable_status_check": rule.enable_status_check,
        "status_check_contexts": rule.status_check_contexts,
        "user_can_push": can_push,
        "user_can_merge": user.access == Access::Write,
        "effective_branch_protection_name": if protected { branch.clone() } else { String::new() },
    })))
}

/// Resolve the `ref` query (default: the default branch) to a commit, or Gitea's 404.
pub(super) async fn resolve_ref(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    reference: Option<&str>,
) -> Result<(String, String), ApiError> {
    let reference = match reference {
        Some(r) if !r.is_empty() => r.to_owned(),
        _ => gitea.default_branch(owner, name),
    };
    let dir = gitea.repo_dir(owner, name);
    let commit = git::resolve_commit(&dir, &reference)
        .await
        .map_err(|e| internal(gitea, e))?
        .ok_or_else(|| {
            api_error(
                gitea,
                StatusCode::NOT_FOUND,
                format!("object does not exist [id: {reference}, rel_path: ]"),
            )
        })?;
    Ok((reference, commit))
}

/// `ContentsResponse` for one tree entry at `commit` (`reference` is how the client named it).
/// File content (base64) is included only when `with_content`.
pub(super) async fn contents_json(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    commit: &str,
    reference: &str,
    entry: &TreeEntry,
    with_content: bool,
) -> Result<Value, GitError> {
    let dir = gitea.repo_dir(owner, name);
    let api = api_base(gitea, owner, name);
    let web = format!("{}/{owner}/{name}", gitea.url());
    let kind = match (entry.kind.as_str(), entry.mode.as_str()) {
        ("tree", _) => "dir",
        ("commit", _) => "submodule",
        (_, "120000") => "symlink",
        _ => "file",
    };
    let path = &entry.path;
    let file_name = path.rsplit('/').next().unwrap_or(path);
    let self_url = format!("{api}/contents/{path}?ref={reference}");
    let git_url = if kind == "dir" {
        format!("{api}/git/trees/{}", entry.sha)
    } else {
        format!("{api}/git/blobs/{}", entry.sha)
    };
    let html_url = format!("{web}/src/commit/{commit}/{path}");
    let mut value = json!({
        "name": file_name,
        "path": path,
        "sha": entry.sha,
        "type": kind,
        "size": entry.size,
        "url": self_url,
        "html_url": html_url,
        "git_url": git_url,
        "_links": { "self": self_url, "git": git_url, "html": html_url },
    });
    let last = git::Git::new(&dir, ["rev-list", "-1", commit, "--", path])
        .text()
        .await?;
    if !last.is_empty() {
        let info = git::read_commit(&dir, &last).await?;
        value["last_commit_sha"] = json!(info.sha);
        value["last_commit_message"] = json!(info.message);
        value["last_author_date"] = json!(info.author.rfc3339());
        value["last_committer_date"] = json!(info.committer.rfc3339());
    }
    if kind == "file" || kind == "symlink" {
        value["download_url"] = json!(format!("{web}/raw/commit/{commit}/{path}"));
    }
    if (kind == "file" && with_content) || kind == "symlink" {
        let bytes = git::Git::new(&dir, ["cat-file", "blob", &entry.sha])
            .output()
            .await?;
        if kind == "symlink" {
            value["target"] = json!(String::from_utf8_lossy(&bytes));
        } else {
            value["encoding"] = json!("base64");
            value["content"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    Ok(value)
}

#[derive(Debug, serde::Deserialize)]
struct RefQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

async fn get_root_contents(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    Query(query): Query<RefQuery>,
) -> Result<Response, ApiError> {
    contents(
        &gitea,
        &headers,
        &owner,
        &name,
        "",
        query.reference.as_deref(),
    )
    .await
}

async fn get_contents(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, path)): Path<(String, String, String)>,
    Query(query): Query<RefQuery>,
) -> Result<Response, ApiError> {
    contents(
        &gitea,
        &headers,
        &owner,
        &name,
        &path,
        query.reference.as_deref(),
    )
    .await
}

/// A file gives one `ContentsResponse`; a directory (or the root) gives an array of them.
async fn contents(
    gitea: &Gitea,
    headers: &HeaderMap,
    owner: &str,
    name: &str,
    path: &str,
    reference: Option<&str>,
) -> Result<Response, ApiError> {
    require_repo(gitea, headers, owner, name)?;
    let (reference, commit) = resolve_ref(gitea, owner, name, reference).await?;
    let dir = gitea.repo_dir(owner, name);
    let path = path.trim_matches('/');
    let missing = || {
        api_error(
            gitea,
            StatusCode::NOT_FOUND,
            format!("object does not exist [id: {commit}, rel_path: {path}]"),
        )
    };
    let is_dir = if path.is_empty() {
        true
    } else {
        let entries = git::ls_tree(&dir, &commit, path, false)
            .await
            .map_err(|e| internal(gitea, e))?;
        let entry = entries
            .into_iter()
            .find(|e| e.path == path)
            .ok_or_else(missing)?;
        if entry.kind != "tree" {
            let value = contents_json(gitea, owner, name, &commit, &reference, &entry, true)
                .await
                .map_err(|e| internal(gitea, e))?;
            return Ok(Json(value).into_response());
        }
        true
    };
    debug_assert!(is_dir);
    let entries = git::ls_tree(&dir, &commit, path, !path.is_empty())
        .await
        .map_err(|e| internal(gitea, e))?;
    let mut list = Vec::with_capacity(entries.len());
    for entry in &entries {
        list.push(
            contents_json(gitea, owner, name, &commit, &reference, entry, false)
                .await
                .map_err(|e| internal(gitea, e))?,
        );
    }
    Ok(Json(Value::Array(list)).into_response())
}

/// A ref or object name Gitea would accept in a path (`IsValidRefPattern`, loosely).
fn is_valid_ref(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with('-')
        && !value.contains("..")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

async fn get_commit(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, sha)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_repo(&gitea, &headers, &owner, &name)?;
    if !is_valid_ref(&sha) {
        return Err(api_error(
            &gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("no valid ref or sha: {sha}"),
        ));
    }
    let dir = gitea.repo_dir(&owner, &name);
    let full = git::resolve_commit(&dir, &sha)
        .await
        .map_err(|e| internal(&gitea, e))?
        .ok_or_else(|| {
            api_error(
                &gitea,
                StatusCode::NOT_FOUND,
                format!("object does not exist [id: {sha}, rel_path: ]"),
            )
        })?;
    let info = git::read_commit(&dir, &full)
        .await
        .map_err(|e| internal(&gitea, e))?;
    let value = commit_json(&gitea, &owner, &name, &dir, &info)
        .await
        .map_err(|e| internal(&gitea, e))?;
    Ok(Json(value))
}

/// `GET /compare/{base}...{head}`: the commits reachable from head but not from base, newest first
/// (so `total_commits == 0` means head is an ancestor of, or equal to, base).
async fn compare(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, basehead)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    require_repo(&gitea, &headers, &owner, &name)?;
    if gitea.compare_refused(&owner, &name) {
        // Gitea ≤ 1.25.2 and Forgejo: `parseCompareInfo` requires `CanReadIssuesOrPulls` (v1.25.2
        // routers/api/v1/repo/pull.go:1140-1144; removed by go-gitea/gitea#36166).
        return Err(not_found_because(
            &gitea,
            "Can't read pulls or can't read UnitTypeCode",
        ));
    }
    let (base, head) = basehead
        .split_once("...")
        .or_else(|| basehead.split_once(".."))
        .ok_or_else(|| {
            api_error(
                &gitea,
                StatusCode::NOT_FOUND,
                format!("invalid compare range {basehead:?}: expected base...head"),
            )
        })?;
    let dir = gitea.repo_dir(&owner, &name);
    let mut ids = Vec::new();
    let sha_like =
        |r: &str| r.len() >= 7 && r.len() <= 40 && r.bytes().all(|b| b.is_ascii_hexdigit());
    for (i, rev) in [base, head].into_iter().enumerate() {
        let refused = sha_like(rev) && !gitea.compare_takes_commit_ids() && {
            // A hex-looking branch or tag name is still a name.
            let mut named = false;
            for prefix in ["refs/heads/", "refs/tags/"] {
                let full = format!("{prefix}{rev}");
                named |= git::resolve_commit(&dir, &full)
                    .await
                    .ok()
                    .flatten()
                    .is_some();
            }
            !named
        };
        if refused {
            // Gitea 1.22 and Forgejo < 9.0.3 resolve base and head as branch or tag names only
            // (v1.22.6 routers/api/v1/repo/pull.go `parseCompareInfo`:1103-1106 for the base,
            // :1178-1182 for the head).
            return Err(if i == 0 {
                not_found_because(&gitea, "BaseNotExist")
            } else {
                not_found(&gitea)
            });
        }
        let id = if is_valid_ref(rev) {
            git::resolve_commit(&dir, rev)
                .await
                .map_err(|e| internal(&gitea, e))?
        } else {
            None
        };
        ids.push(id.ok_or_else(|| not_found(&gitea))?);
    }
    // No merge base (unrelated histories): Gitea's compare (modules/git/repo_compare.go
    // `GetCompareInfo`) falls back to the head itself as the base, so the list is empty, which a client
    // must not read as "head contains base" (docs/research/field-gitea.md §5).
    let related = git::Git::new(&dir, ["merge-base", ids[0].as_str(), ids[1].as_str()])
        .text()
        .await
        .is_ok();
    if !related {
        return Ok(Json(json!({ "total_commits": 0, "commits": [] })));
    }
    let range = format!("{}..{}", ids[0], ids[1]);
    let listed = git::Git::new(&dir, ["rev-list", &range])
        .text()
        .await
        .map_err(|e| internal(&gitea, e))?;
    let mut commits = Vec::new();
    for sha in listed.lines().filter(|l| !l.is_empty()) {
        let info = git::read_commit(&dir, sha)
            .await
            .map_err(|e| internal(&gitea, e))?;
        commits.push(
            commit_json(&gitea, &owner, &name, &dir, &info)
                .await
                .map_err(|e| internal(&gitea, e))?,
        );
    }
    Ok(Json(
        json!({ "total_commits": commits.len(), "commits": commits }),
    ))
}

const STATES: [&str; 6] = [
    "pending", "success", "error", "failure", "warning", "skipped",
];

#[derive(Debug, serde::Deserialize)]
struct CreateStatusOption {
    #[serde(default)]
    state: String,
    #[serde(default)]
    target_url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    context: String,
}

async fn create_status(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, sha)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = require_writer(&gitea, &headers, &owner, &name)?;
    let opts: CreateStatusOption = parse_body(&gitea, &body)?;
    if !STATES.contains(&opts.state.as_str()) {
        return Err(api_error(
            &gitea,
            StatusCode::BAD_REQUEST,
            format!("invalid commit status state {:?}", opts.state),
        ));
    }
    let dir = gitea.repo_dir(&owner, &name);
    let full = if is_valid_ref(&sha) {
        git::resolve_commit(&dir, &sha)
            .await
            .map_err(|e| internal(&gitea, e))?
    } else {
        None
    };
    let full = full.ok_or_else(|| not_found(&gitea))?;
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut state = gitea.state();
    let id = state.next_id;
    state.next_id += 1;
    let status = json!({
        "id": id,
        "status": opts.state,
        "target_url": opts.target_url,
        "description": opts.description,
        "url": format!("{}/statuses/{full}", api_base(&gitea, &owner, &name)),
        "context": opts.context,
        "creator": user_json(&gitea, &user),
        "created_at": now,
        "updated_at": now,
    });
    state
        .statuses
        .entry((owner.clone(), name.clone(), full.clone()))
        .or_default()
        .push(status.clone());
    drop(state);
    // A new status re-checks the merges scheduled on this head (services/automerge/notify.go).
    let g = gitea.clone();
    tokio::spawn(async move { super::pulls::statuses_changed(&g, &owner, &name, &full).await });
    Ok((StatusCode::CREATED, Json(status)))
}

async fn list_statuses(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, sha)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require_repo(&gitea, &headers, &owner, &name)?;
    let dir = gitea.repo_dir(&owner, &name);
    let full = if is_valid_ref(&sha) {
        git::resolve_commit(&dir, &sha)
            .await
            .map_err(|e| internal(&gitea, e))?
    } else {
        None
    };
    let full = full.unwrap_or(sha);
    let wanted = query.get("state").filter(|s| !s.is_empty());
    let list: Vec<Value> = gitea
        .statuses(&owner, &name, &full)
        .into_iter()
        .filter(|s| wanted.is_none_or(|w| s["status"] == json!(w)))
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `POST /_sandbox/profile {"gitea": "1.22"}`: behave as that release line (names as
/// [`crate::profile::GiteaProfile::named`]); answers the profile and version.
async fn admin_profile(State(gitea): State<Gitea>, Json(body): Json<Value>) -> Response {
    let name = body["gitea"].as_str().unwrap_or_default();
    match crate::profile::GiteaProfile::named(name) {
        Some(p) => {
            gitea.set_profile(p);
            Json(json!({"gitea": p.name, "version": gitea.version()})).into_response()
        }
        None => api_error(
            &gitea,
            StatusCode::BAD_REQUEST,
            format!(
                "gitea: unknown profile {name:?} (gitea-1.22, gitea-1.25, gitea-1.26, forgejo-8, forgejo-12)"
            ),
        )
        .into_response(),
    }
}

/// `POST /_sandbox/repos/{owner}/{repo}/settings` with any of `{"pulls": false}` (disable the
/// pull-request unit), `{"hook_rejection": "text"}` (a declining pre-receive hook; `null` removes
/// it), `{"protect": "main"}` / `{"unprotect": "main"}` (branch protection), or `{"protect":
/// {"branch": "main", "required_approvals": 1, "enable_status_check": true,
/// "status_check_contexts": ["ci/*"]}}` (with merge requirements).
async fn admin_repo_settings(
    State(gitea): State<Gitea>,
    Path((owner, name)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    let mut result = Ok(());
    if let Some(on) = body["pulls"].as_bool() {
        result = result.and(gitea.set_pulls_enabled(&owner, &name, on));
    }
    if let Some(hook) = body.get("hook_rejection") {
        result = result.and(gitea.set_hook_rejection(&owner, &name, hook.as_str()));
    }
    if let Some(branch) = body["protect"].as_str() {
        result = result.and(gitea.protect_branch(&owner, &name, branch));
    }
    if let Some(rule) = body["protect"].as_object() {
        let branch = rule
            .get("branch")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_owned();
        match serde_json::from_value::<super::Protection>(Value::Object(rule.clone())) {
            Ok(rule) => {
                result = result.and(gitea.protect_branch_with(&owner, &name, &branch, rule))
            }
            Err(e) => {
                return api_error(&gitea, StatusCode::BAD_REQUEST, e.to_string()).into_response()
            }
        }
    }
    if let Some(branch) = body["unprotect"].as_str() {
        result = result.and(gitea.unprotect_branch(&owner, &name, branch));
    }
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => api_error(&gitea, StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}
