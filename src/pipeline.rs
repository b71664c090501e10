//! The deploy pipeline: inputs → plan → publish → verify (Argo CD → rollout → HTTP) → rollback on
//! failure when asked. The only module that knows the order of the steps; each step owns its config,
//! outcome and logic.

use std::sync::Arc;
use std::time::Duration;

use crate::argocd::phase::RevisionOracle;
use crate::argocd::verdict::{short, Target};
use crate::edit::{FieldUpdate, ImageSetting, ImageValues};
use crate::error::{DeployError, Phase};
use crate::forge::git::History;
use crate::publish;
use crate::pull_request;
use crate::report::Report;
use crate::secret::Secret;
use crate::verify;

/// The typed plan of a `run`: one config per step.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The publish step.
    pub publish: publish::Config,
    /// The verify phases (each only when configured) and the rollback switch.
    pub verify: verify::Config,
    /// What the verify phases expect to see (our image, tag, digest).
    pub expect: verify::Expect,
    /// Pull-request mode (`None`: push to the branch).
    pub pull_request: Option<pull_request::Config>,
}

impl RunConfig {
    /// Every secret in the plan, to register with the masker before any network call.
    pub fn secrets(&self) -> Vec<Secret> {
        self.publish.token.iter().cloned().collect()
    }
}

/// Everything a `run` did, as typed values: each step's outcome (partly filled when a step failed),
/// the failure, and the rollback as its own section. The outputs, the step summary, the commit status
/// and `--output json` are functions of it (see `cli::action`).
#[derive(Debug, Default)]
pub struct RunReport {
    /// The publish step's outcome (`None` when it failed or never ran); in pull-request mode, the
    /// commit on the pull request's branch.
    pub publish: Option<publish::Outcome>,
    /// Pull-request mode: the pull request (also when a later phase failed).
    pub pull: Option<pull_request::PullInfo>,
    /// Pull-request mode: its merge.
    pub merged: Option<pull_request::Merged>,
    /// What the verify phases proved: those that passed (`None` for a dry run, or when nothing is
    /// configured, or when publishing failed).
    pub verify: Option<verify::Outcome>,
    /// The rollback, when one ran.
    pub rollback: Option<RollbackReport>,
    /// Why the run failed (`None`: it succeeded).
    pub failure: Option<DeployError>,
    /// Each phase's time, in order of first appearance.
    pub phases: Vec<(Phase, Duration)>,
}

impl RunReport {
    /// A run that failed before any step (its inputs).
    pub fn failed(failure: DeployError) -> RunReport {
        RunReport {
            failure: Some(failure),
            ..RunReport::default()
        }
    }

    /// Takes the phases' times from the report.
    fn timed(mut self, report: &Report) -> RunReport {
        self.phases = report.phase_durations();
        self
    }
}

/// A rollback: what it did (or why it could not), and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackReport {
    /// The values written back and whether Argo CD confirmed them, or why the rollback failed.
    pub result: Result<RollbackOutcome, RollbackFailure>,
    /// Its time, publish and Argo CD wait included.
    pub elapsed: Duration,
}

/// A rollback that failed, with the commits it had made before (one per group of files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackFailure {
    /// Why it failed.
    pub error: String,
    /// The rollback commits that landed before the failure.
    pub commits: Vec<String>,
}

/// What a rollback did (reported in the failure message).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RollbackOutcome {
    /// The values written back, e.g. `1.4.1`.
    pub restored: String,
    /// The rollback commit(s).
    pub commits: Vec<String>,
    /// True when Argo CD reported the rolled-back revision synced and healthy in time.
    pub healthy: bool,
}

/// Share of the overall timeout kept for a rollback (capped at [`ROLLBACK_RESERVE_MAX`]), so that the
/// process still ends within `timeout` + 5 s.
const ROLLBACK_RESERVE_SHARE: u32 = 4;
/// Upper bound of the time kept for a rollback.
const ROLLBACK_RESERVE_MAX: Duration = Duration::from_secs(120);

