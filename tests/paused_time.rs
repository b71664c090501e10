//! The rollout and HTTP phases on paused time. Tokio's clock drives both the client's waits and the sandbox's
//! Kubernetes simulator (`sandbox/src/kube/sim.rs`, `rollouts.rs`), so rollouts with real durations
//! (20 s per pod, the default 600 s progress deadline, a 5-minute canary pause) are judged in
//! milliseconds of real time, and always the same way. Everything runs in this process: kube-rs
//! over loopback to the sandbox's Kubernetes API; no git, no child process (whose real duration
//! would let the paused clock jump).

use std::time::Duration;

use anyhow::{ensure, Result};
use gitops_deploy::health::{self, BodyMatch, HealthSettings};
use gitops_deploy::report::Report;
use gitops_deploy::rollout::phase::{self, RolloutSettings, RolloutVia};
use gitops_deploy::rollout::{PausePolicy, WorkloadRef};
use gitops_deploy::secret::{Masker, Secret};
use gitops_sandbox::faults::{Faults, Server};
use gitops_sandbox::http::{HttpServer, RequestLog};
use gitops_sandbox::kube::{self, Kube, KubeTiming};
use serde_json::{json, Value};
use tokio::time::Instant;

const TOKEN: &str = "paused-time-token-0123";
const IMAGE: &str = "registry.example.com/demo/web";

/// A cluster with real durations: pods take 20 s to start (a large image), deadlines count in real
/// seconds.
async fn cluster(workload: Value) -> Result<(Kube, HttpServer, tokio::task::JoinHandle<()>)> {
    let kube = Kube::new(
        TOKEN,
        KubeTiming {
            pod_start_delay: Duration::from_secs(20),
            progress_deadline_scale: 1.0,
            tick: Duration::from_millis(250),
        },
    );
    kube.apply(workload)?;
    kube.settle();
    let sim = kube.spawn_simulator();
    let server = gitops_sandbox::http::serve(
        Server::Kube,
        kube::api::router(kube.clone()),
        Faults::default(),
        RequestLog::new(),
    )
    .await?;
    Ok((kube, server, sim))
}

fn deployment(tag: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": format!("{IMAGE}:{tag}")}]}},
        },
    })
}

fn canary(tag: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "web"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": format!("{IMAGE}:{tag}")}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 25}, {"pause": {"duration": "5m"}}]}},
        },
    })
}

fn settings(server: &HttpServer, target: &str, tag: &str, grace: Duration) -> RolloutSettings {
    RolloutSettings {
        via: RolloutVia::Kube {
            kubeconfig: Secret::new(kube::kubeconfig_yaml(server.url(), TOKEN)),
            argo: None,
        },
        targets: vec![WorkloadRef::parse(target, Some("web")).expect("a target")],
        images: vec![format!("{IMAGE}:{tag}")],
        stuck_grace: grace,
        pause: PausePolicy::Fail,
    }
}

/// Runs the rollout phase with `budget` of cluster time; returns its result, the cluster time it
/// took and its log.
async fn judge(
    settings: &RolloutSettings,
    budget: Duration,
) -> (
    Result<phase::RolloutOutcome, phase::PhaseError>,
    Duration,
    String,
) {
    let (report, out) = Report::capture(Masker::new());
    let started = Instant::now();
    let got = phase::run(settings, &report, started + budget).await;
    (got, started.elapsed(), out.text())
}

#[tokio::test(start_paused = true)]
async fn a_deployment_rolls_out_on_paused_time() -> Result<()> {
    let (kube, server, sim) = cluster(deployment("1.0.0")).await?;
    kube.apply(deployment("1.1.0"))?;
    let real = std::time::Instant::now();
    let (got, simulated, log) = judge(
        &settings(&server, "deployment/web", "1.1.0", Duration::from_secs(30)),
        Duration::from_secs(900),
    )
    .await;
    let got = got.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    ensure!(
        got.workloads == ["deployment/web: 3/3 updated, 3 available"],
        "{got:?}"
    );
    // Three pods one after another (surge 1), 20 s each: about a minute of the cluster's time, in a
    // fraction of that.
    ensure!(
        // (The upper bound is the progress deadline: a paused clock may jump ahead while loopback
        // delivery lags, never back.)
        simulated >= Duration::from_secs(40) && simulated < Duration::from_secs(600),
        "{simulated:?}\n{log}"
    );
    ensure!(
        real.elapsed() < simulated / 4,
        "real {:?} for {simulated:?}",
        real.elapsed()
    );
    sim.abort();
    Ok(())
}

