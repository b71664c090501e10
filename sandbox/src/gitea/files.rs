//! Contents writes: `PUT`/`POST /repos/{o}/{r}/contents/{path}` (one file) and
//! `POST /repos/{o}/{r}/contents` (`ChangeFiles`: several files in one commit).
//!
//! Semantics follow Gitea's `services/repository/files/update.go` (docs/research/gitea.md C4, C5, C7):
//! - each operation's `sha` is checked against the blob at the branch head (a per-file guard, not a
//!   per-branch one), mismatch → 422 `sha does not match [given: X, expected: Y]`;
//! - the commit is built with git plumbing on the head that was checked, then the branch is moved
//!   with a compare-and-swap `update-ref`. API writes to one repository are serialized (as if Gitea
//!   held a repository lock), so they never race each other; a `git push` or an injected race can
//!   still move the branch in between. Then the guard is re-checked against the new head: a stale
//!   file is a 422, otherwise the write fails as Gitea's does when its push back is out of date: 500.
//! - a protected branch → 403 `user cannot commit to repo [user: X]`; a read-only token → 403.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{self, api_error, internal, ApiError};
use super::{Gitea, User};
use crate::git::{self, Change, Signature};

/// `Identity`: a name and an email.
#[derive(Clone, Debug, Default, Deserialize)]
struct Identity {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
}

/// `CommitDateOptions`.
#[derive(Clone, Debug, Default, Deserialize)]
struct CommitDates {
    author: Option<String>,
    committer: Option<String>,
}

/// The fields every contents write shares (`FileOptions` in Gitea).
#[derive(Clone, Debug, Default, Deserialize)]
struct Common {
    message: Option<String>,
    branch: Option<String>,
    new_branch: Option<String>,
    #[serde(default)]
    force_push: bool,
    author: Option<Identity>,
    committer: Option<Identity>,
    dates: Option<CommitDates>,
    #[serde(default)]
    signoff: bool,
}

/// `UpdateFileOptions` / `CreateFileOptions`.
#[derive(Debug, Deserialize)]
struct FileOptions {
    content: Option<String>,
    sha: Option<String>,
    from_path: Option<String>,
    #[serde(flatten)]
    common: Common,
}

/// `ChangeFileOperation`.
#[derive(Debug, Deserialize)]
struct ChangeFileOperation {
    operation: String,
    path: String,
    content: Option<String>,
    sha: Option<String>,
    from_path: Option<String>,
}

/// `ChangeFilesOptions`.
#[derive(Debug, Deserialize)]
struct ChangeFilesOptions {
    files: Vec<ChangeFileOperation>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    Upload,
    Delete,
    Rename,
}

/// One validated operation.
#[derive(Debug)]
struct Op {
    kind: Kind,
    path: String,
    from_path: Option<String>,
    content: Option<Vec<u8>>,
    sha: Option<String>,
}

/// `PUT /contents/{path}`: update (with `sha`) or, since Gitea 1.26, create (without).
pub(super) async fn update_file(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, path)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = api::require_writer(&gitea, &headers, &owner, &name)?;
    let opts: FileOptions = api::parse_body(&gitea, &body)?;
    let sha = opts.sha.filter(|s| !s.is_empty());
    let kind = if sha.is_some() {
        Kind::Update
    } else {
        Kind::Create
    };
    let op = Op {
        kind,
        path: clean_path(&gitea, &path)?,
        from_path: opts
            .from_path
            .filter(|p| !p.is_empty())
            .map(|p| clean_path(&gitea, &p))
            .transpose()?,
        content: Some(decode(&gitea, opts.content.as_deref(), true)?),
        sha,
    };
    let status = if kind == Kind::Create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let (commit, files) = write(&gitea, &owner, &name, &user, &opts.common, vec![op]).await?;
    Ok((status, Json(file_response(commit, files, false))))
}

