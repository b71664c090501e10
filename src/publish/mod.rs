//! The publish step: write the image change to the GitOps repository as one commit, safely.
//!
//! Inputs become a typed [`Config`] (the CLI builds it and reports every problem at once, before any network
//! or disk access). [`run`] then reads the kustomization files at the branch head, applies the edit with
//! [`crate::edit::set_images`], and commits every changed file in one commit through one of two transports:
//!
//! - **api** (Gitea/Forgejo): `POST /repos/{o}/{r}/contents` with each file's blob SHA as the
//!   optimistic-concurrency guard; no clone and no git binary.
//! - **git** (any host): a minimal sparse clone, commit, `git push origin HEAD:<branch>`.
//!
//! Losing a race (a stale SHA, a rejected push) is retried by re-reading and re-applying the edit, never by
//! replaying a diff, with jittered exponential backoff bounded by attempts and time. Because neither a POST
//! nor a push is idempotent, after an ambiguous failure (timeout, reset, 5xx) the step first looks for its
//! own commit, recognised by the unique `Deploy-Id:` trailer (api) or by its SHA (git), before writing
//! again: a write that landed despite an error is never made twice.
//!
//! When every file already holds the requested values no commit is made and the outcome reports the
//! current head. A dry run reads, edits in memory and returns the diffs and the message; it writes nothing.
//! This module never prints: progress goes through [`Report`].

use std::collections::BTreeSet;
use std::time::Duration;

// Tokio's clock, the one every wait and deadline uses (src/retry.rs).
use tokio::time::Instant;

use serde::Serialize;
use url::Url;

use crate::edit::{self, ImageSetting};
use crate::error::Phase;
use crate::forge::{git, gitea};
use crate::report::Report;
use crate::retry::{Deadline, RetryPolicy};
use crate::secret::Secret;

/// Name of the default author and committer.
pub const DEFAULT_AUTHOR_NAME: &str = "gitops-deploy";
/// E-mail of the default author and committer (a reserved domain: it never receives mail).
pub const DEFAULT_AUTHOR_EMAIL: &str = "gitops-deploy@noreply.invalid";

/// One image entry of one file: its value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageOutcome {
    /// The image name.
    pub name: String,
    /// The value before (`None` when the entry was added).
    pub previous: Option<String>,
    /// The value after.
    pub new: String,
    /// The fields before (`None` when the entry was added); a rollback writes them back.
    #[serde(skip)]
    pub previous_values: Option<edit::ImageValues>,
}

/// One kustomization file the step read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    /// Path from the repository root.
    pub path: String,
    /// True when the file changed.
    pub changed: bool,
    /// The image entries the edit touched (also those that already held the value).
    pub images: Vec<ImageOutcome>,
    /// Unified diff of the change (empty when unchanged).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// What the transport actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsedTransport {
    /// The contents API.
    Api,
    /// git.
    Git,
}

