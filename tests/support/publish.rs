//! Shared helpers of the publish tests and the publish benchmark: seeding repositories in the sandbox,
//! building publish configs, inspecting the bare repository with git, and a proxy that lets a write reach
//! the server and then drops the answer ("landed despite an error").
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gitops_deploy::cli::run::PublishArgs;
use gitops_deploy::publish::{Config, RunnerEnv};
use gitops_deploy::retry::RetryPolicy;
use gitops_sandbox::Sandbox;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Owner of the repositories the tests create.
pub const OWNER: &str = "team";

/// A kustomization with `n` images `registry.example.com/team/app-NN` at tag `0.0.0`.
pub fn many_images_kustomization(n: usize) -> String {
    let mut s = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n# the services of team\nresources:\n  - ../../base\nimages:\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "  - name: registry.example.com/team/app-{i:02}\n    newTag: 0.0.0\n"
        ));
    }
    s
}

/// The image name of app `i`.
pub fn app_image(i: usize) -> String {
    format!("registry.example.com/team/app-{i:02}")
}

/// Creates `team/<name>` with branch `main` holding `files`; returns the head.
pub async fn seed_repo(sandbox: &Sandbox, name: &str, files: &[(&str, &str)]) -> String {
    sandbox
        .gitea()
        .create_repo(OWNER, name, "main")
        .await
        .expect("create repo");
    sandbox
        .gitea()
        .commit_files(OWNER, name, "main", files, "seed")
        .await
        .expect("seed repo")
}

/// A publish config for `team/<repo>` on the sandbox, with test-sized timeouts.
pub fn config(
    server: &str,
    repo: &str,
    token: &str,
    path: &str,
    image: &str,
    tag: &str,
    transport: &str,
) -> Config {
    let args = PublishArgs {
        server_url: Some(server.to_owned()),
        repository: Some(format!("{OWNER}/{repo}")),
        branch: Some("main".into()),
        path: vec![path.to_owned()],
        image: Some(image.to_owned()),
        tag: Some(tag.to_owned()),
        token: Some(token.to_owned()),
        transport: Some(transport.to_owned()),
        ..PublishArgs::default()
    };
    let mut c =
        gitops_deploy::cli::publish::config(&args, &RunnerEnv::default()).expect("valid config");
    // Generous: 32 concurrent runs on a busy 2-core machine make the sandbox slow to answer.
    c.request_timeout = Duration::from_secs(20);
    c.timeout = Duration::from_secs(240);
    c.retry = RetryPolicy {
        initial_delay: Duration::from_millis(20),
        factor: 2.0,
        max_delay: Duration::from_millis(800),
        max_attempts: 100,
        max_elapsed: Duration::from_secs(240),
    };
    c
}

/// Runs git on a bare repository and returns stdout; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// True when git exits 0.
pub fn git_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run git")
        .status
        .success()
}

/// The bare repository directory of `team/<name>`.
pub fn repo_dir(sandbox: &Sandbox, name: &str) -> PathBuf {
    sandbox.gitea().repo_dir(OWNER, name)
}

/// The commits in `base..main`, newest first.
pub fn commits_since(dir: &Path, base: &str) -> Vec<String> {
    git(dir, &["rev-list", &format!("{base}..refs/heads/main")])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Files a commit changed relative to its first parent.
pub fn changed_files(dir: &Path, sha: &str) -> Vec<String> {
    git(
        dir,
        &[
            "diff-tree",
            "--no-commit-id",
            "--name-only",
            "-r",
            &format!("{sha}^"),
            sha,
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// A file at a revision.
pub fn show(dir: &Path, rev: &str, path: &str) -> String {
    git(dir, &["show", &format!("{rev}:{path}")])
}

/// The head of `main`.
pub fn head(dir: &Path) -> String {
    git(dir, &["rev-parse", "refs/heads/main"])
        .trim()
        .to_owned()
}

/// A TCP proxy in front of the sandbox. Once armed, the next request whose first line contains
/// `fragment` is forwarded to the server, and as soon as the server starts answering, the client's
/// connection is dropped without the answer: the write landed but the client saw an error.
pub struct DropAnswerProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    armed: Arc<AtomicBool>,
    fired: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DropAnswerProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DropAnswerProxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) that drops the answer to the next request
    /// line containing `fragment` (e.g. `POST /api/v1/repos/team/r/contents `).
    pub async fn start(upstream: &str, fragment: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let armed = Arc::new(AtomicBool::new(true));
        let fired = Arc::new(AtomicBool::new(false));
        let fragment = fragment.as_bytes().to_vec();
        let (a, f) = (armed.clone(), fired.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, fragment, armed, fired) =
                    (upstream.clone(), fragment.clone(), a.clone(), f.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        pump(client, server, &fragment, &armed, &fired).await;
                    }
                });
            }
        });
        DropAnswerProxy {
            url,
            armed,
            fired,
            task,
        }
    }

    /// True once an answer was dropped.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

async fn pump(
    client: TcpStream,
    server: TcpStream,
    fragment: &[u8],
    armed: &AtomicBool,
    fired: &AtomicBool,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let drop_next = Arc::new(AtomicBool::new(false));
    let d = drop_next.clone();
    let frag = fragment.to_vec();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let first_line = buf[..n].split(|b| *b == b'\n').next().unwrap_or(&[]);
            if first_line.windows(frag.len()).any(|w| w == frag.as_slice())
                && armed.swap(false, Ordering::SeqCst)
            {
                d.store(true, Ordering::SeqCst);
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut withheld: Vec<u8> = Vec::new();
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if drop_next.load(Ordering::SeqCst) {
                // Withhold the answer until the server has finished it (so the write is complete,
                // e.g. a push's ref update), then cut the client off without it.
                withheld.extend_from_slice(&buf[..n]);
                if is_complete_response(&withheld) {
                    fired.store(true, Ordering::SeqCst);
                    break;
                }
                continue;
            }
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        if !withheld.is_empty() {
            fired.store(true, Ordering::SeqCst);
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// True when `bytes` hold a whole HTTP response (by `Content-Length`, or the last chunk).
fn is_complete_response(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = bytes.len() - end - 4;
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body >= len;
    }
    if head.contains("transfer-encoding: chunked") {
        return bytes.ends_with(b"0\r\n\r\n");
    }
    false
}
