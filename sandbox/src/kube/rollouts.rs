//! The Argo Rollouts controller, as far as a deploy tool can see it: a `Rollout`'s ReplicaSets, pods
//! and status, advanced on the simulator's ticks.
//!
//! Read from argoproj/argo-rollouts 9f8d111d8f (v1.10; these rules are unchanged since v1.6), the
//! summary with file references is `docs/research/argo-rollouts.md`:
//! - **canary** without traffic routing (`rollout/canary.go`; replica counts of
//!   `utils/replicaset/canary.go` `CalculateReplicaCountsForBasicCanary`: the canary gets
//!   `ceil(replicas × weight / 100)` pods, the stable ReplicaSet the rest): `setWeight` steps complete
//!   once both ReplicaSets have their counts available, `pause: {}` waits for a person,
//!   `pause: {duration}` ends on its own (`rollout/pause.go` `CompletedCanaryPauseStep`), after the
//!   last step the new ReplicaSet becomes the stable one (`rollout/sync.go` `promoteStable`);
//! - **blue-green** (`rollout/bluegreen.go`): the new ReplicaSet runs beside the active one (the
//!   preview), `autoPromotionEnabled: false` pauses with `BlueGreenPause` until a person promotes,
//!   `autoPromotionSeconds` pauses that long, then the active selector switches and the new
//!   ReplicaSet is stable;
//! - a **new template resets** the rollout (`resetRolloutStatus`: step 0, pauses and abort cleared;
//!   back to the stable template skips the steps);
//! - **abort** (`status.abort`, as `kubectl argo rollouts abort` sets it; or the controller itself on
//!   a progress deadline with `progressDeadlineAbort: true`): the stable ReplicaSet is scaled back,
//!   condition `Progressing`/`RolloutAborted` "Rollout aborted update to revision N[: why]";
//! - the **progress deadline** (`progressDeadlineSeconds`, 600 by default, × the time scale) is not
//!   counted while paused or aborted;
//! - `status.phase`/`status.message` by `utils/rollout/rolloututil.go` `CalculateRolloutPhase`.
//!
//! Not simulated: analysis and experiment steps (they complete at once), traffic routing, HPA,
//! `workloadRef`, `scaleDownDelaySeconds` (old pods go as soon as the new ones serve), anti-affinity.
//! Pause durations are scaled like progress deadlines ([`KubeTiming::progress_deadline_scale`]).

use std::time::Duration;

// Tokio's clock: under a paused runtime (tests) the simulator runs on the test's time.
use tokio::time::Instant;

use serde_json::{json, Value};

use super::sim::{
    advance_pod, create_pod, is_pod_ready, owned_by, pod_template_hash, put_if_changed, remove_pod,
    replica_set_for, revision_of, set_condition, sync_replica_sets,
};
use super::{int_at, k8s_time, str_at, Key, KubeTiming, Resource, Store};

/// The label Argo Rollouts puts on its ReplicaSets and pods (`DefaultRolloutUniqueLabelKey`).
pub(crate) const HASH_LABEL: &str = "rollouts-pod-template-hash";
/// The revision annotation on Rollouts and their ReplicaSets (`annotations.RevisionAnnotation`).
pub(crate) const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";

/// What the controller remembers between reconciles beyond the status.
#[derive(Debug)]
pub(crate) struct RolloutSim {
    /// When the current pause began (the pause condition's `startTime`, on the monotonic clock).
    pause_since: Option<Instant>,
    /// Last progress of the new ReplicaSet (a pod created or ready, a step done, a pause ended).
    last_progress: Instant,
    /// A blue-green promotion is under way: the preview scales to full before the cutover.
    promoting: bool,
    /// Why the controller aborted (appended to the abort message).
    abort_message: Option<String>,
    /// Blue-green: the previous active ReplicaSet's hash and when it scales down
    /// (`scaleDownDelaySeconds`, 30 by default, after the cutover).
    scale_down: Option<(String, Instant)>,
}

