//! Argo Rollouts' `Rollout` (`argoproj.io/v1alpha1`): when has it rolled out *our image*, as
//! `kubectl argo rollouts status` decides, plus what to do with a paused canary.
//!
//! The phase and message are Argo Rollouts' own (argoproj/argo-rollouts 9f8d111d8f, v1.6–v1.10,
//! `utils/rollout/rolloututil.go`, summarised in `docs/research/argo-rollouts.md`):
//! `GetRolloutPhase` first (`observedGeneration` behind `metadata.generation` → "waiting for
//! rollout spec update to be observed"; `controllerPause` without pause conditions → "waiting for
//! rollout to unpause"), then the stored `status.phase`/`status.message`, or for a controller older
//! than v1.0 `CalculateRolloutPhase` (conditions `InvalidSpec`, `RolloutAborted`,
//! `ProgressDeadlineExceeded` → Degraded; `spec.paused` → "manually paused"; the first pause
//! reason; replicas; blue-green "active service cutover pending"; canary "waiting for all steps to
//! complete"). `kubectl argo rollouts status` (`pkg/kubectl-argo-rollouts/cmd/status/status.go`)
//! ends on `Healthy` (success) and `Degraded` (error "The rollout is in a degraded state with
//! message: …") and keeps waiting on `Progressing` and `Paused`.
//!
//! On top: the template must carry our image (as for a Deployment), `Healthy` counts only when the
//! stable ReplicaSet is the current one (`IsFullyPromoted`: `stableRS == currentPodHash`), and a
//! pause that needs a person ([`PausePolicy`]) fails, succeeds ("deployed to canary") or waits.
//! This module is the pure decision; [`super::rollout_verdict_with`] calls it for
//! [`super::Workload::Rollout`].

use serde_json::Value;

use crate::verdict::Verdict;

pub use crate::verdict::PausePolicy;

/// The phase and message Argo Rollouts reports for `ro` (`GetRolloutPhase`).
pub fn phase(ro: &Value) -> (String, String) {
    let status = &ro["status"];
    let generation = ro["metadata"]["generation"].as_i64().unwrap_or(0);
    // `observedGeneration` is a string holding the number (a hash before v0.10: then observed).
    let observed = match status["observedGeneration"].as_str() {
        Some(s) => s.parse::<i64>().map_or(true, |o| o >= generation),
        None => status["observedGeneration"]
            .as_i64()
            .is_some_and(|o| o >= generation),
    };
    if !observed {
        return (
            "Progressing".into(),
            "waiting for rollout spec update to be observed".into(),
        );
    }
    // A workloadRef rollout resolved from an older generation of its Deployment (argo-cd's
    // health.lua `isWorkloadGenerationObserved`; the CLI cannot see `TemplateResolvedFromRef`).
    if ro["spec"]["workloadRef"].is_object() {
        let wanted =
            ro["metadata"]["annotations"]["rollout.argoproj.io/workload-generation"].as_str();
        let seen = status["workloadObservedGeneration"].as_str();
        if wanted.is_some_and(|w| seen != Some(w)) {
            return (
                "Progressing".into(),
                "waiting for rollout spec update to be observed for the reference workload".into(),
            );
        }
    }
    let pauses = status["pauseConditions"].as_array().map_or(0, Vec::len);
    if status["controllerPause"].as_bool() == Some(true) && pauses == 0 {
        return (
            "Progressing".into(),
            "waiting for rollout to unpause".into(),
        );
    }
    match status["phase"].as_str().filter(|p| !p.is_empty()) {
        Some(p) => (
            p.to_owned(),
            status["message"].as_str().unwrap_or_default().to_owned(),
        ),
        None => calculate_phase(ro),
    }
}

