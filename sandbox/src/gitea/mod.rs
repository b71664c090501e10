//! The Gitea double: real bare repositories served over git smart HTTP by the real
//! `git http-backend`, plus the `/api/v1` subset the deploy step uses, on one HTTP server like real
//! Gitea.
//!
//! Repositories live at `<state_dir>/repos/<owner>/<name>.git`. All writes (API or push) end in a
//! compare-and-swap of the branch ref, so concurrent writers interleave as on a real server: nobody's
//! commit is lost, and a stale writer is told so. Behaviour follows the research notes
//! (`docs/research/gitea.md`, parts B and C) and the shapes of `sandbox/specs/gitea-swagger.json`.
//!
//! Auth is Gitea's: `Authorization: token T`, `Bearer T`, or Basic with any user and the token as
//! password (or as user, when the password is empty or `x-oauth-basic`). The write token may push and
//! write through the API; the read-only token may only read (403 otherwise). Tokens are compared and
//! then forgotten: they are never logged or echoed.

mod api;
mod files;
mod github;
mod pulls;
mod smart_http;

pub use pulls::Protection;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use base64::Engine;

use crate::faults::{Faults, Race};
use crate::git::{self, Change, GitError, Signature};
use crate::profile::GiteaProfile;

/// Errors of the Gitea double's library calls (HTTP errors are answered, not returned).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The repository already exists.
    #[error("repository {owner}/{name} already exists")]
    RepoExists {
        /// Owner.
        owner: String,
        /// Name.
        name: String,
    },
    /// No such repository.
    #[error("repository {owner}/{name} does not exist")]
    RepoNotFound {
        /// Owner.
        owner: String,
        /// Name.
        name: String,
    },
    /// An owner, repository or branch name the sandbox refuses (empty, `..`, slashes, ...).
    #[error("invalid {what} {value:?}: use letters, digits, `-`, `_` and `.`")]
    InvalidName {
        /// What was named (`owner`, `repository`, `branch`).
        what: &'static str,
        /// The refused value.
        value: String,
    },
    /// A file of the state directory could not be written.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The branch moved under every retry of a seeding commit.
    #[error("branch {branch} of {owner}/{name} kept moving; gave up committing")]
    Contended {
        /// Owner.
        owner: String,
        /// Name.
        name: String,
        /// Branch.
        branch: String,
    },
}

/// A pull request as tests look at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullSummary {
    /// Its number.
    pub number: i64,
    /// Head branch.
    pub head: String,
    /// Base branch.
    pub base: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Still open.
    pub open: bool,
    /// Merged.
    pub merged: bool,
    /// The base's tip the merge made.
    pub merge_commit_sha: Option<String>,
    /// Number of labels.
    pub labels: usize,
    /// Its comments' bodies.
    pub comments: Vec<String>,
    /// A merge is scheduled for when its requirements are met (`merge_when_checks_succeed`, GitHub's
    /// auto-merge).
    pub auto_merge: bool,
}

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read repositories and the API.
    Read,
    /// Also push and write through the API.
    Write,
}

/// A user the sandbox knows, identified by a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Numeric id.
    pub id: i64,
    /// Login name.
    pub login: String,
    /// Email address (also used as the default author of API commits).
    pub email: String,
    /// What the user's token may do.
    pub access: Access,
}

/// Settings of the Gitea double.
#[derive(Clone, Debug)]
pub struct GiteaConfig {
    /// `<state_dir>/repos`.
    pub repos_root: PathBuf,
    /// The server's base URL (`http://127.0.0.1:PORT`), for links in responses.
    pub base_url: String,
    /// Token with write access (user `demo`).
    pub token: String,
    /// Token with read access only (user `reader`).
    pub read_only_token: String,
}

/// A handle on the Gitea double (cheap to clone).
#[derive(Clone, Debug)]
pub struct Gitea {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: GiteaConfig,
    faults: Faults,
    writer: User,
    reader: User,
    state: Mutex<State>,
}

