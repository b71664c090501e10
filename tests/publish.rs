//! Integration tests of the publish step against the sandbox's Gitea (real git behind a real HTTP API):
//! both transports, idempotency, 32 concurrent runs, injected faults, a write that lands despite an error,
//! clean failures, and the token never leaking. CLI cases run the built binary.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use gitops_deploy::error::chain;
use gitops_deploy::publish::{self, UsedTransport};
use gitops_deploy::report::Report;
use gitops_deploy::secret::Masker;
use gitops_sandbox::faults::{FaultKind, FaultRule, Race, Server};
use gitops_sandbox::{Sandbox, SandboxConfig};
use support::publish::*;

const OVERLAY: &str = "apps/team/overlays/prod";
const KUSTOMIZATION: &str = "apps/team/overlays/prod/kustomization.yaml";

async fn world(repo: &str, images: usize) -> (Sandbox, String) {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let k = many_images_kustomization(images);
    let head = seed_repo(
        &sandbox,
        repo,
        &[
            (KUSTOMIZATION, &k),
            ("apps/team/base/kustomization.yaml", "resources: []\n"),
            ("README.md", "team gitops\n"),
        ],
    )
    .await;
    (sandbox, head)
}

fn quiet() -> Report {
    Report::capture(Masker::new()).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_transport_lands_one_commit_and_a_rerun_is_a_no_op() {
    let (sandbox, _) = world("one", 2).await;
    let dir = repo_dir(&sandbox, "one");
    for (transport, tag) in [("api", "1.1.0"), ("git", "2.2.0")] {
        let before = head(&dir);
        let config = config(
            sandbox.gitea_url(),
            "one",
            sandbox.token(),
            OVERLAY,
            &app_image(1),
            tag,
            transport,
        );
        let out = publish::run(&config, &quiet()).await.expect("publish");
        assert!(out.changed, "{transport}");
        assert_eq!(
            out.transport,
            if transport == "api" {
                UsedTransport::Api
            } else {
                UsedTransport::Git
            }
        );
        assert_eq!(
            out.commit_sha,
            head(&dir),
            "{transport}: reported sha is the head"
        );
        assert_eq!(
            commits_since(&dir, &before),
            std::slice::from_ref(&out.commit_sha),
            "{transport}: one commit"
        );
        assert_eq!(
            changed_files(&dir, &out.commit_sha),
            [KUSTOMIZATION],
            "{transport}"
        );
        let text = show(&dir, &out.commit_sha, KUSTOMIZATION);
        assert!(
            text.contains(&format!("app-01\n    newTag: {tag}\n")),
            "{transport}: {text}"
        );
        assert!(
            text.contains("app-00\n    newTag: 0.0.0\n"),
            "{transport}: other entries untouched"
        );
        let meta = git(
            &dir,
            &["log", "-1", "--format=%an|%ae|%cn|%ce", &out.commit_sha],
        );
        assert_eq!(
            meta.trim(),
            "gitops-deploy|gitops-deploy@noreply.invalid|gitops-deploy|gitops-deploy@noreply.invalid",
            "{transport}"
        );
        let message = git(&dir, &["log", "-1", "--format=%B", &out.commit_sha]);
        let subject = message.lines().next().unwrap();
        assert_eq!(
            subject,
            format!("deploy {} {tag} to {OVERLAY}", app_image(1)),
            "{transport}"
        );
        assert!(
            message.contains(&format!("{}: ", app_image(1))),
            "{message}"
        );
        assert!(message.contains("[skip ci]"), "{message}");
        assert!(message.contains("Deploy-Id: "), "{message}");
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].images[0].new, tag);
        assert_eq!(
            out.commit_url,
            format!("{}/team/one/commit/{}", sandbox.gitea_url(), out.commit_sha)
        );

        let again = publish::run(&config, &quiet()).await.expect("rerun");
        assert!(!again.changed, "{transport}: rerun changes nothing");
        assert_eq!(
            again.commit_sha, out.commit_sha,
            "{transport}: rerun reports the head"
        );
        assert_eq!(
            commits_since(&dir, &before).len(),
            1,
            "{transport}: rerun made no commit"
        );
        assert_eq!(again.files[0].images[0].previous.as_deref(), Some(tag));
    }
}

