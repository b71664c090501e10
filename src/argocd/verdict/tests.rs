//! Table tests of [`app_verdict`]: one row per status combination of docs/research/argocd-rollout.md A3.

use super::*;
use crate::argocd::models::*;
use serde_json::json;

const S: &str = "4d5e6f0000000000000000000000000000000001";
const OLD: &str = "1a2b3c0000000000000000000000000000000000";
const NEWER: &str = "9f8e7d0000000000000000000000000000000002";
const OTHER: &str = "77aa770000000000000000000000000000000003";

/// A healthy app fully synced to S by an auto-sync operation that finished at t=10, reconciled at t=20.
fn base() -> serde_json::Value {
    json!({
        "metadata": {"name": "web", "namespace": "argocd", "resourceVersion": "5"},
        "spec": {"source": {"repoURL": "http://git/ops/deploy.git", "targetRevision": "main"},
                 "syncPolicy": {"automated": {"prune": true}}},
        "status": {
            "sync": {"status": "Synced", "revision": S},
            "health": {"status": "Healthy"},
            "reconciledAt": "2026-01-01T00:00:20Z",
            "operationState": {
                "phase": "Succeeded", "message": "successfully synced (all tasks run)",
                "operation": {"sync": {"revision": S}},
                "startedAt": "2026-01-01T00:00:05Z", "finishedAt": "2026-01-01T00:00:10Z",
                "syncResult": {"revision": S, "resources": [
                    {"group": "apps", "kind": "Deployment", "namespace": "default", "name": "web", "status": "Synced"}
                ]}
            },
            "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "default",
                           "name": "web", "status": "Synced", "health": {"status": "Healthy"}}]
        }
    })
}

fn snap(edit: impl FnOnce(&mut serde_json::Value)) -> AppSnapshot {
    let mut v = base();
    edit(&mut v);
    AppSnapshot {
        app: serde_json::from_value(v).expect("fixture is an Application"),
        tree: None,
    }
}

fn target() -> Target {
    let mut t = Target::new(S);
    t.known.insert(OLD.into(), Relation::Older);
    t.known.insert(
        NEWER.into(),
        Relation::Descendant {
            overwritten_by: None,
        },
    );
    t.known.insert(OTHER.into(), Relation::Unrelated);
    t.images = vec!["registry.local/web:1.4.2".into()];
    t.ancestry = true;
    t
}