/// In-memory data Gitea keeps in its database.
#[derive(Debug, Default)]
struct State {
    repo_ids: HashMap<(String, String), i64>,
    protected: HashSet<(String, String, String)>,
    statuses: HashMap<(String, String, String), Vec<serde_json::Value>>,
    pulls: Vec<pulls::Pull>,
    /// Merge requirements of the protected branches that have some.
    protections: HashMap<(String, String, String), Protection>,
    /// Labels per repository: (id, name).
    labels: HashMap<(String, String), Vec<(i64, String)>>,
    next_id: i64,
    race_counter: u64,
    write_locks: HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>,
    /// The release line this server behaves as.
    profile: Option<GiteaProfile>,
    /// The exact version `/version` answers (`None`: the profile's).
    version: Option<String>,
    /// Repositories whose pull-request unit is disabled.
    pulls_disabled: HashSet<(String, String)>,
    /// Repositories whose pre-receive hook declines every push, with the hook's output.
    hook_rejections: HashMap<(String, String), String>,
    /// `[service] REQUIRE_SIGNIN_VIEW = true`: the API answers only signed-in users.
    require_signin_view: bool,
}

impl Gitea {
    /// Behaves as the release line `profile` where releases differ (see [`crate::profile`]).
    pub fn set_profile(&self, profile: GiteaProfile) {
        let mut state = self.state();
        state.profile = Some(profile);
        state.version = None;
    }

    /// The release line this server behaves as (default: [`GiteaProfile::NEWEST`]).
    pub fn profile(&self) -> GiteaProfile {
        self.state().profile.unwrap_or(GiteaProfile::NEWEST)
    }

    /// Answers `version` on `GET /version` and behaves as its release line (e.g. `1.22.6`: compare
    /// takes no commit IDs); a version no profile knows behaves as the newest.
    pub fn set_version(&self, version: &str) {
        let mut state = self.state();
        state.profile = Some(GiteaProfile::for_version(version).unwrap_or(GiteaProfile::NEWEST));
        state.version = Some(version.to_owned());
    }

    /// The version `GET /version` answers.
    pub fn version(&self) -> String {
        let state = self.state();
        state.version.clone().unwrap_or_else(|| {
            state
                .profile
                .unwrap_or(GiteaProfile::NEWEST)
                .version
                .to_owned()
        })
    }

    /// `[service] REQUIRE_SIGNIN_VIEW`: with it, every API route, `/version` included, refuses requests
    /// without a valid token with 403 "Only signed in user is allowed to call APIs." (routers/api/v1/
    /// api.go `verifyAuthWithOptions`; docs/research/field-gitea.md §6). Forgejo keeps `/version` public.
    pub fn set_require_signin_view(&self, on: bool) {
        self.state().require_signin_view = on;
    }

    /// True under [`Gitea::set_require_signin_view`] (never on Forgejo for `/version`).
    pub(crate) fn requires_signin_view(&self) -> bool {
        self.state().require_signin_view
    }

    /// Disables (or enables) the pull-request unit of `owner/name` (repository settings → "Pull
    /// Requests"). Where the profile's compare needs that unit, compare answers 404.
    ///
    /// # Errors
    /// No such repository.
    pub fn set_pulls_enabled(&self, owner: &str, name: &str, enabled: bool) -> Result<(), Error> {
        self.existing_repo(owner, name)?;
        let key = (owner.to_owned(), name.to_owned());
        let mut state = self.state();
        if enabled {
            state.pulls_disabled.remove(&key);
        } else {
            state.pulls_disabled.insert(key);
        }
        Ok(())
    }

    /// True when the compare API of `owner/name` answers 404 because pull requests are disabled.
    pub(crate) fn compare_refused(&self, owner: &str, name: &str) -> bool {
        let state = self.state();
        state
            .profile
            .unwrap_or(GiteaProfile::NEWEST)
            .compare_needs_pulls
            && state
                .pulls_disabled
                .contains(&(owner.to_owned(), name.to_owned()))
    }

    /// A server-side pre-receive hook (a `pre-receive.d` script an admin installed) declines every
    /// push to `owner/name` printing `output` (`None` removes it). Git pushes see the hook's text
    /// and "pre-receive hook declined"; contents-API writes get the profile's status (403 with the
    /// text on Gitea ≥ 1.26, a 500 whose message production mode hides before).
    ///
    /// # Errors
    /// No such repository, or the hook's file could not be written.
    pub fn set_hook_rejection(
        &self,
        owner: &str,
        name: &str,
        output: Option<&str>,
    ) -> Result<(), Error> {
        self.existing_repo(owner, name)?;
        let key = (owner.to_owned(), name.to_owned());
        let file = self.repo_dir(owner, name).join(HOOK_REJECTION);
        let io = |source| Error::Io {
            path: file.clone(),
            source,
        };
        match output {
            Some(text) => {
                std::fs::write(&file, format!("{text}\n")).map_err(io)?;
                self.state().hook_rejections.insert(key, text.to_owned());
            }
            None => {
                if file.exists() {
                    std::fs::remove_file(&file).map_err(io)?;
                }
                self.state().hook_rejections.remove(&key);
            }
        }
        Ok(())
    }