/// The rendered image the deploy puts into the templates (`newName or name` + `:tag` + `@digest`).
pub fn expect_of(c: &publish::Config) -> verify::Expect {
    let Some(s) = c.setting() else {
        return verify::Expect::default();
    };
    let set = |f: &FieldUpdate| match f {
        FieldUpdate::Set(v) => Some(v.clone()),
        _ => None,
    };
    let mut image = set(&s.new_name).unwrap_or_else(|| s.name.clone());
    let tag = set(&s.new_tag);
    let digest = set(&s.digest);
    if let Some(t) = &tag {
        image = format!("{image}:{t}");
    }
    if let Some(d) = &digest {
        image = format!("{image}@{d}");
    }
    verify::Expect {
        images: if tag.is_some() || digest.is_some() {
            vec![image]
        } else {
            Vec::new()
        },
        tag,
        digest,
        repo_url: Some(c.clone_url().to_string()),
    }
}

/// Runs the pipeline. Never fails by itself: the [`RunReport`] says what happened, and its
/// `failure` how it ended.
pub async fn run(config: &RunConfig, report: &Report) -> RunReport {
    // Announced to the runner (`::add-mask::`) before anything else is printed.
    for secret in config.secrets().iter().chain(&config.verify.secrets()) {
        report.add_secret(secret);
    }
    let started = tokio::time::Instant::now();
    let overall = started + config.verify.timeout;
    let mut run = RunReport::default();
    // The apps to wait for, settled (and, when named, checked) before anything is written.
    let mut verify_config = config.verify.clone();
    if verify_config.argocd.is_some() && !config.publish.dry_run {
        // Apps that follow `HEAD` follow the default branch, whichever branch we write to.
        let default_branch = default_branch(&config.publish).await;
        let clone_url = config.publish.clone_url().to_string();
        let edited = crate::argocd::apps::Edited {
            repo_url: &clone_url,
            branch: config.publish.branch.as_deref(),
            default_branch: default_branch.as_deref(),
            paths: &config.publish.paths,
        };
        let reader = file_reader(&config.publish, default_branch.as_deref());
        let read = reader.as_ref().map(|r| {
            r as &(dyn Fn(String) -> futures::future::BoxFuture<'static, Option<String>> + Sync)
        });
        match verify::settle_apps(&mut verify_config, Some(&edited), read).await {
            Ok(apps) if apps.len() > 1 => report.info(
                Phase::Inputs,
                format_args!("waiting for {} apps: {}", apps.len(), apps.join(", ")),
            ),
            Ok(_) => {}
            Err(e) => {
                run.failure = Some(if e.is_invalid_input() {
                    DeployError::input(Phase::Inputs, e)
                } else {
                    DeployError::failed(Phase::Argocd, e)
                });
                return run.timed(report);
            }
        }
    }
    let verify_config = &verify_config;
    report.enter(Phase::Publish);
    // The merge wait of a pull request must leave the rollback its reserve.
    let kept = if verify_config.rollback_on_failure {
        (verify_config.timeout / ROLLBACK_RESERVE_SHARE).min(ROLLBACK_RESERVE_MAX)
    } else {
        Duration::ZERO
    };
    let delivered = match deliver(config, &config.publish, None, report, overall - kept).await {
        Ok(d) => d,
        Err(f) => {
            run.publish = f.publish;
            run.pull = f.pull;
            run.failure = Some(f.error);
            return run.timed(report);
        }
    };
    let publish = delivered.publish;
    run.pull = delivered.pull;
    run.merged = delivered.merged;
    let Some(commit) = delivered.commit else {
        // `merge: none`: the pull request is open; it deploys once someone merges it.
        run.publish = Some(publish);
        return run.timed(report);
    };
    if publish.dry_run || verify_config.is_empty() {
        run.publish = Some(publish);
        return run.timed(report);
    }
    let branch = run
        .pull
        .as_ref()
        .map_or(publish.branch.clone(), |p| p.base.clone());
    let oracle = oracle_for(config, &publish, &branch, report).await;
    let rollback = verify_config.rollback_on_failure && publish.changed;
    let reserve = if rollback {
        (verify_config.timeout / ROLLBACK_RESERVE_SHARE).min(ROLLBACK_RESERVE_MAX)
    } else {
        Duration::ZERO
    };
    let result = verify::run_until(
        verify_config,
        &commit,
        &config.expect,
        oracle,
        report,
        overall - reserve,
    )
    .await;
    match result {
        Ok(v) => run.verify = Some(v),
        Err(failure) => {
            run.verify = Some(failure.partial);
            let err = failure.error;
            if rollback {
                report.warn(err.phase, format_args!("{:#}; rolling back", err.source));
                // Everything the rollback does (its publish, its Argo CD wait) is its time.
                let scoped = report.scoped(Phase::Rollback);
                scoped.enter(Phase::Rollback);
                let rb_started = tokio::time::Instant::now();
                let result =
                    run_rollback(config, verify_config, &publish, &commit, &scoped, overall).await;
                let tail = match &result {
                    Ok(rb) => format!(
                        "rolled back to {} ({})",
                        rb.restored,
                        if rb.healthy { "healthy" } else { "not healthy" }
                    ),
                    Err(f) if f.commits.is_empty() => format!("rollback failed: {}", f.error),
                    Err(f) => format!(
                        "rollback failed after writing {}: {}",
                        f.commits
                            .iter()
                            .map(|c| short(c))
                            .collect::<Vec<_>>()
                            .join(", "),
                        f.error
                    ),
                };
                run.rollback = Some(RollbackReport {
                    result,
                    elapsed: rb_started.elapsed(),
                });
                run.failure = Some(DeployError::failed(
                    err.phase,
                    anyhow::anyhow!("{:#}; {tail}", err.source),
                ));
            } else {
                run.failure = Some(err);
            }
        }
    }
    run.publish = Some(publish);
    run.timed(report)
}

/// The repository's default branch, asked of git (`ls-remote --symref`) or of the forge's API;
/// `None` when neither says (the preflight then matches `HEAD` only).
async fn default_branch(c: &publish::Config) -> Option<String> {
    if c.transport == publish::Transport::Git {
        let remote = crate::forge::git::Remote {
            url: c.clone_url(),
            token: c.token.clone(),
            stall_timeout: c.request_timeout,
            server_ca: c.server_ca.clone(),
        };
        let deadline = crate::retry::Deadline::after(c.request_timeout);
        return crate::forge::git::default_branch(&remote, deadline)
            .await
            .ok()
            .flatten();
    }
    let repo = preflight_client(c)?
        .repo(&c.owner, &c.name)
        .get()
        .await
        .ok()?;
    Some(repo.default_branch).filter(|b| !b.is_empty())
}

/// The forge API client of the preflight's reads (short requests: they come before publishing).
fn preflight_client(c: &publish::Config) -> Option<crate::forge::gitea::Client> {
    crate::forge::gitea::Client::builder(c.server_url.as_str())
        .token(c.token.clone())
        .extra_roots(c.server_ca.clone())
        .request_timeout(c.request_timeout.min(Duration::from_secs(15)))
        .build()
        .ok()
}

/// Reads files of the GitOps repository at the branch written to over the Gitea/Forgejo contents
/// API, to follow kustomizations in the preflight; `None` over git (the preflight then matches by
/// path alone).
fn file_reader(
    c: &publish::Config,
    default_branch: Option<&str>,
) -> Option<impl Fn(String) -> futures::future::BoxFuture<'static, Option<String>> + Sync> {
    if c.transport == publish::Transport::Git {
        return None;
    }
    let client = preflight_client(c)?;
    let reference = c
        .branch
        .clone()
        .or_else(|| default_branch.map(str::to_owned))?;
    let (owner, name) = (c.owner.clone(), c.name.clone());
    Some(move |path: String| {
        let (client, reference, owner, name) = (
            client.clone(),
            reference.clone(),
            owner.clone(),
            name.clone(),
        );
        Box::pin(async move {
            match client
                .repo(owner, name)
                .contents(path)
                .at_ref(reference)
                .get()
                .await
            {
                Ok(crate::forge::gitea::models::Contents::File(f)) => {
                    String::from_utf8(f.decoded()?.ok()?).ok()
                }
                _ => None,
            }
        }) as futures::future::BoxFuture<'static, Option<String>>
    })
}