/// `POST /contents/{path}`: create one file; 422 if it exists.
pub(super) async fn create_file(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name, path)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = api::require_writer(&gitea, &headers, &owner, &name)?;
    let opts: FileOptions = api::parse_body(&gitea, &body)?;
    let op = Op {
        kind: Kind::Create,
        path: clean_path(&gitea, &path)?,
        from_path: None,
        content: Some(decode(&gitea, opts.content.as_deref(), true)?),
        sha: None,
    };
    let (commit, files) = write(&gitea, &owner, &name, &user, &opts.common, vec![op]).await?;
    Ok((
        StatusCode::CREATED,
        Json(file_response(commit, files, false)),
    ))
}

/// `POST /contents`: several operations in one commit; all or nothing.
pub(super) async fn change_files(
    State(gitea): State<Gitea>,
    headers: HeaderMap,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let user = api::require_writer(&gitea, &headers, &owner, &name)?;
    let opts: ChangeFilesOptions = api::parse_body(&gitea, &body)?;
    if opts.files.is_empty() {
        return Err(api_error(
            &gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[Files]: Required",
        ));
    }
    let mut ops = Vec::new();
    for file in opts.files {
        let kind = match file.operation.as_str() {
            "create" => Kind::Create,
            "update" => Kind::Update,
            "upload" => Kind::Upload,
            "delete" => Kind::Delete,
            "rename" => Kind::Rename,
            other => {
                return Err(api_error(
                    &gitea,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("[Operation]: invalid operation {other:?}"),
                ))
            }
        };
        let content_required = matches!(kind, Kind::Create | Kind::Update | Kind::Upload);
        let content = if content_required || file.content.is_some() {
            Some(decode(&gitea, file.content.as_deref(), content_required)?)
        } else {
            None
        };
        let from_path = file
            .from_path
            .filter(|p| !p.is_empty())
            .map(|p| clean_path(&gitea, &p))
            .transpose()?;
        if kind == Kind::Rename && from_path.is_none() {
            return Err(api_error(
                &gitea,
                StatusCode::UNPROCESSABLE_ENTITY,
                "rename needs from_path",
            ));
        }
        ops.push(Op {
            kind,
            path: clean_path(&gitea, &file.path)?,
            from_path,
            content,
            sha: file.sha.filter(|s| !s.is_empty()),
        });
    }
    let (commit, files) = write(&gitea, &owner, &name, &user, &opts.common, ops).await?;
    Ok((
        StatusCode::CREATED,
        Json(file_response(commit, files, true)),
    ))
}

/// `FileResponse` (one file) or `FilesResponse` (several; deleted files are `null`, as in Gitea).
fn file_response(commit: Value, files: Vec<Value>, many: bool) -> Value {
    if many {
        json!({ "files": files, "commit": commit, "verification": api::verification() })
    } else {
        json!({
            "content": files.into_iter().next().unwrap_or(Value::Null),
            "commit": commit,
            "verification": api::verification(),
        })
    }
}

/// A repository-relative path, refused (422) when Gitea would refuse it.
fn clean_path(gitea: &Gitea, raw: &str) -> Result<String, ApiError> {
    let path = raw.trim_matches('/');
    let bad = path.is_empty()
        || path.contains('\\')
        || path.contains('\0')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == ".." || part == ".git");
    if bad {
        return Err(api_error(
            gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("path contains a malformed path component [path: {raw}]"),
        ));
    }
    Ok(path.to_owned())
}

/// Decode base64 content (line breaks tolerated); 422 when missing but required, or malformed.
fn decode(gitea: &Gitea, content: Option<&str>, required: bool) -> Result<Vec<u8>, ApiError> {
    let Some(content) = content else {
        if required {
            return Err(api_error(
                gitea,
                StatusCode::UNPROCESSABLE_ENTITY,
                "[Content]: Required",
            ));
        }
        return Ok(Vec::new());
    };
    let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| {
            api_error(
                gitea,
                StatusCode::UNPROCESSABLE_ENTITY,
                "content is not valid base64",
            )
        })
}