/// 32 concurrent runs (16 per transport) in one repository. `same_file`: each sets a different image
/// in one file; otherwise each sets the same image in its own overlay. With `race`, the sandbox lands
/// a racing commit on the edited file before each of the first 32 writes.
/// The concurrent scenarios run one at a time: each already loads the machine with 32 runs.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn concurrent(same_file: bool, race: bool) {
    const RUNS: usize = 32;
    let _one_at_a_time = HEAVY.lock().await;
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let mut files: Vec<(String, String)> = Vec::new();
    if same_file {
        files.push((KUSTOMIZATION.into(), many_images_kustomization(RUNS)));
    } else {
        for i in 0..RUNS {
            files.push((
                format!("apps/team/overlays/env-{i:02}/kustomization.yaml"),
                many_images_kustomization(1),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let base = seed_repo(&sandbox, "busy", &refs).await;
    let dir = repo_dir(&sandbox, "busy");
    if race {
        for i in 0..RUNS {
            sandbox.faults().race_next_write(Race {
                repository: "team/busy".into(),
                branch: "main".into(),
                path: files[if same_file { 0 } else { i }].0.clone(),
            });
        }
    }
    let mut tasks = Vec::new();
    for i in 0..RUNS {
        let transport = if i % 2 == 0 { "api" } else { "git" };
        let (path, image) = if same_file {
            (OVERLAY.to_owned(), app_image(i))
        } else {
            (format!("apps/team/overlays/env-{i:02}"), app_image(0))
        };
        let config = config(
            sandbox.gitea_url(),
            "busy",
            sandbox.token(),
            &path,
            &image,
            &format!("1.0.{i}"),
            transport,
        );
        tasks.push(tokio::spawn(async move {
            publish::run(&config, &quiet()).await
        }));
    }
    let mut outcomes = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        outcomes.push(
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("run {i}: {}", chain(&e))),
        );
    }
    let head = head(&dir);
    let new: Vec<String> = commits_since(&dir, &base);
    let ours: Vec<&String> = new
        .iter()
        .filter(|c| git(&dir, &["log", "-1", "--format=%B", c]).contains("Deploy-Id: "))
        .collect();
    let racing = new
        .iter()
        .filter(|c| git(&dir, &["log", "-1", "--format=%an", c]).trim() == "racer")
        .count();
    eprintln!(
        "new commits {} ours {} racing {racing}",
        new.len(),
        ours.len()
    );
    assert_eq!(ours.len(), RUNS, "exactly one commit per run");
    assert_eq!(new.len(), RUNS + racing, "no other commits");
    assert_eq!(racing > 0, race, "racing commits landed only when injected");
    let shas: BTreeSet<&String> = outcomes.iter().map(|o| &o.commit_sha).collect();
    assert_eq!(shas.len(), RUNS, "every run reports its own commit");
    for (i, o) in outcomes.iter().enumerate() {
        assert!(o.changed, "run {i}");
        assert!(
            git_ok(&dir, &["merge-base", "--is-ancestor", &o.commit_sha, &head]),
            "run {i}: in history"
        );
        let (file, entry) = if same_file {
            (
                KUSTOMIZATION.to_owned(),
                format!("app-{i:02}\n    newTag: 1.0.{i}\n"),
            )
        } else {
            (
                format!("apps/team/overlays/env-{i:02}/kustomization.yaml"),
                format!("app-00\n    newTag: 1.0.{i}\n"),
            )
        };
        assert!(
            show(&dir, &o.commit_sha, &file).contains(&entry),
            "run {i}: its commit holds its change"
        );
        assert!(
            show(&dir, &head, &file).contains(&entry),
            "run {i}: the head still holds its change; history of {file}:\n{}",
            git(&dir, &["log", "--format=%h %p %an %s", "--", &file])
        );
    }
    let mut ms: Vec<u128> = outcomes.iter().map(|o| o.elapsed.as_millis()).collect();
    ms.sort();
    let attempts: u32 = outcomes.iter().map(|o| o.attempts).sum();
    let most = outcomes.iter().map(|o| o.attempts).max().unwrap_or(0);
    println!(
        "32 concurrent (same_file={same_file}, race={race}): p50 {} ms, p99 {} ms, max {} ms, {attempts} attempts (at most {most} in one run)",
        ms[ms.len() / 2],
        ms[(ms.len() * 99).div_ceil(100) - 1],
        ms[ms.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_runs_lose_no_update() {
    concurrent(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_runs_lose_no_update_despite_races() {
    concurrent(true, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_runs_in_separate_overlays() {
    concurrent(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn injected_errors_on_reads_and_writes_are_survived() {
    let (sandbox, _) = world("flaky", 2).await;
    let dir = repo_dir(&sandbox, "flaky");
    let faults = sandbox.faults();
    let cases: [(&str, Vec<FaultRule>); 2] = [
        (
            "api",
            vec![
                FaultRule::new(Server::Gitea, FaultKind::Status(503))
                    .path_contains("/branches/")
                    .times(2),
                FaultRule::new(Server::Gitea, FaultKind::Reset)
                    .method(reqwest::Method::GET)
                    .path_contains("/contents/"),
                FaultRule::new(Server::Gitea, FaultKind::Status(502))
                    .method(reqwest::Method::GET)
                    .path_contains("/contents/"),
                FaultRule::new(Server::Gitea, FaultKind::Timeout)
                    .method(reqwest::Method::POST)
                    .path_contains("/contents"),
                FaultRule::new(Server::Gitea, FaultKind::Status(500))
                    .method(reqwest::Method::POST)
                    .path_contains("/contents"),
                FaultRule::new(Server::Gitea, FaultKind::Reset)
                    .method(reqwest::Method::POST)
                    .path_contains("/contents"),
            ],
        ),
        (
            "git",
            vec![
                FaultRule::new(Server::Gitea, FaultKind::Status(503)).path_contains("/info/refs"),
                FaultRule::new(Server::Gitea, FaultKind::Reset).path_contains("git-upload-pack"),
                FaultRule::new(Server::Gitea, FaultKind::Status(500))
                    .path_contains("git-receive-pack"),
                FaultRule::new(Server::Gitea, FaultKind::Reset).path_contains("git-receive-pack"),
            ],
        ),
    ];
    for (i, (transport, rules)) in cases.into_iter().enumerate() {
        let before = head(&dir);
        for r in rules {
            faults.inject(r);
        }
        let tag = format!("3.0.{i}");
        let mut config = config(
            sandbox.gitea_url(),
            "flaky",
            sandbox.token(),
            OVERLAY,
            &app_image(0),
            &tag,
            transport,
        );
        // The injected stall must turn into a timeout quickly.
        config.request_timeout = Duration::from_secs(3);
        let (report, log) = Report::capture(Masker::new());
        let out = publish::run(&config, &report)
            .await
            .unwrap_or_else(|e| panic!("{transport}: {}\n{}", chain(&e), log.text()));
        assert!(
            faults.pending().is_empty(),
            "{transport}: every fault fired: {:?}",
            faults.pending()
        );
        assert!(
            out.attempts > 1 || log.text().contains("attempt"),
            "{transport}: retried\n{}",
            log.text()
        );
        assert_eq!(
            commits_since(&dir, &before),
            std::slice::from_ref(&out.commit_sha),
            "{transport}: exactly one commit"
        );
        assert!(show(&dir, "refs/heads/main", KUSTOMIZATION).contains(&format!("newTag: {tag}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_landed_despite_an_error_is_not_repeated() {
    let (sandbox, _) = world("landed", 2).await;
    let dir = repo_dir(&sandbox, "landed");
    for (transport, fragment) in [
        ("api", "POST /api/v1/repos/team/landed/contents "),
        ("git", "POST /team/landed.git/git-receive-pack "),
    ] {
        let before = head(&dir);
        let proxy = DropAnswerProxy::start(sandbox.gitea_url(), fragment).await;
        let tag = format!("4.0.0-{transport}");
        let config = config(
            &proxy.url,
            "landed",
            sandbox.token(),
            OVERLAY,
            &app_image(0),
            &tag,
            transport,
        );
        let (report, log) = Report::capture(Masker::new());
        let out = publish::run(&config, &report)
            .await
            .unwrap_or_else(|e| panic!("{transport}: {}\n{}", chain(&e), log.text()));
        assert!(proxy.fired(), "{transport}: the answer was dropped");
        assert!(
            log.text().contains("landed despite the error"),
            "{transport}: {}",
            log.text()
        );
        assert_eq!(
            commits_since(&dir, &before),
            std::slice::from_ref(&out.commit_sha),
            "{transport}: no duplicate commit"
        );
        assert!(out.changed);
        assert_eq!(
            out.files[0].images[0].previous.as_deref(),
            Some(if transport == "api" {
                "0.0.0"
            } else {
                "4.0.0-api"
            })
        );
    }
}

// ---- the binary ----

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run_bin(args: &[&str], env: &[(&str, &str)], path_prefix: Option<&Path>) -> Ran {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gitops-deploy"));
    let path = std::env::var("PATH").unwrap_or_default();
    let path = match path_prefix {
        Some(p) => format!("{}:{path}", p.display()),
        None => path,
    };
    cmd.env_clear()
        .env("PATH", path)
        .env("HOME", std::env::temp_dir())
        .args(args)
        .envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("binary finished in time")
        .expect("run binary");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn base_args<'a>(server: &'a str, transport: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--server-url",
        server,
        "--repository",
        "team/guarded",
        "--path",
        OVERLAY,
        "--image",
        "registry.example.com/team/app-00",
        "--tag",
        "9.9.9",
        "--transport",
        transport,
    ]
}

/// A sandbox with `team/guarded` holding one kustomization; returns it and the bare repository.
async fn guarded() -> (Sandbox, std::path::PathBuf) {
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let k = many_images_kustomization(1);
    seed_repo(&sandbox, "guarded", &[(KUSTOMIZATION, &k)]).await;
    let dir = repo_dir(&sandbox, "guarded");
    (sandbox, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_fail_clearly_and_write_nothing() {
    let (sandbox, dir) = guarded().await;
    let before = head(&dir);
    let url = sandbox.gitea_url().to_owned();
    for transport in ["api", "git"] {
        let args = base_args(&url, transport);
        let r = run_bin(&args, &[("INPUT_TOKEN", "0123456789abcdef-wrong")], None).await;
        assert_eq!(r.code, 1, "{transport} wrong token: {}", r.stderr);
        assert!(
            r.stderr
                .contains("publish: the server refused the token (401)"),
            "{transport}: {}",
            r.stderr
        );

        let r = run_bin(&args, &[("INPUT_TOKEN", sandbox.read_only_token())], None).await;
        assert_eq!(r.code, 1, "{transport} read-only: {}", r.stderr);
        assert!(
            r.stderr
                .contains("not allowed to write to branch \"main\" of team/guarded"),
            "{transport}: {}",
            r.stderr
        );

        sandbox
            .gitea()
            .protect_branch(OWNER, "guarded", "main")
            .unwrap();
        let r = run_bin(&args, &[("INPUT_TOKEN", sandbox.token())], None).await;
        sandbox
            .gitea()
            .unprotect_branch(OWNER, "guarded", "main")
            .unwrap();
        assert_eq!(r.code, 1, "{transport} protected: {}", r.stderr);
        assert!(
            r.stderr.contains("not allowed to write to branch \"main\""),
            "{transport}: {}",
            r.stderr
        );
        // docs/research/field-gitea.md ranked #2: the job token can never push to a protected branch; say what to do.
        assert!(
            r.stderr
                .contains("job token never is; set `token` to a personal access token"),
            "{transport}: {}",
            r.stderr
        );

        let mut missing = args.clone();
        missing[6] = "apps/nope";
        let r = run_bin(&missing, &[("INPUT_TOKEN", sandbox.token())], None).await;
        assert_eq!(r.code, 2, "{transport} missing path: {}", r.stderr);
        assert!(
            r.stderr
                .contains("path \"apps/nope\" not found on branch \"main\""),
            "{transport}: {}",
            r.stderr
        );

        let mut branch = args.clone();
        branch.extend(["--branch", "nope"]);
        let r = run_bin(&branch, &[("INPUT_TOKEN", sandbox.token())], None).await;
        assert_eq!(r.code, 2, "{transport} missing branch: {}", r.stderr);
        assert!(
            r.stderr.contains("branch \"nope\" not found"),
            "{transport}: {}",
            r.stderr
        );

        assert_eq!(head(&dir), before, "{transport}: nothing written");
    }

    // Bad inputs: every problem named at once, exit 2, no request at all.
    sandbox.requests().clear();
    let r = run_bin(
        &[
            "run",
            "--server-url",
            "ftp://x",
            "--repository",
            "nope",
            "--transport",
            "pigeon",
            "--commit-message",
            "{what}",
        ],
        &[("INPUT_DRY_RUN", "perhaps"), ("INPUT_DIGEST", "")],
        None,
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    for input in [
        "server_url:",
        "repository:",
        "path:",
        "image:",
        "transport:",
        "commit_message:",
        "dry_run:",
        "token:",
    ] {
        assert!(
            r.stderr.contains(&format!("  - {input}")),
            "{input} not named: {}",
            r.stderr
        );
    }
    assert!(
        sandbox.requests().entries().is_empty(),
        "no request was made"
    );
    assert_eq!(head(&dir), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_token_appears_nowhere() {
    const TOKEN: &str = "Zq9+Distinctive/T0ken=value_77";
    let sandbox = Sandbox::start(SandboxConfig {
        token: TOKEN.into(),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox");
    let k = many_images_kustomization(1);
    seed_repo(&sandbox, "guarded", &[(KUSTOMIZATION, &k)]).await;
    let dir = repo_dir(&sandbox, "guarded");

    // A git that logs its argv and, before pushing, the clone's .git/config (the subcommand comes
    // after the `-c` options every call starts with).
    let shim = tempfile::tempdir().unwrap();
    let real_git = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let log = shim.path().join("log");
    std::fs::write(
        shim.path().join("git"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}/argv'\n\
             subcommand() {{ while [ \"$1\" = -c ]; do shift 2; done; printf %s \"$1\"; }}\n\
             if [ \"$(subcommand \"$@\")\" = push ]; then cat .git/config >> '{log}/config'; fi\n\
             exec '{}' \"$@\"\n",
            real_git.trim(),
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::create_dir(&log).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        shim.path().join("git"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    let url = sandbox.gitea_url().to_owned();
    let mut outputs = String::new();
    for (transport, tag, kind) in [
        ("git", "5.0.0", "real"),
        ("auto", "5.0.1", "real"),
        ("git", "5.0.2", "dry"),
        ("git", "5.0.3", "fail"),
    ] {
        let mut args = base_args(&url, transport);
        args[10] = tag;
        let mut env = vec![("INPUT_TOKEN", TOKEN)];
        match kind {
            // Action mode: every input from INPUT_*, empty ones count as not given.
            "dry" => {
                args.truncate(1);
                env.extend([
                    ("INPUT_SERVER_URL", url.as_str()),
                    ("INPUT_REPOSITORY", "team/guarded"),
                    ("INPUT_PATH", OVERLAY),
                    ("INPUT_IMAGE", "registry.example.com/team/app-00"),
                    ("INPUT_TAG", tag),
                    ("INPUT_DIGEST", ""),
                    ("INPUT_BRANCH", ""),
                    ("INPUT_TRANSPORT", transport),
                    ("INPUT_DRY_RUN", "true"),
                ]);
            }
            // A failing run: a missing path, noticed after the clone.
            "fail" => args[6] = "apps/missing",
            _ => {}
        }
        let r = run_bin(&args, &env, Some(shim.path())).await;
        if transport == "auto" {
            assert!(
                r.stderr.contains("via api"),
                "auto picks the API on Gitea: {}",
                r.stderr
            );
        }
        match kind {
            "real" => {
                assert_eq!(r.code, 0, "{transport}: {}", r.stderr);
                assert!(r.stderr.contains("publish: committed"), "{}", r.stderr);
            }
            "dry" => {
                assert_eq!(r.code, 0, "{}", r.stderr);
                assert!(
                    r.stdout.contains("+    newTag: 5.0.2"),
                    "dry run shows the diff: {}",
                    r.stdout
                );
                assert!(r.stdout.contains("--- commit message ---"), "{}", r.stdout);
            }
            _ => assert_eq!(r.code, 2, "{}", r.stderr),
        }
        outputs.push_str(&r.stdout);
        outputs.push_str(&r.stderr);
    }
    assert!(
        show(&dir, "refs/heads/main", KUSTOMIZATION).contains("newTag: 5.0.1"),
        "the real runs landed, the dry run did not"
    );
    let argv = std::fs::read_to_string(log.join("argv")).unwrap();
    assert!(
        argv.contains("clone") && argv.contains("push"),
        "the shim saw git: {argv}"
    );
    let config = std::fs::read_to_string(log.join("config")).unwrap();
    assert!(config.contains("[remote \"origin\"]"), "{config}");

    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let forms = [
        TOKEN.to_owned(),
        b64.encode(TOKEN),
        b64.encode(TOKEN).trim_end_matches('=').to_owned(),
        b64.encode(format!("x-access-token:{TOKEN}")),
        url::form_urlencoded::byte_serialize(TOKEN.as_bytes()).collect(),
        "Distinctive".to_owned(),
    ];
    for (what, text) in [
        ("stdout/stderr", &outputs),
        ("argv", &argv),
        (".git/config", &config),
    ] {
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "{what} contains {form:?}:\n{text}"
            );
        }
    }
}

/// docs/research/field-gitea.md ranked #3: under REQUIRE_SIGNIN_VIEW the version probe needs the token, or `auto`
/// takes a Gitea for a plain git host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_the_api_on_a_gitea_that_requires_signing_in() {
    let (sandbox, _) = world("signin", 1).await;
    sandbox.gitea().set_require_signin_view(true);
    let anonymous = reqwest::get(format!("{}/api/v1/version", sandbox.gitea_url()))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 403);
    let cfg = config(
        sandbox.gitea_url(),
        "signin",
        sandbox.token(),
        OVERLAY,
        &app_image(0),
        "6.1.0",
        "auto",
    );
    let out = publish::run(&cfg, &quiet()).await.expect("publish");
    assert_eq!(out.transport, UsedTransport::Api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_picks_git_when_the_server_is_not_gitea() {
    let (sandbox, _) = world("plain", 1).await;
    let dir = repo_dir(&sandbox, "plain");
    let before = head(&dir);
    // A git host without the Gitea API: /api/v1/version is not found.
    sandbox.faults().inject(
        FaultRule::new(Server::Gitea, FaultKind::Status(404)).path_contains("/api/v1/version"),
    );
    let plain = config(
        sandbox.gitea_url(),
        "plain",
        sandbox.token(),
        OVERLAY,
        &app_image(0),
        "6.0.0",
        "auto",
    );
    let out = publish::run(&plain, &quiet()).await.expect("publish");
    assert!(
        sandbox.faults().pending().is_empty(),
        "the version was probed"
    );
    assert_eq!(out.transport, UsedTransport::Git);
    assert_eq!(
        commits_since(&dir, &before),
        std::slice::from_ref(&out.commit_sha)
    );

    // A probe that gets no answer is bounded by the request timeout, not the whole step's budget:
    // `auto` falls back to git and the step still lands well inside its timeout.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::Gitea, FaultKind::Timeout).path_contains("/api/v1/version"));
    let mut stalled = config(
        sandbox.gitea_url(),
        "plain",
        sandbox.token(),
        OVERLAY,
        &app_image(0),
        "6.0.1",
        "auto",
    );
    stalled.request_timeout = Duration::from_secs(1);
    stalled.timeout = Duration::from_secs(60);
    let out = publish::run(&stalled, &quiet())
        .await
        .expect("publish after a stalled probe");
    assert!(sandbox.faults().pending().is_empty(), "the probe stalled");
    assert_eq!(out.transport, UsedTransport::Git);
    assert_eq!(out.attempts, 1);
    // Unbounded, the probe would wait for the sandbox's 120 s stall limit or the 60 s budget.
    assert!(out.elapsed < Duration::from_secs(30), "{:?}", out.elapsed);
}

/// docs/research/field-gitea.md ranked #7: a branch with `/` reaches the server as raw path segments (Gitea's route
/// is `/branches/*`), never `%2F`, which some reverse proxies answer with 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branch_names_with_a_slash_travel_unescaped() {
    let (sandbox, _) = world("slashes", 1).await;
    sandbox.requests().clear();
    let client = gitops_deploy::forge::gitea::Client::builder(sandbox.gitea_url())
        .token(Some(gitops_deploy::secret::Secret::new(sandbox.token())))
        .build()
        .unwrap();
    let missing = client
        .repo(OWNER, "slashes")
        .branch("release/v1")
        .send()
        .await;
    assert!(missing.is_err());
    let paths: Vec<String> = sandbox
        .requests()
        .entries()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        [format!("/api/v1/repos/{OWNER}/slashes/branches/release/v1")]
    );
}

/// docs/research/field-gitea.md ranked #6: a pre-receive hook that declines the push. Gitea ≥ 1.26 answers 403 with
/// the hook's text; Gitea ≤ 1.25 and Forgejo answer a 500 whose message production hides, which must
/// not be retried until the timeout; git shows the hook's output. Nothing lands in any case.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hook_rejections_fail_fast_naming_the_hook_on_every_profile() {
    use gitops_sandbox::profile::GiteaProfile;
    let (sandbox, dir) = guarded().await;
    let before = head(&dir);
    sandbox
        .gitea()
        .set_hook_rejection(
            OWNER,
            "guarded",
            Some("policy: deploys are frozen until Monday"),
        )
        .unwrap();
    let url = sandbox.gitea_url().to_owned();
    for profile in [
        "gitea-1.22",
        "gitea-1.25",
        "gitea-1.26",
        "forgejo-8",
        "forgejo-12",
    ] {
        sandbox
            .gitea()
            .set_profile(GiteaProfile::named(profile).unwrap());
        let started = std::time::Instant::now();
        let r = run_bin(
            &base_args(&url, "api"),
            &[("INPUT_TOKEN", sandbox.token())],
            None,
        )
        .await;
        assert_eq!(r.code, 1, "{profile}: {}", r.stderr);
        if profile == "gitea-1.26" {
            assert!(
                r.stderr.contains("policy: deploys are frozen until Monday"),
                "{profile}: {}",
                r.stderr
            );
        } else {
            assert!(
                r.stderr.contains(
                    "answered HTTP 500 to 3 writes to branch \"main\" and none of them landed"
                ) && r.stderr.contains("pre-receive hook"),
                "{profile}: {}",
                r.stderr
            );
        }
        // Three quick attempts, not the whole publish timeout.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{profile}: {:?}",
            started.elapsed()
        );
    }
    let r = run_bin(
        &base_args(&url, "git"),
        &[("INPUT_TOKEN", sandbox.token())],
        None,
    )
    .await;
    assert_eq!(r.code, 1, "git: {}", r.stderr);
    assert!(
        r.stderr.contains("policy: deploys are frozen until Monday"),
        "git: {}",
        r.stderr
    );
    assert_eq!(head(&dir), before, "nothing landed");
}

/// docs/research/field-gitea.md ranked #8: the API binds `branch`, author name and email with MaxSize; a longer
/// value is an input error before anything is written (the sandbox answers 422 "[BranchName]:
/// MaxSize" as Gitea does, see sandbox/tests/gitea.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_longer_than_the_api_accepts_are_refused_before_writing() {
    let (sandbox, dir) = guarded().await;
    let before = head(&dir);
    let url = sandbox.gitea_url().to_owned();
    let long_name = "n".repeat(101);
    let mut args = base_args(&url, "api");
    args.extend(["--author-name", &long_name]);
    let r = run_bin(&args, &[("INPUT_TOKEN", sandbox.token())], None).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "author_name is 101 characters long; the Gitea/Forgejo API accepts at most 100"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(head(&dir), before, "nothing written");
}

/// docs/research/field-runner.md ranked #4: on a Gitea runner the `{run_url}` of the commit message links the run
/// by number on Gitea ≤ 1.25 and by id from 1.26.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_url_follows_the_gitea_version() {
    use gitops_sandbox::profile::GiteaProfile;
    let (sandbox, dir) = guarded().await;
    let url = sandbox.gitea_url().to_owned();
    for (profile, tag, transport, run) in [
        ("gitea-1.25", "1.0.1", "git", "17"),
        ("gitea-1.26", "1.0.2", "api", "48213"),
    ] {
        sandbox
            .gitea()
            .set_profile(GiteaProfile::named(profile).unwrap());
        let mut args = base_args(&url, transport);
        args[10] = tag;
        let r = run_bin(
            &args,
            &[
                ("INPUT_TOKEN", sandbox.token()),
                ("GITHUB_ACTIONS", "true"),
                ("GITEA_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", &url),
                ("GITHUB_REPOSITORY", "team/app"),
                ("GITHUB_RUN_ID", "48213"),
                ("GITHUB_RUN_NUMBER", "17"),
            ],
            None,
        )
        .await;
        assert_eq!(r.code, 0, "{profile}: {}", r.stderr);
        let message = git(&dir, &["log", "-1", "--format=%B", "main"]);
        assert!(
            message.contains(&format!("run: {url}/team/app/actions/runs/{run}\n")),
            "{profile}: {message}"
        );
    }
}

/// 16 concurrent deploys of different images into one Helm values file (half per transport), each
/// run given every key set and picking its own by repository: every change lands exactly once and
/// none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_helm_deploys_into_one_values_file_lose_no_update() {
    use gitops_deploy::edit::{HelmKeys, Target};
    const RUNS: usize = 16;
    const VALUES: &str = "charts/team/values.yaml";
    let _one_at_a_time = HEAVY.lock().await;
    let sandbox = Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox");
    let mut values = String::from("# one chart, many services\n");
    for i in 0..RUNS {
        values.push_str(&format!(
            "svc{i:02}:\n  image:\n    repository: {} # service {i}\n    tag: \"0.9.0\"\n",
            app_image(i)
        ));
    }
    let base = seed_repo(&sandbox, "helm", &[(VALUES, &values)]).await;
    let dir = repo_dir(&sandbox, "helm");
    let key_sets: Vec<HelmKeys> = (0..RUNS)
        .map(|i| {
            HelmKeys::parse(&format!(
                "repository=svc{i:02}.image.repository,tag=svc{i:02}.image.tag"
            ))
            .unwrap()
        })
        .collect();
    let mut tasks = Vec::new();
    for i in 0..RUNS {
        let mut config = config(
            sandbox.gitea_url(),
            "helm",
            sandbox.token(),
            VALUES,
            &app_image(i),
            &format!("1.0.{i}"),
            if i % 2 == 0 { "api" } else { "git" },
        );
        config.target = Target::Helm(key_sets.clone());
        tasks.push(tokio::spawn(async move {
            publish::run(&config, &quiet()).await
        }));
    }
    let mut outcomes = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        outcomes.push(
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("run {i}: {}", chain(&e))),
        );
    }
    let new = commits_since(&dir, &base);
    assert_eq!(new.len(), RUNS, "exactly one commit per run");
    let head = head(&dir);
    let at_head = show(&dir, &head, VALUES);
    let mut expected = values.clone();
    for (i, outcome) in outcomes.iter().enumerate() {
        assert!(outcome.changed, "run {i}");
        expected = expected.replacen(
            &format!("service {i}\n    tag: \"0.9.0\""),
            &format!("service {i}\n    tag: \"1.0.{i}\""),
            1,
        );
    }
    // Byte for byte: every tag changed, in its quotes, and nothing else did.
    assert_eq!(at_head, expected);
    let mut ms: Vec<u128> = outcomes.iter().map(|o| o.elapsed.as_millis()).collect();
    ms.sort();
    println!(
        "16 concurrent helm deploys: p50 {} ms, max {} ms, {} attempts",
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        outcomes.iter().map(|o| o.attempts).sum::<u32>()
    );
}
