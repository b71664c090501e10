//! The `/api/v1` subset of Gitea, with Gitea's JSON shapes (checked against
//! `shared/specs/gitea-swagger.json` by the contract tests) and status codes.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Value};

use super::{Gitea, User};

/// A pull request the sandbox keeps in memory.
#[derive(Clone, Debug)]
pub(super) struct Pull {
    pub owner: String,
    pub repo: String,
    pub number: i64,
    pub head: String,
    pub base: String,
    pub title: String,
}

pub(super) fn router(gitea: Gitea) -> Router {
    Router::new()
        .route("/api/v1/version", get(version))
        .route("/api/v1/repos/{owner}/{repo}", get(get_repo))
        .with_state(gitea)
}

/// Gitea's error answer: the status and `{"message": ..., "url": <swagger URL>}`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
    url: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "message": self.message, "url": self.url })),
        )
            .into_response()
    }
}

pub(super) fn api_error(gitea: &Gitea, status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
        url: format!("{}/api/swagger", gitea.url()),
    }
}

async fn version() -> Json<Value> {
    Json(json!({ "version": super::VERSION }))
}

/// The authenticated user, or the 401 Gitea sends.
fn require_user(gitea: &Gitea, headers: &HeaderMap) -> Result<User, ApiError> {
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

fn user_json(gitea: &Gitea, user: &User) -> Value {
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
    let write = user.access == super::Access::Write;
    json!({
        "id": gitea.repo_id(owner, name),
        "owner": owner_json(gitea, owner),
        "name": name,
        "full_name": format!("{owner}/{name}"),
        "description": "",
        "empty": false,
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
        "default_branch": "main",
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

async fn get_repo(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = require_user(&gitea, &headers)?;
    if !gitea.repo_exists(&owner, &name) {
        return Err(api_error(
            &gitea,
            StatusCode::NOT_FOUND,
            "The target couldn't be found.",
        ));
    }
    Ok(Json(repo_json(&gitea, &owner, &name, &user)))
}
