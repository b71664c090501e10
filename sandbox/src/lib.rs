//! gitops-sandbox: a local GitOps world (Gitea with real git, Argo CD, Kubernetes, the app) on loopback.
//!
//! [`Sandbox::start`] brings every server up on `127.0.0.1` ephemeral ports inside the current tokio
//! runtime; dropping the [`Sandbox`] shuts them all down (ports closed at once, tasks aborted, child
//! git processes killed) and removes its temporary state directory. Faults are scripted through
//! [`Sandbox::faults`] (or `POST /_sandbox/faults` on any server) and every request is recorded in
//! [`Sandbox::requests`] for assertions.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use gitops_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! let head = sandbox.gitea().branch_head("demo", "gitops", "main").await?;
//! println!("{} at {head:?}", sandbox.gitea_url());
//! # Ok(()) }
//! ```

// Gitea's JSON objects are large `json!` literals.
#![recursion_limit = "256"]

pub mod app;
pub mod argocd;
pub mod clock;
pub mod demo;
pub mod eventually;
pub mod faults;
pub mod git;
pub mod gitea;
pub mod http;
pub mod kube;
pub mod local_repo;
pub mod profile;
pub mod render;
pub mod showcase;
pub mod timing;
pub mod tls;

use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::Rng;

use crate::argocd::{AppSpec, ArgoCd};
use crate::faults::{Faults, Server};
use crate::gitea::{Gitea, GiteaConfig};
use crate::http::{HttpServer, Listener, RequestLog};
use crate::kube::Kube;
use crate::timing::Timing;

/// How to start a sandbox. `SandboxConfig::default()` seeds the demo with fresh random tokens in a
/// temporary directory; override fields with struct update syntax.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where repositories and generated files go; `None` means a temporary directory owned (and
    /// removed) by the sandbox.
    pub state_dir: Option<PathBuf>,
    /// The Gitea token with write access (user `demo`).
    pub token: String,
    /// A Gitea token that may only read (user `reader`): pushes and API writes get 403.
    pub read_only_token: String,
    /// Seed the demo GitOps world (see [`demo`]).
    pub seed_demo: bool,
    /// The Argo CD API token (JWT-shaped, as Argo CD only accepts those).
    pub argocd_token: String,
    /// The Kubernetes API bearer token (written into the kubeconfig).
    pub kube_token: String,
    /// Delays of the simulated Argo CD and Kubernetes (poll interval, sync delay, stale health,
    /// pod start, progress deadline scale).
    pub timing: Timing,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            state_dir: None,
            token: random_token(),
            read_only_token: random_token(),
            seed_demo: true,
            argocd_token: random_jwt(),
            kube_token: random_token(),
            timing: Timing::default(),
        }
    }
}

/// A random token shaped like a JWT (`header.payload.signature`, base64url), as Argo CD requires.
pub fn random_jwt() -> String {
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(format!(
            r#"{{"iss":"argocd","sub":"admin:apiKey","jti":"{}"}}"#,
            random_token()
        )
        .as_bytes()),
        b64(random_token().as_bytes())
    )
}

/// The Argo CD application the demo seeds.
pub const DEMO_ARGOCD_APP: &str = "web-prod";

