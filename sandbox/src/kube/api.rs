//! The Kubernetes HTTP API over the [`Kube`] store: discovery, GET, LIST and WATCH.
//!
//! Shapes follow what kubectl 1.32 and kube-rs 5 request (docs/research/argocd-rollout.md §B3, §C3):
//! legacy discovery JSON, lists with `metadata.resourceVersion`, chunked watch streams of
//! `{"type","object"}` lines, `ERROR` events with a 410 `Expired` Status for a too-old
//! resourceVersion, and `Status` objects for errors. A presented `Authorization: Bearer` token must
//! be the cluster's; requests without one are anonymous reads (a real API server with anonymous
//! auth and a read-only RBAC grant), because kubectl never sends credentials over plain http.
//! Admin routes under `/_sandbox/` (no token) inject watch faults and change timing.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{str_at, Event, EventType, Kube, Resource};

/// Longest a watch stays open when the client gives no `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The router for the Kubernetes API of `kube`.
pub fn router(kube: Kube) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/api/v1", get(|| async { resource_list("v1") }))
        .route("/apis/apps/v1", get(|| async { resource_list("apps/v1") }))
        .route("/api/v1/{plural}", get(core_all))
        .route("/api/v1/namespaces/{ns}/{plural}", get(core_ns))
        .route("/api/v1/namespaces/{ns}/{plural}/{name}", get(core_one))
        .route("/apis/apps/v1/{plural}", get(apps_all))
        .route("/apis/apps/v1/namespaces/{ns}/{plural}", get(apps_ns))
        .route(
            "/apis/apps/v1/namespaces/{ns}/{plural}/{name}",
            get(apps_one),
        )
        // Argo Rollouts' CRD group (argo-rollouts manifests/crds/rollout-crd.yaml).
        .route(
            "/apis/argoproj.io/v1alpha1",
            get(|| async { resource_list(ROLLOUTS_GV) }),
        )
        .route("/apis/argoproj.io/v1alpha1/{plural}", get(crd_all))
        .route(
            "/apis/argoproj.io/v1alpha1/namespaces/{ns}/{plural}",
            get(crd_ns),
        )
        .route(
            "/apis/argoproj.io/v1alpha1/namespaces/{ns}/{plural}/{name}",
            get(crd_one),
        )
        .fallback(|| async { not_found_path() })
        .layer(middleware::from_fn_with_state(kube.clone(), auth))
        .route("/_sandbox/faults/watch-gone", post(admin_watch_gone))
        .route("/_sandbox/faults/compact", post(admin_compact))
        .route("/_sandbox/time", post(admin_time))
        .with_state(kube)
}

async fn admin_watch_gone(State(kube): State<Kube>, Json(body): Json<Value>) -> Response {
    kube.fail_next_watches_with_gone(body["count"].as_u64().unwrap_or(1) as u32);
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_compact(State(kube): State<Kube>) -> Response {
    kube.compact();
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_time(State(kube): State<Kube>, Json(body): Json<Value>) -> Response {
    if let Some(ms) = body["pod_start_delay_ms"].as_u64() {
        kube.set_pod_start_delay(Duration::from_millis(ms));
    }
    if let Some(scale) = body["progress_deadline_scale"].as_f64() {
        kube.set_progress_deadline_scale(scale);
    }
    let t = kube.timing();
    json_ok(
        json!({"pod_start_delay_ms": t.pod_start_delay.as_millis() as u64,
        "progress_deadline_scale": t.progress_deadline_scale}),
    )
}

/// A Kubernetes `Status` error response.
fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16(),
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        None,
    )
}

fn json_ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn auth(State(kube): State<Kube>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/version" {
        return next.run(req).await;
    }
    // Observed: kubectl 1.32 (client-go clientcmd) sends no credentials at all to an http://
    // server, so a missing header is "anonymous" (allowed unless disabled); a wrong token never is.
    let ok = match req.headers().get(header::AUTHORIZATION) {
        None => kube.allows_anonymous(),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t.trim() == kube.token()),
    };
    if !ok {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
            None,
        );
    }
    next.run(req).await
}

async fn version() -> Response {
    json_ok(json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.4-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

async fn api_versions(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json_ok(json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }))
}

async fn api_groups() -> Response {
    json_ok(json!({
        "kind": "APIGroupList", "apiVersion": "v1",
        "groups": [{
            "name": "apps",
            "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
            "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
        }, {
            "name": "argoproj.io",
            "versions": [{"groupVersion": ROLLOUTS_GV, "version": "v1alpha1"}],
            "preferredVersion": {"groupVersion": ROLLOUTS_GV, "version": "v1alpha1"},
        }],
    }))
}