/// `CalculateRolloutPhase`, for controllers that store no phase (before v1.0).
fn calculate_phase(ro: &Value) -> (String, String) {
    let (spec, status) = (&ro["spec"], &ro["status"]);
    for c in status["conditions"].as_array().into_iter().flatten() {
        let message = c["message"].as_str().unwrap_or_default();
        if c["type"] == "InvalidSpec" {
            return ("Degraded".into(), format!("InvalidSpec: {message}"));
        }
        if let Some(reason @ ("RolloutAborted" | "ProgressDeadlineExceeded")) = c["reason"].as_str()
        {
            return ("Degraded".into(), format!("{reason}: {message}"));
        }
    }
    if spec["paused"].as_bool() == Some(true) {
        return ("Paused".into(), "manually paused".into());
    }
    if let Some(reason) = status["pauseConditions"][0]["reason"].as_str() {
        return ("Paused".into(), reason.to_owned());
    }
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    if int(&status["updatedReplicas"]) < replicas {
        return (
            "Progressing".into(),
            "more replicas need to be updated".into(),
        );
    }
    if int(&status["availableReplicas"]) < int(&status["updatedReplicas"]) {
        return (
            "Progressing".into(),
            "updated replicas are still becoming available".into(),
        );
    }
    let current = status["currentPodHash"].as_str().unwrap_or_default();
    let stable = status["stableRS"].as_str().unwrap_or_default();
    if spec["strategy"]["blueGreen"].is_object() {
        let active = status["blueGreen"]["activeSelector"]
            .as_str()
            .unwrap_or_default();
        if active.is_empty() || active != current {
            return (
                "Progressing".into(),
                "active service cutover pending".into(),
            );
        }
        if stable.is_empty() || stable != current {
            return (
                "Progressing".into(),
                "waiting for post-promotion verification to complete".into(),
            );
        }
    } else if spec["strategy"]["canary"].is_object() {
        if spec["strategy"]["canary"]["trafficRouting"].is_null()
            && int(&status["replicas"]) > int(&status["updatedReplicas"])
        {
            return (
                "Progressing".into(),
                "old replicas are pending termination".into(),
            );
        }
        if stable.is_empty() || stable != current {
            return (
                "Progressing".into(),
                "waiting for all steps to complete".into(),
            );
        }
    }
    ("Healthy".into(), String::new())
}

/// Where a paused rollout stands, for people: `paused at step 2/5: manual promotion needed`;
/// `true` when only a person ends the pause.
fn describe_pause(ro: &Value, message: &str) -> (String, bool) {
    let (spec, status) = (&ro["spec"], &ro["status"]);
    if spec["paused"].as_bool() == Some(true) {
        return ("manually paused (spec.paused): resume it".into(), true);
    }
    let reason = status["pauseConditions"][0]["reason"]
        .as_str()
        .unwrap_or(message);
    match reason {
        "CanaryPauseStep" => {
            let steps = spec["strategy"]["canary"]["steps"].as_array();
            let total = steps.map_or(0, Vec::len);
            let index = status["currentStepIndex"].as_u64().unwrap_or(0) as usize;
            let pause = steps.and_then(|s| s.get(index)).map(|s| &s["pause"]);
            match pause.map(|p| &p["duration"]) {
                Some(d) if !d.is_null() => (
                    format!(
                        "paused at step {}/{total} for {}",
                        index + 1,
                        d.as_str().map_or_else(|| format!("{d}s"), str::to_owned)
                    ),
                    false,
                ),
                _ => (
                    format!(
                        "paused at step {}/{total}: manual promotion needed",
                        index + 1
                    ),
                    true,
                ),
            }
        }
        "BlueGreenPause" => {
            let auto =
                spec["strategy"]["blueGreen"]["autoPromotionEnabled"].as_bool() != Some(false);
            if auto {
                (
                    "paused before promotion (autoPromotionSeconds)".into(),
                    false,
                )
            } else {
                (
                    "the preview runs the new version; manual promotion needed".into(),
                    true,
                )
            }
        }
        other => (format!("paused: {other}"), true),
    }
}

/// True when the stable ReplicaSet is the current one (`IsFullyPromoted`: every canary step done,
/// the blue-green active service switched).
pub fn fully_promoted(ro: &Value) -> bool {
    let status = &ro["status"];
    let current = status["currentPodHash"].as_str().unwrap_or_default();
    !current.is_empty() && status["stableRS"].as_str() == Some(current)
}

