//! The verify step: Argo CD → rollout → HTTP check, each phase only when configured, each bounded by
//! its own deadline and all by the overall `timeout`.
//!
//! [`Config::from_args`] turns the raw [`VerifyArgs`] into typed settings, collecting every problem
//! before any network access; [`run`] executes the phases in order and returns an [`Outcome`].

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::time::Instant;

use crate::argocd::phase::{ArgoOutcome, ArgoSettings, RevisionOracle, SyncMode, Watch};
use crate::argocd::verdict::{short, Target};
use crate::argocd::{Client, ClientConfig};
use crate::cli::verify::VerifyArgs;
use crate::error::{DeployError, Phase};
use crate::health::{BodyMatch, HealthOutcome, HealthSettings};
use crate::report::Report;
use crate::rollout::phase::{RolloutOutcome, RolloutSettings, RolloutVia};
use crate::rollout::source::ArgoApp;
use crate::rollout::WorkloadRef;
use crate::secret::{Masker, Secret};

/// Default overall deadline.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Default grace for `Degraded`/`Missing`/`…Error`/stuck pods.
pub const DEFAULT_DEGRADED_GRACE: Duration = Duration::from_secs(30);
/// Default consecutive HTTP passes.
pub const DEFAULT_HEALTH_SUCCESSES: u32 = 3;
/// Default time between HTTP checks.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Every problem with the inputs, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", problems.join("; "))]
pub struct InvalidInputs {
    /// One message per problem, each naming its input.
    pub problems: Vec<String>,
}

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

/// The Argo CD part of the config.
#[derive(Debug, Clone)]
pub struct ArgoConfig {
    /// The API client (built here: no I/O, but CA problems are input problems).
    pub client: Client,
    /// Phase settings.
    pub settings: ArgoSettings,
    /// Phase deadline (capped by the overall one).
    pub timeout: Option<Duration>,
    /// The token, for masking.
    pub token: Secret,
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
    kubeconfig: Option<Secret>,
    /// The kubeconfig input as given when it was base64 (masked too: it decodes to the secrets).
    kubeconfig_encoded: Option<Secret>,
}

/// Splits list inputs given as repeated flags, commas or newlines.
pub fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split([',', '\n']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses `90s`, `10m`, `1h30m` or plain seconds.
///
/// # Errors
/// A message naming the input.
pub fn parse_duration(input: &str, value: &str) -> Result<Duration, String> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(v)
        .map_err(|_| format!("{input}: {v:?} is not a duration (use 90s, 10m, 1h30m or seconds)"))
}