/// A pause duration in seconds: an integer, or a string with a unit (`30s`, `1m`, `1h`; a bare
/// number counts as seconds), as `RolloutPause.DurationSeconds` reads it. `None`: indefinite.
pub(crate) fn pause_seconds(pause: &Value) -> Option<f64> {
    let d = &pause["duration"];
    if let Some(n) = d.as_f64() {
        return Some(n);
    }
    let text = d.as_str()?.trim();
    if let Ok(n) = text.parse::<f64>() {
        return Some(n);
    }
    let (number, unit) = text.split_at(text.find(|c: char| c.is_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    })
}

/// The canary weight at step `index` (`GetCurrentSetWeight`): the last `setWeight` at or before it;
/// 100 once every step is done.
fn set_weight(steps: &[Value], index: usize) -> i64 {
    if index >= steps.len() {
        return 100;
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s["setWeight"].as_i64())
        .unwrap_or(0)
}

fn pause_conditions(st: &Value) -> Vec<Value> {
    st["pauseConditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_pause(st: &Value, reason: &str) -> bool {
    pause_conditions(st).iter().any(|c| c["reason"] == reason)
}

fn add_pause(st: &mut Value, reason: &str) {
    let mut list = pause_conditions(st);
    list.push(json!({"reason": reason, "startTime": k8s_time(crate::clock::now())}));
    st["pauseConditions"] = Value::Array(list);
    st["controllerPause"] = json!(true);
}

fn clear_pause(st: &mut Value) {
    if let Some(m) = st.as_object_mut() {
        m.remove("pauseConditions");
        m.remove("controllerPause");
    }
}

/// Advances one Rollout by one reconcile.
pub(crate) fn step(s: &mut Store, key: &Key, timing: &KubeTiming, instant: bool, now: Instant) {
    let Some(ro) = s.objects.get(key).cloned() else {
        return;
    };
    let ns = key.1.clone();
    let uid = str_at(&ro, &["metadata", "uid"]).to_owned();
    let generation = int_at(&ro, &["metadata", "generation"]);
    // `workloadRef`: the template (and, when not given, the selector) come from the Deployment it
    // names (`rollout/templateref.go`); the Rollout records the Deployment's generation it used.
    let referenced = resolve_workload_ref(s, &ro);
    let effective = referenced
        .as_ref()
        .map_or_else(|| ro.clone(), |(e, _)| e.clone());
    let spec = &effective["spec"];
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    let template = spec["template"].clone();
    let hash = pod_template_hash(&template);
    let blue_green = spec["strategy"]["blueGreen"].is_object();
    let steps: Vec<Value> = spec["strategy"]["canary"]["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let scale = timing.progress_deadline_scale;
    let mut st = if ro["status"].is_object() {
        ro["status"].clone()
    } else {
        json!({})
    };
    let sim = s.sim.rollouts.entry(key.clone()).or_insert(RolloutSim {
        pause_since: None,
        last_progress: now,
        promoting: false,
        abort_message: None,
        scale_down: None,
    });

    let stable = st["stableRS"].as_str().unwrap_or("").to_owned();
    // A new template resets the rollout (rollout/sync.go `resetRolloutStatus`); back to the stable
    // template is a rollback that skips the steps.
    if st["currentPodHash"].as_str() != Some(hash.as_str()) {
        st["currentPodHash"] = json!(hash);
        clear_pause(&mut st);
        if let Some(m) = st.as_object_mut() {
            m.remove("abort");
            m.remove("abortedAt");
            m.remove("promoteFull");
        }
        if !blue_green && !steps.is_empty() {
            let index = if stable == hash { steps.len() } else { 0 };
            st["currentStepIndex"] = json!(index);
        }
        sim.pause_since = None;
        sim.last_progress = now;
        sim.promoting = false;
        sim.abort_message = None;
    }

    // The ReplicaSet of the current template (re-used, with a new revision, on a rollback).
    let new_rs = replica_set_for(
        s,
        &effective,
        &template,
        &hash,
        HASH_LABEL,
        REVISION_ANNOTATION,
    );
    let rs_name = str_at(&new_rs, &["metadata", "name"]).to_owned();
    let new_uid = str_at(&new_rs, &["metadata", "uid"]).to_owned();
    let revision = revision_of(&new_rs, REVISION_ANNOTATION);
    let hash_of = |rs: &Value| str_at(rs, &["metadata", "labels", HASH_LABEL]).to_owned();

    // Kubelet: pods start (or crash).
    for rs in owned_by(s, Resource::ReplicaSets, &ns, &uid) {
        for pod in owned_by(s, Resource::Pods, &ns, str_at(&rs, &["metadata", "uid"])) {
            if advance_pod(s, pod, instant, now) && str_at(&rs, &["metadata", "uid"]) == new_uid {
                if let Some(sim) = s.sim.rollouts.get_mut(key) {
                    sim.last_progress = now;
                }
            }
        }
    }

    let aborted = st["abort"] == true;
    let paused_by_spec = spec["paused"] == true;
    let promoting = s.sim.rollouts.get(key).is_some_and(|r| r.promoting);
    // The previous active ReplicaSet keeps its pods until its scale-down deadline.
    let kept = s
        .sim
        .rollouts
        .get(key)
        .and_then(|r| r.scale_down.clone())
        .filter(|(_, until)| now < *until)
        .map(|(h, _)| h);
    let updating = !stable.is_empty() && stable != hash;
    // How many pods the new and the stable ReplicaSet should have now.
    let (new_target, stable_target) = if !updating {
        (replicas, 0)
    } else if aborted {
        (0, replicas)
    } else if blue_green {
        let preview = spec["strategy"]["blueGreen"]["previewReplicaCount"]
            .as_i64()
            .unwrap_or(replicas);
        (if promoting { replicas } else { preview }, replicas)
    } else {
        let index = st["currentStepIndex"].as_u64().unwrap_or(0) as usize;
        let weight = if steps.is_empty() {
            100
        } else {
            set_weight(&steps, index)
        };
        let canary = (replicas * weight + 99) / 100;
        (canary, replicas - canary)
    };

    // ReplicaSet controller: one pod more or less per ReplicaSet and tick.
    let rss = owned_by(s, Resource::ReplicaSets, &ns, &uid);
    for rs in &rss {
        let rs_hash = hash_of(rs);
        let target = if rs_hash == hash {
            new_target
        } else if updating && rs_hash == stable {
            stable_target
        } else if kept.as_deref() == Some(rs_hash.as_str()) {
            replicas
        } else {
            0
        };
        let pods = owned_by(s, Resource::Pods, &ns, str_at(rs, &["metadata", "uid"]));
        if (pods.len() as i64) < target {
            create_pod(s, rs, timing, instant, now);
            if rs_hash == hash {
                if let Some(sim) = s.sim.rollouts.get_mut(key) {
                    sim.last_progress = now;
                }
            }
        } else if pods.len() as i64 > target {
            let victim = pods
                .iter()
                .find(|p| !is_pod_ready(p))
                .or_else(|| pods.first())
                .cloned();
            if let Some(p) = victim {
                remove_pod(s, &p);
            }
        }
    }
    let pods_with = |s: &Store, h: &str| -> Vec<Value> {
        rss.iter()
            .filter(|rs| hash_of(rs) == h)
            .flat_map(|rs| owned_by(s, Resource::Pods, &ns, str_at(rs, &["metadata", "uid"])))
            .collect()
    };
    let ready = |pods: &[Value]| pods.iter().filter(|p| is_pod_ready(p)).count() as i64;
    let new_pods = pods_with(s, &hash);
    let new_ready = ready(&new_pods);
    let stable_pods = if updating {
        pods_with(s, &stable)
    } else {
        Vec::new()
    };

    let sim = s.sim.rollouts.get_mut(key).expect("inserted above");
    let mut stable = stable;
    if stable.is_empty() {
        // Initial deploy: the first ReplicaSet is stable at once (`shouldFullPromote`: "Initial
        // deploy"); the phase stays Progressing until its pods are available.
        stable = hash.clone();
        if !blue_green && !steps.is_empty() {
            st["currentStepIndex"] = json!(steps.len());
        }
    } else if updating && !aborted && !paused_by_spec && !blue_green {
        let mut index = st["currentStepIndex"].as_u64().unwrap_or(0) as usize;
        if st["promoteFull"] == true {
            index = steps.len();
        }
        if let Some(step) = steps.get(index) {
            if step.get("setWeight").is_some() {
                let settled = new_pods.len() as i64 == new_target
                    && new_ready == new_target
                    && stable_pods.len() as i64 == stable_target
                    && ready(&stable_pods) == stable_target;
                if settled {
                    index += 1;
                    sim.last_progress = now;
                }
            } else if step.get("pause").is_some() {
                let ours = has_pause(&st, "CanaryPauseStep");
                let controller_pause = st["controllerPause"] == true;
                if !ours && !controller_pause {
                    add_pause(&mut st, "CanaryPauseStep");
                    sim.pause_since = Some(now);
                } else if !ours {
                    // A person cleared the pause (`kubectl argo rollouts promote`).
                    index += 1;
                    clear_pause(&mut st);
                    sim.last_progress = now;
                } else if let (Some(secs), Some(since)) =
                    (pause_seconds(&step["pause"]), sim.pause_since)
                {
                    if now >= since + Duration::from_secs_f64((secs * scale).max(0.0)) {
                        index += 1;
                        clear_pause(&mut st);
                        sim.last_progress = now;
                    }
                }
            } else {
                // Analysis, experiments and the rest: the sandbox runs none; they pass at once.
                index += 1;
            }
        }
        if !steps.is_empty() {
            st["currentStepIndex"] = json!(index);
        }
        if index >= steps.len() && new_ready >= replicas {
            stable = hash.clone();
            sim.last_progress = now;
        }
    } else if updating && !aborted && !paused_by_spec && blue_green {
        let bg = &spec["strategy"]["blueGreen"];
        let auto = bg["autoPromotionEnabled"].as_bool() != Some(false);
        let delay = bg["autoPromotionSeconds"].as_i64().unwrap_or(0);
        let preview_ready = new_ready >= new_target && new_pods.len() as i64 == new_target;
        if preview_ready {
            st["blueGreen"]["previewSelector"] = json!(hash);
        }
        if preview_ready && !sim.promoting {
            // The controller pauses only without auto-promotion or with a delay.
            let promote = if !auto || delay > 0 {
                let ours = has_pause(&st, "BlueGreenPause");
                if !ours && st["controllerPause"] != true {
                    add_pause(&mut st, "BlueGreenPause");
                    sim.pause_since = Some(now);
                    false
                } else if !ours {
                    true
                } else {
                    auto && sim
                        .pause_since
                        .is_some_and(|t| now >= t + Duration::from_secs_f64(delay as f64 * scale))
                }
            } else {
                true
            };
            if promote {
                clear_pause(&mut st);
                sim.promoting = true;
                sim.last_progress = now;
            }
        }
        if sim.promoting && new_ready >= replicas {
            st["blueGreen"]["activeSelector"] = json!(hash);
            let delay = bg["scaleDownDelaySeconds"].as_f64().unwrap_or(30.0) * scale;
            sim.scale_down = Some((stable.clone(), now + Duration::from_secs_f64(delay)));
            stable = hash.clone();
            sim.promoting = false;
        }
    }
    if blue_green && (stable == hash || st["blueGreen"]["activeSelector"].is_null()) {
        if stable == hash {
            st["blueGreen"]["activeSelector"] = json!(hash);
            if bg_has_preview(spec) {
                st["blueGreen"]["previewSelector"] = json!(hash);
            }
        } else if !stable.is_empty() {
            st["blueGreen"]["activeSelector"] = json!(stable);
        }
    }
    if !stable.is_empty() {
        st["stableRS"] = json!(stable);
    }
    let complete = !stable.is_empty() && stable == hash;
    let paused = paused_by_spec || !pause_conditions(&st).is_empty();

    // Progress deadline, counted only while the rollout moves (`isIndefiniteStep` and pauses
    // excluded); with `progressDeadlineAbort` the controller aborts.
    let deadline = spec["progressDeadlineSeconds"].as_f64().unwrap_or(600.0) * scale;
    let overdue = !instant
        && !complete
        && !paused
        && !aborted
        && now.duration_since(sim.last_progress) > Duration::from_secs_f64(deadline);
    let timed_out = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
    if overdue && spec["progressDeadlineAbort"] == true && !aborted {
        st["abort"] = json!(true);
        sim.abort_message = Some(timed_out.clone());
    }
    let aborted = st["abort"] == true;
    let stamp = k8s_time(crate::clock::now());
    if aborted {
        if st["abortedAt"].is_null() {
            st["abortedAt"] = json!(stamp);
        }
        clear_pause(&mut st);
        if !blue_green && !steps.is_empty() {
            st["currentStepIndex"] = json!(0);
        }
    }
    let abort_message = sim.abort_message.clone();

    // Counts: canary sums every ReplicaSet; blue-green counts the active one
    // (`syncRolloutStatusBlueGreen`).
    let all_pods: Vec<Value> = rss
        .iter()
        .flat_map(|rs| owned_by(s, Resource::Pods, &ns, str_at(rs, &["metadata", "uid"])))
        .collect();
    let new_pods = pods_with(s, &hash);
    let available = if blue_green {
        let active = st["blueGreen"]["activeSelector"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        ready(&pods_with(s, &active))
    } else {
        ready(&all_pods)
    };
    for (field, value) in [
        ("replicas", all_pods.len() as i64),
        ("updatedReplicas", new_pods.len() as i64),
        ("readyReplicas", available),
        ("availableReplicas", available),
        ("HPAReplicas", all_pods.len() as i64),
    ] {
        if value == 0 {
            if let Some(m) = st.as_object_mut() {
                m.remove(field);
            }
        } else {
            st[field] = json!(value);
        }
    }
    st["observedGeneration"] = json!(generation.to_string());
    st["selector"] = json!(super::table::selector(&effective));

    let mut conditions: Vec<Value> = st["conditions"].as_array().cloned().unwrap_or_default();
    let (status, reason, message) = if aborted {
        let mut m = format!("Rollout aborted update to revision {revision}");
        if let Some(why) = &abort_message {
            m = format!("{m}: {why}");
        }
        ("False", "RolloutAborted", m)
    } else if paused {
        ("Unknown", "RolloutPaused", "Rollout is paused".to_owned())
    } else if complete && new_ready >= replicas {
        (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        )
    } else if overdue {
        ("False", "ProgressDeadlineExceeded", timed_out)
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs_name}\" is progressing."),
        )
    };
    set_condition(
        &mut conditions,
        "Progressing",
        status,
        reason,
        &message,
        &stamp,
    );
    let (status, message) = if available >= replicas {
        ("True", "Rollout has minimum availability")
    } else {
        ("False", "Rollout does not have minimum availability")
    };
    set_condition(
        &mut conditions,
        "Available",
        status,
        "AvailableReason",
        message,
        &stamp,
    );
    set_condition(
        &mut conditions,
        "Completed",
        if complete { "True" } else { "False" },
        "RolloutCompleted",
        "RolloutCompleted",
        &stamp,
    );
    if paused || conditions.iter().any(|c| c["type"] == "Paused") {
        set_condition(
            &mut conditions,
            "Paused",
            if paused { "True" } else { "False" },
            "RolloutPaused",
            "Rollout is paused",
            &stamp,
        );
    }
    st["conditions"] = Value::Array(conditions);
    let (phase, message) = calculate_phase(spec, &st);
    st["phase"] = json!(phase);
    st["message"] = json!(message);

    sync_replica_sets(s, &ns, &uid);
    let mut next = ro.clone();
    if let Some((_, workload_generation)) = &referenced {
        next["metadata"]["annotations"][WORKLOAD_GENERATION] = json!(workload_generation);
        st["workloadObservedGeneration"] = json!(workload_generation);
    }
    next["status"] = st;
    next["metadata"]["annotations"][REVISION_ANNOTATION] = json!(revision.to_string());
    put_if_changed(s, Resource::Rollouts, &ro, next);
}