/// Where a Rollout stands, for people: `rollout/web paused at step 2/5: manual promotion needed`,
/// `rollout/web: waiting for all steps to complete`.
pub fn describe(ro: &Value, name: &str) -> String {
    let (phase, message) = phase(ro);
    if phase == "Paused" {
        return format!("rollout/{name} {}", describe_pause(ro, &message).0);
    }
    let message = if message.is_empty() { phase } else { message };
    format!("rollout/{name}: {message}")
}

/// The verdict for one `Rollout` named `name` and our `images`.
pub fn verdict(ro: &Value, name: &str, images: &[String], policy: PausePolicy) -> Verdict {
    let containers = ro["spec"]["template"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let live: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    // A workloadRef rollout keeps its template in the Deployment it names; the sources put it
    // here. Not there (the Deployment missing, another kind): nothing proves which image runs.
    if live.is_empty() && ro["spec"]["workloadRef"].is_object() {
        return Verdict::waiting(format!(
            "rollout/{name}: waiting for its template from {} {:?} (workloadRef)",
            ro["spec"]["workloadRef"]["kind"]
                .as_str()
                .unwrap_or("Deployment"),
            ro["spec"]["workloadRef"]["name"]
                .as_str()
                .unwrap_or_default()
        ));
    }
    if !live.is_empty() {
        for want in images {
            let repo = super::image_repository(want);
            let ours: Vec<&&str> = live
                .iter()
                .filter(|l| super::image_repository(l) == repo)
                .collect();
            if !ours.is_empty() && !ours.iter().any(|l| super::image_matches(l, want)) {
                return Verdict::waiting(format!(
                    "rollout/{name}: template still runs {} (want {want})",
                    ours[0]
                ));
            }
        }
    }
    let (phase, message) = phase(ro);
    let status = &ro["status"];
    match phase.as_str() {
        "Degraded" => Verdict::failed(format!(
            "rollout/{name} is Degraded: {}",
            if message.is_empty() {
                "no message"
            } else {
                &message
            }
        )),
        "Paused" => {
            let (where_, needs_person) = describe_pause(ro, &message);
            // The controller pauses at a step (or before a blue-green promotion) only once the new
            // pods are available; `spec.paused` stops it wherever it is, ready or not.
            let controller_pause = ro["spec"]["paused"].as_bool() != Some(true);
            match (needs_person, policy) {
                (true, PausePolicy::Fail) => Verdict::failed(format!("rollout/{name} {where_}")),
                (true, PausePolicy::Succeed) => {
                    // Only when the new version runs somewhere (the canary or the preview).
                    if controller_pause && status["updatedReplicas"].as_i64().unwrap_or(0) > 0 {
                        Verdict::Ready
                    } else {
                        Verdict::waiting(format!(
                            "rollout/{name} {where_}; no pod of the new version is running yet"
                        ))
                    }
                }
                _ => Verdict::waiting(format!("rollout/{name} {where_}")),
            }
        }
        "Healthy" if fully_promoted(ro) => Verdict::Ready,
        "Healthy" => Verdict::waiting(format!(
            "rollout/{name}: stable ReplicaSet {:?} is not yet the new one {:?}",
            status["stableRS"].as_str().unwrap_or_default(),
            status["currentPodHash"].as_str().unwrap_or_default()
        )),
        _ => Verdict::waiting(format!(
            "rollout/{name}: {}",
            if message.is_empty() { &phase } else { &message }
        )),
    }
}

#[cfg(test)]
mod tests {
    //! The agreement table: each row a Rollout as Argo Rollouts' controller writes it (the status
    //! snapshots of argo-cd `resource_customizations/argoproj.io/Rollout/testdata`, and the rules of
    //! argo-rollouts `utils/rollout/rolloututil.go`), the phase Argo Rollouts reports, and our verdict.
    use super::*;
    use serde_json::json;

    const IMAGE: &str = "registry.example.com/web:2.0.0";

    fn rollout(spec: Value, status: Value) -> Value {
        let mut spec = spec;
        if spec["template"].is_null() {
            spec["template"] = json!({"spec": {"containers": [{"name": "web", "image": IMAGE}]}});
        }
        json!({"metadata": {"name": "web", "generation": 5}, "spec": spec, "status": status})
    }

    fn canary(steps: Value) -> Value {
        json!({"replicas": 6, "strategy": {"canary": {"steps": steps}}})
    }

    fn steps() -> Value {
        json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {"duration": "30s"}}, {"setWeight": 100}])
    }

    #[test]
    fn phases_and_verdicts_agree_with_argo_rollouts() {
        let healthy = json!({"observedGeneration": "5", "phase": "Healthy", "currentPodHash": "new",
            "stableRS": "new", "replicas": 6, "updatedReplicas": 6, "availableReplicas": 6,
            "currentStepIndex": 5});
        let paused_at = |i: u64| {
            json!({"observedGeneration": "5", "phase": "Paused",
            "message": "CanaryPauseStep", "controllerPause": true, "currentStepIndex": i,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2026-12-01T00:00:00Z"}],
            "currentPodHash": "new", "stableRS": "old", "replicas": 6, "updatedReplicas": 2,
            "availableReplicas": 6})
        };
        let ready = Verdict::Ready;
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, Value, PausePolicy, (&str, &str), Verdict)> = vec![
            (
                "healthy and fully promoted",
                rollout(canary(steps()), healthy.clone()),
                PausePolicy::Fail,
                ("Healthy", ""),
                ready.clone(),
            ),
            (
                "generation not observed yet",
                rollout(
                    canary(steps()),
                    json!({"observedGeneration": "4", "phase": "Healthy"}),
                ),
                PausePolicy::Fail,
                (
                    "Progressing",
                    "waiting for rollout spec update to be observed",
                ),
                Verdict::waiting("rollout/web: waiting for rollout spec update to be observed"),
            ),
            (
                "promoted by a person, controller not caught up",
                rollout(
                    canary(steps()),
                    json!({"observedGeneration": "5", "controllerPause": true,
                    "pauseConditions": [], "phase": "Paused", "message": "CanaryPauseStep"}),
                ),
                PausePolicy::Fail,
                ("Progressing", "waiting for rollout to unpause"),
                Verdict::waiting("rollout/web: waiting for rollout to unpause"),
            ),
            (
                "canary paused at an indefinite step: fail",
                rollout(canary(steps()), paused_at(1)),
                PausePolicy::Fail,
                ("Paused", "CanaryPauseStep"),
                Verdict::failed("rollout/web paused at step 2/5: manual promotion needed"),
            ),
            (
                "canary paused at an indefinite step: deployed to canary",
                rollout(canary(steps()), paused_at(1)),
                PausePolicy::Succeed,
                ("Paused", "CanaryPauseStep"),
                ready.clone(),
            ),
            (
                "canary paused at an indefinite step: wait",
                rollout(canary(steps()), paused_at(1)),
                PausePolicy::Wait,
                ("Paused", "CanaryPauseStep"),
                Verdict::waiting("rollout/web paused at step 2/5: manual promotion needed"),
            ),
            (
                "canary paused for a duration: always waits",
                rollout(canary(steps()), paused_at(3)),
                PausePolicy::Fail,
                ("Paused", "CanaryPauseStep"),
                Verdict::waiting("rollout/web paused at step 4/5 for 30s"),
            ),
            (
                "steps running",
                rollout(
                    canary(steps()),
                    json!({"observedGeneration": "5",
                    "phase": "Progressing", "message": "more replicas need to be updated"}),
                ),
                PausePolicy::Fail,
                ("Progressing", "more replicas need to be updated"),
                Verdict::waiting("rollout/web: more replicas need to be updated"),
            ),
            (
                "aborted",
                rollout(
                    canary(steps()),
                    json!({"observedGeneration": "5", "phase": "Degraded",
                    "message": "RolloutAborted: Rollout aborted update to revision 2", "abort": true}),
                ),
                PausePolicy::Wait,
                (
                    "Degraded",
                    "RolloutAborted: Rollout aborted update to revision 2",
                ),
                Verdict::failed(
                    "rollout/web is Degraded: RolloutAborted: Rollout aborted update to revision 2",
                ),
            ),
            (
                "blue-green waiting for promotion",
                rollout(
                    json!({"replicas": 3, "strategy": {"blueGreen": {"activeService": "web",
                    "previewService": "web-preview", "autoPromotionEnabled": false}}}),
                    json!({"observedGeneration": "5", "phase": "Paused", "message": "BlueGreenPause",
                        "controllerPause": true, "pauseConditions": [{"reason": "BlueGreenPause"}],
                        "currentPodHash": "new", "stableRS": "old", "updatedReplicas": 3,
                        "blueGreen": {"activeSelector": "old", "previewSelector": "new"}}),
                ),
                PausePolicy::Fail,
                ("Paused", "BlueGreenPause"),
                Verdict::failed(
                    "rollout/web the preview runs the new version; manual promotion needed",
                ),
            ),
            (
                "blue-green promoted",
                rollout(
                    json!({"replicas": 3, "strategy": {"blueGreen": {
                    "activeService": "web"}}}),
                    json!({"observedGeneration": "5", "phase": "Healthy", "currentPodHash": "new",
                        "stableRS": "new", "blueGreen": {"activeSelector": "new"}}),
                ),
                PausePolicy::Fail,
                ("Healthy", ""),
                ready.clone(),
            ),
            (
                "healthy but stable is still the old ReplicaSet",
                rollout(
                    canary(steps()),
                    json!({"observedGeneration": "5", "phase": "Healthy",
                    "currentPodHash": "new", "stableRS": "old"}),
                ),
                PausePolicy::Fail,
                ("Healthy", ""),
                Verdict::waiting(
                    "rollout/web: stable ReplicaSet \"old\" is not yet the new one \"new\"",
                ),
            ),
            // A controller older than v1.0 stores no phase: it is computed as it would.
            (
                "old controller, aborted (condition)",
                rollout(
                    canary(steps()),
                    json!({
                    "observedGeneration": "5", "conditions": [{"type": "Progressing", "status": "False",
                    "reason": "RolloutAborted", "message": "Rollout aborted update to revision 2"}]}),
                ),
                PausePolicy::Wait,
                (
                    "Degraded",
                    "RolloutAborted: Rollout aborted update to revision 2",
                ),
                Verdict::failed(
                    "rollout/web is Degraded: RolloutAborted: Rollout aborted update to revision 2",
                ),
            ),
            (
                "old controller, steps left",
                rollout(
                    canary(steps()),
                    json!({"observedGeneration": "5",
                    "currentPodHash": "new", "stableRS": "old", "replicas": 6, "updatedReplicas": 6,
                    "availableReplicas": 6}),
                ),
                PausePolicy::Fail,
                ("Progressing", "waiting for all steps to complete"),
                Verdict::waiting("rollout/web: waiting for all steps to complete"),
            ),
            (
                "old controller, blue-green cutover pending",
                rollout(
                    json!({"replicas": 3, "strategy":
                    {"blueGreen": {"activeService": "web"}}}),
                    json!({"observedGeneration": "5",
                    "currentPodHash": "new", "updatedReplicas": 3, "availableReplicas": 3,
                    "blueGreen": {"activeSelector": "old"}}),
                ),
                PausePolicy::Fail,
                ("Progressing", "active service cutover pending"),
                Verdict::waiting("rollout/web: active service cutover pending"),
            ),
        ];
        for (name, ro, policy, (want_phase, want_message), want) in cases {
            let (p, m) = phase(&ro);
            assert_eq!(
                (p.as_str(), m.as_str()),
                (want_phase, want_message),
                "{name}: phase"
            );
            assert_eq!(
                verdict(&ro, "web", &[IMAGE.to_owned()], policy),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn the_template_must_carry_our_image_first() {
        let ro = json!({"metadata": {"generation": 5}, "spec": {"template": {"spec": {"containers":
            [{"image": "registry.example.com/web:1.0.0"}]}}}, "status": {"observedGeneration": "5",
            "phase": "Healthy", "currentPodHash": "a", "stableRS": "a"}});
        assert_eq!(
            verdict(&ro, "web", &[IMAGE.to_owned()], PausePolicy::Fail),
            Verdict::waiting(
                "rollout/web: template still runs registry.example.com/web:1.0.0 (want registry.example.com/web:2.0.0)"
            )
        );
    }
}
