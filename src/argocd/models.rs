//! Argo CD REST models, written from `sandbox/specs/argocd-swagger.json` (`v1alpha1Application` and
//! friends). They hold only the fields the verify phases read (docs/research/argocd-rollout.md A3) and ignore unknown ones.
//!
//! The swagger marks almost nothing as required and the server omits empty fields, so every field is
//! optional or defaults to empty.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// `v1alpha1Application`: one Argo CD application as the API server returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Application {
    /// Name, namespace, resourceVersion, annotations.
    pub metadata: ObjectMeta,
    /// The desired state.
    pub spec: ApplicationSpec,
    /// The *requested* operation (top level, not status): set while an operation is pending.
    pub operation: Option<Operation>,
    /// The observed state.
    pub status: ApplicationStatus,
}

/// The metadata fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ObjectMeta {
    /// Object name.
    pub name: Option<String>,
    /// Namespace of the Application object (the "app namespace").
    pub namespace: Option<String>,
    /// Resource version, used to resume a stream.
    pub resource_version: Option<String>,
    /// Annotations (`argocd.argoproj.io/refresh` while a refresh is pending).
    pub annotations: BTreeMap<String, String>,
    /// Labels (what `argocd_selector` matches).
    pub labels: BTreeMap<String, String>,
}

/// `v1alpha1ApplicationSpec`: the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ApplicationSpec {
    /// Project the application belongs to.
    pub project: Option<String>,
    /// Single-source applications.
    pub source: Option<ApplicationSource>,
    /// Multi-source applications.
    pub sources: Vec<ApplicationSource>,
    /// Sync policy (auto-sync on or off).
    pub sync_policy: Option<SyncPolicy>,
    /// The source hydrator's settings (Argo CD ≥ 2.14), kept only to tell that it is used.
    pub source_hydrator: Option<serde_json::Value>,
}

impl ApplicationSpec {
    /// True when auto-sync is on: `syncPolicy.automated` is present and not `enabled: false`.
    pub fn is_auto_sync(&self) -> bool {
        self.sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .is_some_and(|a| a.enabled != Some(false))
    }

    /// True for a multi-source application.
    pub fn is_multi_source(&self) -> bool {
        !self.sources.is_empty()
    }
}

/// `v1alpha1ApplicationSource`: the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ApplicationSource {
    /// Git repository URL.
    #[serde(rename = "repoURL")]
    pub repo_url: Option<String>,
    /// Directory inside the repository.
    pub path: Option<String>,
    /// Branch, tag or SHA the source follows.
    pub target_revision: Option<String>,
    /// Reference name for multi-source `$ref` values.
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    /// Helm settings (`valueFiles` may name files of another source: `$values/envs/prod.yaml`).
    pub helm: Option<ApplicationSourceHelm>,
}

/// `v1alpha1ApplicationSourceHelm`: the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ApplicationSourceHelm {
    /// Values files, relative to the source's path, or `$ref/path` in a `ref` source's repository.
    pub value_files: Vec<String>,
}

/// `v1alpha1SyncPolicy`: the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SyncPolicy {
    /// Present when auto-sync is configured.
    pub automated: Option<SyncPolicyAutomated>,
}

/// `v1alpha1SyncPolicyAutomated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SyncPolicyAutomated {
    /// Argo CD 3.x lets an app keep the block but switch auto-sync off with `enabled: false`.
    pub enabled: Option<bool>,
    /// Prune resources on auto-sync.
    pub prune: Option<bool>,
    /// Revert drift on auto-sync.
    pub self_heal: Option<bool>,
}

/// `v1alpha1Operation`: a requested operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Operation {
    /// The sync operation, if it is one.
    pub sync: Option<SyncOperation>,
}

/// `v1alpha1SyncOperation`: the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SyncOperation {
    /// Revision requested (single source); auto-sync puts the resolved SHA here.
    pub revision: Option<String>,
    /// Revisions requested (multi-source).
    pub revisions: Vec<String>,
}

/// `v1alpha1ApplicationStatus`: the fields we read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ApplicationStatus {
    /// Comparison result with git.
    pub sync: SyncStatus,
    /// Aggregated health.
    pub health: HealthStatus,
    /// State of the current or last operation.
    pub operation_state: Option<OperationState>,
    /// Last full reconciliation with the latest git state.
    pub reconciled_at: Option<Timestamp>,
    /// Conditions (`…Error` types are errors).
    pub conditions: Vec<ApplicationCondition>,
    /// Managed resources and their health.
    pub resources: Vec<ResourceStatus>,
}

/// `v1alpha1SyncStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SyncStatus {
    /// `Synced`, `OutOfSync` or `Unknown` (the one string the server always emits).
    pub status: Option<String>,
    /// SHA the last comparison used (single source).
    pub revision: Option<String>,
    /// SHAs the last comparison used (multi-source).
    pub revisions: Vec<String>,
}

/// `v1alpha1AppHealthStatus` / `v1alpha1HealthStatus`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct HealthStatus {
    /// `Healthy`, `Progressing`, `Degraded`, `Suspended`, `Missing` or `Unknown`.
    pub status: Option<String>,
    /// Human message, names the culprit.
    pub message: Option<String>,
}