    /// The output of the declining hook of `owner/name`, if one is installed.
    pub(crate) fn hook_rejection(&self, owner: &str, name: &str) -> Option<String> {
        self.state()
            .hook_rejections
            .get(&(owner.to_owned(), name.to_owned()))
            .cloned()
    }

    /// True when the compare API resolves commit IDs (Gitea ≥ 1.23, new Forgejo).
    pub(crate) fn compare_takes_commit_ids(&self) -> bool {
        self.profile().compare_takes_commit_ids
    }
}

impl Gitea {
    /// A Gitea double over the repositories under `config.repos_root`, consulting `faults` for
    /// races.
    pub fn new(config: GiteaConfig, faults: Faults) -> Self {
        Gitea {
            inner: Arc::new(Inner {
                config,
                faults,
                writer: User {
                    id: 1,
                    login: "demo".into(),
                    email: "demo@sandbox.invalid".into(),
                    access: Access::Write,
                },
                reader: User {
                    id: 2,
                    login: "reader".into(),
                    email: "reader@sandbox.invalid".into(),
                    access: Access::Read,
                },
                state: Mutex::new(State {
                    next_id: 1,
                    ..State::default()
                }),
            }),
        }
    }

    /// The axum router serving the API and git smart HTTP; serve it with [`crate::http`].
    pub fn router(&self) -> Router {
        api::router(self.clone())
            .merge(github::router(self.clone()))
            .merge(smart_http::router(self.clone()))
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// The bare repository directory of `owner/name` (whether or not it exists).
    pub fn repo_dir(&self, owner: &str, name: &str) -> PathBuf {
        self.inner
            .config
            .repos_root
            .join(owner)
            .join(format!("{name}.git"))
    }

    /// `<state_dir>/repos`, the `GIT_PROJECT_ROOT` of `git http-backend`.
    pub fn repos_root(&self) -> &Path {
        &self.inner.config.repos_root
    }

    /// Create an empty bare repository `owner/name` whose default branch is `default_branch`.
    ///
    /// # Errors
    /// A name is invalid, the repository exists, or git failed.
    pub async fn create_repo(
        &self,
        owner: &str,
        name: &str,
        default_branch: &str,
    ) -> Result<(), Error> {
        check_name("owner", owner)?;
        check_name("repository", name)?;
        check_branch(default_branch)?;
        let dir = self.repo_dir(owner, name);
        if dir.exists() {
            return Err(Error::RepoExists {
                owner: owner.into(),
                name: name.into(),
            });
        }
        let parent = dir.parent().unwrap_or(&dir).to_owned();
        std::fs::create_dir_all(&parent).map_err(|source| Error::Io {
            path: parent.clone(),
            source,
        })?;
        let dir_arg = dir.to_string_lossy().into_owned();
        git::Git::new(
            &parent,
            [
                "init",
                "--quiet",
                "--bare",
                &format!("--initial-branch={default_branch}"),
                &dir_arg,
            ],
        )
        .output()
        .await?;
        install_pre_receive_hook(&dir)?;
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        state.repo_ids.insert((owner.into(), name.into()), id);
        Ok(())
    }

    /// The branch `HEAD` of `owner/name` points at (`main` when unreadable).
    pub fn default_branch(&self, owner: &str, name: &str) -> String {
        std::fs::read_to_string(self.repo_dir(owner, name).join("HEAD"))
            .ok()
            .and_then(|head| {
                head.trim()
                    .strip_prefix("ref: refs/heads/")
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "main".to_owned())
    }

    /// Whether `owner/name` exists.
    pub fn repo_exists(&self, owner: &str, name: &str) -> bool {
        check_name("owner", owner).is_ok()
            && check_name("repository", name).is_ok()
            && self.repo_dir(owner, name).join("HEAD").is_file()
    }

    /// Commit `files` (path, contents) onto `branch` (created when missing) with git plumbing and a
    /// compare-and-swap ref update, retrying if the branch moves meanwhile. Returns the new commit id.
    /// Author and committer are the `demo` user. A seeding helper for tests; it ignores branch
    /// protection and races.
    ///
    /// # Errors
    /// No such repository, or git failed.
    pub async fn commit_files(
        &self,
        owner: &str,
        name: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> Result<String, Error> {
        let changes: Vec<Change> = files
            .iter()
            .map(|(path, content)| Change::Write {
                path: (*path).to_owned(),
                content: content.as_bytes().to_vec(),
            })
            .collect();
        let who = Signature {
            name: self.inner.writer.login.clone(),
            email: self.inner.writer.email.clone(),
            date: None,
        };
        self.commit_changes(
            owner,
            name,
            branch,
            message,
            &who,
            &Planned::Files(&changes),
        )
        .await
    }

    /// Commits `planned` onto `branch`, computing the changes from the head they will be committed
    /// on; when the branch moves meanwhile, they are computed again on the new head.
    async fn commit_changes(
        &self,
        owner: &str,
        name: &str,
        branch: &str,
        message: &str,
        who: &Signature,
        planned: &Planned<'_>,
    ) -> Result<String, Error> {
        check_branch(branch)?;
        let dir = self.existing_repo(owner, name)?;
        for _ in 0..20 {
            let head = self.branch_head(owner, name, branch).await?;
            let changes = match planned {
                Planned::Files(changes) => changes.to_vec(),
                Planned::AppendLine { path, line } => {
                    let mut content = match head.as_deref() {
                        Some(head) => self.read_file(owner, name, head, path).await?,
                        None => None,
                    }
                    .unwrap_or_default();
                    if !content.is_empty() && !content.ends_with(b"\n") {
                        content.push(b'\n');
                    }
                    content.extend_from_slice(line.as_bytes());
                    content.push(b'\n');
                    vec![Change::Write {
                        path: (*path).to_owned(),
                        content,
                    }]
                }
            };
            let commit =
                git::build_commit(&dir, head.as_deref(), &changes, message, who, who).await?;
            if git::cas_branch(&dir, branch, &commit, head.as_deref()).await? {
                return Ok(commit);
            }
        }
        Err(Error::Contended {
            owner: owner.into(),
            name: name.into(),
            branch: branch.into(),
        })
    }

    /// The commit id at the head of `branch`, or `None` when the branch does not exist.
    ///
    /// # Errors
    /// No such repository, or git failed.
    pub async fn branch_head(
        &self,
        owner: &str,
        name: &str,
        branch: &str,
    ) -> Result<Option<String>, Error> {
        let dir = self.existing_repo(owner, name)?;
        if check_branch(branch).is_err() {
            return Ok(None);
        }
        Ok(git::resolve_commit(&dir, &format!("refs/heads/{branch}")).await?)
    }

    /// The commit `rev` (a branch, tag, `refs/...` name or commit id, full or abbreviated) names in
    /// `owner/name`, or `None` when it names none.
    ///
    /// # Errors
    /// No such repository, or git failed.
    pub async fn resolve(
        &self,
        owner: &str,
        name: &str,
        rev: &str,
    ) -> Result<Option<String>, Error> {
        let dir = self.existing_repo(owner, name)?;
        Ok(git::resolve_commit(&dir, rev).await?)
    }

    /// The contents of `path` at `rev` (a branch, tag or commit id), or `None` when either is missing.
    ///
    /// # Errors
    /// No such repository, or git failed.
    pub async fn read_file(
        &self,
        owner: &str,
        name: &str,
        rev: &str,
        path: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let dir = self.existing_repo(owner, name)?;
        let Some(commit) = git::resolve_commit(&dir, rev).await? else {
            return Ok(None);
        };
        let entries = git::ls_tree(&dir, &commit, path.trim_matches('/'), false).await?;
        match entries.first() {
            Some(e) if e.kind == "blob" => Ok(Some(
                git::Git::new(&dir, ["cat-file", "blob", &e.sha])
                    .output()
                    .await?,
            )),
            _ => Ok(None),
        }
    }

    /// Every file path under `dir_path` (recursively; empty for the whole tree) at `rev`, sorted.
    /// Empty when `rev` or the directory is missing.
    ///
    /// # Errors
    /// No such repository, or git failed.
    pub async fn list_files(
        &self,
        owner: &str,
        name: &str,
        rev: &str,
        dir_path: &str,
    ) -> Result<Vec<String>, Error> {
        let dir = self.existing_repo(owner, name)?;
        let Some(commit) = git::resolve_commit(&dir, rev).await? else {
            return Ok(Vec::new());
        };
        let mut args = vec![
            "ls-tree".to_owned(),
            "-r".into(),
            "-z".into(),
            "--name-only".into(),
            "--full-tree".into(),
            commit,
        ];
        let dir_path = dir_path.trim_matches('/');
        if !dir_path.is_empty() {
            args.push("--".into());
            args.push(format!("{dir_path}/"));
        }
        let out = git::Git::new(&dir, args).output().await?;
        let mut files: Vec<String> = out
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        files.sort();
        Ok(files)
    }

    /// Protect `branch` of `owner/name`: pushes to it are declined by the pre-receive hook and API
    /// writes to it get 403, as with a Gitea branch protection rule that allowlists nobody.
    ///
    /// # Errors
    /// No such repository, or the hook's list could not be written.
    pub fn protect_branch(&self, owner: &str, name: &str, branch: &str) -> Result<(), Error> {
        self.existing_repo(owner, name)?;
        self.state()
            .protected
            .insert((owner.into(), name.into(), branch.into()));
        self.write_protected_list(owner, name)
    }

    /// Protect `branch` as [`Gitea::protect_branch`] does, with merge requirements: approvals and
    /// required status checks, which pull-request merges (and auto-merges) must meet.
    ///
    /// # Errors
    /// No such repository, or the hook's list could not be written.
    pub fn protect_branch_with(
        &self,
        owner: &str,
        name: &str,
        branch: &str,
        rule: Protection,
    ) -> Result<(), Error> {
        self.protect_branch(owner, name, branch)?;
        self.state()
            .protections
            .insert((owner.into(), name.into(), branch.into()), rule);
        Ok(())
    }

    /// The merge requirements of `branch` (`None`: not protected; protected without any: default).
    pub fn protection(&self, owner: &str, name: &str, branch: &str) -> Option<Protection> {
        if !self.is_protected(owner, name, branch) {
            return None;
        }
        Some(
            self.state()
                .protections
                .get(&(owner.into(), name.into(), branch.into()))
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// Creates a label in `owner/name`; returns its id.
    pub fn add_label(&self, owner: &str, name: &str, label: &str) -> i64 {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        state
            .labels
            .entry((owner.into(), name.into()))
            .or_default()
            .push((id, label.into()));
        id
    }

    /// The labels of `owner/name`: (id, name).
    pub fn labels(&self, owner: &str, name: &str) -> Vec<(i64, String)> {
        self.state()
            .labels
            .get(&(owner.into(), name.into()))
            .cloned()
            .unwrap_or_default()
    }

    /// A fresh id (comments, reviews, statuses share Gitea's sequence here).
    pub(crate) fn next_id(&self) -> i64 {
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        id
    }

    /// True unless the repository's pull-request unit is disabled.
    pub fn pulls_enabled(&self, owner: &str, name: &str) -> bool {
        !self
            .state()
            .pulls_disabled
            .contains(&(owner.to_owned(), name.to_owned()))
    }

    /// Someone (`login`, not the token's user) reviews pull request `number` at its head:
    /// `APPROVED`, `REQUEST_CHANGES` or `COMMENT`; a scheduled merge is re-checked.
    pub async fn review_pull(
        &self,
        owner: &str,
        name: &str,
        number: i64,
        login: &str,
        state: &str,
    ) {
        pulls::review(self, owner, name, number, login, state).await;
    }

    /// Remove the protection of `branch`.
    ///
    /// # Errors
    /// No such repository, or the hook's list could not be written.
    pub fn unprotect_branch(&self, owner: &str, name: &str, branch: &str) -> Result<(), Error> {
        self.existing_repo(owner, name)?;
        self.state()
            .protected
            .remove(&(owner.into(), name.into(), branch.into()));
        self.write_protected_list(owner, name)
    }

    /// Whether `branch` of `owner/name` is protected.
    pub fn is_protected(&self, owner: &str, name: &str, branch: &str) -> bool {
        self.state()
            .protected
            .contains(&(owner.into(), name.into(), branch.into()))
    }

    /// The commit statuses posted for `sha` (Gitea's `CommitStatus` JSON, newest first).
    pub fn statuses(&self, owner: &str, name: &str, sha: &str) -> Vec<serde_json::Value> {
        let mut list = self
            .state()
            .statuses
            .get(&(owner.into(), name.into(), sha.into()))
            .cloned()
            .unwrap_or_default();
        list.reverse();
        list
    }

    /// The pull requests opened so far.
    pub fn pulls(&self, owner: &str, name: &str) -> Vec<PullSummary> {
        self.state()
            .pulls
            .iter()
            .filter(|p| p.owner == owner && p.repo == name)
            .map(|p| PullSummary {
                number: p.number,
                head: p.head.clone(),
                base: p.base.clone(),
                title: p.title.clone(),
                body: p.body.clone(),
                open: !p.closed,
                merged: p.merged,
                merge_commit_sha: p.merge_commit_sha.clone(),
                labels: p.labels.len(),
                comments: p.comments.clone(),
                auto_merge: p.auto_merge.is_some(),
            })
            .collect()
    }

    /// The user a request's `Authorization` header authenticates, `Ok(None)` when it has none,
    /// `Err(())` when it carries an unknown token or a malformed value.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Option<&User>, ()> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| ())?;
        let (scheme, rest) = value.trim().split_once(' ').ok_or(())?;
        let rest = rest.trim();
        let token = match scheme.to_ascii_lowercase().as_str() {
            "token" | "bearer" => rest.to_owned(),
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .map_err(|_| ())?;
                let decoded = String::from_utf8(decoded).map_err(|_| ())?;
                let (user, password) = decoded.split_once(':').unwrap_or((&decoded, ""));
                // services/auth/basic.go: an empty password or `x-oauth-basic` means the user
                // name is the token.
                if password.is_empty() || password == "x-oauth-basic" {
                    user.to_owned()
                } else {
                    password.to_owned()
                }
            }
            _ => return Err(()),
        };
        if !token.is_empty() && constant_time_eq(&token, &self.inner.config.token) {
            Ok(Some(&self.inner.writer))
        } else if !token.is_empty() && constant_time_eq(&token, &self.inner.config.read_only_token)
        {
            Ok(Some(&self.inner.reader))
        } else {
            Err(())
        }
    }

    fn existing_repo(&self, owner: &str, name: &str) -> Result<PathBuf, Error> {
        if self.repo_exists(owner, name) {
            Ok(self.repo_dir(owner, name))
        } else {
            Err(Error::RepoNotFound {
                owner: owner.into(),
                name: name.into(),
            })
        }
    }

    fn repo_id(&self, owner: &str, name: &str) -> i64 {
        let mut state = self.state();
        if let Some(id) = state.repo_ids.get(&(owner.to_owned(), name.to_owned())) {
            return *id;
        }
        // A repository created on disk behind the sandbox's back still gets a stable id.
        let id = state.next_id;
        state.next_id += 1;
        state.repo_ids.insert((owner.into(), name.into()), id);
        id
    }

    fn write_protected_list(&self, owner: &str, name: &str) -> Result<(), Error> {
        let mut branches: Vec<String> = self
            .state()
            .protected
            .iter()
            .filter(|(o, n, _)| o == owner && n == name)
            .map(|(_, _, b)| b.clone())
            .collect();
        branches.sort();
        let path = self.repo_dir(owner, name).join(PROTECTED_LIST);
        let mut text = branches.join("\n");
        text.push('\n');
        std::fs::write(&path, text).map_err(|source| Error::Io { path, source })
    }

    /// Apply a pending race: commit a line onto the race's file so the branch moves under the
    /// writer that is about to write. The line is appended to the file as it is in the commit the
    /// racing commit builds on, so the racer never undoes another write.
    async fn apply_race(&self, owner: &str, name: &str, race: &Race) -> Result<String, Error> {
        let n = {
            let mut state = self.state();
            state.race_counter += 1;
            state.race_counter
        };
        let who = Signature {
            name: "racer".into(),
            email: "racer@sandbox.invalid".into(),
            date: None,
        };
        self.commit_changes(
            owner,
            name,
            &race.branch,
            &format!("sandbox: racing commit {n}"),
            &who,
            &Planned::AppendLine {
                path: &race.path,
                line: &format!("# racing commit {n}"),
            },
        )
        .await
    }

    /// The lock serializing API writes to one repository (pushes do not take it; they meet API
    /// writes only at the compare-and-swap of the ref).
    fn write_lock(&self, owner: &str, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.state()
            .write_locks
            .entry((owner.into(), name.into()))
            .or_default()
            .clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the maps consistent, so a poisoned lock is still usable.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The file in a bare repository holding a declining hook's output (see [`Gitea::set_hook_rejection`]).
const HOOK_REJECTION: &str = "sandbox-hook-rejection";

/// The file in a bare repository listing its protected branches, one per line, read by the hook.
const PROTECTED_LIST: &str = "sandbox-protected-branches";

/// Gitea declines pushes to protected branches in its pre-receive hook; so does the sandbox, with
/// Gitea's wording, so the pushing client sees the same `remote rejected (pre-receive hook declined)`.
fn install_pre_receive_hook(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let hook = dir.join("hooks").join("pre-receive");
    let script = format!(
        "#!/bin/sh\n\
         # gitops-sandbox: branch protection, as Gitea's pre-receive hook enforces it.\n\
         status=0\n\
         if [ -f {HOOK_REJECTION} ]; then cat {HOOK_REJECTION} >&2; exit 1; fi\n\
         while read -r old new ref; do\n\
         \x20 branch=${{ref#refs/heads/}}\n\
         \x20 if [ -f {PROTECTED_LIST} ] && grep -qxF \"$branch\" {PROTECTED_LIST}; then\n\
         \x20   echo \"Gitea: Not allowed to push to protected branch $branch\" >&2\n\
         \x20   status=1\n\
         \x20 fi\n\
         done\n\
         exit $status\n"
    );
    let io = |source| Error::Io {
        path: hook.clone(),
        source,
    };
    std::fs::create_dir_all(hook.parent().unwrap_or(dir)).map_err(io)?;
    std::fs::write(&hook, script).map_err(io)?;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    Ok(())
}

fn check_name(what: &'static str, value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && value != "."
        && value != ".."
        && !value.ends_with(".git")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            value: value.into(),
        })
    }
}

fn check_branch(value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && !value.starts_with(['-', '/'])
        && !value.ends_with(['/', '.'])
        && !value.contains("..")
        && !value.contains("//")
        && !value.ends_with(".lock")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "branch",
            value: value.into(),
        })
    }
}