/// The result of the publish step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// True when a commit was made (or, in a dry run, would be).
    pub changed: bool,
    /// The new commit, or the branch head when nothing changed (so verification runs on it).
    pub commit_sha: String,
    /// Web URL of that commit.
    pub commit_url: String,
    /// The branch written to.
    pub branch: String,
    /// The transport used.
    pub transport: UsedTransport,
    /// Per file, the touched images with their previous and new values.
    pub files: Vec<FileOutcome>,
    /// The commit message (with its `Deploy-Id` trailer); empty when nothing changed.
    pub message: String,
    /// Attempts used (1 when the first write succeeded).
    pub attempts: u32,
    /// Time the step took.
    pub elapsed: Duration,
    /// True for a dry run: nothing was written.
    pub dry_run: bool,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the token.
    #[error("the server refused the token (401); check that `token` is valid and not expired")]
    Unauthorized {
        /// The failed request.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The token may not write to the branch: read-only token, no write access, protected branch.
    #[error(
        "not allowed to write to branch {branch:?} of {repository}: {message} (a read-only token, or \
         a protected branch: those accept pushes only from users on their allowlist, which the \
         workflow's job token never is; set `token` to a personal access token of such a user with \
         `write:repository`, or deliver through a pull request with `mode: pull_request`; or a \
         server-side hook that declined the change, whose text is above)"
    )]
    Forbidden {
        /// `owner/name`.
        repository: String,
        /// The branch.
        branch: String,
        /// The server's explanation.
        message: String,
    },
    /// The repository does not exist or the token cannot see it.
    #[error("repository {repository} not found at {server} (or the token cannot read it)")]
    RepoNotFound {
        /// `owner/name`.
        repository: String,
        /// The server.
        server: String,
    },
    /// The branch does not exist.
    #[error("branch {branch:?} not found in {repository}")]
    BranchNotFound {
        /// `owner/name`.
        repository: String,
        /// The branch.
        branch: String,
    },
    /// A path does not exist on the branch.
    #[error("path {path:?} not found on branch {branch:?}")]
    PathNotFound {
        /// The path input.
        path: String,
        /// The branch.
        branch: String,
    },
    /// A directory has no kustomization file.
    #[error("path {path:?} has no kustomization file (looked for {})", edit::KUSTOMIZATION_FILE_NAMES.join(", "))]
    NoKustomization {
        /// The path input.
        path: String,
    },
    /// A path of a target that edits files is a directory.
    #[error("path {path:?} is a directory; target `{target}` edits files (give each file's path)")]
    NotAFile {
        /// The path input.
        path: String,
        /// The target.
        target: &'static str,
    },
    /// A kustomization file is not UTF-8 text or too large for the API.
    #[error("{path}: not a readable text file")]
    Unreadable {
        /// The file.
        path: String,
    },
    /// The edit could not be applied to a file.
    #[error("{path}: cannot set the image")]
    Edit {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: edit::EditError,
    },
    /// A request to the forge failed.
    #[error("{action}")]
    Api {
        /// What we were doing.
        action: String,
        /// The failed request.
        #[source]
        source: gitea::Error,
    },
    /// A git command failed.
    #[error("{action}")]
    Git {
        /// What we were doing.
        action: String,
        /// The failure.
        #[source]
        source: git::Error,
    },
    /// A value is longer than the Gitea API accepts (modules/structs/repo_file.go `MaxSize`).
    #[error(
        "{input} is {len} characters long; the Gitea/Forgejo API accepts at most {max} (use a \
         shorter value, or transport: git)"
    )]
    TooLong {
        /// The input (or file) named.
        input: String,
        /// Its length in characters.
        len: usize,
        /// The API's limit.
        max: usize,
    },
    /// Every write got a 500 and none landed: what a declining pre-receive hook looks like on Gitea
    /// ≤ 1.25 and Forgejo, which answer it with an unmapped error whose message production hides.
    #[error(
        "the server answered HTTP 500 to {attempts} writes to branch {branch:?} and none of them \
         landed; Gitea ≤ 1.25 and Forgejo answer this way when a server-side pre-receive hook \
         declines the push (the reason is hidden): check the repository's hooks and the server log, \
         or run with transport: git to see the hook's output"
    )]
    ServerRefuses {
        /// The branch.
        branch: String,
        /// Writes answered 500.
        attempts: u32,
    },
    /// Retries ran out: the branch kept changing under us, or the server kept failing.
    #[error("gave up after {attempts} attempts in {:.1}s", elapsed.as_secs_f64())]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        #[source]
        last: Box<Error>,
    },
}

