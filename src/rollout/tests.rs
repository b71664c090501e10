//! Table tests of the rollout verdict: every branch of docs/research/argocd-rollout.md B1, plus B4 and stuck pods.

use super::*;
use serde_json::json;

const IMG: &str = "registry.local/web:1.4.2";

fn deploy(status: serde_json::Value, extra: impl FnOnce(&mut serde_json::Value)) -> Workload {
    let mut v = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": 2},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [{"name": "web", "image": IMG}]}}},
        "status": status
    });
    extra(&mut v);
    Workload::from_json(v).expect("deployment fixture")
}

fn sts(spec_extra: serde_json::Value, status: serde_json::Value) -> Workload {
    let mut spec = json!({"replicas": 3, "selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
                          "template": {"spec": {"containers": [{"name": "db", "image": IMG}]}}});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    Workload::from_json(
        json!({"kind": "StatefulSet", "metadata": {"name": "db", "generation": 2},
                               "spec": spec, "status": status}),
    )
    .expect("sts fixture")
}

fn ds(strategy: &str, status: serde_json::Value) -> Workload {
    Workload::from_json(json!({"kind": "DaemonSet", "metadata": {"name": "agent", "generation": 2},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "updateStrategy": {"type": strategy},
                 "template": {"spec": {"containers": [{"name": "a", "image": IMG}]}}},
        "status": status})).expect("ds fixture")
}

fn w(why: &str) -> Verdict {
    Verdict::waiting(why)
}

#[test]
fn rollout_verdict_table() {
    let images = vec![IMG.to_owned()];
    let rows: Vec<(&str, Workload, Verdict)> = vec![
        ("deployment: spec not observed",
            deploy(json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}), |_| {}),
            w("Waiting for deployment spec update to be observed")),
        ("deployment: progress deadline exceeded",
            deploy(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                "message": "ReplicaSet \"web-5d\" has timed out progressing."}]}), |_| {}),
            Verdict::failed("deployment \"web\" exceeded its progress deadline")),
        ("deployment: updated < replicas",
            deploy(json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}), |_| {}),
            w("Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated")),
        ("deployment: old replicas pending termination",
            deploy(json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}), |_| {}),
            w("Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination")),
        ("deployment: available < updated",
            deploy(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}), |_| {}),
            w("Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available")),
        ("deployment: rolled out",
            deploy(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}), |_| {}),
            Verdict::Ready),
        ("deployment: observed generation ahead counts as observed",
            deploy(json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}), |_| {}),
            Verdict::Ready),
        ("deployment: missing status counts as zero",
            deploy(json!({"observedGeneration": 2}), |_| {}),
            w("Waiting for deployment \"web\" rollout to finish: 0 out of 3 new replicas have been updated")),
        ("deployment: replicas unset skips the updated check",
            deploy(json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}),
                |v| { v["spec"].as_object_mut().unwrap().remove("replicas"); }),
            w("Waiting for deployment \"web\" rollout to finish: 0 of 1 updated replicas are available")),
        ("B4: template still has the old image",
            deploy(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                |v| v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.local/web:1.4.1")),
            w("deployment \"web\": template still runs registry.local/web:1.4.1 (want registry.local/web:1.4.2)")),
        ("B4: init container carries the image",
            deploy(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                |v| {
                    v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1");
                    v["spec"]["template"]["spec"]["initContainers"] = json!([{"name": "i", "image": IMG}]);
                }),
            Verdict::Ready),
        ("B4: normalised name matches",
            deploy(json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                |v| v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("docker.io/registry.local/web:1.4.2")),
            Verdict::Ready),
        ("daemonset: OnDelete is refused and explained",
            ds("OnDelete", json!({"observedGeneration": 2, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2})),
            Verdict::failed(ON_DELETE)),
        ("daemonset: spec not observed",
            ds("RollingUpdate", json!({"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2})),
            w("Waiting for daemon set spec update to be observed")),
        ("daemonset: updated < desired",
            ds("RollingUpdate", json!({"observedGeneration": 2, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2})),
            w("Waiting for daemon set \"agent\" rollout to finish: 1 out of 2 new pods have been updated")),
        ("daemonset: available < desired",
            ds("RollingUpdate", json!({"observedGeneration": 2, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2})),
            w("Waiting for daemon set \"agent\" rollout to finish: 1 of 2 updated pods are available")),
        ("daemonset: rolled out",
            ds("RollingUpdate", json!({"observedGeneration": 2, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2, "currentNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2})),
            Verdict::Ready),
        ("statefulset: OnDelete is refused and explained",
            sts(json!({"updateStrategy": {"type": "OnDelete"}}), json!({"observedGeneration": 2, "replicas": 3})),
            Verdict::failed(ON_DELETE)),
        ("statefulset: observedGeneration 0",
            sts(json!({}), json!({"replicas": 3})),
            w("Waiting for statefulset spec update to be observed")),
        ("statefulset: generation ahead",
            sts(json!({}), json!({"observedGeneration": 1, "replicas": 3})),
            w("Waiting for statefulset spec update to be observed")),
        ("statefulset: pods not ready",
            sts(json!({}), json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 1})),
            w("Waiting for 2 pods to be ready")),
        ("statefulset: partitioned, not done",
            sts(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
                json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1})),
            w("Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated")),
        ("statefulset: partitioned, done (does not wait for currentRevision)",
            sts(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
                json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2,
                       "currentRevision": "db-1", "updateRevision": "db-2"})),
            Verdict::Ready),
        ("statefulset: explicit RollingUpdate without block, revisions differ",
            sts(json!({"updateStrategy": {"type": "RollingUpdate"}}),
                json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 2,
                       "currentRevision": "db-1", "updateRevision": "db-2"})),
            w("waiting for statefulset rolling update to complete 2 pods at revision db-2")),
        ("statefulset: rolling update complete",
            sts(json!({"updateStrategy": {"type": "RollingUpdate"}}),
                json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
                       "currentRevision": "db-2", "updateRevision": "db-2"})),
            Verdict::Ready),
    ];
    for (name, workload, want) in rows {
        assert_eq!(rollout_verdict(&workload, &images), want, "{name}");
    }
}

