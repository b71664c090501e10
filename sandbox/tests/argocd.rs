//! The sandbox's Argo CD: contract tests against argocd-swagger.json, the controller (refresh,
//! polling, auto-sync, operations, stale health, health from the rollout), its errors and faults,
//! and the app's `/version`.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod support;

use anyhow::{bail, Context, Result};
use gitops_sandbox::app::{self, AppTarget};
use gitops_sandbox::argocd::{self, AppSpec, ArgoCd, ArgoTiming};
use gitops_sandbox::eventually::eventually;
use gitops_sandbox::kube::{self, Kube, KubeTiming};
use gitops_sandbox::local_repo::LocalRepo;
use serde_json::{json, Value};
use support::{serve, Served};

const ARGO_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2FuZGJveA";
const KUBE_TOKEN: &str = "kube-token";
const IMAGE: &str = "registry.example.com/demo/web";

// ---- harness -----------------------------------------------------------------------------------

fn overlay(tag: &str) -> String {
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\n\
         images:\n- name: {IMAGE}\n  newTag: \"{tag}\"\n"
    )
}

const BASE: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels: {app: web}
spec:
  replicas: 3
  progressDeadlineSeconds: 200
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.example.com/demo/web:0.0.0
        ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
";

/// A GitOps world without the Gitea server: a bare repo, Kubernetes, Argo CD and the app.
struct World {
    _dir: tempfile::TempDir,
    repo: LocalRepo,
    argo: ArgoCd,
    kube: Kube,
    argo_http: Served,
    app_http: Served,
    _kube_http: Served,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http: reqwest::Client,
}

impl Drop for World {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn fast_timing() -> ArgoTiming {
    ArgoTiming {
        poll_interval: Duration::from_secs(180),
        sync_delay: Duration::from_millis(100),
        stale_health: Duration::ZERO,
        tick: Duration::from_millis(20),
        auto_retry_backoff: Duration::from_millis(50),
    }
}

impl World {
    async fn start(timing: ArgoTiming) -> Result<World> {
        let dir = tempfile::tempdir()?;
        let repo = LocalRepo::seed(
            dir.path(),
            &[
                (
                    "apps/web/base/kustomization.yaml",
                    "resources:\n- deployment.yaml\n",
                ),
                ("apps/web/base/deployment.yaml", BASE),
                (
                    "apps/web/overlays/prod/kustomization.yaml",
                    &overlay("1.0.0"),
                ),
            ],
        )?;
        let kube = Kube::new(
            KUBE_TOKEN,
            KubeTiming {
                pod_start_delay: Duration::from_millis(150),
                progress_deadline_scale: 0.01,
                tick: Duration::from_millis(20),
            },
        );
        let argo = ArgoCd::new(kube.clone(), ARGO_TOKEN, timing);
        let spec = |name: &str, auto_sync: bool| AppSpec {
            name: name.into(),
            project: "default".into(),
            repo_url: "http://127.0.0.1:1/demo/gitops.git".into(),
            repo_dir: repo.bare().to_owned(),
            path: "apps/web/overlays/prod".into(),
            target_revision: "main".into(),
            dest_namespace: "web".into(),
            auto_sync,
            other_sources: Vec::new(),
            labels: Default::default(),
        };
        argo.add_app(spec("web-prod", true), true)?;
        let tasks = vec![kube.spawn_simulator(), argo.spawn_controller()];
        let argo_http = serve(argocd::api::router(argo.clone())).await?;
        let app_http = serve(app::router(
            kube.clone(),
            AppTarget {
                namespace: "web".into(),
                deployment: "web".into(),
            },
        ))
        .await?;
        let kube_http = serve(kube::api::router(kube.clone())).await?;
        Ok(World {
            _dir: dir,
            repo,
            argo,
            kube,
            argo_http,
            app_http,
            _kube_http: kube_http,
            tasks,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
        })
    }

    /// A second app on the same repo path with manual sync (it starts synced too).
    fn add_manual_app(&self) -> Result<()> {
        self.argo.add_app(
            AppSpec {
                name: "web-manual".into(),
                project: "default".into(),
                repo_url: "http://127.0.0.1:1/demo/gitops.git".into(),
                repo_dir: self.repo.bare().to_owned(),
                path: "apps/web/overlays/prod".into(),
                target_revision: "main".into(),
                dest_namespace: "web".into(),
                auto_sync: false,
                other_sources: Vec::new(),
                labels: Default::default(),
            },
            true,
        )?;
        Ok(())
    }

