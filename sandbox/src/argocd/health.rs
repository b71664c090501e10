//! Resource and application health the way Argo CD computes it (gitops-engine `pkg/health`,
//! controller/health.go; docs/research/argocd-rollout.md §A3). Pure functions over live objects.

use serde_json::Value;

use crate::kube::int_at;

/// An Argo CD health status with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `Healthy`, `Progressing`, `Degraded`, `Suspended`, `Missing` or `Unknown`.
    pub status: &'static str,
    /// Human message (empty when healthy).
    pub message: String,
}

impl Health {
    fn new(status: &'static str, message: impl Into<String>) -> Health {
        Health {
            status,
            message: message.into(),
        }
    }

    /// Healthy, no message.
    pub fn healthy() -> Health {
        Health::new("Healthy", "")
    }

    /// Missing: the resource is not live.
    pub fn missing() -> Health {
        Health::new("Missing", "")
    }
}

/// Order Argo CD uses to pick the worst status (controller/health.go `IsWorse`).
pub fn severity(status: &str) -> u8 {
    match status {
        "Healthy" => 0,
        "Suspended" => 1,
        "Progressing" => 2,
        "Missing" => 3,
        "Degraded" => 4,
        _ => 5,
    }
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

/// Health of one live object, or `None` for kinds Argo CD has no health check for.
pub fn of(obj: &Value) -> Option<Health> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let generation = int_at(obj, &["metadata", "generation"]);
    let observed = int_at(obj, &["status", "observedGeneration"]);
    match obj["kind"].as_str()? {
        "Deployment" => {
            if obj["spec"]["paused"] == true {
                return Some(Health::new("Suspended", "Deployment is paused"));
            }
            if generation > observed {
                return Some(Health::new(
                    "Progressing",
                    "Waiting for rollout to finish: observed deployment generation less than desired generation",
                ));
            }
            if condition(obj, "Progressing")
                .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
            {
                return Some(Health::new(
                    "Degraded",
                    format!("Deployment {name:?} exceeded its progress deadline"),
                ));
            }
            let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let updated = int_at(obj, &["status", "updatedReplicas"]);
            let total = int_at(obj, &["status", "replicas"]);
            let available = int_at(obj, &["status", "availableReplicas"]);
            if updated < replicas {
                return Some(Health::new(
                    "Progressing",
                    format!("Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated..."),
                ));
            }
            if total > updated {
                return Some(Health::new(
                    "Progressing",
                    format!(
                        "Waiting for rollout to finish: {} old replicas are pending termination...",
                        total - updated
                    ),
                ));
            }
            if available < updated {
                return Some(Health::new(
                    "Progressing",
                    format!("Waiting for rollout to finish: {available} of {updated} updated replicas are available..."),
                ));
            }
            Some(Health::healthy())
        }
        "ReplicaSet" => {
            let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let available = int_at(obj, &["status", "availableReplicas"]);
            if generation > observed {
                return Some(Health::new(
                    "Progressing",
                    "Waiting for rollout to finish: observed replica set generation less than desired generation",
                ));
            }
            if available < replicas {
                return Some(Health::new(
                    "Progressing",
                    format!("Waiting for rollout to finish: {available} out of {replicas} new replicas are available..."),
                ));
            }
            Some(Health::healthy())
        }
        "StatefulSet" => {
            let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let ready = int_at(obj, &["status", "readyReplicas"]);
            let updated = int_at(obj, &["status", "updatedReplicas"]);
            if observed == 0 || generation > observed {
                return Some(Health::new(
                    "Progressing",
                    "Waiting for statefulset spec update to be observed...",
                ));
            }
            if ready < replicas {
                return Some(Health::new(
                    "Progressing",
                    format!("Waiting for {} pods to be ready...", replicas - ready),
                ));
            }
            if updated < replicas {
                return Some(Health::new(
                    "Progressing",
                    format!("Waiting for partitioned roll out to finish: {updated} out of {replicas} new pods have been updated..."),
                ));
            }
            Some(Health::healthy())
        }
        "DaemonSet" => {
            let desired = int_at(obj, &["status", "desiredNumberScheduled"]);
            let updated = int_at(obj, &["status", "updatedNumberScheduled"]);
            let available = int_at(obj, &["status", "numberAvailable"]);
            if generation > observed {
                return Some(Health::new(
                    "Progressing",
                    "Waiting for rollout to finish: observed daemon set generation less than desired generation",
                ));
            }
            if updated < desired {
                return Some(Health::new(
                    "Progressing",
                    format!("Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."),
                ));
            }
            if available < desired {
                return Some(Health::new(
                    "Progressing",
                    format!("Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."),
                ));
            }
            Some(Health::healthy())
        }
        "Pod" => {
            let statuses = obj["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for cs in &statuses {
                let waiting = &cs["state"]["waiting"];
                if let Some(reason) = waiting["reason"].as_str() {
                    if reason != "ContainerCreating" && reason != "PodInitializing" {
                        let msg = waiting["message"].as_str().unwrap_or(reason);
                        return Some(Health::new("Degraded", msg.to_owned()));
                    }
                }
            }
            match obj["status"]["phase"].as_str() {
                Some("Running") if statuses.iter().all(|c| c["ready"] == true) => {
                    Some(Health::healthy())
                }
                Some("Succeeded") => Some(Health::healthy()),
                Some("Failed") => Some(Health::new("Degraded", "pod failed")),
                _ => Some(Health::new("Progressing", "")),
            }
        }
        // argo-cd resource_customizations/argoproj.io/Rollout/health.lua (v1.0+ controllers record
        // phase and message, which Argo CD surfaces; Paused is Suspended).
        "Rollout" => {
            // `isGenerationObserved`: no status is not observed; a value that is no number (a hash
            // of old controllers, or none) or one above the generation is.
            let observed = match &obj["status"]["observedGeneration"] {
                _ if !obj["status"].is_object() => false,
                Value::String(s) => s.parse::<i64>().map_or(true, |o| o >= generation),
                Value::Number(n) => n.as_i64().is_none_or(|o| o >= generation),
                _ => true,
            };
            // `isWorkloadGenerationObserved`: a workloadRef Rollout resolved from the Deployment's
            // current generation.
            let workload_observed = !obj["spec"]["workloadRef"].is_object()
                || obj["metadata"]["annotations"]["rollout.argoproj.io/workload-generation"]
                    .as_str()
                    .is_none_or(|g| {
                        obj["status"]["workloadObservedGeneration"].as_str() == Some(g)
                    });
            if !observed || !workload_observed {
                return Some(Health::new(
                    "Progressing",
                    "Waiting for rollout spec update to be observed",
                ));
            }
            let message = obj["status"]["message"].as_str().unwrap_or("").to_owned();
            Some(match obj["status"]["phase"].as_str() {
                Some("Paused") => Health::new("Suspended", message),
                Some("Healthy") => Health::new("Healthy", message),
                Some("Degraded") => Health::new("Degraded", message),
                Some("Progressing") => Health::new("Progressing", message),
                _ => Health::new(
                    "Progressing",
                    "Waiting for rollout to finish: status has not been reconciled.",
                ),
            })
        }
        "Service" | "Namespace" | "PersistentVolumeClaim" | "Ingress" => Some(Health::healthy()),
        _ => None,
    }
}

