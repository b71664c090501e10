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
pub mod demo;
pub mod faults;
pub mod git;
pub mod gitea;
pub mod http;
pub mod kube;
pub mod render;

use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::Rng;

use crate::faults::{Faults, Server};
use crate::gitea::{Gitea, GiteaConfig};
use crate::http::{HttpServer, Listener, RequestLog};

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
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            state_dir: None,
            token: random_token(),
            read_only_token: random_token(),
            seed_demo: true,
        }
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
    config: SandboxConfig,
    state_dir: PathBuf,
    gitea: Gitea,
    faults: Faults,
    requests: RequestLog,
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
        let servers = vec![gitea_listener
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
        Ok(Sandbox {
            servers,
            config,
            state_dir,
            gitea,
            faults,
            requests,
            _temp: temp,
        })
    }

    /// Gitea's base URL, `http://127.0.0.1:PORT` (API under `/api/v1`, git under `/{owner}/{repo}.git`).
    pub fn gitea_url(&self) -> &str {
        self.gitea.url()
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

    /// What `gitops-sandbox serve` prints: URLs, tokens and the demo's coordinates, as one JSON object.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "gitea_url": self.gitea_url(),
            "token": self.token(),
            "read_only_token": self.read_only_token(),
            "repository": demo::REPOSITORY,
            "branch": demo::BRANCH,
            "path": demo::PATH,
            "image": demo::IMAGE,
            "state_dir": self.state_dir(),
        })
    }
}
