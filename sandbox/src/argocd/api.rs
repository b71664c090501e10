//! Argo CD's REST API (grpc-gateway v1.16 over the gRPC services) for the sandbox apps.
//!
//! Error bodies are `{"error","code","message"}` with the HTTP status grpc-gateway maps each gRPC
//! code to (docs/research/argocd-rollout.md §A2.2: FailedPrecondition is 400); stream errors are
//! `{"error":{"grpc_code","http_code","message","http_status"}}`. Non-GET requests must carry exactly
//! `Content-Type: application/json` (else 415 text/plain, §A2.1). Admin routes under `/_sandbox/`
//! inject faults and change timing; they need no token.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{ArgoCd, Error};

/// The router for Argo CD's API and its `/_sandbox/` admin routes.
pub fn router(argo: ArgoCd) -> Router {
    let api = Router::new()
        .route("/api/v1/session/userinfo", get(userinfo))
        .route("/api/v1/applications", get(list_apps))
        .route("/api/v1/applications/{name}", get(get_app))
        .route("/api/v1/applications/{name}/sync", post(sync))
        .route(
            "/api/v1/applications/{name}/resource-tree",
            get(resource_tree),
        )
        .route("/api/v1/applications/{name}/resource", get(resource))
        .route("/api/v1/applications/{name}/syncwindows", get(sync_windows))
        .route("/api/v1/stream/applications", get(stream))
        .layer(middleware::from_fn_with_state(argo.clone(), auth));
    Router::new()
        .merge(api)
        .route("/api/version", get(version))
        .route("/_sandbox/profile", post(admin_profile))
        .route("/_sandbox/scenario/presync-hook", post(admin_presync_hook))
        .route("/_sandbox/scenario/sync-windows", post(admin_sync_windows))
        .route("/_sandbox/faults/stream-cut", post(admin_stream_cut))
        .route("/_sandbox/faults/sync-delay", post(admin_sync_delay))
        .route("/_sandbox/faults/sync-fail", post(admin_sync_fail))
        .route("/_sandbox/time", post(admin_time))
        .route("/_sandbox/scenario/refresh-hang", post(admin_refresh_hang))
        .route("/_sandbox/tokens/get-only", post(admin_get_only_token))
        .fallback(|| async { error(StatusCode::NOT_FOUND, 5, "Not Found") })
        .with_state(argo)
}

/// A grpc-gateway unary error body.
fn error(status: StatusCode, code: u16, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": message, "code": code, "message": message}).to_string(),
    )
        .into_response()
}

/// The HTTP status grpc-gateway v1.16 maps a gRPC code to.
fn http_status(code: u16) -> StatusCode {
    match code {
        3 | 9 | 11 => StatusCode::BAD_REQUEST,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        16 => StatusCode::UNAUTHORIZED,
        14 => StatusCode::SERVICE_UNAVAILABLE,
        4 => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn api_error(e: &Error) -> Response {
    let code = e.grpc_code();
    error(http_status(code), code, &e.to_string())
}

fn json_ok(v: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The request's token: `Authorization: Bearer T`, else the `argocd.token` cookie (server/server.go
/// `getToken`).
fn request_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| {
            c.split(';')
                .find_map(|kv| kv.trim().strip_prefix("argocd.token="))
        });
    bearer.or(cookie)
}

async fn auth(State(argo): State<ArgoCd>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let token = request_token(headers);
    // server/server.go: only a JWT-shaped bearer is parsed as a token at all; anything else carries
    // no session (`jwtutil`: three base64url parts).
    let jwt_shaped = |t: &str| t.split('.').count() == 3 && t.split('.').all(|p| !p.is_empty());
    let message = match token {
        None => Some("no session information"),
        Some(t) if !jwt_shaped(t) => Some("no session information"),
        Some(t) if t == argo.token() || argo.is_get_only(t) => None,
        Some(_) => Some("invalid session: token signature is invalid"),
    };
    if let Some(message) = message {
        // Also for the stream: `Watch` fails before its first message, so grpc-gateway's
        // `stream.Header()` fails and the error is written as a unary body (application.pb.gw.go:163).
        return error(StatusCode::UNAUTHORIZED, 16, message);
    }
    if req.method() != axum::http::Method::GET {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if ct != Some("application/json") {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Invalid content type",
            )
                .into_response();
        }
    }
    next.run(req).await
}

