//! The pull-request mode: deliver the change through a pull request instead of a push, for branches
//! nobody may push to (on Gitea the job token never can, `docs/research/field-gitea.md` §3).
//!
//! [`run`] writes the commit on a branch of its own that starts at the base's head (through the
//! publish step, so the edit, the transports and their race handling are the same), opens a pull
//! request with an old → new table, and then, per the [`MergePolicy`], stops, merges now, or asks the
//! forge to merge when the required checks succeed and waits, saying what the pull request waits for.
//!
//! Each pull request carries a hidden marker naming its *subject* (image, target, paths) and its
//! *change* (the subject and the new value). A re-run of the same change finds and reuses its open pull
//! request; an open one for the same subject with another value is superseded (closed with a link) when
//! asked. A pull request that conflicts with a moved base is never merged textually: the change is
//! re-applied to the new base on a new branch (the publish step re-reads and re-edits), and the old
//! pull request is closed pointing at the new one.
//!
//! Forge behaviour (status codes, merge styles, auto-merge): `docs/research/gitea-pulls.md`.

pub mod decide;
mod forge;

use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use sha2::Digest as _;

use crate::error::Phase;
use crate::forge::gitea::models::{Label, PullRequest};
use crate::forge::gitea::{self, MergeStyle};
use crate::publish;
use crate::report::Report;
use crate::retry::Deadline;
use forge::{Asked, CreateFailure, Forge};

pub use decide::{Blocker, State};

/// What happens once the pull request is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MergePolicy {
    /// Stop after opening it: the outputs name it, a person merges.
    None,
    /// Ask the forge to merge it when the required checks succeed, and wait for the merge.
    Auto,
    /// Merge it now; fail, saying why, when the forge does not allow it yet.
    Now,
}

impl MergePolicy {
    /// The input's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            MergePolicy::None => "none",
            MergePolicy::Auto => "auto",
            MergePolicy::Now => "now",
        }
    }
}

/// The default branch name template.
pub const DEFAULT_BRANCH: &str = "gitops-deploy/{image_slug}-{new_slug}-{key}";
/// The default title template.
pub const DEFAULT_TITLE: &str = "deploy {image} {new}";
/// The default body template.
pub const DEFAULT_BODY: &str = "Deploys `{image}` **{new}** to {paths}.\n\n{changes}\n\n\
source: {source_repo}@{source_sha}\nrun: {run_url}\n\n\
Opened by gitops-deploy; merging it deploys the change.";

/// Placeholders of the branch, title and body templates: the commit message's, plus these.
pub const EXTRA_PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "image_slug",
        "the image name as a branch-name part (`demo-web`)",
    ),
    ("new_slug", "the new value as a branch-name part (`1.2.3`)"),
    (
        "key",
        "8 hex digits identifying the change (image, value, paths)",
    ),
    ("base", "the base branch"),
    ("changes", "a Markdown table: file, old value, new value"),
];

/// Which API the pull requests go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgeKind {
    /// Gitea or Forgejo, at the server's `/api/v1`.
    Gitea,
    /// GitHub or GitHub Enterprise Server, at this REST API root (`https://api.github.com`,
    /// `https://HOST/api/v3`); the branch is written over git.
    Github {
        /// The REST API root.
        api_url: String,
    },
}

/// The typed configuration of the pull-request mode.
#[derive(Debug, Clone)]
pub struct Config {
    /// The forge's API.
    pub forge: ForgeKind,
    /// Template of the branch name (see [`EXTRA_PLACEHOLDERS`]).
    pub branch_template: String,
    /// Template of the title.
    pub title_template: String,
    /// Template of the body; a hidden marker is appended.
    pub body_template: String,
    /// Label names (they must exist in the repository).
    pub labels: Vec<String>,
    /// Assignees by login.
    pub assignees: Vec<String>,
    /// Requested reviewers by login.
    pub reviewers: Vec<String>,
    /// What happens once it is open.
    pub merge: MergePolicy,
    /// How it is merged.
    pub style: MergeStyle,
    /// Close older open pull requests of this tool for the same image and paths.
    pub supersede: bool,
    /// Delete the branch once merged.
    pub delete_branch: bool,
    /// How often the wait for the merge looks.
    pub poll_interval: Duration,
    /// Time allowed to wait for the merge.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            forge: ForgeKind::Gitea,
            branch_template: DEFAULT_BRANCH.into(),
            title_template: DEFAULT_TITLE.into(),
            body_template: DEFAULT_BODY.into(),
            labels: Vec::new(),
            assignees: Vec::new(),
            reviewers: Vec::new(),
            merge: MergePolicy::Auto,
            style: MergeStyle::Merge,
            supersede: false,
            delete_branch: true,
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(600),
        }
    }
}

/// Checks a branch, title or body template's placeholders.
///
/// # Errors
/// The template's problem.
pub fn check_template(template: &str) -> Result<(), String> {
    render(template, |name| {
        publish::PLACEHOLDERS
            .iter()
            .chain(EXTRA_PLACEHOLDERS)
            .any(|(n, _)| *n == name)
            .then(|| Some(String::new()))
    })
    .map(drop)
}

/// The pull request the deploy went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullInfo {
    /// Its number.
    pub number: u64,
    /// Its web URL.
    pub url: String,
    /// Its head branch.
    pub branch: String,
    /// Its base branch (where the merge lands and Argo CD looks).
    pub base: String,
    /// Its title.
    pub title: String,
    /// The commit on that branch.
    pub head_sha: String,
    /// True when an open pull request of an earlier run of the same change was reused.
    pub reused: bool,
    /// Times the change was re-applied to a moved base on a new branch.
    pub recreated: u32,
    /// Older pull requests for the same image and paths that were closed in its favour.
    pub superseded: Vec<u64>,
}