    /// Commits a new tag to the overlay and pushes it; returns the commit SHA.
    fn commit_tag(&self, tag: &str) -> Result<String> {
        Ok(self.repo.commit(
            &[("apps/web/overlays/prod/kustomization.yaml", &overlay(tag))],
            &format!("deploy {tag}"),
        )?)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.argo_http.url)
    }

    async fn get(&self, path: &str) -> Result<(u16, Value)> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(ARGO_TOKEN)
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(ARGO_TOKEN)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }

    async fn app(&self, name: &str) -> Result<Value> {
        let (status, app) = self.get(&format!("/api/v1/applications/{name}")).await?;
        if status != 200 {
            bail!("GET app {name}: {status} {app}");
        }
        Ok(app)
    }

    /// Polls the app until `pred` holds or the deadline passes.
    async fn wait_app(
        &self,
        name: &str,
        within: Duration,
        pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        let pred = &std::cell::RefCell::new(pred);
        Ok(eventually(format!("app {name}"), within, || async move {
            let app = self.app(name).await.map_err(|e| e.to_string())?;
            if (pred.borrow_mut())(&app) {
                Ok(app)
            } else {
                Err(app.to_string())
            }
        })
        .await?)
    }

    /// Reads stream lines until `want` complete lines arrived (or the server ends the stream);
    /// fails at the deadline.
    async fn stream_lines(&self, query: &str, want: usize, within: Duration) -> Result<Vec<Value>> {
        let mut resp = self
            .http
            .get(self.url(&format!("/api/v1/stream/applications?{query}")))
            .bearer_auth(ARGO_TOKEN)
            .send()
            .await?;
        let mut buf = Vec::new();
        let deadline = tokio::time::sleep(within);
        tokio::pin!(deadline);
        while buf.iter().filter(|b| **b == b'\n').count() < want {
            tokio::select! {
                _ = &mut deadline => bail!("fewer than {want} stream lines within {within:?}"),
                chunk = resp.chunk() => match chunk? {
                    Some(c) => buf.extend_from_slice(&c),
                    None => break,
                },
            }
        }
        String::from_utf8_lossy(&buf)
            .lines()
            .map(|l| serde_json::from_str(l).context("stream line"))
            .collect()
    }
}

fn succeeded_at(app: &Value, sha: &str) -> bool {
    app["status"]["operationState"]["phase"] == "Succeeded"
        && app["status"]["operationState"]["syncResult"]["revision"] == sha
}

/// `reconciledAt >= operationState.finishedAt` (RFC 3339 UTC seconds compare as strings).
fn reconciled_after_op(app: &Value) -> bool {
    let s = &app["status"];
    match (
        s["reconciledAt"].as_str(),
        s["operationState"]["finishedAt"].as_str(),
    ) {
        (Some(r), Some(f)) => r >= f,
        _ => false,
    }
}

// ---- contract ----------------------------------------------------------------------------------

fn swagger() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        // Vendored from Argo CD's `assets/swagger.json` (the API description the project was given).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/argocd-swagger.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).expect("argocd-swagger.json is JSON")
    })
}

/// Validates `instance` against `{"$ref": pointer}` resolved inside the swagger document.
fn assert_valid(pointer: &str, instance: &Value) {
    let mut schema = swagger().clone();
    schema["$ref"] = json!(pointer);
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {pointer}: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{pointer}: {errors:#?}\ninstance: {instance}"
    );
}

fn def(name: &str) -> String {
    format!("#/definitions/{name}")
}

