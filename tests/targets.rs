//! End to end for the targets beyond kustomize: a Helm chart's values file and plain manifests,
//! each deployed through publish → Argo CD → rollout → HTTP over both transports, and a broken tag
//! rolled back to the previous values; 16 concurrent deploys into one values file lose no update.

mod support;
use support::world as common;

use anyhow::{ensure, Context, Result};
use common::{timing, World};
use gitops_sandbox::demo;

const CHART: &str = "charts/web";
const VALUES: &str = "charts/web/values.yaml";
const MANIFESTS: &str = "apps/plain/web.yaml";
const MARKED: &str = "apps/marked/web.yaml";

const CHART_YAML: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";

/// The values file as a person writes it: comments, a quoted tag, an unrelated digest key.
const VALUES_YAML: &str = "\
# Values for the web chart.
replicaCount: 3
image:
  repository: registry.example.com/demo/web # the app
  tag: \"1.0.0\"
  digest: \"\"
service:
  port: 8080
";

/// The demo Deployment as a chart template (only `{{ .Values.… }}`, what the stand-in renders).
fn template() -> String {
    demo::BASE_DEPLOYMENT.replace(
        "registry.example.com/demo/web:0.0.0-base",
        "{{ .Values.image.repository }}:{{ .Values.image.tag }}",
    )
}

/// The demo Deployment as a plain manifest, with a Service in the same file.
fn manifests() -> String {
    format!(
        "{}---\n{}",
        demo::BASE_SERVICE,
        demo::BASE_DEPLOYMENT.replace("0.0.0-base", "1.0.0")
    )
}

/// The plain manifests with a Flux marker on the image.
fn marked() -> String {
    manifests().replace(
        "image: registry.example.com/demo/web:1.0.0",
        "image: registry.example.com/demo/web:1.0.0 # {\"$imagepolicy\": \"flux-system:web\"}",
    )
}

/// A world whose Argo CD app `web-prod` follows `path` (a chart or a plain directory) instead of
/// the kustomize overlay; synced and healthy at 1.0.0.
async fn world_following(path: &str) -> Result<World> {
    let world = World::start(timing()).await?;
    world
        .commit(
            &[
                (&format!("{CHART}/Chart.yaml"), CHART_YAML),
                (VALUES, VALUES_YAML),
                (&format!("{CHART}/templates/deployment.yaml"), &template()),
                (MANIFESTS, &manifests()),
                (MARKED, &marked()),
            ],
            "a chart and plain manifests",
        )
        .await?;
    ensure!(world.argo.remove_app(common::APP), "the demo app exists");
    let mut spec = world.app_spec(common::APP, true);
    spec.path = path.into();
    let argo = world.argo.clone();
    tokio::task::spawn_blocking(move || argo.add_app(spec, true)).await??;
    ensure!(
        world.ready_tags() == vec!["1.0.0"; 3],
        "{:?}",
        world.ready_tags()
    );
    Ok(world)
}

async fn file_at_head(world: &World, path: &str) -> Result<String> {
    let bytes = world
        .sandbox
        .gitea()
        .read_file(demo::OWNER, demo::REPO, demo::BRANCH, path)
        .await?
        .context("the file exists")?;
    Ok(String::from_utf8(bytes)?)
}

/// `run` for `tag` with `target_args`, over `transport`, verifying rollout and `/version`; returns
/// (exit code, JSON report, log).
async fn deploy(
    world: &World,
    tag: &str,
    transport: &str,
    target_args: &[&str],
    extra: &[&str],
) -> Result<(i32, serde_json::Value, String)> {
    let mut args = world.verified_run_args(tag, transport, extra);
    // The path is the target's file, not the overlay.
    let at = args
        .iter()
        .position(|a| a == "--path")
        .expect("run_args has --path");
    args.drain(at..at + 2);
    args.extend(target_args.iter().map(|s| s.to_string()));
    world.run_json(&args, &[]).await
}

