//! The sandbox's Argo CD: Applications, the controller loop and (in [`api`]) the REST API.
//!
//! The controller polls each app's branch every poll interval (180 s by default, like Argo CD) or
//! at once on a refresh, renders the path with [`crate::render`], compares with the live objects of
//! [`Kube`], auto-syncs, runs sync operations (Running → sync delay → apply → Succeeded/Failed) and
//! reports `sync`, `operationState`, `reconciledAt`, `health`, `resources`, `conditions` and
//! `history` as Argo CD does (docs/research/argocd-rollout.md §A1–A5) — including the stale-health
//! window after an operation, during which health and `reconciledAt` still describe the time
//! before the sync. It knows git only through bare repository directories.

pub mod api;
pub mod health;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// Tokio's clock, like the Kubernetes simulator: tests on paused time drive the controller too.
use tokio::time::Instant;

use jiff::Timestamp;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::kube::{k8s_time, str_at, Kube, Resource};
use crate::profile::{AppHealthMessage, ArgoProfile};
use health::Health;

/// Namespace the Application objects live in.
pub const APP_NAMESPACE: &str = "argocd";

/// Errors of the Argo CD part, each with the gRPC code Argo CD would answer. The messages are Argo
/// CD's own, verbatim (clients match on them), hence the capital in "Cannot sync".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such application (Argo CD hides existence: permission denied).
    #[error("permission denied")]
    PermissionDenied,
    /// The application exists in no given project.
    #[error("applications.argoproj.io {0:?} not found")]
    NotFound(String),
    /// A sync was requested while another operation is pending.
    #[error("another operation is already in progress")]
    OperationInProgress,
    /// A sync to a revision other than the auto-sync target.
    #[error("Cannot sync to {requested}: auto-sync currently set to {target}")]
    AutoSyncRevision {
        /// Requested revision.
        requested: String,
        /// `spec.source.targetRevision`.
        target: String,
    },
    /// The revision cannot be resolved in the repository: `Sync` wraps the repo server's error
    /// (server/application/application.go `resolveRevision`: "error resolving repo revision: %w").
    #[error("error resolving repo revision: rpc error: code = Unknown desc = unable to resolve {0:?} to a commit SHA")]
    Unresolvable(String),
    /// The repo server could not be reached while resolving (a restart, DNS): the same wrapper.
    #[error("error resolving repo revision: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial tcp 10.96.0.12:8081: connect: connection refused\"")]
    RepoServerUnavailable,
    /// An application with this name already exists.
    #[error("application {0:?} already exists")]
    Exists(String),
    /// A resource was asked for that is not part of the application.
    #[error("{kind} {name} not found as part of application {app}")]
    ResourceNotFound {
        /// Kind asked for.
        kind: String,
        /// Name asked for.
        name: String,
        /// The application.
        app: String,
    },
    /// A refresh GET that ended on its deadline (app.go:881, gRPC Unknown → HTTP 500).
    #[error("application refresh deadline exceeded")]
    RefreshDeadline,
    /// A manual sync inside a window that denies it (server/application/application.go `Sync`,
    /// v3.0.0 :1928-1934: PermissionDenied).
    #[error("cannot sync: blocked by sync window")]
    SyncWindow,
}

impl Error {
    /// The gRPC code Argo CD's error body carries.
    pub fn grpc_code(&self) -> u16 {
        match self {
            Error::PermissionDenied | Error::SyncWindow => 7,
            Error::NotFound(_) => 5,
            // argo-cd server/application/application.go `getAppLiveResource` (v3.x, :1509):
            // status.Errorf(codes.InvalidArgument, "%s %s %s not found as part of application %s").
            Error::ResourceNotFound { .. } => 3,
            Error::OperationInProgress | Error::AutoSyncRevision { .. } => 9,
            // A sync whose revision cannot be resolved is FailedPrecondition → 400 on the real server
            // (server/application/application.go `Sync`, :2234 and :2259; docs/research/field-argocd.md §3).
            Error::Unresolvable(_) | Error::RepoServerUnavailable => 9,
            Error::RefreshDeadline => 2,
            Error::Exists(_) => 6,
        }
    }
}

/// Where an application comes from and goes to.
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// Application name (`web-prod`).
    pub name: String,
    /// Argo CD project.
    pub project: String,
    /// `spec.source.repoURL` as shown to clients.
    pub repo_url: String,
    /// The bare repository the controller reads (`<state>/repos/<owner>/<name>.git`).
    pub repo_dir: PathBuf,
    /// Path of the kustomization inside the repository.
    pub path: String,
    /// Branch (or tag or SHA) to follow.
    pub target_revision: String,
    /// Destination namespace for resources without one.
    pub dest_namespace: String,
    /// `spec.syncPolicy.automated` set?
    pub auto_sync: bool,
    /// The other sources of a multi-source app (empty: a single-source app).
    pub other_sources: Vec<OtherSource>,
    /// `metadata.labels` (what a list's label selector matches).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A Kubernetes label selector (k8s.io/apimachinery `pkg/labels/selector.go` `Parse`): comma-joined
/// requirements, all of which must hold: `k=v` (or `k==v`), `k!=v`, `k in (a,b)`, `k notin (a,b)`,
/// `k` (exists), `!k` (does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelSelector {
    /// Parses a selector; `None` for one the grammar does not allow (the API answers 400 then).
    pub fn parse(text: &str) -> Option<LabelSelector> {
        let mut reqs = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            // A requirement ends at a comma outside parentheses.
            let mut depth = 0;
            let end = rest
                .char_indices()
                .find(|(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    *c == ',' && depth == 0
                })
                .map_or(rest.len(), |(i, _)| i);
            let part = rest[..end].trim();
            rest = rest.get(end + 1..).unwrap_or("").trim();
            let set = |v: &str| -> Option<Vec<String>> {
                let inner = v.trim().strip_prefix('(')?.strip_suffix(')')?;
                Some(inner.split(',').map(|x| x.trim().to_owned()).collect())
            };
            let req = if let Some(k) = part.strip_prefix('!') {
                Requirement::DoesNotExist(k.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotIn(k.trim().to_owned(), vec![v.trim().to_owned()])
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::In(k.trim().to_owned(), vec![v.trim().to_owned()])
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().to_owned(), set(v)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Requirement::In(k.trim().to_owned(), set(v)?)
            } else if !part.is_empty() && !part.contains([' ', '(', ')']) {
                Requirement::Exists(part.to_owned())
            } else {
                return None;
            };
            reqs.push(req);
        }
        Some(LabelSelector(reqs))
    }

    /// True when `labels` meet every requirement.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            // `!=` and `notin` also hold for a missing key.
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        })
    }
}

/// A source of a multi-source app besides the git path the sandbox renders: a Helm chart
/// (`{"repoURL": "https://charts.example.com", "chart": "web", "targetRevision": "1.2.3"}`, revision
/// `1.2.3`: reposerver/repository/repository.go `newHelmClientResolveRevision` keeps a version as
/// is) or a `ref` source (a git SHA of its repository). It renders nothing here.
#[derive(Debug, Clone)]
pub struct OtherSource {
    /// Index in `spec.sources` (the sandbox's own source takes the remaining slot).
    pub position: usize,
    /// The `spec.sources[]` entry.
    pub spec: Value,
    /// What the index-aligned `revisions[]` lists show for it.
    pub revision: String,
}