/// What publishing delivered: the publish outcome, and in pull-request mode the pull request and
/// its merge.
struct Delivered {
    publish: publish::Outcome,
    pull: Option<pull_request::PullInfo>,
    merged: Option<pull_request::Merged>,
    /// The commit to verify (`None`: a pull request left open).
    commit: Option<String>,
}

/// A failed delivery, with what it had done.
struct Undelivered {
    error: DeployError,
    publish: Option<publish::Outcome>,
    pull: Option<pull_request::PullInfo>,
}

/// Publishes `publish` by the configured mode: a push, or a pull request (titled `title` when
/// given) merged per its policy within `until`.
async fn deliver(
    config: &RunConfig,
    publish: &publish::Config,
    title: Option<String>,
    report: &Report,
    until: tokio::time::Instant,
) -> Result<Delivered, Undelivered> {
    let Some(pr) = &config.pull_request else {
        return match publish::run(publish, report).await {
            Ok(p) => Ok(Delivered {
                commit: Some(p.commit_sha.clone()),
                publish: p,
                pull: None,
                merged: None,
            }),
            Err(e) => Err(Undelivered {
                error: if e.is_invalid_input() {
                    DeployError::input(Phase::Publish, e)
                } else {
                    DeployError::failed(Phase::Publish, e)
                },
                publish: None,
                pull: None,
            }),
        };
    };
    let mut pr = pr.clone();
    pr.timeout = pr
        .timeout
        .min(until.saturating_duration_since(tokio::time::Instant::now()));
    if let Some(t) = title {
        pr.title_template = t;
        // A revert is not superseding anything but itself.
        pr.supersede = false;
    }
    match pull_request::run(publish, &pr, report).await {
        Ok(o) => Ok(Delivered {
            commit: o.deployed_commit().map(str::to_owned),
            publish: o.publish,
            pull: o.pull,
            merged: o.merged,
        }),
        Err(f) => Err(Undelivered {
            error: if f.error.is_invalid_input() {
                DeployError::input(f.phase, f.error)
            } else {
                DeployError::failed(f.phase, f.error)
            },
            publish: f.publish,
            pull: f.pull,
        }),
    }
}

