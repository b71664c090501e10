//! Several Argo CD apps in one deploy, against the sandbox: three overlays verified in three apps in
//! parallel (one slow), discovery (`argocd_app: auto`, a label selector) among decoys (another
//! repository, another branch, another path, a multi-source app whose source of ours deploys
//! nothing), a preflight mismatch that fails before any commit, and `argocd_require: any`.

mod support;
use support::world as common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use common::{error, timing, World};
use gitops_sandbox::argocd::{AppSpec, OtherSource};
use gitops_sandbox::demo;
use serde_json::Value;

/// Overlays of the demo app: each its own namespace, same base.
const OVERLAYS: [&str; 10] = [
    "cluster-1",
    "cluster-2",
    "eu",
    "us",
    "ap",
    "multi",
    "staging-a",
    "staging-b",
    "stuck",
    "nested",
];

fn overlay_path(name: &str) -> String {
    format!("apps/web/overlays/{name}")
}

/// A world whose demo repository has the overlays above, each deployed by nobody yet.
async fn world() -> Result<World> {
    let world = World::start(timing()).await?;
    let texts: Vec<(String, String)> = OVERLAYS
        .iter()
        .map(|o| {
            (
                format!("{}/kustomization.yaml", overlay_path(o)),
                demo::PROD_KUSTOMIZATION
                    .replace("namespace: web\n", &format!("namespace: web-{o}\n")),
            )
        })
        .collect();
    let mut files: Vec<(&str, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    // An overlay deployed only through another kustomization that includes it.
    files.push((
        "apps/web/wrappers/nested/kustomization.yaml",
        "resources:\n  - ../../overlays/nested\n",
    ));
    world.commit(&files, "overlays").await?;
    Ok(world)
}

/// An app deploying overlay `o`, labelled `team=web`, `env=<o>`.
fn app(world: &World, name: &str, o: &str) -> AppSpec {
    AppSpec {
        path: overlay_path(o),
        dest_namespace: format!("web-{o}"),
        labels: [
            ("team".to_owned(), "web".to_owned()),
            ("env".to_owned(), o.to_owned()),
        ]
        .into_iter()
        .collect(),
        ..world.app_spec(name, true)
    }
}

fn args(world: &World, overlays: &[&str], extra: &[&str]) -> Vec<String> {
    args_for(world, "2.0.0", overlays, extra)
}

fn args_for(world: &World, tag: &str, overlays: &[&str], extra: &[&str]) -> Vec<String> {
    let paths: Vec<String> = overlays.iter().map(|o| overlay_path(o)).collect();
    let mut a: Vec<String> = [
        "--server-url",
        world.sandbox.gitea_url(),
        "--repository",
        demo::REPOSITORY,
        "--path",
        &paths.join(","),
        "--image",
        demo::IMAGE,
        "--tag",
        tag,
        "--argocd-server",
        &world.argo_url,
        "--rollout",
        "auto",
        "--timeout",
        "60s",
        "--degraded-grace",
        "3s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn apps_output(report: &Value) -> Result<Vec<(String, String)>> {
    let text = report["apps"].as_str().unwrap_or("[]");
    let apps: Vec<Value> = serde_json::from_str(text)?;
    Ok(apps
        .iter()
        .map(|a| {
            (
                a["app"].as_str().unwrap_or_default().to_owned(),
                a["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// One deploy editing three overlays, verified in their three apps in parallel; one of them is
/// slow (a 2 s PreSync hook), and the others do not wait for it.
#[tokio::test]
async fn three_overlays_are_verified_in_three_apps_in_parallel() -> Result<()> {
    let world = world().await?;
    for o in ["eu", "us", "ap"] {
        world
            .argo
            .add_app(app(&world, &format!("web-{o}"), o), true)?;
    }
    world
        .argo
        .set_presync_hook("web-ap", Some(Duration::from_secs(2)));
    let started = Instant::now();
    let (code, report, err) = world
        .run_json(
            &args(
                &world,
                &["eu", "us", "ap"],
                &["--argocd-app", "web-eu,web-us,web-ap"],
            ),
            &[],
        )
        .await?;
    let took = started.elapsed();
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let mut apps = apps_output(&report)?;
    apps.sort();
    ensure!(
        apps == [
            ("web-ap".into(), "success".into()),
            ("web-eu".into(), "success".into()),
            ("web-us".into(), "success".into())
        ],
        "{report}"
    );
    let head = world.head().await?;
    for o in ["eu", "us", "ap"] {
        ensure!(
            err.contains(&format!(
                "argocd[web-{o}]: Synced Healthy at {}",
                &head[..7]
            )),
            "{err}"
        );
        ensure!(
            err.contains(&format!("rollout[web-{o}]: rolled out: deployment/web")),
            "{err}"
        );
        let tags = world
            .kube
            .ready_pod_tags(&format!("web-{o}"), demo::WORKLOAD);
        ensure!(tags == vec!["2.0.0"; 3], "web-{o}: {tags:?}");
    }
    // The fast apps finished before the slow one: their lines come first.
    let line_of = |needle: &str| err.find(needle).unwrap_or(usize::MAX);
    ensure!(
        line_of("argocd[web-eu]: Synced Healthy") < line_of("argocd[web-ap]: Synced Healthy")
            && line_of("argocd[web-us]: Synced Healthy")
                < line_of("argocd[web-ap]: Synced Healthy"),
        "{err}"
    );
    // In parallel: about the slow app's time, not the sum.
    ensure!(took < Duration::from_secs(20), "took {took:?}");
    Ok(())
}

/// Decoys around the right apps: another repository, another branch, another path, and a
/// multi-source app whose source of ours is only a `ref` (values for a chart).
async fn with_decoys(world: &World) -> Result<()> {
    world.argo.add_app(app(world, "web-eu", "eu"), true)?;
    world.argo.add_app(app(world, "web-us", "us"), true)?;
    let ours = format!("{}/{}.git", world.sandbox.gitea_url(), demo::REPOSITORY);
    // Multi-source, found: a chart from elsewhere plus our overlay.
    world.argo.add_app(
        AppSpec {
            other_sources: vec![OtherSource {
                position: 0,
                spec: serde_json::json!({"repoURL": "https://charts.example.com", "chart": "web",
                                         "targetRevision": "1.2.3"}),
                revision: "1.2.3".into(),
            }],
            ..app(world, "web-multi", "multi")
        },
        true,
    )?;
    // Found through its kustomization, which includes the edited overlay.
    world.argo.add_app(
        AppSpec {
            path: "apps/web/wrappers/nested".into(),
            ..app(world, "web-wrapped", "nested")
        },
        true,
    )?;
    // An ApplicationSet's list generator: one app per cluster, owned by the set.
    world.argo.add_generated_apps(
        "web-clusters",
        vec![
            app(world, "web-cluster-1", "cluster-1"),
            app(world, "web-cluster-2", "cluster-2"),
        ],
        true,
    )?;
    // Decoys.
    world.argo.add_app(
        AppSpec {
            repo_url: format!("{}/demo/other.git", world.sandbox.gitea_url()),
            ..app(world, "decoy-repo", "eu")
        },
        false,
    )?;
    let dir = world.sandbox.gitea().repo_dir(demo::OWNER, demo::REPO);
    gitops_sandbox::git::Git::new(&dir, ["branch", "release", demo::BRANCH])
        .output()
        .await?;
    world.argo.add_app(
        AppSpec {
            target_revision: "release".into(),
            ..app(world, "decoy-branch", "us")
        },
        false,
    )?;
    world.argo.add_app(
        AppSpec {
            labels: [
                ("team".to_owned(), "web".to_owned()),
                ("env".to_owned(), "eu".to_owned()),
            ]
            .into_iter()
            .collect(),
            ..app(world, "decoy-path", "staging-a")
        },
        true,
    )?;
    world.argo.add_app(
        AppSpec {
            other_sources: vec![OtherSource {
                position: 1,
                spec: serde_json::json!({"repoURL": ours, "targetRevision": "main", "ref": "values"}),
                revision: world.head().await?,
            }],
            ..app(world, "decoy-multi", "staging-b")
        },
        true,
    )?;
    Ok(())
}

/// `argocd_app: auto` finds exactly the apps that deploy the edited overlays.
#[tokio::test]
async fn discovery_finds_exactly_the_right_apps_among_decoys() -> Result<()> {
    let world = world().await?;
    with_decoys(&world).await?;
    let (code, report, err) = world
        .run_json(
            &args(
                &world,
                &["eu", "us", "multi", "nested", "cluster-1", "cluster-2"],
                &["--argocd-app", "auto"],
            ),
            &[],
        )
        .await?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let mut apps = apps_output(&report)?;
    apps.sort();
    let names: Vec<&str> = apps.iter().map(|(a, _)| a.as_str()).collect();
    ensure!(
        names
            == [
                "web-cluster-1",
                "web-cluster-2",
                "web-eu",
                "web-multi",
                "web-us",
                "web-wrapped"
            ],
        "{report}"
    );
    // Generated apps are Applications owned by their ApplicationSet, found like any other.
    let generated = world.argo.app_json("web-cluster-1")?;
    ensure!(
        generated["metadata"]["ownerReferences"][0]["kind"] == "ApplicationSet"
            && generated["metadata"]["ownerReferences"][0]["name"] == "web-clusters",
        "{generated}"
    );
    ensure!(apps.iter().all(|(_, r)| r == "success"), "{report}");

    // A label selector keeps the matching apps that deploy what we edit (not decoy-path, labelled
    // env=eu too).
    let (code, report, err) = world
        .run_json(
            &args(
                &world,
                &["eu", "us"],
                &["--argocd-selector", "team=web,env in (eu,us)"],
            ),
            &[],
        )
        .await?;
    ensure!(code == 0, "{report}\n{err}");
    ensure!(err.contains("waiting for 2 apps: web-eu, web-us"), "{err}");

    // Nothing matches: a clear failure before any commit, naming why the apps looked at differ.
    let before = world.head().await?;
    let (code, report, err) = world
        .run_json(&args(&world, &["ap"], &["--argocd-app", "auto"]), &[])
        .await?;
    ensure!(
        code == 2 && report["result"] == "invalid_input",
        "{report}\n{err}"
    );
    ensure!(
        error(&report).contains("no Argo CD application (auto) deploys apps/web/overlays/ap"),
        "{report}"
    );
    ensure!(world.head().await? == before, "a commit was made");
    Ok(())
}

/// Named apps are checked before publishing: one that does not deploy the edited paths fails the
/// deploy with exit 2, naming what differs, and nothing is committed.
#[tokio::test]
async fn a_preflight_mismatch_fails_before_any_commit() -> Result<()> {
    let world = world().await?;
    with_decoys(&world).await?;
    let before = world.head().await?;
    let (code, report, err) = world
        .run_json(
            &args(
                &world,
                &["eu"],
                &["--argocd-app", "web-eu,decoy-path,decoy-branch,decoy-repo"],
            ),
            &[],
        )
        .await?;
    ensure!(code == 2 && report["phase"] == "inputs", "{report}\n{err}");
    for needle in [
        "app \"decoy-path\" does not deploy what this run edits: its source path \"apps/web/overlays/staging-a\" contains none of apps/web/overlays/eu",
        "app \"decoy-branch\" does not deploy what this run edits: its source tracks revision \"release\", not the branch \"main\" we write to",
        "app \"decoy-repo\" does not deploy what this run edits: it follows",
    ] {
        ensure!(error(&report).contains(needle), "{needle}\n{report}");
    }
    ensure!(!error(&report).contains("app \"web-eu\""), "{report}");
    ensure!(world.head().await? == before, "a commit was made");
    // `argocd_preflight: false` lets a named app through (the wait then shows what happens).
    let (code, _, err) = world
        .run_json(
            &args(
                &world,
                &["eu"],
                &["--argocd-app", "web-eu", "--argocd-preflight", "false"],
            ),
            &[],
        )
        .await?;
    ensure!(code == 0, "{err}");
    Ok(())
}

/// `argocd_require: any`: one app that never syncs in time does not fail the deploy, and says so;
/// with the default `all` it does, naming the app.
#[tokio::test]
async fn require_any_succeeds_with_one_app_and_all_names_the_failing_one() -> Result<()> {
    let world = world().await?;
    world.argo.add_app(app(&world, "web-eu", "eu"), true)?;
    world
        .argo
        .add_app(app(&world, "web-stuck", "stuck"), true)?;
    world
        .argo
        .set_presync_hook("web-stuck", Some(Duration::from_secs(300)));
    let two = ["--argocd-app", "web-eu,web-stuck", "--sync-timeout", "4s"];
    let mut any = two.to_vec();
    any.extend(["--argocd-require", "any"]);
    let (code, report, err) = world
        .run_json(&args(&world, &["eu", "stuck"], &any), &[])
        .await?;
    ensure!(
        code == 0 && report["result"] == "success",
        "{report}\n{err}"
    );
    let apps = apps_output(&report)?;
    ensure!(
        apps.contains(&("web-eu".into(), "success".into())),
        "{report}"
    );
    ensure!(
        apps.contains(&("web-stuck".into(), "failed".into())),
        "{report}"
    );
    ensure!(err.contains("warning: web-stuck: "), "{err}");
    ensure!(
        err.contains("(argocd_require: any: 1 app(s) passed)"),
        "{err}"
    );

    let a = args_for(&world, "2.0.1", &["eu", "stuck"], &two);
    let (code, report, err) = world.run_json(&a, &[]).await?;
    ensure!(code == 1 && report["phase"] == "argocd", "{report}\n{err}");
    ensure!(
        error(&report).contains("1 of 2 apps failed: web-stuck: "),
        "{report}"
    );
    Ok(())
}

/// A broken tag deployed to two apps is rolled back in both, each waited for in parallel.
#[tokio::test]
async fn a_failed_deploy_to_two_apps_is_rolled_back_in_both() -> Result<()> {
    let world = world().await?;
    world.argo.add_app(app(&world, "web-eu", "eu"), true)?;
    world.argo.add_app(app(&world, "web-us", "us"), true)?;
    let (code, report, err) = world
        .run_json(
            &args_for(
                &world,
                "broken-3",
                &["eu", "us"],
                &["--argocd-app", "web-eu,web-us", "--rollback-on-failure"],
            ),
            &[],
        )
        .await?;
    ensure!(
        code == 1 && report["result"] == "rolled_back",
        "{report}\n{err}"
    );
    ensure!(
        err.lines()
            .last()
            .unwrap_or_default()
            .ends_with("rolled back to 1.0.0 (healthy)"),
        "{err}"
    );
    for o in ["eu", "us"] {
        ensure!(
            err.contains(&format!("rollback[web-{o}]: Argo CD Synced Healthy")),
            "{err}"
        );
        let tags = world
            .kube
            .ready_pod_tags(&format!("web-{o}"), demo::WORKLOAD);
        ensure!(tags == vec!["1.0.0"; 3], "web-{o}: {tags:?}");
    }
    Ok(())
}
