//! The Argo CD, rollout and HTTP phases on paused time. Tokio's clock drives both the client's waits
//! and the sandbox's Argo CD controller and Kubernetes simulator (`sandbox/src/argocd/mod.rs`,
//! `sandbox/src/kube/sim.rs`, `rollouts.rs`, timestamps from `sandbox/src/clock.rs`), so deploys with
//! real durations (Argo CD's 3-minute poll, a 4-minute PreSync hook, 20 s per pod, the default 600 s
//! progress deadline, a 5-minute canary pause) are judged in milliseconds of real time, and always the
//! same way. Everything runs in this process, over loopback. The only child processes are git's: the
//! Argo CD controller runs them on a blocking thread, during which tokio holds the paused clock still
//! (test-util, runtime/blocking/schedule.rs); the tests' own commits run git on this thread.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use gitops_deploy::argocd::phase::{self as argo_phase, ArgoSettings, SyncMode, Watch};
use gitops_deploy::argocd::verdict::Target;
use gitops_deploy::argocd::{Client, ClientConfig};
use gitops_deploy::health::{self, BodyMatch, HealthSettings};
use gitops_deploy::report::Report;
use gitops_deploy::rollout::phase::{self, RolloutSettings, RolloutVia};
use gitops_deploy::rollout::{PausePolicy, WorkloadRef};
use gitops_deploy::secret::{Masker, Secret};
use gitops_sandbox::argocd::{self, AppSpec, ArgoCd, ArgoTiming};
use gitops_sandbox::faults::{Faults, Server};
use gitops_sandbox::http::{HttpServer, RequestLog};
use gitops_sandbox::kube::{self, Kube, KubeTiming};
use gitops_sandbox::local_repo::LocalRepo;
use serde_json::{json, Value};
use tokio::time::Instant;

const TOKEN: &str = "paused-time-token-0123";
const IMAGE: &str = "registry.example.com/demo/web";

/// Kubernetes with real durations: pods take 20 s to start (a large image), deadlines count in real
/// seconds; the simulator looks every `tick`.
fn real_kube(tick: Duration) -> Kube {
    Kube::new(
        TOKEN,
        KubeTiming {
            pod_start_delay: Duration::from_secs(20),
            progress_deadline_scale: 1.0,
            tick,
        },
    )
}