/// A merge the forge made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merged {
    /// The commit the merge made on the base: verification waits for it.
    pub sha: String,
    /// The style it was merged with.
    pub style: MergeStyle,
    /// True when our commit itself is in the base's history (merge commit, fast-forward); false
    /// when the merge wrote new commits with our content (squash, rebase).
    pub keeps_our_commit: bool,
}

/// The result of the pull-request mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The publish step's outcome: our commit on the pull request's branch, or the base's head when
    /// nothing had to change.
    pub publish: publish::Outcome,
    /// The pull request (`None` when nothing had to change, or in a dry run).
    pub pull: Option<PullInfo>,
    /// The merge (`None` with `merge: none`).
    pub merged: Option<Merged>,
}

impl Outcome {
    /// The commit verification waits for: the merge's, else the base head when nothing changed.
    pub fn deployed_commit(&self) -> Option<&str> {
        match (&self.merged, &self.pull) {
            (Some(m), _) => Some(&m.sha),
            (None, None) => Some(&self.publish.commit_sha),
            (None, Some(_)) => None,
        }
    }
}

/// Why the pull-request mode failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the branch failed.
    #[error(transparent)]
    Publish(#[from] publish::Error),
    /// A request to the forge failed.
    #[error("{action}")]
    Api {
        /// What we were doing.
        action: String,
        /// The failed request.
        #[source]
        source: gitea::Error,
    },
    /// A label input names no label of the repository.
    #[error("labels: {name:?} is not a label of {repository} (it has: {known})")]
    UnknownLabel {
        /// The label.
        name: String,
        /// `owner/name`.
        repository: String,
        /// The labels it has.
        known: String,
    },
    /// The pull-request unit of the repository is disabled.
    #[error("{repository} does not accept pull requests (its Pull Requests unit is disabled)")]
    PullsDisabled {
        /// `owner/name`.
        repository: String,
    },
    /// A required check failed.
    #[error("pull request #{number} ({url}) cannot merge: required check {context:?} is {state}{}", if description.is_empty() { String::new() } else { format!(": {description}") })]
    CheckFailed {
        /// Its number.
        number: u64,
        /// Its URL.
        url: String,
        /// The check.
        context: String,
        /// Its state.
        state: String,
        /// Its description.
        description: String,
    },
    /// Someone closed the pull request.
    #[error("pull request #{number} ({url}) was closed without being merged")]
    Closed {
        /// Its number.
        number: u64,
        /// Its URL.
        url: String,
    },
    /// `merge: now` and the forge does not allow the merge yet.
    #[error("pull request #{number} ({url}) cannot be merged now: {reason}")]
    MergeRefused {
        /// Its number.
        number: u64,
        /// Its URL.
        url: String,
        /// What blocks it (the forge's message and what we saw).
        reason: String,
    },
    /// The merge did not happen in time.
    #[error("pull request #{number} ({url}) not merged after {:.0}s; it waits for {waiting}", elapsed.as_secs_f64())]
    NotMerged {
        /// Its number.
        number: u64,
        /// Its URL.
        url: String,
        /// Time waited.
        elapsed: Duration,
        /// What it waited for, last seen.
        waiting: String,
    },
    /// The branch name template rendered to something unusable.
    #[error("pr_branch: the template gives {name:?}, which cannot be the pull request's branch (empty, the base {base:?}, or not a branch name)")]
    BadBranchName {
        /// What it rendered to.
        name: String,
        /// The base.
        base: String,
    },
    /// The base kept moving in conflicting ways.
    #[error(
        "the change was re-applied to a moved base {times} times and still conflicts; giving up"
    )]
    KeepsConflicting {
        /// Re-creations made.
        times: u32,
    },
}

/// A failed run of the pull-request mode, with what it had done: the branch's commit and the pull
/// request, when it got that far (the outputs still name them).
#[derive(Debug)]
pub struct Failure {
    /// Why it failed.
    pub error: Error,
    /// The phase it failed in: publishing (the branch and the pull request) or the merge.
    pub phase: Phase,
    /// The commit on the pull request's branch.
    pub publish: Option<publish::Outcome>,
    /// The pull request.
    pub pull: Option<PullInfo>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            phase: error.phase(),
            error,
            publish: None,
            pull: None,
        }
    }
}

impl From<publish::Error> for Failure {
    fn from(e: publish::Error) -> Self {
        Error::from(e).into()
    }
}

impl Error {
    /// The phase the failure belongs to: the wait for the merge, or the publishing before it.
    pub fn phase(&self) -> Phase {
        match self {
            Error::CheckFailed { .. }
            | Error::Closed { .. }
            | Error::MergeRefused { .. }
            | Error::NotMerged { .. }
            | Error::KeepsConflicting { .. } => Phase::Merge,
            _ => Phase::Publish,
        }
    }

    /// True when the failure is the user's input: exit code 2.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            Error::Publish(e) => e.is_invalid_input(),
            Error::UnknownLabel { .. } | Error::BadBranchName { .. } => true,
            _ => false,
        }
    }
}

/// Re-creations of the branch on a moved, conflicting base before giving up.
const MAX_RECREATIONS: u32 = 5;