/// A sync window of the app's project (`spec.syncWindows[]`, pkg/apis/application/v1alpha1/types.go
/// `SyncWindow`). The sandbox does not evaluate cron: a test says whether the window is active now.
#[derive(Debug, Clone)]
pub struct SyncWindow {
    /// `allow` or `deny`.
    pub kind: String,
    /// The cron schedule, shown as given.
    pub schedule: String,
    /// How long it lasts (`1h`), shown as given.
    pub duration: String,
    /// Whether manual syncs are allowed while it blocks.
    pub manual_sync: bool,
    /// Whether it is active now.
    pub active: bool,
}

/// `SyncWindows.CanSync(isManual)` (types.go, v3.0.0 :2858-2892): an active deny blocks unless the
/// sync is manual and every active deny allows manual syncs; with allow windows, one must be active
/// (or the sync manual and an allow window allow manual syncs); no windows allow everything.
pub fn can_sync(windows: &[SyncWindow], manual: bool) -> bool {
    let active_denies: Vec<_> = windows
        .iter()
        .filter(|w| w.active && w.kind == "deny")
        .collect();
    if !active_denies.is_empty() {
        return manual && active_denies.iter().all(|w| w.manual_sync);
    }
    let allows: Vec<_> = windows.iter().filter(|w| w.kind == "allow").collect();
    if allows.is_empty() || allows.iter().any(|w| w.active) {
        return true;
    }
    manual && allows.iter().any(|w| w.manual_sync)
}

impl SyncWindow {
    fn to_json(&self) -> Value {
        json!({"kind": self.kind, "schedule": self.schedule, "duration": self.duration,
            "manualSync": self.manual_sync})
    }
}

/// Controller timing (real durations; scale them down for tests).
#[derive(Debug, Clone)]
pub struct ArgoTiming {
    /// How often git is polled without a refresh (Argo CD: 120 s + up to 60 s jitter).
    pub poll_interval: Duration,
    /// How long an operation stays Running before it applies.
    pub sync_delay: Duration,
    /// After an operation, how long health and `reconciledAt` stay stale.
    pub stale_health: Duration,
    /// How often the controller loop looks at the apps.
    pub tick: Duration,
    /// First backoff of the default retry of automated operations (Argo CD ≥ 3.0: 5 s, doubling,
    /// at most 3 min: `DefaultSyncRetryDuration`/`Factor`/`MaxDuration`).
    pub auto_retry_backoff: Duration,
}

impl Default for ArgoTiming {
    fn default() -> Self {
        ArgoTiming {
            poll_interval: Duration::from_secs(180),
            sync_delay: Duration::from_millis(500),
            stale_health: Duration::from_secs(1),
            tick: Duration::from_millis(25),
            auto_retry_backoff: Duration::from_secs(5),
        }
    }
}

/// Injected faults of the Argo CD part.
#[derive(Debug, Default, Clone)]
struct ArgoFaults {
    /// (events, streams): the next `streams` streams end after `events` lines.
    stream_cut: Option<(u32, u32)>,
    /// Extra time the next operation spends Running.
    next_sync_delay: Option<Duration>,
    /// The next N operations fail with this message.
    fail_syncs: Option<(u32, String)>,
    /// The next N refresh GETs hang (see [`ArgoCd::hang_next_refreshes`]).
    hang_refreshes: u32,
    /// Tokens whose role may get applications but not sync them.
    get_only_tokens: Vec<String>,
    /// Per app: how long the PreSync hook Job of each operation runs.
    presync_hooks: BTreeMap<String, Duration>,
    /// The next N sync requests find the repo server unreachable.
    unreachable_resolves: u32,
}

/// A retry strategy (`operation.retry`, `spec.syncPolicy.retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    /// Attempts after the first.
    limit: u32,
    /// Backoff before the first retry.
    backoff: Duration,
    /// Each backoff is the previous one times this.
    factor: u32,
    /// The longest backoff.
    max: Duration,
}

impl Retry {
    /// The backoff before retry number `attempt` (1-based).
    fn backoff(&self, attempt: u32) -> Duration {
        let grown = self
            .backoff
            .saturating_mul(self.factor.saturating_pow(attempt.saturating_sub(1)));
        grown.min(self.max)
    }

    fn to_json(self) -> Value {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        json!({"limit": self.limit, "backoff": {"duration": ms(self.backoff),
            "factor": self.factor, "maxDuration": ms(self.max)}})
    }
}

/// A requested operation (top-level `operation`).
#[derive(Debug, Clone)]
struct Operation {
    revision: String,
    automated: bool,
    prune: bool,
    retry: Option<Retry>,
}

impl Operation {
    fn to_json(&self) -> Value {
        let initiated = if self.automated {
            json!({"automated": true})
        } else {
            json!({"username": "admin"})
        };
        json!({
            "sync": {"revision": self.revision, "prune": self.prune, "syncStrategy": {"hook": {}}},
            "initiatedBy": initiated,
            "retry": self.retry.map_or(json!({}), Retry::to_json),
        })
    }
}

/// `status.operationState`.
#[derive(Debug, Clone)]
struct OpState {
    operation: Operation,
    phase: &'static str,
    message: String,
    started_at: Timestamp,
    finished_at: Option<Timestamp>,
    /// When the apply happens.
    due: Instant,
    result_resources: Vec<Value>,
    result_revision: Option<String>,
    /// Failed attempts retried so far (`status.operationState.retryCount`).
    retry_count: u32,
}

/// One application's state.
#[derive(Debug)]
struct App {
    spec: AppSpec,
    /// The ApplicationSet that generated it (name, uid), if any.
    owner: Option<(String, String)>,
    uid: String,
    created: Timestamp,
    rv: u64,
    refresh: Option<String>,
    /// The refresh annotation is set but the controller fails the comparison (a hanging refresh):
    /// it stays until the next poll reconciles.
    refresh_stuck: bool,
    sync_status: &'static str,
    sync_revision: Option<String>,
    operation: Option<Operation>,
    op_state: Option<OpState>,
    reconciled_at: Option<Timestamp>,
    health: Health,
    health_since: Timestamp,
    resources: Vec<Value>,
    images: Vec<String>,
    conditions: Vec<Value>,
    history: Vec<Value>,
    /// Desired manifests at `sync_revision` (cached for health/sync tracking between polls).
    desired: Vec<Value>,
    last_poll: Instant,
    /// Until then, health and reconciledAt stay as they were before the operation.
    stale_until: Option<Instant>,
    /// A full reconcile is owed (after an operation).
    reconcile_owed: bool,
    last_auto_synced: Option<String>,
    /// `spec.syncPolicy.retry`.
    retry: Option<Retry>,
    /// The release line the app is shown as.
    profile: ArgoProfile,
}

impl App {
    fn source(&self) -> Value {
        json!({"repoURL": self.spec.repo_url, "path": self.spec.path,
            "targetRevision": self.spec.target_revision})
    }

    fn is_multi_source(&self) -> bool {
        !self.spec.other_sources.is_empty()
    }

    /// `spec.sources` of a multi-source app, with our source in the free slot.
    fn sources(&self) -> Vec<Value> {
        self.aligned(self.source(), |o| o.spec.clone())
    }

    /// The index-aligned list for `ours` and the other sources.
    fn aligned(&self, ours: Value, other: impl Fn(&OtherSource) -> Value) -> Vec<Value> {
        let n = self.spec.other_sources.len() + 1;
        (0..n)
            .map(|i| {
                self.spec
                    .other_sources
                    .iter()
                    .find(|o| o.position == i)
                    .map_or_else(|| ours.clone(), &other)
            })
            .collect()
    }