impl Error {
    /// True when the failure is the user's input (a missing repository, branch or path; an edit the
    /// engine refuses): exit code 2.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            Error::RepoNotFound { .. }
            | Error::BranchNotFound { .. }
            | Error::PathNotFound { .. }
            | Error::NoKustomization { .. }
            | Error::NotAFile { .. }
            | Error::TooLong { .. } => true,
            Error::Edit { source, .. } => source.is_invalid_input(),
            _ => false,
        }
    }

    /// True when another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { source, .. } => source.is_retryable(),
            Error::Git { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

/// Runs the publish step.
///
/// # Errors
/// See [`Error`]; nothing is written when the error is invalid input, a refused token or permission.
pub async fn run(config: &Config, report: &Report) -> Result<Outcome, Error> {
    let started = Instant::now();
    let deadline = Deadline::after(config.timeout);
    if let Some(t) = &config.token {
        report.masker().add(t);
    }
    let (transport, version) = match config.transport {
        Transport::Api => (UsedTransport::Api, None),
        Transport::Git => (UsedTransport::Git, None),
        Transport::Auto => detect(config, &deadline).await,
    };
    if transport == UsedTransport::Api {
        check_api_limits(config)?;
    }
    // The run link: Gitea ≤ 1.25 routes runs by number, and only the server's version tells.
    let by_number;
    let config = match &config.run_url_by_number {
        Some(url) => {
            let version = match version {
                Some(v) => Some(v),
                None => server_version(config, &deadline).await,
            };
            if version.as_deref().is_some_and(routes_runs_by_number) {
                by_number = Config {
                    run_url: Some(url.clone()),
                    ..config.clone()
                };
                &by_number
            } else {
                config
            }
        }
        None => config,
    };
    report.info(
        Phase::Publish,
        format_args!(
            "{} {} via {}{}",
            config.repository(),
            config.branch.as_deref().unwrap_or("(default branch)"),
            match transport {
                UsedTransport::Api => "api",
                UsedTransport::Git => "git",
            },
            if config.dry_run { " (dry run)" } else { "" }
        ),
    );
    let deploy_id = format!("{:032x}", rand::random::<u128>());
    let mut outcome = match transport {
        UsedTransport::Api => api::publish(config, report, deadline, &deploy_id).await?,
        UsedTransport::Git => via_git::publish(config, report, deadline, &deploy_id).await?,
    };
    outcome.elapsed = started.elapsed();
    let short = crate::text::short(&outcome.commit_sha);
    let verb = match (outcome.dry_run, outcome.changed) {
        (true, true) => "would commit on",
        (true, false) => "nothing to change at",
        (false, true) => "committed",
        (false, false) => "already up to date at",
    };
    report.info(
        Phase::Publish,
        format_args!(
            "{verb} {short} on {} ({} attempt{}, {:.1}s)",
            outcome.branch,
            outcome.attempts,
            if outcome.attempts == 1 { "" } else { "s" },
            outcome.elapsed.as_secs_f64()
        ),
    );
    Ok(outcome)
}

/// `auto`: the API when the server answers `GET /api/v1/version` like Gitea/Forgejo, git otherwise;
/// with the version it answered.
async fn detect(config: &Config, deadline: &Deadline) -> (UsedTransport, Option<String>) {
    match server_version(config, deadline).await {
        Some(v) => (UsedTransport::Api, Some(v)),
        None => (UsedTransport::Git, None),
    }
}

/// `GET /api/v1/version`, when the server answers it like Gitea/Forgejo (a version starting with a
/// digit). The probe gets one request's time (`request_timeout`), never more than the step has left.
async fn server_version(config: &Config, deadline: &Deadline) -> Option<String> {
    let limit = config.request_timeout.min(deadline.remaining());
    // With the token: under REQUIRE_SIGNIN_VIEW Gitea refuses even `/version` to anonymous callers
    // (docs/research/field-gitea.md §6), and `auto` would fall back to git for no reason.
    let client = gitea::Client::builder(config.server_url.as_str())
        .token(config.token.clone())
        .extra_roots(config.server_ca.clone())
        .connect_timeout(limit)
        .request_timeout(limit)
        .build()
        .ok()?;
    let v = client.version().await.ok()?.version;
    v.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
        .then_some(v)
}

/// True for servers whose web routes link runs by number: Gitea ≤ 1.25 (1.26 moved to the id,
/// go-gitea/gitea#36842) and Forgejo (`X.Y.Z+gitea-1.22.0`).
fn routes_runs_by_number(version: &str) -> bool {
    if version.contains("+gitea-") {
        return true;
    }
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u32>().ok());
    matches!((parts.next().flatten(), parts.next().flatten()), (Some(1), Some(minor)) if minor <= 25)
}

/// The API's size limits on what we send (modules/structs/repo_file.go: `branch` MaxSize(100),
/// identity `name` MaxSize(100) and `email` MaxSize(254), counted in characters). Checked before any
/// write, so a long value is a clear input error rather than a 422 "[BranchName]: MaxSize".
fn check_api_limits(config: &Config) -> Result<(), Error> {
    let branch = config.branch.as_deref().unwrap_or_default();
    for (input, value, max) in [
        ("branch", branch, 100),
        ("author_name", config.author.name.as_str(), 100),
        ("author_email", config.author.email.as_str(), 254),
    ] {
        let len = value.chars().count();
        if len > max {
            return Err(Error::TooLong {
                input: input.to_owned(),
                len,
                max,
            });
        }
    }
    Ok(())
}

/// A kustomization file as read at some commit.
#[derive(Debug, Clone)]
struct Read {
    path: String,
    text: String,
    /// Blob SHA (api only).
    sha: String,
}

/// The edit applied to every file.
struct Applied {
    files: Vec<FileOutcome>,
    /// (path, new text) of the files that changed.
    changed: Vec<(String, String)>,
}

