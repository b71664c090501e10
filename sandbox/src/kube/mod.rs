//! The sandbox's Kubernetes: an object store with resourceVersions and a watch log, a rollout
//! simulator, and (in [`api`]) the HTTP API that kube-rs and the real `kubectl` talk to.
//!
//! Served kinds: Deployments, StatefulSets, DaemonSets, ReplicaSets, Pods and Argo Rollouts'
//! Rollouts (with the controller of [`rollouts`]). Other kinds that the
//! Argo CD part applies (Services, ConfigMaps, …) are kept for comparison but not served.
//! What `kubectl rollout status` needs from the server is in docs/research/argocd-rollout.md §B1–B3.
//! This module owns the state; it must not know about Argo CD or git.

pub mod api;
mod rollouts;
mod sim;
mod table;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

pub use sim::{is_broken_image, pod_template_hash};

/// How many watch events the store keeps for resuming; older resourceVersions get `410 Gone`.
const LOG_CAPACITY: usize = 4000;

/// Errors of the Kubernetes part.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object has no usable `kind`, `metadata.name` or `metadata.namespace`.
    #[error("object {what}: {detail}")]
    InvalidObject {
        /// Which object, as far as known.
        what: String,
        /// What is missing or wrong.
        detail: String,
    },
    /// Writing the kubeconfig file failed.
    #[error("cannot write kubeconfig {}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The kinds the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// apps/v1 Deployment.
    Deployments,
    /// apps/v1 StatefulSet.
    StatefulSets,
    /// apps/v1 DaemonSet.
    DaemonSets,
    /// apps/v1 ReplicaSet.
    ReplicaSets,
    /// v1 Pod.
    Pods,
    /// argoproj.io/v1alpha1 Rollout (Argo Rollouts' CRD, `manifests/crds/rollout-crd.yaml`).
    Rollouts,
}

impl Resource {
    /// Every served kind.
    pub const ALL: [Resource; 6] = [
        Resource::Deployments,
        Resource::StatefulSets,
        Resource::DaemonSets,
        Resource::ReplicaSets,
        Resource::Pods,
        Resource::Rollouts,
    ];

    /// The URL plural (`deployments`).
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Deployments => "deployments",
            Resource::StatefulSets => "statefulsets",
            Resource::DaemonSets => "daemonsets",
            Resource::ReplicaSets => "replicasets",
            Resource::Pods => "pods",
            Resource::Rollouts => "rollouts",
        }
    }

    /// The object kind (`Deployment`).
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Deployments => "Deployment",
            Resource::StatefulSets => "StatefulSet",
            Resource::DaemonSets => "DaemonSet",
            Resource::ReplicaSets => "ReplicaSet",
            Resource::Pods => "Pod",
            Resource::Rollouts => "Rollout",
        }
    }

    /// The API group (`apps`, or empty for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Resource::Pods => "",
            Resource::Rollouts => "argoproj.io",
            _ => "apps",
        }
    }

    /// `apiVersion` of the objects.
    pub fn api_version(self) -> &'static str {
        match self {
            Resource::Pods => "v1",
            Resource::Rollouts => "argoproj.io/v1alpha1",
            _ => "apps/v1",
        }
    }

    /// kubectl short names.
    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Resource::Deployments => &["deploy"],
            Resource::StatefulSets => &["sts"],
            Resource::DaemonSets => &["ds"],
            Resource::ReplicaSets => &["rs"],
            Resource::Pods => &["po"],
            Resource::Rollouts => &["ro"],
        }
    }

    /// The served kind with this `kind`.
    pub fn from_kind(kind: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.kind() == kind)
    }

    /// The served kind with this URL plural.
    pub fn from_plural(plural: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.plural() == plural)
    }
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

impl EventType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change in the store, as kept in the watch log.
#[derive(Debug, Clone)]
pub struct Event {
    /// The store's resourceVersion after this change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// The object's kind.
    pub resource: Resource,
    /// The object as of this change (for Deleted: its last state).
    pub object: Value,
}

/// Timing of the simulator (real durations; scale them down for tests).
#[derive(Debug, Clone)]
pub struct KubeTiming {
    /// How long a new pod takes to become ready.
    pub pod_start_delay: Duration,
    /// Real seconds per `progressDeadlineSeconds` second (1.0 = real time, 0.01 = 600 s → 6 s).
    pub progress_deadline_scale: f64,
    /// How often the simulator advances.
    pub tick: Duration,
}