async fn version(State(argo): State<ArgoCd>) -> Response {
    json_ok(
        &json!({"Version": format!("{}+sandbox", argo.profile().version), "BuildDate": "2026-01-01T00:00:00Z",
        "GitCommit": "0000000000000000000000000000000000000000", "GitTreeState": "clean",
        "GoVersion": "go1.24.0", "Compiler": "gc", "Platform": "linux/amd64"}),
    )
}

async fn userinfo() -> Response {
    json_ok(&json!({"loggedIn": true, "username": "admin", "iss": "argocd", "groups": []}))
}

type Params = Query<HashMap<String, String>>;

/// With `?project=`, a missing app is NotFound; without, permission denied (§A2.2).
fn lookup_error(q: &HashMap<String, String>, name: &str, e: Error) -> Response {
    if matches!(e, Error::PermissionDenied) && q.contains_key("project") {
        return api_error(&Error::NotFound(name.to_owned()));
    }
    api_error(&e)
}

/// `getAppEnforceRBAC` (server/application/application.go, v2.14–v3.6): with `?project=P`, an app
/// of another project is answered exactly like a missing one, 404 NotFound.
fn project_mismatch(argo: &ArgoCd, q: &HashMap<String, String>, name: &str) -> Option<Response> {
    match (
        q.get("project").filter(|p| !p.is_empty()),
        argo.app_project(name),
    ) {
        (Some(want), Some(have)) if *want != have => {
            Some(api_error(&Error::NotFound(name.to_owned())))
        }
        _ => None,
    }
}

/// `GET /api/v1/applications?selector=…&projects=…` (server/application/application.go `List`:
/// a label selector that does not parse is a 400; `projects` repeats; the answer is an
/// `ApplicationList` whose `items` is `[]` when nothing matches).
async fn list_apps(
    State(argo): State<ArgoCd>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let selector = match pairs.iter().find(|(k, _)| k == "selector") {
        Some((_, s)) if !s.trim().is_empty() => match super::LabelSelector::parse(s) {
            Some(sel) => Some(sel),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    3,
                    &format!("error parsing selector {s:?}: unable to parse requirement"),
                )
            }
        },
        _ => None,
    };
    let projects: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "projects" || k == "project")
        .map(|(_, v)| v.clone())
        .collect();
    let items = argo.list_json(selector.as_ref(), &projects);
    json_ok(&json!({"metadata": {"resourceVersion": "1"}, "items": items}))
}

async fn get_app(State(argo): State<ArgoCd>, Path(name): Path<String>, q: Params) -> Response {
    if let Some(r) = project_mismatch(&argo, &q, &name) {
        return r;
    }
    let result = match q.get("refresh").map(String::as_str) {
        Some(kind @ ("normal" | "hard")) => argo.refresh(&name, kind).await,
        _ => argo.app_json(&name),
    };
    match result {
        Ok(app) => json_ok(&app),
        Err(e) => lookup_error(&q, &name, e),
    }
}

async fn sync(
    State(argo): State<ArgoCd>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    // server/application/application.go `Sync` (v3.0.0 :1920-1940): RBAC get, then sync windows, then
    // RBAC sync. A role with `applications, get` only is refused with PermissionDenied, the message
    // naming the action and object as util/rbac does.
    let Some(project) = argo.app_project(&name) else {
        return api_error(&Error::PermissionDenied);
    };
    if argo.sync_blocked(&name) {
        return api_error(&Error::SyncWindow);
    }
    if request_token(&headers).is_some_and(|t| argo.is_get_only(t)) {
        return error(
            StatusCode::FORBIDDEN,
            7,
            &format!("permission denied: applications, sync, {project}/{name}, sub: ci-get-only"),
        );
    }
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    3,
                    &format!("invalid request body: {e}"),
                )
            }
        }
    };
    if req["dryRun"] == true {
        return match argo.app_json(&name) {
            Ok(app) => json_ok(&app),
            Err(e) => api_error(&e),
        };
    }
    match argo.sync(&name, req["revision"].as_str(), req["prune"] == true) {
        Ok(app) => json_ok(&app),
        Err(e) => api_error(&e),
    }
}

