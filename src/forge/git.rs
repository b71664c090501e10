//! The git transport: works with any git host over HTTP(S) by running the `git` binary.
//!
//! A [`Checkout`] is a minimal clone (one branch, depth 1, `--filter=blob:none`, sparse checkout of the
//! target directories only), so its cost does not grow with the repository's size or history. It can
//! commit, push `HEAD:<branch>`, and, after a rejected push, fetch the new tip and reset to it so the caller
//! can re-apply its edit (a semantic retry, never a textual rebase).
//!
//! Secrets: the token reaches git only through environment-provided configuration
//! (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n` with an `http.<url>.extraHeader`), never
//! through argv, the remote URL or `.git/config`. Prompts, askpass programs, credential helpers and the
//! user's own git configuration are switched off, so a missing or wrong token fails fast instead of
//! hanging. Facts: `docs/research/gitea.md` Part B4.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

// Tokio's clock, the one every wait and deadline uses (src/retry.rs).
use tokio::time::Instant;

use base64::Engine as _;
use tokio::io::AsyncWriteExt as _;
use url::Url;

use crate::retry::Deadline;
use crate::secret::Secret;

/// The user name paired with the token in the Basic header; hosts that take a token as the password
/// ignore it (Gitea, Forgejo, GitHub).
pub const BASIC_USER: &str = "x-access-token";

/// Every way a git operation can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The git binary could not be started.
    #[error("cannot run git (is it installed and on PATH?)")]
    Spawn(#[source] std::io::Error),
    /// A git command did not finish before the deadline.
    #[error("`git {command}` did not finish within {:.1}s", elapsed.as_secs_f64())]
    Timeout {
        /// The git subcommand.
        command: String,
        /// How long it ran.
        elapsed: Duration,
    },
    /// The push was rejected because the branch moved: fetch, re-apply and try again.
    #[error("push rejected because the branch moved: {detail}")]
    Rejected {
        /// git's explanation.
        detail: String,
        /// git's own check against the advertised tip refused it (`[rejected]`, "non-fast-forward"),
        /// which proves nothing was sent. Other rejections ("cannot lock ref" after curl silently
        /// re-sent a request whose answer was lost) may follow a first request that landed.
        proven_unsent: bool,
    },
    /// The server refused the credentials (HTTP 401), or there were none.
    #[error("authentication failed: {detail}")]
    Unauthorized {
        /// git's explanation.
        detail: String,
    },
    /// The server refused the write: no write access (403), a protected branch, a pre-receive hook.
    #[error("the server refused the push: {detail}")]
    Denied {
        /// git's explanation, with the server's `remote:` lines.
        detail: String,
    },
    /// The repository or branch does not exist (or the token cannot see it).
    #[error("not found: {detail}")]
    NotFound {
        /// git's explanation.
        detail: String,
        /// The repository answered, but not the branch ("Remote branch X not found in upstream").
        branch_missing: bool,
    },
    /// git refused the command's arguments (a sparse-checkout directory it takes for a pattern or
    /// a file): the same command fails the same way again, so it is never retried.
    #[error("`git {command}` refused its arguments: {detail}")]
    Refused {
        /// The git subcommand.
        command: String,
        /// git's stderr, trimmed.
        detail: String,
    },
    /// Any other failure of a git command; a push that failed this way may still have landed.
    #[error("`git {command}` failed: {detail}")]
    Failed {
        /// The git subcommand.
        command: String,
        /// git's stderr, trimmed.
        detail: String,
    },
    /// Reading or writing the work tree failed.
    #[error("{}: cannot access the file", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when fetching, re-applying the edit and pushing again may succeed: a rejected push, a timeout
    /// or an unclassified failure (a reset connection, a 5xx).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Rejected { .. } | Error::Timeout { .. } | Error::Failed { .. }
        )
    }

    /// True when a push that failed this way may nevertheless have updated the branch.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Error::Timeout { .. } | Error::Failed { .. })
    }
}

/// Where to push and how to authenticate.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The clone URL; never holds credentials.
    pub url: Url,
    /// The token, sent as `Authorization: Basic base64(x-access-token:token)`.
    pub token: Option<Secret>,
    /// A transfer that moves almost nothing for this long is aborted (`http.lowSpeedTime`), so a stalled
    /// server cannot hang the step.
    pub stall_timeout: Duration,
    /// Private CAs to trust besides the system bundle (`GIT_SSL_CAINFO` for the child).
    pub server_ca: Option<crate::tls::ExtraRoots>,
}