fn resource_list(group_version: &str) -> Response {
    let resources: Vec<Value> = Resource::ALL
        .into_iter()
        .filter(|r| r.api_version() == group_version)
        .map(|r| {
            json!({
                "name": r.plural(), "singularName": r.kind().to_lowercase(), "namespaced": true,
                "kind": r.kind(), "verbs": ["get", "list", "watch"],
                "shortNames": r.short_names(),
                "categories": ["all"],
            })
        })
        .collect();
    json_ok(json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": group_version, "resources": resources,
    }))
}

type Params = Query<HashMap<String, String>>;

/// Did the client ask for a Table (`kubectl get`)?
fn table_wanted(h: &HeaderMap) -> bool {
    super::table::wants_table(h.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

async fn core_all(
    State(k): State<Kube>,
    Path(plural): Path<String>,
    h: HeaderMap,
    q: Params,
) -> Response {
    collection(k, "v1", None, &plural, q.0, table_wanted(&h)).await
}
async fn core_ns(
    State(k): State<Kube>,
    Path((ns, plural)): Path<(String, String)>,
    h: HeaderMap,
    q: Params,
) -> Response {
    collection(k, "v1", Some(ns), &plural, q.0, table_wanted(&h)).await
}
async fn core_one(
    State(k): State<Kube>,
    Path((ns, plural, name)): Path<(String, String, String)>,
    h: HeaderMap,
    q: Params,
) -> Response {
    one(k, "v1", &ns, &plural, &name, table_wanted(&h), &q.0)
}
async fn apps_all(
    State(k): State<Kube>,
    Path(plural): Path<String>,
    h: HeaderMap,
    q: Params,
) -> Response {
    collection(k, "apps/v1", None, &plural, q.0, table_wanted(&h)).await
}
async fn apps_ns(
    State(k): State<Kube>,
    Path((ns, plural)): Path<(String, String)>,
    h: HeaderMap,
    q: Params,
) -> Response {
    collection(k, "apps/v1", Some(ns), &plural, q.0, table_wanted(&h)).await
}
async fn apps_one(
    State(k): State<Kube>,
    Path((ns, plural, name)): Path<(String, String, String)>,
    h: HeaderMap,
    q: Params,
) -> Response {
    one(k, "apps/v1", &ns, &plural, &name, table_wanted(&h), &q.0)
}

/// The group/version of Argo Rollouts' kinds.
const ROLLOUTS_GV: &str = "argoproj.io/v1alpha1";

async fn crd_all(
    State(k): State<Kube>,
    Path(plural): Path<String>,
    h: HeaderMap,
    q: Params,
) -> Response {
    collection(k, ROLLOUTS_GV, None, &plural, q.0, table_wanted(&h)).await
}
async fn crd_ns(
    State(k): State<Kube>,
    Path((ns, plural)): Path<(String, String)>,
    h: HeaderMap,
    q: Params,
) -> Response {
    collection(k, ROLLOUTS_GV, Some(ns), &plural, q.0, table_wanted(&h)).await
}
async fn crd_one(
    State(k): State<Kube>,
    Path((ns, plural, name)): Path<(String, String, String)>,
    h: HeaderMap,
    q: Params,
) -> Response {
    one(k, ROLLOUTS_GV, &ns, &plural, &name, table_wanted(&h), &q.0)
}

fn include_object(q: &HashMap<String, String>) -> bool {
    q.get("includeObject").is_some_and(|v| v == "Object")
}

fn resolve(group_version: &str, plural: &str) -> Option<Resource> {
    Resource::from_plural(plural).filter(|r| r.api_version() == group_version)
}

fn one(
    kube: Kube,
    gv: &str,
    ns: &str,
    plural: &str,
    name: &str,
    as_table: bool,
    q: &HashMap<String, String>,
) -> Response {
    let Some(resource) = resolve(gv, plural) else {
        return not_found_path();
    };
    match kube.get(resource, ns, name) {
        Some(obj) if as_table => {
            let rv = kube.store().rv;
            json_ok(super::table::table(resource, &[obj], rv, include_object(q)))
        }
        Some(obj) => json_ok(obj),
        None => {
            let group = resource.group();
            let qualified = if group.is_empty() {
                plural.to_owned()
            } else {
                format!("{plural}.{group}")
            };
            status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{qualified} \"{name}\" not found"),
                Some(json!({"name": name, "group": group, "kind": plural})),
            )
        }
    }
}

