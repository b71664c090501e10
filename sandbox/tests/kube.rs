//! The sandbox's Kubernetes against the real `kubectl`: rollout status (good image, `broken-` tag,
//! watch 410), `kubectl get`, and the renderer against `kubectl kustomize`.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

mod support;

use anyhow::{bail, Context, Result};
use gitops_sandbox::eventually::eventually;
use gitops_sandbox::kube::{self, Kube, KubeTiming, Resource};
use serde_json::{json, Value};
use support::{serve, Served};

const TOKEN: &str = "kube-test-token";

fn deployment(image: &str, deadline_secs: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "progressDeadlineSeconds": deadline_secs,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    })
}

struct Cluster {
    kube: Kube,
    served: Served,
    sim: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.sim.abort();
    }
}

impl Cluster {
    async fn start(deadline_secs: u32) -> Result<Cluster> {
        let kube = Kube::new(
            TOKEN,
            KubeTiming {
                pod_start_delay: Duration::from_millis(150),
                progress_deadline_scale: 0.01,
                tick: Duration::from_millis(20),
            },
        );
        kube.apply(deployment(
            "registry.example.com/demo/web:1.0.0",
            deadline_secs,
        ))?;
        kube.settle();
        let sim = kube.spawn_simulator();
        let served = serve(kube::api::router(kube.clone())).await?;
        let dir = tempfile::tempdir()?;
        kube.write_kubeconfig(&dir.path().join("kubeconfig"), &served.url)?;
        Ok(Cluster {
            kube,
            served,
            sim,
            dir,
        })
    }

