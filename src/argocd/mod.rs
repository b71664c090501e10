//! Argo CD: the REST client ([`Client`]), its models ([`models`]), the pure verdict ([`verdict`]) and
//! the phase that makes Argo CD look now, syncs when needed and waits ([`phase`]).
//!
//! Only this module talks to Argo CD. It never reads cluster credentials: everything it learns about
//! live resources comes through the Argo CD API.

pub mod apps;
mod client;
pub mod models;
pub mod phase;
pub mod verdict;

pub use client::{
    AppsHandler, Client, ClientConfig, GetApp, GetResource, GetSyncWindows, GetTree, ListApps,
    Refresh, ResourceKey, StreamApp, SyncApp,
};

/// A non-2xx answer of the Argo CD API: method, path (no query, no credentials), status and the
/// server's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} /{path}: HTTP {status}: {message}")]
pub struct ApiError {
    /// HTTP method.
    pub method: String,
    /// URL path below the server's base URL.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// The grpc-gateway `message`, or an excerpt of a non-JSON body.
    pub message: String,
}

/// Errors of the Argo CD client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not complete (connection refused, reset, timeout).
    #[error("{method} /{path}: request failed")]
    Transport {
        /// HTTP method.
        method: String,
        /// URL path.
        path: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON the swagger describes.
    #[error("{method} /{path}: unexpected response body")]
    Decode {
        /// HTTP method.
        method: String,
        /// URL path.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// TLS could not be set up with the `argocd_ca` certificates.
    #[error("argocd_ca: not a valid PEM certificate bundle")]
    Ca {
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the Argo CD HTTP client")]
    Build {
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(e) => Some(e.status),
            _ => None,
        }
    }

    /// True for "another operation is already in progress" (a 400 from `SetAppOperation`): wait and
    /// re-check instead of failing (docs/research/argocd-rollout.md A2.4).
    pub fn is_operation_in_progress(&self) -> bool {
        matches!(self, Error::Api(e) if e.message.contains("another operation is already in progress"))
    }

    /// True when a sync window refused the sync: 403 "cannot sync: blocked by sync window"
    /// (server/application/application.go `Sync`, v2.14–v3.6).
    pub fn is_sync_window_block(&self) -> bool {
        matches!(self, Error::Api(e) if e.status == 403 && e.message.contains("blocked by sync window"))
    }

    /// True when the server could not resolve the target revision for a sync: 400 FailedPrecondition
    /// "error resolving repo revision: …" (`Sync`, :2234). Often transient (the repo server restarting,
    /// a DNS hiccup), sometimes not (bad credentials): worth a few more tries, not many.
    pub fn is_revision_unresolved(&self) -> bool {
        matches!(self, Error::Api(e) if e.status == 400 && e.message.contains("error resolving repo revision"))
    }

    /// True when a resource asked for is not (yet) part of the application. Argo CD's `GetResource`
    /// answers 400 InvalidArgument "… not found as part of application …" for that
    /// (server/application/application.go, `getAppLiveResource`; docs/research/field-argocd.md §6), and 404 when
    /// the object is in the tree but gone from the cluster.
    pub fn is_resource_not_found(&self) -> bool {
        match self {
            Error::Api(e) => {
                e.status == 404
                    || (e.status == 400 && e.message.contains("not found as part of application"))
            }
            _ => false,
        }
    }

    /// True for failures worth another try: transport errors, 429, 5xx.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api(e) => e.status == 429 || e.status >= 500,
            _ => false,
        }
    }
}
