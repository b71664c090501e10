//! Compatibility with the real servers, version by version (docs/compatibility.md has the behaviour
//! table): the core end-to-end scenarios against every Gitea/Forgejo and Argo CD profile of the
//! sandbox, and the field behaviours the audits found (sync windows, PreSync hooks, multi-source
//! apps, a repo server that cannot resolve for a moment), each through the built binary.

mod support;
use support::world as common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::{error, timing, World, LIMIT};
use gitops_sandbox::argocd::{OtherSource, SyncWindow};
use gitops_sandbox::demo;
use gitops_sandbox::eventually::eventually;
use gitops_sandbox::profile::{ArgoProfile, GiteaProfile};

/// A get-only Argo CD token (JWT-shaped: Argo CD reads no other bearer).
const GET_ONLY_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb21wYXQifQ.Z2V0LW9ubHktY29tcGF0";

/// Runs `gitops-deploy SUBCOMMAND ARGS` with the world's tokens; returns (exit code, stderr).
async fn deploy(world: &World, subcommand: &str, args: &[&str]) -> Result<(i32, String)> {
    let mut cmd = world.cli(subcommand);
    cmd.args(args);
    let (out, err) = common::run(cmd, LIMIT).await?;
    Ok((out.status.code().unwrap_or(-1), err))
}