/// Pure: applies the image setting to each file's text.
fn apply(config: &Config, reads: &[Read]) -> Result<Applied, Error> {
    let mut files = Vec::new();
    let mut changed = Vec::new();
    for r in reads {
        let edited = match &config.change {
            Change::Remove if config.target == edit::Target::Kustomize => {
                edit::remove_image(&r.text, &config.image)
            }
            // Only a kustomization gains an entry a rollback removes; a value the template could
            // not read back has no previous value to restore.
            Change::Remove => Err(edit::EditError::Unsupported {
                reason: format!(
                    "the previous value of {} is unknown (it did not follow the value template), so it \
                     cannot be restored",
                    config.image
                ),
            }),
            Change::Set { setting, .. } => {
                config
                    .target
                    .apply_with_setter(&r.text, setting, config.setter.as_deref())
            }
        }
        .map_err(|source| Error::Edit {
            path: r.path.clone(),
            source,
        })?;
        let is_changed = edited.is_changed();
        let mut images: Vec<ImageOutcome> = edited
            .changes
            .iter()
            .map(|c| ImageOutcome {
                name: c.name.clone(),
                previous: c.before.as_ref().map(describe_values),
                new: describe_values(&c.after),
                previous_values: c.before.clone(),
            })
            .collect();
        if images.is_empty() {
            // Nothing changed: report the value the file already holds.
            let current = config
                .target
                .current(&edited.text, &config.image)
                .map_err(|source| Error::Edit {
                    path: r.path.clone(),
                    source,
                })?
                .map(|v| describe_values(&v));
            images.push(ImageOutcome {
                name: config.image.clone(),
                new: current.clone().unwrap_or_default(),
                previous: current,
                previous_values: None,
            });
        }
        let diff = if is_changed {
            edit::unified_diff(&r.path, &r.text, &edited.text)
        } else {
            String::new()
        };
        if is_changed {
            changed.push((r.path.clone(), edited.text.clone()));
        }
        files.push(FileOutcome {
            path: r.path.clone(),
            changed: is_changed,
            images,
            diff,
        });
    }
    Ok(Applied { files, changed })
}

/// An entry's values as shown to people.
fn describe_values(v: &edit::ImageValues) -> String {
    describe_new(
        v.new_name.as_deref(),
        v.new_tag.as_deref(),
        v.digest.as_deref(),
    )
}

/// Builds the outcome for a head that needs no change, a dry run, or a new commit.
fn outcome(
    config: &Config,
    transport: UsedTransport,
    branch: &str,
    applied: Applied,
    commit_sha: String,
    commit_url: Option<String>,
    message: String,
) -> Outcome {
    let changed = !applied.changed.is_empty();
    Outcome {
        changed,
        commit_url: commit_url.unwrap_or_else(|| config.commit_url(&commit_sha)),
        commit_sha,
        branch: config.new_branch.as_deref().unwrap_or(branch).to_owned(),
        transport,
        files: applied.files,
        message: if changed { message } else { String::new() },
        attempts: 0,
        elapsed: Duration::ZERO,
        dry_run: config.dry_run,
    }
}

/// After a failed attempt of a transport's loop: a non-retryable failure is returned as it is; a
/// retryable one waits for the next try (reported) or, when the policy is spent, becomes `GaveUp`.
async fn retry_or_give_up(
    backoff: &mut crate::retry::Backoff,
    report: &Report,
    failure: Error,
) -> Result<(), Error> {
    if !failure.is_retryable() {
        return Err(failure);
    }
    match backoff.next_wait() {
        Some(wait) => {
            retry_note(
                report,
                backoff.attempts(),
                wait,
                &format_args!("{}", crate::error::chain(&failure)),
            );
            tokio::time::sleep(wait).await;
            Ok(())
        }
        None => Err(Error::GaveUp {
            attempts: backoff.attempts(),
            elapsed: backoff.elapsed(),
            last: Box::new(failure),
        }),
    }
}

fn retry_note(report: &Report, attempt: u32, wait: Duration, why: &dyn std::fmt::Display) {
    report.info(
        Phase::Publish,
        format_args!("attempt {attempt} in {}ms: {why}", wait.as_millis()),
    );
}

/// The API transport.
mod api;

/// The git transport.
mod via_git;

/// Inputs: the typed configuration and its validation.
mod config;
pub use crate::runner::RunnerEnv;
pub use config::*;

/// The commit message: template, placeholders, trailer.
mod message;
pub use message::*;

