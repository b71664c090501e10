//! A whole GitOps world for the verify tests and the latency benchmark: the sandbox's Gitea (real
//! git, seeded demo repo), its Kubernetes API with the rollout simulator, its Argo CD following the
//! demo repo (app `web-prod`, auto-sync), and the app's `/version`, all on loopback.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result};
use gitops_sandbox::argocd::ArgoCd;
use gitops_sandbox::kube::Kube;
use gitops_sandbox::timing::Timing;
use gitops_sandbox::{demo, Sandbox, SandboxConfig, DEMO_ARGOCD_APP};

/// Argo CD token (JWT-shaped, as the real server requires).
pub const ARGO_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaSJ9.dmVyaWZ5LXRlc3Q";
/// Kubernetes bearer token.
pub const KUBE_TOKEN: &str = "kube-verify-token-0123";
/// The Argo CD app.
pub const APP: &str = DEMO_ARGOCD_APP;
/// How long any one command of a test may run.
pub const LIMIT: Duration = Duration::from_secs(90);

/// Timings for a test world: Argo CD's real 180 s git poll (only a refresh makes it look now), fast
/// pods, a 60 s progress deadline becomes 3 s.
pub fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_secs(180),
        sync_delay: Duration::from_millis(200),
        stale_health: Duration::from_millis(500),
        pod_start_delay: Duration::from_millis(200),
        progress_deadline_scale: 0.05,
        auto_retry_backoff: Duration::from_millis(100),
    }
}

/// The running world: the sandbox with fixed tokens, and short names for what the tests use.
pub struct World {
    /// Gitea, Argo CD, Kubernetes and the app.
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
}

impl World {
    /// Starts everything with the given timings; the app is synced and healthy at tag 1.0.0.
    pub async fn start(timing: Timing) -> Result<World> {
        let sandbox = Sandbox::start(SandboxConfig {
            argocd_token: ARGO_TOKEN.into(),
            kube_token: KUBE_TOKEN.into(),
            timing,
            ..SandboxConfig::default()
        })
        .await?;
        Ok(World {
            argo: sandbox.argocd().clone(),
            kube: sandbox.kube().clone(),
            argo_url: sandbox.argocd_url().to_owned(),
            kube_url: sandbox.kube_url().to_owned(),
            app_url: sandbox.app_url().to_owned(),
            kubeconfig: sandbox.kubeconfig(),
            sandbox,
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

    /// Runs `gitops-deploy wait ARGS...` to completion (bounded by [`LIMIT`]).
    pub async fn wait(&self, args: &[&str]) -> Result<(Output, String)> {
        let mut cmd = self.cli("wait");
        cmd.args(args);
        run(cmd, LIMIT).await
    }

    /// Runs `gitops-deploy wait --commit COMMIT` against the world's Argo CD app, plus `extra`.
    pub async fn wait_on_argo(&self, commit: &str, extra: &[&str]) -> Result<(Output, String)> {
        let mut args = vec![
            "--commit",
            commit,
            "--argocd-server",
            &self.argo_url,
            "--argocd-app",
            APP,
        ];
        args.extend_from_slice(extra);
        self.wait(&args).await
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

    /// [`World::run_args`] for `tag` over `transport`, also waiting for the rollout and the app's
    /// `/version` (which must report `tag`), with short intervals and a 60 s budget; then `extra`.
    pub fn verified_run_args(&self, tag: &str, transport: &str, extra: &[&str]) -> Vec<String> {
        let mut args = self.run_args(tag);
        args.extend(
            [
                "--transport",
                transport,
                "--rollout",
                "auto",
                "--health-url",
                &format!("{}/version", self.app_url),
                "--health-expect-body",
                r#""version":"{tag}""#,
                "--health-interval",
                "200ms",
                "--timeout",
                "60s",
                "--degraded-grace",
                "3s",
            ]
            .iter()
            .chain(extra)
            .map(|s| s.to_string()),
        );
        args
    }

    /// Runs `gitops-deploy run --output json ARGS` (extra environment in `env`); returns the exit
    /// code, the JSON report (the action's outputs) and stderr.
    pub async fn run_json(
        &self,
        args: &[String],
        env: &[(&str, &str)],
    ) -> Result<(i32, serde_json::Value, String)> {
        let mut cmd = self.cli("run");
        cmd.arg("--output").arg("json").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (out, err) = run(cmd, LIMIT).await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        let report = serde_json::from_str(last)
            .with_context(|| format!("no JSON report on stdout: {stdout:?}\n{err}"))?;
        Ok((out.status.code().unwrap_or(-1), report, err))
    }

    /// An Argo CD app following the demo overlay (add it with `argo.add_app`).
    pub fn app_spec(&self, name: &str, auto_sync: bool) -> gitops_sandbox::argocd::AppSpec {
        gitops_sandbox::argocd::AppSpec {
            name: name.into(),
            project: "default".into(),
            repo_url: format!("{}/{}.git", self.sandbox.gitea_url(), demo::REPOSITORY),
            repo_dir: self.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO),
            path: demo::PATH.into(),
            target_revision: demo::BRANCH.into(),
            dest_namespace: demo::NAMESPACE.into(),
            auto_sync,
            other_sources: Vec::new(),
            labels: Default::default(),
        }
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

/// The `error` output of a JSON report (empty when unset): the failure, as the last log line says it.
pub fn error(report: &serde_json::Value) -> &str {
    report["error"].as_str().unwrap_or_default()
}

/// Runs a command to completion with a deadline; returns the output and stderr as text.
pub async fn run(mut cmd: tokio::process::Command, limit: Duration) -> Result<(Output, String)> {
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .context("the command did not finish in time")??;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    Ok((out, err))
}