impl Default for KubeTiming {
    fn default() -> Self {
        KubeTiming {
            pod_start_delay: Duration::from_secs(2),
            progress_deadline_scale: 0.1,
            tick: Duration::from_millis(25),
        }
    }
}

/// Faults the Kubernetes part can inject (besides the HTTP-level ones of the core).
#[derive(Debug, Default)]
struct KubeFaults {
    /// The next N watch requests get one `ERROR` event with a 410 Status and end.
    gone_next_watches: u32,
}

/// Per-object key: kind, namespace, name.
pub(crate) type Key = (Resource, String, String);

/// The store: objects, resourceVersion counter and the watch log.
pub(crate) struct Store {
    pub(crate) rv: u64,
    pub(crate) objects: BTreeMap<Key, Value>,
    /// Kinds that are applied but not served (Services, ConfigMaps, …), keyed by kind/ns/name.
    pub(crate) others: BTreeMap<(String, String, String), Value>,
    log: VecDeque<Arc<Event>>,
    /// Watches may resume from any resourceVersion ≥ this.
    oldest_rv: u64,
    pub(crate) sim: sim::SimState,
    uid_counter: u64,
    tx: broadcast::Sender<Arc<Event>>,
    changed: watch::Sender<u64>,
}

impl Store {
    pub(crate) fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        let r: u64 = rand::random();
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            r >> 32,
            (r >> 16) & 0xffff,
            self.uid_counter & 0xfff,
            r & 0xfff,
            self.uid_counter
        )
    }

    /// Stores an object (create or update), stamping resourceVersion, and records the event.
    pub(crate) fn put(&mut self, resource: Resource, mut obj: Value) -> Value {
        let key = key_of(resource, &obj);
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let kind = if self.objects.contains_key(&key) {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.objects.insert(key, obj.clone());
        self.record(kind, resource, obj.clone());
        obj
    }

    /// Removes an object and records a Deleted event.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        self.record(EventType::Deleted, key.0, obj.clone());
        Some(obj)
    }

    fn record(&mut self, kind: EventType, resource: Resource, object: Value) {
        let ev = Arc::new(Event {
            rv: self.rv,
            kind,
            resource,
            object,
        });
        self.log.push_back(ev.clone());
        while self.log.len() > LOG_CAPACITY {
            if let Some(old) = self.log.pop_front() {
                self.oldest_rv = old.rv;
            }
        }
        // No receiver is fine: nobody watches.
        let _ = self.tx.send(ev);
        self.changed.send_replace(self.rv);
    }
}

/// The key of an object of a served kind.
pub(crate) fn key_of(resource: Resource, obj: &Value) -> Key {
    (
        resource,
        str_at(obj, &["metadata", "namespace"]).to_owned(),
        str_at(obj, &["metadata", "name"]).to_owned(),
    )
}

/// A string at a JSON path, or "".
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(c) => cur = c,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

/// An integer at a JSON path, or 0 (Kubernetes omits zero counts).
pub fn int_at(v: &Value, path: &[&str]) -> i64 {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(c) => cur = c,
            None => return 0,
        }
    }
    cur.as_i64().unwrap_or(0)
}

