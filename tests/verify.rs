//! End-to-end tests of the verify phases and the rollback, against the sandbox (real git, the Argo
//! CD, Kubernetes and app doubles) with the built binary; plus library-level tests of ancestry and
//! of the rollout verdict against the real `kubectl rollout status`.

mod support;
use support::world as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::{timing, World, APP, ARGO_TOKEN, KUBE_TOKEN, LIMIT};
use gitops_deploy::ancestry::{GitOracle, GiteaOracle};
use gitops_deploy::argocd::phase::{self, ArgoSettings, RevisionOracle, SyncMode, Watch};
use gitops_deploy::argocd::verdict::{Relation, Target};
use gitops_deploy::argocd::{Client, ClientConfig};
use gitops_deploy::edit::ImageSetting;
use gitops_deploy::forge::git::{History, Remote};
use gitops_deploy::report::Report;
use gitops_deploy::rollout::{rollout_verdict, Workload};
use gitops_deploy::secret::{Masker, Secret};
use gitops_deploy::verdict::Verdict;
use gitops_sandbox::demo;
use gitops_sandbox::eventually::eventually;

/// A get-only Argo CD token (JWT-shaped: Argo CD reads no other bearer).
const GET_ONLY_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJnZXQtb25seSJ9.Z2V0LW9ubHktMDEyMw";

/// No secret in any line, except the `::add-mask::` announcements a runner needs.
fn assert_no_secrets(world: &World, text: &str) {
    for line in text.lines().filter(|l| !l.starts_with("::add-mask::")) {
        for s in [world.sandbox.token(), ARGO_TOKEN, KUBE_TOKEN] {
            assert!(
                !line.contains(s),
                "a secret leaked into the output:\n{text}"
            );
        }
    }
}

