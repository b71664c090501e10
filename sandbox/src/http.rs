//! The HTTP plumbing every sandbox server shares: a loopback listener, a per-request fault hook,
//! a request log and the `/_sandbox/` admin API.
//!
//! How a server uses it (Gitea does exactly this in [`crate::gitea`]):
//!
//! ```no_run
//! # async fn demo(faults: gitops_sandbox::faults::Faults, log: gitops_sandbox::http::RequestLog)
//! # -> std::io::Result<()> {
//! use gitops_sandbox::{faults::Server, http::Listener};
//! let listener = Listener::bind().await?;           // 127.0.0.1:0, the port is known now
//! let url = listener.url();                         // "http://127.0.0.1:PORT", for self links
//! let router = axum::Router::new().route("/version", axum::routing::get(|| async { "v" }));
//! let server = listener.serve(Server::App, router, faults, log)?;
//! // ... `server` serves until it is dropped; dropping it closes the port at once ...
//! # drop(url); drop(server); Ok(())
//! # }
//! ```
//!
//! Each request goes through [`Listener::serve`]'s hook, in this order:
//! 1. `/_sandbox/faults`, `/_sandbox/race` and `/_sandbox/requests` are the shared admin API (see
//!    [`admin_router`]); other `/_sandbox/...` paths go to the server's own router. Neither is logged
//!    nor subject to faults, so tests can always script the next fault.
//! 2. [`Faults::take`] is asked; a matching rule answers instead of the router: a status with a JSON
//!    body, a stall (nothing sent until shutdown or [`STALL_LIMIT`]), or a reset (the connection is
//!    closed with `SO_LINGER 0`, so the client reads a TCP RST and no response).
//! 3. Otherwise the router answers.
//!
//! Every non-admin request is appended to the [`RequestLog`] with its method, path (never the query,
//! which may carry a token), status and fault. Headers and bodies are never logged.
//!
//! Shutdown: dropping the [`HttpServer`] shuts the listening socket down synchronously (new connects
//! are refused from that moment) and aborts the accept task, which owns every connection task, so
//! no socket, stalled request or child process (spawned with `kill_on_drop`) outlives it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::faults::{FaultKind, FaultRule, Faults, Race, Server};

/// The longest an injected [`FaultKind::Timeout`] stalls before answering 504. Far past any client
/// timeout a test would use, yet bounded so a forgotten stall cannot keep a task alive forever.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

/// One request as the log keeps it: no query, no headers, no body (they may carry secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// The server that received it.
    pub server: Server,
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// URL path without the query string.
    pub path: String,
    /// Status sent, or `None` when no response was sent (an injected reset or stall).
    pub status: Option<u16>,
    /// The injected fault that answered instead of the real handler, if any.
    pub fault: Option<FaultKind>,
}

/// The shared, cloneable log of requests of every server of one sandbox, in arrival order.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<Vec<LoggedRequest>>>,
}

