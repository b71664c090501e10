//! Time in the sandbox: one place for every delay the simulated world takes, so tests run in
//! seconds while the shape of the behaviour (poll, sync, stale health, pod start, progress
//! deadline) stays as in production. Change them at run time through [`crate::kube::Kube`] and
//! [`crate::argocd::ArgoCd`] or `POST /_sandbox/time` on the Argo CD and Kubernetes servers.

use std::time::Duration;

use crate::argocd::ArgoTiming;
use crate::kube::KubeTiming;

/// Every delay of the simulated Argo CD and Kubernetes.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Argo CD polls git this often without a refresh (default 180 s, like Argo CD, so a client that
    /// forgets to refresh is slow).
    pub poll_interval: Duration,
    /// A sync operation stays `Running` this long before it applies.
    pub sync_delay: Duration,
    /// After an operation, app health and `reconciledAt` stay stale this long (docs/research/argocd-rollout.md A5).
    pub stale_health: Duration,
    /// A new pod becomes ready after this long.
    pub pod_start_delay: Duration,
    /// Real seconds per `progressDeadlineSeconds` second (0.05: the demo's 60 s → 3 s).
    pub progress_deadline_scale: f64,
    /// First backoff of the default ×5 retry of a failed auto-sync (Argo CD: 5 s, doubling).
    pub auto_retry_backoff: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_interval: Duration::from_secs(180),
            sync_delay: Duration::from_millis(200),
            stale_health: Duration::from_millis(500),
            pod_start_delay: Duration::from_millis(300),
            progress_deadline_scale: 0.05,
            auto_retry_backoff: Duration::from_secs(5),
        }
    }
}

impl Timing {
    /// The Kubernetes part's share.
    pub fn kube(&self) -> KubeTiming {
        KubeTiming {
            pod_start_delay: self.pod_start_delay,
            progress_deadline_scale: self.progress_deadline_scale,
            ..KubeTiming::default()
        }
    }

    /// The Argo CD part's share.
    pub fn argo(&self) -> ArgoTiming {
        ArgoTiming {
            poll_interval: self.poll_interval,
            sync_delay: self.sync_delay,
            stale_health: self.stale_health,
            auto_retry_backoff: self.auto_retry_backoff,
            ..ArgoTiming::default()
        }
    }
}
