//! Git smart HTTP at `/{owner}/{repo}.git/...` (the `.git` suffix is optional, as on Gitea), served
//! by the real `git http-backend` CGI so clone, fetch and push speak the genuine protocol (v0 and v2,
//! gzip request bodies included: the CGI inflates them itself given `HTTP_CONTENT_ENCODING`).
//!
//! This module only authenticates, applies a pending race before a push, and relays bytes: the
//! request body streams into the CGI's stdin, and its stdout (CGI headers, then the body) streams back.

use std::process::Stdio;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use http::{header, HeaderValue, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::{Access, Gitea};
use crate::git;

/// Everything that is not an API route: git smart HTTP, or 404.
pub(super) fn router(gitea: Gitea) -> Router {
    Router::new().fallback(handle).with_state(gitea)
}

/// The parts of a git URL.
struct GitPath {
    owner: String,
    repo: String,
    /// What follows the repository: `info/refs`, `git-upload-pack`, `git-receive-pack`, ...
    rest: String,
}

fn parse_git_path(path: &str) -> Option<GitPath> {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let owner = parts.next()?.to_owned();
    let repo = parts.next()?;
    let rest = parts.next()?.to_owned();
    let repo = repo.strip_suffix(".git").unwrap_or(repo).to_owned();
    let known = matches!(
        rest.as_str(),
        "info/refs" | "git-upload-pack" | "git-receive-pack" | "HEAD"
    ) || rest.starts_with("objects/");
    known.then_some(GitPath { owner, repo, rest })
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_owned()).into_response()
}

async fn handle(State(gitea): State<Gitea>, req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        return super::api::not_found(&gitea).into_response();
    }
    let Some(target) = parse_git_path(req.uri().path()) else {
        return plain(StatusCode::NOT_FOUND, "Not found.\n");
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    let is_push = target.rest == "git-receive-pack"
        || (target.rest == "info/refs"
            && query.split('&').any(|kv| kv == "service=git-receive-pack"));
    // Gitea answers 401 before revealing whether a private repository exists.
    let user = match gitea.authenticate(req.headers()) {
        Ok(Some(user)) => user.clone(),
        Ok(None) | Err(()) => {
            let mut response = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Gitea\""),
            );
            return response;
        }
    };
    if !gitea.repo_exists(&target.owner, &target.repo) {
        return plain(StatusCode::NOT_FOUND, "Repository not found\n");
    }
    if is_push && user.access != Access::Write {
        return plain(StatusCode::FORBIDDEN, "User permission denied\n");
    }
    if is_push && req.method() == http::Method::POST {
        let full = format!("{}/{}", target.owner, target.repo);
        if let Some(race) = gitea.inner.faults.take_race_any_branch(&full) {
            if let Err(e) = gitea.apply_race(&target.owner, &target.repo, &race).await {
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("sandbox: racing commit failed: {e}\n"),
                );
            }
        }
    }
    match run_cgi(&gitea, &target, &query, &user.login, is_push, req).await {
        Ok(response) => response,
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("sandbox: git http-backend failed: {e}\n"),
        ),
    }
}

/// Aborts the stdin-feeding task when the response is dropped (e.g. the client went away).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_cgi(
    gitea: &Gitea,
    target: &GitPath,
    query: &str,
    user: &str,
    may_push: bool,
    req: Request,
) -> std::io::Result<Response> {
    let (parts, body) = req.into_parts();
    let header_str = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut cmd = Command::new("git");
    git::clean_env(&mut cmd)
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", gitea.repos_root())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env(
            "PATH_INFO",
            format!("/{}/{}.git/{}", target.owner, target.repo, target.rest),
        )
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", query)
        // receive-pack is enabled only for writers, so even a bug in the check above cannot let
        // a read-only token push.
        .env("GIT_CONFIG_COUNT", "3")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env(
            "GIT_CONFIG_VALUE_0",
            if may_push { "true" } else { "false" },
        )
        // Partial clone, on by default in Gitea (`[git] DISABLE_PARTIAL_CLONE = false`), which then
        // passes these two to upload-pack.
        .env("GIT_CONFIG_KEY_1", "uploadpack.allowFilter")
        .env("GIT_CONFIG_VALUE_1", "true")
        .env("GIT_CONFIG_KEY_2", "uploadpack.allowAnySHA1InWant")
        .env("GIT_CONFIG_VALUE_2", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (name, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        // Protocol v2 is negotiated through this header.
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(value) = header_str(name) {
            cmd.env(var, value);
        }
    }
    let mut child = cmd.spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let (Some(mut stdin), Some(stdout)) = (stdin, stdout) else {
        return Err(std::io::Error::other("git http-backend pipes missing"));
    };
    // Feed the request body concurrently: the CGI may start answering before it has read it all.
    let mut body = body.into_data_stream();
    let feeder = AbortOnDrop(tokio::spawn(async move {
        while let Some(Ok(chunk)) = body.next().await {
            if stdin.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = stdin.shutdown().await;
    }));
    let mut reader = BufReader::new(stdout);
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::other(
                "git http-backend exited before sending headers",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else {
            response = response.header(name, value);
        }
    }
    let stream = futures::stream::unfold(
        Some((reader, child, feeder)),
        |state: Option<(BufReader<ChildStdout>, Child, AbortOnDrop)>| async move {
            let (mut reader, mut child, feeder) = state?;
            let mut buf = vec![0u8; 32 * 1024];
            match reader.read(&mut buf).await {
                Ok(0) => {
                    // Reap the CGI so no zombie outlives the request.
                    let _ = child.wait().await;
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                        Some((reader, child, feeder)),
                    ))
                }
                Err(e) => Some((Err(e), None)),
            }
        },
    );
    response
        .status(status)
        .body(Body::from_stream(stream))
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_paths_with_and_without_the_suffix() {
        let p = parse_git_path("/demo/gitops.git/info/refs").unwrap();
        assert_eq!(
            (p.owner.as_str(), p.repo.as_str(), p.rest.as_str()),
            ("demo", "gitops", "info/refs")
        );
        let p = parse_git_path("/demo/gitops/git-receive-pack").unwrap();
        assert_eq!(p.repo, "gitops");
        assert!(parse_git_path("/demo/gitops.git/config").is_none());
        assert!(parse_git_path("/demo/gitops.git").is_none());
        assert!(parse_git_path("/demo").is_none());
    }
}
