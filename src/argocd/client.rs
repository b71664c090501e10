//! The Argo CD REST client: one `reqwest::Client`, Bearer auth, handlers and builders per endpoint.
//!
//! Written from `sandbox/specs/argocd-swagger.json` (docs/research/argocd-rollout.md A2). Quirks it honours:
//! - non-GET requests carry exactly `Content-Type: application/json` (the server compares the whole
//!   header; `; charset=utf-8` gets a 415);
//! - `?refresh=normal` blocks server-side until the controller reconciled, with no server timeout, so
//!   every unary call has a client-side timeout;
//! - failures come as grpc-gateway bodies `{error, code, message}`, or as anything a proxy injects.
//!
//! The token is exposed only while the `Authorization` header is built and never formatted.

use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::models::{
    Application, ApplicationTree, ResourceResponse, RuntimeError, StreamLine, SyncRequest,
    SyncWindows, WatchEvent,
};
use super::{ApiError, Error};
use crate::secret::Secret;
use crate::text::excerpt;

/// How to reach and trust the Argo CD API server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL (`https://argocd.example.com`, plus a root path if the server uses one).
    pub server: url::Url,
    /// The API token (a JWT).
    pub token: Secret,
    /// Extra CA certificates to trust (`argocd_ca`).
    pub ca: Option<crate::tls::ExtraRoots>,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// Timeout of one unary request (a refresh can take as long as a reconciliation).
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// A config with the default timeouts (60 s per request).
    pub fn new(server: url::Url, token: Secret) -> Self {
        ClientConfig {
            server,
            token,
            ca: None,
            insecure: false,
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// The Argo CD API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Secret,
    request_timeout: Duration,
}

/// `refresh` query values of `GET /api/v1/applications/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Re-resolve the branch and compare (enough to notice a fresh push).
    Normal,
    /// Also regenerate manifests (drops the repo-server cache).
    Hard,
}

impl Refresh {
    fn as_str(self) -> &'static str {
        match self {
            Refresh::Normal => "normal",
            Refresh::Hard => "hard",
        }
    }
}

