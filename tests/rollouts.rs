//! Argo Rollouts end to end, against the sandbox's Argo CD and its Rollouts controller: a canary
//! that completes its steps, a canary paused at a step for a person under each `rollout_pause`
//! policy (fail, succeed "deployed to canary", wait until promoted or until the deadline), a
//! blue-green preview promoted while the deploy waits (read through a kubeconfig), and an aborted
//! canary that fails with Argo Rollouts' message. Every assertion is on the JSON report and the
//! cluster, not on log wording.

mod support;
use support::world as common;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{error, timing, World};
use gitops_sandbox::demo;
use gitops_sandbox::eventually::eventually;
use gitops_sandbox::kube::Resource;
use serde_json::Value;

const PATH: &str = "apps/canary";
const NAMESPACE: &str = "web-canary";
const APP: &str = "web-canary";

/// Four pods; 25 %, a pause for a person, 50 %, a 10 s pause (0.5 s at the tests' time scale).
const CANARY: &str = "
  strategy:
    canary:
      steps:
        - setWeight: 25
        - pause: {}
        - setWeight: 50
        - pause: {duration: 10s}
";

const BLUE_GREEN: &str = "
  strategy:
    blueGreen:
      activeService: web
      previewService: web-preview
      autoPromotionEnabled: false
";

fn rollout_yaml(strategy: &str) -> String {
    format!(
        "\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 4
  progressDeadlineSeconds: 600
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: {}:1.0.0
{strategy}",
        demo::IMAGE
    )
}

/// A world with app `web-canary` deploying a Rollout of the demo image, Healthy at 1.0.0.
async fn world(strategy: &str) -> Result<World> {
    let world = world_with(&[("rollout.yaml", &rollout_yaml(strategy))]).await?;
    status_where(&world, "Healthy at 1.0.0", |st, image| {
        st["phase"] == "Healthy" && image.ends_with(":1.0.0")
    })
    .await?;
    Ok(world)
}

/// A world whose app `web-canary` deploys `resources` (name, text) with the demo image at 1.0.0.
async fn world_with(resources: &[(&str, &str)]) -> Result<World> {
    let world = World::start(timing()).await?;
    let list: String = resources
        .iter()
        .map(|(name, _)| format!("  - {name}\n"))
        .collect();
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {NAMESPACE}\n\
         resources:\n{list}images:\n  - name: {}\n    newTag: 1.0.0\n",
        demo::IMAGE
    );
    let mut files: Vec<(String, String)> =
        vec![(format!("{PATH}/kustomization.yaml"), kustomization)];
    files.extend(
        resources
            .iter()
            .map(|(name, text)| (format!("{PATH}/{name}"), (*text).to_owned())),
    );
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    world.commit(&files, "a rollout").await?;
    world.argo.add_app(
        gitops_sandbox::argocd::AppSpec {
            path: PATH.into(),
            dest_namespace: NAMESPACE.into(),
            ..world.app_spec(APP, true)
        },
        true,
    )?;
    Ok(world)
}

fn live(world: &World) -> Value {
    world
        .kube
        .get(Resource::Rollouts, NAMESPACE, "web")
        .unwrap_or(Value::Null)
}