    async fn kubectl(&self, args: &[&str]) -> Result<Output> {
        let kubeconfig = self.dir.path().join("kubeconfig");
        let cache = self.dir.path().join("cache");
        let out = tokio::process::Command::new("kubectl")
            .args(args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .kill_on_drop(true)
            .output()
            .await
            .context("running kubectl")?;
        Ok(out)
    }

    /// Applies `obj` with the simulator frozen, starts `kubectl rollout status ARG`, and resumes the
    /// simulator only once kubectl watches, so kubectl sees the whole rollout whatever its start-up time.
    async fn watched_rollout(&self, obj: Value, arg: &str) -> Result<Output> {
        self.kube.pause_simulator(true);
        self.kube.apply(obj)?;
        let before = self.kube.watches_started();
        let child = tokio::process::Command::new("kubectl")
            .args([
                "rollout",
                "status",
                arg,
                "-n",
                "web",
                "--timeout",
                "60s",
                "--kubeconfig",
            ])
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let watched = eventually(
            format!("kubectl watches {arg}"),
            Duration::from_secs(30),
            || async {
                match self.kube.watches_started() {
                    n if n > before => Ok(()),
                    n => Err(format!("{n} watches")),
                }
            },
        )
        .await;
        self.kube.pause_simulator(false);
        watched?;
        Ok(child.wait_with_output().await?)
    }

    async fn rollout_status(&self) -> Result<Output> {
        self.kubectl(&[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "web",
            "--timeout",
            "60s",
        ])
        .await
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_succeeds_after_a_good_image_change() -> Result<()> {
    let c = Cluster::start(600).await?;
    let out = c
        .watched_rollout(
            deployment("registry.example.com/demo/web:1.1.0", 600),
            "deployment/web",
        )
        .await?;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("deployment \"web\" successfully rolled out"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Waiting for deployment spec update to be observed..."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated..."),
        "{stdout}"
    );
    let dep = c
        .kube
        .get(Resource::Deployments, "web", "web")
        .context("deployment")?;
    assert_eq!(dep["metadata"]["generation"], 2);
    assert_eq!(dep["status"]["observedGeneration"], 2);
    assert_eq!(
        dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(c.kube.ready_pod_tags("web", "web"), vec!["1.1.0"; 3]);

    let out = c.kubectl(&["get", "deploy,rs,pods", "-n", "web"]).await?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Server-side printing (Table): the columns kubectl shows for a real cluster.
    for want in [
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "DESIRED",
        "CURRENT",
        "STATUS",
        "RESTARTS",
    ] {
        assert!(stdout.contains(want), "{want} missing in:\n{stdout}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("deployment.apps/web") && l.contains("3/3")),
        "{stdout}"
    );
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("pod/") && l.contains("Running"))
            .count(),
        3,
        "{stdout}"
    );
    let pods = c.kube.list(Resource::Pods, Some("web"));
    assert_eq!(pods.len(), 3);
    for p in &pods {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        assert!(stdout.contains(name), "{name} missing in:\n{stdout}");
    }
    assert_eq!(c.kube.list(Resource::ReplicaSets, Some("web")).len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_fails_on_progress_deadline_for_a_broken_tag() -> Result<()> {
    // 300 s × 0.01 = 3 s of real time.
    let c = Cluster::start(300).await?;
    c.kube
        .apply(deployment("registry.example.com/demo/web:broken-1", 300))?;
    let started = Instant::now();
    let out = c.rollout_status().await?;
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "stdout: {}", text(&out.stdout));
    assert!(
        stderr.contains("deployment \"web\" exceeded its progress deadline"),
        "{stderr}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "failed before the deadline"
    );
    // Old pods keep serving, the new pod crash-loops with a message.
    assert_eq!(c.kube.ready_pod_tags("web", "web"), vec!["1.0.0"; 3]);
    let crashing: Vec<Value> = c
        .kube
        .pods_of_deployment("web", "web")
        .into_iter()
        .filter(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .collect();
    assert_eq!(crashing.len(), 1);
    let out = c
        .kubectl(&["get", "pods", "-n", "web", "-o", "wide"])
        .await?;
    let listing = text(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.contains("CrashLoopBackOff") && l.contains("0/1")),
        "{listing}"
    );
    assert!(listing.contains("sandbox-node"), "{listing}");
    let msg = crashing[0]["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(msg.contains("back-off"), "{msg}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_survives_a_410_on_the_watch() -> Result<()> {
    let c = Cluster::start(600).await?;
    c.kube.fail_next_watches_with_gone(1);
    c.kube
        .apply(deployment("registry.example.com/demo/web:1.2.0", 600))?;
    let out = c.rollout_status().await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("successfully rolled out"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_of_statefulsets_and_daemonsets() -> Result<()> {
    let c = Cluster::start(600).await?;
    let workload = |kind: &str, image: &str| {
        json!({
            "apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": "db", "namespace": "web"},
            "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": image}]}}},
        })
    };
    for (kind, arg) in [
        ("StatefulSet", "statefulset/db"),
        ("DaemonSet", "daemonset/db"),
    ] {
        c.kube.apply(workload(kind, "postgres:16"))?;
        let out = c
            .kubectl(&["rollout", "status", arg, "-n", "web", "--timeout", "30s"])
            .await?;
        assert!(out.status.success(), "{kind}: {}", text(&out.stderr));
        let out = c
            .watched_rollout(workload(kind, "postgres:17"), arg)
            .await?;
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{kind}: {}", text(&out.stderr));
        assert!(
            stdout.contains("Waiting for"),
            "{kind} never waited: {stdout}"
        );
        // A broken image never finishes: kubectl times out.
        c.kube.apply(workload(kind, "postgres:broken-1"))?;
        let out = c
            .kubectl(&["rollout", "status", arg, "-n", "web", "--timeout", "2s"])
            .await?;
        assert!(!out.status.success(), "{kind} finished with a broken image");
        assert!(
            text(&out.stderr).contains("timed out waiting for the condition"),
            "{}",
            text(&out.stderr)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_inject_watch_faults_and_change_time() -> Result<()> {
    let c = Cluster::start(600).await?;
    let http = reqwest::Client::new();
    let admin = |path: &str| format!("{}/_sandbox/{path}", c.served.url);
    let t: Value = http
        .post(admin("time"))
        .json(&json!({"pod_start_delay_ms": 50, "progress_deadline_scale": 0.5}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        t,
        json!({"pod_start_delay_ms": 50, "progress_deadline_scale": 0.5})
    );
    assert_eq!(c.kube.timing().pod_start_delay, Duration::from_millis(50));

    let base = format!("{}/apis/apps/v1/namespaces/web/deployments", c.served.url);
    let rv: u64 = {
        let list: Value = http
            .get(&base)
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        list["metadata"]["resourceVersion"]
            .as_str()
            .context("rv")?
            .parse()?
    };
    let status = http
        .post(admin("faults/watch-gone"))
        .json(&json!({"count": 1}))
        .send()
        .await?
        .status();
    assert_eq!(status, 204);
    let events = watch_lines(&format!(
        "{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    ))
    .await?;
    assert_eq!(events[0]["object"]["code"], 410);
    let events = watch_lines(&format!(
        "{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    ))
    .await?;
    assert!(events.iter().all(|e| e["type"] != "ERROR"), "{events:?}");

    c.kube
        .apply(deployment("registry.example.com/demo/web:9.0.0", 600))?;
    let status = http.post(admin("faults/compact")).send().await?.status();
    assert_eq!(status, 204);
    let events = watch_lines(&format!(
        "{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    ))
    .await?;
    assert_eq!(events[0]["object"]["reason"], "Expired");
    Ok(())
}

/// Reads a whole watch response (it ends after the server's timeout).
async fn watch_lines(url: &str) -> Result<Vec<Value>> {
    let body = reqwest::Client::new()
        .get(url)
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .text()
        .await?;
    body.lines()
        .map(|l| serde_json::from_str(l).context("watch line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_watch_resource_versions_and_errors() -> Result<()> {
    let c = Cluster::start(600).await?;
    let http = reqwest::Client::new();
    let base = format!("{}/apis/apps/v1/namespaces/web/deployments", c.served.url);

    // kubectl sends no token over http, so anonymous reads are allowed; a wrong token never is.
    assert_eq!(http.get(&base).send().await?.status(), 200);
    c.kube.set_allow_anonymous(false);
    assert_eq!(http.get(&base).send().await?.status(), 401);
    c.kube.set_allow_anonymous(true);
    let unauth = http.get(&base).bearer_auth("wrong").send().await?;
    assert_eq!(unauth.status(), 401);
    let body: Value = unauth.json().await?;
    assert_eq!(
        (body["kind"].clone(), body["code"].clone()),
        (json!("Status"), json!(401))
    );

    let missing: Value = http
        .get(format!("{base}/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(missing["reason"], "NotFound");
    assert_eq!(missing["message"], "deployments.apps \"nope\" not found");

    let list: Value = http
        .get(format!(
            "{base}?fieldSelector=metadata.name%3Dweb&limit=500"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(list["kind"], "DeploymentList");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .context("list rv")?
        .parse()?;

    // Resume from the list's version: only changes after it arrive.
    c.kube
        .apply(deployment("registry.example.com/demo/web:1.3.0", 600))?;
    let events = watch_lines(&format!(
        "{base}?watch=true&fieldSelector=metadata.name%3Dweb&resourceVersion={rv}&timeoutSeconds=1"
    ))
    .await?;
    assert!(!events.is_empty());
    assert!(events
        .iter()
        .all(|e| e["type"] == "MODIFIED" && e["object"]["metadata"]["name"] == "web"));
    let seen: Vec<u64> = events
        .iter()
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        seen.iter().all(|v| *v > rv) && seen.windows(2).all(|w| w[0] < w[1]),
        "{seen:?}"
    );

    // Label selector on pods.
    let pods: Value = http
        .get(format!(
            "{}/api/v1/namespaces/web/pods?labelSelector=app%3Dweb",
            c.served.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert!(!pods["items"].as_array().context("pods")?.is_empty());

    // A compacted history: resuming from the old version is an ERROR event with 410.
    c.kube.compact();
    let events = watch_lines(&format!(
        "{base}?watch=true&resourceVersion={rv}&timeoutSeconds=1"
    ))
    .await?;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");

    // The injected fault: exactly the next watch gets the 410, the one after works.
    c.kube.fail_next_watches_with_gone(1);
    let first = watch_lines(&format!("{base}?watch=true&timeoutSeconds=1")).await?;
    assert_eq!(first[0]["object"]["code"], 410);
    let second = watch_lines(&format!("{base}?watch=true&timeoutSeconds=1")).await?;
    assert_eq!(second[0]["type"], "ADDED");
    Ok(())
}

// ---- renderer vs kubectl kustomize ------------------------------------------------------------

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!("git {args:?}: {}", text(&out.stderr));
    }
    Ok(text(&out.stdout).trim().to_owned())
}

/// Writes the fixture tree into a work tree, commits it, and returns (work tree, bare repo).
fn fixture_repo(files: &[(&str, &str)]) -> Result<(tempfile::TempDir, std::path::PathBuf)> {
    let dir = tempfile::tempdir()?;
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q", "-b", "main"])?;
    for (path, body) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().context("parent")?)?;
        std::fs::write(p, body)?;
    }
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "-q", "-m", "fixture"])?;
    let bare = dir.path().join("repo.git");
    let out = std::process::Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(&work)
        .arg(&bare)
        .output()?;
    if !out.status.success() {
        bail!("clone: {}", text(&out.stderr));
    }
    Ok((dir, bare))
}

fn sort_key(v: &Value) -> String {
    format!(
        "{}/{}/{}",
        v["kind"].as_str().unwrap_or(""),
        v["metadata"]["namespace"].as_str().unwrap_or(""),
        v["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn kubectl_kustomize(dir: &Path) -> Result<Vec<Value>> {
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()?;
    if !out.status.success() {
        bail!("kubectl kustomize {}: {}", dir.display(), text(&out.stderr));
    }
    Ok(serde_saphyr_docs(&text(&out.stdout)))
}

fn serde_saphyr_docs(yaml: &str) -> Vec<Value> {
    let mut docs: Vec<Value> = serde_saphyr::from_multiple(yaml).unwrap_or_default();
    docs.retain(|d| !d.is_null());
    docs.sort_by_key(sort_key);
    docs
}

const BASE_DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers:
      - name: init
        image: busybox:1.36
      containers:
      - name: web
        image: registry.example.com/demo/web:0.9.0
      - name: sidecar
        image: nginx@sha256:aaaa
";

const BASE_EXTRA: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: docker.io/library/postgres:16
---
apiVersion: v1
kind: Namespace
metadata:
  name: other
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: job
spec:
  schedule: '* * * * *'
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: nginx:1.0
";

#[test]
fn renderer_agrees_with_kubectl_kustomize() -> Result<()> {
    let files = [
        ("apps/web/base/kustomization.yaml", "resources:\n- deployment.yaml\n- extra\n"),
        ("apps/web/base/deployment.yaml", BASE_DEPLOY),
        ("apps/web/base/extra/kustomization.yaml", "resources:\n- all.yaml\nnamespace: inner\n"),
        ("apps/web/base/extra/all.yaml", BASE_EXTRA),
        (
            "apps/web/overlays/prod/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\n\
             namespace: web\nimages:\n- name: registry.example.com/demo/web\n  newTag: \"1.0.0\"\n\
             - name: nginx\n  newName: ghcr.io/acme/nginx\n  newTag: \"2.0\"\n- name: busybox\n  digest: sha256:bbbb\n\
             - name: docker.io/library/postgres\n  newName: pg\n- name: pg\n  newTag: chained\n",
        ),
        (
            "apps/web/overlays/suffix/kustomization.yaml",
            "resources:\n- ../../base\nimages:\n- name: registry.example.com/demo/web\n  tagSuffix: -debug\n\
             - name: ngin.\n  newTag: dot\n",
        ),
    ];
    let (dir, bare) = fixture_repo(&files)?;
    for overlay in [
        "apps/web/overlays/prod",
        "apps/web/overlays/suffix",
        "apps/web/base",
    ] {
        let mut ours = gitops_sandbox::render::render(&bare, "main", overlay)?;
        ours.sort_by_key(sort_key);
        let theirs = kubectl_kustomize(&dir.path().join("work").join(overlay))?;
        assert_eq!(
            serde_json::to_string_pretty(&ours)?,
            serde_json::to_string_pretty(&theirs)?,
            "{overlay}"
        );
    }
    let workloads =
        gitops_sandbox::render::render_workloads(&bare, "main", "apps/web/overlays/prod")?;
    let kinds: Vec<&str> = workloads
        .iter()
        .filter_map(|w| w["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["Deployment", "StatefulSet"]);
    assert_eq!(
        workloads[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/demo/web:1.0.0"
    );
    Ok(())
}

/// The app types Argo CD tells apart (argo-cd `util/app/discovery/discovery.go`): a kustomization
/// wins over a Chart.yaml in the same directory, a Chart.yaml is rendered by the Helm stand-in with
/// the values file read as YAML (a plain `1.10` is the number 1.1), a plain directory is its
/// manifest files.
#[test]
fn renderer_tells_kustomize_helm_and_plain_directories_apart() -> Result<()> {
    let deployment = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
        )
    };
    let (_dir, bare) = fixture_repo(&[
        (
            "chart/Chart.yaml",
            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        (
            "chart/values.yaml",
            "image:\n  repository: web\n  tag: 1.10\nquoted:\n  tag: \"1.10\"\n",
        ),
        (
            "big/Chart.yaml",
            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        ("big/values.yaml", "image:\n  tag: 20240101\n"),
        (
            "big/templates/d.yaml",
            &deployment("web:{{ .Values.image.tag }}"),
        ),
        (
            "chart/templates/deployment.yaml",
            &deployment("{{ .Values.image.repository }}:{{ .Values.image.tag }}"),
        ),
        (
            "chart/templates/NOTES.txt",
            "not rendered {{ include \"x\" . }}",
        ),
        (
            "quoted/Chart.yaml",
            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        ("quoted/values.yaml", "image:\n  tag: \"1.10\"\n"),
        (
            "quoted/templates/d.yaml",
            &deployment("web:{{ .Values.image.tag }}"),
        ),
        (
            "fancy/Chart.yaml",
            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        (
            "fancy/templates/d.yaml",
            &deployment("{{ include \"image\" . }}"),
        ),
        (
            "both/Chart.yaml",
            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        ),
        (
            "both/kustomization.yaml",
            "resources:\n- d.yaml\nimages:\n- name: web\n  newTag: from-kustomize\n",
        ),
        ("both/d.yaml", &deployment("web:0")),
        (
            "plain/web.yaml",
            &format!(
                "{}---\n{}",
                deployment("web:2.0.0"),
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
            ),
        ),
        ("plain/README.md", "# not a manifest\n"),
        ("plain/nested/other.yaml", &deployment("ignored:1")),
    ])?;
    let images = |p: &str| -> Result<Vec<String>> {
        Ok(gitops_sandbox::render::render(&bare, "main", p)?
            .iter()
            .filter_map(|o| {
                o["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect())
    };
    assert_eq!(images("chart")?, ["web:1.1"]);
    assert_eq!(images("quoted")?, ["web:1.10"]);
    // Helm decodes numbers to float64 and prints them with Go's %v.
    assert_eq!(images("big")?, ["web:2.0240101e+07"]);
    assert_eq!(images("both")?, ["web:from-kustomize"]);
    assert_eq!(images("plain")?, ["web:2.0.0"]);
    assert_eq!(
        gitops_sandbox::render::render(&bare, "main", "plain")?.len(),
        2
    );
    let fancy = gitops_sandbox::render::render(&bare, "main", "fancy")
        .unwrap_err()
        .to_string();
    assert!(
        fancy.contains("is not supported by the sandbox's Helm stand-in"),
        "{fancy}"
    );
    Ok(())
}

#[test]
fn renderer_rejects_bad_input_with_the_path() -> Result<()> {
    let (_dir, bare) = fixture_repo(&[
        ("a/kustomization.yaml", "resources:\n- missing.yaml\n"),
        ("b/kustomization.yaml", "patches:\n- path: x.yaml\n"),
        (
            "c/kustomization.yaml",
            "images:\n- name: x\n  newTag: 1.10\n",
        ),
        ("d/readme", "no kustomization here"),
        ("e/kustomization.yaml", "resources:\n- list.yaml\n"),
        (
            "e/list.yaml",
            "kind: ConfigMap\nmetadata: {name: a}\n---\n- not\n- an object\n",
        ),
    ])?;
    let err = |p: &str| {
        gitops_sandbox::render::render(&bare, "main", p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(err("a"), "a/missing.yaml: not found at revision main");
    assert_eq!(
        err("b"),
        "b/kustomization.yaml: field \"patches\" is not supported by the sandbox renderer"
    );
    assert!(err("c").contains("newTag is not a string"), "{}", err("c"));
    // No kustomization and no Chart.yaml: a plain directory app (Argo CD's `AppType` "Directory"),
    // whose non-manifest files are not read.
    assert_eq!(
        gitops_sandbox::render::render(&bare, "main", "d")?,
        Vec::<serde_json::Value>::new()
    );
    assert_eq!(
        err("e"),
        "e/list.yaml: document 2 is not a Kubernetes object (kind and metadata.name needed)"
    );
    Ok(())
}