/// Compare secrets without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// What a sandbox-made commit writes.
enum Planned<'a> {
    /// These files, whatever the head holds.
    Files(&'a [Change]),
    /// `line` appended to the file at `path` as the head holds it (created when missing).
    AppendLine {
        /// The file.
        path: &'a str,
        /// The line, without its newline.
        line: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gitea() -> Gitea {
        Gitea::new(
            GiteaConfig {
                repos_root: PathBuf::from("/nonexistent"),
                base_url: "http://127.0.0.1:1".into(),
                token: "write-token".into(),
                read_only_token: "read-token".into(),
            },
            Faults::new(),
        )
    }

    fn auth(gitea: &Gitea, value: &str) -> Result<Option<Access>, ()> {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        gitea.authenticate(&headers).map(|u| u.map(|u| u.access))
    }

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn accepts_every_gitea_auth_form() {
        let g = gitea();
        let write = Ok(Some(Access::Write));
        let read = Ok(Some(Access::Read));
        assert_eq!(auth(&g, "token write-token"), write);
        assert_eq!(auth(&g, "Bearer write-token"), write);
        assert_eq!(auth(&g, "TOKEN read-token"), read);
        assert_eq!(auth(&g, &basic("x-access-token:write-token")), write);
        // An empty password or `x-oauth-basic` means the user name is the token.
        assert_eq!(auth(&g, &basic("read-token:")), read);
        assert_eq!(auth(&g, &basic("write-token:x-oauth-basic")), write);
        assert_eq!(
            g.authenticate(&http::HeaderMap::new()).map(|u| u.is_some()),
            Ok(false)
        );
    }

    #[test]
    fn refuses_unknown_or_malformed_credentials() {
        let g = gitea();
        for value in [
            "token wrong",
            "token ",
            "Digest write-token",
            "write-token",
            "Basic !!!",
            &basic("write-token-but-longer:"),
            &basic("user:"),
        ] {
            assert_eq!(auth(&g, value), Err(()), "{value}");
        }
    }

    #[test]
    fn names_and_branches_are_checked() {
        assert!(check_name("owner", "demo").is_ok());
        for bad in ["", "..", "a/b", "x.git", "a b"] {
            assert!(check_name("owner", bad).is_err(), "{bad:?}");
        }
        assert!(check_branch("deploy/1.2.3").is_ok());
        for bad in ["", "-x", "a..b", "a/", "/a", "a.lock", "a b", "a//b"] {
            assert!(check_branch(bad).is_err(), "{bad:?}");
        }
    }
}