/// The annotation with the referenced Deployment's generation the Rollout was last resolved
/// from (`annotations.WorkloadGenerationAnnotation`).
pub(crate) const WORKLOAD_GENERATION: &str = "rollout.argoproj.io/workload-generation";

/// For a `workloadRef` Rollout: the Rollout with the referenced Deployment's template (and selector
/// when it has none), and that Deployment's generation; `None` without a reference, or when the
/// Deployment is missing (the controller then only waits).
fn resolve_workload_ref(s: &Store, ro: &Value) -> Option<(Value, String)> {
    let reference = ro["spec"]["workloadRef"].as_object()?;
    let name = reference.get("name")?.as_str()?;
    let ns = str_at(ro, &["metadata", "namespace"]);
    let dep = s
        .objects
        .get(&(Resource::Deployments, ns.to_owned(), name.to_owned()))?;
    let mut effective = ro.clone();
    effective["spec"]["template"] = dep["spec"]["template"].clone();
    if !effective["spec"]["selector"].is_object() {
        effective["spec"]["selector"] = dep["spec"]["selector"].clone();
    }
    Some((
        effective,
        int_at(dep, &["metadata", "generation"]).to_string(),
    ))
}

fn bg_has_preview(spec: &Value) -> bool {
    spec["strategy"]["blueGreen"]["previewService"].is_string()
}