impl Remote {
    /// The environment that configures git for this remote: the auth header scoped to the remote's
    /// origin, no credential helper, no prompts, no user or system configuration.
    fn env(&self) -> Vec<(OsString, OsString)> {
        let mut config: Vec<(String, String)> = vec![
            ("credential.helper".into(), String::new()),
            ("http.lowSpeedLimit".into(), "1".into()),
            (
                "http.lowSpeedTime".into(),
                self.stall_timeout.as_secs().max(1).to_string(),
            ),
        ];
        if let Some(token) = self.token.as_ref().filter(|t| !t.is_empty()) {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{BASIC_USER}:{}", token.expose()));
            // Scoped to scheme://host:port/ so that a redirect to another host never gets the header.
            let scope = self.url.origin().ascii_serialization();
            config.push((
                format!("http.{scope}/.extraHeader"),
                format!("Authorization: Basic {basic}"),
            ));
        }
        let mut env: Vec<(OsString, OsString)> = vec![
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("GIT_ASKPASS".into(), "".into()),
            ("SSH_ASKPASS".into(), "".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_CONFIG_GLOBAL".into(), null_device().into()),
            // English messages, so that rejections can be recognised.
            ("LC_ALL".into(), "C".into()),
            ("LANGUAGE".into(), "C".into()),
            ("GIT_CONFIG_COUNT".into(), config.len().to_string().into()),
        ];
        for (i, (k, v)) in config.into_iter().enumerate() {
            env.push((format!("GIT_CONFIG_KEY_{i}").into(), k.into()));
            env.push((format!("GIT_CONFIG_VALUE_{i}").into(), v.into()));
        }
        if let Some(ca) = &self.server_ca {
            // A bundle that cannot be written leaves git on the system store: the TLS error it then
            // reports names the certificate problem.
            if let Ok(path) = ca.git_ca_file() {
                env.push(("GIT_SSL_CAINFO".into(), path.into()));
            }
        }
        env
    }
}

fn null_device() -> &'static str {
    if cfg!(windows) {
        "NUL"
    } else {
        "/dev/null"
    }
}

/// Author and committer of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// A minimal clone of one branch in a temporary directory (removed on drop).
#[derive(Debug)]
pub struct Checkout {
    _dir: tempfile::TempDir,
    root: PathBuf,
    remote: Remote,
    branch: String,
    deadline: Deadline,
}

impl Checkout {
    /// Clones `branch` (default: the remote's default branch) with depth 1 and no blobs, and checks out
    /// only `dirs` (paths relative to the repository root; `.` or empty means the root's own files).
    ///
    /// # Errors
    /// [`Error::Unauthorized`], [`Error::NotFound`] for a missing repository or branch, and the rest.
    pub async fn clone_sparse(
        remote: Remote,
        branch: Option<&str>,
        dirs: &[String],
        deadline: Deadline,
    ) -> Result<Self, Error> {
        let dir = temp_dir("gitops-deploy-")?;
        let root = dir.path().join("repo");
        let mut args: Vec<OsString> = [
            "clone",
            "--quiet",
            "--depth=1",
            "--single-branch",
            "--no-tags",
            "--filter=blob:none",
            "--sparse",
        ]
        .map(OsString::from)
        .to_vec();
        if let Some(b) = branch {
            args.push("--branch".into());
            args.push(b.into());
        }
        args.push("--".into());
        args.push(remote.url.as_str().into());
        args.push(root.clone().into());
        git(&remote, dir.path(), &args, None, deadline).await?;

        let mut checkout = Checkout {
            _dir: dir,
            root,
            remote,
            branch: String::new(),
            deadline,
        };
        checkout.branch = match branch {
            Some(b) => b.to_owned(),
            None => checkout
                .run(&["symbolic-ref", "--short", "HEAD"])
                .await?
                .trim()
                .to_owned(),
        };
        let cone: Vec<&str> = dirs
            .iter()
            .map(|d| d.trim_matches('/'))
            .filter(|d| !d.is_empty() && *d != ".")
            .collect();
        if !cone.is_empty() {
            // The directories are literal (the parents of the files we edit): a name with `*`, `[`
            // or a leading `!` is a directory here, not a pattern, so git's pattern checks go.
            let mut args = vec!["sparse-checkout", "set", "--cone", "--skip-checks", "--"];
            args.extend(cone);
            checkout.run(&args).await?;
        }
        Ok(checkout)
    }