/// Kubernetes timestamp format (seconds, UTC).
pub fn k8s_time(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The shared state behind a [`Kube`] handle.
struct Inner {
    store: Mutex<Store>,
    timing: Mutex<KubeTiming>,
    faults: Mutex<KubeFaults>,
    token: String,
    anonymous: std::sync::atomic::AtomicBool,
    paused: std::sync::atomic::AtomicBool,
    watches: std::sync::atomic::AtomicUsize,
    changed: watch::Receiver<u64>,
    tx: broadcast::Sender<Arc<Event>>,
}

/// Handle on the sandbox's Kubernetes (cheap to clone).
#[derive(Clone)]
pub struct Kube {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Kube {
    // The token stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("rv", &self.store().rv)
            .finish_non_exhaustive()
    }
}

impl Kube {
    /// A new, empty cluster whose API accepts `Authorization: Bearer <token>`.
    ///
    /// The simulator starts with [`Kube::spawn_simulator`].
    pub fn new(token: impl Into<String>, timing: KubeTiming) -> Kube {
        let (tx, _) = broadcast::channel(4096);
        let (changed_tx, changed) = watch::channel(0);
        let store = Store {
            rv: 0,
            objects: BTreeMap::new(),
            others: BTreeMap::new(),
            log: VecDeque::new(),
            oldest_rv: 0,
            sim: sim::SimState::default(),
            uid_counter: 0,
            tx: tx.clone(),
            changed: changed_tx,
        };
        Kube {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                timing: Mutex::new(timing),
                faults: Mutex::new(KubeFaults::default()),
                token: token.into(),
                anonymous: std::sync::atomic::AtomicBool::new(true),
                paused: std::sync::atomic::AtomicBool::new(false),
                watches: std::sync::atomic::AtomicUsize::new(0),
                changed,
                tx,
            }),
        }
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.inner.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bearer token the API accepts.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// Whether requests without an `Authorization` header are served (default: yes, because
    /// kubectl sends no credentials to an http:// server; kube-rs does send them).
    pub fn allows_anonymous(&self) -> bool {
        self.inner
            .anonymous
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Serve (true) or refuse with 401 (false) requests that carry no `Authorization` header.
    pub fn set_allow_anonymous(&self, allow: bool) {
        self.inner
            .anonymous
            .store(allow, std::sync::atomic::Ordering::Relaxed);
    }

    /// The current timing.
    pub fn timing(&self) -> KubeTiming {
        self.inner
            .timing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes how long new pods take to become ready (affects pods created afterwards).
    pub fn set_pod_start_delay(&self, delay: Duration) {
        self.inner
            .timing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pod_start_delay = delay;
    }

    /// Changes the real seconds per `progressDeadlineSeconds` second.
    pub fn set_progress_deadline_scale(&self, scale: f64) {
        self.inner
            .timing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .progress_deadline_scale = scale;
    }

    /// Fault: the next `n` watch requests get an `ERROR` event with a 410 `Expired` Status.
    pub fn fail_next_watches_with_gone(&self, n: u32) {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .gone_next_watches = n;
    }

    /// Fault: forget the watch history, so resuming from any earlier resourceVersion is `410 Gone`.
    pub fn compact(&self) {
        let mut s = self.store();
        s.log.clear();
        s.oldest_rv = s.rv;
    }

    pub(crate) fn take_gone_fault(&self) -> bool {
        let mut f = self.inner.faults.lock().unwrap_or_else(|e| e.into_inner());
        if f.gone_next_watches > 0 {
            f.gone_next_watches -= 1;
            true
        } else {
            false
        }
    }

    /// A receiver that changes whenever the store changes (value: the resourceVersion).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.clone()
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.tx.subscribe()
    }

    /// Events after `rv` still in the log, or `Err(oldest)` if `rv` is older than the log.
    pub(crate) fn events_since(store: &Store, rv: u64) -> Result<Vec<Arc<Event>>, u64> {
        if rv < store.oldest_rv {
            return Err(store.oldest_rv);
        }
        Ok(store.log.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Creates or updates an object like `kubectl apply` would, for any kind.
    ///
    /// A changed `spec` bumps `metadata.generation`; the simulator then rolls it out. Kinds that
    /// are not served are stored for [`Kube::get_any`].
    ///
    /// # Errors
    /// The object lacks `kind` or `metadata.name`.
    pub fn apply(&self, obj: Value) -> Result<Value, Error> {
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let name = str_at(&obj, &["metadata", "name"]).to_owned();
        if kind.is_empty() || name.is_empty() {
            return Err(Error::InvalidObject {
                what: format!("{kind}/{name}"),
                detail: "kind and metadata.name are required".into(),
            });
        }
        let mut s = self.store();
        let Some(resource) = Resource::from_kind(&kind) else {
            // Not served: stored with the metadata the API server would add, but no watch event.
            let ns = str_at(&obj, &["metadata", "namespace"]).to_owned();
            let key = (kind, ns, name);
            let mut obj = obj;
            if let Some(live) = s.others.get(&key) {
                if live.get("spec") == obj.get("spec") && live.get("data") == obj.get("data") {
                    return Ok(live.clone());
                }
                for field in ["uid", "creationTimestamp"] {
                    obj["metadata"][field] = live["metadata"][field].clone();
                }
            } else {
                let uid = s.next_uid();
                obj["metadata"]["uid"] = json!(uid);
                obj["metadata"]["creationTimestamp"] = json!(k8s_time(crate::clock::now()));
            }
            s.rv += 1;
            obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
            s.others.insert(key, obj.clone());
            return Ok(obj);
        };
        let mut obj = obj;
        if str_at(&obj, &["metadata", "namespace"]).is_empty() {
            obj["metadata"]["namespace"] = json!("default");
        }
        sim::default_spec(resource, &mut obj);
        let key = key_of(resource, &obj);
        let now = k8s_time(crate::clock::now());
        if let Some(live) = s.objects.get(&key).cloned() {
            let mut next = live.clone();
            let spec_changed = live.get("spec") != obj.get("spec");
            let mut changed = spec_changed;
            next["spec"] = obj.get("spec").cloned().unwrap_or(json!({}));
            for field in ["labels", "annotations"] {
                let want = obj["metadata"].get(field).cloned();
                let mut merged = want.clone().unwrap_or(json!({}));
                // The deployment and rollouts controllers own their revision annotations; keep them.
                if field == "annotations" {
                    for owned in [
                        sim::REVISION_ANNOTATION,
                        rollouts::REVISION_ANNOTATION,
                        rollouts::WORKLOAD_GENERATION,
                    ] {
                        if let Some(rev) = live["metadata"]["annotations"].get(owned) {
                            merged[owned] = rev.clone();
                        }
                    }
                }
                let merged = if merged.as_object().is_some_and(|m| m.is_empty()) {
                    None
                } else {
                    Some(merged)
                };
                if live["metadata"].get(field).cloned() != merged {
                    changed = true;
                    match merged {
                        Some(m) => next["metadata"][field] = m,
                        None => {
                            if let Some(m) = next["metadata"].as_object_mut() {
                                m.remove(field);
                            }
                        }
                    }
                }
            }
            if !changed {
                return Ok(live);
            }
            if spec_changed {
                next["metadata"]["generation"] =
                    json!(int_at(&live, &["metadata", "generation"]) + 1);
            }
            Ok(s.put(resource, next))
        } else {
            let uid = s.next_uid();
            let meta = obj["metadata"]
                .as_object_mut()
                .expect("metadata checked above");
            meta.insert("uid".into(), json!(uid));
            meta.insert("creationTimestamp".into(), json!(now));
            meta.insert("generation".into(), json!(1));
            if !obj.get("status").is_some_and(Value::is_object) {
                obj["status"] = json!({});
            }
            Ok(s.put(resource, obj))
        }
    }

    /// Deletes an object of a served kind (its ReplicaSets and Pods go with it).
    pub fn delete(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        let mut s = self.store();
        let key = (resource, namespace.to_owned(), name.to_owned());
        let obj = s.remove(&key)?;
        let uid = str_at(&obj, &["metadata", "uid"]).to_owned();
        sim::delete_owned(&mut s, &uid);
        Some(obj)
    }

    /// One object of a served kind.
    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<Value> {
        self.store()
            .objects
            .get(&(resource, namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// One object of any kind that was applied (served kinds and others).
    pub fn get_any(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        match Resource::from_kind(kind) {
            Some(r) => self.get(r, namespace, name),
            None => self
                .store()
                .others
                .get(&(kind.to_owned(), namespace.to_owned(), name.to_owned()))
                .cloned(),
        }
    }

    /// All objects of a kind, optionally in one namespace, in name order.
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> Vec<Value> {
        self.store()
            .objects
            .iter()
            .filter(|((r, ns, _), _)| *r == resource && namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Pods owned (through ReplicaSets) by a Deployment.
    pub fn pods_of_deployment(&self, namespace: &str, name: &str) -> Vec<Value> {
        let s = self.store();
        sim::pods_of_deployment(&s, namespace, name)
    }

    /// Pods owned (through ReplicaSets) by a Deployment or a Rollout.
    pub fn pods_of(&self, resource: Resource, namespace: &str, name: &str) -> Vec<Value> {
        let s = self.store();
        sim::pods_of(&s, resource, namespace, name)
    }

    /// The image tags of the ready pods of a Rollout (one entry per pod).
    pub fn ready_rollout_tags(&self, namespace: &str, rollout: &str) -> Vec<String> {
        ready_tags(&self.pods_of(Resource::Rollouts, namespace, rollout))
    }

    /// What `kubectl argo rollouts promote` does (argo-rollouts `pkg/kubectl-argo-rollouts/cmd/promote/promote.go`):
    /// `spec.paused: false` when set, the pause conditions cleared when there are any, else (a
    /// canary between steps) the next step. Returns false when there is no such Rollout.
    pub fn promote_rollout(&self, namespace: &str, name: &str) -> bool {
        let mut s = self.store();
        let key = (Resource::Rollouts, namespace.to_owned(), name.to_owned());
        let Some(mut ro) = s.objects.get(&key).cloned() else {
            return false;
        };
        if ro["spec"]["paused"] == true {
            ro["spec"]["paused"] = json!(false);
            ro["metadata"]["generation"] = json!(int_at(&ro, &["metadata", "generation"]) + 1);
        }
        let conditions = ro["status"]["pauseConditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty());
        if conditions {
            if let Some(st) = ro["status"].as_object_mut() {
                st.remove("pauseConditions");
            }
        } else if let Some(steps) = ro["spec"]["strategy"]["canary"]["steps"].as_array() {
            let index = ro["status"]["currentStepIndex"].as_u64().unwrap_or(0) as usize;
            if index < steps.len() {
                ro["status"]["currentStepIndex"] = json!(index + 1);
            }
        }
        s.put(Resource::Rollouts, ro);
        true
    }

    /// What `kubectl argo rollouts abort` does (`cmd/abort/abort.go`): `status.abort: true`.
    /// Returns false when there is no such Rollout.
    pub fn abort_rollout(&self, namespace: &str, name: &str) -> bool {
        let mut s = self.store();
        let key = (Resource::Rollouts, namespace.to_owned(), name.to_owned());
        let Some(mut ro) = s.objects.get(&key).cloned() else {
            return false;
        };
        ro["status"]["abort"] = json!(true);
        s.put(Resource::Rollouts, ro);
        true
    }

    /// The image tags of the ready pods of a Deployment (one entry per pod).
    pub fn ready_pod_tags(&self, namespace: &str, deployment: &str) -> Vec<String> {
        ready_tags(&self.pods_of_deployment(namespace, deployment))
    }

    /// Freezes (true) or resumes (false) the simulator: while frozen no controller acts, so a
    /// changed workload stays at "spec update not observed" (deterministic tests of watchers).
    pub fn pause_simulator(&self, paused: bool) {
        self.inner
            .paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many watch requests have been served so far (monotonic; for tests that must know a
    /// client is watching before the world moves on).
    pub fn watches_started(&self) -> usize {
        self.inner
            .watches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_watch(&self) {
        self.inner
            .watches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Advances the simulator once (normally done by the background task); no-op while paused.
    pub fn step(&self) {
        if self.inner.paused.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let timing = self.timing();
        let mut s = self.store();
        sim::step(&mut s, &timing, false);
    }

    /// Brings every rollout to its end state at once (used for the seed: start healthy).
    pub fn settle(&self) {
        let timing = self.timing();
        let mut s = self.store();
        for _ in 0..200 {
            let before = s.rv;
            sim::step(&mut s, &timing, true);
            if s.rv == before {
                break;
            }
        }
    }

    /// Runs the simulator until the returned handle is dropped or aborted.
    pub fn spawn_simulator(&self) -> tokio::task::JoinHandle<()> {
        let kube = self.clone();
        tokio::spawn(async move {
            loop {
                let tick = kube.timing().tick;
                tokio::time::sleep(tick).await;
                kube.step();
            }
        })
    }

    /// Writes a kubeconfig for `server` (e.g. `http://127.0.0.1:PORT`) with the token, mode 0600.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path, server: &str) -> Result<(), Error> {
        let text = kubeconfig_yaml(server, self.token());
        let io = |source| Error::Kubeconfig {
            path: path.to_path_buf(),
            source,
        };
        std::fs::write(path, text).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        Ok(())
    }
}

/// The kubeconfig text for a server and token (context `sandbox`, namespace `web`).
pub fn kubeconfig_yaml(server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {server}\n\
         contexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox\n    namespace: web\n\
         current-context: sandbox\nusers:\n- name: sandbox\n  user:\n    token: {token}\n"
    )
}

/// The image tags of the ready pods among `pods`.
fn ready_tags(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .filter(|p| sim::is_pod_ready(p))
        .filter_map(|p| {
            let image = p["spec"]["containers"][0]["image"].as_str()?;
            Some(crate::render::split_image(image).1)
        })
        .collect()
}
