//! The rollout simulator: what the deployment, replica-set, statefulset and daemonset controllers and
//! the kubelet would do, advanced in small steps on real (scaled) time.
//!
//! Deployments roll pod by pod with the RollingUpdate arithmetic of Kubernetes (maxSurge rounded up,
//! maxUnavailable rounded down, 25 % each by default): a new ReplicaSet per template, its pods become
//! ready after the pod start delay, old pods go once enough new ones are available. An image whose
//! tag starts with `broken-` never becomes ready (CrashLoopBackOff), so the Deployment reaches
//! `ProgressDeadlineExceeded` after `progressDeadlineSeconds` × the time scale. StatefulSets and
//! DaemonSets are status-only (no pods): they become ready after the pod start delay.

use std::collections::HashMap;
use std::time::Duration;

// Tokio's clock: under a paused runtime (tests) the simulator runs on the test's time.
use tokio::time::Instant;

use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::{int_at, k8s_time, key_of, str_at, Key, KubeTiming, Resource, Store};

/// The annotation the deployment controller keeps on Deployments and ReplicaSets.
pub(crate) const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// Characters Kubernetes uses for generated name suffixes (no vowels, no confusables).
const SAFE_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Simulator bookkeeping that is not part of any object.
#[derive(Debug, Default)]
pub(crate) struct SimState {
    pods: HashMap<String, PodSim>,
    workloads: HashMap<Key, WorkloadSim>,
    /// The Argo Rollouts controller's own bookkeeping per Rollout.
    pub(crate) rollouts: HashMap<Key, super::rollouts::RolloutSim>,
}

#[derive(Debug)]
struct PodSim {
    ready_at: Instant,
    broken: bool,
    last_restart: Option<Instant>,
}

#[derive(Debug)]
struct WorkloadSim {
    generation: i64,
    started: Instant,
    last_progress: Instant,
    broken: bool,
    /// Some generation finished rolling out (StatefulSets/DaemonSets keep serving while updating).
    ever_done: bool,
}

/// Is this image's tag one the simulator never starts (`broken-…`)?
pub fn is_broken_image(image: &str) -> bool {
    crate::render::split_image(image).1.starts_with("broken-")
}

/// A 10-character hash of a pod template, like the `pod-template-hash` label.
pub fn pod_template_hash(template: &Value) -> String {
    let digest = Sha1::digest(template.to_string().as_bytes());
    digest
        .iter()
        .take(10)
        .map(|b| SAFE_CHARS[usize::from(*b) % SAFE_CHARS.len()] as char)
        .collect()
}

fn random_suffix() -> String {
    (0..5)
        .map(|_| SAFE_CHARS[rand::random_range(0..SAFE_CHARS.len())] as char)
        .collect()
}

pub(crate) fn template_is_broken(template: &Value) -> bool {
    ["containers", "initContainers"].iter().any(|list| {
        template["spec"][list].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| is_broken_image(c["image"].as_str().unwrap_or("")))
        })
    })
}

