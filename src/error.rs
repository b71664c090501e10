//! Exit codes and the top-level error every command maps to.
//!
//! | code | meaning |
//! | ---- | ------- |
//! | 0    | success (also when nothing had to change) |
//! | 1    | the deploy failed; the message names the phase |
//! | 2    | invalid input: nothing was written |

use std::process::ExitCode;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a failed deploy (any phase after the inputs were accepted).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for invalid input (bad flag, bad image reference, unreadable kustomization).
pub const EXIT_INVALID_INPUT: u8 = 2;

/// The phase of a deploy that an error or an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading and checking the inputs.
    Inputs,
    /// Editing the kustomization files.
    Edit,
    /// Committing and pushing the change.
    Publish,
    /// Pull-request mode: waiting for the pull request to be merged.
    Merge,
    /// Waiting for Argo CD to sync the commit.
    Argocd,
    /// Waiting for the workloads to roll out.
    Rollout,
    /// The HTTP health check.
    Health,
    /// Writing the previous values back after a failure.
    Rollback,
}

impl Phase {
    /// The phase's name as users see it in logs and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Inputs => "inputs",
            Phase::Edit => "edit",
            Phase::Publish => "publish",
            Phase::Merge => "merge",
            Phase::Argocd => "argocd",
            Phase::Rollout => "rollout",
            Phase::Health => "health",
            Phase::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of a whole command: which phase failed, whether it was the user's input, and why.
#[derive(Debug, thiserror::Error)]
#[error("{phase}: {source:#}")]
pub struct DeployError {
    /// The phase that failed.
    pub phase: Phase,
    /// True when the failure is the user's input (exit code 2, nothing written).
    pub invalid_input: bool,
    /// The cause, with its chain.
    #[source]
    pub source: anyhow::Error,
}

impl DeployError {
    /// An invalid-input error (exit code 2).
    pub fn input(phase: Phase, source: impl Into<anyhow::Error>) -> Self {
        DeployError {
            phase,
            invalid_input: true,
            source: source.into(),
        }
    }

    /// A failure of the deploy itself (exit code 1).
    pub fn failed(phase: Phase, source: impl Into<anyhow::Error>) -> Self {
        DeployError {
            phase,
            invalid_input: false,
            source: source.into(),
        }
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(if self.invalid_input {
            EXIT_INVALID_INPUT
        } else {
            EXIT_FAILED
        })
    }
}

/// An error and its sources on one line, `outer: inner: innermost`, for messages that embed it (the
/// one formatter of error chains; `{:#}` of an `anyhow::Error` prints the same).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
