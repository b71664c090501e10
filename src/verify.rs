//! The verify step: Argo CD → rollout → HTTP check, each phase only when configured, each bounded by
//! its own deadline and all by the overall `timeout`.
//!
//! The CLI (`cli::verify::config`) turns the raw options into this typed [`Config`], collecting every problem
//! before any network access; [`run`] executes the phases in order and returns an [`Outcome`].

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::argocd::phase::{ArgoOutcome, ArgoSettings, RevisionOracle};
use crate::argocd::verdict::{short, Target};
use crate::argocd::Client;
use crate::error::{DeployError, Phase};
use crate::health::{HealthOutcome, HealthSettings};
use crate::report::Report;
use crate::rollout::phase::{RolloutOutcome, RolloutSettings};
use crate::secret::Secret;

/// Default overall deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Default grace for `Degraded`/`Missing`/`…Error`/stuck pods.
pub const DEFAULT_DEGRADED_GRACE: Duration = Duration::from_secs(30);
/// Default consecutive HTTP passes.
pub const DEFAULT_HEALTH_SUCCESSES: u32 = 3;
/// Default time between HTTP checks.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// What the deploy put into the GitOps repository, as far as verification cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// Full image references (`name:tag`, `name@digest`) the live templates must carry.
    pub images: Vec<String>,
    /// The tag, for `{tag}` in `health_expect_body`.
    pub tag: Option<String>,
    /// The digest, for `{digest}`.
    pub digest: Option<String>,
    /// The GitOps repository's clone URL: picks our source of a multi-source application (a chart
    /// version or another repository's SHA in `status.sync.revisions` is never taken for ours).
    pub repo_url: Option<String>,
}

impl Expect {
    /// Derives tag and digest from the first image reference.
    pub fn from_images(images: &[String]) -> Self {
        let first = images.first().map(String::as_str).unwrap_or("");
        let (name, digest) = match first.split_once('@') {
            Some((n, d)) => (n, Some(d.to_owned())),
            None => (first, None),
        };
        let repo = crate::rollout::image_repository(name);
        let tag = name
            .strip_prefix(repo)
            .and_then(|t| t.strip_prefix(':'))
            .map(str::to_owned);
        Expect {
            images: images.to_vec(),
            tag,
            digest,
            repo_url: None,
        }
    }
}

/// When a deploy to several apps succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Require {
    /// Every app synced our commit and is healthy.
    #[default]
    All,
    /// At least one is (a canary environment, a best-effort region).
    Any,
}

/// The Argo CD part of the config.
#[derive(Debug, Clone)]
pub struct ArgoConfig {
    /// The API client (built here: no I/O, but CA problems are input problems).
    pub client: Client,
    /// Phase settings; `settings.app` is the first named app ([`ArgoConfig::for_app`] gives each
    /// app's).
    pub settings: ArgoSettings,
    /// The apps to wait for.
    pub apps: crate::argocd::apps::Selection,
    /// When several apps succeed together.
    pub require: Require,
    /// Check before publishing that the named apps deploy what the run edits.
    pub preflight: bool,
    /// What app health `Suspended` means: the rollout phase's judgement when it runs (`Succeed`
    /// here), else the `rollout_pause` policy.
    pub on_suspended: crate::verdict::PausePolicy,
    /// Phase deadline (capped by the overall one).
    pub timeout: Option<Duration>,
    /// The token, for masking.
    pub token: Secret,
}

impl ArgoConfig {
    /// The phase settings of app `name`.
    pub fn for_app(&self, name: &str) -> ArgoSettings {
        ArgoSettings {
            app: name.to_owned(),
            ..self.settings.clone()
        }
    }

    /// The apps named (before a selector or `auto` is resolved).
    pub fn named(&self) -> &[String] {
        match &self.apps {
            crate::argocd::apps::Selection::Named(n) => n,
            _ => &[],
        }
    }
}

/// The rollout part of the config.
#[derive(Debug, Clone)]
pub struct RolloutConfig {
    /// Phase settings.
    pub settings: RolloutSettings,
    /// Phase deadline.
    pub timeout: Option<Duration>,
}

/// The HTTP check part of the config.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Phase settings.
    pub settings: HealthSettings,
    /// Phase deadline.
    pub timeout: Option<Duration>,
}

