//! The sandbox core and its Gitea double, checked against the real `git` client, real HTTP and the
//! official Gitea swagger schemas.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use gitops_sandbox::faults::{FaultKind, FaultRule, Server};
use gitops_sandbox::{demo, Sandbox, SandboxConfig};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Run the real git, blocking, in a worker thread (the servers run on this runtime). The
/// `Authorization` header goes through env config, never argv or the URL.
async fn git(dir: &Path, auth: Option<String>, args: &[&str]) -> Output {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new("git");
        cmd.current_dir(&dir)
            .args(&args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .env("GIT_AUTHOR_NAME", "tester")
            .env("GIT_AUTHOR_EMAIL", "tester@example.com")
            .env("GIT_COMMITTER_NAME", "tester")
            .env("GIT_COMMITTER_EMAIL", "tester@example.com");
        if let Some(header) = auth {
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", header);
        }
        cmd.output().expect("git must be installed")
    })
    .await
    .unwrap()
}

fn token_header(token: &str) -> Option<String> {
    Some(format!("Authorization: token {token}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn demo_url(sandbox: &Sandbox) -> String {
    format!("{}/{}.git", sandbox.gitea_url(), demo::REPOSITORY)
}

/// Clone the demo repository into `parent/name` with the write token.
async fn clone_demo(sandbox: &Sandbox, parent: &Path, name: &str) -> PathBuf {
    let out = git(
        parent,
        token_header(sandbox.token()),
        &["clone", "--quiet", &demo_url(sandbox), name],
    )
    .await;
    assert!(out.status.success(), "clone failed: {}", stderr(&out));
    parent.join(name)
}

/// Commit one new file in a clone and return the commit id.
async fn commit_in_clone(clone: &Path, file: &str, text: &str) -> String {
    std::fs::write(clone.join(file), text).unwrap();
    assert!(git(clone, None, &["add", file]).await.status.success());
    let out = git(clone, None, &["commit", "--quiet", "-m", file]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = git(clone, None, &["rev-parse", "HEAD"]).await;
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_and_push_need_a_write_token() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let work = tempfile::tempdir().unwrap();

    // No credentials: 401 with Gitea's challenge, and git gives up.
    let out = git(
        work.path(),
        None,
        &["clone", "--quiet", &demo_url(&sandbox), "anon"],
    )
    .await;
    assert!(!out.status.success());
    let response = client()
        .get(format!(
            "{}/info/refs?service=git-upload-pack",
            demo_url(&sandbox)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"Gitea\""
    );

    // The write token clones and pushes; the server's branch moves to the pushed commit.
    let clone = clone_demo(&sandbox, work.path(), "writer").await;
    assert!(clone.join(demo::KUSTOMIZATION).is_file());
    let pushed = commit_in_clone(&clone, "pushed.txt", "pushed\n").await;
    let out = git(
        &clone,
        token_header(sandbox.token()),
        &["push", "--quiet", "origin", "main"],
    )
    .await;
    assert!(out.status.success(), "push failed: {}", stderr(&out));
    let head = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap();
    assert_eq!(head.as_deref(), Some(pushed.as_str()));

    // Basic auth with any user and the token as password works too (what actions/checkout does).
    let basic = base64_basic("x-access-token", sandbox.token());
    let out = git(
        work.path(),
        Some(format!("Authorization: Basic {basic}")),
        &["clone", "--quiet", &demo_url(&sandbox), "basic"],
    )
    .await;
    assert!(out.status.success(), "basic clone failed: {}", stderr(&out));

    // The read-only token can clone but its push is refused with 403 and nothing moves.
    let reader = git(
        work.path(),
        token_header(sandbox.read_only_token()),
        &["clone", "--quiet", &demo_url(&sandbox), "reader"],
    )
    .await;
    assert!(reader.status.success(), "{}", stderr(&reader));
    let reader_clone = work.path().join("reader");
    commit_in_clone(&reader_clone, "denied.txt", "no\n").await;
    let out = git(
        &reader_clone,
        token_header(sandbox.read_only_token()),
        &["push", "origin", "main"],
    )
    .await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    let head_after = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await
        .unwrap();
    assert_eq!(head_after.as_deref(), Some(pushed.as_str()));

    // The tokens never reach the request log.
    let log = serde_json::to_string(&sandbox.requests().entries()).unwrap();
    assert!(!log.contains(sandbox.token()) && !log.contains(sandbox.read_only_token()));
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_answer_instead_of_the_server() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let version = format!("{}/api/v1/version", sandbox.gitea_url());
    sandbox.faults().inject(
        FaultRule::new(Server::Gitea, FaultKind::Status(503))
            .path_contains("/version")
            .times(2),
    );
    for _ in 0..2 {
        let response = client().get(&version).send().await.unwrap();
        assert_eq!(response.status(), 503);
    }
    assert_eq!(client().get(&version).send().await.unwrap().status(), 200);

    // A reset: the client gets no response at all.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::Gitea, FaultKind::Reset).method(http::Method::GET));
    let err = client().get(&version).send().await.unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");

    // A stall: the client's own timeout fires.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::Gitea, FaultKind::Timeout));
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = short.get(&version).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // The admin API scripts the same faults over HTTP; `server` defaults to the receiving server.
    let response = client()
        .post(format!("{}/_sandbox/faults", sandbox.gitea_url()))
        .json(&serde_json::json!({"kind": {"status": 502}, "path_contains": "/version"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(client().get(&version).send().await.unwrap().status(), 502);
    assert!(sandbox.faults().pending().is_empty());

    let faults: Vec<_> = sandbox
        .requests()
        .for_server(Server::Gitea)
        .into_iter()
        .filter_map(|r| r.fault)
        .collect();
    assert_eq!(
        faults,
        [
            FaultKind::Status(503),
            FaultKind::Status(503),
            FaultKind::Reset,
            FaultKind::Timeout,
            FaultKind::Status(502)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_port_or_directory_outlives_the_sandbox() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let addr = sandbox.servers()[0].addr();
    let state_dir = sandbox.state_dir().to_owned();
    // A stalled request is in flight when the sandbox goes away.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::Gitea, FaultKind::Timeout));
    let stalled = tokio::spawn(
        client()
            .get(format!("{}/api/v1/version", sandbox.gitea_url()))
            .send(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sandbox.requests().entries().is_empty() {
        assert!(Instant::now() < deadline, "stalled request never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(sandbox);
    // The port refuses connections immediately, and the stalled request ends with an error.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let result = tokio::time::timeout(Duration::from_secs(10), stalled)
        .await
        .expect("stalled request must end when the sandbox drops")
        .unwrap();
    assert!(result.is_err());
    assert!(!state_dir.exists());
}