impl RequestLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every request logged so far.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        self.lock().clone()
    }

    /// The requests one server received.
    pub fn for_server(&self, server: Server) -> Vec<LoggedRequest> {
        self.lock()
            .iter()
            .filter(|r| r.server == server)
            .cloned()
            .collect()
    }

    /// Forget everything logged so far (e.g. after a test's setup phase).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Append one entry (servers normally leave this to the hook).
    pub fn push(&self, entry: LoggedRequest) {
        self.lock().push(entry);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<LoggedRequest>> {
        // Entries are pushed whole; a poisoned lock still holds a consistent list.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bound loopback listener whose URL is known before the router is built.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Listener {
    /// Bind `127.0.0.1:0` (an ephemeral port on loopback only).
    ///
    /// # Errors
    /// The OS refused the bind.
    pub async fn bind() -> io::Result<Listener> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        Ok(Listener { listener, addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serve `router` until the returned handle is dropped, with the fault hook and request log
    /// described in the module docs.
    ///
    /// # Errors
    /// The listening socket could not be duplicated for the shutdown handle.
    pub fn serve(
        self,
        server: Server,
        router: Router,
        faults: Faults,
        log: RequestLog,
    ) -> io::Result<HttpServer> {
        let std_listener = self.listener.into_std()?;
        // A second descriptor of the same socket lets `Drop` shut it down synchronously while the
        // accept task still owns the first one.
        let control = std_listener.try_clone()?;
        let listener = TcpListener::from_std(std_listener)?;
        let ctx = Arc::new(Ctx {
            server,
            admin: admin_router(server, faults.clone(), log.clone()),
            router,
            faults,
            log,
        });
        let task = tokio::spawn(accept_loop(listener, ctx));
        Ok(HttpServer {
            server,
            url: format!("http://{}", self.addr),
            addr: self.addr,
            control,
            task,
        })
    }
}

/// Bind a loopback port and serve `router` on it (for servers that need not know their URL first).
///
/// # Errors
/// The OS refused the bind.
pub async fn serve(
    server: Server,
    router: Router,
    faults: Faults,
    log: RequestLog,
) -> io::Result<HttpServer> {
    Listener::bind().await?.serve(server, router, faults, log)
}

/// A running server; dropping it shuts it down (see the module docs).
#[derive(Debug)]
pub struct HttpServer {
    server: Server,
    url: String,
    addr: SocketAddr,
    control: std::net::TcpListener,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which server this is.
    pub fn server(&self) -> Server {
        self.server
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        // On Linux, shutting down a listening socket stops it listening right away: queued and new
        // connection attempts are refused, and the pending `accept` fails, ending the task.
        let _ = socket2::SockRef::from(&self.control).shutdown(std::net::Shutdown::Both);
        self.task.abort();
    }
}

struct Ctx {
    server: Server,
    router: Router,
    admin: Router,
    faults: Faults,
    log: RequestLog,
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    // The connection tasks live in this set, so aborting this task (dropping the set) aborts them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, ctx.clone()));
                }
                // After `HttpServer::drop` shut the socket down, accept fails for good.
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => break,
                // Transient (e.g. out of descriptors): back off briefly rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The error a service returns to make hyper drop the connection without a response.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for ResetConnection {}

async fn serve_connection(stream: TcpStream, ctx: Arc<Ctx>) {
    // Keep a duplicate descriptor: after hyper drops its end on an injected reset, closing this one
    // with SO_LINGER 0 turns the close into a TCP RST.
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let Ok(spare) = std_stream.try_clone() else {
        return;
    };
    let Ok(stream) = TcpStream::from_std(std_stream) else {
        return;
    };
    let reset = Arc::new(AtomicBool::new(false));
    let service = {
        let reset = reset.clone();
        hyper::service::service_fn(move |req| handle(ctx.clone(), req, reset.clone()))
    };
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if reset.load(Ordering::SeqCst) {
        let _ = socket2::SockRef::from(&spare).set_linger(Some(Duration::ZERO));
    }
}

async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    reset: Arc<AtomicBool>,
) -> Result<Response, ResetConnection> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let req = req.map(Body::new);
    if let Some(rest) = path.strip_prefix("/_sandbox/") {
        let router = if ADMIN_PATHS.contains(&rest) {
            &ctx.admin
        } else {
            &ctx.router
        };
        return Ok(call(router, req).await);
    }
    let mut entry = LoggedRequest {
        server: ctx.server,
        method: method.as_str().to_owned(),
        path: path.clone(),
        status: None,
        fault: None,
    };
    if let Some(kind) = ctx.faults.take(ctx.server, &method, &path) {
        entry.fault = Some(kind);
        match kind {
            FaultKind::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                entry.status = Some(status.as_u16());
                ctx.log.push(entry);
                return Ok(fault_response(ctx.server, status));
            }
            FaultKind::Timeout => {
                ctx.log.push(entry);
                // Aborting the connection task on shutdown ends this sleep early.
                tokio::time::sleep(STALL_LIMIT).await;
                return Ok(fault_response(ctx.server, StatusCode::GATEWAY_TIMEOUT));
            }
            FaultKind::Reset => {
                ctx.log.push(entry);
                reset.store(true, Ordering::SeqCst);
                return Err(ResetConnection);
            }
        }
    }
    let response = call(&ctx.router, req).await;
    entry.status = Some(response.status().as_u16());
    ctx.log.push(entry);
    Ok(response)
}