async fn resource_tree(
    State(argo): State<ArgoCd>,
    Path(name): Path<String>,
    q: Params,
) -> Response {
    if let Some(r) = project_mismatch(&argo, &q, &name) {
        return r;
    }
    match argo.resource_tree(&name) {
        Ok(tree) => json_ok(&tree),
        Err(e) => lookup_error(&q, &name, e),
    }
}

async fn sync_windows(State(argo): State<ArgoCd>, Path(name): Path<String>, q: Params) -> Response {
    if let Some(r) = project_mismatch(&argo, &q, &name) {
        return r;
    }
    match argo.sync_windows_json(&name) {
        Ok(v) => json_ok(&v),
        Err(e) => lookup_error(&q, &name, e),
    }
}

async fn resource(State(argo): State<ArgoCd>, Path(name): Path<String>, q: Params) -> Response {
    if let Some(r) = project_mismatch(&argo, &q, &name) {
        return r;
    }
    let field = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    match argo.live_resource(
        &name,
        field("kind"),
        field("namespace"),
        field("resourceName"),
    ) {
        Ok(obj) => json_ok(&json!({"manifest": obj.to_string()})),
        Err(e) => lookup_error(&q, &name, e),
    }
}

fn stream_line(kind: &str, app: &Value) -> Bytes {
    let mut line = json!({"result": {"type": kind, "application": app}}).to_string();
    line.push('\n');
    Bytes::from(line)
}

