//! `gitops-sandbox demo`: the README's first command. Starts the sandbox, then runs the real
//! `gitops-deploy` binary exactly as a Gitea runner runs the action (no arguments, `INPUT_*` variables,
//! `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files): first a good release, `1.1.0`, end to end through
//! publish → Argo CD → rollout → HTTP, then a broken one (`broken-1.2.0`, whose pods never start) that
//! is rolled back. It prints the live log as a runner's log viewer shows it, the outputs and the
//! summaries.
//!
//! The deploy runs as a child process, not as a library call: that is the very code a workflow runs,
//! and it keeps this crate independent of the root crate (which dev-depends on this one).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::{demo, Sandbox, SandboxConfig};

/// The release the demo deploys first.
pub const GOOD_TAG: &str = "1.1.0";
/// The release whose pods never become ready (the sandbox's `broken-` convention).
pub const BROKEN_TAG: &str = "broken-1.2.0";

/// What one deploy of the demo did.
#[derive(Debug, Clone)]
pub struct DeployRun {
    /// The tag deployed.
    pub tag: String,
    /// The process's exit code.
    pub exit_code: Option<i32>,
    /// The outputs written to `GITHUB_OUTPUT`, in order.
    pub outputs: Vec<(String, String)>,
    /// The Markdown written to `GITHUB_STEP_SUMMARY`.
    pub summary: String,
    /// The raw log (stderr), workflow commands included.
    pub log: String,
}

impl DeployRun {
    /// The value of one output (empty when absent).
    pub fn output(&self, name: &str) -> &str {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What the whole demo did.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// The good deploy.
    pub good: DeployRun,
    /// The broken deploy.
    pub broken: DeployRun,
    /// The version the app answered after both.
    pub final_version: String,
    /// The secrets the sandbox used (so a test can check none was printed).
    pub secrets: Vec<String>,
    /// Wall-clock time of the whole demo.
    pub elapsed: Duration,
}

/// Runs the demo with the `gitops-deploy` binary at `deploy_bin`, writing the narration to `out`.
///
/// # Errors
/// The sandbox cannot start, the binary cannot be run, or `out` cannot be written. A failing deploy is
/// not an error: the second one is meant to fail.
pub async fn run(deploy_bin: &Path, out: &mut (dyn Write + Send)) -> anyhow::Result<DemoReport> {
    let started = Instant::now();
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .context("cannot start the sandbox")?;
    let config = sandbox.config();
    let secrets = vec![
        config.token.clone(),
        config.argocd_token.clone(),
        config.kube_token.clone(),
    ];
    writeln!(
        out,
        "gitops-deploy demo: a local Gitea ({}), Argo CD ({}), Kubernetes API and the app ({}),\n\
         all on 127.0.0.1. The GitOps repository {} sets {} to {} in {}.\n",
        sandbox.gitea_url(),
        sandbox.argocd_url(),
        sandbox.app_url(),
        demo::REPOSITORY,
        demo::IMAGE,
        demo::TAG,
        demo::KUSTOMIZATION,
    )?;

    writeln!(
        out,
        "━━ 1. Deploy {}:{GOOD_TAG} (publish → Argo CD → rollout → HTTP check) ━━",
        demo::IMAGE
    )?;
    let good = deploy(&sandbox, deploy_bin, GOOD_TAG, out).await?;
    narrate_result(&good, out)?;

    writeln!(
        out,
        "━━ 2. Deploy {}:{BROKEN_TAG}: its pods never start, so it is rolled back ━━",
        demo::IMAGE
    )?;
    let broken = deploy(&sandbox, deploy_bin, BROKEN_TAG, out).await?;
    narrate_result(&broken, out)?;

    let final_version = app_version(&sandbox).await.unwrap_or_default();
    let text = sandbox
        .gitea()
        .read_file(demo::OWNER, demo::REPO, demo::BRANCH, demo::KUSTOMIZATION)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let tag_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("newTag:"))
        .unwrap_or("")
        .trim();
    let elapsed = started.elapsed();
    writeln!(
        out,
        "━━ Done in {:.1} s: {} says `{tag_line}`, and the app answers {final_version:?} ━━",
        elapsed.as_secs_f64(),
        demo::KUSTOMIZATION
    )?;
    Ok(DemoReport {
        good,
        broken,
        final_version,
        secrets,
        elapsed,
    })
}