/// Parses `true`/`false` (also `1`/`0`, `yes`/`no`).
///
/// # Errors
/// A message naming the input.
pub fn parse_bool(input: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => Err(format!("{input}: {other:?} is not true or false")),
    }
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Config {
    /// Builds the typed config, collecting every problem. Reads only local files named by
    /// `argocd_ca` and `kubeconfig`; no network.
    ///
    /// # Errors
    /// Every problem found, each naming its input.
    pub fn from_args(a: &VerifyArgs, expect: &Expect) -> Result<Config, Vec<String>> {
        let mut p: Vec<String> = Vec::new();
        let mut dur = |name: &str, v: &Option<String>| -> Option<Duration> {
            let v = given(v)?;
            parse_duration(name, v).map_err(|e| p.push(e)).ok()
        };
        let timeout = dur("timeout", &a.timeout).unwrap_or(DEFAULT_TIMEOUT);
        let sync_timeout = dur("sync_timeout", &a.sync_timeout);
        let rollout_timeout = dur("rollout_timeout", &a.rollout_timeout);
        let health_timeout = dur("health_timeout", &a.health_timeout);
        let degraded_grace =
            dur("degraded_grace", &a.degraded_grace).unwrap_or(DEFAULT_DEGRADED_GRACE);
        let health_interval =
            dur("health_interval", &a.health_interval).unwrap_or(DEFAULT_HEALTH_INTERVAL);
        if timeout.is_zero() {
            p.push("timeout: must be more than 0s".into());
        }
        let mut boolean = |name: &str, v: &Option<String>| -> bool {
            given(v)
                .map(|v| parse_bool(name, v).map_err(|e| p.push(e)).unwrap_or(false))
                .unwrap_or(false)
        };
        let insecure = boolean("argocd_insecure", &a.argocd_insecure);
        let rollback_on_failure = boolean("rollback_on_failure", &a.rollback_on_failure);

        // Argo CD.
        let mut argocd = None;
        if let Some(app) = given(&a.argocd_app) {
            let server = match given(&a.argocd_server) {
                None => {
                    p.push("argocd_server: required with argocd_app".into());
                    None
                }
                Some(s) => {
                    let s = if s.contains("://") {
                        s.to_owned()
                    } else {
                        format!("https://{s}")
                    };
                    match url::Url::parse(&s) {
                        Ok(u)
                            if matches!(u.scheme(), "http" | "https")
                                && u.username().is_empty()
                                && u.password().is_none() =>
                        {
                            Some(u)
                        }
                        Ok(_) => {
                            p.push(
                                "argocd_server: must be an http(s) URL without credentials".into(),
                            );
                            None
                        }
                        Err(e) => {
                            p.push(format!("argocd_server: not a URL ({e})"));
                            None
                        }
                    }
                }
            };
            let token = match given(&a.argocd_token) {
                None => {
                    p.push("argocd_token: required with argocd_app".into());
                    None
                }
                Some(t) => Some(Secret::new(t)),
            };
            let sync = match given(&a.argocd_sync)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("auto") => SyncMode::Auto,
                Some("always") => SyncMode::Always,
                Some("never") => SyncMode::Never,
                Some(other) => {
                    p.push(format!(
                        "argocd_sync: {other:?} is not auto, always or never"
                    ));
                    SyncMode::Auto
                }
            };
            let ca = given(&a.argocd_ca).and_then(|ca| {
                crate::tls::ExtraRoots::from_input("argocd_ca", ca)
                    .map_err(|why| p.push(why))
                    .ok()
            });
            let watch = match given(&a.argocd_watch) {
                None | Some("stream") => Watch::Stream,
                Some("poll") => Watch::Poll,
                Some(other) => {
                    p.push(format!("argocd_watch: {other:?} is not stream or poll"));
                    Watch::Stream
                }
            };
            if let (Some(server), Some(token)) = (server, token) {
                let mut cc = ClientConfig::new(server, token.clone());
                cc.ca = ca;
                cc.insecure = insecure;
                match Client::new(cc) {
                    Ok(client) => {
                        argocd = Some(ArgoConfig {
                            client,
                            settings: ArgoSettings {
                                app: app.to_owned(),
                                app_namespace: given(&a.argocd_app_namespace).map(str::to_owned),
                                project: given(&a.argocd_project).map(str::to_owned),
                                sync,
                                degraded_grace,
                                watch,
                            },
                            timeout: sync_timeout,
                            token,
                        })
                    }
                    Err(e) => p.push(e.to_string()),
                }
            }
        }

        // Rollout.
        let namespace = given(&a.namespace);
        let rollout_list = split_list(&a.rollout);
        let auto = rollout_list.len() == 1 && rollout_list[0].eq_ignore_ascii_case("auto");
        let mut targets = Vec::new();
        if !auto {
            for r in &rollout_list {
                match WorkloadRef::parse(r, namespace) {
                    Ok(t) => targets.push(t),
                    Err(e) => p.push(format!("rollout: {e}")),
                }
            }
        }
        let kubeconfig = given(&a.kubeconfig).and_then(|k| match resolve_kubeconfig(k) {
            Ok(s) => Some(s),
            Err(e) => {
                p.push(e);
                None
            }
        });
        // field-runner.md ranked #6: the original string of a base64 input is a secret as well.
        let kubeconfig_encoded = given(&a.kubeconfig)
            .filter(|k| kubeconfig.as_ref().is_some_and(|s| s.expose() != k.trim()))
            .filter(|k| !std::path::Path::new(k.trim()).is_file())
            .map(|k| Secret::new(k.trim()));
        let argo_app = argocd.as_ref().map(|c: &ArgoConfig| ArgoApp {
            client: c.client.clone(),
            app: c.settings.app.clone(),
            app_namespace: c.settings.app_namespace.clone(),
            project: c.settings.project.clone(),
        });
        let mut rollout = None;
        if !rollout_list.is_empty() || given(&a.kubeconfig).is_some() {
            let via = match (&kubeconfig, &argo_app) {
                (Some(k), argo) => Some(RolloutVia::Kube {
                    kubeconfig: k.clone(),
                    argo: argo.clone(),
                }),
                (None, Some(argo)) => Some(RolloutVia::Argo(argo.clone())),
                (None, None) => {
                    if given(&a.kubeconfig).is_none() {
                        p.push(
                            "rollout: needs kubeconfig or argocd_app to read the workloads".into(),
                        );
                    }
                    None
                }
            };
            if auto && argo_app.is_none() {
                p.push(
                    "rollout: `auto` needs argocd_app (the workloads are found through Argo CD)"
                        .into(),
                );
            }
            if targets.is_empty() && !auto && argo_app.is_none() && kubeconfig.is_some() {
                p.push(
                    "rollout: kind/name targets are required with kubeconfig and no argocd_app"
                        .into(),
                );
            }
            if let Some(via) = via {
                rollout = Some(RolloutConfig {
                    settings: RolloutSettings {
                        via,
                        targets,
                        images: expect.images.clone(),
                        stuck_grace: degraded_grace,
                    },
                    timeout: rollout_timeout,
                });
            }
        }

        // HTTP check.
        let mut health = None;
        if let Some(u) = given(&a.health_url) {
            let url = match url::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
                _ => {
                    p.push(format!("health_url: {u:?} is not an http(s) URL"));
                    None
                }
            };
            let expect_status = match given(&a.health_expect_status) {
                None => 200,
                Some(s) => match s.parse::<u16>() {
                    Ok(n) if (100..=599).contains(&n) => n,
                    _ => {
                        p.push(format!(
                            "health_expect_status: {s:?} is not an HTTP status (100-599)"
                        ));
                        200
                    }
                },
            };
            let successes = match given(&a.health_successes) {
                None => DEFAULT_HEALTH_SUCCESSES,
                Some(s) => match s.parse::<u32>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        p.push(format!("health_successes: {s:?} is not a whole number ≥ 1"));
                        DEFAULT_HEALTH_SUCCESSES
                    }
                },
            };
            let expect_body = given(&a.health_expect_body).and_then(|b| {
                BodyMatch::parse(b, expect.tag.as_deref(), expect.digest.as_deref())
                    .map_err(|e| p.push(format!("health_expect_body: {e}")))
                    .ok()
            });
            if let Some(url) = url {
                health = Some(HealthConfig {
                    settings: HealthSettings {
                        url,
                        expect_status,
                        expect_body,
                        successes,
                        interval: health_interval,
                    },
                    timeout: health_timeout,
                });
            }
        }

        if !p.is_empty() {
            return Err(p);
        }
        Ok(Config {
            argocd,
            rollout,
            health,
            timeout,
            degraded_grace,
            rollback_on_failure,
            kubeconfig,
            kubeconfig_encoded,
        })
    }

    /// True when no phase is configured.
    pub fn is_empty(&self) -> bool {
        self.argocd.is_none() && self.rollout.is_none() && self.health.is_none()
    }

    /// Registers the Argo CD token, the kubeconfig and any token inside it with the masker.
    pub fn register_secrets(&self, masker: &Masker) {
        for secret in self.secrets() {
            masker.add(&secret);
        }
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
                // client-secret), quoted either way or not at all (field-runner.md §4).
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

/// A kubeconfig input: YAML itself, its base64, or a file path. The error never echoes the value.
fn resolve_kubeconfig(v: &str) -> Result<Secret, String> {
    let looks_yaml = |s: &str| s.contains("clusters:") || s.contains("apiVersion:");
    if looks_yaml(v) {
        return Ok(Secret::new(v));
    }
    let compact: String = v.split_whitespace().collect();
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
        if let Ok(text) = String::from_utf8(bytes) {
            if looks_yaml(&text) {
                return Ok(Secret::new(text));
            }
        }
    }
    match std::fs::read_to_string(v) {
        Ok(text) if looks_yaml(&text) => Ok(Secret::new(text)),
        Ok(_) => Err("kubeconfig: the file is not a kubeconfig (no `clusters:`)".into()),
        Err(_) => {
            Err("kubeconfig: not kubeconfig YAML, its base64, or a readable file path".into())
        }
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
    if let Some(a) = &cfg.argocd {
        *current = Phase::Argocd;
        report.enter(Phase::Argocd);
        let mut target = Target::new(commit);
        target.images = expect.images.clone();
        target.repo_url = expect.repo_url.clone();
        let r = crate::argocd::phase::run(
            &a.client,
            &a.settings,
            target,
            oracle,
            report,
            deadline(a.timeout),
        )
        .await;
        let o = r.map_err(|e| DeployError::failed(Phase::Argocd, e))?;
        report.info(
            Phase::Argocd,
            format_args!(
                "{} {} at {}",
                o.sync_status,
                o.health,
                short(&o.synced_revision)
            ),
        );
        out.argocd = Some(o);
    }
    if let Some(r) = &cfg.rollout {
        *current = Phase::Rollout;
        report.enter(Phase::Rollout);
        let o = crate::rollout::phase::run(&r.settings, report, deadline(r.timeout))
            .await
            .map_err(|e| DeployError::failed(Phase::Rollout, e))?;
        report.info(
            Phase::Rollout,
            format_args!("rolled out: {}", o.workloads.join(", ")),
        );
        out.rollout = Some(o);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> VerifyArgs {
        VerifyArgs::default()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn durations_accept_units_and_plain_seconds() {
        assert_eq!(parse_duration("t", "90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("t", "10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("t", "1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("t", "45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("timeout", "soon")
            .unwrap_err()
            .starts_with("timeout: \"soon\" is not a duration"));
    }

    /// field-runner.md ranked #6: every credential form of a kubeconfig is a secret of its own,
    /// without its quotes.
    #[test]
    fn kubeconfig_credentials_of_every_form_are_secrets() {
        let yaml = "apiVersion: v1\nclusters:\n- cluster: {server: https://k}\n  name: k\nusers:\n\
- name: a\n  user:\n    token: 'single-quoted-token'\n\
- name: b\n  user:\n    auth-provider:\n      config:\n        access-token: \"oidc-access\"\n\
        id-token: oidc-id\n        refresh-token: oidc-refresh\n        client-secret: 'oidc-client'\n";
        let mut a = args();
        a.kubeconfig = s(yaml);
        a.rollout = vec!["deployment/web".into()];
        let c = Config::from_args(&a, &Expect::default()).unwrap();
        let secrets: Vec<String> = c.secrets().iter().map(|s| s.expose().to_owned()).collect();
        for want in [
            "single-quoted-token",
            "oidc-access",
            "oidc-id",
            "oidc-refresh",
            "oidc-client",
        ] {
            assert!(
                secrets.iter().any(|s| s == want),
                "{want} missing in {secrets:?}"
            );
        }
        assert!(
            !secrets
                .iter()
                .any(|s| s.starts_with('\'') || s.starts_with('"')),
            "{secrets:?}"
        );
    }

    #[test]
    fn empty_values_mean_not_given() {
        let mut a = args();
        a.argocd_app = s("");
        a.health_url = s("  ");
        a.timeout = s("");
        let c = Config::from_args(&a, &Expect::default()).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.degraded_grace, DEFAULT_DEGRADED_GRACE);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut a = args();
        a.argocd_app = s("web");
        a.argocd_sync = s("sometimes");
        a.timeout = s("forever");
        a.rollout = vec!["job/x".into()];
        a.health_url = s("ftp://x");
        a.health_successes = s("0");
        a.rollback_on_failure = s("maybe");
        let p = Config::from_args(&a, &Expect::default()).unwrap_err();
        let all = p.join("\n");
        for want in [
            "argocd_server: required with argocd_app",
            "argocd_token: required with argocd_app",
            "argocd_sync: \"sometimes\" is not auto, always or never",
            "timeout: \"forever\" is not a duration",
            "rollout: \"job/x\": kind \"job\" is not deployment",
            "health_url: \"ftp://x\" is not an http(s) URL",
            "health_successes: \"0\" is not a whole number",
            "rollback_on_failure: \"maybe\" is not true or false",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn full_config_types_everything() {
        let mut a = args();
        a.argocd_server = s("argocd.example.com");
        a.argocd_token = s("a.b.c");
        a.argocd_app = s("web");
        a.argocd_sync = s("never");
        a.rollout = vec!["deployment/web, sts/db".into()];
        a.namespace = s("prod");
        a.health_url = s("http://127.0.0.1:8080/version");
        a.health_expect_body = s("re:\"version\":\"{tag}\"");
        a.sync_timeout = s("2m");
        a.rollback_on_failure = s("true");
        let expect = Expect::from_images(&["registry.local/web:1.4.2".into()]);
        assert_eq!(expect.tag.as_deref(), Some("1.4.2"));
        let c = Config::from_args(&a, &expect).unwrap();
        let argo = c.argocd.as_ref().unwrap();
        assert_eq!(argo.settings.sync, SyncMode::Never);
        assert_eq!(argo.timeout, Some(Duration::from_secs(120)));
        let r = c.rollout.as_ref().unwrap();
        assert_eq!(r.settings.targets.len(), 2);
        assert_eq!(r.settings.targets[1].namespace.as_deref(), Some("prod"));
        assert!(matches!(r.settings.via, RolloutVia::Argo(_)));
        let h = c.health.as_ref().unwrap();
        assert!(h
            .settings
            .expect_body
            .as_ref()
            .unwrap()
            .is_match("{\"version\":\"1.4.2\"}"));
        assert!(c.rollback_on_failure);
    }

    #[test]
    fn kubeconfig_inline_base64_and_file() {
        let yaml = "apiVersion: v1\nclusters: []\nusers:\n- name: u\n  user:\n    token: kube-secret-token\n";
        assert_eq!(resolve_kubeconfig(yaml).unwrap().expose(), yaml.trim());
        let b64 = base64::engine::general_purpose::STANDARD.encode(yaml);
        assert_eq!(resolve_kubeconfig(&b64).unwrap().expose(), yaml.trim());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kc");
        std::fs::write(&path, yaml).unwrap();
        assert_eq!(
            resolve_kubeconfig(path.to_str().unwrap()).unwrap().expose(),
            yaml.trim()
        );
        let err = resolve_kubeconfig("not-there-kube-secret").unwrap_err();
        assert!(!err.contains("not-there"), "never echoes the value: {err}");

        let mut a = args();
        a.kubeconfig = Some(yaml.into());
        a.rollout = vec!["deployment/web".into()];
        let c = Config::from_args(&a, &Expect::default()).unwrap();
        let m = Masker::new();
        c.register_secrets(&m);
        assert_eq!(m.mask("auth kube-secret-token"), "auth ***");

        // Given as base64 (wrapped at 76 as `base64` does): the string itself and each line.
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        a.kubeconfig = Some(wrapped.clone());
        let c = Config::from_args(&a, &Expect::default()).unwrap();
        let m = Masker::new();
        c.register_secrets(&m);
        assert_eq!(m.mask(&format!("input {wrapped}")), "input ***");
        let first_line = wrapped.lines().next().unwrap();
        assert_eq!(m.mask(&format!("line {first_line}")), "line ***");
    }

    #[test]
    fn argocd_ca_problems_are_input_problems() {
        let mut a = args();
        a.argocd_server = s("https://argocd.example.com");
        a.argocd_token = s("a.b.c");
        a.argocd_app = s("web");
        a.argocd_ca =
            s("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
        let p = Config::from_args(&a, &Expect::default()).unwrap_err();
        assert!(p.iter().any(|m| m.starts_with("argocd_ca: ")), "{p:?}");
        a.argocd_ca = s("/nonexistent/ca.pem");
        let p = Config::from_args(&a, &Expect::default()).unwrap_err();
        assert!(
            p.iter()
                .any(|m| m.starts_with("argocd_ca: cannot read file \"/nonexistent/ca.pem\"")),
            "{p:?}"
        );
        a.argocd_ca = None;
        a.argocd_insecure = s("true");
        assert!(Config::from_args(&a, &Expect::default()).is_ok());
    }
}