/// Runs the pull-request mode: open (or reuse) the pull request, then merge it per the policy.
///
/// # Errors
/// See [`Error`]; invalid labels are found before anything is written.
pub async fn run(
    publish_config: &publish::Config,
    config: &Config,
    report: &Report,
) -> Result<Outcome, Failure> {
    let started = tokio::time::Instant::now();
    let builder = match &config.forge {
        ForgeKind::Gitea => gitea::Client::builder(publish_config.server_url.as_str()),
        ForgeKind::Github { api_url } => gitea::Client::builder(api_url.as_str()).github(),
    };
    let client = builder
        .token(publish_config.token.clone())
        .extra_roots(publish_config.server_ca.clone())
        .read_timeout(publish_config.request_timeout)
        .request_timeout(publish_config.request_timeout)
        .build()
        .map_err(|e| api("cannot create the API client", e))?;
    let forge = match &config.forge {
        ForgeKind::Gitea => Forge::Gitea(client.repo(&publish_config.owner, &publish_config.name)),
        ForgeKind::Github { .. } => {
            Forge::Github(client.github_repo(&publish_config.owner, &publish_config.name))
        }
    };
    let base = match &publish_config.branch {
        Some(b) => b.clone(),
        None => forge
            .default_branch()
            .await
            .map_err(|e| api("cannot read the repository", e))?,
    };
    let session = Session {
        labels: labels(&forge, publish_config, &config.labels).await?,
        forge,
        publish: publish_config,
        config,
        keys: Keys::of(publish_config, &base),
        base,
        report,
    };
    let open = session.open_pulls().await?;
    let ours = |p: &&PullRequest| p.base.branch == session.base;
    let mine = open
        .iter()
        .filter(ours)
        .find(|p| {
            marker(&p.body) == Some((session.keys.subject.as_str(), session.keys.change.as_str()))
        })
        .cloned();
    let older: Vec<&PullRequest> = open
        .iter()
        .filter(ours)
        .filter(|p| {
            marker(&p.body)
                .is_some_and(|(s, c)| s == session.keys.subject && c != session.keys.change)
        })
        .collect();

    let mut opened = match mine {
        Some(pull) => session.reuse(&pull).await?,
        None => match session.open_new(0).await? {
            Ok(o) => o,
            // Nothing to change, or a dry run: the publish outcome says which.
            Err(publish) => {
                return Ok(Outcome {
                    publish,
                    pull: None,
                    merged: None,
                })
            }
        },
    };
    if publish_config.dry_run {
        // A dry run writes nothing: the open pull request of this change is named, not merged,
        // and older ones are not closed.
        report.info(
            Phase::Publish,
            format_args!(
                "dry run: would {} pull request #{} ({}){}",
                if config.merge == MergePolicy::None {
                    "leave open"
                } else {
                    "merge"
                },
                opened.info.number,
                opened.info.url,
                if config.supersede && !older.is_empty() {
                    format!(
                        " and close {}",
                        older
                            .iter()
                            .map(|p| format!("#{}", p.number))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    String::new()
                }
            ),
        );
        return Ok(Outcome {
            publish: opened.publish,
            pull: Some(opened.info),
            merged: None,
        });
    }
    let failed = |error: Error, phase: Phase, opened: Opened| Failure {
        phase,
        error,
        publish: Some(opened.publish),
        pull: Some(opened.info),
    };
    if config.supersede {
        for old in older {
            let note = format!(
                "Superseded by #{} ({}), which deploys {} {}.",
                opened.info.number,
                opened.info.url,
                publish_config.image,
                publish_config.change.shown()
            );
            if let Err(error) = session.close_with(old.number, &note).await {
                return Err(failed(error, Phase::Publish, opened));
            }
            report.info(
                Phase::Publish,
                format_args!("closed the older pull request #{} (superseded)", old.number),
            );
            opened.info.superseded.push(old.number);
        }
    }
    if config.merge == MergePolicy::None {
        report.info(
            Phase::Publish,
            format_args!(
                "pull request #{} is open: {} (merge: none; it deploys once merged)",
                opened.info.number, opened.info.url
            ),
        );
        return Ok(Outcome {
            publish: opened.publish,
            pull: Some(opened.info),
            merged: None,
        });
    }
    report.enter(Phase::Merge);
    let budget = config.timeout.saturating_sub(started.elapsed());
    let deadline = Deadline::after(budget);
    // The wait ends at its deadline even when a request to the forge hangs.
    let merged = tokio::time::timeout(
        budget + Duration::from_secs(1),
        session.merge(&mut opened, deadline),
    )
    .await;
    match merged {
        Ok(Ok(merged)) => Ok(Outcome {
            publish: opened.publish,
            pull: Some(opened.info),
            merged: Some(merged),
        }),
        Ok(Err(error)) => Err(failed(error, Phase::Merge, opened)),
        Err(_) => {
            let error = Error::NotMerged {
                number: opened.info.number,
                url: opened.info.url.clone(),
                elapsed: budget,
                waiting: "an answer from the forge, which did not come in time".into(),
            };
            Err(failed(error, Phase::Merge, opened))
        }
    }
}

/// One run's view of the forge and its inputs.
struct Session<'a> {
    forge: Forge<'a>,
    publish: &'a publish::Config,
    config: &'a Config,
    keys: Keys,
    base: String,
    labels: Vec<Label>,
    report: &'a Report,
}

/// A pull request that is open, with the publish outcome of its commit.
struct Opened {
    info: PullInfo,
    publish: publish::Outcome,
}

fn info(p: &PullRequest, reused: bool) -> PullInfo {
    PullInfo {
        number: p.number,
        url: p.html_url.clone(),
        branch: p.head.branch.clone(),
        base: p.base.branch.clone(),
        title: p.title.clone(),
        head_sha: p.head.sha.clone(),
        reused,
        recreated: 0,
        superseded: Vec::new(),
    }
}