/// `CalculateRolloutPhase` (argo-rollouts `utils/rollout/rolloututil.go`), word for word.
pub(crate) fn calculate_phase(spec: &Value, st: &Value) -> (&'static str, String) {
    for c in st["conditions"].as_array().into_iter().flatten() {
        let message = c["message"].as_str().unwrap_or_default();
        if c["type"] == "InvalidSpec" {
            return ("Degraded", format!("InvalidSpec: {message}"));
        }
        if let Some(reason @ ("RolloutAborted" | "ProgressDeadlineExceeded")) = c["reason"].as_str()
        {
            return ("Degraded", format!("{reason}: {message}"));
        }
    }
    if spec["paused"] == true {
        return ("Paused", "manually paused".into());
    }
    if let Some(reason) = st["pauseConditions"][0]["reason"].as_str() {
        return ("Paused", reason.to_owned());
    }
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    if int(&st["updatedReplicas"]) < replicas {
        return ("Progressing", "more replicas need to be updated".into());
    }
    if int(&st["availableReplicas"]) < int(&st["updatedReplicas"]) {
        return (
            "Progressing",
            "updated replicas are still becoming available".into(),
        );
    }
    let current = st["currentPodHash"].as_str().unwrap_or_default();
    let stable = st["stableRS"].as_str().unwrap_or_default();
    if spec["strategy"]["blueGreen"].is_object() {
        let active = st["blueGreen"]["activeSelector"].as_str().unwrap_or("");
        if active.is_empty() || active != current {
            return ("Progressing", "active service cutover pending".into());
        }
        if stable.is_empty() || stable != current {
            return (
                "Progressing",
                "waiting for post-promotion verification to complete".into(),
            );
        }
    } else {
        if spec["strategy"]["canary"]["trafficRouting"].is_null()
            && int(&st["replicas"]) > int(&st["updatedReplicas"])
        {
            return ("Progressing", "old replicas are pending termination".into());
        }
        if stable.is_empty() || stable != current {
            return ("Progressing", "waiting for all steps to complete".into());
        }
    }
    ("Healthy", String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_durations_read_like_argo_rollouts() {
        for (pause, want) in [
            (json!({"duration": 30}), Some(30.0)),
            (json!({"duration": "30"}), Some(30.0)),
            (json!({"duration": "30s"}), Some(30.0)),
            (json!({"duration": "2m"}), Some(120.0)),
            (json!({"duration": "1h"}), Some(3600.0)),
            (json!({}), None),
        ] {
            assert_eq!(pause_seconds(&pause), want, "{pause}");
        }
    }

    #[test]
    fn weights_follow_the_last_set_weight() {
        let steps = vec![
            json!({"setWeight": 20}),
            json!({"pause": {}}),
            json!({"setWeight": 60}),
            json!({"pause": {"duration": 10}}),
        ];
        assert_eq!(set_weight(&steps, 0), 20);
        assert_eq!(set_weight(&steps, 1), 20);
        assert_eq!(set_weight(&steps, 3), 60);
        assert_eq!(set_weight(&steps, 4), 100);
        assert_eq!(set_weight(&[json!({"pause": {}})], 0), 0);
    }
}
