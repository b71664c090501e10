//! A small Gitea/Forgejo REST client (`/api/v1`), shaped like octocrab: one cloneable [`Client`] over one
//! `reqwest` client (rustls, connect and read timeouts, a user agent), a handler per resource
//! ([`Client::repo`]) and a builder per endpoint, each ending in `send()`.
//!
//! Only the endpoints the publish step needs exist: version, repository, branch, contents (file and
//! directory), change files (`POST /contents`, one commit for many files), commit and compare. Every
//! non-2xx answer becomes an [`ApiError`] carrying the method, the URL path (never the query), the status
//! and the server's `message`. The token is only ever placed in a sensitive `Authorization` header.
//! Facts about the API: `docs/research/gitea.md` Part C and `sandbox/specs/gitea-swagger.json`.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use url::Url;

use crate::secret::Secret;

pub mod models;
mod pulls;
mod repos;

pub use pulls::{CreatePullBuilder, MergeAnswer, MergePullBuilder, MergeStyle};

pub use repos::{
    ChangeFilesBuilder, CompareBuilder, ContentsHandler, GetBranchBuilder, GetCommitBuilder,
    RepoHandler,
};

/// The user agent every request carries.
pub const USER_AGENT_VALUE: &str = concat!("gitops-deploy/", env!("CARGO_PKG_VERSION"));

/// A failure answered by the server: a non-2xx status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {path}: {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
pub struct ApiError {
    /// HTTP method of the request.
    pub method: Method,
    /// URL path of the request, without query or credentials.
    pub path: String,
    /// The status the server answered.
    pub status: StatusCode,
    /// The server's `message` field (or a short body excerpt when the body is not JSON).
    pub message: String,
}

impl ApiError {
    /// True for an optimistic-concurrency rejection of a contents write: Gitea's 422 "sha does not
    /// match" or Forgejo's 409.
    pub fn is_sha_conflict(&self) -> bool {
        self.status == StatusCode::CONFLICT
            || (self.status == StatusCode::UNPROCESSABLE_ENTITY
                && self.message.contains("sha does not match"))
    }

    /// True when trying again may succeed: a SHA conflict, 429, or a server-side failure (500, 502–504;
    /// Gitea reports a lost race between its own clone and push as a 500). Never 401, 403, 404 or other 422s.
    pub fn is_retryable(&self) -> bool {
        self.is_sha_conflict()
            || matches!(
                self.status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::INTERNAL_SERVER_ERROR
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            )
    }
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with a non-2xx status.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not complete: connect failure, reset, timeout, truncated body.
    #[error("{method} {path}: request failed")]
    Transport {
        /// HTTP method of the request.
        method: Method,
        /// URL path, without query.
        path: String,
        /// The transport error (its URL stripped).
        #[source]
        source: reqwest::Error,
    },
    /// The server answered 2xx with a body we could not read.
    #[error("{method} {path}: unexpected response body")]
    Decode {
        /// HTTP method of the request.
        method: Method,
        /// URL path, without query.
        path: String,
        /// Why the body did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The client could not be built (bad base URL, TLS setup).
    #[error("cannot build the Gitea client for {url}")]
    Build {
        /// The base URL given.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The base URL is not an http(s) URL.
    #[error("not an http(s) base URL: {0}")]
    BadUrl(String),
    /// The token cannot be sent in a header (a control character or non-ASCII byte).
    #[error("the token contains characters that cannot be sent in an HTTP header")]
    BadToken,
}

impl Error {
    /// The API error, when the server answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.api().map(|e| e.status)
    }

    /// See [`ApiError::is_sha_conflict`].
    pub fn is_sha_conflict(&self) -> bool {
        self.api().is_some_and(ApiError::is_sha_conflict)
    }

    /// True when trying again may succeed: see [`ApiError::is_retryable`]; every transport failure
    /// (reset, timeout) is retryable too.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_retryable(),
            Error::Transport { .. } => true,
            Error::Decode { .. } | Error::Build { .. } | Error::BadUrl(_) | Error::BadToken => {
                false
            }
        }
    }

    /// True when a write that failed this way may still have been applied by the server: a timeout or
    /// reset after the request left, or a 5xx. Only a connect failure proves the request never arrived.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Error::Api(e) => e.status.is_server_error(),
            Error::Transport { source, .. } => !source.is_connect(),
            Error::Decode { .. } => true,
            Error::Build { .. } | Error::BadUrl(_) | Error::BadToken => false,
        }
    }
}

/// Builds a [`Client`].
#[derive(Debug)]
pub struct ClientBuilder {
    base: String,
    token: Option<Secret>,
    api_root: bool,
    github: bool,
    extra_roots: Option<crate::tls::ExtraRoots>,
    connect_timeout: Duration,
    read_timeout: Duration,
    request_timeout: Duration,
}