/// The typed verify config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Argo CD phase, when `argocd_app` is given.
    pub argocd: Option<ArgoConfig>,
    /// Rollout phase, when `rollout` or `kubeconfig` is given.
    pub rollout: Option<RolloutConfig>,
    /// HTTP check, when `health_url` is given.
    pub health: Option<HealthConfig>,
    /// Overall deadline, counted from the process start.
    pub timeout: Duration,
    /// Grace for bad states.
    pub degraded_grace: Duration,
    /// Write the previous values back after a verify failure.
    pub rollback_on_failure: bool,
    /// The kubeconfig, for masking.
    pub(crate) kubeconfig: Option<Secret>,
    /// The kubeconfig input as given when it was base64 (masked too: it decodes to the secrets).
    pub(crate) kubeconfig_encoded: Option<Secret>,
}

impl Config {
    /// True when no phase is configured.
    pub fn is_empty(&self) -> bool {
        self.argocd.is_none() && self.rollout.is_none() && self.health.is_none()
    }

    /// Every secret of the verify phases: the Argo CD token, the kubeconfig, and the credentials
    /// inside the kubeconfig on their own (so they are masked wherever they travel alone).
    pub fn secrets(&self) -> Vec<Secret> {
        let mut out = Vec::new();
        if let Some(a) = &self.argocd {
            out.push(a.token.clone());
        }
        if let Some(e) = &self.kubeconfig_encoded {
            out.push(e.clone());
            // A wrapped base64 value travels line by line too.
            for chunk in e.expose().split_whitespace().filter(|c| c.len() >= 16) {
                out.push(Secret::new(chunk));
            }
        }
        if let Some(k) = &self.kubeconfig {
            out.push(k.clone());
            for line in k.expose().lines() {
                let l = line.trim();
                // Every credential field of a kubeconfig user (client-go `AuthInfo`, and the
                // auth-provider config of OIDC/GCP/Azure: access-token, id-token, refresh-token,
                // client-secret), quoted either way or not at all (docs/research/field-runner.md §4).
                for key in [
                    "token:",
                    "client-key-data:",
                    "client-certificate-data:",
                    "password:",
                    "access-token:",
                    "id-token:",
                    "refresh-token:",
                    "client-secret:",
                ] {
                    if let Some(v) = l.strip_prefix(key) {
                        let v = v.trim();
                        let v = v
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                            .unwrap_or(v);
                        if !v.is_empty() {
                            out.push(Secret::new(v));
                        }
                    }
                }
            }
        }
        out
    }
}

/// What verification proved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// The Argo CD phase's result.
    pub argocd: Option<ArgoOutcome>,
    /// The rollout phase's result.
    pub rollout: Option<RolloutOutcome>,
    /// The HTTP check's result.
    pub health: Option<HealthOutcome>,
    /// Per app, when several were verified: each one's Argo CD and rollout result.
    pub apps: Vec<AppResult>,
}