/// Aborts a background task when dropped (the simulator and the controller loop).
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A 40-hex-digit token, shaped like Gitea's access tokens.
pub fn random_token() -> String {
    let mut rng = rand::rng();
    (0..20)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A running sandbox. Dropping it stops every server.
#[derive(Debug)]
pub struct Sandbox {
    // Field order is drop order: servers first (closing ports and killing children), the
    // temporary directory last.
    servers: Vec<HttpServer>,
    _tasks: Vec<AbortOnDrop>,
    config: SandboxConfig,
    state_dir: PathBuf,
    gitea: Gitea,
    faults: Faults,
    requests: RequestLog,
    kube: Kube,
    argocd: ArgoCd,
    argocd_url: String,
    kube_url: String,
    app_url: String,
    _temp: Option<tempfile::TempDir>,
}

impl Sandbox {
    /// Start every server on loopback and, when configured, seed the demo.
    ///
    /// # Errors
    /// The state directory cannot be created, a port cannot be bound, or `git` is missing or fails.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let (temp, state_dir) = match &config.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create state directory {}", dir.display()))?;
                (None, dir.clone())
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("gitops-sandbox-")
                    .tempdir()
                    .context("cannot create a temporary state directory")?;
                let path = temp.path().to_owned();
                (Some(temp), path)
            }
        };
        let repos_root = state_dir.join("repos");
        std::fs::create_dir_all(&repos_root)
            .with_context(|| format!("cannot create {}", repos_root.display()))?;
        let faults = Faults::new();
        let requests = RequestLog::new();

        let gitea_listener = Listener::bind()
            .await
            .context("cannot bind the Gitea port")?;
        let gitea = Gitea::new(
            GiteaConfig {
                repos_root,
                base_url: gitea_listener.url(),
                token: config.token.clone(),
                read_only_token: config.read_only_token.clone(),
            },
            faults.clone(),
        );
        let mut servers = vec![gitea_listener
            .serve(
                Server::Gitea,
                gitea.router(),
                faults.clone(),
                requests.clone(),
            )
            .context("cannot start the Gitea server")?];
        if config.seed_demo {
            demo::seed(&gitea)
                .await
                .context("cannot seed the demo repository")?;
        }

        // Kubernetes, Argo CD and the app (see the `kube`, `argocd` and `app` modules).
        let kube = Kube::new(config.kube_token.clone(), config.timing.kube());
        let kube_listener = Listener::bind()
            .await
            .context("cannot bind the Kubernetes port")?;
        let kube_url = kube_listener.url();
        kube.write_kubeconfig(&state_dir.join("kubeconfig"), &kube_url)?;
        servers.push(
            kube_listener
                .serve(
                    Server::Kube,
                    kube::api::router(kube.clone()),
                    faults.clone(),
                    requests.clone(),
                )
                .context("cannot start the Kubernetes server")?,
        );
        let argocd = ArgoCd::new(
            kube.clone(),
            config.argocd_token.clone(),
            config.timing.argo(),
        );
        if config.seed_demo {
            let spec = AppSpec {
                name: DEMO_ARGOCD_APP.into(),
                project: "default".into(),
                repo_url: format!("{}/{}.git", gitea.url(), demo::REPOSITORY),
                repo_dir: gitea.repo_dir(demo::OWNER, demo::REPO),
                path: demo::PATH.into(),
                target_revision: demo::BRANCH.into(),
                dest_namespace: demo::NAMESPACE.into(),
                auto_sync: true,
                other_sources: Vec::new(),
                labels: Default::default(),
            };
            let seeding = argocd.clone();
            // Seeding renders with git and settles the rollout: keep it off the async workers.
            tokio::task::spawn_blocking(move || seeding.add_app(spec, true))
                .await
                .context("seeding the Argo CD app panicked")?
                .context("cannot seed the Argo CD app")?;
        }
        let tasks = vec![
            AbortOnDrop(kube.spawn_simulator()),
            AbortOnDrop(argocd.spawn_controller()),
        ];
        let argocd_listener = Listener::bind()
            .await
            .context("cannot bind the Argo CD port")?;
        let argocd_url = argocd_listener.url();
        servers.push(
            argocd_listener
                .serve(
                    Server::ArgoCd,
                    argocd::api::router(argocd.clone()),
                    faults.clone(),
                    requests.clone(),
                )
                .context("cannot start the Argo CD server")?,
        );
        let app_listener = Listener::bind().await.context("cannot bind the app port")?;
        let app_url = app_listener.url();
        let target = app::AppTarget {
            namespace: demo::NAMESPACE.into(),
            deployment: demo::WORKLOAD.into(),
        };
        servers.push(
            app_listener
                .serve(
                    Server::App,
                    app::router(kube.clone(), target),
                    faults.clone(),
                    requests.clone(),
                )
                .context("cannot start the app server")?,
        );
        Ok(Sandbox {
            servers,
            _tasks: tasks,
            config,
            state_dir,
            gitea,
            faults,
            requests,
            kube,
            argocd,
            argocd_url,
            kube_url,
            app_url,
            _temp: temp,
        })
    }

    /// Gitea's base URL, `http://127.0.0.1:PORT` (API under `/api/v1`, git under `/{owner}/{repo}.git`).
    pub fn gitea_url(&self) -> &str {
        self.gitea.url()
    }

    /// Serves Gitea over https through a [`tls::TlsFront`] with a CA of its own (as a reverse proxy in
    /// front of Gitea does); `hosts` are extra names the certificate is valid for.
    ///
    /// # Errors
    /// When the front cannot start.
    pub async fn gitea_tls(&self, hosts: &[&str]) -> anyhow::Result<tls::TlsFront> {
        let addr: std::net::SocketAddr = url::Url::parse(self.gitea_url())?
            .socket_addrs(|| None)?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("Gitea has no address"))?;
        tls::TlsFront::start(addr, hosts).await
    }

    /// The Gitea token with write access.
    pub fn token(&self) -> &str {
        &self.config.token
    }

    /// The Gitea token with read access only.
    pub fn read_only_token(&self) -> &str {
        &self.config.read_only_token
    }

    /// The state directory (repositories under `repos/`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The configuration the sandbox was started with.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The Gitea double: repositories, seeding, branch protection, statuses.
    pub fn gitea(&self) -> &Gitea {
        &self.gitea
    }

    /// The fault schedule shared by every server.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The log of requests to every server.
    pub fn requests(&self) -> &RequestLog {
        &self.requests
    }

    /// The running servers (for their addresses).
    pub fn servers(&self) -> &[HttpServer] {
        &self.servers
    }

    /// Argo CD's base URL (API under `/api/v1`, admin under `/_sandbox/`).
    pub fn argocd_url(&self) -> &str {
        &self.argocd_url
    }

    /// The Kubernetes API server's URL (`http://127.0.0.1:PORT`).
    pub fn kube_url(&self) -> &str {
        &self.kube_url
    }

    /// The app's base URL; its endpoint is `{app_url}/version`.
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// The kubeconfig file for the Kubernetes API (server URL and token, mode 0600).
    pub fn kubeconfig(&self) -> PathBuf {
        self.state_dir.join("kubeconfig")
    }

    /// The Argo CD API token.
    pub fn argocd_token(&self) -> &str {
        &self.config.argocd_token
    }

    /// The Kubernetes API token.
    pub fn kube_token(&self) -> &str {
        &self.config.kube_token
    }

    /// The demo's Argo CD application name (`web-prod`).
    pub fn argocd_app(&self) -> &str {
        DEMO_ARGOCD_APP
    }

    /// The simulated Argo CD: apps, faults (`cut_streams_after`, `delay_next_sync`,
    /// `fail_next_syncs`) and timing (`set_poll_interval`, `set_sync_delay`, `set_stale_health`).
    pub fn argocd(&self) -> &ArgoCd {
        &self.argocd
    }

    /// The simulated Kubernetes: objects, faults (`fail_next_watches_with_gone`, `compact`) and
    /// timing (`set_pod_start_delay`, `set_progress_deadline_scale`).
    pub fn kube(&self) -> &Kube {
        &self.kube
    }

    /// What `gitops-sandbox serve` prints: URLs, tokens and the demo's coordinates, as one JSON object.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "gitea_url": self.gitea_url(),
            "gitea_version": self.gitea().version(),
            "gitea_profile": self.gitea().profile().name,
            "argocd_profile": self.argocd().profile().name,
            "token": self.token(),
            "read_only_token": self.read_only_token(),
            "repository": demo::REPOSITORY,
            "branch": demo::BRANCH,
            "path": demo::PATH,
            "image": demo::IMAGE,
            "state_dir": self.state_dir(),
            "argocd_url": self.argocd_url(),
            "argocd_token": self.argocd_token(),
            "argocd_app": self.argocd_app(),
            "kube_url": self.kube_url(),
            "kube_token": self.kube_token(),
            "kubeconfig": self.kubeconfig(),
            "app_url": self.app_url(),
        })
    }
}