impl ClientBuilder {
    /// Authenticates every request with this token (`Authorization: token …`).
    pub fn token(mut self, token: Option<Secret>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// Takes the base URL as the API root itself (`/api/v1` is not appended): GitHub's
    /// `$GITHUB_API_URL` (`https://api.github.com`), whose commit-status endpoint has the same shape.
    pub fn api_root(mut self) -> Self {
        self.api_root = true;
        self
    }

    /// Talks to GitHub: the base URL is its REST API root ([`ClientBuilder::api_root`]:
    /// `https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise Server), every request
    /// asks for `application/vnd.github+json` at API version `2022-11-28` (the one that still has
    /// `merge_commit_sha`), and GraphQL goes to `/graphql` next to it (`https://HOST/api/graphql` on
    /// Enterprise Server).
    pub fn github(mut self) -> Self {
        self.api_root = true;
        self.github = true;
        self
    }

    /// Trusts these certificate authorities besides the public roots (a server behind a private CA).
    pub fn extra_roots(mut self, roots: Option<crate::tls::ExtraRoots>) -> Self {
        self.extra_roots = roots;
        self
    }

    /// Time allowed to open a connection (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Time allowed between two reads of a response (default 20 s).
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// Time allowed for a whole request (default 60 s).
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`Error::BadUrl`] for a base URL that is not http(s), [`Error::Build`] if TLS cannot be set up.
    pub fn build(self) -> Result<Client, Error> {
        let mut base = Url::parse(&self.base).map_err(|_| Error::BadUrl(self.base.clone()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::BadUrl(self.base));
        }
        base.set_query(None);
        base.set_fragment(None);
        let trimmed = base.path().trim_end_matches('/').to_owned();
        if self.api_root {
            base.set_path(&trimmed);
        } else {
            base.set_path(&format!("{trimmed}/api/v1"));
        }

        let graphql = self.github.then(|| {
            let mut g = base.clone();
            let root = base.path().trim_end_matches('/');
            match root.strip_suffix("/v3") {
                Some(api) => g.set_path(&format!("{api}/graphql")),
                None => g.set_path(&format!("{root}/graphql")),
            }
            g
        });
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if self.github {
            headers.insert(
                reqwest::header::ACCEPT,
                HeaderValue::from_static("application/vnd.github+json"),
            );
            headers.insert(
                "x-github-api-version",
                HeaderValue::from_static("2022-11-28"),
            );
        }
        if let Some(token) = &self.token {
            // The only place the token is formatted; the header is marked sensitive so that reqwest and
            // hyper never print it.
            let mut value = HeaderValue::from_str(&format!("token {}", token.expose()))
                .map_err(|_| Error::BadToken)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let mut http = reqwest::Client::builder();
        if let Some(roots) = &self.extra_roots {
            http = roots.add_to(http);
        }
        let http = http
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .timeout(self.request_timeout)
            // Redirects could carry the Authorization header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| Error::Build {
                url: self.base.clone(),
                source: source.without_url(),
            })?;
        Ok(Client {
            http,
            api: base,
            graphql,
        })
    }
}

/// A Gitea/Forgejo API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    api: Url,
    /// GitHub's GraphQL endpoint (clients built with [`ClientBuilder::github`]).
    graphql: Option<Url>,
}

impl Client {
    /// Starts building a client for the server at `base` (e.g. `https://gitea.example.com`, with or
    /// without a sub-path); `/api/v1` is appended.
    pub fn builder(base: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base.into(),
            token: None,
            api_root: false,
            github: false,
            extra_roots: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(60),
        }
    }

    /// `GET /version`: the server's version string (public, no token needed).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn version(&self) -> Result<models::ServerVersion, Error> {
        self.send(Method::GET, &["version"], &[], None::<&()>).await
    }

    /// The handler for one repository.
    pub fn repo(&self, owner: impl Into<String>, name: impl Into<String>) -> RepoHandler<'_> {
        RepoHandler::new(self, owner.into(), name.into())
    }

    /// The single place requests are made: builds the URL from path segments (each percent-encoded),
    /// sends, maps non-2xx to [`ApiError`] and decodes the JSON body.
    pub(crate) async fn send<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<T, Error> {
        let (_, path, bytes) = self.exchange(method.clone(), segments, query, body).await?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            method,
            path,
            source,
        })
    }

    /// Like [`Client::send`] for endpoints that answer without a body (or one we do not read): the
    /// 2xx status they answered.
    pub(crate) async fn send_for_status<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<StatusCode, Error> {
        Ok(self.exchange(method, segments, query, body).await?.0)
    }

    /// A GitHub GraphQL request (`{"query": …, "variables": …}`); GraphQL errors come back as 200
    /// with an `errors` member, which `T` reads.
    pub(crate) async fn send_graphql<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        body: &B,
    ) -> Result<T, Error> {
        let url = self
            .graphql
            .clone()
            .ok_or_else(|| Error::BadUrl("GraphQL needs a client built for GitHub".to_owned()))?;
        let (_, path, bytes) = self.exchange_url(Method::POST, url, Some(body)).await?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            method: Method::POST,
            path,
            source,
        })
    }

    /// Sends one request; a non-2xx answer becomes an [`ApiError`]. Returns the status, the URL path
    /// and the body.
    async fn exchange<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<(StatusCode, String, bytes::Bytes), Error> {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("base URL checked at build time")
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.exchange_url(method, url, body).await
    }

    async fn exchange_url<B: Serialize + ?Sized>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<(StatusCode, String, bytes::Bytes), Error> {
        let path = url.path().to_owned();
        let mut req = self.http.request(method.clone(), url);
        if let Some(body) = body {
            req = req.json(body);
        }
        let transport = |source: reqwest::Error| Error::Transport {
            method: method.clone(),
            path: path.clone(),
            source: source.without_url(),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        // Redirects are not followed (the token must not travel to another address); name where the
        // server points instead: an http→https redirect or a renamed repository (docs/research/field-gitea.md §7).
        let redirect = status
            .is_redirection()
            .then(|| resp.headers().get(reqwest::header::LOCATION).cloned())
            .flatten();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let message = match redirect.as_ref().and_then(|l| l.to_str().ok()) {
                Some(location) => redirect_message(location),
                None => error_message(&bytes),
            };
            return Err(ApiError {
                method,
                path,
                status,
                message,
            }
            .into());
        }
        Ok((status, path, bytes))
    }
}

