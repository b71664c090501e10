//! Rollout: prove that the workloads run *our* image, with `kubectl rollout status` logic.
//!
//! The pure part lives here: [`rollout_verdict`] judges one workload exactly as
//! `kubectl rollout status` does (docs/research/argocd-rollout.md B1, `pkg/polymorphichelpers/rollout_status.go`), after first
//! requiring the live pod template to carry the new image (B4: otherwise the *previous* rollout reads
//! as done), and [`stuck_pods`] finds pods of our image that will not start. Snapshots come from
//! [`source`]: through Argo CD (no cluster credentials) or through kube-rs with a kubeconfig.

use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

pub use crate::verdict::PausePolicy;
use crate::verdict::Verdict;

pub mod argo_rollouts;
pub mod phase;
pub mod source;

/// A workload kind `kubectl rollout status` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// argoproj.io/v1alpha1 Rollout (Argo Rollouts), judged as `kubectl argo rollouts status` does.
    Rollout,
}

impl Kind {
    /// Parses `deployment`, `deploy`, `statefulset`, `sts`, `daemonset`, `ds`, `rollout`, `ro`
    /// (any case), or the `Kind` name.
    pub fn parse(s: &str) -> Option<Kind> {
        match s.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Some(Kind::Deployment),
            "statefulset" | "statefulsets" | "sts" => Some(Kind::StatefulSet),
            "daemonset" | "daemonsets" | "ds" => Some(Kind::DaemonSet),
            "rollout" | "rollouts" | "ro" => Some(Kind::Rollout),
            _ => None,
        }
    }

    /// The API group (`apps`, `argoproj.io`).
    pub fn group(self) -> &'static str {
        match self {
            Kind::Rollout => "argoproj.io",
            _ => "apps",
        }
    }

    /// The API version within the group.
    pub fn version(self) -> &'static str {
        match self {
            Kind::Rollout => "v1alpha1",
            _ => "v1",
        }
    }

    /// The API kind name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::Rollout => "Rollout",
        }
    }
}

/// One workload to check: kind, namespace (None = the source's default) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadRef {
    /// Kind.
    pub kind: Kind,
    /// Namespace; `None` means the default of the source (kubeconfig context or the app's).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl WorkloadRef {
    /// Parses `kind/name` (e.g. `deployment/web`, `sts/db`).
    ///
    /// # Errors
    /// A message naming what is wrong with the value.
    pub fn parse(s: &str, namespace: Option<&str>) -> Result<Self, String> {
        let (kind, name) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not kind/name (e.g. deployment/web)"))?;
        let kind = Kind::parse(kind.trim()).ok_or_else(|| {
            format!("{s:?}: kind {kind:?} is not deployment, statefulset, daemonset or rollout")
        })?;
        let name = name.trim();
        if name.is_empty() || name.contains('/') {
            return Err(format!("{s:?}: name must be one path segment"));
        }
        Ok(WorkloadRef {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        })
    }
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.kind.as_str().to_ascii_lowercase(),
            self.name
        )
    }
}

/// Why a live object is not a workload this phase can judge.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Its kind is not a Deployment, StatefulSet, DaemonSet or Rollout.
    #[error("kind {kind:?} has no rollout status")]
    NoRolloutStatus {
        /// The object's kind.
        kind: String,
    },
    /// It does not decode as its kind.
    #[error("{kind} does not decode")]
    Invalid {
        /// The object's kind.
        kind: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
}

/// A live workload object.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// A Deployment.
    Deployment(Deployment),
    /// A StatefulSet.
    StatefulSet(StatefulSet),
    /// A DaemonSet.
    DaemonSet(DaemonSet),
    /// An Argo Rollouts Rollout.
    Rollout(Rollout),
}

/// An Argo Rollouts `Rollout`: the object as served (its status is judged by
/// [`argo_rollouts::verdict`]) and its pod template, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// The live object.
    pub object: serde_json::Value,
    /// `spec.template` (empty for a `workloadRef` rollout, whose template is in a Deployment).
    pub template: Option<PodTemplateSpec>,
}

impl Rollout {
    /// Decodes the template of a live Rollout.
    ///
    /// # Errors
    /// When `spec.template` is present but not a pod template.
    pub fn from_object(object: serde_json::Value) -> Result<Rollout, serde_json::Error> {
        let template = match object.pointer("/spec/template") {
            Some(t) if !t.is_null() => Some(serde_json::from_value(t.clone())?),
            _ => None,
        };
        Ok(Rollout { object, template })
    }

    /// The Deployment a `workloadRef` rollout takes its template from (`None` without one, or
    /// for another kind).
    pub fn workload_ref(&self) -> Option<&str> {
        let r = &self.object["spec"]["workloadRef"];
        (r["kind"].as_str().unwrap_or("Deployment") == "Deployment")
            .then(|| r["name"].as_str())
            .flatten()
    }

