//! The deployed app: `GET /version` answers `{"version":"<tag>"}` as one of the ready pods of the
//! target Deployment would. Each request picks a ready pod at random, so during a rollout old and
//! new versions mix in proportion to the ready pods; with no ready pod the answer is 503, as from
//! a Service without endpoints behind an ingress.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::kube::Kube;

/// Which Deployment serves the app.
#[derive(Debug, Clone)]
pub struct AppTarget {
    /// Namespace of the Deployment.
    pub namespace: String,
    /// Name of the Deployment.
    pub deployment: String,
}

#[derive(Clone)]
struct AppState {
    kube: Kube,
    target: AppTarget,
}

/// The app's router: `GET /version`.
pub fn router(kube: Kube, target: AppTarget) -> Router {
    Router::new()
        .route("/version", get(version))
        .with_state(AppState { kube, target })
}

async fn version(State(s): State<AppState>) -> Response {
    let tags = s
        .kube
        .ready_pod_tags(&s.target.namespace, &s.target.deployment);
    if tags.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"error": "no ready pod"}).to_string(),
        )
            .into_response();
    }
    let tag = &tags[rand::random_range(0..tags.len())];
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"version": tag}).to_string(),
    )
        .into_response()
}
