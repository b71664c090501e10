//! Verify options (Argo CD, rollout, HTTP check, deadlines, rollback), shared by `run` and `wait`,
//! and their lowering into the verify phases' typed [`Config`] ([`config`]). An empty value
//! (`INPUT_X=""`, as runners set for inputs without a value) means "not given".

use std::time::Duration;

use base64::Engine as _;
use clap::Args;

use super::inputs::{given, parse_bool, parse_duration, split_list};
use crate::argocd::apps::Selection;
use crate::argocd::phase::{ArgoSettings, SyncMode, Watch};
use crate::argocd::{Client, ClientConfig};
use crate::health::{BodyMatch, HealthSettings};
use crate::rollout::phase::{RolloutSettings, RolloutVia};
use crate::rollout::source::ArgoApp;
use crate::rollout::WorkloadRef;
use crate::secret::Secret;
use crate::verdict::PausePolicy;
use crate::verify::{
    ArgoConfig, Config, Expect, HealthConfig, Require, RolloutConfig, DEFAULT_DEGRADED_GRACE,
    DEFAULT_HEALTH_INTERVAL, DEFAULT_HEALTH_SUCCESSES, DEFAULT_TIMEOUT,
};

/// Options of the verification phases. Each phase runs only when configured: Argo CD with
/// `argocd_app`, rollout with `rollout` or `kubeconfig`, the HTTP check with `health_url`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Verify")]
pub struct VerifyArgs {
    /// Argo CD server URL (`https://argocd.example.com`; `https://` is assumed without a scheme).
    #[arg(long, env = "INPUT_ARGOCD_SERVER", value_name = "URL")]
    pub argocd_server: Option<String>,
    /// Argo CD API token. Prefer the environment variable: a flag is visible to other processes.
    #[arg(
        long,
        env = "INPUT_ARGOCD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub argocd_token: Option<String>,
    /// Argo CD applications to wait for, newline- or comma-separated (in parallel), or `auto`: every
    /// app that deploys the edited paths of this repository and branch; leave empty (and
    /// `argocd_selector` too) to skip the Argo CD phase.
    #[arg(long, env = "INPUT_ARGOCD_APP", value_name = "NAMES")]
    pub argocd_app: Option<String>,
    /// A label selector (`team=web,env in (prod,eu)`): wait for the apps it matches that deploy the
    /// edited paths.
    #[arg(long, env = "INPUT_ARGOCD_SELECTOR", value_name = "SELECTOR")]
    pub argocd_selector: Option<String>,
    /// With several apps: `all` must succeed, or `any` (at least one: a canary environment, a
    /// best-effort region) [default: all].
    #[arg(long, env = "INPUT_ARGOCD_REQUIRE", value_name = "all|any")]
    pub argocd_require: Option<String>,
    /// Check before publishing that the named apps deploy the edited paths of this repository and
    /// branch. Accepts true/false [default: true].
    #[arg(long, env = "INPUT_ARGOCD_PREFLIGHT", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub argocd_preflight: Option<String>,
    /// Namespace of the Application object (apps in any namespace).
    #[arg(long, env = "INPUT_ARGOCD_APP_NAMESPACE", value_name = "NS")]
    pub argocd_app_namespace: Option<String>,
    /// Argo CD project of the app (turns "permission denied" for a missing app into "not found").
    #[arg(long, env = "INPUT_ARGOCD_PROJECT", value_name = "NAME")]
    pub argocd_project: Option<String>,
    /// When to trigger a sync: `auto` (only for apps without auto-sync), `always` or `never`
    /// [default: auto].
    #[arg(long, env = "INPUT_ARGOCD_SYNC", value_name = "auto|always|never")]
    pub argocd_sync: Option<String>,
    /// Skip TLS verification of the Argo CD server. Accepts true/false.
    #[arg(long, env = "INPUT_ARGOCD_INSECURE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub argocd_insecure: Option<String>,
    /// CA certificate(s) for the Argo CD server: a PEM file path or the PEM text itself.
    #[arg(long, env = "INPUT_ARGOCD_CA", value_name = "PEM|FILE")]
    pub argocd_ca: Option<String>,
    /// Kubeconfig for reading workloads directly: a file path, the YAML itself or its base64. Without
    /// it, workloads are read through Argo CD.
    #[arg(
        long,
        env = "INPUT_KUBECONFIG",
        hide_env_values = true,
        value_name = "FILE|YAML|BASE64"
    )]
    pub kubeconfig: Option<String>,
    /// Workloads to check, `kind/name` (deployment, statefulset, daemonset, rollout), newline- or
    /// comma-separated, or `auto`: those of the Argo CD app whose template uses our image.
    #[arg(long, env = "INPUT_ROLLOUT", value_name = "KIND/NAME")]
    pub rollout: Vec<String>,
    /// What a rollout paused for a person means (an Argo Rollouts canary at a `pause: {}` step, a
    /// blue-green preview without auto-promotion, `spec.paused`): `fail` (saying where it is
    /// paused), `succeed` (the new version runs as a canary or preview: "deployed to canary") or
    /// `wait` (for the promotion, until the deadline) [default: fail].
    #[arg(long, env = "INPUT_ROLLOUT_PAUSE", value_name = "fail|succeed|wait")]
    pub rollout_pause: Option<String>,
    /// Namespace of the `rollout` workloads [default: the kubeconfig context's, or the app's].
    #[arg(long, env = "INPUT_NAMESPACE", value_name = "NS")]
    pub namespace: Option<String>,
    /// URL the HTTP check polls; leave empty to skip it.
    #[arg(long, env = "INPUT_HEALTH_URL", value_name = "URL")]
    pub health_url: Option<String>,
    /// Expected HTTP status [default: 200].
    #[arg(long, env = "INPUT_HEALTH_EXPECT_STATUS", value_name = "CODE")]
    pub health_expect_status: Option<String>,
    /// Expected body: text it must contain, or `re:REGEX`; `{tag}` and `{digest}` are replaced by
    /// the deployed values.
    #[arg(long, env = "INPUT_HEALTH_EXPECT_BODY", value_name = "TEXT|re:REGEX")]
    pub health_expect_body: Option<String>,
    /// Consecutive passing answers required [default: 3].
    #[arg(long, env = "INPUT_HEALTH_SUCCESSES", value_name = "N")]
    pub health_successes: Option<String>,
    /// Time between HTTP checks [default: 2s].
    #[arg(long, env = "INPUT_HEALTH_INTERVAL", value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Overall deadline of the whole command (`90s`, `10m`, `1h30m` or seconds) [default: 10m].
    #[arg(long, env = "INPUT_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Deadline of the Argo CD phase [default: what is left of `timeout`].
    #[arg(long, env = "INPUT_SYNC_TIMEOUT", value_name = "DURATION")]
    pub sync_timeout: Option<String>,
    /// Deadline of the rollout phase [default: what is left of `timeout`].
    #[arg(long, env = "INPUT_ROLLOUT_TIMEOUT", value_name = "DURATION")]
    pub rollout_timeout: Option<String>,
    /// Deadline of the HTTP check [default: what is left of `timeout`].
    #[arg(long, env = "INPUT_HEALTH_TIMEOUT", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// How long `Degraded`/`Missing` health, an `…Error` condition or a stuck pod may last before
    /// the deploy fails [default: 30s].
    #[arg(long, env = "INPUT_DEGRADED_GRACE", value_name = "DURATION")]
    pub degraded_grace: Option<String>,
    /// After a verify failure, write the previous values back (remove the entry if the deploy added
    /// it) and wait for them. Accepts true/false.
    #[arg(long, env = "INPUT_ROLLBACK_ON_FAILURE", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rollback_on_failure: Option<String>,
    /// How to read the Argo CD application: `stream` (default, falls back to polling) or `poll`
    /// (every 2 s). For benchmarks and proxies that break streams.
    #[arg(
        long,
        env = "INPUT_ARGOCD_WATCH",
        value_name = "stream|poll",
        hide = true
    )]
    pub argocd_watch: Option<String>,
}