    /// Puts the referenced Deployment's pod template in place, as the controller resolves it
    /// (`rollout/templateref.go`): the image checks then see what the Rollout runs.
    pub fn resolve_template(&mut self, template: PodTemplateSpec) {
        if let Ok(v) = serde_json::to_value(&template) {
            self.object["spec"]["template"] = v;
        }
        self.template = Some(template);
    }

    /// True when the stable ReplicaSet is the current one (`IsFullyPromoted`).
    pub fn fully_promoted(&self) -> bool {
        argo_rollouts::fully_promoted(&self.object)
    }
}

impl Workload {
    /// Decodes a live manifest (as Argo CD's `resource` endpoint returns it) by its `kind`.
    ///
    /// # Errors
    /// When the kind is not one of the three or the object does not decode.
    pub fn from_json(v: serde_json::Value) -> Result<Self, DecodeError> {
        let kind = v
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_owned();
        let err = |source| DecodeError::Invalid {
            kind: kind.clone(),
            source,
        };
        match kind.as_str() {
            "Deployment" => serde_json::from_value(v)
                .map(Workload::Deployment)
                .map_err(err),
            "StatefulSet" => serde_json::from_value(v)
                .map(Workload::StatefulSet)
                .map_err(err),
            "DaemonSet" => serde_json::from_value(v)
                .map(Workload::DaemonSet)
                .map_err(err),
            "Rollout" => Rollout::from_object(v).map(Workload::Rollout).map_err(err),
            other => Err(DecodeError::NoRolloutStatus {
                kind: other.to_owned(),
            }),
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        let meta = match self {
            Workload::Deployment(o) => &o.metadata,
            Workload::StatefulSet(o) => &o.metadata,
            Workload::DaemonSet(o) => &o.metadata,
            Workload::Rollout(r) => return r.object["metadata"]["name"].as_str().unwrap_or(""),
        };
        meta.name.as_deref().unwrap_or("")
    }

    /// The pod template.
    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::Rollout(r) => r.template.as_ref(),
        }
    }

    /// Every image of the pod template (init containers first).
    pub fn template_images(&self) -> Vec<String> {
        self.template()
            .and_then(|t| t.spec.as_ref())
            .map(|spec| {
                spec.init_containers
                    .iter()
                    .flatten()
                    .chain(spec.containers.iter())
                    .filter_map(|c| c.image.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The short progress line: `2/3 updated, 1 available`.
    pub fn progress(&self) -> String {
        match self {
            Workload::Deployment(d) => {
                let st = d.status.clone().unwrap_or_default();
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                format!(
                    "{}/{want} updated, {} available",
                    st.updated_replicas.unwrap_or(0),
                    st.available_replicas.unwrap_or(0)
                )
            }
            Workload::StatefulSet(s) => {
                let st = s.status.clone().unwrap_or_default();
                let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                format!(
                    "{}/{want} updated, {} ready",
                    st.updated_replicas.unwrap_or(0),
                    st.ready_replicas.unwrap_or(0)
                )
            }
            Workload::DaemonSet(d) => {
                let st = d.status.clone().unwrap_or_default();
                format!(
                    "{}/{} updated, {} available",
                    st.updated_number_scheduled.unwrap_or(0),
                    st.desired_number_scheduled,
                    st.number_available.unwrap_or(0)
                )
            }
            Workload::Rollout(r) => {
                let st = &r.object["status"];
                let int = |k: &str| st[k].as_i64().unwrap_or(0);
                let want = r.object["spec"]["replicas"].as_i64().unwrap_or(1);
                let counts = format!(
                    "{}/{want} updated, {} available",
                    int("updatedReplicas"),
                    int("availableReplicas")
                );
                if r.fully_promoted() {
                    counts
                } else {
                    let (phase, message) = argo_rollouts::phase(&r.object);
                    let message = if message.is_empty() { phase } else { message };
                    format!("{counts}, not promoted ({message})")
                }
            }
        }
    }
}

/// The repository part of an image reference: without `@digest` and without `:tag`.
pub fn image_repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// True when `live` is `want`, also when the runtime normalised `want` (`web:1` vs
/// `docker.io/library/web:1`).
pub fn image_matches(live: &str, want: &str) -> bool {
    live == want || live.ends_with(&format!("/{want}"))
}

/// B4: does the live template carry our images? `Waiting` names the image still there.
/// Images of other repositories are not this workload's business; with none of ours in the template
/// (an explicitly named workload), there is nothing to require.
pub fn template_verdict(w: &Workload, images: &[String]) -> Verdict {
    let live = w.template_images();
    for want in images {
        let repo = image_repository(want);
        let same_repo: Vec<&String> = live
            .iter()
            .filter(|l| {
                image_repository(l) == repo || image_repository(l).ends_with(&format!("/{repo}"))
            })
            .collect();
        if !same_repo.is_empty() && !same_repo.iter().any(|l| image_matches(l, want)) {
            return Verdict::waiting(format!(
                "{} {:?}: template still runs {} (want {want})",
                w_kind(w),
                w.name(),
                same_repo[0]
            ));
        }
    }
    Verdict::Ready
}

fn w_kind(w: &Workload) -> &'static str {
    match w {
        Workload::Deployment(_) => "deployment",
        Workload::StatefulSet(_) => "statefulset",
        Workload::DaemonSet(_) => "daemon set",
        Workload::Rollout(_) => "rollout",
    }
}

/// One workload's verdict: [`template_verdict`], then `kubectl rollout status` (B1), whose messages
/// are reproduced word for word (without the trailing `...`). A Rollout paused for a person is
/// waited for, as `kubectl argo rollouts status` does.
pub fn rollout_verdict(w: &Workload, images: &[String]) -> Verdict {
    rollout_verdict_with(w, images, PausePolicy::Wait)
}

/// [`rollout_verdict`] with a policy for a Rollout paused for a person.
pub fn rollout_verdict_with(w: &Workload, images: &[String], pause: PausePolicy) -> Verdict {
    match template_verdict(w, images) {
        Verdict::Ready => status_verdict(w, images, pause),
        other => other,
    }
}

/// `kubectl rollout status` for one object (docs/research/argocd-rollout.md B1), and
/// `kubectl argo rollouts status` plus the pause policy for a Rollout
/// (docs/research/argo-rollouts.md §4).
pub fn status_verdict(w: &Workload, images: &[String], pause: PausePolicy) -> Verdict {
    match w {
        Workload::Deployment(d) => deployment_status(d),
        Workload::StatefulSet(s) => statefulset_status(s),
        Workload::DaemonSet(d) => daemonset_status(d),
        Workload::Rollout(r) => argo_rollouts::verdict(&r.object, w.name(), images, pause),
    }
}

fn deployment_status(d: &Deployment) -> Verdict {
    let name = d.metadata.name.as_deref().unwrap_or("");
    let generation = d.metadata.generation.unwrap_or(0);
    let st = d.status.clone().unwrap_or_default();
    if generation > st.observed_generation.unwrap_or(0) {
        return Verdict::waiting("Waiting for deployment spec update to be observed");
    }
    let deadline_exceeded = st.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline_exceeded {
        return Verdict::failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let updated = st.updated_replicas.unwrap_or(0);
    let replicas = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if let Some(want) = d.spec.as_ref().and_then(|s| s.replicas) {
        if updated < want {
            return Verdict::waiting(format!(
                "Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated"
            ));
        }
    }
    if replicas > updated {
        return Verdict::waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Verdict::waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available"
        ));
    }
    Verdict::Ready
}

/// kubectl refuses OnDelete; we say why, since with OnDelete nothing rolls out until pods are deleted.
const ON_DELETE: &str = "rollout status is only available for RollingUpdate strategy type (this workload uses OnDelete: its pods are replaced only when deleted)";

fn daemonset_status(d: &DaemonSet) -> Verdict {
    let name = d.metadata.name.as_deref().unwrap_or("");
    let strategy = d
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate");
    if strategy != "RollingUpdate" {
        return Verdict::failed(ON_DELETE);
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let st = d.status.clone().unwrap_or_default();
    if generation > st.observed_generation.unwrap_or(0) {
        return Verdict::waiting("Waiting for daemon set spec update to be observed");
    }
    let desired = st.desired_number_scheduled;
    let updated = st.updated_number_scheduled.unwrap_or(0);
    let available = st.number_available.unwrap_or(0);
    if updated < desired {
        return Verdict::waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated"
        ));
    }
    if available < desired {
        return Verdict::waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available"
        ));
    }
    Verdict::Ready
}

