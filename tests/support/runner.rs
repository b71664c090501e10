//! Running the deploy the way a CI runner does: the `INPUT_*` variables of a full sandbox deploy, the
//! runner's own variables with Gitea's paths, and helpers to read the outputs file back.
// Shared by tests/runner.rs (the binary on the host) and tests/image.rs (the image); each uses a part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use gitops_sandbox::{demo, Sandbox};

/// Where the runner's file commands live inside a Gitea job container.
pub const ACT_DIR: &str = "/var/run/act/workflow";
/// The workspace path Gitea's runner uses for `demo/web`.
pub const WORKSPACE: &str = "/workspace/demo/web";

/// One deploy's environment, with a temporary directory standing in for the runner's volumes.
pub struct Deploy {
    vars: Vec<(String, String)>,
    secrets: Vec<String>,
    dir: tempfile::TempDir,
}

/// What a run printed and how it exited.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Deploy {
    /// A deploy of `registry.example.com/demo/web:<tag>` to the sandbox's demo app, with every phase
    /// configured and `report_status` on for the source commit `source_sha`.
    pub fn new(sandbox: &Sandbox, tag: &str, source_sha: &str) -> Deploy {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("act")).unwrap();
        std::fs::create_dir_all(dir.path().join("workspace")).unwrap();
        let kubeconfig = std::fs::read_to_string(sandbox.kubeconfig()).unwrap();
        let config = sandbox.config();
        let inputs = [
            ("SERVER_URL", sandbox.gitea_url().to_owned()),
            ("REPOSITORY", demo::REPOSITORY.to_owned()),
            ("BRANCH", demo::BRANCH.to_owned()),
            ("PATH", demo::PATH.to_owned()),
            ("IMAGE", demo::IMAGE.to_owned()),
            ("TAG", tag.to_owned()),
            ("TOKEN", sandbox.token().to_owned()),
            ("TRANSPORT", "api".to_owned()),
            ("ARGOCD_SERVER", sandbox.argocd_url().to_owned()),
            ("ARGOCD_TOKEN", sandbox.argocd_token().to_owned()),
            ("ARGOCD_APP", sandbox.argocd_app().to_owned()),
            // The YAML itself, as a secret holding it would be passed: a multi-line secret.
            ("KUBECONFIG", kubeconfig),
            ("ROLLOUT", format!("deployment/{}", demo::WORKLOAD)),
            ("NAMESPACE", demo::NAMESPACE.to_owned()),
            ("HEALTH_URL", format!("{}/version", sandbox.app_url())),
            ("HEALTH_EXPECT_BODY", "{tag}".to_owned()),
            ("HEALTH_INTERVAL", "200ms".to_owned()),
            ("HEALTH_SUCCESSES", "2".to_owned()),
            ("TIMEOUT", "90s".to_owned()),
            ("REPORT_STATUS", "true".to_owned()),
            // Declared inputs a workflow leaves out arrive as empty strings.
            ("DIGEST", String::new()),
            ("COMMIT_MESSAGE", String::new()),
            ("ROLLBACK_ON_FAILURE", String::new()),
        ];
        let mut vars: Vec<(String, String)> = inputs
            .into_iter()
            .map(|(k, v)| (format!("INPUT_{k}"), v))
            .collect();
        for (k, v) in [
            ("GITHUB_ACTIONS", "true"),
            ("GITEA_ACTIONS", "true"),
            ("CI", "true"),
            ("GITHUB_SERVER_URL", sandbox.gitea_url()),
            ("GITHUB_REPOSITORY", demo::REPOSITORY),
            ("GITHUB_SHA", source_sha),
            ("GITHUB_RUN_ID", "7"),
            ("RUNNER_TEMP", "/tmp"),
        ] {
            vars.push((k.to_owned(), v.to_owned()));
        }
        vars.push((
            "GITHUB_API_URL".to_owned(),
            format!("{}/api/v1", sandbox.gitea_url()),
        ));
        let secrets = vec![
            config.token.clone(),
            config.argocd_token.clone(),
            config.kube_token.clone(),
        ];
        Deploy { vars, secrets, dir }
    }

    /// Removes one variable (an input a `uses: docker://…` step does not declare).
    pub fn unset(&mut self, name: &str) {
        self.vars.retain(|(k, _)| k != name);
    }

    /// Sets (or replaces) one variable.
    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_owned(), value.to_owned()));
    }

    /// The tokens that must never be printed.
    pub fn secrets(&self) -> &[String] {
        &self.secrets[..2]
    }

    /// Every secret value, including the kube token inside the kubeconfig.
    pub fn all_secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The host directory mounted as the runner's `/var/run/act/workflow`.
    pub fn act_dir(&self) -> PathBuf {
        self.dir.path().join("act")
    }

    /// The host directory mounted as the workspace.
    pub fn workspace_dir(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    /// The outputs file on the host.
    pub fn output_file(&self) -> PathBuf {
        self.act_dir().join("outputcmd.txt")
    }

    /// The summary file on the host.
    pub fn summary_file(&self) -> PathBuf {
        self.act_dir().join("step-summary-1.md")
    }

    /// The environment with paths as seen from `act_dir` and `workspace` (host or container).
    pub fn env(&self, act_dir: &Path, workspace: &Path) -> Vec<(String, String)> {
        let mut vars = self.vars.clone();
        vars.push((
            "GITHUB_OUTPUT".into(),
            act_dir.join("outputcmd.txt").display().to_string(),
        ));
        vars.push((
            "GITHUB_STEP_SUMMARY".into(),
            act_dir.join("step-summary-1.md").display().to_string(),
        ));
        vars.push(("GITHUB_WORKSPACE".into(), workspace.display().to_string()));
        vars
    }

    /// Runs the binary on the host with nothing but this environment (and `PATH`), no arguments,
    /// from the workspace, as a runner's step does.
    pub fn run_binary(&self, bin: &Path) -> Run {
        let out = Command::new(bin)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env(&self.act_dir(), &self.workspace_dir()))
            .current_dir(self.workspace_dir())
            .output()
            .unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The head of the demo branch.
pub async fn head(sandbox: &Sandbox) -> String {
    sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap()
        .expect("the demo branch exists")
}

/// The demo kustomization's text at the branch head.
pub async fn kustomization(sandbox: &Sandbox) -> String {
    let bytes = sandbox
        .gitea()
        .read_file(demo::OWNER, demo::REPO, demo::BRANCH, demo::KUSTOMIZATION)
        .await
        .unwrap()
        .expect("the demo kustomization exists");
    String::from_utf8(bytes).unwrap()
}

/// A sandbox with the demo, and the head of its branch (the source commit a workflow runs for).
pub async fn world() -> (Sandbox, String) {
    let sandbox = Sandbox::start(gitops_sandbox::SandboxConfig::default())
        .await
        .unwrap();
    let source_sha = head(&sandbox).await;
    (sandbox, source_sha)
}

/// Fails when `text` holds any secret of `deploy`.
pub fn assert_no_secret(deploy: &Deploy, text: &str) {
    for (i, secret) in deploy.all_secrets().iter().enumerate() {
        assert!(
            !text.contains(secret.as_str()),
            "secret #{i} leaked:\n{text}"
        );
    }
}

/// Parses an outputs file: `name=value` lines and `name<<DELIM` … `DELIM` blocks, in order.
pub fn outputs_of(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_owned(), value.join("\n")));
        } else {
            let (name, value) = line.split_once('=').expect("name=value");
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}
