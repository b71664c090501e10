//! The one result type of every pure wait decision: [`Verdict`].
//!
//! Verdict functions (`argocd::verdict::app_verdict`, `rollout::rollout_verdict`, `health::…`) look at
//! one snapshot and never read the clock; [`crate::wait`] drives them.

use std::fmt;

/// What to do when a workload stops at a pause only a person ends (an Argo Rollouts canary at a
/// `pause: {}` step, a blue-green rollout without auto-promotion, a paused Rollout or Deployment):
/// the `rollout_pause` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PausePolicy {
    /// Fail, saying where it is paused: the deploy is not done until someone promotes it.
    #[default]
    Fail,
    /// Succeed: the new version runs as a canary (or preview), which is what this deploy wanted.
    Succeed,
    /// Keep waiting for the promotion (until the deadline).
    Wait,
}

impl PausePolicy {
    /// Parses `fail`, `succeed`, `wait` (any case).
    pub fn parse(s: &str) -> Option<PausePolicy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fail" => Some(PausePolicy::Fail),
            "succeed" => Some(PausePolicy::Succeed),
            "wait" => Some(PausePolicy::Wait),
            _ => None,
        }
    }
}

/// What a snapshot says about a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The condition holds: stop waiting.
    Ready,
    /// Not yet; `why` says what is missing (it ends up in the timeout message).
    Waiting {
        /// What is still missing.
        why: String,
    },
    /// It will not get better: stop and fail.
    Failed {
        /// What went wrong, naming the resource and its message where there is one.
        why: String,
    },
}

impl Verdict {
    /// A `Waiting` verdict.
    pub fn waiting(why: impl Into<String>) -> Self {
        Verdict::Waiting { why: why.into() }
    }

    /// A `Failed` verdict.
    pub fn failed(why: impl Into<String>) -> Self {
        Verdict::Failed { why: why.into() }
    }

    /// True for `Ready`.
    pub fn is_ready(&self) -> bool {
        matches!(self, Verdict::Ready)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ready => f.write_str("ready"),
            Verdict::Waiting { why } => write!(f, "waiting: {why}"),
            Verdict::Failed { why } => write!(f, "failed: {why}"),
        }
    }
}