    /// The work tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The branch this checkout tracks.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The commit `HEAD` points to.
    ///
    /// # Errors
    /// When git fails.
    pub async fn head(&self) -> Result<String, Error> {
        Ok(self.run(&["rev-parse", "HEAD"]).await?.trim().to_owned())
    }

    /// Commits the work-tree state of `files` (nothing else) with `message` (verbatim) as `author` (also
    /// the committer); returns the new commit's SHA.
    ///
    /// # Errors
    /// When git fails.
    pub async fn commit(
        &self,
        files: &[String],
        message: &str,
        author: &Identity,
    ) -> Result<String, Error> {
        let ident: [(OsString, OsString); 4] = [
            ("GIT_AUTHOR_NAME".into(), author.name.clone().into()),
            ("GIT_AUTHOR_EMAIL".into(), author.email.clone().into()),
            ("GIT_COMMITTER_NAME".into(), author.name.clone().into()),
            ("GIT_COMMITTER_EMAIL".into(), author.email.clone().into()),
        ];
        // `--only` stages exactly these paths as part of the commit: no separate `git add`.
        let mut args: Vec<OsString> = [
            "commit",
            "--quiet",
            "--no-verify",
            "--no-gpg-sign",
            "--cleanup=verbatim",
            "--file=-",
            "--only",
            "--",
        ]
        .map(OsString::from)
        .to_vec();
        args.extend(files.iter().map(OsString::from));
        git_with(
            &self.remote,
            &self.root,
            &args,
            Some(message.as_bytes()),
            &ident,
            self.deadline,
        )
        .await?;
        self.head().await
    }

    /// Pushes `HEAD` to the branch (never forced).
    ///
    /// # Errors
    /// [`Error::Rejected`] when the branch moved, [`Error::Denied`] for a protected branch or a missing
    /// write permission, [`Error::Unauthorized`], and [`Error::Failed`]/[`Error::Timeout`] when the outcome
    /// is unknown.
    pub async fn push(&self) -> Result<(), Error> {
        let branch = self.branch.clone();
        self.push_to(&branch, false).await
    }

    /// Pushes `HEAD` to `branch` of the remote; `force` replaces whatever the branch held (for a
    /// branch that belongs to this deploy alone).
    ///
    /// # Errors
    /// As [`Checkout::push`].
    pub async fn push_to(&self, branch: &str, force: bool) -> Result<(), Error> {
        let refspec = format!("{}HEAD:refs/heads/{branch}", if force { "+" } else { "" });
        self.run(&["push", "--porcelain", "--quiet", "origin", &refspec])
            .await
            .map(drop)
    }

    /// Fetches the branch's current tip (the commits since our shallow base, with their blobs up to
    /// 256 KiB) into `refs/remotes/origin/<branch>` and returns its SHA.
    ///
    /// # Errors
    /// When git fails.
    pub async fn fetch(&self) -> Result<String, Error> {
        // Small blobs come along (the new versions of the files we edit, changed by the commits we raced
        // against), so the reset that follows needs no second round trip for them.
        fetch_branch(
            &self.remote,
            &self.root,
            &self.branch,
            "blob:limit=256k",
            self.deadline,
        )
        .await
    }

    /// Resets the work tree (its sparse part) and `HEAD` to `commit`.
    ///
    /// # Errors
    /// When git fails.
    pub async fn reset_to(&self, commit: &str) -> Result<(), Error> {
        self.run(&["reset", "--quiet", "--hard", commit])
            .await
            .map(drop)
    }

    /// The commits in `base..tip`, newest first (both must be local, e.g. after [`Checkout::fetch`]).
    ///
    /// # Errors
    /// When git fails.
    pub async fn commits_between(&self, base: &str, tip: &str) -> Result<Vec<String>, Error> {
        let range = format!("{base}..{tip}");
        Ok(self
            .run(&["rev-list", &range])
            .await?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    async fn run(&self, args: &[&str]) -> Result<String, Error> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        git(&self.remote, &self.root, &args, None, self.deadline).await
    }
}

/// The commit graph of one branch without trees or blobs (a bare `--filter=tree:0` fetch into a
/// temporary directory, removed on drop), for ancestry questions. A file's content is fetched on
/// demand. Every command gets `command_timeout`.
#[derive(Debug)]
pub struct History {
    _dir: tempfile::TempDir,
    root: PathBuf,
    remote: Remote,
    branch: String,
    command_timeout: Duration,
}

impl History {
    /// An empty bare repository whose `origin` is the remote's URL (never credentials).
    ///
    /// # Errors
    /// When the temporary directory cannot be made or git fails.
    pub async fn open(
        remote: Remote,
        branch: &str,
        command_timeout: Duration,
    ) -> Result<Self, Error> {
        let dir = temp_dir("gitops-deploy-history-")?;
        let root = dir.path().join("history.git");
        let history = History {
            root: root.clone(),
            _dir: dir,
            remote,
            branch: branch.to_owned(),
            command_timeout,
        };
        let init: Vec<OsString> = vec![
            "init".into(),
            "--bare".into(),
            "--quiet".into(),
            root.into(),
        ];
        git(
            &history.remote,
            history._dir.path(),
            &init,
            None,
            history.deadline(),
        )
        .await?;
        history
            .run(&["remote", "add", "origin", history.remote.url.as_str()])
            .await?;
        Ok(history)
    }