/// Builds the typed config, collecting every problem. Reads only local files named by
/// `argocd_ca` and `kubeconfig`; no network.
///
/// # Errors
/// Every problem found, each naming its input.
pub fn config(a: &VerifyArgs, expect: &Expect) -> Result<Config, Vec<String>> {
    let mut p: Vec<String> = Vec::new();
    let mut dur = |name: &str, v: &Option<String>| -> Option<Duration> {
        let v = given(v)?;
        parse_duration(name, v).map_err(|e| p.push(e)).ok()
    };
    let timeout = dur("timeout", &a.timeout).unwrap_or(DEFAULT_TIMEOUT);
    let sync_timeout = dur("sync_timeout", &a.sync_timeout);
    let rollout_timeout = dur("rollout_timeout", &a.rollout_timeout);
    let health_timeout = dur("health_timeout", &a.health_timeout);
    let degraded_grace = dur("degraded_grace", &a.degraded_grace).unwrap_or(DEFAULT_DEGRADED_GRACE);
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
    let app_list = split_list(a.argocd_app.as_slice());
    let selector = given(&a.argocd_selector).map(str::to_owned);
    let selection = match (app_list.as_slice(), &selector) {
        ([], None) => None,
        ([], Some(s)) => Some(Selection::Selector(s.clone())),
        ([one], None) if one.eq_ignore_ascii_case("auto") => Some(Selection::Auto),
        (names, None) => Some(Selection::Named(names.to_vec())),
        (_, Some(_)) => {
            p.push("argocd_selector: give either argocd_app or argocd_selector, not both".into());
            None
        }
    };
    let require = match given(&a.argocd_require)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("all") => Require::All,
        Some("any") => Require::Any,
        Some(other) => {
            p.push(format!("argocd_require: {other:?} is not all or any"));
            Require::All
        }
    };
    let preflight = match given(&a.argocd_preflight) {
        None => true,
        Some(v) => super::inputs::parse_bool("argocd_preflight", v).unwrap_or_else(|e| {
            p.push(e);
            true
        }),
    };
    if let Some(selection) = selection {
        let app = match &selection {
            Selection::Named(n) => n[0].as_str(),
            _ => "",
        };
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
                        p.push("argocd_server: must be an http(s) URL without credentials".into());
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
                        apps: selection,
                        require,
                        preflight,
                        on_suspended: PausePolicy::Wait,
                        timeout: sync_timeout,
                        token,
                    })
                }
                Err(e) => p.push(e.to_string()),
            }
        }
    }

    // Rollout.
    let pause = match given(&a.rollout_pause) {
        None => PausePolicy::default(),
        Some(v) => PausePolicy::parse(v).unwrap_or_else(|| {
            p.push(format!("rollout_pause: {v:?} is not fail, succeed or wait"));
            PausePolicy::default()
        }),
    };
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
    // docs/research/field-runner.md ranked #6: the original string of a base64 input is a secret as well.
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
                    p.push("rollout: needs kubeconfig or argocd_app to read the workloads".into());
                }
                None
            }
        };
        if auto && argo_app.is_none() {
            p.push(
                "rollout: `auto` needs argocd_app (the workloads are found through Argo CD)".into(),
            );
        }
        if targets.is_empty() && !auto && argo_app.is_none() && kubeconfig.is_some() {
            p.push(
                "rollout: kind/name targets are required with kubeconfig and no argocd_app".into(),
            );
        }
        if let Some(via) = via {
            rollout = Some(RolloutConfig {
                settings: RolloutSettings {
                    via,
                    targets,
                    images: expect.images.clone(),
                    stuck_grace: degraded_grace,
                    pause,
                },
                timeout: rollout_timeout,
            });
        }
    }

    // A Suspended app is the rollout phase's to judge when it runs: only it tells a timed pause
    // from one for a person, and a canary that runs the new version from one that does not.
    // Without it, Suspended is waited for (and named at the deadline), as before.
    if let Some(a) = argocd.as_mut() {
        a.on_suspended = if rollout.is_some() {
            PausePolicy::Succeed
        } else {
            PausePolicy::Wait
        };
    }
    if pause == PausePolicy::Succeed && rollout.is_none() {
        p.push(
            "rollout_pause: `succeed` needs the rollout phase (`rollout: auto` or named workloads) \
             to tell a canary that runs the new version from one that does not"
                .into(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Masker;

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

    /// docs/research/field-runner.md ranked #6: every credential form of a kubeconfig is a secret of its own,
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
        let c = config(&a, &Expect::default()).unwrap();
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
        let c = config(&a, &Expect::default()).unwrap();
        assert!(c.is_empty());
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.degraded_grace, DEFAULT_DEGRADED_GRACE);
    }

    #[test]
    fn rollout_pause_is_checked_and_succeed_needs_the_rollout_phase() {
        let mut a = args();
        a.rollout_pause = s("later");
        let all = config(&a, &Expect::default()).unwrap_err().join("\n");
        assert!(
            all.contains("rollout_pause: \"later\" is not fail, succeed or wait"),
            "{all}"
        );
        a.rollout_pause = s("succeed");
        let all = config(&a, &Expect::default()).unwrap_err().join("\n");
        assert!(
            all.contains("rollout_pause: `succeed` needs the rollout phase"),
            "{all}"
        );
        a.rollout_pause = s("fail");
        assert!(config(&a, &Expect::default()).is_ok());
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
        let p = config(&a, &Expect::default()).unwrap_err();
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
        let c = config(&a, &expect).unwrap();
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
        let c = config(&a, &Expect::default()).unwrap();
        let m = Masker::new();
        for secret in c.secrets() {
            m.add(&secret);
        }
        assert_eq!(m.mask("auth kube-secret-token"), "auth ***");

        // Given as base64 (wrapped at 76 as `base64` does): the string itself and each line.
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        a.kubeconfig = Some(wrapped.clone());
        let c = config(&a, &Expect::default()).unwrap();
        let m = Masker::new();
        for secret in c.secrets() {
            m.add(&secret);
        }
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
        let p = config(&a, &Expect::default()).unwrap_err();
        assert!(p.iter().any(|m| m.starts_with("argocd_ca: ")), "{p:?}");
        a.argocd_ca = s("/nonexistent/ca.pem");
        let p = config(&a, &Expect::default()).unwrap_err();
        assert!(
            p.iter()
                .any(|m| m.starts_with("argocd_ca: cannot read file \"/nonexistent/ca.pem\"")),
            "{p:?}"
        );
        a.argocd_ca = None;
        a.argocd_insecure = s("true");
        assert!(config(&a, &Expect::default()).is_ok());
    }
}