async fn call(router: &Router, req: Request<Body>) -> Response {
    match router.clone().oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The body of an injected status, shaped as the faulted server's own errors so clients parse it
/// as they would a real one: Gitea `{message, url}`, Argo CD's grpc-gateway `{error, code, message}`,
/// a Kubernetes `Status`, or plain text for the app.
fn fault_response(server: Server, status: StatusCode) -> Response {
    let code = status.as_u16();
    let message = format!("sandbox: injected fault ({code})");
    match server {
        Server::Gitea => (
            status,
            Json(serde_json::json!({ "message": message, "url": "" })),
        )
            .into_response(),
        Server::ArgoCd => {
            // google.golang.org/grpc/codes, as grpc-gateway maps them back from HTTP.
            let grpc = match code {
                400 => 3,
                401 => 16,
                403 => 7,
                404 => 5,
                409 => 10,
                429 => 8,
                500 => 13,
                501 => 12,
                502 | 503 => 14,
                504 => 4,
                _ => 2,
            };
            (
                status,
                Json(serde_json::json!({ "error": message, "code": grpc, "message": message })),
            )
                .into_response()
        }
        Server::Kube => {
            let reason = match code {
                400 => "BadRequest",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                410 => "Expired",
                429 => "TooManyRequests",
                503 => "ServiceUnavailable",
                504 => "Timeout",
                _ => "InternalError",
            };
            (
                status,
                Json(serde_json::json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": message,
                    "reason": reason,
                    "code": code,
                })),
            )
                .into_response()
        }
        Server::App => (status, message).into_response(),
    }
}

const ADMIN_PATHS: [&str; 3] = ["faults", "race", "requests"];

#[derive(Clone)]
struct AdminState {
    server: Server,
    faults: Faults,
    log: RequestLog,
}

/// A fault rule as posted to `/_sandbox/faults`: like [`FaultRule`], but `server` defaults to the
/// server that received the request.
#[derive(Debug, Deserialize)]
struct PostedRule {
    server: Option<Server>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// The admin API every server carries (not logged, never faulted):
///
/// | request | effect |
/// | --- | --- |
/// | `POST /_sandbox/faults` with a [`FaultRule`] as JSON (`server` optional: defaults to this server) | queue it; 201 with the rule |
/// | `GET /_sandbox/faults` | the pending rules |
/// | `DELETE /_sandbox/faults` | clear rules and races; 204 |
/// | `POST /_sandbox/race` with a [`Race`] as JSON | queue a race before the next write; 201 |
/// | `GET /_sandbox/requests` | the request log of every server |
pub fn admin_router(server: Server, faults: Faults, log: RequestLog) -> Router {
    Router::new()
        .route(
            "/_sandbox/faults",
            post(post_fault).get(get_faults).delete(delete_faults),
        )
        .route("/_sandbox/race", post(post_race))
        .route("/_sandbox/requests", get(get_requests))
        .with_state(AdminState {
            server,
            faults,
            log,
        })
}

async fn post_fault(
    State(state): State<AdminState>,
    Json(posted): Json<PostedRule>,
) -> Result<(StatusCode, Json<FaultRule>), (StatusCode, String)> {
    let mut fields = posted.rest;
    let server = posted.server.unwrap_or(state.server);
    fields.insert(
        "server".into(),
        serde_json::to_value(server).unwrap_or_default(),
    );
    let rule: FaultRule =
        serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid fault rule: {e}"),
            )
        })?;
    state.faults.inject(rule.clone());
    Ok((StatusCode::CREATED, Json(rule)))
}

async fn get_faults(State(state): State<AdminState>) -> Json<Vec<FaultRule>> {
    Json(state.faults.pending())
}

async fn delete_faults(State(state): State<AdminState>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn post_race(
    State(state): State<AdminState>,
    Json(race): Json<Race>,
) -> (StatusCode, Json<Race>) {
    state.faults.race_next_write(race.clone());
    (StatusCode::CREATED, Json(race))
}

async fn get_requests(State(state): State<AdminState>) -> Json<Vec<LoggedRequest>> {
    Json(state.log.entries())
}