fn statefulset_status(s: &StatefulSet) -> Verdict {
    let spec = s.spec.clone().unwrap_or_default();
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref().unwrap_or("RollingUpdate") != "RollingUpdate" {
        return Verdict::failed(ON_DELETE);
    }
    let st = s.status.clone().unwrap_or_default();
    let observed = st.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return Verdict::waiting("Waiting for statefulset spec update to be observed");
    }
    let ready = st.ready_replicas.unwrap_or(0);
    if let Some(want) = spec.replicas {
        if ready < want {
            return Verdict::waiting(format!("Waiting for {} pods to be ready", want - ready));
        }
    }
    let updated = st.updated_replicas.unwrap_or(0);
    if let Some(ru) = &strategy.rolling_update {
        if let (Some(want), Some(partition)) = (spec.replicas, ru.partition) {
            if updated < want - partition {
                return Verdict::waiting(format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated",
                    want - partition
                ));
            }
        }
        return Verdict::Ready;
    }
    if st.update_revision != st.current_revision {
        return Verdict::waiting(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {}",
            st.update_revision.as_deref().unwrap_or("")
        ));
    }
    Verdict::Ready
}

/// A pod of our image that cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckPod {
    /// `namespace/name`.
    pub pod: String,
    /// `CrashLoopBackOff`, `ImagePullBackOff`, … (or `Degraded` from Argo CD's pod health).
    pub reason: String,
    /// The kubelet's message.
    pub message: String,
}