/// One deploy, run as a Gitea runner runs the action, with its log relayed live.
async fn deploy(
    sandbox: &Sandbox,
    bin: &Path,
    tag: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<DeployRun> {
    let files = tempfile::tempdir().context("cannot create a temporary directory")?;
    let output_file = files.path().join("outputcmd.txt");
    let summary_file = files.path().join("step-summary.md");
    let source_sha = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await?
        .unwrap_or_default();
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(files.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in runner_env(sandbox, tag, &source_sha, &output_file, &summary_file) {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    let stderr = child.stderr.take().expect("piped");
    // The child is read on a blocking thread; lines come back through a channel so the sandbox's
    // servers keep running on this runtime meanwhile.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
        child.wait()
    });
    let mut log = String::new();
    while let Some(line) = rx.recv().await {
        log.push_str(&line);
        log.push('\n');
        if let Some(shown) = as_log_viewer_shows(&line) {
            writeln!(out, "{shown}")?;
        }
    }
    let status = reader.await.context("log reader panicked")??;
    let outputs = read_outputs(&output_file);
    let summary = std::fs::read_to_string(&summary_file).unwrap_or_default();
    Ok(DeployRun {
        tag: tag.to_owned(),
        exit_code: status.code(),
        outputs,
        summary,
        log,
    })
}

/// The environment a Gitea runner gives the action's container for this demo's workflow step.
fn runner_env(
    sandbox: &Sandbox,
    tag: &str,
    source_sha: &str,
    output_file: &Path,
    summary_file: &Path,
) -> Vec<(String, String)> {
    let inputs = [
        ("SERVER_URL", sandbox.gitea_url().to_owned()),
        ("REPOSITORY", demo::REPOSITORY.to_owned()),
        ("BRANCH", demo::BRANCH.to_owned()),
        ("PATH", demo::PATH.to_owned()),
        ("IMAGE", demo::IMAGE.to_owned()),
        ("TAG", tag.to_owned()),
        ("TOKEN", sandbox.token().to_owned()),
        ("ARGOCD_SERVER", sandbox.argocd_url().to_owned()),
        ("ARGOCD_TOKEN", sandbox.argocd_token().to_owned()),
        ("ARGOCD_APP", sandbox.argocd_app().to_owned()),
        ("KUBECONFIG", path_string(&sandbox.kubeconfig())),
        ("ROLLOUT", format!("deployment/{}", demo::WORKLOAD)),
        ("NAMESPACE", demo::NAMESPACE.to_owned()),
        ("HEALTH_URL", format!("{}/version", sandbox.app_url())),
        ("HEALTH_EXPECT_BODY", "{tag}".to_owned()),
        ("HEALTH_INTERVAL", "250ms".to_owned()),
        ("DEGRADED_GRACE", "3s".to_owned()),
        ("ROLLBACK_ON_FAILURE", "true".to_owned()),
        ("REPORT_STATUS", "true".to_owned()),
        ("TIMEOUT", "60s".to_owned()),
    ];
    let mut env: Vec<(String, String)> = inputs
        .into_iter()
        .map(|(k, v)| (format!("INPUT_{k}"), v))
        .collect();
    for (k, v) in [
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITEA_ACTIONS", "true".to_owned()),
        ("GITHUB_SERVER_URL", sandbox.gitea_url().to_owned()),
        ("GITHUB_REPOSITORY", demo::REPOSITORY.to_owned()),
        ("GITHUB_SHA", source_sha.to_owned()),
        ("GITHUB_OUTPUT", path_string(output_file)),
        ("GITHUB_STEP_SUMMARY", path_string(summary_file)),
    ] {
        env.push((k.to_owned(), v));
    }
    env
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

/// A log line as Gitea's log viewer shows it: masks and group ends hidden, groups as headers, errors
/// labelled, workflow-command escapes decoded.
fn as_log_viewer_shows(line: &str) -> Option<String> {
    if line.starts_with("::add-mask::") || line == "::endgroup::" {
        return None;
    }
    if let Some(title) = line.strip_prefix("::group::") {
        return Some(format!("▶ {title}"));
    }
    if let Some(rest) = line.strip_prefix("::error ") {
        let message = rest.split_once("::").map_or(rest, |(_, m)| m);
        return Some(format!("✖ Error: {}", unescape(message)));
    }
    Some(format!("  {line}"))
}

fn unescape(data: &str) -> String {
    data.replace("%0A", "\n           ")
        .replace("%0D", "")
        .replace("%25", "%")
}

fn narrate_result(run: &DeployRun, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
    writeln!(out, "\nexit code {}; outputs:", run.exit_code.unwrap_or(-1))?;
    for (name, value) in &run.outputs {
        writeln!(out, "  {name}={value}")?;
    }
    writeln!(out, "\nstep summary:\n")?;
    for line in run.summary.lines() {
        writeln!(out, "  {line}")?;
    }
    writeln!(out)
}

/// Parses a `GITHUB_OUTPUT` file (`name=value` and `name<<DELIM` blocks); empty if unreadable.
fn read_outputs(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delim).collect();
            out.push((name.to_owned(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

/// The version the app answers now.
async fn app_version(sandbox: &Sandbox) -> Option<String> {
    let url = format!("{}/version", sandbox.app_url());
    let body = tokio::time::timeout(Duration::from_secs(5), http_get(&url))
        .await
        .ok()??;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["version"].as_str().map(str::to_owned)
}

/// A minimal HTTP/1.1 GET over loopback (the sandbox crate has no HTTP client).
async fn http_get(url: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let parsed = url::Url::parse(url).ok()?;
    let addr = format!("{}:{}", parsed.host_str()?, parsed.port()?);
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        parsed.path(),
        parsed.host_str()?
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// The `gitops-deploy` binary next to this executable (both live in `target/<profile>/`), built first
/// when this process was started by `cargo run`, so the demo never runs a stale deploy binary.
///
/// # Errors
/// The build fails, or no binary is found.
pub fn locate_deploy_binary() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot locate this executable")?;
    let dir = me.parent().context("executable has no directory")?;
    if let Some(cargo) = std::env::var_os("CARGO") {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(cargo);
        // `--bin`, not `-p`: features resolve for the workspace's default members (both crates), as for
        // `cargo build` and the test command, so this reuses their build instead of making another.
        build.args(["build", "--bin", "gitops-deploy"]);
        if release {
            build.arg("--release");
        }
        eprintln!("building gitops-deploy …");
        let status = build.status().context("cannot run cargo")?;
        anyhow::ensure!(status.success(), "building gitops-deploy failed");
    }
    let bin = dir.join("gitops-deploy");
    anyhow::ensure!(
        bin.is_file(),
        "{} not found: build it with `cargo build`",
        bin.display()
    );
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_render_as_the_log_viewer_shows_them() {
        assert_eq!(as_log_viewer_shows("::add-mask::abc"), None);
        assert_eq!(as_log_viewer_shows("::endgroup::"), None);
        assert_eq!(
            as_log_viewer_shows("::group::gitops-deploy: publish").as_deref(),
            Some("▶ gitops-deploy: publish")
        );
        assert_eq!(
            as_log_viewer_shows("::error title=gitops-deploy%3A rollout failed::50%25 down%0Anext")
                .as_deref(),
            Some("✖ Error: 50% down\n           next")
        );
    }

    #[test]
    fn reads_single_and_multi_line_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "a=1\nb<<D\nx\ny\nD\nc=\n").unwrap();
        assert_eq!(
            read_outputs(&path),
            [("a", "1"), ("b", "x\ny"), ("c", "")].map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }
}