    /// Sets the source and revision members of `obj` (an operation, a sync result, a history entry,
    /// `sync`): `source`/`revision` for a single source; `sources`/`revisions` for several, where
    /// the singular members stay as their zero values serialize (`{"repoURL": ""}`, `""`), state.go.
    fn put_source(&self, obj: &mut Value, revision: Option<&str>, with_source: bool) {
        if self.is_multi_source() {
            if with_source {
                obj["source"] = json!({"repoURL": ""});
                obj["sources"] = json!(self.sources());
            }
            if let Some(rev) = revision {
                obj["revisions"] = json!(self.aligned(json!(rev), |o| json!(o.revision)));
            }
        } else {
            if with_source {
                obj["source"] = self.source();
            }
            if let Some(rev) = revision {
                obj["revision"] = json!(rev);
            }
        }
    }

    fn destination(&self) -> Value {
        json!({"server": "https://kubernetes.default.svc", "namespace": self.spec.dest_namespace})
    }

    /// The Application as Argo CD's API returns it.
    fn to_json(&self) -> Value {
        let mut metadata = json!({
            "name": self.spec.name, "namespace": APP_NAMESPACE, "uid": self.uid,
            "resourceVersion": self.rv.to_string(), "generation": 1,
            "creationTimestamp": k8s_time(self.created),
        });
        if let Some(r) = &self.refresh {
            metadata["annotations"] = json!({"argocd.argoproj.io/refresh": r});
        }
        if !self.spec.labels.is_empty() {
            metadata["labels"] = json!(self.spec.labels);
        }
        if let Some((set, uid)) = &self.owner {
            metadata["ownerReferences"] = json!([{"apiVersion": "argoproj.io/v1alpha1",
                "kind": "ApplicationSet", "name": set, "uid": uid, "controller": true,
                "blockOwnerDeletion": true}]);
        }
        let mut sync_policy = if self.spec.auto_sync {
            json!({"automated": {"prune": false, "selfHeal": false}})
        } else {
            json!({})
        };
        if let Some(retry) = self.retry {
            sync_policy["retry"] = retry.to_json();
        }
        let mut sync = json!({"status": self.sync_status,
            "comparedTo": {"destination": self.destination()}});
        self.put_source(&mut sync["comparedTo"], None, true);
        self.put_source(&mut sync, self.sync_revision.as_deref(), false);
        let mut status = json!({
            "sync": sync,
            "health": {"status": self.health.status, "lastTransitionTime": k8s_time(self.health_since)},
            "resources": self.resources,
            "summary": {"images": self.images},
            "sourceType": "Kustomize",
            "controllerNamespace": APP_NAMESPACE,
        });
        if !self.profile.persist_resource_health {
            // 3.x keeps resource health out of the CR (controller/health.go) and says where it is;
            // the API server copies it back from the tree cache into `resources[].health`.
            status["resourceHealthSource"] = json!("appTree");
        }
        if !self.health.message.is_empty() {
            status["health"]["message"] = json!(self.health.message);
        }
        if let Some(at) = self.reconciled_at {
            status["reconciledAt"] = json!(k8s_time(at));
        }
        if !self.conditions.is_empty() {
            status["conditions"] = json!(self.conditions);
        }
        if !self.history.is_empty() {
            status["history"] = json!(self.history);
        }
        if let Some(op) = &self.op_state {
            let mut os = json!({
                "operation": self.operation_json(&op.operation),
                "phase": op.phase,
                "message": op.message,
                "startedAt": k8s_time(op.started_at),
            });
            if let Some(f) = op.finished_at {
                os["finishedAt"] = json!(k8s_time(f));
            }
            if op.retry_count > 0 {
                os["retryCount"] = json!(op.retry_count);
            }
            if op.phase == "Running" && !op.result_resources.is_empty() {
                // A hook is running: the result so far, for the operation's revision.
                os["syncResult"] = json!({"resources": op.result_resources});
                if self.is_multi_source() {
                    os["syncResult"]["revision"] = json!("");
                }
                self.put_source(&mut os["syncResult"], Some(&op.operation.revision), true);
            }
            if let Some(rev) = &op.result_revision {
                os["syncResult"] = json!({"resources": op.result_resources});
                if self.is_multi_source() {
                    os["syncResult"]["revision"] = json!("");
                }
                self.put_source(&mut os["syncResult"], Some(rev), true);
            }
            status["operationState"] = os;
        }
        let mut app = json!({
            "metadata": metadata,
            "spec": {
                "project": self.spec.project,
                "destination": self.destination(),
                "syncPolicy": sync_policy,
            },
            "status": status,
        });
        if self.is_multi_source() {
            app["spec"]["sources"] = json!(self.sources());
        } else {
            app["spec"]["source"] = self.source();
        }
        if let Some(op) = &self.operation {
            app["operation"] = self.operation_json(op);
        }
        app
    }

    /// An operation, with `sync.revision` or (multi-source) `sync.revisions`.
    fn operation_json(&self, op: &Operation) -> Value {
        let mut v = op.to_json();
        if self.is_multi_source() {
            if let Some(sync) = v["sync"].as_object_mut() {
                sync.remove("revision");
            }
            self.put_source(&mut v["sync"], Some(&op.revision), false);
        }
        v
    }

    /// A `status.history[]` entry.
    fn history_entry(&self, id: usize, op: &Operation, started: Timestamp, at: Timestamp) -> Value {
        let initiated = if op.automated {
            json!({"automated": true})
        } else {
            json!({"username": "admin"})
        };
        let mut h = json!({"id": id, "deployedAt": k8s_time(at),
            "deployStartedAt": k8s_time(started), "initiatedBy": initiated});
        self.put_source(&mut h, Some(&op.revision), true);
        h
    }
}

/// `operationState.message` of a due operation a sync window holds back.
const BLOCKED_BY_WINDOW: &str = "Sync operation blocked by sync window";

/// The PreSync hook Job of app `name`'s operations.
fn presync_job(name: &str) -> String {
    format!("{name}-presync")
}

/// The hook's `syncResult.resources[]` entry (controller/sync.go:467-474 copies these fields).
fn presync_result(spec: &AppSpec, job: &str, hook_phase: &str) -> Value {
    json!({"group": "batch", "version": "v1", "kind": "Job", "namespace": spec.dest_namespace,
        "name": job, "status": "Synced", "hookType": "PreSync", "hookPhase": hook_phase,
        "syncPhase": "PreSync", "message": format!("job.batch/{job} created")})
}

/// Go's `time.Kitchen` layout (`3:04PM`), which Argo CD uses in "Retrying attempt #N at …".
fn kitchen(ts: Timestamp) -> String {
    ts.strftime("%-I:%M%p").to_string()
}

/// Shared state behind an [`ArgoCd`] handle.
struct Inner {
    apps: Mutex<BTreeMap<String, App>>,
    kube: Kube,
    timing: Mutex<ArgoTiming>,
    faults: Mutex<ArgoFaults>,
    token: String,
    profile: Mutex<ArgoProfile>,
    /// `spec.syncWindows` per project.
    windows: Mutex<BTreeMap<String, Vec<SyncWindow>>>,
    rv: Mutex<u64>,
    /// Sends (resourceVersion, app name, app JSON) on every change.
    updates: tokio::sync::broadcast::Sender<Arc<(u64, String, Value)>>,
    changed: watch::Sender<u64>,
}

/// Handle on the sandbox's Argo CD (cheap to clone).
#[derive(Clone)]
pub struct ArgoCd {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ArgoCd {
    // The token stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgoCd")
            .field("apps", &self.app_names())
            .finish_non_exhaustive()
    }
}