fn pod(name: &str, image: &str, reason: &str, message: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "web", "image": image}]},
        "status": {"containerStatuses": [{"name": "web", "image": image, "imageID": "", "ready": false,
            "restartCount": 3, "state": {"waiting": {"reason": reason, "message": message}}}]}
    })).unwrap()
}

#[test]
fn stuck_pods_of_our_image_only() {
    let pods = vec![
        pod(
            "web-new",
            IMG,
            "CrashLoopBackOff",
            "back-off 40s restarting failed container=web",
        ),
        pod(
            "web-old",
            "registry.local/web:1.4.1",
            "ImagePullBackOff",
            "not ours",
        ),
        pod("web-starting", IMG, "ContainerCreating", ""),
    ];
    let stuck = stuck_pods(&pods, &[IMG.to_owned()]);
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(
        stuck[0].to_string(),
        "pod default/web-new CrashLoopBackOff: back-off 40s restarting failed container=web"
    );
}

#[test]
fn stuck_pods_fail_after_grace() {
    let images = vec![IMG.to_owned()];
    let progressing = deploy(
        json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}),
        |_| {},
    );
    let snap = RolloutSnapshot {
        workloads: vec![(
            WorkloadRef::parse("deployment/web", None).unwrap(),
            Some(progressing),
        )],
        stuck: stuck_pods(
            &[pod(
                "web-new",
                IMG,
                "ImagePullBackOff",
                "Back-off pulling image",
            )],
            &images,
        ),
    };
    let t0 = Instant::now();
    let grace = Duration::from_secs(30);
    let mut state = RolloutState::default();
    state.observe(&snap, t0);
    assert_eq!(
        snapshot_verdict(
            &snap,
            &images,
            PausePolicy::Wait,
            &state,
            grace,
            t0 + Duration::from_secs(10)
        ),
        w("pod default/web-new ImagePullBackOff: Back-off pulling image")
    );
    assert_eq!(snapshot_verdict(&snap, &images, PausePolicy::Wait, &state, grace, t0 + Duration::from_secs(30)),
        Verdict::failed("pod default/web-new ImagePullBackOff: Back-off pulling image (stuck for more than 30s)"));
}