/// `v1alpha1OperationState`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct OperationState {
    /// `Running`, `Terminating`, `Failed`, `Error` or `Succeeded`.
    pub phase: Option<String>,
    /// Outcome or progress message.
    pub message: Option<String>,
    /// The operation as requested.
    pub operation: Option<Operation>,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it finished (also set while a retry is pending).
    pub finished_at: Option<Timestamp>,
    /// Retries so far.
    pub retry_count: Option<i64>,
    /// What the sync did.
    pub sync_result: Option<SyncOperationResult>,
}

impl OperationState {
    /// True once the phase is final (`Succeeded`, `Failed` or `Error`). `finishedAt` alone is not enough:
    /// a pending retry keeps `Running` with `finishedAt` set (docs/research/argocd-rollout.md TL;DR 3).
    pub fn is_completed(&self) -> bool {
        matches!(
            self.phase.as_deref(),
            Some("Succeeded" | "Failed" | "Error")
        )
    }
}

/// `v1alpha1SyncOperationResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SyncOperationResult {
    /// SHA actually synced (single source).
    pub revision: Option<String>,
    /// SHAs actually synced (multi-source).
    pub revisions: Vec<String>,
    /// Per-resource results.
    pub resources: Vec<ResourceResult>,
}

/// `v1alpha1ResourceResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ResourceResult {
    /// API group.
    pub group: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// `Synced`, `SyncFailed`, `Pruned`, `PruneSkipped`.
    pub status: Option<String>,
    /// Message of the apply.
    pub message: Option<String>,
    /// Hook phase for hooks (`Failed`/`Error` are failures).
    pub hook_phase: Option<String>,
}

impl ResourceResult {
    /// True when this resource made the sync fail.
    pub fn is_failed(&self) -> bool {
        self.status.as_deref() == Some("SyncFailed")
            || matches!(self.hook_phase.as_deref(), Some("Failed" | "Error"))
    }
}

/// `v1alpha1ApplicationCondition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ApplicationCondition {
    /// Condition type, e.g. `ComparisonError`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Message.
    pub message: Option<String>,
}

impl ApplicationCondition {
    /// Argo CD's own `IsError()`: the type ends in `Error`.
    pub fn is_error(&self) -> bool {
        self.type_.as_deref().is_some_and(|t| t.ends_with("Error"))
    }
}

/// `applicationv1alpha1ResourceStatus`: one managed resource.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ResourceStatus {
    /// API group.
    pub group: Option<String>,
    /// API version.
    pub version: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Sync status of this resource.
    pub status: Option<String>,
    /// Health of this resource.
    pub health: Option<HealthStatus>,
    /// True for hooks, which do not count for app health.
    pub hook: Option<bool>,
    /// True for a live resource no longer in git that only a sync with pruning removes.
    pub requires_pruning: Option<bool>,
}

/// `v1alpha1ApplicationTree`: live resources and their children.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ApplicationTree {
    /// All nodes (managed resources, ReplicaSets, Pods, …).
    pub nodes: Vec<ResourceNode>,
}

/// `v1alpha1ResourceNode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ResourceNode {
    /// API group.
    pub group: Option<String>,
    /// API version.
    pub version: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// UID.
    pub uid: Option<String>,
    /// Owners.
    pub parent_refs: Vec<ResourceRef>,
    /// Images (pods and workloads).
    pub images: Vec<String>,
    /// Health.
    pub health: Option<HealthStatus>,
    /// Extra info items (`{name, value}`), e.g. a pod's status reason.
    pub info: Vec<InfoItem>,
    /// Resource version of the live object.
    pub resource_version: Option<String>,
}

/// `v1alpha1ResourceRef`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ResourceRef {
    /// API group.
    pub group: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// UID.
    pub uid: Option<String>,
}

/// `v1alpha1InfoItem`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct InfoItem {
    /// Name.
    pub name: Option<String>,
    /// Value.
    pub value: Option<String>,
}

/// `v1alpha1ApplicationWatchEvent`, one `result` line of the stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// The application after the event.
    pub application: Application,
}

/// One NDJSON line of `GET /api/v1/stream/applications`: a result or an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StreamLine {
    pub result: Option<WatchEvent>,
    pub error: Option<StreamError>,
}

/// `runtimeStreamError`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct StreamError {
    pub http_code: Option<u16>,
    pub message: Option<String>,
}

/// `runtimeError`, the body of a failed unary call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RuntimeError {
    pub error: Option<String>,
    pub message: Option<String>,
}

/// `applicationApplicationResourceResponse`: the live manifest as a JSON string.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ResourceResponse {
    pub manifest: Option<String>,
}

/// `applicationApplicationSyncRequest`: the fields we send.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune: Option<bool>,
}

/// `applicationApplicationSyncWindowsResponse`: the windows of the app's project that match it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncWindows {
    /// Windows active now.
    pub active_windows: Vec<SyncWindow>,
    /// Every window that applies to the app.
    pub assigned_windows: Vec<SyncWindow>,
    /// `CanSync(true)`: whether a *manual* sync may run now.
    pub can_sync: Option<bool>,
}

/// `applicationApplicationSyncWindow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncWindow {
    /// `allow` or `deny`.
    pub kind: String,
    /// Cron schedule.
    pub schedule: String,
    /// Duration (`1h`).
    pub duration: String,
    /// Whether manual syncs may run while it blocks.
    pub manual_sync: Option<bool>,
}