/// Fills in the spec defaults the API server would (so re-applying the same manifest is a no-op).
pub(crate) fn default_spec(resource: Resource, obj: &mut Value) {
    if !obj.get("spec").is_some_and(Value::is_object) {
        return;
    }
    let spec = &mut obj["spec"];
    let set = |spec: &mut Value, k: &str, v: Value| {
        if spec.get(k).is_none() {
            spec[k] = v;
        }
    };
    match resource {
        Resource::Deployments => {
            set(spec, "replicas", json!(1));
            set(spec, "progressDeadlineSeconds", json!(600));
            set(spec, "revisionHistoryLimit", json!(10));
            set(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
            if spec["strategy"]["type"] == "RollingUpdate"
                && spec["strategy"].get("rollingUpdate").is_none()
            {
                spec["strategy"]["rollingUpdate"] =
                    json!({"maxSurge": "25%", "maxUnavailable": "25%"});
            }
        }
        Resource::StatefulSets => {
            set(spec, "replicas", json!(1));
            set(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
        }
        Resource::DaemonSets => set(
            spec,
            "updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        ),
        Resource::ReplicaSets | Resource::Pods | Resource::Rollouts => {}
    }
}

/// Resolves an int-or-percent against `total`, rounding up or down as Kubernetes does.
fn int_or_percent(v: &Value, total: i64, round_up: bool) -> i64 {
    if let Some(n) = v.as_i64() {
        return n;
    }
    let Some(p) = v
        .as_str()
        .and_then(|s| s.strip_suffix('%'))
        .and_then(|s| s.parse::<i64>().ok())
    else {
        return 0;
    };
    let scaled = total * p;
    if round_up {
        (scaled + 99) / 100
    } else {
        scaled / 100
    }
}

pub(crate) fn owner_uid(obj: &Value) -> &str {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .and_then(|o| o.first())
        .and_then(|o| o["uid"].as_str())
        .unwrap_or("")
}

pub(crate) fn owned_by(s: &Store, resource: Resource, namespace: &str, uid: &str) -> Vec<Value> {
    s.objects
        .iter()
        .filter(|((r, ns, _), o)| *r == resource && ns == namespace && owner_uid(o) == uid)
        .map(|(_, o)| o.clone())
        .collect()
}

/// Is the pod's Ready condition true?
pub(crate) fn is_pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Pods owned by the ReplicaSets of a Deployment.
pub(crate) fn pods_of_deployment(s: &Store, namespace: &str, name: &str) -> Vec<Value> {
    pods_of(s, Resource::Deployments, namespace, name)
}

/// Pods owned by the ReplicaSets of a Deployment or a Rollout.
pub(crate) fn pods_of(s: &Store, resource: Resource, namespace: &str, name: &str) -> Vec<Value> {
    let Some(dep) = s
        .objects
        .get(&(resource, namespace.to_owned(), name.to_owned()))
    else {
        return Vec::new();
    };
    let uid = str_at(dep, &["metadata", "uid"]);
    owned_by(s, Resource::ReplicaSets, namespace, uid)
        .iter()
        .flat_map(|rs| {
            owned_by(
                s,
                Resource::Pods,
                namespace,
                str_at(rs, &["metadata", "uid"]),
            )
        })
        .collect()
}

/// Removes the ReplicaSets owned by `uid` and their pods (cascading delete).
pub(crate) fn delete_owned(s: &mut Store, uid: &str) {
    let children: Vec<Key> = s
        .objects
        .iter()
        .filter(|(_, o)| owner_uid(o) == uid)
        .map(|(k, _)| k.clone())
        .collect();
    for key in children {
        if let Some(obj) = s.remove(&key) {
            let child_uid = str_at(&obj, &["metadata", "uid"]).to_owned();
            s.sim.pods.remove(&child_uid);
            delete_owned(s, &child_uid);
        }
    }
}

/// Advances every workload once. `instant` makes pods ready at once (seeding).
pub(crate) fn step(s: &mut Store, timing: &KubeTiming, instant: bool) {
    let now = Instant::now();
    let keys: Vec<Key> = s
        .objects
        .keys()
        .filter(|(r, _, _)| {
            matches!(
                r,
                Resource::Deployments
                    | Resource::StatefulSets
                    | Resource::DaemonSets
                    | Resource::Rollouts
            )
        })
        .cloned()
        .collect();
    for key in keys {
        match key.0 {
            Resource::Deployments => step_deployment(s, &key, timing, instant, now),
            Resource::Rollouts => super::rollouts::step(s, &key, timing, instant, now),
            _ => step_status_only(s, &key, timing, instant, now),
        }
    }
}

pub(crate) fn put_if_changed(s: &mut Store, resource: Resource, before: &Value, after: Value) {
    if *before != after {
        s.put(resource, after);
    }
}

fn step_deployment(s: &mut Store, key: &Key, timing: &KubeTiming, instant: bool, now: Instant) {
    let Some(dep) = s.objects.get(key).cloned() else {
        return;
    };
    let (ns, name) = (key.1.clone(), key.2.clone());
    let uid = str_at(&dep, &["metadata", "uid"]).to_owned();
    let generation = int_at(&dep, &["metadata", "generation"]);
    let desired = dep["spec"]["replicas"].as_i64().unwrap_or(1);
    let template = dep["spec"]["template"].clone();
    let hash = pod_template_hash(&template);

    let sim = s.sim.workloads.entry(key.clone()).or_insert(WorkloadSim {
        generation: 0,
        started: now,
        last_progress: now,
        broken: false,
        ever_done: false,
    });
    if sim.generation != generation {
        sim.generation = generation;
        sim.started = now;
        sim.last_progress = now;
        sim.broken = template_is_broken(&template);
    }

    // The ReplicaSet for the current template (created, or re-used on a rollback).
    let new_rs = replica_set_for(
        s,
        &dep,
        &template,
        &hash,
        "pod-template-hash",
        REVISION_ANNOTATION,
    );
    let new_rs_uid = str_at(&new_rs, &["metadata", "uid"]).to_owned();
    let new_rev = revision_of(&new_rs, REVISION_ANNOTATION);

    // Kubelet: pods start (or crash).
    let all_rss = owned_by(s, Resource::ReplicaSets, &ns, &uid);
    for rs in &all_rss {
        for pod in owned_by(s, Resource::Pods, &ns, str_at(rs, &["metadata", "uid"])) {
            if advance_pod(s, pod, instant, now) && owner_uid_is(rs, &new_rs_uid) {
                if let Some(sim) = s.sim.workloads.get_mut(key) {
                    sim.last_progress = now;
                }
            }
        }
    }

    // Deployment controller: one scale step per tick.
    let strategy = &dep["spec"]["strategy"];
    let (mut surge, mut unavail) = if strategy["type"] == "Recreate" {
        (0, desired)
    } else {
        (
            int_or_percent(&strategy["rollingUpdate"]["maxSurge"], desired, true),
            int_or_percent(&strategy["rollingUpdate"]["maxUnavailable"], desired, false),
        )
    };
    if surge == 0 && unavail == 0 {
        surge = 1;
    }
    unavail = unavail.min(desired);
    let new_pods = owned_by(s, Resource::Pods, &ns, &new_rs_uid);
    let old_pods: Vec<Value> = all_rss
        .iter()
        .filter(|rs| str_at(rs, &["metadata", "uid"]) != new_rs_uid)
        .flat_map(|rs| owned_by(s, Resource::Pods, &ns, str_at(rs, &["metadata", "uid"])))
        .collect();
    let total = (new_pods.len() + old_pods.len()) as i64;
    let available = new_pods
        .iter()
        .chain(&old_pods)
        .filter(|p| is_pod_ready(p))
        .count() as i64;
    let pick = |pods: &[Value]| -> Option<Value> {
        pods.iter()
            .find(|p| !is_pod_ready(p))
            .or_else(|| pods.first())
            .cloned()
    };
    if new_pods.len() as i64 > desired {
        if let Some(p) = pick(&new_pods) {
            remove_pod(s, &p);
        }
    } else if (new_pods.len() as i64) < desired && total < desired + surge {
        create_pod(s, &new_rs, timing, instant, now);
        if let Some(sim) = s.sim.workloads.get_mut(key) {
            sim.last_progress = now;
        }
    }
    if let Some(p) = old_pods.iter().find(|p| !is_pod_ready(p)).cloned() {
        remove_pod(s, &p);
    } else if !old_pods.is_empty() && available > desired - unavail {
        if let Some(p) = old_pods.first().cloned() {
            remove_pod(s, &p);
        }
    }

    let total_rs_replicas = sync_replica_sets(s, &ns, &uid);

    // Deployment status.
    let new_pods = owned_by(s, Resource::Pods, &ns, &new_rs_uid);
    let all_pods = pods_of_deployment(s, &ns, &name);
    let updated = new_pods.len() as i64;
    let replicas = all_pods.len() as i64;
    let available = all_pods.iter().filter(|p| is_pod_ready(p)).count() as i64;
    let Some(sim) = s.sim.workloads.get(key) else {
        return;
    };
    let complete = updated == desired && replicas == desired && available >= desired;
    let deadline = dep["spec"]["progressDeadlineSeconds"]
        .as_f64()
        .unwrap_or(600.0)
        * timing.progress_deadline_scale;
    let overdue =
        !instant && now.duration_since(sim.last_progress) > Duration::from_secs_f64(deadline);
    let stamp = k8s_time(crate::clock::now());
    let mut conditions: Vec<Value> = dep["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let (status, reason, message) = if complete {
        (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{name}-{hash}\" has successfully progressed."),
        )
    } else if overdue {
        (
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{name}-{hash}\" has timed out progressing."),
        )
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{name}-{hash}\" is progressing."),
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
    let min_available = desired - unavail;
    if available >= min_available {
        set_condition(
            &mut conditions,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            &stamp,
        );
    } else {
        set_condition(
            &mut conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            &stamp,
        );
    }
    conditions.sort_by_key(|c| c["type"] != "Available");
    let mut next = dep.clone();
    let mut status_obj = counts(&[
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", available),
        ("availableReplicas", available),
        (
            "unavailableReplicas",
            (total_rs_replicas.max(desired) - available).max(0),
        ),
    ]);
    status_obj["observedGeneration"] = json!(generation);
    status_obj["conditions"] = Value::Array(conditions);
    next["status"] = status_obj;
    next["metadata"]["annotations"][REVISION_ANNOTATION] = json!(new_rev.to_string());
    put_if_changed(s, Resource::Deployments, &dep, next);
}

/// The ReplicaSet controller's bookkeeping for the ReplicaSets `owner_uid` owns: each one's spec
/// and status follow its pods. Returns their pods in all.
pub(crate) fn sync_replica_sets(s: &mut Store, ns: &str, owner_uid: &str) -> i64 {
    let mut total = 0;
    for rs in owned_by(s, Resource::ReplicaSets, ns, owner_uid) {
        let pods = owned_by(s, Resource::Pods, ns, str_at(&rs, &["metadata", "uid"]));
        let n = pods.len() as i64;
        let ready = pods.iter().filter(|p| is_pod_ready(p)).count() as i64;
        total += n;
        let mut next = rs.clone();
        next["spec"]["replicas"] = json!(n);
        next["status"] = counts(&[
            ("replicas", n),
            ("fullyLabeledReplicas", n),
            ("readyReplicas", ready),
            ("availableReplicas", ready),
        ]);
        next["status"]["replicas"] = json!(n);
        next["status"]["observedGeneration"] = json!(int_at(&rs, &["metadata", "generation"]));
        put_if_changed(s, Resource::ReplicaSets, &rs, next);
    }
    total
}

/// The revision annotation `annotation` of a ReplicaSet (0 when absent).
pub(crate) fn revision_of(rs: &Value, annotation: &str) -> i64 {
    rs["metadata"]["annotations"][annotation]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The ReplicaSet of `owner` (a Deployment or a Rollout) for `template`, whose hash is `hash`: the
/// existing one (moved to the next revision when an older one is re-used, as on a rollback), or a new
/// one with no replicas, labelled `hash_label: hash` and annotated with `revision_annotation`.
pub(crate) fn replica_set_for(
    s: &mut Store,
    owner: &Value,
    template: &Value,
    hash: &str,
    hash_label: &str,
    revision_annotation: &str,
) -> Value {
    let ns = str_at(owner, &["metadata", "namespace"]).to_owned();
    let name = str_at(owner, &["metadata", "name"]).to_owned();
    let uid = str_at(owner, &["metadata", "uid"]).to_owned();
    let rss = owned_by(s, Resource::ReplicaSets, &ns, &uid);
    let max_rev = rss
        .iter()
        .map(|rs| revision_of(rs, revision_annotation))
        .max()
        .unwrap_or(0);
    let rs_name = format!("{name}-{hash}");
    match rss
        .iter()
        .find(|rs| str_at(rs, &["metadata", "name"]) == rs_name)
    {
        Some(rs) if revision_of(rs, revision_annotation) == max_rev => rs.clone(),
        Some(rs) => {
            let mut rs = rs.clone();
            rs["metadata"]["annotations"][revision_annotation] = json!((max_rev + 1).to_string());
            s.put(Resource::ReplicaSets, rs)
        }
        None => {
            let mut labels = template["metadata"]["labels"].clone();
            if !labels.is_object() {
                labels = json!({});
            }
            labels[hash_label] = json!(hash);
            let mut selector = owner["spec"]["selector"].clone();
            if !selector.is_object() {
                selector = json!({});
            }
            selector["matchLabels"][hash_label] = json!(hash);
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"] = labels.clone();
            let rs_uid = s.next_uid();
            let rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": ns,
                    "uid": rs_uid,
                    "generation": 1,
                    "creationTimestamp": k8s_time(crate::clock::now()),
                    "labels": labels,
                    "annotations": {revision_annotation: (max_rev + 1).to_string()},
                    "ownerReferences": [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                        "name": name, "uid": uid, "controller": true, "blockOwnerDeletion": true}],
                },
                "spec": {"replicas": 0, "selector": selector, "template": rs_template},
                "status": {"replicas": 0, "observedGeneration": 1},
            });
            s.put(Resource::ReplicaSets, rs)
        }
    }
}