#[test]
fn missing_workload_waits_and_failure_names_target() {
    let images = vec![IMG.to_owned()];
    let r = WorkloadRef::parse("deploy/web", Some("prod")).unwrap();
    let snap = RolloutSnapshot {
        workloads: vec![(r.clone(), None)],
        stuck: vec![],
    };
    let now = Instant::now();
    assert_eq!(
        snapshot_verdict(
            &snap,
            &images,
            PausePolicy::Wait,
            &RolloutState::default(),
            Duration::ZERO,
            now
        ),
        w("deployment/web not found yet")
    );
    let failed = ds(
        "OnDelete",
        json!({"desiredNumberScheduled": 1, "currentNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1}),
    );
    let snap = RolloutSnapshot {
        workloads: vec![(r, Some(failed))],
        stuck: vec![],
    };
    assert!(
        matches!(snapshot_verdict(&snap, &images, PausePolicy::Wait, &RolloutState::default(), Duration::ZERO, now),
        Verdict::Failed { why } if why.starts_with("deployment/web: rollout status is only available"))
    );
}

#[test]
fn workload_ref_parsing() {
    assert_eq!(
        WorkloadRef::parse("sts/db", None).unwrap().kind,
        Kind::StatefulSet
    );
    assert_eq!(
        WorkloadRef::parse("DaemonSet/agent", None).unwrap().kind,
        Kind::DaemonSet
    );
    assert!(WorkloadRef::parse("web", None)
        .unwrap_err()
        .contains("not kind/name"));
    assert!(WorkloadRef::parse("job/x", None)
        .unwrap_err()
        .contains("not deployment, statefulset, daemonset or rollout"));
    let ro = WorkloadRef::parse("ro/web", Some("shop")).unwrap();
    assert_eq!(
        (ro.kind, ro.kind.group(), ro.kind.version()),
        (Kind::Rollout, "argoproj.io", "v1alpha1")
    );
    assert_eq!(ro.to_string(), "rollout/web");
    assert!(WorkloadRef::parse("deploy/", None).is_err());
}

#[test]
fn image_repository_strips_tag_and_digest() {
    assert_eq!(
        image_repository("registry.local:5000/web:1.2@sha256:abc"),
        "registry.local:5000/web"
    );
    assert_eq!(
        image_repository("registry.local:5000/web"),
        "registry.local:5000/web"
    );
    assert_eq!(image_repository("web@sha256:abc"), "web");
}

#[test]
fn a_live_rollout_decodes_and_is_judged_with_the_pause_policy() {
    let ro = |status: serde_json::Value| {
        Workload::from_json(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "r.example/web:2.0.0"}]}},
                "strategy": {"canary": {"steps": [{"setWeight": 25}, {"pause": {}}]}}},
            "status": status,
        }))
        .unwrap()
    };
    let images = vec!["r.example/web:2.0.0".to_owned()];
    let paused = ro(
        json!({"observedGeneration": "2", "phase": "Paused", "message": "CanaryPauseStep",
        "controllerPause": true, "currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep"}],
        "currentPodHash": "new", "stableRS": "old", "replicas": 4, "updatedReplicas": 1, "availableReplicas": 4}),
    );
    assert_eq!(paused.name(), "web");
    assert_eq!(paused.template_images(), images);
    assert_eq!(
        rollout_verdict_with(&paused, &images, PausePolicy::Fail),
        Verdict::failed("rollout/web paused at step 2/2: manual promotion needed")
    );
    assert_eq!(
        rollout_verdict_with(&paused, &images, PausePolicy::Succeed),
        Verdict::Ready
    );
    assert_eq!(
        rollout_verdict(&paused, &images),
        w("rollout/web paused at step 2/2: manual promotion needed")
    );
    assert_eq!(
        paused.progress(),
        "1/4 updated, 4 available, not promoted (CanaryPauseStep)"
    );
    // Another image in the template: waiting for ours, whatever the status says.
    assert_eq!(
        rollout_verdict(&paused, &["r.example/web:3.0.0".to_owned()]),
        w("rollout \"web\": template still runs r.example/web:2.0.0 (want r.example/web:3.0.0)")
    );
    let healthy = ro(
        json!({"observedGeneration": "2", "phase": "Healthy", "currentPodHash": "new",
        "stableRS": "new", "replicas": 4, "updatedReplicas": 4, "availableReplicas": 4}),
    );
    assert_eq!(
        rollout_verdict_with(&healthy, &images, PausePolicy::Fail),
        Verdict::Ready
    );
    assert_eq!(healthy.progress(), "4/4 updated, 4 available");
    // `spec.paused` stops a rollout wherever it is, pods ready or not: never "deployed to canary".
    let mut manual = paused.clone();
    if let Workload::Rollout(r) = &mut manual {
        r.object["spec"]["paused"] = json!(true);
        r.object["status"]["message"] = json!("manually paused");
    }
    assert!(
        matches!(rollout_verdict_with(&manual, &images, PausePolicy::Succeed),
        Verdict::Waiting { why } if why.contains("manually paused"))
    );
    // A canary left paused is not done while its pods cannot start.
    let snap = RolloutSnapshot {
        workloads: vec![(
            WorkloadRef::parse("rollout/web", None).unwrap(),
            Some(paused.clone()),
        )],
        stuck: vec![StuckPod {
            pod: "web/web-new-x".into(),
            reason: "CrashLoopBackOff".into(),
            message: "back-off".into(),
        }],
    };
    let now = Instant::now();
    assert_eq!(
        snapshot_verdict(
            &snap,
            &images,
            PausePolicy::Succeed,
            &RolloutState::default(),
            Duration::from_secs(30),
            now
        ),
        w("pod web/web-new-x CrashLoopBackOff: back-off")
    );
    // workloadRef: the template is elsewhere, so nothing proves the image; refused, not passed.
    let by_ref = Workload::from_json(json!({"kind": "Rollout", "metadata": {"name": "web", "generation": 1},
        "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
        "status": {"observedGeneration": "1", "phase": "Healthy", "currentPodHash": "a", "stableRS": "a"}})).unwrap();
    assert!(matches!(rollout_verdict(&by_ref, &images),
        Verdict::Waiting { why } if why.contains("workloadRef") && why.contains("Deployment \"web\"")));
    // Resolved from its Deployment: judged on that template, once the Rollout observed the
    // Deployment's generation (health.lua's isWorkloadGenerationObserved).
    let Workload::Rollout(mut resolved) = by_ref.clone() else {
        unreachable!()
    };
    assert_eq!(resolved.workload_ref(), Some("web"));
    resolved.object["metadata"]["annotations"] =
        json!({"rollout.argoproj.io/workload-generation": "3"});
    resolved.object["status"]["workloadObservedGeneration"] = json!("2");
    resolved.resolve_template(
        serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "r.example/web:2.0.0"}]}}))
        .unwrap(),
    );
    let resolved_w = Workload::Rollout(resolved.clone());
    assert_eq!(resolved_w.template_images(), images);
    assert_eq!(rollout_verdict(&resolved_w, &images),
        w("rollout/web: waiting for rollout spec update to be observed for the reference workload"));
    resolved.object["status"]["workloadObservedGeneration"] = json!("3");
    assert_eq!(
        rollout_verdict(&Workload::Rollout(resolved), &images),
        Verdict::Ready
    );
}