const STREAM_RESULT: &str = "#/paths/~1api~1v1~1stream~1applications/get/responses/200/schema";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_every_response_validates_against_the_swagger() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    w.add_manual_app()?;

    // The seed: synced and healthy at the branch head, with history and a finished operation.
    let app = w.app("web-prod").await?;
    assert_valid(&def("v1alpha1Application"), &app);
    let head = w.repo.head()?;
    assert_eq!(app["status"]["sync"]["status"], "Synced");
    assert_eq!(app["status"]["sync"]["revision"], head);
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    assert!(
        succeeded_at(&app, &head) && reconciled_after_op(&app),
        "{app}"
    );
    assert_eq!(app["spec"]["syncPolicy"]["automated"]["prune"], false);
    assert_eq!(app["status"]["resources"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        app["status"]["summary"]["images"],
        json!([format!("{IMAGE}:1.0.0")])
    );

    let (status, refreshed) = w
        .get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    assert_eq!(status, 200);
    assert_valid(&def("v1alpha1Application"), &refreshed);
    assert!(refreshed["metadata"]["annotations"]["argocd.argoproj.io/refresh"].is_null());

    // Keep this operation Running so the second sync below meets it.
    w.argo.delay_next_sync(Duration::from_secs(60));
    let (status, synced) = w
        .post("/api/v1/applications/web-manual/sync", &json!({}))
        .await?;
    assert_eq!(status, 200, "{synced}");
    assert_valid(&def("v1alpha1Application"), &synced);
    assert_eq!(synced["operation"]["sync"]["revision"], head);
    assert_eq!(synced["operation"]["initiatedBy"]["username"], "admin");

    let (status, tree) = w.get("/api/v1/applications/web-prod/resource-tree").await?;
    assert_eq!(status, 200);
    assert_valid(&def("v1alpha1ApplicationTree"), &tree);
    let kinds: Vec<&str> = tree["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .filter_map(|n| n["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "Pod").count(),
        3,
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"ReplicaSet") && kinds.contains(&"Service"),
        "{kinds:?}"
    );

    let (status, res) = w
        .get("/api/v1/applications/web-prod/resource?namespace=web&resourceName=web&version=v1&group=apps&kind=Deployment")
        .await?;
    assert_eq!(status, 200);
    assert_valid(&def("applicationApplicationResourceResponse"), &res);
    let live: Value = serde_json::from_str(res["manifest"].as_str().context("manifest")?)?;
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{IMAGE}:1.0.0")
    );

    let (status, who) = w.get("/api/v1/session/userinfo").await?;
    assert_eq!(status, 200);
    assert_valid(&def("sessionGetUserInfoResponse"), &who);
    assert_eq!(who["loggedIn"], true);

    let lines = w
        .stream_lines("name=web-prod", 1, Duration::from_secs(10))
        .await?;
    assert_eq!(lines[0]["result"]["type"], "ADDED");
    for line in &lines {
        assert_valid(STREAM_RESULT, line);
    }

    // Without a name: every app, each with its current state first.
    let all = w.stream_lines("", 2, Duration::from_secs(10)).await?;
    let mut names: Vec<&str> = all
        .iter()
        .filter(|l| l["result"]["type"] == "ADDED")
        .filter_map(|l| l["result"]["application"]["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["web-manual", "web-prod"]);

    // Errors: every body is a runtimeError with the code and status of docs/research/argocd-rollout.md §A2.2.
    let mut errors = Vec::new();
    let resp = w
        .http
        .get(w.url("/api/v1/applications/web-prod"))
        .send()
        .await?;
    errors.push((
        resp.status().as_u16(),
        resp.json::<Value>().await?,
        401,
        16,
        "no session information",
    ));
    let resp = w
        .http
        .get(w.url("/api/v1/applications/web-prod"))
        .bearer_auth("a.b.c")
        .send()
        .await?;
    errors.push((
        resp.status().as_u16(),
        resp.json::<Value>().await?,
        401,
        16,
        "invalid session: token signature is invalid",
    ));
    let (s, b) = w.get("/api/v1/applications/nope").await?;
    errors.push((s, b, 403, 7, "permission denied"));
    let (s, b) = w.get("/api/v1/applications/nope?project=default").await?;
    errors.push((s, b, 404, 5, "applications.argoproj.io \"nope\" not found"));
    let (s, b) = w
        .post("/api/v1/applications/web-manual/sync", &json!({}))
        .await?;
    errors.push((s, b, 400, 9, "another operation is already in progress"));
    let (s, b) = w
        .post(
            "/api/v1/applications/web-prod/sync",
            &json!({"revision": head}),
        )
        .await?;
    let auto_msg = format!("Cannot sync to {head}: auto-sync currently set to main");
    errors.push((s, b, 400, 9, auto_msg.as_str()));
    let (s, b) = w
        .get("/api/v1/applications/web-prod/resource?namespace=web&resourceName=other&version=v1&group=apps&kind=Deployment")
        .await?;
    // GetResource: InvalidArgument → 400, not 404 (docs/research/field-argocd.md §6).
    errors.push((
        s,
        b,
        400,
        3,
        "Deployment other not found as part of application web-prod",
    ));
    for (status, body, want_status, want_code, want_msg) in errors {
        assert_valid(&def("runtimeError"), &body);
        assert_eq!(
            (status, body["code"].as_u64()),
            (want_status, Some(want_code)),
            "{body}"
        );
        assert_eq!(body["message"], want_msg);
        assert_eq!(body["error"], want_msg);
    }
    let resp = w
        .http
        .get(w.url("/api/v1/stream/applications?name=web-prod"))
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    // `Watch` fails before its first message, so grpc-gateway writes a unary error body
    // (application.pb.gw.go:163; docs/research/field-argocd.md §2), not a stream error frame.
    let body: Value = resp.json().await?;
    assert_valid("#/definitions/runtimeError", &body);
    assert_eq!(body["code"], 16);
    assert_eq!(body["message"], "no session information");

    // A non-exact Content-Type is refused as Argo CD does (415, text/plain).
    let resp = w
        .http
        .post(w.url("/api/v1/applications/web-manual/sync"))
        .bearer_auth(ARGO_TOKEN)
        .header("Content-Type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .await?;
    assert_eq!(resp.status(), 415);
    assert_eq!(resp.text().await?, "Invalid content type");
    Ok(())
}

// ---- controller ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_then_auto_sync_rolls_out_and_the_app_answers_the_new_version() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    let sha = w.commit_tag("1.1.0")?;
    // The refresh blocks until processed: it returns the comparison with the new commit.
    let (status, app) = w
        .get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    assert_eq!(status, 200);
    assert_eq!(app["status"]["sync"]["revision"], sha);
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync");
    assert_eq!(
        app["operation"]["sync"]["revision"], sha,
        "auto-sync requested in the same pass"
    );
    assert_eq!(app["operation"]["initiatedBy"]["automated"], true);

    let mut saw_progressing = false;
    let done = w
        .wait_app("web-prod", Duration::from_secs(20), |a| {
            saw_progressing |= a["status"]["health"]["status"] == "Progressing";
            succeeded_at(a, &sha)
                && reconciled_after_op(a)
                && a["status"]["health"]["status"] == "Healthy"
                && a["operation"].is_null()
        })
        .await;
    let done = done?;
    assert!(saw_progressing, "health never showed the rollout");
    assert_eq!(done["status"]["sync"]["status"], "Synced");
    assert_eq!(done["status"]["history"].as_array().map(Vec::len), Some(2));
    let results = &done["status"]["operationState"]["syncResult"]["resources"];
    assert!(
        results
            .as_array()
            .context("results")?
            .iter()
            .any(|r| r["kind"] == "Deployment"
                && r["status"] == "Synced"
                && r["message"] == "deployment.apps/web configured"),
        "{results}"
    );
    let body: Value = w
        .http
        .get(format!("{}/version", w.app_http.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(body, json!({"version": "1.1.0"}));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_tag_degrades_the_app_after_the_progress_deadline() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    let sha = w.commit_tag("broken-1")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    // progressDeadlineSeconds 200 × 0.01 = 2 s.
    let app = w
        .wait_app("web-prod", Duration::from_secs(20), |a| {
            a["status"]["health"]["status"] == "Degraded"
        })
        .await?;
    assert!(succeeded_at(&app, &sha), "the sync itself succeeded");
    // The reason is on the resource; released Argo CD never sets the app-level message.
    let deployment = app["status"]["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["kind"] == "Deployment"))
        .context("the deployment resource")?;
    assert_eq!(
        deployment["health"]["message"],
        "Deployment \"web\" exceeded its progress deadline"
    );
    assert!(app["status"]["health"]["message"].is_null(), "{app}");
    // HEAD (3.6) names the resource that decided it.
    w.argo
        .set_profile(gitops_sandbox::profile::ArgoProfile::named("head").context("head")?);
    let app = w
        .wait_app("web-prod", Duration::from_secs(5), |a| {
            a["status"]["health"]["message"] == "Caused by apps/Deployment:web/web"
        })
        .await?;
    assert_eq!(app["status"]["health"]["status"], "Degraded");
    // Old pods keep serving.
    let body: Value = w
        .http
        .get(format!("{}/version", w.app_http.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(body, json!({"version": "1.0.0"}));
    let (_, tree) = w.get("/api/v1/applications/web-prod/resource-tree").await?;
    let degraded_pod = tree["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .find(|n| n["kind"] == "Pod" && n["health"]["status"] == "Degraded")
        .cloned()
        .context("a crash-looping pod in the tree")?;
    assert!(degraded_pod["health"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("back-off"));
    assert_eq!(degraded_pod["images"], json!([format!("{IMAGE}:broken-1")]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_health_window_is_observable() -> Result<()> {
    let w = World::start(ArgoTiming {
        stale_health: Duration::from_millis(1500),
        ..fast_timing()
    })
    .await?;
    let sha = w.commit_tag("1.2.0")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    // The first snapshot whose operation has succeeded still carries the old health and a
    // reconciledAt older than finishedAt: a client trusting "Synced + Healthy" would stop here.
    let first = w
        .wait_app("web-prod", Duration::from_secs(10), |a| {
            succeeded_at(a, &sha)
        })
        .await?;
    assert_eq!(first["status"]["sync"]["status"], "Synced");
    assert_eq!(first["status"]["sync"]["revision"], sha);
    assert_eq!(first["status"]["health"]["status"], "Healthy");
    assert!(
        !reconciled_after_op(&first),
        "reconciledAt must lag: {}",
        first["status"]
    );
    // Meanwhile the cluster is really rolling out.
    let dep = w
        .kube
        .get(kube::Resource::Deployments, "web", "web")
        .context("deployment")?;
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{IMAGE}:1.2.0")
    );
    // After the window the controller reconciles and the real health shows.
    let after = w
        .wait_app("web-prod", Duration::from_secs(10), reconciled_after_op)
        .await?;
    assert!(succeeded_at(&after, &sha));
    w.wait_app("web-prod", Duration::from_secs(10), |a| {
        reconciled_after_op(a) && a["status"]["health"]["status"] == "Healthy"
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_interval_is_honoured_without_refresh() -> Result<()> {
    let w = World::start(ArgoTiming {
        poll_interval: Duration::from_secs(2),
        ..fast_timing()
    })
    .await?;
    // A refresh resets the poll clock; the commit right after must wait for the next poll. Timed from
    // before the refresh: its answer may come late on a busy machine, the poll clock restarted
    // during it.
    let polled = Instant::now();
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    let sha = w.commit_tag("1.3.0")?;
    w.wait_app("web-prod", Duration::from_secs(10), |a| {
        a["status"]["sync"]["revision"] == sha
    })
    .await?;
    let waited = polled.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "seen after {waited:?}, before the poll"
    );
    assert!(waited < Duration::from_secs(5), "seen after {waited:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_skips_the_poll_interval() -> Result<()> {
    let w = World::start(fast_timing()).await?; // polls every 180 s
    let sha = w.commit_tag("1.4.0")?;
    let app = w.app("web-prod").await?;
    assert_ne!(
        app["status"]["sync"]["revision"], sha,
        "nothing polls within 180 s"
    );
    let started = Instant::now();
    let (_, app) = w.get("/api/v1/applications/web-prod?refresh=hard").await?;
    assert_eq!(app["status"]["sync"]["revision"], sha);
    assert!(started.elapsed() < Duration::from_secs(5));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_sync_runs_an_operation_to_the_requested_revision() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    w.add_manual_app()?;
    let first = w.commit_tag("2.0.0")?;
    let _second = w.commit_tag("2.1.0")?;
    // Manual apps may sync to an older commit than the branch head.
    let (status, app) = w
        .post(
            "/api/v1/applications/web-manual/sync",
            &json!({"revision": first, "prune": false}),
        )
        .await?;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["operation"]["sync"]["revision"], first);
    let done = w
        .wait_app("web-manual", Duration::from_secs(10), |a| {
            succeeded_at(a, &first)
        })
        .await?;
    assert_eq!(
        done["status"]["operationState"]["operation"]["initiatedBy"]["username"],
        "admin"
    );
    let dep = w
        .kube
        .get(kube::Resource::Deployments, "web", "web")
        .context("deployment")?;
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{IMAGE}:2.0.0")
    );
    Ok(())
}

// ---- faults --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_is_cut_after_n_events_and_resumes_with_resource_version() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    // Through the admin route: the next stream ends after 2 lines.
    let resp = w
        .http
        .post(w.url("/_sandbox/faults/stream-cut"))
        .json(&json!({"after_events": 2, "streams": 1}))
        .send()
        .await?;
    assert_eq!(resp.status(), 204);
    let sha = w.commit_tag("3.0.0")?;
    let reader = {
        let url = w.url("/api/v1/stream/applications?name=web-prod");
        let http = w.http.clone();
        tokio::spawn(async move {
            let body = http
                .get(url)
                .bearer_auth(ARGO_TOKEN)
                .send()
                .await?
                .text()
                .await?;
            anyhow::Ok(body)
        })
    };
    // Generate changes until the cut stream has ended by itself.
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    eventually("the cut stream ends", Duration::from_secs(10), || async {
        if reader.is_finished() {
            Ok(())
        } else {
            Err("still open".to_owned())
        }
    })
    .await?;
    let body = reader.await??;
    let lines: Vec<Value> = body
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2, "{body}");
    assert_eq!(lines[0]["result"]["type"], "ADDED");
    assert_eq!(lines[1]["result"]["type"], "MODIFIED");
    let last_rv = lines[1]["result"]["application"]["metadata"]["resourceVersion"]
        .as_str()
        .context("rv")?
        .to_owned();
    // Resuming: the current state first (never older than asked), and the stream is no longer cut.
    let query = format!("name=web-prod&resourceVersion={last_rv}");
    let reading = w.stream_lines(&query, 2, Duration::from_secs(10));
    tokio::pin!(reading);
    // Refreshes make changes until the resumed stream has delivered two lines.
    let resumed = loop {
        tokio::select! {
            lines = &mut reading => break lines?,
            refreshed = w.get("/api/v1/applications/web-prod?refresh=normal") => { refreshed?; }
        }
    };
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    assert_eq!(resumed[1]["result"]["type"], "MODIFIED");
    assert_eq!(resumed[0]["result"]["type"], "ADDED");
    let rv0: u64 = resumed[0]["result"]["application"]["metadata"]["resourceVersion"]
        .as_str()
        .context("rv")?
        .parse()?;
    assert!(rv0 >= last_rv.parse()?);
    w.wait_app("web-prod", Duration::from_secs(10), |a| {
        succeeded_at(a, &sha)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_delay_and_sync_failure_faults() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    // A delayed sync stays Running for at least the extra time.
    w.argo.delay_next_sync(Duration::from_millis(800));
    let sha = w.commit_tag("4.0.0")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    let running = w
        .wait_app("web-prod", Duration::from_secs(5), |a| {
            a["status"]["operationState"]["phase"] == "Running"
        })
        .await?;
    assert!(running["status"]["operationState"]["finishedAt"].is_null());
    let started = Instant::now();
    w.wait_app("web-prod", Duration::from_secs(10), |a| {
        succeeded_at(a, &sha)
    })
    .await?;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );

    // A failing sync (through the admin route): Failed with the message, nothing applied.
    let resp = w
        .http
        .post(w.url("/_sandbox/faults/sync-fail"))
        .json(&json!({"count": 6, "message": "admission webhook denied the request"}))
        .send()
        .await?;
    assert_eq!(resp.status(), 204);
    let bad = w.commit_tag("4.1.0")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    let failed = w
        .wait_app("web-prod", Duration::from_secs(10), |a| {
            a["status"]["operationState"]["phase"] == "Failed"
        })
        .await?;
    // An automated operation is retried 5 times (controller/appcontroller.go `autoSync`).
    assert_eq!(
        failed["status"]["operationState"]["message"],
        "one or more objects failed to apply, reason: admission webhook denied the request (retried 5 times)."
    );
    assert_eq!(failed["status"]["operationState"]["retryCount"], 5);
    assert_eq!(
        failed["status"]["operationState"]["operation"]["sync"]["revision"],
        bad
    );
    assert!(failed["operation"].is_null());
    let dep = w
        .kube
        .get(kube::Resource::Deployments, "web", "web")
        .context("deployment")?;
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{IMAGE}:4.0.0")
    );
    // Like Argo CD, auto-sync does not retry the same revision after a failure.
    let app = w
        .wait_app("web-prod", Duration::from_secs(5), |a| {
            a["status"]["sync"]["status"] == "OutOfSync"
        })
        .await?;
    assert_eq!(app["status"]["sync"]["revision"], bad);
    assert!(app["operation"].is_null());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_time_route_scales_the_controller() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    let resp: Value = w
        .http
        .post(w.url("/_sandbox/time"))
        .json(&json!({"poll_interval_ms": 300, "sync_delay_ms": 50, "stale_health_ms": 0}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        resp,
        json!({"poll_interval_ms": 300, "sync_delay_ms": 50, "stale_health_ms": 0})
    );
    // With a 300 ms poll, a commit is picked up without any refresh.
    let sha = w.commit_tag("5.0.0")?;
    w.wait_app("web-prod", Duration::from_secs(10), |a| {
        succeeded_at(a, &sha)
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_answers_503_without_ready_pods() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    w.kube.apply(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "down", "namespace": "other"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "down"}},
            "template": {"metadata": {"labels": {"app": "down"}},
                "spec": {"containers": [{"name": "down", "image": "x/down:broken-1"}]}}},
    }))?;
    let down = serve(app::router(
        w.kube.clone(),
        AppTarget {
            namespace: "other".into(),
            deployment: "down".into(),
        },
    ))
    .await?;
    let resp = w.http.get(format!("{}/version", down.url)).send().await?;
    assert_eq!(resp.status(), 503);
    Ok(())
}

// ---- the whole sandbox -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_world_deploys_a_commit_end_to_end() -> Result<()> {
    use gitops_sandbox::faults::{FaultKind, FaultRule, Server};
    use gitops_sandbox::{demo, timing::Timing, Sandbox, SandboxConfig};

    let sandbox = Sandbox::start(SandboxConfig {
        timing: Timing {
            sync_delay: Duration::from_millis(100),
            stale_health: Duration::from_millis(300),
            pod_start_delay: Duration::from_millis(100),
            ..Timing::default()
        },
        ..SandboxConfig::default()
    })
    .await?;
    let summary = sandbox.summary();
    for key in [
        "argocd_url",
        "argocd_token",
        "kube_url",
        "kubeconfig",
        "app_url",
    ] {
        assert!(
            summary[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key} in {summary}"
        );
    }
    assert_eq!(summary["argocd_app"], "web-prod");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let app_url = format!("{}/api/v1/applications/web-prod", sandbox.argocd_url());
    let get = |url: String| {
        let http = http.clone();
        let token = sandbox.argocd_token().to_owned();
        async move {
            anyhow::Ok(
                http.get(url)
                    .bearer_auth(token)
                    .send()
                    .await?
                    .json::<Value>()
                    .await?,
            )
        }
    };

    // Seeded: synced to the branch head and healthy, serving 1.0.0.
    let head = sandbox
        .gitea()
        .branch_head(demo::OWNER, demo::REPO, demo::BRANCH)
        .await?;
    let app = get(app_url.clone()).await?;
    assert_eq!(
        Some(app["status"]["sync"]["revision"].as_str().unwrap_or("")),
        head.as_deref()
    );
    assert_eq!(app["status"]["health"]["status"], "Healthy");
    assert_eq!(
        app["spec"]["source"]["repoURL"],
        format!("{}/demo/gitops.git", sandbox.gitea_url())
    );
    let version: Value = http
        .get(format!("{}/version", sandbox.app_url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(version, json!({"version": demo::TAG}));

    // The core's fault hook applies to the Argo CD server too.
    sandbox
        .faults()
        .inject(FaultRule::new(Server::ArgoCd, FaultKind::Status(503)).times(1));
    let resp = http
        .get(&app_url)
        .bearer_auth(sandbox.argocd_token())
        .send()
        .await?;
    assert_eq!(resp.status(), 503);

    // A commit through Gitea, a refresh, the rollout seen by the real kubectl, the new version served.
    let sha = sandbox
        .gitea()
        .commit_files(
            demo::OWNER,
            demo::REPO,
            demo::BRANCH,
            &[(
                demo::KUSTOMIZATION,
                &demo::PROD_KUSTOMIZATION.replace("1.0.0", "1.1.0"),
            )],
            "deploy 1.1.0",
        )
        .await?;
    let app = get(format!("{app_url}?refresh=normal")).await?;
    assert_eq!(app["status"]["sync"]["revision"], sha);
    let cache = tempfile::tempdir()?;
    let out = tokio::process::Command::new("kubectl")
        .args([
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "web",
            "--timeout",
            "60s",
            "--kubeconfig",
        ])
        .arg(sandbox.kubeconfig())
        .arg("--cache-dir")
        .arg(cache.path())
        .kill_on_drop(true)
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(
        format!("app healthy at {sha}"),
        Duration::from_secs(20),
        || async {
            let app = get(app_url.clone()).await.map_err(|e| e.to_string())?;
            if succeeded_at(&app, &sha)
                && reconciled_after_op(&app)
                && app["status"]["health"]["status"] == "Healthy"
            {
                Ok(())
            } else {
                Err(app["status"].to_string())
            }
        },
    )
    .await?;
    let version: Value = http
        .get(format!("{}/version", sandbox.app_url()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(version, json!({"version": "1.1.0"}));
    assert!(!sandbox.requests().for_server(Server::Kube).is_empty());
    assert!(!sandbox.requests().for_server(Server::ArgoCd).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_mixes_old_and_new_versions_during_a_rollout() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    w.kube.set_pod_start_delay(Duration::from_millis(400));
    w.commit_tag("6.0.0")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    // Freeze the cluster as soon as both versions have ready pods.
    eventually("both versions ready", Duration::from_secs(10), || async {
        let tags = w.kube.ready_pod_tags("web", "web");
        if tags.iter().any(|t| t == "1.0.0") && tags.iter().any(|t| t == "6.0.0") {
            w.kube.pause_simulator(true);
            Ok(())
        } else {
            Err(format!("{tags:?}"))
        }
    })
    .await?;
    let ready = w.kube.ready_pod_tags("web", "web");
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..120 {
        let body: Value = w
            .http
            .get(format!("{}/version", w.app_http.url))
            .send()
            .await?
            .json()
            .await?;
        *seen
            .entry(body["version"].as_str().unwrap_or("").to_owned())
            .or_insert(0) += 1;
    }
    w.kube.pause_simulator(false);
    // Every answer comes from a ready pod, and both versions answer (each has ≥ 1 of ≤ 4 ready pods:
    // missing one in 120 draws has probability below 1e-14).
    assert!(
        seen.keys().all(|v| ready.contains(v)),
        "{seen:?} vs {ready:?}"
    );
    assert_eq!(seen.len(), 2, "{seen:?} from ready pods {ready:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparison_error_and_missing_health() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    // A kustomization the renderer cannot build: the app reports a ComparisonError, sync Unknown.
    w.repo.commit(
        &[(
            "apps/web/overlays/prod/kustomization.yaml",
            "resources:\n- ../../base\n- missing.yaml\n",
        )],
        "break it",
    )?;
    let (_, app) = w
        .get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    assert_eq!(app["status"]["sync"]["status"], "Unknown");
    let cond = &app["status"]["conditions"][0];
    assert_eq!(cond["type"], "ComparisonError");
    assert!(
        cond["message"]
            .as_str()
            .unwrap_or("")
            .contains("apps/web/overlays/prod/missing.yaml: not found"),
        "{cond}"
    );
    assert!(
        app["operation"].is_null(),
        "no auto-sync without a target state"
    );

    // A managed workload deleted from the cluster: Missing, OutOfSync.
    w.commit_tag("7.0.0")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    w.wait_app("web-prod", Duration::from_secs(10), |a| {
        a["status"]["health"]["status"] == "Healthy" && a["status"]["sync"]["status"] == "Synced"
    })
    .await?;
    w.kube.delete(kube::Resource::Deployments, "web", "web");
    // From 3.4 a missing resource no longer makes the app Missing while another one is live.
    let app = w
        .wait_app("web-prod", Duration::from_secs(10), |a| {
            a["status"]["sync"]["status"] == "OutOfSync"
        })
        .await?;
    assert_eq!(app["status"]["health"]["status"], "Healthy", "{app}");
    // Before 3.4 it does.
    w.argo
        .set_profile(gitops_sandbox::profile::ArgoProfile::named("3.0").context("3.0")?);
    let app = w
        .wait_app("web-prod", Duration::from_secs(10), |a| {
            a["status"]["health"]["status"] == "Missing"
        })
        .await?;
    assert_eq!(app["status"]["sync"]["status"], "OutOfSync");
    assert!(app["status"]["conditions"].is_null());
    let res = app["status"]["resources"]
        .as_array()
        .context("resources")?
        .iter()
        .find(|r| r["kind"] == "Deployment")
        .cloned()
        .context("deployment resource")?;
    assert_eq!(
        (res["status"].clone(), res["health"]["status"].clone()),
        (json!("OutOfSync"), json!("Missing"))
    );
    assert!(
        w.kube.list(kube::Resource::Pods, Some("web")).is_empty(),
        "pods go with the deployment"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_retry_keeps_the_operation_running_with_finished_at() -> Result<()> {
    let w = World::start(fast_timing()).await?;
    w.argo
        .set_sync_retry("web-prod", 2, Duration::from_millis(400))?;
    // One failure, then success on the first retry.
    w.argo.fail_next_syncs(1, "etcdserver: request timed out");
    let sha = w.commit_tag("8.0.0")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    let retrying = w
        .wait_app("web-prod", Duration::from_secs(10), |a| {
            a["status"]["operationState"]["retryCount"] == 1
        })
        .await?;
    let state = &retrying["status"]["operationState"];
    assert_valid(&def("v1alpha1Application"), &retrying);
    assert_eq!(state["phase"], "Running", "{state}");
    assert!(
        state["finishedAt"].is_string(),
        "finishedAt is set while a retry is pending: {state}"
    );
    let message = state["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("one or more objects failed to apply, reason: etcdserver: request timed out. Retrying attempt #1 at "),
        "{message}"
    );
    assert_eq!(
        retrying["operation"]["sync"]["revision"], sha,
        "the operation stays requested"
    );
    assert_eq!(retrying["spec"]["syncPolicy"]["retry"]["limit"], 2);
    let done = w
        .wait_app("web-prod", Duration::from_secs(10), |a| {
            succeeded_at(a, &sha)
        })
        .await?;
    assert_eq!(done["status"]["operationState"]["retryCount"], 1);

    // Every attempt fails: Failed after the retries, with Argo CD's suffix.
    w.argo.fail_next_syncs(3, "denied");
    let bad = w.commit_tag("8.1.0")?;
    w.get("/api/v1/applications/web-prod?refresh=normal")
        .await?;
    let failed = w
        .wait_app("web-prod", Duration::from_secs(10), |a| {
            a["status"]["operationState"]["phase"] == "Failed"
                && a["status"]["operationState"]["operation"]["sync"]["revision"] == bad
        })
        .await?;
    assert_eq!(
        failed["status"]["operationState"]["message"],
        "one or more objects failed to apply, reason: denied (retried 2 times)."
    );
    assert!(failed["operation"].is_null());
    Ok(())
}