async fn stream(State(argo): State<ArgoCd>, q: Params) -> Response {
    let name = q.get("name").filter(|n| !n.is_empty()).cloned();
    // `project` (legacy, preferred when set) or `projects`: apps of other projects are dropped
    // silently, no 403 (server/application/application.go `Watch`, :2980 and :1250-1318).
    let project = q
        .get("project")
        .or_else(|| q.get("projects"))
        .filter(|p| !p.is_empty())
        .cloned();
    let in_scope = {
        let argo = argo.clone();
        move |app_name: &str| {
            project
                .as_ref()
                .is_none_or(|p| argo.app_project(app_name).as_ref() == Some(p))
        }
    };
    let min_rv: u64 = q
        .get("resourceVersion")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let cut = argo.take_stream_cut();
    // Subscribe before the snapshot so no change falls in between.
    let mut updates = argo.subscribe();
    let mut initial = Vec::new();
    // Per app: the version already sent in the snapshot (updates at or below it are stale).
    let mut seen: HashMap<String, u64> = HashMap::new();
    for app_name in argo.app_names() {
        if name.as_ref().is_some_and(|n| *n != app_name) || !in_scope(&app_name) {
            continue;
        }
        if let Ok(app) = argo.app_json(&app_name) {
            let rv: u64 = app["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            seen.insert(app_name.clone(), rv);
            // Argo CD sends the current state first unless it is older than the requested version.
            if rv >= min_rv {
                initial.push(stream_line("ADDED", &app));
            }
        }
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    tokio::spawn(async move {
        let mut sent = 0u32;
        let limit = cut.unwrap_or(u32::MAX);
        for line in initial {
            if sent >= limit || tx.send(Ok(line)).await.is_err() {
                return;
            }
            sent += 1;
        }
        loop {
            if sent >= limit {
                return;
            }
            let update = tokio::select! {
                _ = tx.closed() => return,
                u = updates.recv() => match u {
                    Ok(u) => u,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
            };
            let (rv, app_name, app) = &*update;
            if name.as_ref().is_some_and(|n| n != app_name)
                || !in_scope(app_name)
                || seen.get(app_name).is_some_and(|s| rv <= s)
            {
                continue;
            }
            if tx.send(Ok(stream_line("MODIFIED", app))).await.is_err() {
                return;
            }
            sent += 1;
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn millis(v: &Value, key: &str) -> Option<Duration> {
    v.get(key)
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
}

async fn admin_stream_cut(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    let events = body["after_events"].as_u64().unwrap_or(1) as u32;
    let streams = body["streams"].as_u64().unwrap_or(1) as u32;
    argo.cut_streams_after(events, streams);
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_sync_delay(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    argo.delay_next_sync(millis(&body, "millis").unwrap_or_default());
    StatusCode::NO_CONTENT.into_response()
}

async fn admin_sync_fail(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    let count = body["count"].as_u64().unwrap_or(1) as u32;
    let message = body["message"].as_str().unwrap_or("injected sync failure");
    argo.fail_next_syncs(count, message);
    StatusCode::NO_CONTENT.into_response()
}

/// `{"count": N}`: the next N refresh GETs hang ([`ArgoCd::hang_next_refreshes`]).
async fn admin_refresh_hang(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    argo.hang_next_refreshes(body["count"].as_u64().unwrap_or(1) as u32);
    StatusCode::NO_CONTENT.into_response()
}

/// `{"token": "…"}`: adds a get-only token ([`ArgoCd::add_get_only_token`]).
async fn admin_get_only_token(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    match body["token"].as_str().filter(|t| !t.is_empty()) {
        Some(t) => {
            argo.add_get_only_token(t);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::BAD_REQUEST, 3, "token: required"),
    }
}

async fn admin_time(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    if let Some(d) = millis(&body, "poll_interval_ms") {
        argo.set_poll_interval(d);
    }
    if let Some(d) = millis(&body, "sync_delay_ms") {
        argo.set_sync_delay(d);
    }
    if let Some(d) = millis(&body, "stale_health_ms") {
        argo.set_stale_health(d);
    }
    let t = argo.timing();
    json_ok(
        &json!({"poll_interval_ms": t.poll_interval.as_millis() as u64,
        "sync_delay_ms": t.sync_delay.as_millis() as u64,
        "stale_health_ms": t.stale_health.as_millis() as u64}),
    )
}

/// `{"argocd": "3.0"}`: behave as that release line ([`ArgoCd::set_profile`]); answers the profile.
async fn admin_profile(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    let name = body["argocd"].as_str().unwrap_or_default();
    match crate::profile::ArgoProfile::named(name) {
        Some(p) => {
            argo.set_profile(p);
            json_ok(&json!({"argocd": p.name, "version": p.version}))
        }
        None => error(
            StatusCode::BAD_REQUEST,
            3,
            &format!("argocd: unknown profile {name:?} (2.14, 3.0, 3.4, 3.6)"),
        ),
    }
}

/// `{"app": "web-prod", "millis": 20000}`: each operation of the app first runs a PreSync hook that
/// long (`millis` 0 removes it; [`ArgoCd::set_presync_hook`]).
async fn admin_presync_hook(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    let Some(app) = body["app"].as_str() else {
        return error(StatusCode::BAD_REQUEST, 3, "app: required");
    };
    let d = millis(&body, "millis").filter(|d| !d.is_zero());
    argo.set_presync_hook(app, d);
    StatusCode::NO_CONTENT.into_response()
}

/// `{"project": "default", "windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration": "8h",
/// "manualSync": false, "active": true}]}`: the project's sync windows (`[]` clears them).
async fn admin_sync_windows(State(argo): State<ArgoCd>, Json(body): Json<Value>) -> Response {
    let project = body["project"].as_str().unwrap_or("default");
    let mut windows = Vec::new();
    for w in body["windows"].as_array().into_iter().flatten() {
        let kind = w["kind"].as_str().unwrap_or_default();
        if kind != "allow" && kind != "deny" {
            // pkg/apis/application/v1alpha1/types.go `SyncWindow.Validate`.
            return error(
                StatusCode::BAD_REQUEST,
                3,
                &format!("kind '{kind}' mismatch: can only be allow or deny"),
            );
        }
        windows.push(super::SyncWindow {
            kind: kind.to_owned(),
            schedule: w["schedule"].as_str().unwrap_or("* * * * *").to_owned(),
            duration: w["duration"].as_str().unwrap_or("1h").to_owned(),
            manual_sync: w["manualSync"] == true,
            active: w["active"] != false,
        });
    }
    argo.set_sync_windows(project, windows);
    StatusCode::NO_CONTENT.into_response()
}