/// Waits until the live Rollout's status and template image satisfy `holds`.
async fn status_where(
    world: &World,
    what: &str,
    holds: impl Fn(&Value, &str) -> bool,
) -> Result<Value> {
    Ok(eventually(what, Duration::from_secs(30), || async {
        let ro = live(world);
        let image = ro["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // A status of the template before is no state of this one.
        let observed = ro["status"]["observedGeneration"].as_str()
            == Some(&ro["metadata"]["generation"].to_string());
        if observed && holds(&ro["status"], &image) {
            Ok(ro["status"].clone())
        } else {
            Err(format!(
                "{image}: {} {:?} step {}",
                ro["status"]["phase"], ro["status"]["message"], ro["status"]["currentStepIndex"]
            ))
        }
    })
    .await?)
}

fn args(world: &World, tag: &str, extra: &[&str]) -> Vec<String> {
    [
        "--server-url",
        world.sandbox.gitea_url(),
        "--repository",
        demo::REPOSITORY,
        "--path",
        PATH,
        "--image",
        demo::IMAGE,
        "--tag",
        tag,
        "--argocd-server",
        &world.argo_url,
        "--argocd-app",
        APP,
        "--timeout",
        "40s",
        "--degraded-grace",
        "3s",
    ]
    .iter()
    .chain(if extra.contains(&"--rollout") {
        &[][..]
    } else {
        &["--rollout", "auto"][..]
    })
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

/// How many times Argo CD was asked for the live Rollout (the rollout phase reads it so, every
/// poll).
fn rollout_reads(world: &World) -> usize {
    world
        .sandbox
        .requests()
        .for_server(gitops_sandbox::faults::Server::ArgoCd)
        .iter()
        .filter(|r| r.path == format!("/api/v1/applications/{APP}/resource"))
        .count()
}

/// Waits until the binary has read the live Rollout twice more since now: it has judged what the
/// cluster shows now (the first read may be its discovery), so what the test does next happens
/// after the binary saw this state.
async fn seen_by_the_binary(world: &World) -> Result<()> {
    let before = rollout_reads(world);
    eventually(
        "two more reads of the Rollout",
        Duration::from_secs(15),
        || async {
            match rollout_reads(world) {
                n if n >= before + 2 => Ok(()),
                n => Err(format!("{} reads since", n - before)),
            }
        },
    )
    .await?;
    Ok(())
}

fn tags(world: &World) -> Vec<String> {
    let mut t = world.kube.ready_rollout_tags(NAMESPACE, "web");
    t.sort();
    t
}

#[tokio::test]
async fn a_canary_that_completes_its_steps_is_verified_on_the_stable_version() -> Result<()> {
    let world = world(
        "  strategy:\n    canary:\n      steps:\n        - setWeight: 50\n        - pause: {duration: 10s}\n",
    )
    .await?;
    let (code, report, err) = world.run_json(&args(&world, "2.0.0", &[]), &[]).await?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    ensure!(
        report["rollout"] == "rollout/web: 4/4 updated, 4 available"
            && report["synced_revision"] == world.head().await?.as_str(),
        "{report}"
    );
    // Success means the new version is stable on every pod, not merely started.
    let st = live(&world)["status"].clone();
    ensure!(st["stableRS"] == st["currentPodHash"], "{st}");
    ensure!(tags(&world) == ["2.0.0"; 4], "{:?}", tags(&world));
    Ok(())
}

#[tokio::test]
async fn a_canary_paused_for_a_person_fails_succeeds_or_waits_as_rollout_pause_says() -> Result<()>
{
    let world = world(CANARY).await?;

    // fail (the default): named where it stopped, promptly.
    let (code, report, err) = world.run_json(&args(&world, "2.0.0", &[]), &[]).await?;
    ensure!(code == 1 && report["phase"] == "rollout", "{report}\n{err}");
    ensure!(
        error(&report).contains("rollout/web paused at step 2/4: manual promotion needed"),
        "{report}"
    );
    ensure!(
        tags(&world) == ["1.0.0", "1.0.0", "1.0.0", "2.0.0"],
        "{:?}",
        tags(&world)
    );

    // succeed: deployed to canary, and the outputs say it is not promoted.
    let (code, report, err) = world
        .run_json(&args(&world, "2.1.0", &["--rollout-pause", "succeed"]), &[])
        .await?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let rollout = report["rollout"].as_str().unwrap_or_default();
    ensure!(
        rollout.starts_with("rollout/web: 1/4 updated, 4 available, not promoted"),
        "{report}"
    );
    ensure!(
        tags(&world) == ["1.0.0", "1.0.0", "1.0.0", "2.1.0"],
        "{:?}",
        tags(&world)
    );

    // wait, nobody promotes: the deadline names the pause as the last state.
    let (code, report, err) = world
        .run_json(
            &args(
                &world,
                "2.2.0",
                &["--rollout-pause", "wait", "--rollout-timeout", "10s"],
            ),
            &[],
        )
        .await?;
    ensure!(code == 1 && report["phase"] == "rollout", "{report}\n{err}");
    ensure!(
        error(&report).contains("paused at step 2/4: manual promotion needed"),
        "{report}"
    );

    // wait, and a person promotes: the rest of the steps run and the deploy succeeds.
    let promote = async {
        status_where(&world, "2.3.0 paused at step 2", |st, image| {
            image.ends_with(":2.3.0") && st["phase"] == "Paused" && st["currentStepIndex"] == 1
        })
        .await?;
        // The binary waits at the pause (a `fail` would have ended it) until the promotion.
        seen_by_the_binary(&world).await?;
        ensure!(world.kube.promote_rollout(NAMESPACE, "web"));
        Ok::<_, anyhow::Error>(())
    };
    let run_args = args(&world, "2.3.0", &["--rollout-pause", "wait"]);
    let run = world.run_json(&run_args, &[]);
    let (ran, promoted) = tokio::join!(run, promote);
    let (code, report, err) = ran?;
    promoted.with_context(|| format!("{report}\n{err}"))?;
    ensure!(
        code == 0 && report["rollout"] == "rollout/web: 4/4 updated, 4 available",
        "{report}\n{err}"
    );
    ensure!(tags(&world) == ["2.3.0"; 4], "{:?}", tags(&world));
    Ok(())
}

#[tokio::test]
async fn a_blue_green_preview_promoted_while_the_deploy_waits_succeeds_read_through_kubeconfig(
) -> Result<()> {
    let world = world(BLUE_GREEN).await?;
    let kubeconfig = world.kubeconfig.display().to_string();
    let extra = [
        "--kubeconfig",
        kubeconfig.as_str(),
        "--rollout",
        "rollout/web",
        "--namespace",
        NAMESPACE,
        "--rollout-pause",
        "wait",
    ];
    let watches = world.kube.watches_started();
    let promote = async {
        let st = status_where(&world, "the preview of 2.0.0", |st, image| {
            image.ends_with(":2.0.0") && st["phase"] == "Paused"
        })
        .await?;
        // The preview runs the new version beside the active one.
        ensure!(
            st["message"] == "BlueGreenPause"
                && st["blueGreen"]["previewSelector"] == st["currentPodHash"]
                && st["blueGreen"]["activeSelector"] == st["stableRS"],
            "{st}"
        );
        // The binary watches the Rollout: it gets the paused state before the promotion.
        eventually("the binary watches", Duration::from_secs(15), || async {
            match world.kube.watches_started() {
                n if n > watches => Ok(()),
                n => Err(format!("{n} watches")),
            }
        })
        .await?;
        ensure!(world.kube.promote_rollout(NAMESPACE, "web"));
        Ok::<_, anyhow::Error>(())
    };
    let run_args = args(&world, "2.0.0", &extra);
    let run = world.run_json(&run_args, &[]);
    let (ran, promoted) = tokio::join!(run, promote);
    let (code, report, err) = ran?;
    promoted.with_context(|| format!("{report}\n{err}"))?;
    ensure!(
        code == 0 && report["rollout"] == "rollout/web: 4/4 updated, 4 available",
        "{report}\n{err}"
    );
    let st = live(&world)["status"].clone();
    ensure!(
        st["blueGreen"]["activeSelector"] == st["currentPodHash"]
            && st["stableRS"] == st["currentPodHash"],
        "{st}"
    );
    Ok(())
}

#[tokio::test]
async fn an_aborted_canary_fails_with_argo_rollouts_message() -> Result<()> {
    let world = world(CANARY).await?;
    let abort = async {
        status_where(&world, "2.0.0 paused", |st, image| {
            image.ends_with(":2.0.0") && st["phase"] == "Paused"
        })
        .await?;
        // Aborted while the rollout phase waits at the pause (the argocd phase is over).
        seen_by_the_binary(&world).await?;
        ensure!(world.kube.abort_rollout(NAMESPACE, "web"));
        Ok::<_, anyhow::Error>(())
    };
    let run_args = args(&world, "2.0.0", &["--rollout-pause", "wait"]);
    let run = world.run_json(&run_args, &[]);
    let (ran, aborted) = tokio::join!(run, abort);
    let (code, report, err) = ran?;
    aborted.with_context(|| format!("{report}\n{err}"))?;
    ensure!(code == 1 && report["phase"] == "rollout", "{report}\n{err}");
    ensure!(
        error(&report).contains("RolloutAborted: Rollout aborted update to revision 2"),
        "{report}"
    );
    // The stable version serves again.
    eventually("1.0.0 on every pod", Duration::from_secs(10), || async {
        match tags(&world) {
            t if t == ["1.0.0"; 4] => Ok(()),
            t => Err(format!("{t:?}")),
        }
    })
    .await?;
    Ok(())
}

/// A Rollout that takes its template from a Deployment (`workloadRef`, how teams migrate): the
/// image is set in the Deployment, and the deploy waits until the Rollout runs it as stable.
#[tokio::test]
async fn a_workload_ref_rollout_is_verified_on_its_deployments_template() -> Result<()> {
    let template = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-template\nspec:\n  replicas: 0\n\
         \x20 selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n\
         \x20       app: web\n    spec:\n      containers:\n        - name: web\n          image: {}:1.0.0\n",
        demo::IMAGE
    );
    let rollout = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\nspec:\n\
         \x20 replicas: 4\n  workloadRef:\n    apiVersion: apps/v1\n    kind: Deployment\n\
         \x20   name: web-template\n  strategy:\n    canary:\n      steps:\n        - setWeight: 50\n\
         \x20       - pause: {duration: 10s}\n";
    let world = world_with(&[("deployment.yaml", &template), ("rollout.yaml", rollout)]).await?;
    eventually("4 pods of 1.0.0", Duration::from_secs(30), || async {
        match tags(&world) {
            t if t == ["1.0.0"; 4] => Ok(()),
            t => Err(format!("{t:?}")),
        }
    })
    .await?;
    let (code, report, err) = world.run_json(&args(&world, "2.0.0", &[]), &[]).await?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let rollout = report["rollout"].as_str().unwrap_or_default();
    ensure!(
        rollout
            .lines()
            .any(|l| l == "rollout/web: 4/4 updated, 4 available"),
        "{report}"
    );
    let st = live(&world)["status"].clone();
    ensure!(
        st["stableRS"] == st["currentPodHash"] && st["workloadObservedGeneration"].is_string(),
        "{st}"
    );
    ensure!(tags(&world) == ["2.0.0"; 4], "{:?}", tags(&world));
    Ok(())
}