fn with_health(world: &World, mut args: Vec<String>) -> Vec<String> {
    args.extend([
        "--health-url".to_owned(),
        format!("{}/version", world.app_url),
        "--health-expect-body".into(),
        r#""version":"{tag}""#.into(),
        "--health-interval".into(),
        "200ms".into(),
        "--timeout".into(),
        "60s".into(),
        "--degraded-grace".into(),
        "3s".into(),
    ]);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_rollout_through_argocd() -> Result<()> {
    let world = World::start(timing()).await?;
    let dir = tempfile::tempdir()?;
    let outputs = dir.path().join("outputs");
    let mut args = with_health(&world, world.run_args("1.1.0"));
    args.extend(["--rollout".into(), "auto".into()]);
    let (out, err) = common::run(
        {
            let mut c = world.cli("run");
            c.args(&args)
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_OUTPUT", &outputs);
            c
        },
        LIMIT,
    )
    .await?;
    assert!(out.status.success(), "exit {:?}\n{err}", out.status);
    let head = world.head().await?;
    assert!(err.contains(&format!("Synced @ {}", &head[..7])), "{err}");
    assert!(err.contains("health: HTTP 200 3 times in a row"), "{err}");
    assert_eq!(world.ready_tags(), vec!["1.1.0"; 3]);
    assert_no_secrets(&world, &err);
    let outputs = std::fs::read_to_string(&outputs)?;
    assert!(
        outputs.contains(&format!("synced_revision={head}")),
        "{outputs}"
    );
    assert!(outputs.contains("health=Healthy"), "{outputs}");
    assert!(
        outputs.contains("\nrollout=deployment/web: 3/3 updated, 3 available\n"),
        "{outputs}"
    );
    assert!(outputs.contains("\nresult=success\nerror=\n"), "{outputs}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_rollout_through_kubeconfig_survives_stream_cuts() -> Result<()> {
    let world = World::start(timing()).await?;
    // The next two Argo CD streams end after one event each.
    world.argo.cut_streams_after(1, 2);
    let mut args = with_health(&world, world.run_args("1.2.0"));
    args.extend([
        "--kubeconfig".into(),
        world.kubeconfig.display().to_string(),
        "--rollout".into(),
        "deployment/web".into(),
        "--namespace".into(),
        "web".into(),
    ]);
    let (code, report, err) = world.run_json(&args, &[]).await?;
    assert_eq!(code, 0, "{report}\n{err}");
    assert_eq!(
        err.matches("application stream closed; resuming at resourceVersion")
            .count(),
        2,
        "{err}"
    );
    assert_eq!(
        report["rollout"], "deployment/web: 3/3 updated, 3 available",
        "{report}"
    );
    assert_eq!(world.ready_tags(), vec!["1.2.0"; 3]);
    assert_no_secrets(&world, &err);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_watch_410_mid_rollout_is_survived() -> Result<()> {
    let mut t = timing();
    t.pod_start_delay = Duration::from_millis(700);
    let world = World::start(t).await?;
    world.kube.fail_next_watches_with_gone(1);
    let sha = world.commit_tag("1.2.5").await?;
    // Kubernetes only: the rollout is watched while it happens.
    let mut cmd = world.cli("wait");
    cmd.args([
        "--commit",
        &sha,
        "--expect-image",
        &format!("{}:1.2.5", demo::IMAGE),
    ])
    .arg("--kubeconfig")
    .arg(&world.kubeconfig)
    .args([
        "--rollout",
        "deployment/web",
        "--namespace",
        "web",
        "--timeout",
        "60s",
    ]);
    let child = tokio::spawn(common::run(cmd, LIMIT));
    refresh(&world).await?;
    let (out, err) = child.await??;
    assert!(out.status.success(), "exit {:?}\n{err}", out.status);
    assert!(
        err.contains("warning: watch interrupted"),
        "the 410 was seen: {err}"
    );
    assert!(
        err.contains("rollout: web: 1/3 updated") || err.contains("rollout: web: 2/3 updated"),
        "progress while rolling: {err}"
    );
    assert!(
        err.contains("rollout: rolled out: deployment/web: 3/3 updated, 3 available"),
        "{err}"
    );
    assert_eq!(world.ready_tags(), vec!["1.2.5"; 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_health_and_180s_poll_neither_fool_nor_slow_the_argocd_phase() -> Result<()> {
    // Health and reconciledAt stay stale for 2 s after each sync; pods take 1 s each to start.
    let mut t = timing();
    t.stale_health = Duration::from_secs(2);
    t.pod_start_delay = Duration::from_secs(1);
    let world = World::start(t).await?;
    let sha = world.commit_tag("1.3.0").await?;
    let started = Instant::now();
    let (out, err) = world.wait_on_argo(&sha, &["--timeout", "60s"]).await?;
    let took = started.elapsed();
    assert!(out.status.success(), "exit {:?}\n{err}", out.status);
    // Without the refresh this would take up to the 180 s poll interval.
    assert!(took < Duration::from_secs(30), "took {took:?}\n{err}");
    // Had the stale Healthy been trusted, the process would have exited before the pods were ready.
    assert_eq!(world.ready_tags(), vec!["1.3.0"; 3], "{err}");
    assert!(err.contains("health Progressing → Healthy"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_tag_fails_within_grace_naming_the_pod() -> Result<()> {
    // A 60 s progress deadline scaled to 30 s: the stuck pod must fail it long before.
    let mut t = timing();
    t.progress_deadline_scale = 0.5;
    let world = World::start(t).await?;
    let mut args = with_health(&world, world.run_args("broken-1"));
    args.extend(["--rollout".into(), "auto".into()]);
    let started = Instant::now();
    let (code, report, err) = world.run_json(&args, &[]).await?;
    let took = started.elapsed();
    assert_eq!(code, 1, "{report}\n{err}");
    // degraded_grace 3 s + 5 s, plus publishing and the first pod's start.
    assert!(took < Duration::from_secs(12), "took {took:?}\n{err}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        report["phase"] == "argocd" && report["result"] == "failed",
        "{report}"
    );
    assert!(error.contains("pod web/web-"), "names the pod: {report}");
    assert!(
        error.contains("CrashLoopBackOff") || error.contains("back-off"),
        "with its message: {report}"
    );
    // The last log line says the same.
    assert!(
        err.lines().last().unwrap_or_default() == format!("gitops-deploy: error: {error}"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_serving_another_version_fails_the_http_phase_with_the_body() -> Result<()> {
    let world = World::start(timing()).await?;
    let sha = world.head().await?;
    let (out, err) = world
        .wait(&[
            "--commit",
            &sha,
            "--expect-image",
            "registry.example.com/demo/web:2.0.0",
            "--health-url",
            &format!("{}/version", world.app_url),
            "--health-expect-body",
            r#""version":"{tag}""#,
            "--health-interval",
            "200ms",
            "--health-timeout",
            "3s",
        ])
        .await?;
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("gitops-deploy: error: health: timed out after 3s in phase health"),
        "{last}"
    );
    assert!(
        last.contains(r#"body "{\"version\":\"1.0.0\"}" is not containing"#),
        "{last}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_naming_every_input() -> Result<()> {
    let world = World::start(timing()).await?;
    let (out, err) = world
        .wait(&[
            "--commit",
            "abc",
            "--argocd-app",
            APP,
            "--timeout",
            "soon",
            "--rollout",
            "job/x",
        ])
        .await?;
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "commit: \"abc\" is not a full 40-hex SHA",
        "argocd_server: required",
        "timeout: \"soon\"",
        "rollout: \"job/x\"",
    ] {
        assert!(err.contains(want), "missing {want:?}:\n{err}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_the_previous_tag_and_it_is_healthy() -> Result<()> {
    let world = World::start(timing()).await?;
    let mut args = with_health(&world, world.run_args("broken-2"));
    args.extend([
        "--rollout".into(),
        "auto".into(),
        "--rollback-on-failure".into(),
    ]);
    let (code, report, err) = world.run_json(&args, &[]).await?;
    assert_eq!(code, 1, "{report}\n{err}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        report["result"] == "rolled_back" && report["phase"] == "argocd",
        "{report}"
    );
    assert!(error.starts_with("argocd: "), "{report}");
    assert!(
        error.ends_with("; rolled back to 1.0.0 (healthy)"),
        "{report}"
    );
    let text = world.kustomization_at(demo::BRANCH).await?;
    assert!(
        text.contains("newTag: \"1.0.0\" # set by CI"),
        "semantic revert keeps the line:\n{text}"
    );
    assert_eq!(world.ready_tags(), vec!["1.0.0"; 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_removes_an_entry_the_deploy_added() -> Result<()> {
    let world = World::start(timing()).await?;
    // The overlay does not list the image yet: the base's tag runs.
    let text = world.kustomization_at(demo::BRANCH).await?;
    let without = gitops_deploy::edit::remove_image(&text, demo::IMAGE)?;
    assert!(without.is_changed());
    world
        .commit(
            &[(demo::KUSTOMIZATION, &without.text)],
            "use the base image",
        )
        .await?;
    let mut args = with_health(&world, world.run_args("broken-3"));
    args.extend([
        "--rollout".into(),
        "auto".into(),
        "--rollback-on-failure".into(),
    ]);
    let (code, report, err) = world.run_json(&args, &[]).await?;
    assert_eq!(code, 1, "{report}\n{err}");
    assert!(
        report["result"] == "rolled_back"
            && report["error"]
                .as_str()
                .is_some_and(|e| e.ends_with("; rolled back to (entry removed) (healthy)")),
        "{report}\n{err}"
    );
    assert!(
        err.contains(&format!(
            "removed the {} entry the deploy added",
            demo::IMAGE
        )),
        "{err}"
    );
    // Byte for byte the file before the deploy: the entry it added is gone again.
    assert_eq!(world.kustomization_at(demo::BRANCH).await?, without.text);
    assert_eq!(world.ready_tags(), vec!["0.0.0-base"; 3]);
    Ok(())
}

/// Makes Argo CD look at the branch now (a `?refresh=normal` GET), as another client would.
async fn refresh(world: &World) -> Result<()> {
    argo_client(world)?
        .apps()
        .get(APP)
        .refresh(gitops_deploy::argocd::Refresh::Normal)
        .send()
        .await?;
    Ok(())
}

fn argo_client(world: &World) -> Result<Client> {
    Ok(Client::new(ClientConfig::new(
        world.argo_url.parse()?,
        Secret::new(ARGO_TOKEN),
    ))?)
}

fn settings() -> ArgoSettings {
    ArgoSettings {
        app: APP.into(),
        app_namespace: None,
        project: None,
        sync: SyncMode::Auto,
        degraded_grace: Duration::from_secs(3),
        watch: Watch::Stream,
    }
}

/// Which way ancestry is learned: the Gitea compare API (`transport: api`) or git (`transport: git`).
#[derive(Debug, Clone, Copy)]
enum Forge {
    Api,
    Git,
    /// The compare API of a server that answers 404 for commit IDs (Gitea 1.22): git answers instead.
    ApiWithoutCommitCompare,
}

async fn oracle(world: &World, tag: &str, forge: Forge) -> Result<Arc<dyn RevisionOracle>> {
    let overwrite = gitops_deploy::ancestry::OverwriteCheck {
        files: vec![demo::KUSTOMIZATION.to_owned()],
        setting: ImageSetting::deploy(demo::IMAGE, Some(tag), None, None)?,
        target: gitops_deploy::edit::Target::Kustomize,
        setter: None,
    };
    let token = Some(Secret::new(world.sandbox.token()));
    Ok(match forge {
        Forge::Api | Forge::ApiWithoutCommitCompare => Arc::new(GiteaOracle {
            client: gitops_deploy::forge::gitea::Client::builder(world.sandbox.gitea_url())
                .token(token.clone())
                .build()?,
            owner: demo::OWNER.into(),
            name: demo::REPO.into(),
            overwrite: Some(overwrite),
            git_fallback: matches!(forge, Forge::ApiWithoutCommitCompare).then(|| {
                gitops_deploy::ancestry::GitFallback::new(
                    Remote {
                        url: format!("{}/{}.git", world.sandbox.gitea_url(), demo::REPOSITORY)
                            .parse()
                            .unwrap(),
                        token,
                        stall_timeout: Duration::from_secs(10),
                        server_ca: None,
                    },
                    demo::BRANCH,
                    Duration::from_secs(30),
                )
            }),
        }),
        Forge::Git => {
            let remote = Remote {
                url: format!("{}/{}.git", world.sandbox.gitea_url(), demo::REPOSITORY).parse()?,
                token,
                stall_timeout: Duration::from_secs(10),
                server_ca: None,
            };
            let history = History::open(remote, demo::BRANCH, Duration::from_secs(30)).await?;
            Arc::new(GitOracle {
                history,
                overwrite: Some(overwrite),
            })
        }
    })
}

async fn a_newer_commit_containing_ours_passes(forge: Forge) -> Result<()> {
    let world = World::start(timing()).await?;
    if matches!(forge, Forge::ApiWithoutCommitCompare) {
        world.sandbox.gitea().set_version("1.22.6");
    }
    let ours = world.commit_tag("1.4.0").await?;
    let newer = world
        .commit(&[("README.md", "someone else's change\n")], "docs")
        .await?;
    let (report, out) = Report::capture(Masker::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let got = phase::run(
        &argo_client(&world)?,
        &settings(),
        Target::new(&ours),
        Some(oracle(&world, "1.4.0", forge).await?),
        &report,
        deadline,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", out.text()))?;
    assert_eq!(got.synced_revision, newer, "{}", out.text());
    assert_eq!(got.health, "Healthy");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_commit_containing_ours_passes_by_the_api() -> Result<()> {
    a_newer_commit_containing_ours_passes(Forge::Api).await
}

/// docs/research/field-gitea.md ranked #1: on Gitea 1.22 the compare API answers 404 for commit IDs; the wait used
/// to replay that error until its deadline. Now git answers, and the descendant passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_commit_containing_ours_passes_on_gitea_1_22() -> Result<()> {
    // Before: the phase replayed the 404 until its 30 s deadline and failed.
    a_newer_commit_containing_ours_passes(Forge::ApiWithoutCommitCompare).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_commit_containing_ours_passes_by_git() -> Result<()> {
    a_newer_commit_containing_ours_passes(Forge::Git).await
}

async fn a_newer_commit_overwriting_our_value_fails_saying_so(forge: Forge) -> Result<()> {
    let world = World::start(timing()).await?;
    let ours = world.commit_tag("1.5.0").await?;
    let other = world.commit_tag("1.5.1").await?;
    let (report, out) = Report::capture(Masker::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let err = phase::run(
        &argo_client(&world)?,
        &settings(),
        Target::new(&ours),
        Some(oracle(&world, "1.5.0", forge).await?),
        &report,
        deadline,
    )
    .await
    .expect_err("our value is gone");
    assert_eq!(
        err.to_string(),
        format!("our value was overwritten by commit {} (Argo CD synced {}, which contains our commit {})", &other[..7], &other[..7], &ours[..7]),
        "{}",
        out.text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_commit_overwriting_our_value_fails_saying_so_by_the_api() -> Result<()> {
    a_newer_commit_overwriting_our_value_fails_saying_so(Forge::Api).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_commit_overwriting_our_value_fails_saying_so_by_git() -> Result<()> {
    a_newer_commit_overwriting_our_value_fails_saying_so(Forge::Git).await
}

/// Both oracles answer the same for every relation a revision can have to ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_oracles_tell_every_relation_alike() -> Result<()> {
    let world = World::start(timing()).await?;
    let older = world.head().await?;
    let ours = world.commit_tag("1.6.0").await?;
    let descendant = world.commit(&[("README.md", "docs\n")], "docs").await?;
    let overwriting = world.commit_tag("1.6.1").await?;
    let nowhere = "0123456789abcdef0123456789abcdef01234567";
    // A commit with no history in common with ours, on another branch of the same repository.
    let repo = world.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO);
    let git = |args: &[&str]| -> Result<String> {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(args)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    };
    let empty_tree = git(&["hash-object", "-t", "tree", "-w", "/dev/null"])?;
    let orphan = git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@x",
        "commit-tree",
        &empty_tree,
        "-m",
        "orphan",
    ])?;
    git(&["update-ref", "refs/heads/orphan", &orphan])?;
    let expected = [
        (&older, Relation::Older),
        (
            &descendant,
            Relation::Descendant {
                overwritten_by: None,
            },
        ),
        (
            &overwriting,
            Relation::Descendant {
                overwritten_by: Some(overwriting.clone()),
            },
        ),
        // docs/research/field-gitea.md ranked #4: both compare lists are empty here; that is not a descendant.
        (&orphan, Relation::Unrelated),
    ];
    for forge in [Forge::Api, Forge::Git, Forge::ApiWithoutCommitCompare] {
        if matches!(forge, Forge::ApiWithoutCommitCompare) {
            world.sandbox.gitea().set_version("1.22.6");
        }
        let oracle = oracle(&world, "1.6.0", forge).await?;
        for (rev, relation) in &expected {
            let got = oracle
                .relation(&ours, rev)
                .await
                .map_err(anyhow::Error::msg)?;
            assert_eq!(&got, relation, "{forge:?}: {rev}");
        }
        // A commit that is nowhere: the compare API answers 404 (an error the wait loop retries);
        // git, after fetching the branch, knows it is not on it.
        let unknown = oracle.relation(&ours, nowhere).await;
        match forge {
            Forge::Api => {
                let err = unknown.expect_err("an unknown commit cannot be compared");
                assert!(
                    matches!(
                        err.downcast_ref::<gitops_deploy::ancestry::Error>(),
                        Some(gitops_deploy::ancestry::Error::Compare { .. })
                    ),
                    "{err:?}"
                );
            }
            Forge::Git | Forge::ApiWithoutCommitCompare => match unknown {
                Ok(relation) => assert_eq!(relation, Relation::Unrelated, "{forge:?}"),
                Err(e) => panic!("{forge:?}: {}", gitops_deploy::error::chain(&*e)),
            },
        }
    }
    Ok(())
}

/// `kubectl rollout status --watch=false` against the sandbox, and our verdict on the same object.
async fn kubectl_and_ours(world: &World, image: &str) -> Result<(bool, String, Verdict)> {
    let cache = tempfile::tempdir()?;
    let out = tokio::process::Command::new("kubectl")
        .args([
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "web",
            "--watch=false",
        ])
        .arg("--kubeconfig")
        .arg(&world.kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .output()
        .await
        .context("kubectl is required")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let obj = world
        .kube
        .get(gitops_sandbox::kube::Resource::Deployments, "web", "web")
        .context("deployment")?;
    let ours = rollout_verdict(
        &Workload::from_json(obj).map_err(anyhow::Error::msg)?,
        &[image.to_owned()],
    );
    Ok((out.status.success(), text.trim().to_owned(), ours))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_verdict_agrees_with_kubectl_rollout_status() -> Result<()> {
    let mut t = timing();
    t.pod_start_delay = Duration::from_secs(3);
    let world = World::start(t).await?;
    let img = |t: &str| format!("{}:{t}", demo::IMAGE);

    // Rolled out: both say done.
    let (ok, text, ours) = kubectl_and_ours(&world, &img("1.0.0")).await?;
    assert!(
        ok && text == "deployment \"web\" successfully rolled out",
        "{text}"
    );
    assert_eq!(ours, Verdict::Ready);

    // Mid-rollout (pods take 3 s each): the same waiting line.
    world.commit_tag("1.6.0").await?;
    let client = argo_client(&world)?;
    client
        .apps()
        .get(APP)
        .refresh(gitops_deploy::argocd::Refresh::Normal)
        .send()
        .await?;
    // The two reads are not atomic: retry until they saw the same object.
    let ok = eventually(
        "a stable mid-rollout state",
        Duration::from_secs(20),
        || async {
            let (ok, text, ours) = kubectl_and_ours(&world, &img("1.6.0"))
                .await
                .map_err(|e| e.to_string())?;
            match &ours {
                Verdict::Waiting { why }
                    if text.starts_with("Waiting") && text == format!("{why}...") =>
                {
                    Ok(ok)
                }
                _ => Err(format!("{text} / {ours:?}")),
            }
        },
    )
    .await?;
    assert!(ok, "--watch=false exits 0 while waiting");

    // Broken: after the (scaled) progress deadline both fail with the same message.
    world.commit_tag("broken-3").await?;
    client
        .apps()
        .get(APP)
        .refresh(gitops_deploy::argocd::Refresh::Normal)
        .send()
        .await?;
    let ok = eventually(
        "the same failure from both",
        Duration::from_secs(40),
        || async {
            let (ok, text, ours) = kubectl_and_ours(&world, &img("broken-3"))
                .await
                .map_err(|e| e.to_string())?;
            match &ours {
                Verdict::Failed { why } if text == format!("error: {why}") => Ok(ok),
                _ => Err(format!("{text} / {ours:?}")),
            }
        },
    )
    .await?;
    assert!(!ok, "kubectl exits 1 on a failed rollout");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_always_waits_out_a_running_operation() -> Result<()> {
    let world = World::start(timing()).await?;
    // Auto-sync starts an operation on a refresh; it stays Running for 2 s, so our own sync request
    // meets "another operation is already in progress" first. The refresh is made here, before the
    // command starts: the command itself refreshes in the background, after reading the app.
    world.argo.set_sync_delay(Duration::from_secs(2));
    let sha = world.commit_tag("1.7.0").await?;
    refresh(&world).await?;
    let (out, err) = world
        .wait_on_argo(&sha, &["--argocd-sync", "always", "--timeout", "60s"])
        .await?;
    assert!(out.status.success(), "exit {:?}\n{err}", out.status);
    assert!(
        err.contains("another operation is already in progress); retrying"),
        "{err}"
    );
    assert!(err.contains("argocd: sync requested"), "{err}");
    assert!(
        err.contains(&format!("Synced Healthy at {}", &sha[..7])),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_sync_app_is_synced_by_us() -> Result<()> {
    let world = World::start(timing()).await?;
    world
        .argo
        .add_app(world.app_spec("web-manual", false), true)?;
    let sha = world.commit_tag("1.8.0").await?;
    let (out, err) = world
        .wait(&[
            "--commit",
            &sha,
            "--argocd-server",
            &world.argo_url,
            "--argocd-app",
            "web-manual",
            "--timeout",
            "60s",
        ])
        .await?;
    assert!(out.status.success(), "exit {:?}\n{err}", out.status);
    assert!(err.contains("argocd: sync requested"), "{err}");
    assert!(
        err.contains(&format!("Synced Healthy at {}", &sha[..7])),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_names_the_phase_and_last_state_and_exits_in_time() -> Result<()> {
    let world = World::start(timing()).await?;
    let never = "0123456789abcdef0123456789abcdef01234567";
    let started = Instant::now();
    let (out, err) = world.wait_on_argo(never, &["--timeout", "3s"]).await?;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(3 + 5), "took {took:?}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("gitops-deploy: error: argocd: timed out after 3s in phase argocd; last state: Argo CD is still at "), "{last}");
    assert!(last.ends_with(", waiting for 0123456"), "{last}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sync_after_retries_fails_with_message_not_during_a_retry() -> Result<()> {
    let world = World::start(timing()).await?;
    // Two retries 500 ms apart: while a retry is pending the operation is Running with finishedAt
    // set, which must not count as finished; after the last attempt it is Failed.
    world
        .argo
        .set_sync_retry(APP, 2, Duration::from_millis(500))?;
    world
        .argo
        .fail_next_syncs(3, "one or more objects failed to apply");
    let sha = world.commit_tag("1.9.0").await?;
    let (out, err) = world.wait_on_argo(&sha, &["--timeout", "60s"]).await?;
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("(retried 2 times)"),
        "waited through the retries: {last}"
    );
    assert!(
        last.starts_with(&format!(
            "gitops-deploy: error: argocd: sync of {} failed: ",
            &sha[..7]
        )),
        "{last}"
    );
    assert!(
        last.contains("one or more objects failed to apply"),
        "{last}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_with_the_forge_accepts_a_newer_commit_containing_ours() -> Result<()> {
    let world = World::start(timing()).await?;
    let ours = world.commit_tag("1.9.5").await?;
    let newer = world
        .commit(&[("NOTES.md", "unrelated\n")], "notes")
        .await?;
    let (out, err) = world
        .wait_on_argo(
            &ours,
            &[
                "--server-url",
                world.sandbox.gitea_url(),
                "--repository",
                demo::REPOSITORY,
                "--timeout",
                "60s",
            ],
        )
        .await?;
    assert!(out.status.success(), "exit {:?}\n{err}", out.status);
    assert!(
        err.contains(&format!("Synced Healthy at {}", &newer[..7])),
        "{err}"
    );
    assert_no_secrets(&world, &err);
    Ok(())
}

/// docs/research/field-argocd.md ranked #1: a refresh that hangs (the controller left the annotation) must not turn
/// an auto-sync app into a manual sync. With a token allowed only `applications, get`, the deploy
/// passes on the controller's own poll, and no sync is ever requested. (Before the fix: the refresh
/// GET blocked for 60 s, then a sync was POSTed and refused with 403.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_hang_with_a_get_only_token_deploys_an_auto_sync_app_without_sync() -> Result<()> {
    let world = World::start(gitops_sandbox::timing::Timing {
        poll_interval: Duration::from_secs(3),
        ..timing()
    })
    .await?;
    world.argo.hang_next_refreshes(1000);
    world.argo.add_get_only_token(GET_ONLY_TOKEN);
    let commit = world.commit_tag("1.1.0").await?;
    world.sandbox.requests().clear();
    let mut cmd = world.cli("wait");
    cmd.env("INPUT_ARGOCD_TOKEN", GET_ONLY_TOKEN).args([
        "--commit",
        &commit,
        "--argocd-server",
        &world.argo_url,
        "--argocd-app",
        APP,
        "--timeout",
        "40s",
    ]);
    let (out, err) = common::run(cmd, LIMIT).await?;
    assert!(out.status.success(), "{err}");
    let syncs: Vec<_> = world
        .sandbox
        .requests()
        .entries()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/sync"))
        .collect();
    assert!(syncs.is_empty(), "a sync was requested: {syncs:?}\n{err}");
    Ok(())
}