/// The one publish loop over either transport.
mod transport;

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/research/field-runner.md ranked #4: Forgejo links a run by its number, GitHub and Gitea by its id;
    /// on a Gitea runner the number link is kept for a server that turns out to be ≤ 1.25.
    #[test]
    fn run_url_uses_the_number_on_forgejo_and_the_id_elsewhere() {
        let gitea = RunnerEnv::from_lookup(|k| {
            [
                ("GITHUB_ACTIONS", "true"),
                ("GITEA_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", "https://git.example.com"),
                ("GITHUB_REPOSITORY", "ops/web"),
                ("GITHUB_RUN_ID", "48213"),
                ("GITHUB_RUN_NUMBER", "17"),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, x)| x.to_string())
        });
        assert_eq!(
            gitea.run_url_by_number().as_deref(),
            Some("https://git.example.com/ops/web/actions/runs/17")
        );
        for (version, by_number) in [
            ("1.22.6", true),
            ("1.25.3", true),
            ("1.26.0", false),
            ("1.27.0+dev-40-g82edc3da01", false),
            ("12.0.4+gitea-1.22.0", true),
            ("2.0.0", false),
        ] {
            assert_eq!(routes_runs_by_number(version), by_number, "{version}");
        }
        let vars = |forgejo: bool| {
            let mut v = vec![
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", "https://git.example.com/"),
                ("GITHUB_REPOSITORY", "ops/web"),
                ("GITHUB_RUN_ID", "48213"),
                ("GITHUB_RUN_NUMBER", "17"),
            ];
            if forgejo {
                v.push(("FORGEJO_ACTIONS", "true"));
            }
            RunnerEnv::from_lookup(move |k| {
                v.iter().find(|(n, _)| *n == k).map(|(_, x)| x.to_string())
            })
        };
        assert_eq!(
            vars(true).run_url().as_deref(),
            Some("https://git.example.com/ops/web/actions/runs/17")
        );
        assert_eq!(
            vars(false).run_url().as_deref(),
            Some("https://git.example.com/ops/web/actions/runs/48213")
        );
        // Neither GitHub nor Forgejo needs the alternative.
        assert_eq!(vars(false).run_url_by_number(), None);
        assert_eq!(vars(true).run_url_by_number(), None);
    }

    #[test]
    fn renders_templates() {
        let v = |n: &str| match n {
            "x" => Some(Some("X".to_owned())),
            "gone" => Some(None),
            _ => None,
        };
        assert_eq!(render("a {x} {{lit}} b", v).unwrap(), "a X {lit} b");
        assert_eq!(
            render("a\nrun: {gone}\nb {x}{gone}\n", v).unwrap(),
            "a\nb X\n"
        );
        assert!(render("{y}", v)
            .unwrap_err()
            .contains("unknown placeholder {y}"));
        assert!(render("{x", v).unwrap_err().contains("unclosed"));
        assert!(render("x}", v).unwrap_err().contains("unmatched"));
        check_template(DEFAULT_MESSAGE).unwrap();
    }

    /// docs/research/field-gitea.md ranked #9: a custom message without a skip marker gets `[skip ci]`; one with
    /// any marker runners honour is left as written.
    #[test]
    fn custom_messages_keep_the_deploy_from_triggering_ci() {
        let applied = Applied {
            files: Vec::new(),
            changed: Vec::new(),
        };
        for (template, want_added) in [
            ("deploy {image} {new}", true),
            ("deploy {image} {new} [skip ci]", false),
            ("deploy {image} {new}\n\n[CI SKIP]", false),
            ("deploy [skip actions]", false),
        ] {
            let c = Config {
                message_template: template.into(),
                ..Config::for_tests()
            };
            let m = message(&c, &applied, "id-1");
            assert!(m.ends_with("\n\nDeploy-Id: id-1\n"), "{m:?}");
            assert_eq!(
                m.contains("\n\n[skip ci]\n\nDeploy-Id"),
                want_added,
                "{template}: {m:?}"
            );
        }
        // A pull request's branch commit must start the checks: no marker, not even the default's.
        let pr = Config {
            new_branch: Some("gitops-deploy/app".into()),
            ..Config::for_tests()
        };
        let m = message(&pr, &applied, "id-1");
        assert!(!m.to_ascii_lowercase().contains("skip"), "{m:?}");
        assert!(m.ends_with("\n\nDeploy-Id: id-1\n"), "{m:?}");
    }
}