/// [`real_kube`] running `workload`, served over loopback.
async fn cluster(workload: Value) -> Result<(Kube, HttpServer, tokio::task::JoinHandle<()>)> {
    let kube = real_kube(Duration::from_millis(250));
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

// ---- the Argo CD phase ----

/// `degraded_grace` of the tests that do not fail on health.
const GRACE: Duration = Duration::from_secs(60);

/// JWT-shaped, as Argo CD parses only such bearers (`sandbox/src/argocd/api.rs`).
const ARGO_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.cGF1c2VkLXRpbWU.c2lnbmF0dXJl";

/// Argo CD with its real timing: git polled every 3 minutes (only a refresh makes it look sooner), a
/// sync operation running 5 s, health and `reconciledAt` stale for 10 s after it (what a client that
/// trusts them too early gets wrong), automated syncs retried from 5 s. The controller looks every
/// second (Argo CD reacts to its informers at once; a second is the resolution these tests need, and
/// each look is a pass over the app, so minutes of cluster time stay cheap).
fn real_argo_timing() -> ArgoTiming {
    ArgoTiming {
        poll_interval: Duration::from_secs(180),
        sync_delay: Duration::from_secs(5),
        stale_health: Duration::from_secs(10),
        tick: Duration::from_secs(1),
        auto_retry_backoff: Duration::from_secs(5),
    }
}

/// A GitOps repository ([`LocalRepo`]: git on this thread, so the paused clock stays put),
/// [`real_kube`] looking every second and Argo CD deploying `apps/web` of `main` to it as the
/// auto-synced app `web`.
struct ArgoWorld {
    _dir: tempfile::TempDir,
    repo: LocalRepo,
    argo: ArgoCd,
    kube: Kube,
    server: HttpServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ArgoWorld {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn kustomization(tag: &str) -> String {
    format!("resources:\n- deployment.yaml\nimages:\n- name: {IMAGE}\n  newTag: {tag}\n")
}

impl ArgoWorld {
    async fn start(timing: ArgoTiming) -> Result<ArgoWorld> {
        let dir = tempfile::tempdir()?;
        let mut base = deployment("0.0.0");
        base["spec"]["template"]["spec"]["containers"][0]["image"] = IMAGE.into();
        let repo = LocalRepo::seed(
            dir.path(),
            &[
                ("apps/web/deployment.yaml", &serde_json::to_string(&base)?),
                ("apps/web/kustomization.yaml", &kustomization("1.0.0")),
            ],
        )?;
        let kube = real_kube(Duration::from_secs(1));
        let argo = ArgoCd::new(kube.clone(), ARGO_TOKEN, timing);
        argo.add_app(
            AppSpec {
                name: "web".into(),
                project: "default".into(),
                repo_url: "http://gitea.example.com/demo/gitops.git".into(),
                repo_dir: repo.bare().to_owned(),
                path: "apps/web".into(),
                target_revision: "main".into(),
                dest_namespace: "web".into(),
                auto_sync: true,
                other_sources: Vec::new(),
                labels: Default::default(),
            },
            true,
        )?;
        kube.settle();
        let tasks = vec![kube.spawn_simulator(), argo.spawn_controller()];
        let server = gitops_sandbox::http::serve(
            Server::ArgoCd,
            argocd::api::router(argo.clone()),
            Faults::default(),
            RequestLog::new(),
        )
        .await?;
        Ok(ArgoWorld {
            _dir: dir,
            repo,
            argo,
            kube,
            server,
            tasks,
        })
    }

    /// Commits `tag` into the kustomization and pushes it; the new commit's SHA.
    fn push(&self, tag: &str) -> Result<String> {
        Ok(self.repo.commit(
            &[("apps/web/kustomization.yaml", &kustomization(tag))],
            &format!("deploy {tag}"),
        )?)
    }

    /// Runs the Argo CD phase for `sha` with `budget` of cluster time, failing on health that stays
    /// `Degraded` for `degraded_grace`; its result, the cluster time it took and its log.
    async fn judge(
        &self,
        sha: &str,
        degraded_grace: Duration,
        budget: Duration,
    ) -> (
        Result<argo_phase::ArgoOutcome, argo_phase::PhaseError>,
        Duration,
        String,
    ) {
        let client = Client::new(ClientConfig::new(
            self.server.url().parse().expect("a URL"),
            Secret::new(ARGO_TOKEN),
        ))
        .expect("a client");
        let settings = ArgoSettings {
            app: "web".into(),
            app_namespace: None,
            project: None,
            sync: SyncMode::Auto,
            degraded_grace,
            watch: Watch::Stream,
        };
        let (report, out) = Report::capture(Masker::new());
        let started = Instant::now();
        let got = argo_phase::run(
            &client,
            &settings,
            Target::new(sha),
            None,
            &report,
            started + budget,
        )
        .await;
        (got, started.elapsed(), out.text())
    }
}

/// The refresh makes Argo CD see the commit at once, not at its 3-minute poll; the stale health
/// after the sync is not taken for the new version's: the phase ends once the three new pods (20 s
/// each, one at a time) are up.
#[tokio::test(start_paused = true)]
async fn argo_cd_syncs_our_commit_and_the_phase_waits_for_its_health_on_paused_time() -> Result<()>
{
    let world = ArgoWorld::start(real_argo_timing()).await?;
    let sha = world.push("1.1.0")?;
    let real = std::time::Instant::now();
    let (got, simulated, log) = world.judge(&sha, GRACE, Duration::from_secs(600)).await;
    let got = got.map_err(|e| anyhow::anyhow!("{}\n{log}", gitops_deploy::error::chain(&e)))?;
    ensure!(got.synced_revision == sha, "{got:?}");
    ensure!(
        got.health == "Healthy" && got.sync_status == "Synced",
        "{got:?}"
    );
    ensure!(
        simulated >= Duration::from_secs(45) && simulated < Duration::from_secs(180),
        "{simulated:?}\n{log}"
    );
    ensure!(
        world.kube.ready_pod_tags("web", "web") == ["1.1.0", "1.1.0", "1.1.0"],
        "{:?}",
        world.kube.ready_pod_tags("web", "web")
    );
    ensure!(real.elapsed() < simulated / 4, "real {:?}", real.elapsed());
    Ok(())
}

/// A sync whose PreSync hook Job runs 4 minutes is waited out, its hook named while it runs.
#[tokio::test(start_paused = true)]
async fn a_four_minute_presync_hook_is_waited_out_on_paused_time() -> Result<()> {
    let world = ArgoWorld::start(real_argo_timing()).await?;
    world
        .argo
        .set_presync_hook("web", Some(Duration::from_secs(240)));
    let sha = world.push("1.1.0")?;
    let (got, simulated, log) = world.judge(&sha, GRACE, Duration::from_secs(900)).await;
    let got = got.map_err(|e| anyhow::anyhow!("{}\n{log}", gitops_deploy::error::chain(&e)))?;
    ensure!(
        got.synced_revision == sha && got.health == "Healthy",
        "{got:?}"
    );
    ensure!(
        simulated >= Duration::from_secs(240 + 40) && simulated < Duration::from_secs(420),
        "{simulated:?}\n{log}"
    );
    ensure!(log.contains("presync"), "{log}");
    Ok(())
}

/// A hook that outlasts the phase's 10-minute budget: the phase fails at its deadline, naming the
/// hook Argo CD is waiting for as the last state seen.
#[tokio::test(start_paused = true)]
async fn the_argocd_phase_fails_at_its_deadline_naming_the_running_hook_on_paused_time(
) -> Result<()> {
    let world = ArgoWorld::start(real_argo_timing()).await?;
    world
        .argo
        .set_presync_hook("web", Some(Duration::from_secs(1200)));
    let sha = world.push("1.1.0")?;
    let (got, simulated, log) = world.judge(&sha, GRACE, Duration::from_secs(600)).await;
    let err = got.err().context("a 20-minute hook within 10 minutes")?;
    let text = gitops_deploy::error::chain(&err);
    ensure!(
        text.contains("timed out") && text.contains("waiting for completion of hook"),
        "{text}\n{log}"
    );
    ensure!(
        simulated >= Duration::from_secs(600) && simulated < Duration::from_secs(620),
        "{simulated:?}"
    );
    ensure!(
        world.kube.ready_pod_tags("web", "web") == ["1.0.0", "1.0.0", "1.0.0"],
        "{:?}",
        world.kube.ready_pod_tags("web", "web")
    );
    Ok(())
}

/// docs/research/field-argocd.md ranked #3: a fix-forward deploy onto a Degraded app whose sync runs a
/// 20 s PreSync hook passes with `degraded_grace: 10s` (the grace counts from the end of our sync,
/// not from the comparison that still shows the old, broken pods).
#[tokio::test(start_paused = true)]
async fn fix_forward_onto_a_degraded_app_with_a_20s_presync_hook_passes_with_a_10s_grace(
) -> Result<()> {
    let world = ArgoWorld::start(real_argo_timing()).await?;
    world.push("broken-9")?;
    world.argo.sync("web", None, false)?;
    // Degraded once the broken pods miss the 600 s progress deadline.
    let (within, every) = (Duration::from_secs(900), Duration::from_secs(1));
    gitops_sandbox::eventually::eventually_every("app web Degraded", within, every, || async {
        let app = world.argo.app_json("web").map_err(|e| e.to_string())?;
        match app["status"]["health"]["status"].as_str() {
            Some("Degraded") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    world
        .argo
        .set_presync_hook("web", Some(Duration::from_secs(20)));
    let sha = world.push("3.0.0")?;
    let (got, simulated, log) = world
        .judge(&sha, Duration::from_secs(10), Duration::from_secs(600))
        .await;
    let got = got.map_err(|e| anyhow::anyhow!("{}\n{log}", gitops_deploy::error::chain(&e)))?;
    ensure!(
        got.synced_revision == sha && got.health == "Healthy",
        "{got:?}"
    );
    ensure!(
        simulated >= Duration::from_secs(20),
        "the hook ran: {simulated:?}\n{log}"
    );
    ensure!(log.contains("operation Running"), "{log}");
    ensure!(
        world.kube.ready_pod_tags("web", "web") == ["3.0.0", "3.0.0", "3.0.0"],
        "{:?}",
        world.kube.ready_pod_tags("web", "web")
    );
    Ok(())
}
