//! The sandbox's Argo Rollouts controller: a canary through its steps (a pause a person ends, a
//! timed pause that ends on its own), an abort, a progress deadline that aborts, blue-green with a
//! manual promotion, and the Rollout served to the real `kubectl` through its CRD's group. The
//! statuses are the ones Argo Rollouts writes (docs/research/argo-rollouts.md).

use std::time::Duration;

mod support;

use anyhow::{ensure, Context, Result};
use gitops_sandbox::eventually::eventually;
use gitops_sandbox::kube::{self, Kube, KubeTiming, Resource};
use serde_json::{json, Value};

const OLD: &str = "registry.example.com/demo/web:1.0.0";

fn rollout(image: &str, strategy: Value) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "web"},
        "spec": {
            "replicas": 4,
            "progressDeadlineSeconds": 60,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            "strategy": strategy,
        },
    })
}

fn canary() -> Value {
    json!({"canary": {"steps": [
        {"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "20s"}}
    ]}})
}

fn cluster(rollout: Value) -> Result<(Kube, tokio::task::JoinHandle<()>)> {
    let kube = Kube::new(
        "rollouts-test-token",
        KubeTiming {
            pod_start_delay: Duration::from_millis(100),
            // 60 s of progress deadline → 0.6 s; a 20 s pause → 0.2 s.
            progress_deadline_scale: 0.01,
            tick: Duration::from_millis(10),
        },
    );
    kube.apply(rollout)?;
    kube.settle();
    let sim = kube.spawn_simulator();
    Ok((kube, sim))
}

fn live(kube: &Kube) -> Value {
    kube.get(Resource::Rollouts, "web", "web")
        .unwrap_or(Value::Null)
}

/// Waits until the Rollout's phase and message are these; returns its status.
async fn phase(kube: &Kube, phase: &str, message: &str) -> Result<Value> {
    Ok(eventually(
        format!("phase {phase} {message:?}"),
        Duration::from_secs(20),
        || async {
            let st = live(kube)["status"].clone();
            if st["phase"] == phase && st["message"] == message {
                Ok(st)
            } else {
                Err(format!(
                    "{} {:?} step {} stable {} current {}; tags {:?}",
                    st["phase"],
                    st["message"],
                    st["currentStepIndex"],
                    st["stableRS"],
                    st["currentPodHash"],
                    kube.ready_rollout_tags("web", "web")
                ))
            }
        },
    )
    .await?)
}

fn sorted_tags(kube: &Kube) -> Vec<String> {
    let mut t = kube.ready_rollout_tags("web", "web");
    t.sort();
    t
}

fn set_image(kube: &Kube, strategy: Value, image: &str) -> Result<()> {
    kube.apply(rollout(image, strategy))?;
    Ok(())
}

#[tokio::test]
async fn a_canary_pauses_for_a_person_then_passes_its_timed_pause_and_promotes() -> Result<()> {
    let (kube, sim) = cluster(rollout(OLD, canary()))?;
    let first = phase(&kube, "Healthy", "").await?;
    ensure!(first["stableRS"] == first["currentPodHash"] && first["currentStepIndex"] == 4);
    ensure!(first["observedGeneration"] == "1", "{first}");

    set_image(&kube, canary(), "registry.example.com/demo/web:2.0.0")?;
    let paused = phase(&kube, "Paused", "CanaryPauseStep").await?;
    ensure!(
        paused["currentStepIndex"] == 1
            && paused["controllerPause"] == true
            && paused["pauseConditions"][0]["reason"] == "CanaryPauseStep"
            && paused["stableRS"] == first["stableRS"]
            && paused["currentPodHash"] != first["currentPodHash"]
            && paused["updatedReplicas"] == 1
            && paused["observedGeneration"] == "2",
        "{paused}"
    );
    // 25 % of 4 pods run the canary; the stable ReplicaSet keeps the rest.
    eventually(
        "one canary pod and three stable",
        Duration::from_secs(5),
        || async {
            match sorted_tags(&kube) {
                t if t == ["1.0.0", "1.0.0", "1.0.0", "2.0.0"] => Ok(()),
                t => Err(format!("{t:?}")),
            }
        },
    )
    .await?;
    // It stays paused until a person promotes it.
    ensure!(live(&kube)["status"]["phase"] == "Paused");
    ensure!(kube.promote_rollout("web", "web"));
    let done = phase(&kube, "Healthy", "").await?;
    ensure!(
        done["stableRS"] == done["currentPodHash"]
            && done["currentStepIndex"] == 4
            && done["pauseConditions"].is_null(),
        "{done}"
    );
    ensure!(
        sorted_tags(&kube) == ["2.0.0"; 4],
        "{:?}",
        sorted_tags(&kube)
    );
    let completed = done["conditions"]
        .as_array()
        .context("conditions")?
        .iter()
        .any(|c| c["type"] == "Completed" && c["status"] == "True");
    ensure!(completed, "{done}");
    sim.abort();
    Ok(())
}

#[tokio::test]
async fn an_aborted_canary_is_degraded_and_the_stable_version_serves() -> Result<()> {
    let (kube, sim) = cluster(rollout(OLD, canary()))?;
    phase(&kube, "Healthy", "").await?;
    set_image(&kube, canary(), "registry.example.com/demo/web:2.0.0")?;
    phase(&kube, "Paused", "CanaryPauseStep").await?;
    ensure!(kube.abort_rollout("web", "web"));
    let st = phase(
        &kube,
        "Degraded",
        "RolloutAborted: Rollout aborted update to revision 2",
    )
    .await?;
    ensure!(
        st["abort"] == true && st["abortedAt"].is_string() && st["currentStepIndex"] == 0,
        "{st}"
    );
    eventually(
        "the stable version on every pod",
        Duration::from_secs(5),
        || async {
            match sorted_tags(&kube) {
                t if t == ["1.0.0"; 4] => Ok(()),
                t => Err(format!("{t:?}")),
            }
        },
    )
    .await?;
    // A new template clears the abort and rolls again.
    set_image(&kube, canary(), "registry.example.com/demo/web:3.0.0")?;
    let again = phase(&kube, "Paused", "CanaryPauseStep").await?;
    ensure!(again["abort"].is_null(), "{again}");
    sim.abort();
    Ok(())
}

#[tokio::test]
async fn a_crashing_canary_aborts_at_its_progress_deadline_with_progress_deadline_abort(
) -> Result<()> {
    let strategy = canary();
    let mut ro = rollout(OLD, strategy.clone());
    ro["spec"]["progressDeadlineAbort"] = json!(true);
    let (kube, sim) = cluster(ro.clone())?;
    phase(&kube, "Healthy", "").await?;
    let mut broken = rollout("registry.example.com/demo/web:broken-1", strategy);
    broken["spec"]["progressDeadlineAbort"] = json!(true);
    kube.apply(broken)?;
    let st = eventually(
        "aborted at the deadline",
        Duration::from_secs(20),
        || async {
            let st = live(&kube)["status"].clone();
            let m = st["message"].as_str().unwrap_or_default();
            if st["phase"] == "Degraded"
                && m.starts_with(
                    "RolloutAborted: Rollout aborted update to revision 2: ReplicaSet \"web-",
                )
                && m.ends_with("\" has timed out progressing.")
            {
                Ok(st)
            } else {
                Err(format!("{} {m:?}", st["phase"]))
            }
        },
    )
    .await?;
    ensure!(st["stableRS"] != st["currentPodHash"], "{st}");
    sim.abort();
    Ok(())
}

#[tokio::test]
async fn blue_green_runs_the_preview_until_promoted_then_switches_the_active_service() -> Result<()>
{
    let strategy = json!({"blueGreen": {"activeService": "web", "previewService": "web-preview",
        "autoPromotionEnabled": false}});
    let (kube, sim) = cluster(rollout(OLD, strategy.clone()))?;
    let first = phase(&kube, "Healthy", "").await?;
    ensure!(first["blueGreen"]["activeSelector"] == first["currentPodHash"]);
    set_image(&kube, strategy, "registry.example.com/demo/web:2.0.0")?;
    let paused = phase(&kube, "Paused", "BlueGreenPause").await?;
    ensure!(
        paused["blueGreen"]["previewSelector"] == paused["currentPodHash"]
            && paused["blueGreen"]["activeSelector"] == first["currentPodHash"]
            && paused["updatedReplicas"] == 4
            // Blue-green counts the active ReplicaSet's pods as available.
            && paused["availableReplicas"] == 4
            && paused["replicas"] == 8,
        "{paused}"
    );
    ensure!(kube.promote_rollout("web", "web"));
    let done = phase(&kube, "Healthy", "").await?;
    ensure!(
        done["blueGreen"]["activeSelector"] == done["currentPodHash"]
            && done["stableRS"] == done["currentPodHash"],
        "{done}"
    );
    // The old active pods stay for scaleDownDelaySeconds (30 s → 0.3 s here), then go.
    eventually("the old pods gone", Duration::from_secs(5), || async {
        match sorted_tags(&kube) {
            t if t == ["2.0.0"; 4] => Ok(()),
            t => Err(format!("{t:?}")),
        }
    })
    .await?;
    sim.abort();
    Ok(())
}

#[tokio::test]
async fn kubectl_reads_rollouts_through_their_crd_group() -> Result<()> {
    let (kube, sim) = cluster(rollout(OLD, canary()))?;
    phase(&kube, "Healthy", "").await?;
    let served = support::serve(kube::api::router(kube.clone())).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("kubeconfig");
    kube.write_kubeconfig(&config, &served.url)?;
    let out = tokio::process::Command::new("kubectl")
        .args(["get", "rollouts", "-n", "web", "-o", "json", "--kubeconfig"])
        .arg(&config)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .kill_on_drop(true)
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout)?;
    ensure!(
        list["items"][0]["kind"] == "Rollout" && list["items"][0]["status"]["phase"] == "Healthy",
        "{list}"
    );
    let table = tokio::process::Command::new("kubectl")
        .args(["get", "ro", "web", "-n", "web", "--kubeconfig"])
        .arg(&config)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .kill_on_drop(true)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&table.stdout);
    ensure!(
        text.contains("DESIRED") && text.contains("UP-TO-DATE") && text.contains("web"),
        "{text}\n{}",
        String::from_utf8_lossy(&table.stderr)
    );
    sim.abort();
    Ok(())
}