/// Resolves a revision (branch, tag or SHA) in a bare repository; `None` if it does not exist.
pub fn resolve_revision(repo: &std::path::Path, rev: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{rev}^{{commit}}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn is_sha(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Is every field of `want` present and equal in `have` (what Argo CD's diff amounts to for us)?
fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| is_subset(v, hv))),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == have,
    }
}

fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

fn images_of(obj: &Value) -> Vec<String> {
    let spec = if obj["kind"] == "Pod" {
        &obj["spec"]
    } else {
        &obj["spec"]["template"]["spec"]
    };
    ["initContainers", "containers"]
        .iter()
        .flat_map(|l| spec[l].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect()
}

/// Result of comparing desired manifests with the cluster.
struct Comparison {
    sync_status: &'static str,
    resources: Vec<Value>,
    health: Health,
    images: Vec<String>,
}

impl ArgoCd {
    /// A new Argo CD over `kube`, accepting `Authorization: Bearer <token>`.
    pub fn new(kube: Kube, token: impl Into<String>, timing: ArgoTiming) -> ArgoCd {
        let (updates, _) = tokio::sync::broadcast::channel(1024);
        let (changed, _) = watch::channel(0);
        ArgoCd {
            inner: Arc::new(Inner {
                apps: Mutex::new(BTreeMap::new()),
                kube,
                timing: Mutex::new(timing),
                faults: Mutex::new(ArgoFaults::default()),
                token: token.into(),
                profile: Mutex::new(ArgoProfile::NEWEST),
                windows: Mutex::new(BTreeMap::new()),
                rv: Mutex::new(1000),
                updates,
                changed,
            }),
        }
    }

    fn apps(&self) -> MutexGuard<'_, BTreeMap<String, App>> {
        self.inner.apps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, ArgoFaults> {
        self.inner.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Behaves as the release line `profile` where releases differ (see [`crate::profile`]).
    pub fn set_profile(&self, profile: ArgoProfile) {
        *self.inner.profile.lock().unwrap_or_else(|e| e.into_inner()) = profile;
        let mut apps = self.apps();
        for app in apps.values_mut() {
            app.profile = profile;
            self.publish(app);
        }
    }

    /// The release line this Argo CD behaves as (default [`ArgoProfile::NEWEST`]).
    pub fn profile(&self) -> ArgoProfile {
        *self.inner.profile.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the sync windows of `project` (replacing its previous ones).
    pub fn set_sync_windows(&self, project: &str, windows: Vec<SyncWindow>) {
        self.inner
            .windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(project.to_owned(), windows);
    }

    fn windows_of(&self, project: &str) -> Vec<SyncWindow> {
        self.inner
            .windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(project)
            .cloned()
            .unwrap_or_default()
    }

    /// `GET /applications/{name}/syncwindows` (server/application/application.go
    /// `GetApplicationSyncWindows`): assigned and active windows, and `canSync` = `CanSync(true)`,
    /// i.e. whether a *manual* sync may run now. Empty lists are omitted, as protobuf JSON does.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] if the app does not exist.
    pub fn sync_windows_json(&self, name: &str) -> Result<Value, Error> {
        let project = self.app_project(name).ok_or(Error::PermissionDenied)?;
        let windows = self.windows_of(&project);
        let mut v = json!({"canSync": can_sync(&windows, true)});
        let assigned: Vec<Value> = windows.iter().map(SyncWindow::to_json).collect();
        let active: Vec<Value> = windows
            .iter()
            .filter(|w| w.active)
            .map(SyncWindow::to_json)
            .collect();
        if !assigned.is_empty() {
            v["assignedWindows"] = json!(assigned);
        }
        if !active.is_empty() {
            v["activeWindows"] = json!(active);
        }
        Ok(v)
    }

    /// Fault: the next `count` sync requests fail to resolve the revision because the repo server is
    /// unreachable (400 "error resolving repo revision: … connection refused").
    pub fn fail_next_sync_resolves(&self, count: u32) {
        self.faults().unreachable_resolves = count;
    }

    /// True when a manual sync of app `name` is refused by a sync window now.
    pub fn sync_blocked(&self, name: &str) -> bool {
        self.app_project(name)
            .is_some_and(|p| !can_sync(&self.windows_of(&p), true))
    }

    /// Scenario: every operation of app `name` first runs a PreSync hook Job for `duration`
    /// (`None` removes it). Meanwhile the operation is Running with gitops-engine's "waiting for
    /// completion of hook batch/Job/NAME" and the hook in `syncResult.resources` (pkg/sync/
    /// sync_context.go `setRunningPhase`).
    pub fn set_presync_hook(&self, name: &str, duration: Option<Duration>) {
        let mut f = self.faults();
        match duration {
            Some(d) => f.presync_hooks.insert(name.to_owned(), d),
            None => f.presync_hooks.remove(name),
        };
    }

    /// Scenario: the next `count` `?refresh=` GETs hang without refreshing, as on a real install whose
    /// repo server fails the comparison (the annotation stays; the controller's own poll still runs).
    pub fn hang_next_refreshes(&self, count: u32) {
        self.faults().hang_refreshes = count;
    }

    /// Adds a token whose role has `applications, get` but not `applications, sync` (the least a
    /// deploy of an auto-sync app needs): a sync with it is refused with 403 "permission denied".
    pub fn add_get_only_token(&self, token: impl Into<String>) {
        self.faults().get_only_tokens.push(token.into());
    }

    /// True when `token` is one of [`ArgoCd::add_get_only_token`]'s.
    pub fn is_get_only(&self, token: &str) -> bool {
        self.faults().get_only_tokens.iter().any(|t| t == token)
    }

    /// The bearer token the API accepts.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// The Kubernetes part the apps deploy to.
    pub fn kube(&self) -> &Kube {
        &self.inner.kube
    }

    /// The current timing.
    pub fn timing(&self) -> ArgoTiming {
        self.inner
            .timing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn with_timing(&self, f: impl FnOnce(&mut ArgoTiming)) {
        f(&mut self.inner.timing.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Sets how often git is polled without a refresh.
    pub fn set_poll_interval(&self, d: Duration) {
        self.with_timing(|t| t.poll_interval = d);
    }

    /// Sets how long operations stay Running before applying.
    pub fn set_sync_delay(&self, d: Duration) {
        self.with_timing(|t| t.sync_delay = d);
    }

    /// Sets the stale-health window after each operation (zero disables it).
    pub fn set_stale_health(&self, d: Duration) {
        self.with_timing(|t| t.stale_health = d);
    }

    /// Fault: the next `streams` application streams end after `events` lines each.
    pub fn cut_streams_after(&self, events: u32, streams: u32) {
        self.faults().stream_cut = (streams > 0).then_some((events, streams));
    }

    /// Fault: the next operation stays Running `extra` longer.
    pub fn delay_next_sync(&self, extra: Duration) {
        self.faults().next_sync_delay = Some(extra);
    }

    /// Fault: the next `count` operations end `Failed` with `message`.
    pub fn fail_next_syncs(&self, count: u32, message: impl Into<String>) {
        self.faults().fail_syncs = (count > 0).then(|| (count, message.into()));
    }

    /// Gives the app a sync retry policy (`spec.syncPolicy.retry`): a failed attempt is retried up
    /// to `limit` times after `backoff`; meanwhile the operation stays `Running` with `finishedAt`
    /// set and a "Retrying attempt #N" message, as Argo CD does (docs/research/argocd-rollout.md §A3).
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] if the app does not exist.
    pub fn set_sync_retry(&self, name: &str, limit: u32, backoff: Duration) -> Result<(), Error> {
        let mut apps = self.apps();
        let app = apps.get_mut(name).ok_or(Error::PermissionDenied)?;
        app.retry = (limit > 0).then_some(Retry {
            limit,
            backoff,
            factor: 1,
            max: backoff,
        });
        self.publish(app);
        Ok(())
    }

    /// Takes one use of the stream-cut fault: `Some(events)` if this stream is to be cut.
    pub(crate) fn take_stream_cut(&self) -> Option<u32> {
        let mut f = self.faults();
        let (events, streams) = f.stream_cut?;
        f.stream_cut = (streams > 1).then_some((events, streams - 1));
        Some(events)
    }

    /// Subscribes to application changes.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<(u64, String, Value)>> {
        self.inner.updates.subscribe()
    }

    /// A receiver that changes on every application change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// Stamps a new resourceVersion on the app and publishes it.
    fn publish(&self, app: &mut App) {
        let mut rv = self.inner.rv.lock().unwrap_or_else(|e| e.into_inner());
        *rv += 1;
        app.rv = *rv;
        let _ = self
            .inner
            .updates
            .send(Arc::new((app.rv, app.spec.name.clone(), app.to_json())));
        self.inner.changed.send_replace(*rv);
    }

    /// The application as the API shows it.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] if it does not exist.
    pub fn app_json(&self, name: &str) -> Result<Value, Error> {
        self.apps()
            .get(name)
            .map(App::to_json)
            .ok_or(Error::PermissionDenied)
    }

    /// The project of application `name`, if it exists.
    pub fn app_project(&self, name: &str) -> Option<String> {
        self.apps().get(name).map(|a| a.spec.project.clone())
    }

    /// The applications whose labels match `selector` (all without one) in `projects` (all when
    /// empty), as Argo CD's API returns them.
    pub fn list_json(&self, selector: Option<&LabelSelector>, projects: &[String]) -> Vec<Value> {
        self.apps()
            .values()
            .filter(|a| selector.is_none_or(|s| s.matches(&a.spec.labels)))
            .filter(|a| projects.is_empty() || projects.contains(&a.spec.project))
            .map(App::to_json)
            .collect()
    }

    /// Names of all applications.
    pub fn app_names(&self) -> Vec<String> {
        self.apps().keys().cloned().collect()
    }

    /// Deletes an app without touching its resources (`argocd app delete --cascade=false`: the
    /// live objects stay, argo-cd `cmd/argocd/commands/app.go`). True when it existed.
    pub fn remove_app(&self, name: &str) -> bool {
        self.apps().remove(name).is_some()
    }

    /// Adds the applications an ApplicationSet named `set` generated (one per element of its
    /// generator). Argo CD's ApplicationSet controller makes each an ordinary Application owned by
    /// the set (`metadata.ownerReferences`, `controller: true`; argo-cd
    /// `applicationset/controllers/applicationset_controller.go`, `controllerutil.SetControllerReference`).
    ///
    /// # Errors
    /// As [`ArgoCd::add_app`].
    pub fn add_generated_apps(
        &self,
        set: &str,
        specs: Vec<AppSpec>,
        synced: bool,
    ) -> Result<(), Error> {
        let uid = format!("{:032x}", rand::random::<u128>());
        for spec in specs {
            let name = spec.name.clone();
            self.add_app(spec, synced)?;
            if let Some(app) = self.apps().get_mut(&name) {
                app.owner = Some((set.to_owned(), uid.clone()));
            }
        }
        Ok(())
    }

    /// Adds an application. With `synced`, it is synced and healthy at once (the seed):
    /// rendered at the branch head, applied, rollouts settled, one history entry.
    ///
    /// # Errors
    /// An app with that name exists, or the revision cannot be resolved.
    pub fn add_app(&self, spec: AppSpec, synced: bool) -> Result<(), Error> {
        if self.apps().contains_key(&spec.name) {
            return Err(Error::Exists(spec.name));
        }
        let now = crate::clock::now();
        let mut app = App {
            owner: None,
            uid: format!("{:032x}", rand::random::<u128>()),
            created: now,
            rv: 0,
            refresh: None,
            refresh_stuck: false,
            sync_status: "Unknown",
            sync_revision: None,
            operation: None,
            op_state: None,
            reconciled_at: None,
            health: Health::missing(),
            health_since: now,
            resources: Vec::new(),
            images: Vec::new(),
            conditions: Vec::new(),
            history: Vec::new(),
            desired: Vec::new(),
            last_poll: Instant::now(),
            stale_until: None,
            reconcile_owed: false,
            last_auto_synced: None,
            retry: None,
            profile: self.profile(),
            spec,
        };
        if synced {
            let sha = resolve_revision(&app.spec.repo_dir, &app.spec.target_revision)
                .ok_or_else(|| Error::Unresolvable(app.spec.target_revision.clone()))?;
            let (resources, _) = self.apply_revision(&app.spec, &sha);
            self.inner.kube.settle();
            let op = Operation {
                revision: sha.clone(),
                automated: app.spec.auto_sync,
                prune: false,
                retry: None,
            };
            let entry = app.history_entry(0, &op, now, now);
            app.history.push(entry);
            app.op_state = Some(OpState {
                operation: op,
                phase: "Succeeded",
                message: "successfully synced (all tasks run)".into(),
                started_at: now,
                finished_at: Some(now),
                due: Instant::now(),
                result_resources: resources,
                result_revision: Some(sha.clone()),
                retry_count: 0,
            });
            app.last_auto_synced = Some(sha);
        }
        self.full_reconcile(&mut app);
        let name = app.spec.name.clone();
        self.publish(&mut app);
        self.apps().insert(name, app);
        Ok(())
    }

    /// Requests a refresh and waits until the controller has processed it (no server-side
    /// timeout, as Argo CD; the caller's request timeout bounds it).
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] if the app does not exist.
    pub async fn refresh(&self, name: &str, kind: &str) -> Result<Value, Error> {
        let hang = {
            let mut faults = self.faults();
            let hang = faults.hang_refreshes > 0;
            faults.hang_refreshes = faults.hang_refreshes.saturating_sub(1);
            hang
        };
        if hang {
            // argo-cd server/application/application.go `Get` (v3.x, :780-897) waits for an event
            // without the refresh annotation and has no timeout of its own; when the controller fails
            // the comparison (`ErrCompareStateRepo`, controller/appcontroller.go:1982) it leaves the
            // annotation and the request hangs until the client gives up (argo-cd#15519, #17205).
            // Bounded here so no task outlives the sandbox; then the 500 the ctx deadline gives.
            {
                let mut apps = self.apps();
                let app = apps.get_mut(name).ok_or(Error::PermissionDenied)?;
                if app.refresh.is_none() {
                    app.refresh = Some(kind.to_owned());
                    app.refresh_stuck = true;
                    self.publish(app);
                }
            }
            tokio::time::sleep(crate::http::STALL_LIMIT).await;
            return Err(Error::RefreshDeadline);
        }
        let mut changes = self.changes();
        let requested_rv = {
            let mut apps = self.apps();
            let app = apps.get_mut(name).ok_or(Error::PermissionDenied)?;
            app.refresh = Some(kind.to_owned());
            app.refresh_stuck = false;
            self.publish(app);
            app.rv
        };
        loop {
            {
                let apps = self.apps();
                let app = apps.get(name).ok_or(Error::PermissionDenied)?;
                if app.refresh.is_none() && app.rv > requested_rv {
                    return Ok(app.to_json());
                }
            }
            if changes.changed().await.is_err() {
                return Err(Error::PermissionDenied);
            }
        }
    }

    /// Requests a sync operation as `POST /applications/{name}/sync` does.
    ///
    /// # Errors
    /// Unknown app, an operation already pending, a revision that conflicts with auto-sync, or an
    /// unresolvable revision.
    pub fn sync(&self, name: &str, revision: Option<&str>, prune: bool) -> Result<Value, Error> {
        let mut apps = self.apps();
        let app = apps.get_mut(name).ok_or(Error::PermissionDenied)?;
        if !can_sync(&self.windows_of(&app.spec.project), true) {
            return Err(Error::SyncWindow);
        }
        let revision = revision.filter(|r| !r.is_empty());
        if let Some(rev) = revision {
            if app.spec.auto_sync && rev != app.spec.target_revision {
                return Err(Error::AutoSyncRevision {
                    requested: rev.to_owned(),
                    target: app.spec.target_revision.clone(),
                });
            }
        }
        if app.operation.is_some() {
            return Err(Error::OperationInProgress);
        }
        {
            let mut f = self.faults();
            if f.unreachable_resolves > 0 {
                f.unreachable_resolves -= 1;
                return Err(Error::RepoServerUnavailable);
            }
        }
        let wanted = revision.unwrap_or(&app.spec.target_revision).to_owned();
        let sha = if is_sha(&wanted) {
            wanted.to_lowercase()
        } else {
            resolve_revision(&app.spec.repo_dir, &wanted).ok_or(Error::Unresolvable(wanted))?
        };
        app.operation = Some(Operation {
            revision: sha,
            automated: false,
            prune,
            retry: app.retry,
        });
        app.op_state = None;
        self.publish(app);
        Ok(app.to_json())
    }

    /// Live object of a resource that belongs to the app (managed, or a ReplicaSet/Pod under one).
    ///
    /// # Errors
    /// Unknown app, or the resource is not part of it.
    pub fn live_resource(
        &self,
        name: &str,
        kind: &str,
        namespace: &str,
        resource: &str,
    ) -> Result<Value, Error> {
        let tree = self.resource_tree(name)?;
        let known = tree["nodes"].as_array().is_some_and(|ns| {
            ns.iter()
                .any(|n| n["kind"] == kind && n["name"] == resource && n["namespace"] == namespace)
        });
        let not_found = || Error::ResourceNotFound {
            kind: kind.to_owned(),
            name: resource.to_owned(),
            app: name.to_owned(),
        };
        if !known {
            return Err(not_found());
        }
        self.inner
            .kube
            .get_any(kind, namespace, resource)
            .ok_or_else(not_found)
    }

    /// The resource tree: managed resources, and for Deployments their ReplicaSets and Pods.
    ///
    /// # Errors
    /// [`Error::PermissionDenied`] if the app does not exist.
    pub fn resource_tree(&self, name: &str) -> Result<Value, Error> {
        let desired = {
            let apps = self.apps();
            let app = apps.get(name).ok_or(Error::PermissionDenied)?;
            app.desired.clone()
        };
        let kube = &self.inner.kube;
        let mut nodes = Vec::new();
        let node = |obj: &Value, parent: Option<&Value>| -> Value {
            let (group, version) = group_version(obj["apiVersion"].as_str().unwrap_or("v1"));
            let mut n = json!({
                "group": group, "version": version, "kind": obj["kind"],
                "namespace": obj["metadata"]["namespace"], "name": obj["metadata"]["name"],
                "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
                "createdAt": obj["metadata"]["creationTimestamp"],
            });
            if let Some(h) = health::of(obj) {
                n["health"] = json!({"status": h.status});
                if !h.message.is_empty() {
                    n["health"]["message"] = json!(h.message);
                }
            }
            let images = images_of(obj);
            if !images.is_empty() && obj["kind"] != "Deployment" {
                n["images"] = json!(images);
            }
            if obj["kind"] == "Pod" {
                let total = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
                let ready = obj["status"]["containerStatuses"]
                    .as_array()
                    .map_or(0, |cs| cs.iter().filter(|c| c["ready"] == true).count());
                let reason = obj["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    .as_str()
                    .or(obj["status"]["phase"].as_str())
                    .unwrap_or("Unknown");
                n["info"] = json!([{"name": "Status Reason", "value": reason},
                    {"name": "Containers", "value": format!("{ready}/{total}")}]);
            }
            if let Some(p) = parent {
                let (pg, pv) = group_version(p["apiVersion"].as_str().unwrap_or("v1"));
                n["parentRefs"] = json!([{"group": pg, "version": pv, "kind": p["kind"],
                    "namespace": p["metadata"]["namespace"], "name": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"]}]);
            }
            n
        };
        for d in &desired {
            let kind = d["kind"].as_str().unwrap_or("");
            let Some(live) = kube.get_any(
                kind,
                str_at(d, &["metadata", "namespace"]),
                str_at(d, &["metadata", "name"]),
            ) else {
                continue;
            };
            nodes.push(node(&live, None));
            // ReplicaSets and pods of Deployments and Argo Rollouts' Rollouts (the controller's
            // tree follows ownerReferences).
            if kind == "Deployment" || kind == "Rollout" {
                let ns = str_at(&live, &["metadata", "namespace"]);
                let uid = str_at(&live, &["metadata", "uid"]);
                for rs in kube.list(Resource::ReplicaSets, Some(ns)) {
                    if rs["metadata"]["ownerReferences"][0]["uid"] != uid {
                        continue;
                    }
                    nodes.push(node(&rs, Some(&live)));
                    let rs_uid = str_at(&rs, &["metadata", "uid"]);
                    for pod in kube.list(Resource::Pods, Some(ns)) {
                        if pod["metadata"]["ownerReferences"][0]["uid"] == rs_uid {
                            nodes.push(node(&pod, Some(&rs)));
                        }
                    }
                }
            }
        }
        Ok(json!({"nodes": nodes}))
    }

    /// Renders `spec` at `sha` and applies the result; returns the per-resource results and an
    /// error message if rendering failed.
    fn apply_revision(&self, spec: &AppSpec, sha: &str) -> (Vec<Value>, Option<String>) {
        let desired = match crate::render::render(&spec.repo_dir, sha, &spec.path) {
            Ok(d) => d,
            Err(e) => return (Vec::new(), Some(e.to_string())),
        };
        let mut results = Vec::new();
        for mut obj in desired {
            if str_at(&obj, &["metadata", "namespace"]).is_empty() && obj["kind"] != "Namespace" {
                obj["metadata"]["namespace"] = json!(spec.dest_namespace);
            }
            let kind = obj["kind"].as_str().unwrap_or("").to_owned();
            let (group, version) = group_version(obj["apiVersion"].as_str().unwrap_or("v1"));
            let (group, version) = (group.to_owned(), version.to_owned());
            let ns = str_at(&obj, &["metadata", "namespace"]).to_owned();
            let name = str_at(&obj, &["metadata", "name"]).to_owned();
            let before = self.inner.kube.get_any(&kind, &ns, &name);
            let images = images_of(&obj);
            let verb = match self.inner.kube.apply(obj) {
                Ok(_) if before.is_none() => Ok("created"),
                Ok(after) if before.as_ref() == Some(&after) => Ok("unchanged"),
                Ok(_) => Ok("configured"),
                Err(e) => Err(e.to_string()),
            };
            let kind_lower = kind.to_lowercase();
            let qualified = if group.is_empty() {
                kind_lower
            } else {
                format!("{kind_lower}.{group}")
            };
            let (status, message) = match verb {
                Ok(v) => ("Synced", format!("{qualified}/{name} {v}")),
                Err(e) => ("SyncFailed", e),
            };
            let mut r = json!({"group": group, "version": version, "kind": kind, "namespace": ns,
                "name": name, "status": status, "message": message, "hookPhase": "Running",
                "syncPhase": "Sync"});
            if !images.is_empty() {
                r["images"] = json!(images);
            }
            results.push(r);
        }
        (results, None)
    }

    /// Compares desired manifests with the cluster: sync status, resources and health.
    fn compare(&self, spec: &AppSpec, desired: &[Value]) -> Comparison {
        let kube = &self.inner.kube;
        let mut resources = Vec::new();
        let mut healths = Vec::new();
        let mut images = Vec::new();
        let mut all_synced = true;
        for d in desired {
            let kind = d["kind"].as_str().unwrap_or("");
            let ns = match str_at(d, &["metadata", "namespace"]) {
                "" if kind != "Namespace" => spec.dest_namespace.as_str(),
                ns => ns,
            };
            let name = str_at(d, &["metadata", "name"]);
            let (group, version) = group_version(d["apiVersion"].as_str().unwrap_or("v1"));
            let live = kube.get_any(kind, ns, name);
            let synced = live.as_ref().is_some_and(|l| {
                is_subset(&d["spec"], &l["spec"])
                    && is_subset(&d["metadata"]["labels"], &l["metadata"]["labels"])
                    && d.get("data").is_none_or(|data| Some(data) == l.get("data"))
            });
            all_synced &= synced;
            let h = match &live {
                None => Some(Health::missing()),
                Some(l) => health::of(l),
            };
            if let Some(l) = &live {
                images.extend(images_of(l));
            }
            let mut r = json!({"group": group, "version": version, "kind": kind, "namespace": ns,
                "name": name, "status": if synced { "Synced" } else { "OutOfSync" }});
            if let Some(h) = h {
                r["health"] = json!({"status": h.status});
                if !h.message.is_empty() {
                    r["health"]["message"] = json!(h.message);
                }
                // HEAD controller/health.go: `group/Kind` (`Kind` for the core group), `ns/name`.
                let gk = if group.is_empty() {
                    kind.to_owned()
                } else {
                    format!("{group}/{kind}")
                };
                let source = if ns.is_empty() {
                    format!("{gk}:{name}")
                } else {
                    format!("{gk}:{ns}/{name}")
                };
                healths.push((
                    health::ResourceHealth {
                        health: h,
                        live: live.is_some(),
                        checked: health::has_check(kind),
                    },
                    source,
                ));
            }
            resources.push(r);
        }
        images.sort();
        images.dedup();
        let profile = self.profile();
        let all: Vec<_> = healths.iter().map(|(h, _)| h.clone()).collect();
        let status = health::aggregate(&all, profile.missing_makes_app_missing);
        let message = match profile.app_health_message {
            AppHealthMessage::None => String::new(),
            // "Caused by" the resources at the app's status, at most three named; empty when
            // Healthy or when Missing because nothing is live (HEAD controller/health.go:116-141).
            AppHealthMessage::CausedBy => {
                let parts: Vec<&str> = healths
                    .iter()
                    .filter(|(h, _)| h.live && h.health.status == status && status != "Healthy")
                    .map(|(_, s)| s.as_str())
                    .collect();
                match parts.len() {
                    0 => String::new(),
                    1..=3 => format!("Caused by {}", parts.join(", ")),
                    n => format!("Caused by {} and {} more", parts[..3].join(", "), n - 3),
                }
            }
        };
        Comparison {
            sync_status: if all_synced { "Synced" } else { "OutOfSync" },
            resources,
            health: Health { status, message },
            images,
        }
    }

    fn set_health(app: &mut App, h: Health) {
        if app.health.status != h.status {
            app.health_since = crate::clock::now();
        }
        app.health = h;
    }

    /// Full reconcile: resolve the branch, render, compare, maybe auto-sync. Clears a refresh.
    fn full_reconcile(&self, app: &mut App) {
        app.last_poll = Instant::now();
        app.refresh = None;
        app.refresh_stuck = false;
        app.reconcile_owed = false;
        app.reconciled_at = Some(crate::clock::now());
        let Some(sha) = resolve_revision(&app.spec.repo_dir, &app.spec.target_revision) else {
            app.sync_status = "Unknown";
            app.conditions = vec![json!({"type": "ComparisonError",
                "message": format!("Failed to load target state: unable to resolve {:?} to a commit SHA", app.spec.target_revision),
                "lastTransitionTime": k8s_time(crate::clock::now())})];
            return;
        };
        match crate::render::render(&app.spec.repo_dir, &sha, &app.spec.path) {
            Ok(desired) => {
                app.conditions.clear();
                app.desired = desired;
            }
            Err(e) => {
                app.sync_status = "Unknown";
                app.sync_revision = Some(sha);
                app.conditions = vec![json!({"type": "ComparisonError",
                    "message": format!("Failed to load target state: failed to generate manifest for source 1 of 1: {e}"),
                    "lastTransitionTime": k8s_time(crate::clock::now())})];
                return;
            }
        }
        app.sync_revision = Some(sha.clone());
        let cmp = self.compare(&app.spec, &app.desired);
        app.sync_status = cmp.sync_status;
        app.resources = cmp.resources;
        app.images = cmp.images;
        Self::set_health(app, cmp.health);
        // Auto-sync, once per revision (Argo CD skips a revision whose auto-sync was attempted).
        // controller/appcontroller.go: auto-sync is not even attempted while a window blocks it
        // (only a log line "Sync prevented by sync window"; v3.0.0 :1764-1780).
        if app.spec.auto_sync
            && app.sync_status == "OutOfSync"
            && app.operation.is_none()
            && can_sync(&self.windows_of(&app.spec.project), false)
            && app.last_auto_synced.as_deref() != Some(sha.as_str())
        {
            // controller/appcontroller.go `autoSync` (v2.12 to HEAD; v2.14.21 :2113): the app's retry
            // policy, else `Retry{Limit: 5}` with the defaults of application_defaults.go (5 s,
            // factor 2, at most 3 min).
            let default_retry = Some(Retry {
                limit: 5,
                backoff: self.timing().auto_retry_backoff,
                factor: 2,
                max: self.timing().auto_retry_backoff * 36,
            });
            app.operation = Some(Operation {
                revision: sha.clone(),
                automated: true,
                prune: false,
                retry: app.retry.or(default_retry),
            });
            app.op_state = None;
            app.last_auto_synced = Some(sha);
        }
    }

    /// One pass of the controller over every app.
    pub fn tick(&self) {
        let timing = self.timing();
        let names = self.app_names();
        for name in names {
            self.tick_app(&name, &timing);
        }
    }

    fn tick_app(&self, name: &str, timing: &ArgoTiming) {
        let now = Instant::now();
        // 1. Operations.
        let to_apply = {
            let mut apps = self.apps();
            let Some(app) = apps.get_mut(name) else {
                return;
            };
            let mut changed = false;
            if let Some(op) = app.operation.clone() {
                if app.op_state.as_ref().is_none_or(|s| s.phase != "Running") {
                    let (extra, hook) = {
                        let mut f = self.faults();
                        (
                            f.next_sync_delay.take().unwrap_or_default(),
                            f.presync_hooks.get(name).copied(),
                        )
                    };
                    let (message, hook_results) = match hook {
                        Some(_) => {
                            let job = presync_job(name);
                            (
                                format!("waiting for completion of hook batch/Job/{job}"),
                                vec![presync_result(&app.spec, &job, "Running")],
                            )
                        }
                        None => (String::new(), Vec::new()),
                    };
                    app.op_state = Some(OpState {
                        operation: op,
                        phase: "Running",
                        message,
                        started_at: crate::clock::now(),
                        finished_at: None,
                        due: now + timing.sync_delay + extra + hook.unwrap_or_default(),
                        result_resources: hook_results,
                        result_revision: None,
                        retry_count: 0,
                    });
                    changed = true;
                }
            }
            let due = app
                .op_state
                .as_ref()
                .is_some_and(|s| s.phase == "Running" && now >= s.due);
            // With a stale-health window, finish in a later wall-clock second than the last
            // reconcile, so `reconciledAt < finishedAt` is visible at Kubernetes' 1 s resolution.
            let same_second = app
                .reconciled_at
                .is_some_and(|r| r.as_second() >= crate::clock::now().as_second());
            let mut apply = due && !(timing.stale_health > Duration::ZERO && same_second);
            // controller/sync.go `SyncAppState` (v3.0.0 :180-184): a due operation inside a blocking
            // window stays Running with this message.
            let manual = app.operation.as_ref().is_some_and(|o| !o.automated);
            if apply && !can_sync(&self.windows_of(&app.spec.project), manual) {
                apply = false;
                if let Some(state) = app.op_state.as_mut() {
                    if state.message != BLOCKED_BY_WINDOW {
                        state.message = BLOCKED_BY_WINDOW.into();
                        changed = true;
                    }
                }
            }
            if changed {
                self.publish(app);
            }
            apply.then(|| (app.spec.clone(), app.operation.clone()))
        };
        if let Some((spec, Some(op))) = to_apply {
            let failure = {
                let mut f = self.faults();
                match f.fail_syncs.take() {
                    Some((n, msg)) => {
                        if n > 1 {
                            f.fail_syncs = Some((n - 1, msg.clone()));
                        }
                        Some(msg)
                    }
                    None => None,
                }
            };
            let (results, render_error) = match &failure {
                Some(_) => (Vec::new(), None),
                None => self.apply_revision(&spec, &op.revision),
            };
            let mut apps = self.apps();
            let Some(app) = apps.get_mut(name) else {
                return;
            };
            let finished = crate::clock::now();
            let Some(state) = app.op_state.as_mut() else {
                return;
            };
            state.finished_at = Some(finished);
            if let Some(msg) = failure {
                let message = format!("one or more objects failed to apply, reason: {msg}");
                match op.retry {
                    Some(retry) if state.retry_count < retry.limit => {
                        let backoff = retry.backoff(state.retry_count + 1);
                        // Argo CD keeps the operation: Running, finishedAt set, retry scheduled.
                        state.retry_count += 1;
                        let at = finished
                            .checked_add(
                                jiff::SignedDuration::try_from(backoff).unwrap_or_default(),
                            )
                            .unwrap_or(finished);
                        state.message = format!(
                            "{message}. Retrying attempt #{} at {}.",
                            state.retry_count,
                            kitchen(at)
                        );
                        state.due = Instant::now() + backoff;
                        self.publish(app);
                        return;
                    }
                    Some(_) => {
                        state.phase = "Failed";
                        state.message = format!("{message} (retried {} times).", state.retry_count);
                    }
                    None => {
                        state.phase = "Failed";
                        state.message = message;
                    }
                }
            } else if let Some(e) = render_error {
                state.phase = "Error";
                state.message =
                    format!("rpc error: code = Unknown desc = failed to generate manifest: {e}");
            } else if results.iter().any(|r| r["status"] == "SyncFailed") {
                state.phase = "Failed";
                state.message = "one or more objects failed to apply".into();
                state.result_resources = results;
                state.result_revision = Some(op.revision.clone());
            } else {
                state.phase = "Succeeded";
                state.message = "successfully synced (all tasks run)".into();
                let hook_done = state
                    .result_resources
                    .iter()
                    .any(|r| r["hookType"] == "PreSync")
                    .then(|| presync_result(&spec, &presync_job(name), "Succeeded"));
                state.result_resources = hook_done.into_iter().chain(results).collect();
                state.result_revision = Some(op.revision.clone());
                let id = app.history.len();
                let started = state.started_at;
                let entry = app.history_entry(id, &op, started, finished);
                app.history.push(entry);
                // What a client sees in the stale window: synced to the new revision, health and
                // reconciledAt from before (kargo#2196).
                app.sync_status = "Synced";
                app.sync_revision = Some(op.revision.clone());
            }
            app.operation = None;
            if timing.stale_health.is_zero() {
                // No stale window: the post-operation reconcile lands in the same update.
                self.full_reconcile(app);
            } else {
                app.reconcile_owed = true;
                app.stale_until = Some(Instant::now() + timing.stale_health);
            }
            self.publish(app);
            return;
        }

        // 2. Refresh, poll, or the reconcile owed after an operation.
        let mut apps = self.apps();
        let Some(app) = apps.get_mut(name) else {
            return;
        };
        if app.stale_until.is_some_and(|t| now < t) {
            return;
        }
        app.stale_until = None;
        let poll_due = now.duration_since(app.last_poll) >= timing.poll_interval;
        let refresh_pending = app.refresh.is_some() && !app.refresh_stuck;
        if refresh_pending || poll_due || app.reconcile_owed {
            let before = app.to_json();
            self.full_reconcile(app);
            if refresh_pending || app.to_json() != before {
                self.publish(app);
            }
            return;
        }
        // 3. Between polls: follow the live objects (resource health and sync status).
        if app.op_state.as_ref().is_some_and(|s| s.phase == "Running") {
            return;
        }
        let cmp = self.compare(&app.spec, &app.desired);
        let before = app.to_json();
        app.sync_status = cmp.sync_status;
        app.resources = cmp.resources;
        app.images = cmp.images;
        Self::set_health(app, cmp.health);
        if app.to_json() != before {
            self.publish(app);
        }
    }

    /// Runs the controller loop until the handle is dropped or aborted.
    pub fn spawn_controller(&self) -> tokio::task::JoinHandle<()> {
        let argo = self.clone();
        tokio::spawn(async move {
            loop {
                let tick = argo.timing().tick;
                tokio::time::sleep(tick).await;
                let a = argo.clone();
                // Rendering runs git: keep it off the async workers. On a paused clock that is safe
                // too: tokio holds auto-advance while a blocking task runs (test-util,
                // runtime/blocking/schedule.rs), so the clock cannot jump past git. A panicking pass
                // is a bug; the loop goes on so the other apps keep being served.
                if let Err(e) = tokio::task::spawn_blocking(move || a.tick()).await {
                    tracing::error!("argo cd controller pass failed: {e}");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_ignores_defaults_but_not_changes() {
        let want = json!({"replicas": 3, "template": {"spec": {"containers": [{"image": "a:1"}]}}});
        let have = json!({"replicas": 3, "progressDeadlineSeconds": 600,
            "template": {"spec": {"containers": [{"image": "a:1", "imagePullPolicy": "IfNotPresent"}]}}});
        assert!(is_subset(&want, &have));
        let changed =
            json!({"replicas": 3, "template": {"spec": {"containers": [{"image": "a:2"}]}}});
        assert!(!is_subset(&changed, &have));
    }
}