/// Parsed `fieldSelector` and `labelSelector`.
#[derive(Debug, Default)]
struct Filter {
    namespace: Option<String>,
    fields: Vec<(String, bool, String)>,
    labels: Vec<LabelReq>,
}

#[derive(Debug)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Filter {
    fn parse(namespace: Option<String>, q: &HashMap<String, String>) -> Result<Filter, String> {
        let mut f = Filter {
            namespace,
            ..Filter::default()
        };
        if let Some(fs) = q.get("fieldSelector").filter(|s| !s.is_empty()) {
            for term in fs.split(',') {
                let (k, neg, v) = if let Some((k, v)) = term.split_once("!=") {
                    (k, true, v)
                } else if let Some((k, v)) = term.split_once("==") {
                    (k, false, v)
                } else if let Some((k, v)) = term.split_once('=') {
                    (k, false, v)
                } else {
                    return Err(format!("invalid selector: {term:?}"));
                };
                if k != "metadata.name" && k != "metadata.namespace" {
                    return Err(format!("field label not supported: {k}"));
                }
                f.fields.push((k.to_owned(), neg, v.to_owned()));
            }
        }
        if let Some(ls) = q.get("labelSelector").filter(|s| !s.is_empty()) {
            for term in split_top_level(ls) {
                let term = term.trim();
                let set = |rest: &str| -> Result<Vec<String>, String> {
                    let inner = rest
                        .trim()
                        .strip_prefix('(')
                        .and_then(|r| r.strip_suffix(')'))
                        .ok_or_else(|| format!("invalid label selector term {term:?}"))?;
                    Ok(inner.split(',').map(|v| v.trim().to_owned()).collect())
                };
                let req = if let Some((k, rest)) = term.split_once(" notin ") {
                    LabelReq::NotIn(k.trim().to_owned(), set(rest)?)
                } else if let Some((k, rest)) = term.split_once(" in ") {
                    LabelReq::In(k.trim().to_owned(), set(rest)?)
                } else if let Some((k, v)) = term.split_once("!=") {
                    LabelReq::NotEq(k.to_owned(), v.to_owned())
                } else if let Some((k, v)) = term.split_once("==") {
                    LabelReq::Eq(k.to_owned(), v.to_owned())
                } else if let Some((k, v)) = term.split_once('=') {
                    LabelReq::Eq(k.to_owned(), v.to_owned())
                } else if let Some(k) = term.strip_prefix('!') {
                    LabelReq::NotExists(k.to_owned())
                } else {
                    LabelReq::Exists(term.to_owned())
                };
                f.labels.push(req);
            }
        }
        Ok(f)
    }

    fn matches(&self, obj: &Value) -> bool {
        let ns = str_at(obj, &["metadata", "namespace"]);
        if self.namespace.as_deref().is_some_and(|n| n != ns) {
            return false;
        }
        for (k, neg, v) in &self.fields {
            let actual = match k.as_str() {
                "metadata.name" => str_at(obj, &["metadata", "name"]),
                _ => ns,
            };
            if (actual == v) == *neg {
                return false;
            }
        }
        let label = |k: &str| obj["metadata"]["labels"][k].as_str().map(str::to_owned);
        self.labels.iter().all(|req| match req {
            LabelReq::Eq(k, v) => label(k).as_deref() == Some(v),
            LabelReq::NotEq(k, v) => label(k).as_deref() != Some(v),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.contains(&l)),
            LabelReq::NotIn(k, vs) => label(k).is_none_or(|l| !vs.contains(&l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        })
    }
}

/// Splits a label selector on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_rv(q: &HashMap<String, String>) -> Result<Option<u64>, String> {
    match q.get("resourceVersion").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid resourceVersion {v:?}")),
    }
}

async fn collection(
    kube: Kube,
    gv: &str,
    ns: Option<String>,
    plural: &str,
    q: HashMap<String, String>,
    as_table: bool,
) -> Response {
    let Some(resource) = resolve(gv, plural) else {
        return not_found_path();
    };
    let filter = match Filter::parse(ns, &q) {
        Ok(f) => f,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e, None),
    };
    let rv = match parse_rv(&q) {
        Ok(rv) => rv,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e, None),
    };
    if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) {
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
        return watch(kube, resource, filter, rv, timeout);
    }
    list(&kube, resource, &filter, &q, as_table)
}