/// One app's verification, when several are verified at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppResult {
    /// The app.
    pub app: String,
    /// What Argo CD reported, when it passed.
    pub argocd: Option<ArgoOutcome>,
    /// Its workloads, when they rolled out.
    pub rollout: Option<RolloutOutcome>,
    /// Why it failed (`None`: it passed).
    pub error: Option<String>,
    /// The phase it failed in.
    #[serde(skip)]
    pub failed_in: Option<Phase>,
    /// Its time.
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Outcome {
    /// The revision Argo CD synced (output `synced_revision`).
    pub fn synced_revision(&self) -> Option<&str> {
        self.argocd.as_ref().map(|a| a.synced_revision.as_str())
    }

    /// The app's health at the end (output `health`).
    pub fn app_health(&self) -> Option<&str> {
        self.argocd.as_ref().map(|a| a.health.as_str())
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.argocd {
            parts.push(format!(
                "argocd {} {} @ {}",
                a.sync_status,
                a.health,
                short(&a.synced_revision)
            ));
        }
        if let Some(r) = &self.rollout {
            parts.push(format!("rollout {}", r.workloads.join(", ")));
        }
        if let Some(h) = &self.health {
            parts.push(format!("http {}", h.status));
        }
        if parts.is_empty() {
            "nothing to verify".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Settles which Argo CD apps `cfg` waits for (see [`crate::argocd::apps::resolve`]) and rewrites
/// it to name them: the first app becomes the single-app settings, the rollout reads through it.
/// Returns the apps (none when the Argo CD phase is off).
///
/// # Errors
/// The apps could not be read, or do not deploy `edited`.
pub async fn settle_apps(
    cfg: &mut Config,
    edited: Option<&crate::argocd::apps::Edited<'_>>,
    read: Option<crate::argocd::apps::ReadFile<'_>>,
) -> Result<Vec<String>, crate::argocd::apps::ResolveError> {
    let Some(a) = cfg.argocd.as_mut() else {
        return Ok(Vec::new());
    };
    let named = matches!(a.apps, crate::argocd::apps::Selection::Named(_));
    let check = if named && !a.preflight { None } else { edited };
    let apps = crate::argocd::apps::resolve(
        &a.client,
        &a.apps,
        a.settings.project.as_deref(),
        a.settings.app_namespace.as_deref(),
        check,
        read,
    )
    .await?;
    a.apps = crate::argocd::apps::Selection::Named(apps.clone());
    a.settings.app = apps.first().cloned().unwrap_or_default();
    if let Some(r) = cfg.rollout.as_mut() {
        r.settings = r.settings.for_app(&a.settings.app);
    }
    Ok(apps)
}

/// Slack on top of the overall deadline for the last phase to return its timeout error.
const EXIT_SLACK: Duration = Duration::from_secs(2);

/// A failed verification: what the phases before the failing one proved, and the failure.
#[derive(Debug)]
pub struct Failure {
    /// The phases that passed (the failing one and those after it are `None`).
    pub partial: Outcome,
    /// The failure, naming its phase.
    pub error: DeployError,
}

/// Runs the configured phases in order for `commit`.
///
/// `started` is when the command started: the overall `timeout` counts from there.
///
/// # Errors
/// A [`DeployError`] naming the failed phase.
pub async fn run(
    cfg: &Config,
    commit: &str,
    expect: &Expect,
    oracle: Option<Arc<dyn RevisionOracle>>,
    report: &Report,
    started: Instant,
) -> Result<Outcome, DeployError> {
    run_until(cfg, commit, expect, oracle, report, started + cfg.timeout)
        .await
        .map_err(|f| f.error)
}

/// As [`run`], with an explicit overall deadline (the pipeline keeps time for a rollback).
///
/// # Errors
/// A [`Failure`]: the phases that passed, and the failure naming its phase.
pub async fn run_until(
    cfg: &Config,
    commit: &str,
    expect: &Expect,
    oracle: Option<Arc<dyn RevisionOracle>>,
    report: &Report,
    overall: Instant,
) -> Result<Outcome, Failure> {
    let budget = overall.saturating_duration_since(Instant::now());
    let mut out = Outcome::default();
    let mut current = Phase::Argocd;
    let work = run_phases(
        cfg,
        commit,
        expect,
        oracle,
        report,
        overall,
        &mut out,
        &mut current,
    );
    let result = match tokio::time::timeout_at(overall + EXIT_SLACK, work).await {
        Ok(r) => r,
        // The backstop names the phase that was running, and the time it really had.
        Err(_) => Err(DeployError::failed(
            current,
            anyhow::anyhow!(
                "timed out after {}",
                humantime::format_duration(
                    Duration::from_secs(budget.as_secs_f64().round() as u64)
                )
            ),
        )),
    };
    match result {
        Ok(()) => Ok(out),
        Err(error) => Err(Failure {
            partial: out,
            error,
        }),
    }
}

/// The Argo CD phase for one app (`settings`), its result reported.
async fn argo_phase(
    a: &ArgoConfig,
    settings: &ArgoSettings,
    commit: &str,
    expect: &Expect,
    oracle: Option<Arc<dyn RevisionOracle>>,
    report: &Report,
    deadline: Instant,
) -> Result<ArgoOutcome, crate::argocd::phase::PhaseError> {
    let mut target = Target::new(commit);
    target.on_suspended = a.on_suspended;
    target.images = expect.images.clone();
    target.repo_url = expect.repo_url.clone();
    let o =
        crate::argocd::phase::run(&a.client, settings, target, oracle, report, deadline).await?;
    report.info(
        Phase::Argocd,
        format_args!(
            "{} {} at {}",
            o.sync_status,
            o.health,
            short(&o.synced_revision)
        ),
    );
    Ok(o)
}

/// The rollout phase for `settings`, its result reported.
async fn rollout_phase(
    settings: &RolloutSettings,
    report: &Report,
    deadline: Instant,
) -> Result<RolloutOutcome, crate::rollout::phase::PhaseError> {
    let o = crate::rollout::phase::run(settings, report, deadline).await?;
    report.info(
        Phase::Rollout,
        format_args!("rolled out: {}", o.workloads.join(", ")),
    );
    Ok(o)
}

/// The phases in order, each opened by this orchestrator and filling `out` as it passes.
#[allow(clippy::too_many_arguments)]
async fn run_phases(
    cfg: &Config,
    commit: &str,
    expect: &Expect,
    oracle: Option<Arc<dyn RevisionOracle>>,
    report: &Report,
    overall: Instant,
    out: &mut Outcome,
    current: &mut Phase,
) -> Result<(), DeployError> {
    let deadline = |t: Option<Duration>| t.map_or(overall, |t| (Instant::now() + t).min(overall));
    let apps: Vec<String> = match &cfg.argocd {
        Some(a) => a.named().to_vec(),
        None => Vec::new(),
    };
    if let (Some(a), true) = (&cfg.argocd, apps.len() > 1) {
        // Several apps: each one's Argo CD wait and rollout in parallel, each with its own lines.
        *current = Phase::Argocd;
        report.enter(Phase::Argocd);
        let per_app_rollout = cfg
            .rollout
            .as_ref()
            .filter(|r| r.settings.targets.is_empty());
        let runs = apps.iter().map(|app| {
            let report = report.about(app);
            let oracle = oracle.clone();
            async move {
                let started = Instant::now();
                let mut result = AppResult {
                    app: app.clone(),
                    argocd: None,
                    rollout: None,
                    error: None,
                    failed_in: None,
                    elapsed: Duration::ZERO,
                };
                let settings = a.for_app(app);
                let argo = argo_phase(
                    a,
                    &settings,
                    commit,
                    expect,
                    oracle,
                    &report,
                    deadline(a.timeout),
                );
                match argo.await {
                    Ok(o) => result.argocd = Some(o),
                    Err(e) => {
                        result.error = Some(crate::error::chain(&e));
                        result.failed_in = Some(Phase::Argocd);
                    }
                }
                if let (Some(r), None) = (per_app_rollout, &result.error) {
                    let settings = r.settings.for_app(app);
                    match rollout_phase(&settings, &report, deadline(r.timeout)).await {
                        Ok(o) => result.rollout = Some(o),
                        Err(e) => {
                            result.error = Some(crate::error::chain(&e));
                            result.failed_in = Some(Phase::Rollout);
                        }
                    }
                }
                result.elapsed = started.elapsed();
                result
            }
        });
        let results = futures::future::join_all(runs).await;
        let failed: Vec<&AppResult> = results.iter().filter(|r| r.error.is_some()).collect();
        let passed = results.len() - failed.len();
        out.argocd = results.iter().find_map(|r| r.argocd.clone());
        out.rollout = results.iter().find_map(|r| r.rollout.clone());
        out.apps = results.clone();
        let all_ok = failed.is_empty();
        let enough = match a.require {
            Require::All => all_ok,
            Require::Any => passed > 0,
        };
        let describe =
            |r: &AppResult| format!("{}: {}", r.app, r.error.clone().unwrap_or_default());
        if !enough {
            let phase = failed
                .iter()
                .filter_map(|r| r.failed_in)
                .max_by_key(|p| *p == Phase::Rollout)
                .unwrap_or(Phase::Argocd);
            return Err(DeployError::failed(
                phase,
                anyhow::anyhow!(
                    "{} of {} apps failed: {}",
                    failed.len(),
                    results.len(),
                    failed
                        .iter()
                        .map(|r| describe(r))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
        for r in &failed {
            report.warn(
                Phase::Argocd,
                format_args!(
                    "{} (argocd_require: any: {passed} app(s) passed)",
                    describe(r)
                ),
            );
        }
        if let Some(r) = cfg
            .rollout
            .as_ref()
            .filter(|r| !r.settings.targets.is_empty())
        {
            *current = Phase::Rollout;
            report.enter(Phase::Rollout);
            let o = rollout_phase(&r.settings, report, deadline(r.timeout))
                .await
                .map_err(|e| DeployError::failed(Phase::Rollout, e))?;
            out.rollout = Some(o);
        }
    } else {
        if let Some(a) = &cfg.argocd {
            *current = Phase::Argocd;
            report.enter(Phase::Argocd);
            let argo = argo_phase(
                a,
                &a.settings,
                commit,
                expect,
                oracle,
                report,
                deadline(a.timeout),
            );
            let o = argo
                .await
                .map_err(|e| DeployError::failed(Phase::Argocd, e))?;
            out.argocd = Some(o);
        }
        if let Some(r) = &cfg.rollout {
            *current = Phase::Rollout;
            report.enter(Phase::Rollout);
            let o = rollout_phase(&r.settings, report, deadline(r.timeout))
                .await
                .map_err(|e| DeployError::failed(Phase::Rollout, e))?;
            out.rollout = Some(o);
        }
    }
    if let Some(h) = &cfg.health {
        *current = Phase::Health;
        report.enter(Phase::Health);
        let o = crate::health::run(&h.settings, report, deadline(h.timeout))
            .await
            .map_err(|e| DeployError::failed(Phase::Health, e))?;
        report.info(
            Phase::Health,
            format_args!("HTTP {} {} times in a row", o.status, h.settings.successes),
        );
        out.health = Some(o);
    }
    Ok(())
}
