//! The rollout phase: find the workloads, then wait until every one has rolled out our image.

use std::time::Duration;

use tokio::time::Instant;

use super::source::{self, ArgoApp};
use super::{snapshot_verdict, PausePolicy, RolloutSnapshot, RolloutState, Workload, WorkloadRef};
use crate::error::Phase;
use crate::report::Report;
use crate::secret::Secret;
use crate::wait::{wait_until, Fact, WaitError, WaitSpec};

/// How workloads are read.
#[derive(Debug, Clone)]
pub enum RolloutVia {
    /// Through Argo CD (resource tree + live resources).
    Argo(ArgoApp),
    /// Through the Kubernetes API with this kubeconfig (content); Argo CD, when given, is used only
    /// to discover the workloads.
    Kube {
        /// Kubeconfig content.
        kubeconfig: Secret,
        /// For discovery when no explicit targets are given.
        argo: Option<ArgoApp>,
    },
}

/// Settings of the rollout phase.
#[derive(Debug, Clone)]
pub struct RolloutSettings {
    /// Where to read from.
    pub via: RolloutVia,
    /// Explicit targets (`rollout` input); empty = discover through Argo CD.
    pub targets: Vec<WorkloadRef>,
    /// Images we deployed.
    pub images: Vec<String>,
    /// How long pods may be stuck before failing.
    pub stuck_grace: Duration,
    /// What a Rollout paused for a person means (`rollout_pause`).
    pub pause: PausePolicy,
}

impl RolloutSettings {
    /// The same settings, reading app `name`'s workloads through Argo CD.
    pub fn for_app(&self, name: &str) -> RolloutSettings {
        let mut s = self.clone();
        match &mut s.via {
            RolloutVia::Argo(a) => a.app = name.to_owned(),
            RolloutVia::Kube { argo: Some(a), .. } => a.app = name.to_owned(),
            RolloutVia::Kube { argo: None, .. } => {}
        }
        s
    }
}

/// What the rollout phase proved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolloutOutcome {
    /// `deployment/web: 3/3 updated, 3 available` per workload.
    pub workloads: Vec<String>,
    /// Rollouts that run the new version only as a canary or preview, paused for a promotion
    /// (`rollout_pause: succeed`): `rollout/web paused at step 2/5: manual promotion needed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_promoted: Vec<String>,
}

/// Errors of the rollout phase.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    /// A source could not be set up.
    #[error(transparent)]
    Source(#[from] source::Error),
    /// Nothing to check.
    #[error("no Deployment, StatefulSet, DaemonSet or Rollout of the app uses {images}; name them with `rollout`")]
    NoWorkloads {
        /// Our images.
        images: String,
    },
    /// Neither explicit targets nor Argo CD to find them.
    #[error("`rollout` targets are required with `kubeconfig` when no Argo CD app is given")]
    NoTargets,
    /// The wait failed or timed out.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// Runs the phase.
///
/// # Errors
/// See [`PhaseError`].
pub async fn run(
    settings: &RolloutSettings,
    report: &Report,
    deadline: Instant,
) -> Result<RolloutOutcome, PhaseError> {
    let phase = Phase::Rollout;
    let started = Instant::now();
    let discover_with = match &settings.via {
        RolloutVia::Argo(a) => Some(a),
        RolloutVia::Kube { argo, .. } => argo.as_ref(),
    };
    let targets = match (discover_with, settings.targets.is_empty()) {
        (Some(argo), _) => {
            let d = source::discover_via_argo(argo, &settings.targets, &settings.images);
            tokio::time::timeout_at(deadline, d)
                .await
                .map_err(|_| WaitError::Timeout {
                    phase,
                    elapsed: Duration::ZERO,
                    why: "reading the resource tree".into(),
                })??
        }
        (None, false) => settings.targets.clone(),
        (None, true) => return Err(PhaseError::NoTargets),
    };
    if targets.is_empty() {
        return Err(PhaseError::NoWorkloads {
            images: settings.images.join(", "),
        });
    }
    report.info(
        phase,
        format_args!(
            "checking {}",
            targets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let snapshots = match &settings.via {
        RolloutVia::Argo(argo) => {
            source::argo_snapshots(argo.clone(), targets, settings.images.clone())
        }
        RolloutVia::Kube { kubeconfig, .. } => {
            let (client, ns) = source::kube_client(kubeconfig).await?;
            source::kube_snapshots(client, ns, targets, settings.images.clone())
        }
    };
    let mut state = RolloutState::default();
    let images = settings.images.clone();
    let grace = settings.stuck_grace;
    let pause = settings.pause;
    let images_for_describe = settings.images.clone();
    let snap = wait_until(
        WaitSpec {
            phase,
            started,
            deadline,
        },
        report,
        snapshots,
        |snap: &RolloutSnapshot, now| {
            state.observe(snap, now);
            snapshot_verdict(snap, &images, pause, &state, grace, now)
        },
        |snap| describe(snap, &images_for_describe),
    )
    .await?;
    let not_promoted: Vec<String> = snap
        .workloads
        .iter()
        .filter_map(|(_, w)| match w {
            Some(Workload::Rollout(r)) if !r.fully_promoted() => Some(
                super::argo_rollouts::describe(&r.object, w.as_ref()?.name()),
            ),
            _ => None,
        })
        .collect();
    for n in &not_promoted {
        report.warn(
            phase,
            format_args!(
                "deployed to canary only: {n} (rollout_pause: succeed; the stable version still serves the rest)"
            ),
        );
    }
    Ok(RolloutOutcome {
        not_promoted,
        workloads: snap
            .workloads
            .iter()
            .map(|(r, w)| {
                format!(
                    "{r}: {}",
                    w.as_ref().map(|w| w.progress()).unwrap_or_default()
                )
            })
            .collect(),
    })
}

/// Per workload its progress, or that the template does not carry our image yet.
fn describe(snap: &RolloutSnapshot, images: &[String]) -> Vec<Fact> {
    let mut facts: Vec<Fact> = snap
        .workloads
        .iter()
        .map(|(r, w)| {
            let value = match w {
                None => "not found".to_owned(),
                Some(w) => match super::template_verdict(w, images) {
                    crate::verdict::Verdict::Waiting { .. } => format!(
                        "waiting for the new template (still {})",
                        w.template_images().join(", ")
                    ),
                    _ => w.progress(),
                },
            };
            Fact::status(r.name.clone(), value)
        })
        .collect();
    for p in &snap.stuck {
        facts.push(Fact::status(
            format!("pod {}", p.pod),
            format!("{}: {}", p.reason, p.message),
        ));
    }
    facts
}