/// Author and committer as Gitea picks them: both given → each; one given → both; none → the user.
fn signatures(
    gitea: &Gitea,
    user: &User,
    common: &Common,
) -> Result<(Signature, Signature), ApiError> {
    let given = |i: &Option<Identity>| {
        i.clone()
            .filter(|i| !i.name.is_empty() || !i.email.is_empty())
    };
    let doer = Identity {
        name: user.login.clone(),
        email: user.email.clone(),
    };
    let (author, committer) = match (given(&common.author), given(&common.committer)) {
        (Some(a), Some(c)) => (a, c),
        (Some(a), None) => (a.clone(), a),
        (None, Some(c)) => (c.clone(), c),
        (None, None) => (doer.clone(), doer.clone()),
    };
    let date = |raw: Option<&String>| -> Result<Option<String>, ApiError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let ts: jiff::Timestamp = raw.parse().map_err(|_| {
            api_error(
                gitea,
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid date {raw:?}: expected RFC 3339"),
            )
        })?;
        Ok(Some(format!("@{} +0000", ts.as_second())))
    };
    let dates = common.dates.clone().unwrap_or_default();
    let fill = |i: Identity, date: Option<String>| Signature {
        name: if i.name.is_empty() {
            doer.name.clone()
        } else {
            i.name
        },
        email: if i.email.is_empty() {
            doer.email.clone()
        } else {
            i.email
        },
        date,
    };
    Ok((
        fill(author, date(dates.author.as_ref())?),
        fill(committer, date(dates.committer.as_ref())?),
    ))
}