/// Ancestry through the Gitea compare API when the commit went through it, else through git.
async fn oracle_for(
    config: &RunConfig,
    out: &publish::Outcome,
    branch: &str,
    report: &Report,
) -> Option<Arc<dyn RevisionOracle>> {
    let files = out
        .files
        .iter()
        .filter(|f| f.changed)
        .map(|f| f.path.clone())
        .collect();
    let overwrite = Some(crate::ancestry::OverwriteCheck {
        files,
        setting: config.publish.setting()?.clone(),
        target: config.publish.target.clone(),
        setter: config.publish.setter.clone(),
    });
    let remote = crate::forge::git::Remote {
        url: config.publish.clone_url(),
        token: config.publish.token.clone(),
        stall_timeout: config.publish.request_timeout,
        server_ca: config.publish.server_ca.clone(),
    };
    // A fetch of a long history may take a while; a stall is cut by `stall_timeout`.
    let command_timeout = (config.publish.request_timeout * 4).max(Duration::from_secs(60));
    if out.transport == publish::UsedTransport::Git {
        return match History::open(remote, branch, command_timeout).await {
            Ok(history) => Some(Arc::new(crate::ancestry::GitOracle { history, overwrite })),
            Err(e) => {
                report.warn(
                    Phase::Argocd,
                    format_args!(
                        "cannot prepare ancestry checks ({e}); only our own commit counts"
                    ),
                );
                None
            }
        };
    }
    let client = crate::forge::gitea::Client::builder(config.publish.server_url.as_str())
        .token(config.publish.token.clone())
        .extra_roots(config.publish.server_ca.clone())
        .request_timeout(Duration::from_secs(15))
        .build()
        .ok()?;
    Some(Arc::new(crate::ancestry::GiteaOracle {
        client,
        owner: config.publish.owner.clone(),
        name: config.publish.name.clone(),
        overwrite,
        git_fallback: Some(crate::ancestry::GitFallback::new(
            remote,
            branch,
            command_timeout,
        )),
    }))
}