    fn deadline(&self) -> Deadline {
        Deadline::after(self.command_timeout)
    }

    /// Fetches the branch's commits (no trees, no blobs) and returns its tip.
    ///
    /// # Errors
    /// When git fails.
    pub async fn fetch(&self) -> Result<String, Error> {
        fetch_branch(
            &self.remote,
            &self.root,
            &self.branch,
            "tree:0",
            self.deadline(),
        )
        .await
    }

    /// True when `commit` is here (fetched).
    ///
    /// # Errors
    /// When git cannot run.
    pub async fn has_commit(&self, commit: &str) -> Result<bool, Error> {
        let args: Vec<OsString> = vec![
            "cat-file".into(),
            "-e".into(),
            format!("{commit}^{{commit}}").into(),
        ];
        // A partial clone would ask the remote for a missing object; only a fetch of the branch should.
        let no_lazy_fetch = [("GIT_NO_LAZY_FETCH".into(), "1".into())];
        match git_with(
            &self.remote,
            &self.root,
            &args,
            None,
            &no_lazy_fetch,
            self.deadline(),
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(Error::Failed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// True when `ancestor` is reachable from `descendant` (both fetched).
    ///
    /// # Errors
    /// When git fails for another reason than "not an ancestor".
    pub async fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool, Error> {
        match self
            .run(&["merge-base", "--is-ancestor", ancestor, descendant])
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::Failed { detail, .. }) if detail.is_empty() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The text of `path` at `commit`, `None` when there is no such file.
    ///
    /// # Errors
    /// When git fails otherwise (the trees and the blob come from the remote on demand).
    pub async fn file_at(&self, commit: &str, path: &str) -> Result<Option<String>, Error> {
        let path = path.trim_start_matches('/');
        let listing = self.run(&["ls-tree", commit, "--", path]).await?;
        if listing.split_whitespace().nth(1) != Some("blob") {
            return Ok(None);
        }
        let object = format!("{commit}:{path}");
        self.run(&["cat-file", "blob", &object]).await.map(Some)
    }

    async fn run(&self, args: &[&str]) -> Result<String, Error> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        git(&self.remote, &self.root, &args, None, self.deadline()).await
    }
}

/// The remote's default branch (`git ls-remote --symref URL HEAD`: `ref: refs/heads/main\tHEAD`);
/// `None` when the server does not say.
///
/// # Errors
/// When git fails.
pub async fn default_branch(remote: &Remote, deadline: Deadline) -> Result<Option<String>, Error> {
    let dir = temp_dir("gitops-deploy-ls-remote-")?;
    let args: Vec<OsString> = vec![
        "ls-remote".into(),
        "--symref".into(),
        remote.url.as_str().into(),
        "HEAD".into(),
    ];
    let out = git(remote, dir.path(), &args, None, deadline).await?;
    Ok(out.lines().find_map(|l| {
        let (target, name) = l.strip_prefix("ref: ")?.split_once('\t')?;
        (name.trim() == "HEAD")
            .then(|| target.strip_prefix("refs/heads/").map(str::to_owned))
            .flatten()
    }))
}

/// A fresh temporary directory (removed when the returned value drops).
fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })
}

/// Fetches `branch` from `origin` into `refs/remotes/origin/<branch>` with the partial-clone `filter`
/// and returns its tip.
async fn fetch_branch(
    remote: &Remote,
    repo: &Path,
    branch: &str,
    filter: &str,
    deadline: Deadline,
) -> Result<String, Error> {
    let tracking = format!("refs/remotes/origin/{branch}");
    let fetch: Vec<OsString> = [
        "fetch".to_owned(),
        "--quiet".into(),
        "--no-tags".into(),
        format!("--filter={filter}"),
        "origin".into(),
        format!("+refs/heads/{branch}:{tracking}"),
    ]
    .map(OsString::from)
    .to_vec();
    git(remote, repo, &fetch, None, deadline).await?;
    let parse: Vec<OsString> = vec!["rev-parse".into(), tracking.into()];
    Ok(git(remote, repo, &parse, None, deadline)
        .await?
        .trim()
        .to_owned())
}