fn owner_uid_is(rs: &Value, uid: &str) -> bool {
    str_at(rs, &["metadata", "uid"]) == uid
}

/// A status object with the non-zero counts (Kubernetes omits zero integers).
pub(crate) fn counts(fields: &[(&str, i64)]) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in fields {
        if *v != 0 {
            m.insert((*k).to_owned(), json!(v));
        }
    }
    Value::Object(m)
}

/// Sets a condition, keeping its timestamps when nothing about it changed.
pub(crate) fn set_condition(
    conds: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    let fresh = json!({"type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now});
    match conds.iter_mut().find(|c| c["type"] == kind) {
        Some(c) if c["status"] == status && c["reason"] == reason && c["message"] == message => {}
        Some(c) => {
            let transition = if c["status"] == status {
                c["lastTransitionTime"].clone()
            } else {
                json!(now)
            };
            *c = fresh;
            c["lastTransitionTime"] = transition;
        }
        None => conds.push(fresh),
    }
}

pub(crate) fn create_pod(
    s: &mut Store,
    rs: &Value,
    timing: &KubeTiming,
    instant: bool,
    now: Instant,
) {
    let ns = str_at(rs, &["metadata", "namespace"]).to_owned();
    let rs_name = str_at(rs, &["metadata", "name"]).to_owned();
    let uid = s.next_uid();
    let template = &rs["spec"]["template"];
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!("sandbox-node");
    if spec.get("restartPolicy").is_none() {
        spec["restartPolicy"] = json!("Always");
    }
    let name = format!("{rs_name}-{}", random_suffix());
    let stamp = k8s_time(crate::clock::now());
    let broken = template_is_broken(template);
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "generateName": format!("{rs_name}-"),
            "namespace": ns,
            "uid": uid,
            "creationTimestamp": stamp,
            "labels": template["metadata"]["labels"].clone(),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                "uid": str_at(rs, &["metadata", "uid"]), "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": spec,
        "status": {
            "phase": "Pending",
            "hostIP": "10.0.0.10",
            "startTime": stamp,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
                {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                    "message": format!("containers with unready status: [{}]", container_names(template)),
                    "lastTransitionTime": stamp},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                    "message": format!("containers with unready status: [{}]", container_names(template)),
                    "lastTransitionTime": stamp},
            ],
            "containerStatuses": container_statuses(template, |_| json!({"waiting": {"reason": "ContainerCreating"}}), false, 0),
        },
    });
    let delay = if instant {
        Duration::ZERO
    } else {
        timing.pod_start_delay
    };
    s.sim.pods.insert(
        uid,
        PodSim {
            ready_at: now + delay,
            broken,
            last_restart: None,
        },
    );
    let pod = s.put(Resource::Pods, pod);
    if instant {
        advance_pod(s, pod, true, now);
    }
}