fn api(action: impl Into<String>, source: gitea::Error) -> Error {
    Error::Api {
        action: action.into(),
        source,
    }
}

/// The identity of a deploy's pull requests, written into each as a hidden marker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Keys {
    /// What is deployed where: the image, the target, the paths and the base branch.
    subject: String,
    /// The subject and the new value.
    change: String,
}

impl Keys {
    fn of(c: &publish::Config, base: &str) -> Keys {
        let mut paths = c.paths.clone();
        paths.sort();
        let subject = hex(&format!(
            "{}\n{}\n{}\n{base}",
            c.image,
            c.target.name(),
            paths.join("\n")
        ));
        let change = hex(&format!("{subject}\n{}", c.change.shown()));
        Keys { subject, change }
    }
}

fn hex(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The hidden marker of a pull request's body.
fn marker_line(keys: &Keys) -> String {
    format!(
        "<!-- gitops-deploy subject={} change={} -->",
        keys.subject, keys.change
    )
}

/// The (subject, change) of a body's marker.
fn marker(body: &str) -> Option<(&str, &str)> {
    let start = body.find("<!-- gitops-deploy subject=")?;
    let rest = &body[start + "<!-- gitops-deploy subject=".len()..];
    let (subject, rest) = rest.split_once(" change=")?;
    let (change, _) = rest.split_once(" -->")?;
    Some((subject, change))
}

/// A value as a branch-name part: lower case, `[a-z0-9._-]` only, no `..`, at most 40 characters.
fn slug(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
            c
        } else {
            '-'
        };
        let last = out.chars().last();
        if (c == '-' || c == '.') && matches!(last, Some('-' | '.') | None) {
            continue;
        }
        out.push(c);
    }
    let mut out: String = out.chars().take(40).collect();
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    out
}

/// Renders a branch, title or body template.
fn render(
    template: &str,
    value: impl Fn(&str) -> Option<Option<String>>,
) -> Result<String, String> {
    let known: Vec<(&str, &str)> = publish::PLACEHOLDERS
        .iter()
        .chain(EXTRA_PLACEHOLDERS)
        .copied()
        .collect();
    publish::render_with(template, &known, value)
}

/// The placeholders' values for this deploy (the table only once the files were read).
fn values<'a>(
    c: &'a publish::Config,
    keys: &'a Keys,
    base: &'a str,
    files: Option<&'a [publish::FileOutcome]>,
) -> impl Fn(&str) -> Option<Option<String>> + 'a {
    move |name| {
        Some(match name {
            "image" => Some(c.image.clone()),
            "new" => Some(c.change.shown().to_owned()),
            "old" => Some(files.map_or_else(String::new, old_values)),
            "paths" => Some(c.paths.join(", ")),
            "source_repo" => c.source_repo.clone(),
            "source_sha" => c.source_sha.clone(),
            "run_url" => c.run_url.clone(),
            "image_slug" => Some(slug(&c.image)),
            "new_slug" => Some(slug(c.change.shown())),
            "key" => Some(keys.change.clone()),
            "base" => Some(base.to_owned()),
            "changes" => Some(files.map_or_else(String::new, table)),
            _ => return None,
        })
    }
}

fn old_values(files: &[publish::FileOutcome]) -> String {
    let mut old: Vec<String> = Vec::new();
    for i in files.iter().filter(|f| f.changed).flat_map(|f| &f.images) {
        let v = i.previous.clone().unwrap_or_else(|| "none".into());
        if !old.contains(&v) {
            old.push(v);
        }
    }
    old.join(", ")
}

/// The old → new table of the body.
fn table(files: &[publish::FileOutcome]) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut t = String::from("| file | image | old | new |\n| --- | --- | --- | --- |\n");
    for f in files.iter().filter(|f| f.changed) {
        for i in &f.images {
            t.push_str(&format!(
                "| `{}` | `{}` | {} | **{}** |\n",
                cell(&f.path),
                cell(&i.name),
                cell(i.previous.as_deref().unwrap_or("(none)")),
                cell(&i.new)
            ));
        }
    }
    t.trim_end().to_owned()
}

