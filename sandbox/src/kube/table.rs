//! Server-side printing: `meta.k8s.io/v1` Table responses, which `kubectl get` asks for
//! (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…`), with the columns of the Kubernetes
//! printers for the served kinds. Without them kubectl falls back to NAME and AGE only.

use serde_json::{json, Value};

use super::{int_at, str_at, Resource};

/// Does the `Accept` header ask for a Table?
pub(crate) fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    })
}

fn column(name: &str, kind: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
}

/// Kubernetes' short human duration (`45s`, `3m12s`, `95m`, `5h`, `3d`).
fn age(created: &str) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (crate::clock::now().as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn containers(spec: &Value) -> (String, String) {
    let cs = spec["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

/// `spec.selector.matchLabels` as `k=v,k=v`.
pub(crate) fn selector(obj: &Value) -> String {
    obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn pod_status(pod: &Value) -> String {
    let waiting = pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find_map(|c| c["state"]["waiting"]["reason"].as_str())
        });
    waiting
        .or(pod["status"]["phase"].as_str())
        .unwrap_or("Unknown")
        .to_owned()
}

fn cells(resource: Resource, o: &Value) -> Vec<Value> {
    let name = json!(str_at(o, &["metadata", "name"]));
    let age = json!(age(str_at(o, &["metadata", "creationTimestamp"])));
    let replicas = o["spec"]["replicas"].as_i64().unwrap_or(1);
    let (names, images) = containers(&o["spec"]["template"]["spec"]);
    match resource {
        Resource::Deployments => vec![
            name,
            json!(format!(
                "{}/{replicas}",
                int_at(o, &["status", "readyReplicas"])
            )),
            json!(int_at(o, &["status", "updatedReplicas"])),
            json!(int_at(o, &["status", "availableReplicas"])),
            age,
            json!(names),
            json!(images),
            json!(selector(o)),
        ],
        Resource::ReplicaSets => vec![
            name,
            json!(replicas),
            json!(int_at(o, &["status", "replicas"])),
            json!(int_at(o, &["status", "readyReplicas"])),
            age,
            json!(names),
            json!(images),
            json!(selector(o)),
        ],
        Resource::StatefulSets => vec![
            name,
            json!(format!(
                "{}/{replicas}",
                int_at(o, &["status", "readyReplicas"])
            )),
            age,
            json!(names),
            json!(images),
        ],
        Resource::DaemonSets => vec![
            name,
            json!(int_at(o, &["status", "desiredNumberScheduled"])),
            json!(int_at(o, &["status", "currentNumberScheduled"])),
            json!(int_at(o, &["status", "numberReady"])),
            json!(int_at(o, &["status", "updatedNumberScheduled"])),
            json!(int_at(o, &["status", "numberAvailable"])),
            json!("<none>"),
            age,
            json!(names),
            json!(images),
            json!(selector(o)),
        ],
        Resource::Pods => {
            let statuses = o["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ready = statuses.iter().filter(|c| c["ready"] == true).count();
            let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
            let restarts: i64 = statuses
                .iter()
                .filter_map(|c| c["restartCount"].as_i64())
                .sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(restarts.to_string()),
                age,
                json!(o["status"]["podIP"].as_str().unwrap_or("<none>")),
                json!(o["spec"]["nodeName"].as_str().unwrap_or("<none>")),
                json!("<none>"),
                json!("<none>"),
            ]
        }
        // The CRD's additionalPrinterColumns (argo-rollouts manifests/crds/rollout-crd.yaml).
        Resource::Rollouts => vec![
            name,
            json!(replicas),
            json!(int_at(o, &["status", "replicas"])),
            json!(int_at(o, &["status", "updatedReplicas"])),
            json!(int_at(o, &["status", "availableReplicas"])),
            age,
        ],
    }
}

fn columns(resource: Resource) -> Vec<Value> {
    let s = |n: &str| column(n, "string", 0);
    let i = |n: &str| column(n, "integer", 0);
    let wide = |n: &str| column(n, "string", 1);
    match resource {
        Resource::Deployments => vec![
            s("Name"),
            s("Ready"),
            i("Up-to-date"),
            i("Available"),
            s("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        Resource::ReplicaSets => vec![
            s("Name"),
            i("Desired"),
            i("Current"),
            i("Ready"),
            s("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        Resource::StatefulSets => vec![
            s("Name"),
            s("Ready"),
            s("Age"),
            wide("Containers"),
            wide("Images"),
        ],
        Resource::DaemonSets => vec![
            s("Name"),
            i("Desired"),
            i("Current"),
            i("Ready"),
            i("Up-to-date"),
            i("Available"),
            s("Node Selector"),
            s("Age"),
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        Resource::Pods => vec![
            s("Name"),
            s("Ready"),
            s("Status"),
            s("Restarts"),
            s("Age"),
            wide("IP"),
            wide("Node"),
            wide("Nominated Node"),
            wide("Readiness Gates"),
        ],
        Resource::Rollouts => vec![
            s("Name"),
            i("Desired"),
            i("Current"),
            i("Up-to-date"),
            i("Available"),
            s("Age"),
        ],
    }
}

/// A Table of `items`; rows carry the object's metadata, or the whole object with `include_object`.
pub(crate) fn table(resource: Resource, items: &[Value], rv: u64, include_object: bool) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let object = if include_object {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"].clone()})
            };
            json!({"cells": cells(resource, o), "object": object})
        })
        .collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv.to_string()},
        "columnDefinitions": columns(resource),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_match_cells() {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}}});
        for r in Resource::ALL {
            let t = table(r, std::slice::from_ref(&obj), 1, false);
            assert_eq!(
                t["rows"][0]["cells"].as_array().map(Vec::len),
                t["columnDefinitions"].as_array().map(Vec::len),
                "{r:?}"
            );
        }
        assert!(wants_table(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wants_table(Some("application/json")));
    }
}