async fn git(
    remote: &Remote,
    cwd: &Path,
    args: &[OsString],
    stdin: Option<&[u8]>,
    deadline: Deadline,
) -> Result<String, Error> {
    git_with(remote, cwd, args, stdin, &[], deadline).await
}

/// Runs one git command; stdout on success, a classified [`Error`] otherwise.
async fn git_with(
    remote: &Remote,
    cwd: &Path,
    args: &[OsString],
    stdin: Option<&[u8]>,
    extra_env: &[(OsString, OsString)],
    deadline: Deadline,
) -> Result<String, Error> {
    let command = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cmd = tokio::process::Command::new("git");
    // Our clones are thrown away after one commit: git's housekeeping after a commit or fetch (a
    // `git maintenance run --auto` process each, `gc --auto` before git 2.29) is work for nothing.
    cmd.args(["-c", "maintenance.auto=false", "-c", "gc.auto=0"])
        .args(args)
        .current_dir(cwd)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Debug tracing would print the auth header.
    for var in [
        "GIT_TRACE",
        "GIT_TRACE_CURL",
        "GIT_TRACE_PACKET",
        "GIT_CURL_VERBOSE",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(remote.env()).envs(extra_env.iter().cloned());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(Error::Spawn)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).await.map_err(Error::Spawn)?;
        drop(pipe);
    }
    let output = match tokio::time::timeout(deadline.remaining(), child.wait_with_output()).await {
        Ok(out) => out.map_err(Error::Spawn)?,
        Err(_) => {
            return Err(Error::Timeout {
                command,
                elapsed: started.elapsed(),
            })
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(classify(&command, &stdout, &stderr))
}

/// Turns a failed git command's output into an [`Error`]; push rejections are recognised by the phrases
/// git and Gitea print (`docs/research/anchors.md` §5).
fn classify(command: &str, stdout: &str, stderr: &str) -> Error {
    let detail = summarize(stdout, stderr);
    let all = format!("{stdout}\n{stderr}");
    let has = |needle: &str| all.contains(needle);
    if has("returned error: 401") || has("Authentication failed") || has("could not read Username")
    {
        return Error::Unauthorized { detail };
    }
    if has("returned error: 404")
        || has("not found")
        || has("Remote branch") && has("not found in upstream")
        || has("does not appear to be a git repository")
    {
        let branch_missing = has("Remote branch");
        return Error::NotFound {
            detail,
            branch_missing,
        };
    }
    if has("returned error: 403")
        || has("protected branch")
        || has("pre-receive hook declined")
        || has("permission to write")
    {
        return Error::Denied { detail };
    }
    // builtin/sparse-checkout.c's argument checks (git 2.47: "specify directories rather than
    // patterns…", "'x' is not a directory; … rerun with --skip-checks"): permanent. Told apart by
    // the message, not the command: in a blob:none clone sparse-checkout also fetches, and a
    // network failure there is worth a retry.
    if has("specify directories rather than patterns") || has("rerun with --skip-checks") {
        return Error::Refused {
            command: command.to_owned(),
            detail,
        };
    }
    if command == "push"
        && (has("[rejected]")
            || has("non-fast-forward")
            || has("fetch first")
            || has("cannot lock ref")
            || has("incorrect old value provided")
            || has("stale info")
            || has("failed to update ref"))
    {
        let proven_unsent = has("[rejected]") && !has("remote rejected");
        return Error::Rejected {
            detail,
            proven_unsent,
        };
    }
    Error::Failed {
        command: command.to_owned(),
        detail,
    }
}

/// The lines of git's output worth showing: errors, rejections and the server's `remote:` lines.
fn summarize(stdout: &str, stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .chain(stdout.lines().filter(|l| l.starts_with('!')))
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Done" && !l.starts_with("To "))
        .collect();
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_travels_only_in_scoped_env_config() {
        let remote = Remote {
            url: Url::parse("http://127.0.0.1:3000/demo/gitops.git").unwrap(),
            token: Some(Secret::new("tok-123")),
            stall_timeout: Duration::from_secs(5),
            server_ca: None,
        };
        let env: Vec<(String, String)> = remote
            .env()
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("GIT_CONFIG_COUNT"), Some("4"));
        assert_eq!(get("GIT_CONFIG_KEY_0"), Some("credential.helper"));
        assert_eq!(get("GIT_CONFIG_VALUE_0"), Some(""));
        assert_eq!(
            get("GIT_CONFIG_KEY_3"),
            Some("http.http://127.0.0.1:3000/.extraHeader")
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("x-access-token:tok-123");
        assert_eq!(
            get("GIT_CONFIG_VALUE_3"),
            Some(format!("Authorization: Basic {basic}").as_str())
        );
        assert_eq!(get("GIT_TERMINAL_PROMPT"), Some("0"));
        assert_eq!(get("GIT_ASKPASS"), Some(""));
    }

    /// Real git: directories whose names look like patterns are checked out (`--skip-checks`).
    #[tokio::test]
    async fn sparse_clones_take_directories_that_look_like_patterns() {
        let work = tempfile::tempdir().unwrap();
        let origin = work.path().join("origin");
        let sh = |args: &[&str], dir: &Path| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::create_dir_all(&origin).unwrap();
        sh(&["init", "-q", "-b", "main"], &origin);
        for d in ["we*ird", "!bang", "plain"] {
            std::fs::create_dir_all(origin.join(d)).unwrap();
            std::fs::write(origin.join(d).join("kustomization.yaml"), "resources: []\n").unwrap();
        }
        sh(&["add", "-A"], &origin);
        sh(
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "commit",
                "-qm",
                "i",
            ],
            &origin,
        );
        let remote = Remote {
            url: Url::from_directory_path(&origin).unwrap(),
            token: None,
            stall_timeout: Duration::from_secs(30),
            server_ca: None,
        };
        let dirs = vec!["we*ird".to_owned(), "!bang".to_owned()];
        let checkout = Checkout::clone_sparse(
            remote,
            Some("main"),
            &dirs,
            Deadline::after(Duration::from_secs(60)),
        )
        .await
        .unwrap();
        assert!(checkout.root().join("we*ird/kustomization.yaml").is_file());
        assert!(checkout.root().join("!bang/kustomization.yaml").is_file());
        assert!(!checkout.root().join("plain/kustomization.yaml").exists());
    }

    #[test]
    fn classifies_push_failures() {
        let cases = [
            (
                "! HEAD:refs/heads/main [rejected] (fetch first)",
                "",
                "rejected",
            ),
            (
                "",
                "error: cannot lock ref 'refs/heads/main': is at 1 but expected 2",
                "rejected (maybe sent)",
            ),
            (
                "! HEAD:refs/heads/main [remote rejected] (pre-receive hook declined)",
                "remote: Gitea: Not allowed to push to protected branch main",
                "denied",
            ),
            (
                "",
                "fatal: unable to access 'http://h/': The requested URL returned error: 403",
                "denied",
            ),
            (
                "",
                "fatal: Authentication failed for 'http://h/o/r.git/'",
                "unauthorized",
            ),
            (
                "",
                "fatal: repository 'http://h/o/r.git/' not found",
                "not found",
            ),
            (
                "",
                "fatal: couldn't find remote ref refs/heads/nope\nwarning: Remote branch nope not found in upstream origin",
                "branch not found",
            ),
            ("", "fatal: the remote end hung up unexpectedly", "failed"),
            (
                "",
                "fatal: 'top.txt' is not a directory; to treat it as a directory anyway, rerun with --skip-checks",
                "refused",
            ),
            (
                "",
                "fatal: specify directories rather than patterns (no leading slash)",
                "refused",
            ),
        ];
        for (stdout, stderr, want) in cases {
            let got = match classify("push", stdout, stderr) {
                Error::Rejected {
                    proven_unsent: true,
                    ..
                } => "rejected",
                Error::Rejected { .. } => "rejected (maybe sent)",
                Error::Denied { .. } => "denied",
                Error::Unauthorized { .. } => "unauthorized",
                Error::NotFound {
                    branch_missing: true,
                    ..
                } => "branch not found",
                Error::NotFound { .. } => "not found",
                Error::Failed { .. } => "failed",
                Error::Refused { .. } => "refused",
                _ => "other",
            };
            assert_eq!(got, want, "{stdout} {stderr}");
            if want == "refused" {
                assert!(!classify("sparse-checkout", stdout, stderr).is_retryable());
            }
        }
    }
}