impl std::fmt::Display for StuckPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod {} {}: {}", self.pod, self.reason, self.message)
    }
}

/// Waiting reasons that do not fix themselves (docs/research/argocd-rollout.md B4.3).
const STUCK_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

/// Pods running one of `images` (all pods when empty) whose containers wait for a stuck reason.
pub fn stuck_pods(pods: &[Pod], images: &[String]) -> Vec<StuckPod> {
    let mut out = Vec::new();
    for pod in pods {
        let spec_images: Vec<&str> = pod
            .spec
            .iter()
            .flat_map(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .chain(s.containers.iter())
            })
            .filter_map(|c| c.image.as_deref())
            .collect();
        if !images.is_empty()
            && !spec_images
                .iter()
                .any(|l| images.iter().any(|w| image_matches(l, w)))
        {
            continue;
        }
        let statuses = pod.status.iter().flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        });
        for cs in statuses {
            let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
                continue;
            };
            let reason = waiting.reason.as_deref().unwrap_or("");
            if STUCK_REASONS.contains(&reason) {
                out.push(StuckPod {
                    pod: format!(
                        "{}/{}",
                        pod.metadata.namespace.as_deref().unwrap_or(""),
                        pod.metadata.name.as_deref().unwrap_or("")
                    ),
                    reason: reason.to_owned(),
                    message: waiting.message.clone().unwrap_or_default(),
                });
                break;
            }
        }
    }
    out
}

/// Everything the rollout phase knows at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutSnapshot {
    /// Each target and its live object (`None` = not found yet).
    pub workloads: Vec<(WorkloadRef, Option<Workload>)>,
    /// Pods of our image that cannot start.
    pub stuck: Vec<StuckPod>,
}

/// Since when pods have been stuck (for the grace period).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutState {
    /// First time a stuck pod was seen in an unbroken run of snapshots with stuck pods.
    pub stuck_since: Option<Instant>,
}

impl RolloutState {
    /// Updates the timer from a snapshot.
    pub fn observe(&mut self, snap: &RolloutSnapshot, now: Instant) {
        self.stuck_since = if snap.stuck.is_empty() {
            None
        } else {
            self.stuck_since.or(Some(now))
        };
    }
}

/// The verdict over all targets: the first failure, else the first wait, else ready. Pods stuck for
/// longer than `grace` fail it (a crash-looping Deployment would otherwise only fail at its progress
/// deadline, 10 minutes by default).
pub fn snapshot_verdict(
    snap: &RolloutSnapshot,
    images: &[String],
    pause: PausePolicy,
    state: &RolloutState,
    grace: Duration,
    now: Instant,
) -> Verdict {
    let mut waiting: Option<String> = None;
    for (r, w) in &snap.workloads {
        match w {
            None => {
                waiting.get_or_insert_with(|| format!("{r} not found yet"));
            }
            Some(w) => match rollout_verdict_with(w, images, pause) {
                Verdict::Ready => {}
                // A Rollout's verdict already names it.
                Verdict::Failed { why } if why.starts_with(&r.to_string()) => {
                    return Verdict::failed(why)
                }
                Verdict::Failed { why } => return Verdict::failed(format!("{r}: {why}")),
                Verdict::Waiting { why } => {
                    waiting.get_or_insert(why);
                }
            },
        }
    }
    if let Some(first) = snap.stuck.first() {
        if state
            .stuck_since
            .is_some_and(|t| now.saturating_duration_since(t) >= grace)
        {
            return Verdict::failed(format!(
                "{first} (stuck for more than {})",
                humantime::format_duration(grace)
            ));
        }
        // A canary left paused counts only while its pods start (`rollout_pause: succeed`).
        let canary = snap
            .workloads
            .iter()
            .any(|(_, w)| matches!(w, Some(Workload::Rollout(r)) if !r.fully_promoted()));
        if waiting.is_some() || canary {
            return Verdict::waiting(first.to_string());
        }
    }
    match waiting {
        Some(why) => Verdict::waiting(why),
        None => Verdict::Ready,
    }
}

#[cfg(test)]
mod tests;