/// True for the kinds [`of`] has a health check for (gitops-engine `GetHealthCheckFunc`, plus the
/// kinds whose health is always Healthy once they exist).
pub fn has_check(kind: &str) -> bool {
    matches!(
        kind,
        "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "Pod"
            | "Rollout"
            | "Job"
            | "Service"
            | "Namespace"
            | "PersistentVolumeClaim"
            | "Ingress"
    )
}

/// One managed resource as the health aggregation sees it.
#[derive(Debug, Clone)]
pub struct ResourceHealth {
    /// The resource's health (Missing when not live).
    pub health: Health,
    /// Whether the object exists in the cluster.
    pub live: bool,
    /// Whether its kind has a health check.
    pub checked: bool,
}

/// The application's health from its resources' (controller/health.go `setApplicationHealth`):
/// the worst, Healthy if none counts.
///
/// - before 3.4 (`missing_counts`): a Missing resource counts when its kind has a health check
///   (a missing ConfigMap does not), v2.14.21 health.go:71;
/// - from 3.4: Missing resources never count, but the app is Missing when it has resources and
///   none is live (argo-cd#25962, HEAD health.go:81-103).
pub fn aggregate(resources: &[ResourceHealth], missing_counts: bool) -> &'static str {
    let counted = resources
        .iter()
        .filter(|r| r.live || (missing_counts && r.checked && r.health.status == "Missing"));
    let worst = counted
        .map(|r| r.health.status)
        .max_by_key(|s| severity(s))
        .unwrap_or("Healthy");
    let none_live = !resources.is_empty() && resources.iter().all(|r| !r.live);
    if !missing_counts && none_live && severity("Missing") > severity(worst) {
        return "Missing";
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(generation: i64, status: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 3}, "status": status})
    }

    #[test]
    fn deployment_health_table() {
        for (name, obj, want) in [
            (
                "not observed",
                dep(2, json!({"observedGeneration": 1})),
                "Progressing",
            ),
            (
                "updating",
                dep(
                    2,
                    json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1}),
                ),
                "Progressing",
            ),
            (
                "old pending",
                dep(
                    2,
                    json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3}),
                ),
                "Progressing",
            ),
            (
                "done",
                dep(
                    2,
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                "Healthy",
            ),
            (
                "deadline",
                dep(
                    2,
                    json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
                ),
                "Degraded",
            ),
        ] {
            assert_eq!(of(&obj).map(|h| h.status), Some(want), "{name}");
        }
    }

    #[test]
    fn aggregate_picks_the_worst_by_each_versions_missing_rule() {
        let live = |status| ResourceHealth {
            health: Health::new(status, ""),
            live: true,
            checked: true,
        };
        let missing = |checked| ResourceHealth {
            health: Health::missing(),
            live: false,
            checked,
        };
        // (resources, before 3.4, from 3.4)
        for (rs, old, new) in [
            (vec![], "Healthy", "Healthy"),
            (
                vec![live("Healthy"), missing(true), live("Progressing")],
                "Missing",
                "Progressing",
            ),
            (vec![live("Healthy"), missing(false)], "Healthy", "Healthy"),
            (vec![missing(true)], "Missing", "Missing"),
            (vec![missing(false)], "Healthy", "Missing"),
            (
                vec![live("Degraded"), missing(true)],
                "Degraded",
                "Degraded",
            ),
        ] {
            assert_eq!(aggregate(&rs, true), old, "{rs:?}");
            assert_eq!(aggregate(&rs, false), new, "{rs:?}");
        }
    }
}