/// What to say about a redirect to `location` (its query and any credentials left out).
fn redirect_message(location: &str) -> String {
    let shown = match Url::parse(location) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        Err(_) => location.split('?').next().unwrap_or_default().to_owned(),
    };
    format!(
        "the server redirects to {shown}; redirects are not followed, so that the token goes only \
         where it was meant to: set server_url (or repository) to the address it redirects to"
    )
}

/// The `message` of a Gitea error body, or a short excerpt of a non-JSON body.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        message: String,
        /// GitHub's validation details: `{"message": "Validation Failed", "errors": [{"message":
        /// "A pull request already exists for owner:branch."}]}`.
        #[serde(default)]
        errors: serde_json::Value,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => {
            let details: Vec<&str> = b
                .errors
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["message"].as_str())
                .collect();
            if details.is_empty() {
                b.message.trim().to_owned()
            } else {
                format!("{}: {}", b.message.trim(), details.join("; "))
            }
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let mut excerpt: String = text.chars().take(200).collect();
            if excerpt.len() < text.len() {
                excerpt.push('…');
            }
            excerpt
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> ApiError {
        ApiError {
            method: Method::POST,
            path: "/api/v1/repos/o/r/contents".into(),
            status: StatusCode::from_u16(status).unwrap(),
            message: message.into(),
        }
    }

    #[test]
    fn classifies_statuses() {
        for (status, message, conflict, retryable) in [
            (
                422,
                "sha does not match [given: a, expected: b]",
                true,
                true,
            ),
            (409, "", true, true),
            (422, "repository file already exists", false, false),
            (500, "", false, true),
            (502, "", false, true),
            (503, "", false, true),
            (504, "", false, true),
            (429, "", false, true),
            (401, "", false, false),
            (403, "user cannot commit to repo", false, false),
            (404, "", false, false),
        ] {
            let e = api(status, message);
            assert_eq!(e.is_sha_conflict(), conflict, "{status} {message}");
            assert_eq!(e.is_retryable(), retryable, "{status} {message}");
        }
    }

    #[test]
    fn redirects_name_where_they_point_without_secrets() {
        let m = redirect_message("https://user:pw@git.example.com/api/v1/repos/o/r?token=x");
        assert!(
            m.starts_with("the server redirects to https://git.example.com/api/v1/repos/o/r;"),
            "{m}"
        );
        assert!(!m.contains("pw") && !m.contains("token=x"), "{m}");
        assert!(redirect_message("/api/v1/repos/o/new?x=1").contains("/api/v1/repos/o/new;"));
    }

    #[test]
    fn error_names_method_path_status_and_message() {
        let e = api(403, "user cannot commit to repo [user: bot]");
        assert_eq!(
            e.to_string(),
            "POST /api/v1/repos/o/r/contents: 403 Forbidden: user cannot commit to repo [user: bot]"
        );
        assert_eq!(error_message(b"<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_message(br#"{"message":"x","url":"u"}"#), "x");
        assert_eq!(error_message(br#"{"message":"x","errors":null}"#), "x");
        assert_eq!(error_message(br#"{"message":"x","errors":["a"]}"#), "x");
        assert_eq!(
            error_message(
                br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for o:b."}]}"#
            ),
            "Validation Failed: A pull request already exists for o:b."
        );
    }

    #[test]
    fn base_url_gets_api_prefix_and_keeps_sub_path() {
        let c = Client::builder("http://127.0.0.1:3000/gitea/")
            .build()
            .unwrap();
        assert_eq!(c.api.as_str(), "http://127.0.0.1:3000/gitea/api/v1");
        assert!(matches!(
            Client::builder("ftp://x").build(),
            Err(Error::BadUrl(_))
        ));
    }
}
