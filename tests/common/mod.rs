//! A whole GitOps world for the verify tests and the latency benchmark: the sandbox's Gitea (real
//! git, seeded demo repo), its Kubernetes API with the rollout simulator, its Argo CD following the
//! demo repo (app `web-prod`, auto-sync), and the app's `/version`, all on loopback.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result};
use gitops_sandbox::app::{self, AppTarget};
use gitops_sandbox::argocd::{self, AppSpec, ArgoCd, ArgoTiming};
use gitops_sandbox::kube::{self, Kube, KubeTiming};
use gitops_sandbox::{demo, Sandbox, SandboxConfig};

/// Argo CD token (JWT-shaped, as the real server requires).
pub const ARGO_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaSJ9.dmVyaWZ5LXRlc3Q";
/// Kubernetes bearer token.
pub const KUBE_TOKEN: &str = "kube-verify-token-0123";
/// The Argo CD app.
pub const APP: &str = "web-prod";

/// A served router, aborted on drop.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(router: axum::Router) -> Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Served { url, task })
}

/// Timings for a test world: Argo CD's real 180 s git poll (only a refresh makes it look now).
pub fn argo_timing() -> ArgoTiming {
    ArgoTiming {
        poll_interval: Duration::from_secs(180),
        sync_delay: Duration::from_millis(200),
        stale_health: Duration::from_millis(500),
        tick: Duration::from_millis(20),
    }
}

/// Fast pods; a 60 s progress deadline becomes 3 s.
pub fn kube_timing() -> KubeTiming {
    KubeTiming {
        pod_start_delay: Duration::from_millis(200),
        progress_deadline_scale: 0.05,
        tick: Duration::from_millis(20),
    }
}

/// The running world.
pub struct World {
    /// Gitea and the demo repository.
    pub sandbox: Sandbox,
    /// The Argo CD double.
    pub argo: ArgoCd,
    /// The Kubernetes double.
    pub kube: Kube,
    /// Argo CD base URL.
    pub argo_url: String,
    /// Kubernetes API base URL.
    pub kube_url: String,
    /// The app's base URL (`/version` below it).
    pub app_url: String,
    /// A kubeconfig file for the Kubernetes API.
    pub kubeconfig: PathBuf,
    _served: Vec<Served>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl World {
    /// Starts everything with the given timings; the app is synced and healthy at tag 1.0.0.
    pub async fn start(argo_timing: ArgoTiming, kube_timing: KubeTiming) -> Result<World> {
        let sandbox = Sandbox::start(SandboxConfig::default()).await?;
        let kube = Kube::new(KUBE_TOKEN, kube_timing);
        let argo = ArgoCd::new(kube.clone(), ARGO_TOKEN, argo_timing);
        argo.add_app(
            AppSpec {
                name: APP.into(),
                project: "default".into(),
                repo_url: format!("{}/{}.git", sandbox.gitea_url(), demo::REPOSITORY),
                repo_dir: sandbox.gitea().repo_dir(demo::OWNER, demo::REPO),
                path: demo::PATH.into(),
                target_revision: demo::BRANCH.into(),
                dest_namespace: demo::NAMESPACE.into(),
                auto_sync: true,
            },
            true,
        )
        .context("add the Argo CD app")?;
        let tasks = vec![kube.spawn_simulator(), argo.spawn_controller()];
        let argo_http = serve(argocd::api::router(argo.clone())).await?;
        let kube_http = serve(kube::api::router(kube.clone())).await?;
        let app_http = serve(app::router(
            kube.clone(),
            AppTarget {
                namespace: demo::NAMESPACE.into(),
                deployment: demo::WORKLOAD.into(),
            },
        ))
        .await?;
        let dir = tempfile::tempdir()?;
        let kubeconfig = dir.path().join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig, &kube_http.url)?;
        Ok(World {
            argo_url: argo_http.url.clone(),
            kube_url: kube_http.url.clone(),
            app_url: app_http.url.clone(),
            kubeconfig,
            sandbox,
            argo,
            kube,
            _served: vec![argo_http, kube_http, app_http],
            tasks,
            _dir: dir,
        })
    }

    /// A command running the built binary with no inherited `INPUT_*`, secrets in the environment.
    pub fn cli(&self, subcommand: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_gitops-deploy"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("INPUT_TOKEN", self.sandbox.token())
            .env("INPUT_ARGOCD_TOKEN", ARGO_TOKEN)
            .arg(subcommand)
            .kill_on_drop(true);
        c
    }

    /// `run` arguments that publish `tag` to the demo overlay, with Argo CD.
    pub fn run_args(&self, tag: &str) -> Vec<String> {
        [
            "--server-url",
            self.sandbox.gitea_url(),
            "--repository",
            demo::REPOSITORY,
            "--path",
            demo::PATH,
            "--image",
            demo::IMAGE,
            "--tag",
            tag,
            "--argocd-server",
            &self.argo_url,
            "--argocd-app",
            APP,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The head commit of the demo branch.
    pub async fn head(&self) -> Result<String> {
        self.sandbox
            .gitea()
            .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
            .await?
            .context("the demo branch exists")
    }

    /// The overlay's kustomization at `rev`.
    pub async fn kustomization_at(&self, rev: &str) -> Result<String> {
        let bytes = self
            .sandbox
            .gitea()
            .read_file(demo::OWNER, demo::REPO, rev, demo::KUSTOMIZATION)
            .await?
            .context("the kustomization exists")?;
        Ok(String::from_utf8(bytes)?)
    }

    /// Commits files to the demo branch directly (another pipeline, or a person).
    pub async fn commit(&self, files: &[(&str, &str)], message: &str) -> Result<String> {
        Ok(self
            .sandbox
            .gitea()
            .commit_files(demo::OWNER, demo::REPO, demo::BRANCH, files, message)
            .await?)
    }

    /// Commits the overlay with the image set to `tag`.
    pub async fn commit_tag(&self, tag: &str) -> Result<String> {
        let text = self.kustomization_at(demo::BRANCH).await?;
        let setting =
            gitops_deploy::edit::ImageSetting::deploy(demo::IMAGE, Some(tag), None, None)?;
        let edited = gitops_deploy::edit::set_images(&text, &[setting])?;
        self.commit(
            &[(demo::KUSTOMIZATION, &edited.text)],
            &format!("web {tag}"),
        )
        .await
    }

    /// Tags of the ready pods of the demo Deployment.
    pub fn ready_tags(&self) -> Vec<String> {
        self.kube.ready_pod_tags(demo::NAMESPACE, demo::WORKLOAD)
    }
}

/// Runs a command to completion with a deadline; returns the output and stderr as text.
pub async fn run(mut cmd: tokio::process::Command, limit: Duration) -> Result<(Output, String)> {
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .context("the command did not finish in time")??;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    Ok((out, err))
}