/// A semantic revert: writes the previous values back through the publish path (re-read, re-apply,
/// race-safe; not `git revert`, which would fail or undo a concurrent change), one commit per group
/// of files that held the same previous values, then waits (bounded) for Argo CD to run it.
async fn run_rollback(
    config: &RunConfig,
    verify_config: &verify::Config,
    out: &publish::Outcome,
    deployed: &str,
    report: &Report,
    overall: tokio::time::Instant,
) -> Result<RollbackOutcome, RollbackFailure> {
    // Per file: the values to write back, or `None` where the deploy added the entry (remove it).
    let mut groups: Vec<(Option<ImageValues>, Vec<String>)> = Vec::new();
    for f in out.files.iter().filter(|f| f.changed) {
        for i in f.images.iter().filter(|i| i.name == config.publish.image) {
            let prev = &i.previous_values;
            match groups.iter_mut().find(|(v, _)| v == prev) {
                Some((_, paths)) => paths.push(f.path.clone()),
                None => groups.push((prev.clone(), vec![f.path.clone()])),
            }
        }
    }
    if groups.is_empty() {
        return Err(RollbackFailure {
            error: "no previous values recorded".into(),
            commits: Vec::new(),
        });
    }
    let mut commits = Vec::new();
    let mut restored = Vec::new();
    for (prev, paths) in &groups {
        let field = |v: &Option<String>| v.clone().map_or(FieldUpdate::Remove, FieldUpdate::Set);
        let change = match prev {
            Some(prev) => publish::Change::Set {
                setting: ImageSetting {
                    name: config.publish.image.clone(),
                    new_name: field(&prev.new_name),
                    new_tag: field(&prev.new_tag),
                    digest: field(&prev.digest),
                    tag_suffix: FieldUpdate::Keep,
                },
                shown: describe(prev),
            },
            None => publish::Change::Remove,
        };
        let shown = change.shown().to_owned();
        let c = config.publish.with_change(
            paths.clone(),
            change,
            format!(
                "rollback {{image}} {{old}} → {{new}} after the failed deploy {} [skip ci]",
                short(deployed)
            ),
            overall
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_secs(2)),
        );
        let title = format!(
            "rollback {{image}} to {{new}} after the failed deploy {}",
            short(deployed)
        );
        let d = match deliver(config, &c, Some(title), report, overall).await {
            Ok(d) => d,
            Err(f) => {
                return Err(RollbackFailure {
                    error: format!("{:#}", f.error.source),
                    commits,
                })
            }
        };
        let Some(commit) = d.commit else {
            let pull = d
                .pull
                .as_ref()
                .map_or(String::new(), |p| format!("#{} ({})", p.number, p.url));
            return Err(RollbackFailure {
                error: format!(
                    "opened the rollback pull request {pull}; it rolls back once merged (merge: none)"
                ),
                commits,
            });
        };
        let o = publish::Outcome {
            commit_sha: commit,
            ..d.publish
        };
        report.info(
            Phase::Rollback,
            format_args!(
                "{} in {}",
                match c.change {
                    publish::Change::Remove =>
                        format!("removed the {} entry the deploy added", c.image),
                    publish::Change::Set { .. } => format!("wrote {shown} back"),
                },
                short(&o.commit_sha)
            ),
        );
        commits.push(o.commit_sha);
        restored.push(shown);
    }
    let last = commits.last().cloned().unwrap_or_default();
    let healthy = match &verify_config.argocd {
        Some(a) => {
            let deadline = overall.max(tokio::time::Instant::now() + Duration::from_secs(2));
            // Bounded by the overall deadline (the reserve kept for the rollback), so that the
            // process still ends within `timeout` + 5 s. No ancestry oracle: it knows the
            // deploy's value, not the one written back. Every app in parallel.
            let apps = a.named().to_vec();
            let several = apps.len() > 1;
            let waits = apps.iter().map(|app| {
                let settings = a.for_app(app);
                let report = if several {
                    report.about(app)
                } else {
                    report.clone()
                };
                let last = last.clone();
                async move {
                    let wait = crate::argocd::phase::run(
                        &a.client,
                        &settings,
                        Target::new(&last),
                        None,
                        &report,
                        deadline,
                    );
                    match tokio::time::timeout_at(deadline + Duration::from_secs(1), wait).await {
                        Err(_) => {
                            report.warn(
                                Phase::Rollback,
                                "rollback not confirmed before the deadline",
                            );
                            false
                        }
                        Ok(Ok(o)) => {
                            report.info(
                                Phase::Rollback,
                                format_args!(
                                    "Argo CD {} {} at {}",
                                    o.sync_status,
                                    o.health,
                                    short(&o.synced_revision)
                                ),
                            );
                            true
                        }
                        Ok(Err(e)) => {
                            report
                                .warn(Phase::Rollback, format_args!("rollback not confirmed: {e}"));
                            false
                        }
                    }
                }
            });
            futures::future::join_all(waits)
                .await
                .into_iter()
                .all(|ok| ok)
        }
        None => false,
    };
    Ok(RollbackOutcome {
        restored: restored.join(", "),
        commits,
        healthy,
    })
}

fn describe(v: &ImageValues) -> String {
    publish::describe_new(
        v.new_name.as_deref(),
        v.new_tag.as_deref(),
        v.digest.as_deref(),
    )
}