async fn assert_deployed(
    world: &World,
    tag: &str,
    code: i32,
    report: &serde_json::Value,
    err: &str,
) -> Result<()> {
    let head = world.head().await?;
    ensure!(code == 0, "exit {code}: {report}\n{err}");
    ensure!(
        report["result"] == "success"
            && report["changed"] == true
            && report["commit_sha"] == head.as_str()
            && report["synced_revision"] == head.as_str()
            && report["health"] == "Healthy",
        "{report}\n{err}"
    );
    ensure!(
        world.ready_tags() == vec![tag; 3],
        "{:?}\n{err}",
        world.ready_tags()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_values_deploy_is_verified_over_both_transports_and_rolled_back() -> Result<()> {
    let world = world_following(CHART).await?;
    let helm = ["--target", "helm", "--path", VALUES];
    for (tag, transport) in [("1.10", "api"), ("2.0.0", "git")] {
        let (code, report, err) = deploy(&world, tag, transport, &helm, &[]).await?;
        assert_deployed(&world, tag, code, &report, &err).await?;
        // Only the tag's bytes changed; its double quotes stay (and keep Helm from reading 1.1).
        ensure!(
            file_at_head(&world, VALUES).await?
                == VALUES_YAML.replace("\"1.0.0\"", &format!("\"{tag}\"")),
            "{}",
            file_at_head(&world, VALUES).await?
        );
        ensure!(
            report["previous_tag"] != serde_json::Value::Null,
            "{report}"
        );
    }
    // A broken tag fails its rollout; the previous values come back, healthy.
    let (code, report, err) =
        deploy(&world, "broken-3", "api", &helm, &["--rollback-on-failure"]).await?;
    ensure!(
        code == 1 && report["result"] == "rolled_back",
        "exit {code}: {report}\n{err}"
    );
    ensure!(
        err.lines()
            .last()
            .unwrap_or_default()
            .ends_with("; rolled back to 2.0.0 (healthy)"),
        "{err}"
    );
    ensure!(file_at_head(&world, VALUES).await? == VALUES_YAML.replace("\"1.0.0\"", "\"2.0.0\""));
    ensure!(world.ready_tags() == vec!["2.0.0"; 3]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_manifests_deploy_is_verified_over_both_transports_and_rolled_back() -> Result<()> {
    let world = world_following("apps/plain").await?;
    let target = ["--target", "manifests", "--path", MANIFESTS];
    for (tag, transport) in [("1.1.0", "git"), ("1.2.0", "api")] {
        let (code, report, err) = deploy(&world, tag, transport, &target, &[]).await?;
        assert_deployed(&world, tag, code, &report, &err).await?;
        ensure!(
            file_at_head(&world, MANIFESTS).await?
                == manifests().replace("web:1.0.0", &format!("web:{tag}")),
            "{}",
            file_at_head(&world, MANIFESTS).await?
        );
    }
    let (code, report, err) = deploy(
        &world,
        "broken-3",
        "git",
        &target,
        &["--rollback-on-failure"],
    )
    .await?;
    ensure!(
        code == 1 && report["result"] == "rolled_back",
        "exit {code}: {report}\n{err}"
    );
    ensure!(
        file_at_head(&world, MANIFESTS).await? == manifests().replace("web:1.0.0", "web:1.2.0")
    );
    ensure!(world.ready_tags() == vec!["1.2.0"; 3]);
    Ok(())
}

/// Bad target input is refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_target_input_writes_nothing() -> Result<()> {
    let world = world_following(CHART).await?;
    let before = world.head().await?;
    for (args, message) in [
        (
            vec!["--target", "helm", "--path", CHART],
            "is a directory; target `helm` edits files",
        ),
        (
            vec![
                "--target",
                "helm",
                "--path",
                VALUES,
                "--helm-keys",
                "tag=image.version",
            ],
            "key path image.version: `image` (line 4) has no key `version`",
        ),
        (
            vec!["--target", "yaml", "--path", VALUES],
            "key_path: required for `target: yaml`",
        ),
        (
            vec!["--target", "charts", "--path", VALUES],
            "target: \"charts\" is not one of",
        ),
        (
            vec!["--target", "manifests", "--path", VALUES],
            "no container or init container of a workload uses the image",
        ),
    ] {
        let (code, _report, err) = deploy(&world, "3.0.0", "api", &args, &[]).await?;
        ensure!(code == 2, "{args:?}: exit {code}\n{err}");
        ensure!(err.contains(message), "{args:?}: {err}");
    }
    ensure!(world.head().await? == before, "something was committed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flux_marker_deploy_is_verified_and_rolled_back() -> Result<()> {
    let world = world_following("apps/marked").await?;
    let target = [
        "--target",
        "markers",
        "--setter",
        "flux-system:web",
        "--path",
        MARKED,
    ];
    let (code, report, err) = deploy(&world, "1.3.0", "api", &target, &[]).await?;
    assert_deployed(&world, "1.3.0", code, &report, &err).await?;
    ensure!(file_at_head(&world, MARKED).await? == marked().replace("web:1.0.0", "web:1.3.0"));
    let (code, report, err) = deploy(
        &world,
        "broken-3",
        "git",
        &target,
        &["--rollback-on-failure"],
    )
    .await?;
    ensure!(
        code == 1 && report["result"] == "rolled_back",
        "exit {code}: {report}\n{err}"
    );
    ensure!(file_at_head(&world, MARKED).await? == marked().replace("web:1.0.0", "web:1.3.0"));
    ensure!(world.ready_tags() == vec!["1.3.0"; 3]);
    Ok(())
}