fn default_message(ops: &[Op]) -> String {
    ops.iter()
        .map(|op| match op.kind {
            Kind::Create => format!("Add {}", op.path),
            Kind::Update | Kind::Upload => format!("Update {}", op.path),
            Kind::Delete => format!("Delete {}", op.path),
            Kind::Rename => format!(
                "Rename {} to {}",
                op.from_path.as_deref().unwrap_or_default(),
                op.path
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The blob id at `path` in `commit` (`None`: an empty repository), `None` when absent; 422 when a
/// directory is there.
async fn blob_at(
    gitea: &Gitea,
    dir: &std::path::Path,
    commit: Option<&str>,
    path: &str,
) -> Result<Option<String>, ApiError> {
    let Some(commit) = commit else {
        return Ok(None);
    };
    let entries = git::ls_tree(dir, commit, path, false)
        .await
        .map_err(|e| internal(gitea, e))?;
    match entries.into_iter().find(|e| e.path == path) {
        None => Ok(None),
        Some(e) if e.kind == "blob" => Ok(Some(e.sha)),
        Some(_) => Err(api_error(
            gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a directory exists where a file was expected [path: {path}]"),
        )),
    }
}

/// Check every operation's guard against `head` and turn them into tree changes.
async fn plan(
    gitea: &Gitea,
    dir: &std::path::Path,
    head: Option<&str>,
    ops: &[Op],
) -> Result<Vec<Change>, ApiError> {
    // 422 on Gitea and old Forgejo, 409 on new Forgejo (the profile's `stale_sha_status`).
    let stale = StatusCode::from_u16(gitea.profile().stale_sha_status)
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let mismatch = |given: &str, expected: &str| {
        api_error(
            gitea,
            stale,
            format!("sha does not match [given: {given}, expected: {expected}]"),
        )
    };
    let missing = |path: &str| {
        api_error(
            gitea,
            StatusCode::NOT_FOUND,
            format!("repository file does not exist [path: {path}]"),
        )
    };
    let exists = |path: &str| {
        api_error(
            gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("repository file already exists [path: {path}]"),
        )
    };
    let mut changes = Vec::new();
    for op in ops {
        let source = op.from_path.as_deref().unwrap_or(&op.path);
        let current = blob_at(gitea, dir, head, source).await?;
        let check_sha = |current: &str| match &op.sha {
            Some(given) if given != current => Err(mismatch(given, current)),
            _ => Ok(()),
        };
        match op.kind {
            Kind::Create => {
                if current.is_some() {
                    return Err(exists(source));
                }
            }
            Kind::Update | Kind::Delete | Kind::Rename => {
                let current = current.as_deref().ok_or_else(|| missing(source))?;
                check_sha(current)?;
            }
            Kind::Upload => {
                if let Some(current) = &current {
                    check_sha(current)?;
                }
            }
        }
        let moved = op.from_path.as_deref().is_some_and(|from| from != op.path);
        if moved {
            if blob_at(gitea, dir, head, &op.path).await?.is_some() {
                return Err(exists(&op.path));
            }
            changes.push(Change::Delete {
                path: source.to_owned(),
            });
        }
        match op.kind {
            Kind::Delete => changes.push(Change::Delete {
                path: op.path.clone(),
            }),
            Kind::Rename if op.content.is_none() => {
                let blob = current.unwrap_or_default();
                let content = git::Git::new(dir, ["cat-file", "blob", &blob])
                    .output()
                    .await
                    .map_err(|e| internal(gitea, e))?;
                changes.push(Change::Write {
                    path: op.path.clone(),
                    content,
                });
            }
            _ => changes.push(Change::Write {
                path: op.path.clone(),
                content: op.content.clone().unwrap_or_default(),
            }),
        }
    }
    Ok(changes)
}

/// Gitea's binding limits (modules/structs/repo_file.go, `MaxSize` counts characters): a violation is
/// 422 `[Field]: MaxSize` naming the Go field of the first one (routers/api/v1/api.go `bind`, v1.25.2
/// :762-772; the same wording on 1.22 and Forgejo).
fn check_sizes(gitea: &Gitea, common: &Common, ops: &[Op]) -> Result<(), ApiError> {
    let too_long = |v: Option<&str>, max: usize| v.is_some_and(|v| v.chars().count() > max);
    let identities = [&common.author, &common.committer];
    let checks = [
        ("BranchName", too_long(common.branch.as_deref(), 100)),
        ("NewBranchName", too_long(common.new_branch.as_deref(), 100)),
        (
            "Name",
            identities
                .iter()
                .any(|i| too_long(i.as_ref().map(|i| i.name.as_str()), 100)),
        ),
        (
            "Email",
            identities
                .iter()
                .any(|i| too_long(i.as_ref().map(|i| i.email.as_str()), 254)),
        ),
        ("Path", ops.iter().any(|o| too_long(Some(&o.path), 500))),
    ];
    match checks.iter().find(|(_, bad)| *bad) {
        Some((field, _)) => Err(api_error(
            gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("[{field}]: MaxSize"),
        )),
        None => Ok(()),
    }
}

/// Commit `ops` as described in the module docs; returns the `FileCommitResponse` and one
/// `ContentsResponse` (or `null` for a deletion) per operation.
async fn write(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    user: &User,
    common: &Common,
    ops: Vec<Op>,
) -> Result<(Value, Vec<Value>), ApiError> {
    let base_branch = common
        .branch
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| gitea.default_branch(owner, name));
    let target = common
        .new_branch
        .clone()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| base_branch.clone());
    let creating_branch = target != base_branch;
    check_sizes(gitea, common, &ops)?;
    if super::check_branch(&target).is_err() {
        return Err(api_error(
            gitea,
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("invalid branch name [name: {target}]"),
        ));
    }
    if gitea.is_protected(owner, name, &target) {
        return Err(api_error(
            gitea,
            StatusCode::FORBIDDEN,
            format!("user cannot commit to repo [user: {}]", user.login),
        ));
    }
    if let Some(output) = gitea.hook_rejection(owner, name) {
        // The server pushes its temporary clone through the hooks; a decline is 403 with the hook's
        // text on Gitea ≥ 1.26 (go-gitea/gitea#35592), an unmapped error before — a 500 whose message
        // production mode replaces with nothing.
        return Err(match gitea.profile().hook_rejection_status {
            403 => api_error(gitea, StatusCode::FORBIDDEN, output),
            _ => api_error(gitea, StatusCode::INTERNAL_SERVER_ERROR, ""),
        });
    }
    let (author, committer) = signatures(gitea, user, common)?;
    let mut message = common
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| default_message(&ops));
    if common.signoff {
        message.push_str(&format!(
            "\n\nSigned-off-by: {} <{}>",
            committer.name, committer.email
        ));
    }
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let dir = gitea.repo_dir(owner, name);
    let repository = format!("{owner}/{name}");
    let lock = gitea.write_lock(owner, name);
    let _serialized = lock.lock().await;

    let mut raced = false;
    loop {
        let head = gitea
            .branch_head(owner, name, &base_branch)
            .await
            .map_err(|e| internal(gitea, e))?;
        // Only an empty repository's default branch may be born by a write, as on Gitea.
        let empty = head.is_none()
            && base_branch == gitea.default_branch(owner, name)
            && git::Git::new(&dir, ["for-each-ref", "--count=1", "refs/heads/"])
                .text()
                .await
                .map_err(|e| internal(gitea, e))?
                .is_empty();
        if head.is_none() && !empty {
            return Err(api_error(
                gitea,
                StatusCode::NOT_FOUND,
                format!("branch does not exist [name: {base_branch}]"),
            ));
        }
        let old_target = if creating_branch {
            let current = gitea
                .branch_head(owner, name, &target)
                .await
                .map_err(|e| internal(gitea, e))?;
            if current.is_some() && !common.force_push {
                return Err(api_error(
                    gitea,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("branch already exists [name: {target}]"),
                ));
            }
            current
        } else {
            head.clone()
        };
        let changes = plan(gitea, &dir, head.as_deref(), &ops).await?;
        if raced {
            // The guard still holds on the moved head, but the server's push back was out of date:
            // real Gitea reports that as a 500 (ErrPushOutOfDate is not mapped), and so do we.
            return Err(api_error(
                gitea,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Unable to push back to repo from temporary repo: {repository} (branch: {target}): failed to update ref: the branch moved meanwhile"),
            ));
        }
        let commit = git::build_commit(
            &dir,
            head.as_deref(),
            &changes,
            &message,
            &author,
            &committer,
        )
        .await
        .map_err(|e| internal(gitea, e))?;
        if let Some(race) = gitea.inner.faults.take_race(&repository, &target) {
            gitea
                .apply_race(owner, name, &race)
                .await
                .map_err(|e| internal(gitea, e))?;
        }
        let moved = git::cas_branch(&dir, &target, &commit, old_target.as_deref())
            .await
            .map_err(|e| internal(gitea, e))?;
        if moved {
            return respond(gitea, owner, name, &commit, &ops).await;
        }
        raced = true;
    }
}

async fn respond(
    gitea: &Gitea,
    owner: &str,
    name: &str,
    commit: &str,
    ops: &[Op],
) -> Result<(Value, Vec<Value>), ApiError> {
    let dir = gitea.repo_dir(owner, name);
    let info = git::read_commit(&dir, commit)
        .await
        .map_err(|e| internal(gitea, e))?;
    let mut files = Vec::new();
    for op in ops {
        if op.kind == Kind::Delete {
            files.push(Value::Null);
            continue;
        }
        let entries = git::ls_tree(&dir, commit, &op.path, false)
            .await
            .map_err(|e| internal(gitea, e))?;
        match entries.iter().find(|e| e.path == op.path) {
            Some(entry) => files.push(
                api::contents_json(gitea, owner, name, commit, commit, entry, true)
                    .await
                    .map_err(|e| internal(gitea, e))?,
            ),
            None => files.push(Value::Null),
        }
    }
    Ok((api::file_commit_json(gitea, owner, name, &info), files))
}