/// A crash-looping image and a grace longer than the progress deadline: the Deployment's own
/// deadline (600 s by default) ends it, on the cluster's clock, with kubectl's words.
#[tokio::test(start_paused = true)]
async fn a_ten_minute_progress_deadline_fails_on_paused_time() -> Result<()> {
    let (kube, server, sim) = cluster(deployment("1.0.0")).await?;
    kube.apply(deployment("broken-2.0.0"))?;
    let (got, simulated, log) = judge(
        &settings(
            &server,
            "deployment/web",
            "broken-2.0.0",
            Duration::from_secs(3600),
        ),
        Duration::from_secs(1800),
    )
    .await;
    let err = got.expect_err("a broken image never rolls out");
    let text = gitops_deploy::error::chain(&err);
    ensure!(
        text.contains("deployment/web: deployment \"web\" exceeded its progress deadline"),
        "{text}\n{log}"
    );
    ensure!(
        simulated >= Duration::from_secs(600) && simulated < Duration::from_secs(1800),
        "{simulated:?}"
    );
    sim.abort();
    Ok(())
}

/// An Argo Rollouts canary with a 5-minute pause step: waited out (a timed pause needs no person),
/// then stable on every pod.
#[tokio::test(start_paused = true)]
async fn a_canary_with_a_five_minute_pause_completes_on_paused_time() -> Result<()> {
    let (kube, server, sim) = cluster(canary("1.0.0")).await?;
    kube.apply(canary("1.1.0"))?;
    let (got, simulated, log) = judge(
        &settings(&server, "rollout/web", "1.1.0", Duration::from_secs(30)),
        Duration::from_secs(900),
    )
    .await;
    let got = got.map_err(|e| anyhow::anyhow!("{e}\n{log}"))?;
    ensure!(
        got.workloads == ["rollout/web: 4/4 updated, 4 available"] && got.not_promoted.is_empty(),
        "{got:?}"
    );
    ensure!(
        simulated >= Duration::from_secs(300) && simulated < Duration::from_secs(600),
        "{simulated:?}\n{log}"
    );
    let mut tags = kube.ready_rollout_tags("web", "web");
    tags.sort();
    ensure!(tags == ["1.1.0"; 4], "{tags:?}");
    sim.abort();
    Ok(())
}

/// The app's `/version` (a random ready pod answers, as behind a Service) served on loopback.
async fn app(kube: &Kube) -> Result<HttpServer> {
    Ok(gitops_sandbox::http::serve(
        Server::App,
        gitops_sandbox::app::router(
            kube.clone(),
            gitops_sandbox::app::AppTarget {
                namespace: "web".into(),
                deployment: "web".into(),
            },
        ),
        Faults::default(),
        RequestLog::new(),
    )
    .await?)
}

fn health_settings(app: &HttpServer, tag: &str) -> Result<HealthSettings> {
    Ok(HealthSettings {
        url: format!("{}/version", app.url()).parse()?,
        expect_status: 200,
        expect_body: Some(
            BodyMatch::parse(r#""version":"{tag}""#, Some(tag), None)
                .map_err(anyhow::Error::msg)?,
        ),
        successes: 3,
        interval: Duration::from_secs(2),
    })
}

/// The HTTP check while the rollout runs: it passes once three answers in a row come from the new
/// version, which takes at least the first new pod's 20 s of start-up.
#[tokio::test(start_paused = true)]
async fn the_http_check_passes_once_the_new_version_answers_on_paused_time() -> Result<()> {
    let (kube, _server, sim) = cluster(deployment("1.0.0")).await?;
    let app = app(&kube).await?;
    kube.apply(deployment("1.1.0"))?;
    let (report, out) = Report::capture(Masker::new());
    let (started, real) = (Instant::now(), std::time::Instant::now());
    let got = health::run(
        &health_settings(&app, "1.1.0")?,
        &report,
        started + Duration::from_secs(600),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", out.text()))?;
    let simulated = started.elapsed();
    ensure!(got.status == 200 && got.body.contains("1.1.0"), "{got:?}");
    ensure!(
        simulated >= Duration::from_secs(20) && simulated < Duration::from_secs(600),
        "{simulated:?}"
    );
    ensure!(
        kube.ready_pod_tags("web", "web")
            .iter()
            .any(|t| t == "1.1.0"),
        "{:?}",
        kube.ready_pod_tags("web", "web")
    );
    ensure!(real.elapsed() < simulated / 4, "real {:?}", real.elapsed());
    sim.abort();
    Ok(())
}

/// A version that never answers: the check ends at its 5-minute deadline, naming the last body.
#[tokio::test(start_paused = true)]
async fn the_http_check_times_out_at_its_deadline_naming_the_body_on_paused_time() -> Result<()> {
    let (kube, _server, sim) = cluster(deployment("1.0.0")).await?;
    let app = app(&kube).await?;
    let (report, _out) = Report::capture(Masker::new());
    let started = Instant::now();
    let err = health::run(
        &health_settings(&app, "9.9.9")?,
        &report,
        started + Duration::from_secs(300),
    )
    .await
    .expect_err("nothing answers 9.9.9");
    let simulated = started.elapsed();
    let text = gitops_deploy::error::chain(&err);
    ensure!(
        text.contains("timed out after") && text.contains(r#"{\"version\":\"1.0.0\"}"#),
        "{text}"
    );
    ensure!(
        simulated >= Duration::from_secs(300) && simulated < Duration::from_secs(320),
        "{simulated:?}"
    );
    sim.abort();
    Ok(())
}