#[derive(Debug)]
enum Want {
    Ready,
    Waiting(&'static str),
    Failed(&'static str),
}

fn check(name: &str, got: &Verdict, want: &Want) {
    let ok = match (got, want) {
        (Verdict::Ready, Want::Ready) => true,
        (Verdict::Waiting { why }, Want::Waiting(p)) => why.contains(p),
        (Verdict::Failed { why }, Want::Failed(p)) => why.contains(p),
        _ => false,
    };
    assert!(ok, "{name}: got {got:?}, want {want:?}");
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

/// Sets the value at a JSON pointer, creating the last key when missing.
fn set(path: &'static str, value: serde_json::Value) -> Edit {
    Box::new(move |v| {
        let (parent, key) = path.rsplit_once('/').expect("pointer");
        let parent = v
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no parent of {path}"));
        match parent {
            serde_json::Value::Object(map) => {
                map.insert(key.to_owned(), value);
            }
            serde_json::Value::Array(items) => items[key.parse::<usize>().expect("index")] = value,
            _ => panic!("{path}: parent is a scalar"),
        }
    })
}

fn edits(list: Vec<Edit>) -> Edit {
    Box::new(move |v| list.into_iter().for_each(|e| e(v)))
}

fn remove(parent: &'static str, key: &'static str) -> Edit {
    Box::new(move |v| {
        v.pointer_mut(parent)
            .and_then(|p| p.as_object_mut())
            .expect("parent object")
            .remove(key);
    })
}

#[test]
fn app_verdict_table() {
    let t0 = Instant::now();
    let long_ago = Some(t0);
    let later = t0 + Duration::from_secs(31);
    let grace = Duration::from_secs(30);
    let fresh = VerdictState::default();
    let both_timers = VerdictState {
        unhealthy_since: long_ago,
        error_condition_since: long_ago,
    };
    let rows: Vec<(&str, Edit, &VerdictState, Want)> = vec![
        ("healthy at our commit", Box::new(|_| {}), &fresh, Want::Ready),
        ("still at the old commit (Synced, Healthy: the A5 race)",
            edits(vec![set("/status/sync/revision", json!(OLD)),
                       set("/status/operationState/syncResult/revision", json!(OLD)),
                       set("/status/operationState/operation/sync/revision", json!(OLD))]),
            &fresh, Want::Waiting("still at 1a2b3c0")),
        ("unknown revision: ask for ancestry",
            set("/status/sync/revision", json!("abcdef0000000000000000000000000000000000")),
            &fresh, Want::Waiting("checking whether it contains 4d5e6f0")),
        ("no revision yet", remove("/status/sync", "revision"), &fresh, Want::Waiting("no revision yet")),
        ("OutOfSync at our commit", set("/status/sync/status", json!("OutOfSync")), &fresh,
            Want::Waiting("sync OutOfSync at 4d5e6f0")),
        ("OutOfSync at our commit while its sync waits for a hook",
            edits(vec![set("/status/sync/status", json!("OutOfSync")),
                       set("/status/operationState/phase", json!("Running")),
                       set("/status/operationState/message", json!("waiting for completion of hook batch/Job/web-presync")),
                       remove("/status/operationState", "finishedAt")]),
            &fresh,
            Want::Waiting("sync OutOfSync at 4d5e6f0; operation Running: waiting for completion of hook batch/Job/web-presync")),
        ("sync Unknown at our commit", set("/status/sync/status", json!("Unknown")), &fresh,
            Want::Waiting("sync Unknown")),
        ("requested operation pending",
            set("/operation", json!({"sync": {"revision": S}})), &fresh, Want::Waiting("operation is pending")),
        ("operation running",
            edits(vec![set("/status/operationState/phase", json!("Running")),
                       set("/status/operationState/message", json!("waiting for healthy state of apps/Deployment/web")),
                       remove("/status/operationState", "finishedAt")]),
            &fresh, Want::Waiting("operation Running: waiting for healthy state")),
        ("retry pending: Running with finishedAt set",
            edits(vec![set("/status/operationState/phase", json!("Running")),
                       set("/status/operationState/message", json!("Retrying attempt #1 at 00:00:30"))]),
            &fresh, Want::Waiting("Retrying attempt #1")),
        ("terminating", set("/status/operationState/phase", json!("Terminating")), &fresh,
            Want::Waiting("operation Terminating")),
        ("operation for S failed: message and failed resources",
            edits(vec![set("/status/operationState/phase", json!("Failed")),
                       set("/status/operationState/message", json!("one or more objects failed to apply")),
                       set("/status/operationState/syncResult/resources/0/status", json!("SyncFailed")),
                       set("/status/operationState/syncResult/resources/0/message",
                           json!("Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value"))]),
            &fresh, Want::Failed("sync of 4d5e6f0 failed: one or more objects failed to apply; failed resources: Deployment default/web: Deployment.apps \"web\" is invalid")),
        ("operation for S errored (hook failed)",
            edits(vec![set("/status/operationState/phase", json!("Error")),
                       set("/status/operationState/message", json!("hook failed")),
                       set("/status/operationState/syncResult/resources/0/hookPhase", json!("Failed")),
                       set("/status/operationState/syncResult/resources/0/message", json!("job failed"))]),
            &fresh, Want::Failed("sync of 4d5e6f0 error: hook failed; failed resources: Deployment default/web: job failed")),
        ("failed operation for an older commit is not ours to judge",
            edits(vec![set("/status/sync/revision", json!(OLD)),
                       set("/status/operationState/phase", json!("Failed")),
                       set("/status/operationState/syncResult/revision", json!(OLD))]),
            &fresh, Want::Waiting("still at 1a2b3c0")),
        ("operation failed for S, only operation.sync.revision known",
            edits(vec![set("/status/operationState/phase", json!("Failed")),
                       remove("/status/operationState", "syncResult")]),
            &fresh, Want::Failed("sync of 4d5e6f0 failed")),
        ("stale health: reconciledAt before finishedAt",
            set("/status/reconciledAt", json!("2026-01-01T00:00:09Z")), &fresh,
            Want::Waiting("reconcile after the sync")),
        ("stale health: never reconciled", remove("/status", "reconciledAt"), &fresh,
            Want::Waiting("reconcile after the sync")),
        ("reconciledAt equal to finishedAt is enough",
            set("/status/reconciledAt", json!("2026-01-01T00:00:10Z")), &fresh, Want::Ready),
        ("no operation state at all (synced without an operation)",
            remove("/status", "operationState"), &fresh, Want::Ready),
        ("Progressing", edits(vec![set("/status/health/status", json!("Progressing")),
                                  set("/status/health/message", json!("Waiting for rollout to finish"))]),
            &fresh, Want::Waiting("health Progressing Waiting for rollout")),
        ("Suspended is not ready", set("/status/health/status", json!("Suspended")), &fresh,
            Want::Waiting("health Suspended")),
        ("health Unknown", set("/status/health/status", json!("Unknown")), &fresh, Want::Waiting("health Unknown")),
        ("Degraded within grace names the resource",
            edits(vec![set("/status/health/status", json!("Degraded")),
                       set("/status/resources/0/health", json!({"status": "Degraded",
                           "message": "Deployment \"web\" exceeded its progress deadline"}))]),
            &fresh, Want::Waiting("health Degraded: Deployment default/web: Deployment \"web\" exceeded its progress deadline")),
        ("Degraded beyond grace fails",
            edits(vec![set("/status/health/status", json!("Degraded")),
                       set("/status/resources/0/health", json!({"status": "Degraded",
                           "message": "Deployment \"web\" exceeded its progress deadline"}))]),
            &both_timers, Want::Failed("health Degraded: Deployment default/web: Deployment \"web\" exceeded its progress deadline (for more than 30s)")),
        ("Missing beyond grace fails",
            edits(vec![set("/status/health/status", json!("Missing")),
                       set("/status/resources/0/health", json!({"status": "Missing"}))]),
            &both_timers, Want::Failed("health Missing: Deployment default/web")),
        ("Degraded at the old commit is not ours",
            edits(vec![set("/status/sync/revision", json!(OLD)), set("/status/health/status", json!("Degraded"))]),
            &both_timers, Want::Waiting("still at 1a2b3c0")),
        ("ComparisonError within grace waits",
            edits(vec![set("/status/sync/revision", json!(OLD)),
                       set("/status/conditions", json!([{"type": "ComparisonError", "message": "rpc error: repo unreachable"}]))]),
            &fresh, Want::Waiting("still at")),
        ("ComparisonError beyond grace fails",
            edits(vec![set("/status/sync/revision", json!(OLD)),
                       set("/status/conditions", json!([{"type": "ComparisonError", "message": "rpc error: repo unreachable"}]))]),
            &both_timers, Want::Failed("ComparisonError: rpc error: repo unreachable")),
        ("SyncError at our commit beyond grace fails",
            set("/status/conditions", json!([{"type": "SyncError", "message": "quota exceeded"}])),
            &both_timers, Want::Failed("SyncError: quota exceeded")),
        ("warning conditions are ignored",
            set("/status/conditions", json!([{"type": "OrphanedResourceWarning", "message": "1 orphan"}])),
            &both_timers, Want::Ready),
        ("a newer commit containing ours passes",
            edits(vec![set("/status/sync/revision", json!(NEWER)),
                       set("/status/operationState/syncResult/revision", json!(NEWER)),
                       set("/status/operationState/operation/sync/revision", json!(NEWER))]),
            &fresh, Want::Ready),
        ("moved to a commit without ours fails",
            set("/status/sync/revision", json!(OTHER)), &fresh,
            Want::Failed("moved to commit 77aa770 which does not contain our commit 4d5e6f0")),
        ("failed operation for a descendant fails",
            edits(vec![set("/status/sync/revision", json!(NEWER)),
                       set("/status/operationState/phase", json!("Failed")),
                       set("/status/operationState/syncResult/revision", json!(NEWER))]),
            &fresh, Want::Failed("sync of 9f8e7d0 failed")),
        ("operation for an older commit succeeded, we are synced: ready (docs/research/argocd-rollout.md TL;DR 3)",
            edits(vec![set("/status/operationState/syncResult/revision", json!(OLD)),
                       set("/status/operationState/operation/sync/revision", json!(OLD))]),
            &fresh, Want::Ready),
        ("field-argocd #9: resources to prune are named instead of a silent OutOfSync",
            edits(vec![set("/status/sync/status", json!("OutOfSync")),
                       set("/status/resources", json!([
                           {"kind": "Deployment", "name": "web", "status": "Synced", "health": {"status": "Healthy"}},
                           {"kind": "ConfigMap", "name": "old-config", "status": "OutOfSync", "requiresPruning": true}]))]),
            &fresh, Want::Waiting("1 resource(s) require pruning (ConfigMap old-config)")),
        ("field-argocd #9: Suspended says a resume is needed",
            set("/status/health/status", json!("Suspended")),
            &fresh, Want::Waiting("health Suspended: a paused workload")),
        ("multi-source: our source's revision counts",
            edits(vec![set("/spec", json!({"sources": [
                            {"repoURL": "http://git/ops/charts.git"},
                            {"repoURL": "http://git/ops/deploy"}]})),
                       remove("/status/sync", "revision"),
                       set("/status/sync/revisions", json!([OTHER, S])),
                       set("/status/operationState/syncResult", json!({"revisions": [OTHER, S]}))]),
            &fresh, Want::Ready),
        ("multi-source: our source still old",
            edits(vec![set("/spec", json!({"sources": [
                            {"repoURL": "http://git/ops/charts.git"},
                            {"repoURL": "http://git/ops/deploy"}]})),
                       remove("/status/sync", "revision"),
                       set("/status/sync/revisions", json!([S, OLD]))]),
            &fresh, Want::Waiting("still at 1a2b3c0")),
    ];
    for (name, edit, state, want) in rows {
        let mut t = target();
        t.repo_url = Some("http://git/ops/deploy.git".into());
        let got = app_verdict(&snap(edit), &t, state, grace, later);
        check(name, &got, &want);
    }
}

#[test]
fn suspended_health_follows_the_pause_policy() {
    use crate::verdict::PausePolicy;
    let paused = |v: &mut serde_json::Value| {
        *v.pointer_mut("/status/health/status").unwrap() = json!("Suspended");
        v["status"]["health"]["message"] = json!("CanaryPauseStep");
    };
    let now = Instant::now();
    // (policy, verdict): the rollout phase judges when it runs (the CLI passes Succeed then).
    for (policy, want) in [
        (
            PausePolicy::Wait,
            Want::Waiting("health Suspended (CanaryPauseStep): a paused workload"),
        ),
        (
            PausePolicy::Fail,
            Want::Failed("waits for a manual resume (rollout_pause: fail)"),
        ),
        (PausePolicy::Succeed, Want::Ready),
    ] {
        let mut t = target();
        t.on_suspended = policy;
        let got = app_verdict(
            &snap(paused),
            &t,
            &VerdictState::default(),
            Duration::from_secs(30),
            now,
        );
        check(&format!("{policy:?}"), &got, &want);
    }
}

#[test]
fn overwritten_value_names_the_commit() {
    let mut t = target();
    t.known.insert(
        NEWER.into(),
        Relation::Descendant {
            overwritten_by: Some(NEWER.into()),
        },
    );
    let s = snap(|v| *v.pointer_mut("/status/sync/revision").unwrap() = json!(NEWER));
    let got = app_verdict(
        &s,
        &t,
        &VerdictState::default(),
        Duration::from_secs(30),
        Instant::now(),
    );
    check(
        "overwritten",
        &got,
        &Want::Failed("our value was overwritten by commit 9f8e7d0"),
    );
}

#[test]
fn degraded_pod_in_tree_fails_after_grace_while_app_progressing() {
    let t = target();
    let mut s = snap(|v| *v.pointer_mut("/status/health/status").unwrap() = json!("Progressing"));
    s.tree = Some(serde_json::from_value(json!({"nodes": [
        {"kind": "Pod", "namespace": "default", "name": "web-abc", "images": ["registry.local/web:1.4.2"],
         "health": {"status": "Degraded", "message": "back-off 10s restarting failed container=web"}},
        {"kind": "Pod", "namespace": "default", "name": "old-pod", "images": ["registry.local/web:1.4.1"],
         "health": {"status": "Degraded", "message": "not ours"}}
    ]})).unwrap());
    let grace = Duration::from_secs(30);
    let t0 = Instant::now();
    let mut state = VerdictState::default();
    state.observe(&s, &t, t0);
    check(
        "pod within grace",
        &app_verdict(&s, &t, &state, grace, t0 + Duration::from_secs(29)),
        &Want::Waiting("pod default/web-abc Degraded: back-off 10s"),
    );
    state.observe(&s, &t, t0 + Duration::from_secs(31));
    check("pod beyond grace", &app_verdict(&s, &t, &state, grace, t0 + Duration::from_secs(31)),
        &Want::Failed("pod default/web-abc Degraded: back-off 10s restarting failed container=web (for more than 30s)"));
}

#[test]
fn observe_starts_and_clears_timers() {
    let t = target();
    let t0 = Instant::now();
    let mut state = VerdictState::default();
    let degraded = snap(|v| *v.pointer_mut("/status/health/status").unwrap() = json!("Degraded"));
    state.observe(&degraded, &t, t0);
    state.observe(&degraded, &t, t0 + Duration::from_secs(5));
    assert_eq!(state.unhealthy_since, Some(t0), "first sighting is kept");
    state.observe(&snap(|_| {}), &t, t0 + Duration::from_secs(6));
    assert_eq!(state.unhealthy_since, None, "healthy clears the timer");
}

#[test]
fn auto_sync_detection() {
    let on: Application = serde_json::from_value(base()).unwrap();
    assert!(on.spec.is_auto_sync());
    let mut v = base();
    v["spec"]["syncPolicy"]["automated"]["enabled"] = json!(false);
    let off: Application = serde_json::from_value(v).unwrap();
    assert!(!off.spec.is_auto_sync());
    let mut v = base();
    v["spec"].as_object_mut().unwrap().remove("syncPolicy");
    let none: Application = serde_json::from_value(v).unwrap();
    assert!(!none.spec.is_auto_sync());
}

#[test]
fn without_an_oracle_an_unknown_revision_is_just_not_ours() {
    let mut t = target();
    t.ancestry = false;
    let s = snap(|v| {
        *v.pointer_mut("/status/sync/revision").unwrap() =
            json!("abcdef0000000000000000000000000000000000")
    });
    let got = app_verdict(
        &s,
        &t,
        &VerdictState::default(),
        Duration::from_secs(30),
        Instant::now(),
    );
    check(
        "no oracle",
        &got,
        &Want::Waiting("Argo CD is still at abcdef0, waiting for 4d5e6f0"),
    );
}

/// docs/research/field-argocd.md ranked #3: a fix-forward deploy onto a Degraded app whose sync runs a 40 s PreSync
/// hook does not fail with a 10 s grace while the hook runs; the grace counts from the end of the sync.
#[test]
fn degraded_grace_starts_when_the_sync_of_our_commit_finished() {
    let t = target();
    let grace = Duration::from_secs(10);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let degraded = |phase: &'static str, sync: &'static str| {
        snap(move |v| {
            *v.pointer_mut("/status/health/status").unwrap() = json!("Degraded");
            *v.pointer_mut("/status/sync/status").unwrap() = json!(sync);
            *v.pointer_mut("/status/operationState/phase").unwrap() = json!(phase);
            if phase == "Running" {
                *v.pointer_mut("/status/operationState/message").unwrap() =
                    json!("waiting for completion of hook batch/Job/migrate");
                v["status"]["operationState"]
                    .as_object_mut()
                    .unwrap()
                    .remove("finishedAt");
            }
        })
    };
    let mut state = VerdictState::default();
    // Refreshed: OutOfSync at S, still the old version's Degraded health.
    let s = degraded("Succeeded", "OutOfSync");
    state.observe(&s, &t, at(0));
    // The sync of S runs its PreSync hook for 40 s.
    let hook = degraded("Running", "OutOfSync");
    for second in [1, 15, 30, 40] {
        state.observe(&hook, &t, at(second));
        let v = app_verdict(&hook, &t, &state, grace, at(second));
        assert!(!matches!(v, Verdict::Failed { .. }), "t={second}: {v:?}");
    }
    assert_eq!(state.unhealthy_since, None);
    // Synced at S, but Argo CD has not reconciled since (reconciledAt before finishedAt): the health
    // is still the old version's, for longer than the grace on a busy controller.
    let mut stale = degraded("Succeeded", "Synced");
    stale.app.status.reconciled_at = Some("2026-01-01T00:00:09Z".parse().unwrap());
    for second in [40, 45, 60] {
        state.observe(&stale, &t, at(second));
        check(
            &format!("stale health t={second}"),
            &app_verdict(&stale, &t, &state, grace, at(second)),
            &Want::Waiting("waiting for Argo CD to reconcile after the sync (its health Degraded"),
        );
    }
    assert_eq!(state.unhealthy_since, None);
    // Never reconciled at all: the same.
    let mut never = degraded("Succeeded", "Synced");
    never.app.status.reconciled_at = None;
    let mut never_state = VerdictState::default();
    never_state.observe(&never, &t, at(40));
    assert_eq!(never_state.unhealthy_since, None);
    // A pod of our image crash-looping is live, not stale: its grace runs before the reconcile.
    let mut pod = stale.clone();
    pod.tree = Some(serde_json::from_value(json!({"nodes": [
        {"kind": "Pod", "namespace": "default", "name": "web-abc", "images": ["registry.local/web:1.4.2"],
         "health": {"status": "Degraded", "message": "back-off 10s restarting failed container=web"}}
    ]})).unwrap());
    let mut pod_state = VerdictState::default();
    pod_state.observe(&pod, &t, at(40));
    assert_eq!(pod_state.unhealthy_since, Some(at(40)));
    check(
        "live pod beyond grace under stale health",
        &app_verdict(&pod, &t, &pod_state, grace, at(51)),
        &Want::Failed("pod default/web-abc Degraded: back-off 10s"),
    );
    // Synced at S, reconciled, still Degraded: the grace starts now.
    let synced = degraded("Succeeded", "Synced");
    state.observe(&synced, &t, at(61));
    assert_eq!(state.unhealthy_since, Some(at(61)));
    check(
        "within grace after the sync",
        &app_verdict(&synced, &t, &state, grace, at(70)),
        &Want::Waiting("health Degraded"),
    );
    state.observe(&synced, &t, at(72));
    check(
        "beyond grace after the sync",
        &app_verdict(&synced, &t, &state, grace, at(72)),
        &Want::Failed("health Degraded"),
    );
    // Healthy after the sync instead: ready.
    let mut state = VerdictState::default();
    state.observe(&hook, &t, at(40));
    let healthy = snap(|_| {});
    state.observe(&healthy, &t, at(45));
    check(
        "healthy",
        &app_verdict(&healthy, &t, &state, grace, at(45)),
        &Want::Ready,
    );
}

#[test]
fn repository_urls_normalize_to_host_and_path() {
    let same = [
        "https://gitea.example.com/Ops/GitOps.git",
        "http://gitea.example.com/ops/gitops",
        "https://ci:s3cret@gitea.example.com/ops/gitops/",
        "ssh://git@gitea.example.com/ops/gitops.git",
        "git@gitea.example.com:ops/gitops.git",
        "  https://GITEA.example.com/ops/gitops.git/  ",
    ];
    for u in same {
        assert_eq!(normalize_repo_url(u), "gitea.example.com/ops/gitops", "{u}");
    }
    for other in [
        "https://gitea.example.com/ops/gitops-prod.git",
        "https://gitea.example.com:3000/ops/gitops.git",
        "https://other.example.com/ops/gitops.git",
    ] {
        assert_ne!(
            normalize_repo_url(other),
            "gitea.example.com/ops/gitops",
            "{other}"
        );
    }
}

/// docs/research/field-argocd.md ranked #2: in a multi-source app (a Helm chart from a registry, our git source, a
/// `ref` source), with S not literally in `revisions` (a later commit of ours landed), the revision of
/// *our* source is judged, found by the repository URL, never the chart version at index 0.
#[test]
fn multi_source_picks_our_source_by_repository_url() {
    let app = |revisions: serde_json::Value| {
        snap(move |v| {
            v["spec"] = json!({"sources": [
                {"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"},
                {"repoURL": "https://ci@GIT/ops/deploy/", "path": "apps/web"},
                {"repoURL": "http://git/ops/values.git", "ref": "values"}]});
            v["status"]["sync"] = json!({"status": "Synced", "revisions": revisions});
            v["status"]["operationState"]["syncResult"] = json!({"revisions": revisions});
            v["status"]["operationState"]["operation"]["sync"] = json!({"revisions": revisions});
        })
    };
    let mut t = target();
    t.repo_url = Some("http://git/ops/deploy.git".into());
    let state = VerdictState::default();
    let now = Instant::now();
    let descendant = app(json!(["1.2.3", NEWER, OTHER]));
    assert_eq!(synced_revision(&descendant.app, &t), Some(NEWER));
    check(
        "descendant",
        &app_verdict(&descendant, &t, &state, Duration::from_secs(30), now),
        &Want::Ready,
    );
    let old = app(json!(["1.2.3", OLD, S]));
    check(
        "ours still old although the ref source is at S",
        &app_verdict(&old, &t, &state, Duration::from_secs(30), now),
        &Want::Waiting("still at 1a2b3c0"),
    );
    // Without the URL the chart version would have been taken for our revision.
    t.repo_url = None;
    assert_eq!(synced_revision(&descendant.app, &t), Some("1.2.3"));
}

#[test]
fn source_warnings_name_a_hydrator_and_a_foreign_repository() {
    let mut t = target();
    t.repo_url = Some("https://ci@git/ops/deploy.git".into());
    assert!(
        source_warnings(&snap(|_| {}).app, &t).is_empty(),
        "base: our repository"
    );
    let foreign = snap(|v| v["spec"]["source"]["repoURL"] = json!("http://git/ops/other.git"));
    let w = source_warnings(&foreign.app, &t);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("none of the app's sources is https://ci@git/ops/deploy.git (they are: http://git/ops/other.git)"), "{w:?}");
    let hydrated = snap(|v| {
        v["spec"]["sourceHydrator"] = json!({"drySource": {"repoURL": "http://git/ops/deploy.git"}})
    });
    let w = source_warnings(&hydrated.app, &t);
    assert!(w.iter().any(|m| m.contains("source hydrator")), "{w:?}");
    // Without a repository (`wait` with no forge), nothing is claimed about sources.
    t.repo_url = None;
    assert!(source_warnings(&foreign.app, &t).is_empty());
}

/// docs/research/field-argocd.md ranked #9 (sync windows): which windows stop an auto-sync, by `CanSync(false)`.
#[test]
fn automatic_sync_block_table() {
    use crate::argocd::models::{SyncWindow, SyncWindows};
    let w = |kind: &str, manual: bool| SyncWindow {
        kind: kind.into(),
        schedule: "0 22 * * *".into(),
        duration: "8h".into(),
        manual_sync: Some(manual),
    };
    for (name, active, assigned, blocked) in [
        ("no windows", vec![], vec![], None),
        (
            "active deny",
            vec![w("deny", false)],
            vec![w("deny", false)],
            Some("the sync deny window \"0 22 * * *\" (8h) is active"),
        ),
        (
            "active deny allowing manual syncs still stops auto-sync",
            vec![w("deny", true)],
            vec![w("deny", true)],
            Some("the sync deny window \"0 22 * * *\" (8h) is active"),
        ),
        ("inactive deny", vec![], vec![w("deny", false)], None),
        ("active allow", vec![w("allow", false)], vec![w("allow", false)], None),
        (
            "inactive allow",
            vec![],
            vec![w("allow", false)],
            Some("syncs are allowed only inside the sync allow window \"0 22 * * *\" (8h), which is not active"),
        ),
    ] {
        let windows = SyncWindows {
            active_windows: active,
            assigned_windows: assigned,
            can_sync: None,
        };
        assert_eq!(automatic_sync_block(&windows).as_deref(), blocked, "{name}");
    }
}

/// `window_block` lists every window that blocks (the refused-sync message names them all).
#[test]
fn window_block_lists_every_blocking_window() {
    use crate::argocd::models::{SyncWindow, SyncWindows};
    let w = |kind: &str, schedule: &str| SyncWindow {
        kind: kind.into(),
        schedule: schedule.into(),
        duration: "1h".into(),
        manual_sync: None,
    };
    let two_denies = SyncWindows {
        active_windows: vec![
            w("deny", "0 1 * * *"),
            w("deny", "0 2 * * *"),
            w("allow", "* * * * *"),
        ],
        assigned_windows: Vec::new(),
        can_sync: None,
    };
    match window_block(&two_denies) {
        Some(WindowBlock::Deny(d)) => assert_eq!(d.len(), 2),
        other => panic!("{other:?}"),
    }
    let allows_only = SyncWindows {
        active_windows: Vec::new(),
        assigned_windows: vec![
            w("allow", "0 9 * * 1"),
            w("allow", "0 9 * * 3"),
            w("deny", "0 0 * * *"),
        ],
        can_sync: None,
    };
    match window_block(&allows_only) {
        Some(WindowBlock::OnlyInside(a)) => assert_eq!(a.len(), 2),
        other => panic!("{other:?}"),
    }
}