fn container_names(template: &Value) -> String {
    template["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn container_statuses(
    template: &Value,
    state: impl Fn(&Value) -> Value,
    ready: bool,
    restarts: i64,
) -> Value {
    let list = template["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Value::Array(
        list.iter()
            .map(|c| {
                let image = c["image"].as_str().unwrap_or("");
                let digest = hex(&Sha1::digest(image.as_bytes()));
                let repo = crate::render::split_image(image).0;
                json!({
                    "name": c["name"], "image": image,
                    "imageID": format!("{repo}@sha256:{digest}{}", &digest[..24]),
                    "ready": ready, "started": ready, "restartCount": restarts,
                    "state": state(c),
                })
            })
            .collect(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Moves a pod along (ready or crashing). Returns true when it became ready now.
pub(crate) fn advance_pod(s: &mut Store, pod: Value, instant: bool, now: Instant) -> bool {
    if is_pod_ready(&pod) {
        return false;
    }
    let uid = str_at(&pod, &["metadata", "uid"]).to_owned();
    let Some(ps) = s.sim.pods.get(&uid) else {
        return false;
    };
    if !instant && now < ps.ready_at {
        return false;
    }
    let stamp = k8s_time(crate::clock::now());
    let template = json!({"spec": pod["spec"].clone()});
    let name = str_at(&pod, &["metadata", "name"]).to_owned();
    let ns = str_at(&pod, &["metadata", "namespace"]).to_owned();
    let mut next = pod.clone();
    if ps.broken {
        // Restart (and write) at most once a second, like a kubelet back-off, to keep the log small.
        if ps
            .last_restart
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        let restarts = pod["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            + 1;
        if let Some(ps) = s.sim.pods.get_mut(&uid) {
            ps.last_restart = Some(now);
        }
        let message =
            format!("back-off 10s restarting failed container=web pod={name}_{ns}({uid})");
        next["status"]["phase"] = json!("Running");
        next["status"]["podIP"] = json!("10.244.0.99");
        next["status"]["containerStatuses"] = container_statuses(
            &template,
            |c| {
                json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": message.replace("container=web", &format!("container={}", c["name"].as_str().unwrap_or("")))}})
            },
            false,
            restarts,
        );
        for cs in next["status"]["containerStatuses"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            cs["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
                "startedAt": stamp, "finishedAt": stamp}});
        }
        s.put(Resource::Pods, next);
        return false;
    }
    next["status"]["phase"] = json!("Running");
    next["status"]["podIP"] = json!(format!("10.244.0.{}", rand::random_range(2..250)));
    next["status"]["containerStatuses"] = container_statuses(
        &template,
        |_| json!({"running": {"startedAt": stamp}}),
        true,
        0,
    );
    for c in next["status"]["conditions"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if c["type"] == "Ready" || c["type"] == "ContainersReady" {
            *c = json!({"type": c["type"].clone(), "status": "True", "lastTransitionTime": stamp});
        }
    }
    s.put(Resource::Pods, next);
    true
}

pub(crate) fn remove_pod(s: &mut Store, pod: &Value) {
    let key = key_of(Resource::Pods, pod);
    s.sim.pods.remove(str_at(pod, &["metadata", "uid"]));
    s.remove(&key);
}

/// StatefulSets and DaemonSets: status only, ready after the pod start delay unless broken.
fn step_status_only(s: &mut Store, key: &Key, timing: &KubeTiming, instant: bool, now: Instant) {
    let Some(obj) = s.objects.get(key).cloned() else {
        return;
    };
    let generation = int_at(&obj, &["metadata", "generation"]);
    let template = obj["spec"]["template"].clone();
    let sim = s.sim.workloads.entry(key.clone()).or_insert(WorkloadSim {
        generation: 0,
        started: now,
        last_progress: now,
        broken: false,
        ever_done: false,
    });
    if sim.generation != generation {
        sim.generation = generation;
        sim.started = now;
        sim.broken = template_is_broken(&template);
    }
    let done = !sim.broken && (instant || now >= sim.started + timing.pod_start_delay);
    let serving = sim.ever_done;
    sim.ever_done |= done;
    let revision = format!("{}-{}", key.2, pod_template_hash(&template));
    let prev = &obj["status"];
    let status = if key.0 == Resource::StatefulSets {
        let desired = obj["spec"]["replicas"].as_i64().unwrap_or(1);
        if done {
            let mut st = counts(&[
                ("replicas", desired),
                ("readyReplicas", desired),
                ("currentReplicas", desired),
                ("updatedReplicas", desired),
                ("availableReplicas", desired),
            ]);
            st["observedGeneration"] = json!(generation);
            st["currentRevision"] = json!(revision);
            st["updateRevision"] = json!(revision);
            st
        } else {
            // One pod is being replaced; the others still run the previous revision.
            let ready = if serving { (desired - 1).max(0) } else { 0 };
            let mut st = counts(&[
                ("replicas", desired),
                ("readyReplicas", ready),
                ("currentReplicas", ready),
                ("availableReplicas", ready),
            ]);
            st["observedGeneration"] = json!(generation);
            st["currentRevision"] = prev
                .get("currentRevision")
                .cloned()
                .unwrap_or(json!(revision));
            st["updateRevision"] = json!(revision);
            st
        }
    } else {
        // One node: its pod is either the new one (done), the old one (serving) or none yet.
        let ready = i64::from(done || serving);
        let mut st = counts(&[
            ("currentNumberScheduled", 1),
            ("desiredNumberScheduled", 1),
            ("numberReady", ready),
            ("numberAvailable", ready),
            ("updatedNumberScheduled", i64::from(done)),
            ("numberUnavailable", 1 - ready),
        ]);
        st["numberMisscheduled"] = json!(0);
        st["observedGeneration"] = json!(generation);
        st
    };
    let mut next = obj.clone();
    next["status"] = status;
    put_if_changed(s, key.0, &obj, next);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_and_unavailable_round_like_kubernetes() {
        assert_eq!(int_or_percent(&json!("25%"), 3, true), 1);
        assert_eq!(int_or_percent(&json!("25%"), 3, false), 0);
        assert_eq!(int_or_percent(&json!(2), 3, false), 2);
        assert_eq!(int_or_percent(&json!("50%"), 10, false), 5);
    }

    #[test]
    fn broken_tag_detection() {
        assert!(is_broken_image("registry.example.com/demo/web:broken-1"));
        assert!(!is_broken_image("registry.example.com/demo/web:1.0.1"));
        assert!(!is_broken_image("broken-registry:5000/web:1"));
    }

    #[test]
    fn template_hash_is_stable_and_safe() {
        let t = json!({"spec": {"containers": [{"name": "web", "image": "x:1"}]}});
        let h = pod_template_hash(&t);
        assert_eq!(h, pod_template_hash(&t));
        assert_eq!(h.len(), 10);
        assert!(h.bytes().all(|b| SAFE_CHARS.contains(&b)));
        assert_ne!(h, pod_template_hash(&json!({"spec": {}})));
    }
}