impl Client {
    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::Ca`] when TLS cannot be set up with the CA, [`Error::Build`] otherwise.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("gitops-deploy/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .danger_accept_invalid_certs(config.insecure);
        if let Some(ca) = &config.ca {
            builder = ca.add_to(builder);
        }
        // A bad certificate only surfaces when the TLS config is built.
        let has_ca = config.ca.is_some();
        let http = builder.build().map_err(|source| {
            if has_ca {
                Error::Ca { source }
            } else {
                Error::Build { source }
            }
        })?;
        let mut base = config.server;
        // A base without a trailing slash would make `join` drop its last segment (a root path).
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Client {
            http,
            base,
            token: config.token,
            request_timeout: config.request_timeout,
        })
    }

    /// The applications endpoints.
    pub fn apps(&self) -> AppsHandler<'_> {
        AppsHandler { client: self }
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> url::Url {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .expect("relative API path joins a base URL");
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    fn request(&self, method: Method, url: url::Url) -> reqwest::RequestBuilder {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer invalid"));
        auth.set_sensitive(true);
        self.http.request(method, url).header(AUTHORIZATION, auth)
    }

    /// Sends a unary request and decodes the 2xx body; any other status becomes an [`ApiError`].
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<T, Error> {
        let url = self.url(path, query);
        let mut req = self.request(method.clone(), url).timeout(timeout);
        if let Some(body) = body {
            // Exactly this value: the server's content-type allow-list is an exact match (A2.1).
            req = req
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        let resp = req.send().await.map_err(|source| Error::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            source,
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|source| Error::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            source,
        })?;
        if !status.is_success() {
            return Err(Error::Api(api_error(&method, path, status, &bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            method: method.to_string(),
            path: path.to_owned(),
            source,
        })
    }
}

/// Maps a failed response to an [`ApiError`]: the grpc-gateway `message` when the body is one, else a
/// short excerpt of whatever a proxy sent.
fn api_error(method: &Method, path: &str, status: StatusCode, body: &[u8]) -> ApiError {
    let message = match serde_json::from_slice::<RuntimeError>(body) {
        Ok(e) if e.message.is_some() || e.error.is_some() => {
            e.message.or(e.error).unwrap_or_default()
        }
        _ => excerpt(&String::from_utf8_lossy(body), 200),
    };
    ApiError {
        method: method.to_string(),
        path: path.to_owned(),
        status: status.as_u16(),
        message,
    }
}

/// Handler for `/api/v1/applications/...` and `/api/v1/stream/applications`.
#[derive(Debug, Clone, Copy)]
pub struct AppsHandler<'c> {
    client: &'c Client,
}

impl<'c> AppsHandler<'c> {
    /// `GET /api/v1/applications/{name}`.
    pub fn get(self, name: &str) -> GetApp<'c> {
        GetApp {
            client: self.client,
            name: name.to_owned(),
            refresh: None,
            scope: Scope::default(),
            timeout: None,
        }
    }

    /// `GET /api/v1/applications`: the applications the token may see, by label selector, projects
    /// and app namespace.
    pub fn list(self) -> ListApps<'c> {
        ListApps {
            client: self.client,
            selector: None,
            projects: Vec::new(),
            app_namespace: None,
        }
    }

    /// `POST /api/v1/applications/{name}/sync` with an empty revision (the app's target revision).
    pub fn sync(self, name: &str) -> SyncApp<'c> {
        SyncApp {
            client: self.client,
            name: name.to_owned(),
            scope: Scope::default(),
            prune: None,
        }
    }

    /// `GET /api/v1/stream/applications?name=…`: NDJSON watch events.
    pub fn stream(self, name: &str) -> StreamApp<'c> {
        StreamApp {
            client: self.client,
            name: name.to_owned(),
            scope: Scope::default(),
            resource_version: None,
        }
    }

    /// `GET /api/v1/applications/{name}/syncwindows`.
    pub fn sync_windows(self, name: &str) -> GetSyncWindows<'c> {
        GetSyncWindows {
            client: self.client,
            name: name.to_owned(),
            scope: Scope::default(),
        }
    }

    /// `GET /api/v1/applications/{name}/resource-tree`.
    pub fn resource_tree(self, name: &str) -> GetTree<'c> {
        GetTree {
            client: self.client,
            name: name.to_owned(),
            scope: Scope::default(),
        }
    }

    /// `GET /api/v1/applications/{name}/resource`: one live resource's manifest.
    pub fn resource(self, name: &str, res: &ResourceKey) -> GetResource<'c> {
        GetResource {
            client: self.client,
            name: name.to_owned(),
            scope: Scope::default(),
            key: res.clone(),
        }
    }
}

/// `appNamespace` and `project` query parameters shared by every builder.
#[derive(Debug, Clone, Default)]
struct Scope {
    app_namespace: Option<String>,
    project: Option<String>,
}

impl Scope {
    fn push(&self, q: &mut Vec<(&'static str, String)>) {
        if let Some(ns) = &self.app_namespace {
            q.push(("appNamespace", ns.clone()));
        }
        if let Some(p) = &self.project {
            q.push(("project", p.clone()));
        }
    }
}

macro_rules! scoped {
    ($t:ident) => {
        impl $t<'_> {
            /// Namespace of the Application object (apps-in-any-namespace).
            pub fn app_namespace(mut self, ns: Option<&str>) -> Self {
                self.scope.app_namespace = ns.map(str::to_owned);
                self
            }
            /// Project; with it the server answers 404 instead of 403 for a missing app.
            pub fn project(mut self, project: Option<&str>) -> Self {
                self.scope.project = project.map(str::to_owned);
                self
            }
        }
    };
}

/// Builder of `GET /api/v1/applications/{name}`.
#[derive(Debug)]
pub struct GetApp<'c> {
    client: &'c Client,
    name: String,
    refresh: Option<Refresh>,
    scope: Scope,
    timeout: Option<Duration>,
}
scoped!(GetApp);

impl GetApp<'_> {
    /// Ask the controller to reconcile first; the call then returns only once it has.
    pub fn refresh(mut self, refresh: Refresh) -> Self {
        self.refresh = Some(refresh);
        self
    }

    /// Overrides the client's request timeout for this call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    /// [`Error::Api`] for a non-2xx answer, [`Error::Transport`] for a network failure or timeout.
    pub async fn send(self) -> Result<Application, Error> {
        let mut q = Vec::new();
        if let Some(r) = self.refresh {
            q.push(("refresh", r.as_str().to_owned()));
        }
        self.scope.push(&mut q);
        let path = format!("api/v1/applications/{}", enc(&self.name));
        let timeout = self.timeout.unwrap_or(self.client.request_timeout);
        self.client
            .send(Method::GET, &path, &q, None, timeout)
            .await
    }
}

/// Builder of `GET /api/v1/applications` (argo-cd `server/application/application.go` `List`:
/// `selector` is a Kubernetes label selector, `projects` repeats; the answer is an
/// `v1alpha1ApplicationList`).
#[derive(Debug)]
pub struct ListApps<'c> {
    client: &'c Client,
    selector: Option<String>,
    projects: Vec<String>,
    app_namespace: Option<String>,
}

impl ListApps<'_> {
    /// Only apps whose labels match this selector (`team=web,env in (prod,staging)`).
    pub fn selector(mut self, selector: Option<&str>) -> Self {
        self.selector = selector.map(str::to_owned);
        self
    }

    /// Only apps of this project.
    pub fn project(mut self, project: Option<&str>) -> Self {
        self.projects.extend(project.map(str::to_owned));
        self
    }

    /// Only apps in this namespace (apps in any namespace).
    pub fn app_namespace(mut self, ns: Option<&str>) -> Self {
        self.app_namespace = ns.map(str::to_owned);
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    /// [`Error::Api`] for a non-2xx answer, [`Error::Transport`] for a network failure or timeout.
    pub async fn send(self) -> Result<Vec<Application>, Error> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct List {
            items: Option<Vec<Application>>,
        }
        let mut q = Vec::new();
        if let Some(s) = self.selector {
            q.push(("selector", s));
        }
        for p in self.projects {
            q.push(("projects", p));
        }
        if let Some(ns) = self.app_namespace {
            q.push(("appNamespace", ns));
        }
        let list: List = self
            .client
            .send(
                Method::GET,
                "api/v1/applications",
                &q,
                None,
                self.client.request_timeout,
            )
            .await?;
        Ok(list.items.unwrap_or_default())
    }
}

/// Builder of `POST /api/v1/applications/{name}/sync`.
#[derive(Debug)]
pub struct SyncApp<'c> {
    client: &'c Client,
    name: String,
    scope: Scope,
    prune: Option<bool>,
}
scoped!(SyncApp);

impl SyncApp<'_> {
    /// Prune resources no longer in git.
    pub fn prune(mut self, prune: bool) -> Self {
        self.prune = Some(prune);
        self
    }

    /// Sends the request. No `revision` is sent: for auto-sync apps that would be a 400 (A2.4), and
    /// an empty one syncs the target revision resolved now.
    ///
    /// # Errors
    /// As [`GetApp::send`]; [`Error::is_operation_in_progress`] tells the retryable 400.
    pub async fn send(self) -> Result<Application, Error> {
        let body = SyncRequest {
            app_namespace: self.scope.app_namespace.clone(),
            project: self.scope.project.clone(),
            prune: self.prune,
        };
        let body = serde_json::to_vec(&body).expect("sync request serializes");
        let path = format!("api/v1/applications/{}/sync", enc(&self.name));
        let timeout = self.client.request_timeout;
        self.client
            .send(Method::POST, &path, &[], Some(body), timeout)
            .await
    }
}

/// Builder of `GET /api/v1/applications/{name}/resource-tree`.
#[derive(Debug)]
pub struct GetTree<'c> {
    client: &'c Client,
    name: String,
    scope: Scope,
}
scoped!(GetTree);

impl GetTree<'_> {
    /// Sends the request.
    ///
    /// # Errors
    /// As [`GetApp::send`].
    pub async fn send(self) -> Result<ApplicationTree, Error> {
        let mut q = Vec::new();
        self.scope.push(&mut q);
        let path = format!("api/v1/applications/{}/resource-tree", enc(&self.name));
        let timeout = self.client.request_timeout;
        self.client
            .send(Method::GET, &path, &q, None, timeout)
            .await
    }
}

/// Builder of `GET /api/v1/applications/{name}/syncwindows`.
#[derive(Debug)]
pub struct GetSyncWindows<'c> {
    client: &'c Client,
    name: String,
    scope: Scope,
}
scoped!(GetSyncWindows);

impl GetSyncWindows<'_> {
    /// Sends the request.
    ///
    /// # Errors
    /// As [`GetApp::send`].
    pub async fn send(self) -> Result<SyncWindows, Error> {
        let mut q = Vec::new();
        self.scope.push(&mut q);
        let path = format!("api/v1/applications/{}/syncwindows", enc(&self.name));
        let timeout = self.client.request_timeout;
        self.client
            .send(Method::GET, &path, &q, None, timeout)
            .await
    }
}

/// Identifies one live resource of an application.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// API group (`apps`).
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Builder of `GET /api/v1/applications/{name}/resource`.
#[derive(Debug)]
pub struct GetResource<'c> {
    client: &'c Client,
    name: String,
    scope: Scope,
    key: ResourceKey,
}
scoped!(GetResource);

impl GetResource<'_> {
    /// Sends the request and parses the live manifest (a JSON string in the response).
    ///
    /// # Errors
    /// As [`GetApp::send`]; [`Error::Decode`] when the manifest is not a JSON object.
    pub async fn send(self) -> Result<serde_json::Value, Error> {
        let mut q = vec![
            ("namespace", self.key.namespace.clone()),
            ("resourceName", self.key.name.clone()),
            ("version", self.key.version.clone()),
            ("group", self.key.group.clone()),
            ("kind", self.key.kind.clone()),
        ];
        self.scope.push(&mut q);
        let path = format!("api/v1/applications/{}/resource", enc(&self.name));
        let timeout = self.client.request_timeout;
        let resp: ResourceResponse = self
            .client
            .send(Method::GET, &path, &q, None, timeout)
            .await?;
        serde_json::from_str(resp.manifest.as_deref().unwrap_or("null")).map_err(|source| {
            Error::Decode {
                method: "GET".into(),
                path,
                source,
            }
        })
    }
}

/// Builder of `GET /api/v1/stream/applications`.
#[derive(Debug)]
pub struct StreamApp<'c> {
    client: &'c Client,
    name: String,
    scope: Scope,
    resource_version: Option<String>,
}
scoped!(StreamApp);

impl StreamApp<'_> {
    /// Resume after this resource version (the server skips older states).
    pub fn resource_version(mut self, rv: Option<&str>) -> Self {
        self.resource_version = rv.map(str::to_owned);
        self
    }

    /// Opens the stream. The returned stream yields one event per NDJSON `result` line; an `error`
    /// line or a broken connection yields an error and ends it (the caller reconnects).
    ///
    /// # Errors
    /// [`Error::Api`] when the server refuses the stream (e.g. 401, or a proxy's 502/504).
    pub async fn send(self) -> Result<BoxStream<'static, Result<WatchEvent, Error>>, Error> {
        let mut q = vec![("name", self.name.clone())];
        if let Some(ns) = &self.scope.app_namespace {
            q.push(("appNamespace", ns.clone()));
        }
        if let Some(p) = &self.scope.project {
            q.push(("project", p.clone()));
        }
        if let Some(rv) = &self.resource_version {
            q.push(("resourceVersion", rv.clone()));
        }
        let path = "api/v1/stream/applications".to_owned();
        let url = self.client.url(&path, &q);
        let resp = self
            .client
            .request(Method::GET, url)
            .send()
            .await
            .map_err(|source| Error::Transport {
                method: "GET".into(),
                path: path.clone(),
                source,
            })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(Error::Api(api_error(&Method::GET, &path, status, &body)));
        }
        Ok(ndjson_events(resp.bytes_stream().boxed(), path))
    }
}

/// Splits a byte stream into NDJSON lines and decodes each as a [`StreamLine`].
fn ndjson_events(
    bytes: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    path: String,
) -> BoxStream<'static, Result<WatchEvent, Error>> {
    struct St {
        bytes: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
        buf: Vec<u8>,
        path: String,
        done: bool,
    }
    let st = St {
        bytes,
        buf: Vec::new(),
        path,
        done: false,
    };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(pos) = st.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = st.buf.drain(..=pos).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                let item = decode_line(line, &st.path);
                if item.is_err() {
                    st.done = true;
                }
                return Some((item, st));
            }
            match st.bytes.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                Some(Err(source)) => {
                    st.done = true;
                    let err = Error::Transport {
                        method: "GET".into(),
                        path: st.path.clone(),
                        source,
                    };
                    return Some((Err(err), st));
                }
                None => {
                    st.done = true;
                    let rest = std::mem::take(&mut st.buf);
                    let rest = rest.trim_ascii();
                    if rest.is_empty() {
                        return None;
                    }
                    return Some((decode_line(rest, &st.path), st));
                }
            }
        }
    })
    .boxed()
}

fn decode_line(line: &[u8], path: &str) -> Result<WatchEvent, Error> {
    let parsed: StreamLine = serde_json::from_slice(line).map_err(|source| Error::Decode {
        method: "GET".into(),
        path: path.to_owned(),
        source,
    })?;
    if let Some(err) = parsed.error {
        return Err(Error::Api(ApiError {
            method: "GET".into(),
            path: path.to_owned(),
            status: err.http_code.unwrap_or(500),
            message: err.message.unwrap_or_default(),
        }));
    }
    parsed.result.ok_or_else(|| {
        Error::Api(ApiError {
            method: "GET".into(),
            path: path.to_owned(),
            status: 200,
            message: format!(
                "stream line without result: {}",
                excerpt(&String::from_utf8_lossy(line), 120)
            ),
        })
    })
}

/// Percent-encodes one path segment.
fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