/// Requests the sandbox's Argo CD got since the log was cleared, as `METHOD path`.
fn argo_requests(world: &World) -> Vec<String> {
    world
        .sandbox
        .requests()
        .for_server(gitops_sandbox::faults::Server::ArgoCd)
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

// ---- the matrix ----

/// The core scenarios in one world, one after the other (each starts from the healthy state the
/// previous one left): happy path over both transports, a descendant commit, an overwrite, a broken
/// tag rolled back, a refresh that hangs, cut streams. Returns each scenario's name and time.
async fn core_scenarios(world: &World) -> Result<Vec<(&'static str, Duration)>> {
    let mut times = Vec::new();
    let profile = format!(
        "{} + {}",
        world.sandbox.gitea().profile().name,
        world.argo.profile().name
    );

    // 1–2. Happy path, api and git.
    for (name, tag, transport) in [
        ("happy path (api)", "2.0.0", "api"),
        ("happy path (git)", "2.0.1", "git"),
    ] {
        let started = Instant::now();
        let (code, report, err) = world
            .run_json(&world.verified_run_args(tag, transport, &[]), &[])
            .await?;
        ensure!(code == 0, "{profile}: {name}: exit {code}\n{err}");
        let head = world.head().await?;
        ensure!(
            report["result"] == "success"
                && report["changed"] == true
                && report["commit_sha"] == head.as_str()
                && report["synced_revision"] == head.as_str()
                && report["health"] == "Healthy"
                && report["phase"] == "health",
            "{profile}: {name}: {report}\n{err}"
        );
        ensure!(world.ready_tags() == vec![tag; 3], "{profile}: {name}");
        times.push((name, started.elapsed()));
    }

    // 3. A newer commit containing ours passes. Pull requests are off: where the profile's compare
    // needs them (or takes no commit IDs), ancestry falls back to git instead of stalling.
    let started = Instant::now();
    world
        .sandbox
        .gitea()
        .set_pulls_enabled(demo::OWNER, demo::REPO, false)?;
    let ours = world.commit_tag("2.1.0").await?;
    let newer = world
        .commit(&[("NOTES.md", "unrelated\n")], "notes")
        .await?;
    let forge = [
        "--server-url",
        world.sandbox.gitea_url(),
        "--repository",
        demo::REPOSITORY,
        "--timeout",
        "30s",
    ];
    let (out, err) = world.wait_on_argo(&ours, &forge).await?;
    world
        .sandbox
        .gitea()
        .set_pulls_enabled(demo::OWNER, demo::REPO, true)?;
    ensure!(out.status.success(), "{profile}: descendant\n{err}");
    ensure!(
        err.contains(&format!("Synced Healthy at {}", &newer[..7])),
        "{profile}: descendant\n{err}"
    );
    times.push(("descendant commit", started.elapsed()));

    // 4. Another pipeline overwrites our value before Argo CD looks (its refreshes hang, its poll is
    // slow): the deploy fails saying so, over git (ancestry from git).
    let started = Instant::now();
    let other = run_with_a_commit_after_ours(world, "2.2.0", "git", "2.2.1").await?;
    let (code, err) = other.0;
    ensure!(code == 1, "{profile}: overwrite: exit {code}\n{err}");
    ensure!(
        err.contains(&format!(
            "our value was overwritten by commit {}",
            &other.1[..7]
        )),
        "{profile}: overwrite\n{err}"
    );
    times.push(("overwrite", started.elapsed()));

    // 5. A broken tag is rolled back to the previous one, healthy.
    let started = Instant::now();
    let (code, report, err) = world
        .run_json(
            &world.verified_run_args("broken-3", "api", &["--rollback-on-failure"]),
            &[],
        )
        .await?;
    ensure!(code == 1, "{profile}: rollback: exit {code}\n{err}");
    ensure!(
        report["result"] == "rolled_back"
            && report["phase"] == "argocd"
            && report["previous_tag"] == "2.2.1",
        "{profile}: rollback: {report}"
    );
    ensure!(
        error(&report).ends_with("; rolled back to 2.2.1 (healthy)"),
        "{profile}: rollback: {report}"
    );
    ensure!(
        world.ready_tags() == vec!["2.2.1"; 3],
        "{profile}: rollback"
    );
    times.push(("broken tag + rollback", started.elapsed()));

    // 6. Refreshes hang; a get-only token deploys the auto-sync app on the controller's poll.
    let started = Instant::now();
    world.argo.hang_next_refreshes(1000);
    world.argo.set_poll_interval(Duration::from_secs(3));
    world.sandbox.requests().clear();
    let (code, report, err) = world
        .run_json(
            &world.verified_run_args("2.3.0", "api", &[]),
            &[("INPUT_ARGOCD_TOKEN", GET_ONLY_TOKEN)],
        )
        .await?;
    world.argo.hang_next_refreshes(0);
    world.argo.set_poll_interval(Duration::from_secs(180));
    ensure!(
        code == 0 && report["synced_revision"] == world.head().await?.as_str(),
        "{profile}: refresh hang: {report}\n{err}"
    );
    let syncs: Vec<String> = argo_requests(world)
        .into_iter()
        .filter(|r| r.starts_with("POST") && r.ends_with("/sync"))
        .collect();
    ensure!(
        syncs.is_empty(),
        "{profile}: refresh hang: a sync was requested: {syncs:?}"
    );
    times.push(("refresh hang", started.elapsed()));

    // 7. The next two Argo CD streams end after one event each.
    let started = Instant::now();
    world.argo.cut_streams_after(1, 2);
    world.sandbox.requests().clear();
    let (code, report, err) = world
        .run_json(&world.verified_run_args("2.4.0", "git", &[]), &[])
        .await?;
    ensure!(
        code == 0 && report["synced_revision"] == world.head().await?.as_str(),
        "{profile}: stream cut: {report}\n{err}"
    );
    // Both cut streams were resumed by a new one: at least three in all.
    let streams = argo_requests(world)
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/stream/applications"))
        .count();
    ensure!(
        streams >= 3,
        "{profile}: stream cut: {streams} streams\n{err}"
    );
    times.push(("stream cut", started.elapsed()));
    Ok(times)
}

/// Runs a deploy of `tag` while Argo CD looks away (refreshes hang, the poll is slow); once our
/// commit is on the branch, commits `then_tag` on top (another pipeline), then lets Argo CD poll.
/// Returns the deploy's (exit code, stderr) and the other commit.
async fn run_with_a_commit_after_ours(
    world: &World,
    tag: &str,
    transport: &str,
    then_tag: &str,
) -> Result<((i32, String), String)> {
    let before = world.head().await?;
    world.argo.hang_next_refreshes(1000);
    let mut cmd = world.cli("run");
    cmd.env("INPUT_ARGOCD_TOKEN", GET_ONLY_TOKEN)
        .args(world.verified_run_args(tag, transport, &[]));
    let child = tokio::spawn(common::run(cmd, LIMIT));
    eventually("our commit lands", Duration::from_secs(30), || async {
        match world.head().await {
            Ok(head) if head != before => Ok(()),
            Ok(head) => Err(format!("head still {head}")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;
    let other = world.commit_tag(then_tag).await?;
    world.argo.set_poll_interval(Duration::from_secs(1));
    let (out, err) = child.await??;
    world.argo.hang_next_refreshes(0);
    world.argo.set_poll_interval(Duration::from_secs(180));
    Ok(((out.status.code().unwrap_or(-1), err), other))
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// One matrix cell: a world with these profiles running the core scenarios; prints the times.
async fn matrix_cell(gitea: &str, argocd: &str) -> Result<()> {
    let world = World::start(timing()).await?;
    world
        .sandbox
        .gitea()
        .set_profile(GiteaProfile::named(gitea).context("gitea profile")?);
    world
        .argo
        .set_profile(ArgoProfile::named(argocd).context("argocd profile")?);
    world.argo.add_get_only_token(GET_ONLY_TOKEN);
    let times = core_scenarios(&world).await?;
    for (name, took) in times {
        println!(
            "matrix {gitea} + {argocd}: {name}: {:.1}s",
            took.as_secs_f64()
        );
    }
    Ok(())
}

// Every Gitea/Forgejo profile and every Argo CD profile appears at least once; the pairs mix old
// with new so that each cell differs from the others on both sides.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_gitea_1_22_with_argocd_2_14() -> Result<()> {
    matrix_cell("gitea-1.22", "argocd-2.14").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_gitea_1_25_with_argocd_3_0() -> Result<()> {
    matrix_cell("gitea-1.25", "argocd-3.0").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_gitea_1_26_with_argocd_3_4() -> Result<()> {
    matrix_cell("gitea-1.26", "argocd-3.4").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_forgejo_8_with_argocd_3_6() -> Result<()> {
    matrix_cell("forgejo-8", "argocd-3.6").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_forgejo_12_with_argocd_3_0() -> Result<()> {
    matrix_cell("forgejo-12", "argocd-3.0").await
}

// ---- field behaviours ----

/// An active deny window that allows no manual syncs.
fn deny_window(schedule: &str, duration: &str) -> Vec<SyncWindow> {
    vec![SyncWindow {
        kind: "deny".into(),
        schedule: schedule.into(),
        duration: duration.into(),
        manual_sync: false,
        active: true,
    }]
}

// docs/research/field-argocd.md ranked #3 (a fix-forward onto a Degraded app with a 20 s PreSync hook
// passes with a 10 s grace) runs on paused time with Argo CD's real timing: tests/paused_time.rs.

/// docs/research/field-argocd.md ranked #9 (sync windows): an auto-sync app inside a deny window is never synced
/// and Argo CD says nothing; the phase names the window while waiting and in its timeout message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_window_holding_back_auto_sync_is_named_not_a_silent_timeout() -> Result<()> {
    let world = World::start(timing()).await?;
    world
        .argo
        .set_sync_windows("default", deny_window("0 22 * * *", "8h"));
    let started = Instant::now();
    let mut args = world.run_args("3.1.0");
    args.extend(["--timeout".into(), "10s".into()]);
    let (code, report, err) = world.run_json(&args, &[]).await?;
    assert_eq!(code, 1, "{report}\n{err}");
    assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    let why = "Argo CD will not auto-sync web-prod now: the sync deny window \"0 22 * * *\" (8h) is active";
    assert!(err.contains(why), "warned while waiting: {err}");
    let error = error(&report);
    assert!(
        report["phase"] == "argocd" && error.contains("timed out after"),
        "{report}"
    );
    assert!(
        error.contains(
            "Argo CD will not auto-sync now: the sync deny window \"0 22 * * *\" (8h) is active"
        ),
        "the timeout names the window: {report}"
    );
    Ok(())
}

/// A manual sync inside the window is refused with 403 at once: the phase fails naming the window,
/// without waiting for the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_window_refusing_our_sync_fails_at_once_naming_it() -> Result<()> {
    let world = World::start(timing()).await?;
    world
        .argo
        .set_sync_windows("default", deny_window("0 6 * * 1-5", "10h"));
    let started = Instant::now();
    let mut args = world.run_args("3.2.0");
    args.extend([
        "--argocd-sync".into(),
        "always".into(),
        "--timeout".into(),
        "60s".into(),
    ]);
    let (code, report, err) = world.run_json(&args, &[]).await?;
    assert_eq!(code, 1, "{report}\n{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "{err}");
    assert!(
        error(&report).contains(
            "Argo CD refuses to sync now: the sync deny window \"0 6 * * 1-5\" (10h) blocks it"
        ),
        "{report}"
    );
    Ok(())
}

/// docs/research/field-argocd.md ranked #5: "error resolving repo revision" is a 400 (FailedPrecondition), often
/// from a repo server that is restarting. A few of them are tried again; many fail with the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_the_repo_server_could_not_resolve_is_tried_again_a_few_times() -> Result<()> {
    let world = World::start(timing()).await?;
    world.argo.fail_next_sync_resolves(2);
    let mut args = world.run_args("3.3.0");
    args.extend([
        "--argocd-sync".into(),
        "always".into(),
        "--timeout".into(),
        "60s".into(),
    ]);
    let (code, err) = deploy(&world, "run", &strs(&args)).await?;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("error resolving repo revision"), "{err}");

    world.argo.fail_next_sync_resolves(100);
    let mut args = world.run_args("3.3.1");
    args.extend([
        "--argocd-sync".into(),
        "always".into(),
        "--timeout".into(),
        "60s".into(),
    ]);
    let started = Instant::now();
    let (code, report, err) = world.run_json(&args, &[]).await?;
    world.argo.fail_next_sync_resolves(0);
    assert_eq!(code, 1, "{report}\n{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "{err}");
    let error = error(&report);
    assert!(
        error.contains("sync request failed") && error.contains("error resolving repo revision"),
        "{report}"
    );
    Ok(())
}

/// docs/research/field-argocd.md ranked #2: a multi-source app (a Helm chart first, our git path, a `ref` source of
/// another repository). Argo CD synced a newer commit containing ours: the wait finds our source by
/// its repository URL, not by position (index 0 is the chart's version `1.2.3`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_source_app_is_waited_on_through_our_source() -> Result<()> {
    let world = World::start(timing()).await?;
    let values_sha = "4f2c1a9e0b7d6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
    world.argo.add_app(
        gitops_sandbox::argocd::AppSpec {
            // Without `.git`: the client normalises repository URLs.
            repo_url: format!("{}/{}", world.sandbox.gitea_url(), demo::REPOSITORY),
            other_sources: vec![
                OtherSource {
                    position: 0,
                    spec: serde_json::json!({"repoURL": "https://charts.example.com",
                        "chart": "web", "targetRevision": "1.2.3"}),
                    revision: "1.2.3".into(),
                },
                OtherSource {
                    position: 2,
                    spec: serde_json::json!({"repoURL": "https://git.example.com/ops/values.git",
                        "targetRevision": "main", "ref": "values"}),
                    revision: values_sha.into(),
                },
            ],
            ..world.app_spec("web-multi", true)
        },
        true,
    )?;
    let ours = world.commit_tag("3.4.0").await?;
    let newer = world
        .commit(&[("NOTES.md", "unrelated\n")], "notes")
        .await?;
    let (out, err) = world
        .wait(&[
            "--commit",
            &ours,
            "--argocd-server",
            &world.argo_url,
            "--argocd-app",
            "web-multi",
            "--server-url",
            world.sandbox.gitea_url(),
            "--repository",
            demo::REPOSITORY,
            "--timeout",
            "30s",
        ])
        .await?;
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("Synced Healthy at {}", &newer[..7])),
        "{err}"
    );
    let app = world.argo.app_json("web-multi")?;
    assert_eq!(
        app["status"]["sync"]["revisions"],
        serde_json::json!(["1.2.3", newer, values_sha]),
        "{app}"
    );
    Ok(())
}