/// The labels the inputs name; an unknown name is an input error.
async fn labels(
    forge: &Forge<'_>,
    c: &publish::Config,
    names: &[String],
) -> Result<Vec<Label>, Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let labels = forge
        .labels()
        .await
        .map_err(|e| api("cannot read the repository's labels", e))?;
    names
        .iter()
        .map(|n| {
            labels
                .iter()
                .find(|l| &l.name == n)
                .cloned()
                .ok_or_else(|| Error::UnknownLabel {
                    name: n.clone(),
                    repository: c.repository(),
                    known: if labels.is_empty() {
                        "no labels".into()
                    } else {
                        labels
                            .iter()
                            .map(|l| l.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                })
        })
        .collect()
}

/// True when publishing to a new branch failed because the branch exists.
fn branch_exists(e: &publish::Error) -> bool {
    matches!(e, publish::Error::Api { source, .. }
        if source.status() == Some(StatusCode::UNPROCESSABLE_ENTITY)
            && source.api().is_some_and(|a| a.message.contains("already exists")))
}

/// Polls a pull request that nothing blocks may stay unmerged before the merge is asked for
/// directly (a scheduled auto-merge runs on events; one missed leaves it waiting).
const READY_POLLS_BEFORE_MERGING: u32 = 3;

impl Session<'_> {
    /// Every open pull request (newest first).
    async fn open_pulls(&self) -> Result<Vec<PullRequest>, Error> {
        let mut all = Vec::new();
        for page in 1..=20 {
            let (got, size) = match self.forge.open_pulls(page).await {
                Ok(g) => g,
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) && page == 1 => {
                    return Err(Error::PullsDisabled {
                        repository: self.forge.full_name(),
                    })
                }
                Err(e) => return Err(api("cannot list the open pull requests", e)),
            };
            let last = got.len() < size;
            all.extend(got);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Reuses an open pull request of an earlier run of the same change.
    async fn reuse(&self, pull: &PullRequest) -> Result<Opened, Error> {
        // Describe the change against the base as it is now (the rollback needs the values the
        // pull request replaces); nothing is written.
        let dry = publish::Config {
            dry_run: true,
            branch: Some(self.base.clone()),
            ..self.publish.clone()
        };
        let mut described = publish::run(&dry, self.report).await?;
        described.dry_run = self.publish.dry_run;
        described.commit_sha = pull.head.sha.clone();
        described.commit_url = self.publish.commit_url(&pull.head.sha);
        described.branch = pull.head.branch.clone();
        self.report.info(
            Phase::Publish,
            format_args!(
                "reusing the open pull request #{} ({}) of an earlier run",
                pull.number, pull.html_url
            ),
        );
        Ok(Opened {
            info: info(pull, true),
            publish: described,
        })
    }

    /// Writes the change on a new branch from the base's head and opens its pull request;
    /// `Err(outcome)` when the base already holds the values, or in a dry run. `attempt` > 0 names
    /// a re-creation.
    async fn open_new(&self, attempt: u32) -> Result<Result<Opened, publish::Outcome>, Error> {
        let c = self.publish;
        let (keys, base) = (&self.keys, self.base.as_str());
        let name = render(&self.config.branch_template, values(c, keys, base, None))
            .expect("template checked by cli");
        let name = name.trim().to_owned();
        if name.is_empty() || name == base || name.starts_with('-') || name.ends_with('/') {
            return Err(Error::BadBranchName {
                name,
                base: base.to_owned(),
            });
        }
        let mut suffix = attempt;
        let out = loop {
            let branch = if suffix == 0 {
                name.clone()
            } else {
                format!("{name}-{}", suffix + 1)
            };
            let write = publish::Config {
                branch: Some(base.to_owned()),
                new_branch: Some(branch),
                ..c.clone()
            };
            match publish::run(&write, self.report).await {
                Ok(o) => break o,
                // Left over from an earlier pull request of the same change (closed, or whose
                // opening failed): take the next name.
                Err(e) if branch_exists(&e) && suffix < attempt + 20 => suffix += 1,
                Err(e) => return Err(e.into()),
            }
        };
        if !out.changed || out.dry_run {
            return Ok(Err(publish::Outcome {
                branch: base.to_owned(),
                ..out
            }));
        }
        let title = render(
            &self.config.title_template,
            values(c, keys, base, Some(&out.files)),
        )
        .expect("template checked by cli");
        let body = render(
            &self.config.body_template,
            values(c, keys, base, Some(&out.files)),
        )
        .expect("template checked by cli");
        let body = format!("{}\n\n{}\n", body.trim_end(), marker_line(keys));
        let created = self
            .forge
            .create(
                &out.branch,
                base,
                title.trim(),
                &body,
                &self.labels,
                &self.config.assignees,
                &self.config.reviewers,
            )
            .await;
        let pull = match created {
            Ok((p, warning)) => {
                if let Some(w) = warning {
                    self.report.warn(Phase::Publish, w);
                }
                p
            }
            // Another run of the same change opened it first (same head and base).
            Err(CreateFailure::Exists(e)) => self
                .open_pulls()
                .await?
                .into_iter()
                .find(|p| p.head.branch == out.branch && p.base.branch == base)
                .ok_or_else(|| api("cannot open the pull request", e))?,
            Err(CreateFailure::Disabled) => {
                return Err(Error::PullsDisabled {
                    repository: c.repository(),
                })
            }
            Err(CreateFailure::Other(e)) => return Err(api("cannot open the pull request", e)),
        };
        self.report.info(
            Phase::Publish,
            format_args!(
                "opened pull request #{} {} ← {} ({})",
                pull.number, base, out.branch, pull.html_url
            ),
        );
        let mut info = info(&pull, false);
        info.head_sha = out.commit_sha.clone();
        Ok(Ok(Opened { info, publish: out }))
    }

    /// Comments on a pull request and closes it.
    async fn close_with(&self, number: u64, note: &str) -> Result<(), Error> {
        self.forge
            .comment(number, note)
            .await
            .map_err(|e| api(format!("cannot comment on pull request #{number}"), e))?;
        self.forge
            .close(number)
            .await
            .map_err(|e| api(format!("cannot close pull request #{number}"), e))?;
        Ok(())
    }

    /// Asks the forge to merge (now, or when the checks succeed); a refusal (with the forge's
    /// message) is not an error here: the caller looks at the state next.
    async fn ask_merge(&self, opened: &Opened) -> Result<Option<String>, Error> {
        let number = opened.info.number;
        let asked = self
            .forge
            .ask_merge(
                number,
                self.config.style,
                &opened.info.head_sha,
                &merge_title(&opened.info),
                self.config.delete_branch,
                self.config.merge == MergePolicy::Auto,
            )
            .await
            .map_err(|e| api(format!("cannot merge pull request #{number}"), e))?;
        Ok(match asked {
            Asked::Accepted => None,
            Asked::Scheduled => {
                self.report.info(
                    Phase::Merge,
                    format_args!(
                        "pull request #{number} will merge ({}) when its required checks succeed",
                        self.config.style.as_str()
                    ),
                );
                None
            }
            Asked::Refused(message) => Some(message),
        })
    }

    /// Merges the pull request per the policy, re-creating it on a conflicting base; waits
    /// (bounded) for an auto-merge.
    async fn merge(&self, opened: &mut Opened, deadline: Deadline) -> Result<Merged, Error> {
        let started = tokio::time::Instant::now();
        if !self.config.style.writes_merge_message() {
            // The branch's commit has no skip marker (the pull request's checks must run), and
            // these styles make it the base's tip as it is.
            self.report.warn(
                Phase::Merge,
                format_args!(
                    "merge_style {}: our commit lands on {} without [skip ci], so workflows on \
                     pushes to {} run for it; squash, merge or rebase-merge write a commit that \
                     carries it",
                    self.config.style.as_str(),
                    self.base,
                    self.base
                ),
            );
        }
        let mut last_said = String::new();
        let mut ask = true;
        let mut ready_polls = 0u32;
        // The last state seen was settled (not still being checked): a refusal then is final.
        let mut settled = false;
        // The base's head when the pull request was first seen unmergeable.
        let mut unmergeable_on: Option<String> = None;
        // The forge's last refusal, named if the wait runs out.
        let mut last_refusal: Option<String> = None;
        loop {
            let number = opened.info.number;
            let url = opened.info.url.clone();
            let refused = if ask {
                ask = false;
                match self.ask_merge(opened).await {
                    Ok(r) => r,
                    // It may have merged (or closed) meanwhile, which the state tells.
                    Err(e) => match self.state(opened).await?.0 {
                        State::Merged { .. } | State::Closed => None,
                        _ => return Err(e),
                    },
                }
            } else {
                None
            };
            let refused_when_settled = final_refusal(settled, refused.as_deref());
            let (mut state, base_head) = self.state(opened).await?;
            // A forge re-checks its pull requests after every push to the base, and reports them
            // unmergeable meanwhile: a conflict is one that is still there on the next look at
            // the same base.
            if state == State::Conflict {
                if unmergeable_on.as_deref() == Some(base_head.as_str()) {
                    unmergeable_on = None;
                } else {
                    unmergeable_on = Some(base_head);
                    state = State::Checking;
                }
            } else {
                unmergeable_on = None;
            }
            settled = !matches!(state, State::Checking);
            let waiting = match &state {
                State::Merged { sha } => {
                    let keeps = self.config.style.keeps_our_commit();
                    let style = self.config.style.as_str();
                    let short = crate::text::short(sha);
                    let note = if keeps {
                        String::new()
                    } else {
                        format!(
                            "; a {style} merge writes new commits, so the deploy waits for {short} \
                             (it carries our change)"
                        )
                    };
                    self.report.info(
                        Phase::Merge,
                        format_args!("pull request #{number} merged ({style}) as {short}{note}"),
                    );
                    if self.config.delete_branch {
                        // A branch left behind is untidy, not a failed deploy.
                        if let Err(e) = self.forge.delete_merged_branch(&opened.info.branch).await {
                            self.report.warn(
                                Phase::Merge,
                                format_args!(
                                    "cannot delete the merged branch {}: {}",
                                    opened.info.branch,
                                    crate::error::chain(&e)
                                ),
                            );
                        }
                    }
                    return Ok(Merged {
                        sha: sha.clone(),
                        style: self.config.style,
                        keeps_our_commit: keeps,
                    });
                }
                State::Closed => return Err(Error::Closed { number, url }),
                State::CheckFailed {
                    context,
                    state,
                    description,
                } => {
                    return Err(Error::CheckFailed {
                        number,
                        url,
                        context: context.clone(),
                        state: state.clone(),
                        description: description.clone(),
                    })
                }
                State::Conflict => {
                    if let Some(done) = self.recreate(opened).await? {
                        return Ok(done);
                    }
                    // A new pull request: the forge test-merges it first.
                    ask = true;
                    ready_polls = 0;
                    settled = false;
                    continue;
                }
                State::Checking => {
                    // The forge is still test-merging it; if it refused the merge for that, ask
                    // again once it knows.
                    ask = ask_again(self.config.merge, &state, refused.is_some(), false);
                    "the forge to finish checking whether it merges cleanly".to_owned()
                }
                State::Waiting(blockers) => {
                    ready_polls = 0;
                    let said = blockers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    if self.config.merge == MergePolicy::Now && refused_when_settled {
                        return Err(Error::MergeRefused {
                            number,
                            url,
                            reason: refusal(refused.as_deref().unwrap_or_default(), &state),
                        });
                    }
                    ask = ask_again(
                        self.config.merge,
                        &state,
                        refused.is_some(),
                        refused_when_settled,
                    );
                    said
                }
                State::Ready => {
                    // Nothing we can see blocks it, yet the forge refused: its own reason (a merge
                    // style the repository does not allow, a user who may not merge).
                    if let (MergePolicy::Now, true) = (self.config.merge, refused_when_settled) {
                        return Err(Error::MergeRefused {
                            number,
                            url,
                            reason: refused.unwrap_or_default(),
                        });
                    }
                    ready_polls += 1;
                    if ready_polls >= READY_POLLS_BEFORE_MERGING {
                        ready_polls = 0;
                        // Nothing blocks it: merge it directly rather than wait for an event.
                        let direct = self
                            .forge
                            .merge_now(
                                number,
                                self.config.style,
                                &opened.info.head_sha,
                                &merge_title(&opened.info),
                                self.config.delete_branch,
                            )
                            .await;
                        match direct {
                            Ok(Asked::Refused(why)) => last_refusal = Some(why),
                            Ok(_) => {}
                            // It may have merged meanwhile (Forgejo answers 403 when deleting the
                            // branch after a merge): the next look tells.
                            Err(e) => last_refusal = Some(crate::error::chain(&e)),
                        }
                        continue;
                    }
                    "the forge to merge it (nothing blocks it as far as we can see)".to_owned()
                }
            };
            if let Some(why) = &refused {
                last_refusal = Some(why.clone());
            }
            if waiting != last_said {
                self.report.info(
                    Phase::Merge,
                    format_args!("pull request #{number} waits for {waiting}"),
                );
                last_said = waiting;
            }
            if deadline.remaining().is_zero() {
                return Err(Error::NotMerged {
                    number,
                    url,
                    elapsed: started.elapsed(),
                    waiting: match last_refusal.filter(|w| !w.is_empty()) {
                        Some(why) => {
                            format!("{last_said}; the forge last refused the merge: {why}")
                        }
                        None => last_said,
                    },
                });
            }
            tokio::time::sleep(self.config.poll_interval.min(deadline.remaining())).await;
        }
    }

    /// Re-applies the change to the moved base on a new branch, opens its pull request and closes
    /// the conflicting one, pointing at it.
    async fn recreate(&self, opened: &mut Opened) -> Result<Option<Merged>, Error> {
        let base = self.base.as_str();
        let number = opened.info.number;
        let times = opened.info.recreated + 1;
        if times > MAX_RECREATIONS {
            return Err(Error::KeepsConflicting { times: times - 1 });
        }
        self.report.info(
            Phase::Merge,
            format_args!(
                "pull request #{number} conflicts with {base}; re-applying the change to the new {base}"
            ),
        );
        match self.open_new(times).await? {
            Ok(mut fresh) => {
                self.close_with(
                    number,
                    &format!(
                        "Conflicts with {base}; the change was re-applied to the new {base} in #{} ({}).",
                        fresh.info.number, fresh.info.url
                    ),
                )
                .await?;
                fresh.info.recreated = times;
                fresh.info.superseded = std::mem::take(&mut opened.info.superseded);
                *opened = fresh;
                Ok(None)
            }
            Err(at_base) => {
                // The base now holds our values (someone merged the same change): nothing is left
                // to merge, and the base's head is what to verify.
                self.close_with(
                    number,
                    &format!("{base} already holds this change; closing."),
                )
                .await?;
                self.report.info(
                    Phase::Merge,
                    format_args!(
                        "{base} already holds this change at {}; closed #{number}",
                        crate::text::short(&at_base.commit_sha)
                    ),
                );
                Ok(Some(Merged {
                    sha: at_base.commit_sha,
                    style: self.config.style,
                    keeps_our_commit: false,
                }))
            }
        }
    }

    /// Reads the pull request, the base's protection, the head's statuses and the reviews, and
    /// decides. A pull request the forge cannot merge is a conflict only when the base changed a
    /// file we edited since the branch started; otherwise the forge is still checking it.
    async fn state(&self, opened: &Opened) -> Result<(State, String), Error> {
        let number = opened.info.number;
        let changed: Vec<String> = opened
            .publish
            .files
            .iter()
            .filter(|f| f.changed)
            .map(|f| f.path.clone())
            .collect();
        let seen = self
            .forge
            .seen(number, &self.base, &opened.info.head_sha, &changed)
            .await
            .map_err(|e| api(format!("cannot read pull request #{number}"), e))?;
        let state = decide::state(&decide::Snapshot {
            pull: &seen.pull,
            base: &seen.base,
            statuses: &seen.statuses,
            reviews: &seen.reviews,
            base_changed_our_files: seen.base_changed_our_files,
            forge_blocked: seen.forge_blocked.as_deref(),
        });
        Ok((state, seen.base.commit.id))
    }
}

/// A refusal that only says "not yet": Gitea's 405 while it test-merges ("Please try again later",
/// `routers/api/v1/repo/pull.go`), GitHub's "Base branch was modified. Review and try the merge
/// again." (a push to the base raced the merge).
fn temporary_refusal(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("try again later") || m.contains("try the merge again")
}

/// Whether a refusal is the forge's last word: the look before saw the pull request settled (not
/// being test-merged), and the refusal does not itself say "not yet" (a push to the base in
/// between starts a new check).
fn final_refusal(settled: bool, refused: Option<&str>) -> bool {
    settled && refused.is_some_and(|m| !temporary_refusal(m))
}

/// Whether to ask the forge to merge again on the next look. A refusal while the forge was still
/// test-merging the pull request (Gitea: 405 "Please try again later", `routers/api/v1/repo/pull.go`)
/// scheduled nothing, even when the checking ended before our next look and the pull request now
/// only waits for its checks; `now` asks on every look while something blocks it.
fn ask_again(
    policy: MergePolicy,
    state: &State,
    refused: bool,
    refused_when_settled: bool,
) -> bool {
    match state {
        State::Checking => refused,
        State::Waiting(_) => policy == MergePolicy::Now || (refused && !refused_when_settled),
        _ => false,
    }
}

/// The merge commit's title; its message is `[skip ci]`, so that the merge (on the base, maybe the
/// repository that builds the image) does not start the pipeline again.
fn merge_title(p: &PullInfo) -> String {
    format!("{} (#{})", p.title, p.number)
}

/// Why `merge: now` was refused: the forge's message and what the snapshot shows.
fn refusal(message: &str, state: &State) -> String {
    let seen = match state {
        State::Waiting(b) => b
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        State::CheckFailed { context, state, .. } => {
            format!("required check {context:?} is {state}")
        }
        State::Closed => "it is closed".into(),
        _ => String::new(),
    };
    match (message.is_empty(), seen.is_empty()) {
        (false, false) => format!("{message} ({seen}); use merge: auto to wait for it"),
        (false, true) => message.to_owned(),
        (true, false) => format!("{seen}; use merge: auto to wait for it"),
        (true, true) => "the forge refused the merge".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_branch_name_parts() {
        for (value, want) in [
            (
                "registry.example.com/demo/web",
                "registry.example.com-demo-web",
            ),
            ("1.2.3", "1.2.3"),
            ("1.2.3@sha256:abcdef", "1.2.3-sha256-abcdef"),
            ("A..B//C", "a.b-c"),
            ("-x-", "x"),
        ] {
            assert_eq!(slug(value), want, "{value}");
        }
        assert!(slug(&"x".repeat(100)).len() <= 40);
    }

    #[test]
    fn markers_round_trip_and_identify_subject_and_change() {
        let c = publish::Config::for_tests();
        let k = Keys::of(&c, "main");
        let body = format!("text\n\n{}\n", marker_line(&k));
        assert_eq!(marker(&body), Some((k.subject.as_str(), k.change.as_str())));
        assert_eq!(marker("no marker"), None);
        // Another value: same subject, another change; other paths: another subject.
        let mut other = c.clone();
        other.change = publish::Change::Set {
            setting: crate::edit::ImageSetting::deploy("app", Some("3.0.0"), None, None).unwrap(),
            shown: "3.0.0".into(),
        };
        let k2 = Keys::of(&other, "main");
        assert_eq!(k2.subject, k.subject);
        assert_ne!(k2.change, k.change);
        let mut moved = c.clone();
        moved.paths = vec!["other".into()];
        assert_ne!(Keys::of(&moved, "main").subject, k.subject);
        // Path order does not matter.
        // Another base: another subject (the same change to staging and prod are two pull requests).
        assert_ne!(Keys::of(&c, "staging").subject, k.subject);
        let mut a = c.clone();
        a.paths = vec!["x".into(), "y".into()];
        let mut b = c;
        b.paths = vec!["y".into(), "x".into()];
        assert_eq!(Keys::of(&a, "main"), Keys::of(&b, "main"));
    }

    #[test]
    fn default_templates_render() {
        let c = publish::Config::for_tests();
        let k = Keys::of(&c, "main");
        let branch = render(DEFAULT_BRANCH, values(&c, &k, "main", None)).unwrap();
        assert_eq!(branch, format!("gitops-deploy/app-2.0.0-{}", k.change));
        let files = vec![publish::FileOutcome {
            path: "k/kustomization.yaml".into(),
            changed: true,
            images: vec![publish::ImageOutcome {
                name: "app".into(),
                previous: Some("1.0.0".into()),
                new: "2.0.0".into(),
                previous_values: None,
            }],
            diff: String::new(),
        }];
        let body = render(DEFAULT_BODY, values(&c, &k, "main", Some(&files))).unwrap();
        assert!(
            body.contains("| `k/kustomization.yaml` | `app` | 1.0.0 | **2.0.0** |"),
            "{body}"
        );
        // Unavailable runner values drop their lines.
        assert!(!body.contains("run:"), "{body}");
        assert!(check_template("{nope}")
            .unwrap_err()
            .contains("unknown placeholder {nope}"));
    }

    #[test]
    fn refusals_that_say_not_yet_are_temporary() {
        assert!(temporary_refusal("Please try again later"));
        assert!(temporary_refusal(
            "Base branch was modified. Review and try the merge again."
        ));
        assert!(!temporary_refusal(
            "Does not have enough approvals (approvals: 0 of 1 required)"
        ));
        assert!(!temporary_refusal("Pull Request is not mergeable"));
        // (settled before, refusal, final)
        for (settled, refused, want) in [
            (true, Some("Please try again later"), false),
            (true, Some("Does not have enough approvals"), true),
            (false, Some("Does not have enough approvals"), false),
            (true, None, false),
        ] {
            assert_eq!(
                final_refusal(settled, refused),
                want,
                "{settled} {refused:?}"
            );
        }
    }

    #[test]
    fn a_merge_refused_while_checking_is_asked_again() {
        use MergePolicy::{Auto, Now};
        let waiting = State::Waiting(vec![]);
        // (policy, state, refused, refused when the state before was settled, ask again)
        let table = [
            (Auto, State::Checking, true, false, true),
            (Auto, State::Checking, false, false, false),
            // The checking ended between the refusal and our look: the auto-merge is not
            // scheduled, so ask again (the race CI once lost).
            (Auto, waiting.clone(), true, false, true),
            (Auto, waiting.clone(), true, true, false),
            (Auto, waiting.clone(), false, false, false),
            (Now, waiting.clone(), false, false, true),
            (Auto, State::Ready, true, false, false),
        ];
        for (policy, state, refused, settled, want) in table {
            assert_eq!(
                ask_again(policy, &state, refused, settled),
                want,
                "{policy:?} {state:?} refused={refused} settled={settled}"
            );
        }
    }

    #[test]
    fn refusals_say_what_blocks() {
        let s = State::Waiting(vec![Blocker::Approvals { have: 0, need: 1 }]);
        assert_eq!(
            refusal("Does not have enough approvals", &s),
            "Does not have enough approvals (approvals: 0 of 1 required); use merge: auto to wait for it"
        );
    }
}