fn list(
    kube: &Kube,
    resource: Resource,
    filter: &Filter,
    q: &HashMap<String, String>,
    as_table: bool,
) -> Response {
    let s = kube.store();
    let items: Vec<Value> = s
        .objects
        .iter()
        .filter(|((r, _, _), o)| *r == resource && filter.matches(o))
        .map(|(_, o)| o.clone())
        .collect();
    let rv = s.rv;
    drop(s);
    let offset: usize = q
        .get("continue")
        .and_then(|c| c.split_once(':'))
        .and_then(|(_, o)| o.parse().ok())
        .unwrap_or(0);
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let end = offset.saturating_add(limit).min(items.len());
    let page = items
        .get(offset.min(items.len())..end)
        .unwrap_or(&[])
        .to_vec();
    if as_table {
        let mut t = super::table::table(resource, &page, rv, include_object(q));
        if end < items.len() {
            t["metadata"]["continue"] = json!(format!("{rv}:{end}"));
        }
        return json_ok(t);
    }
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if end < items.len() {
        meta["continue"] = json!(format!("{rv}:{end}"));
        meta["remainingItemCount"] = json!(items.len() - end);
    }
    json_ok(json!({
        "kind": format!("{}List", resource.kind()),
        "apiVersion": resource.api_version(),
        "metadata": meta,
        "items": page,
    }))
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn gone_line(message: &str) -> Bytes {
    event_line(
        "ERROR",
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Expired", "code": 410}),
    )
}

fn stream_response(rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn watch(
    kube: Kube,
    resource: Resource,
    filter: Filter,
    rv: Option<u64>,
    timeout: Duration,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    if kube.take_gone_fault() {
        let line = gone_line(&format!(
            "too old resource version: {} ({})",
            rv.unwrap_or(0),
            kube.store().rv
        ));
        tokio::spawn(async move {
            let _ = tx.send(Ok(line)).await;
        });
        return stream_response(rx);
    }
    // Take the snapshot and subscribe under one lock so no event falls in between.
    let (initial, mut events, mut last) = {
        let s = kube.store();
        let events = kube.subscribe();
        let initial: Result<Vec<Bytes>, Bytes> = match rv {
            None | Some(0) => Ok(s
                .objects
                .iter()
                .filter(|((r, _, _), o)| *r == resource && filter.matches(o))
                .map(|(_, o)| event_line("ADDED", o))
                .collect()),
            Some(from) => match Kube::events_since(&s, from) {
                Ok(evs) => Ok(evs
                    .iter()
                    .filter(|e| e.resource == resource && filter.matches(&e.object))
                    .map(|e| event_line(e.kind.as_str(), &e.object))
                    .collect()),
                Err(oldest) => Err(gone_line(&format!(
                    "too old resource version: {from} ({oldest})"
                ))),
            },
        };
        (initial, events, s.rv)
    };
    kube.count_watch();
    tokio::spawn(async move {
        let lines = match initial {
            Ok(lines) => lines,
            Err(gone) => {
                let _ = tx.send(Ok(gone)).await;
                return;
            }
        };
        for line in lines {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let ev: Arc<Event> = tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                ev = events.recv() => match ev {
                    Ok(ev) => ev,
                    // Lagged or closed: end the watch; the client re-watches from its last version.
                    Err(_) => return,
                },
            };
            if ev.rv <= last || ev.resource != resource || !filter.matches(&ev.object) {
                continue;
            }
            last = ev.rv;
            let kind = match ev.kind {
                EventType::Added => "ADDED",
                EventType::Modified => "MODIFIED",
                EventType::Deleted => "DELETED",
            };
            if tx.send(Ok(event_line(kind, &ev.object))).await.is_err() {
                return;
            }
        }
    });
    stream_response(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn selectors_filter_objects() {
        let obj = json!({"metadata": {"name": "web", "namespace": "web",
            "labels": {"app": "web", "tier": "front"}}});
        for (pairs, want) in [
            (vec![("fieldSelector", "metadata.name=web")], true),
            (vec![("fieldSelector", "metadata.name!=web")], false),
            (
                vec![("labelSelector", "app=web,tier in (front,back)")],
                true,
            ),
            (vec![("labelSelector", "app=web,tier notin (front)")], false),
            (vec![("labelSelector", "!missing,app")], true),
        ] {
            let f = Filter::parse(Some("web".into()), &q(&pairs)).unwrap();
            assert_eq!(f.matches(&obj), want, "{pairs:?}");
        }
        assert!(Filter::parse(None, &q(&[("fieldSelector", "spec.x=1")])).is_err());
    }
}
