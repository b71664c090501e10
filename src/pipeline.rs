//! The deploy pipeline: inputs → plan → publish (→ verify, added by the verify phases). The only module
//! that knows the order of the steps; each step owns its config, outcome and logic.

use crate::cli::run::RunArgs;
use crate::error::{DeployError, Phase};
use crate::publish;
use crate::report::Report;
use crate::secret::Secret;

/// The typed plan of a `run`: one config per step.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The publish step.
    pub publish: publish::Config,
}

/// Every input problem at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid input:\n  - {}", problems.join("\n  - "))]
pub struct InvalidInputs {
    /// One message per problem, each naming the input.
    pub problems: Vec<String>,
}

impl RunConfig {
    /// Builds every step's config from the raw options and the runner's environment; no I/O.
    ///
    /// # Errors
    /// An invalid-input [`DeployError`] listing every problem.
    pub fn from_args(args: &RunArgs, env: &publish::RunnerEnv) -> Result<RunConfig, DeployError> {
        let mut problems = Vec::new();
        let publish = publish::Config::from_args(&args.publish.to_step_args(), env)
            .map_err(|p| problems.extend(p))
            .ok();
        match publish {
            Some(publish) if problems.is_empty() => Ok(RunConfig { publish }),
            _ => Err(DeployError::input(
                Phase::Inputs,
                InvalidInputs { problems },
            )),
        }
    }

    /// Every secret in the plan, to register with the masker before any network call.
    pub fn secrets(&self) -> Vec<Secret> {
        self.publish.token.iter().cloned().collect()
    }
}

/// The result of a `run`: one outcome per step that ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunOutcome {
    /// The publish step's outcome.
    pub publish: publish::Outcome,
}

/// Runs the pipeline.
///
/// # Errors
/// A [`DeployError`] naming the failed phase.
pub async fn run(config: &RunConfig, report: &Report) -> Result<RunOutcome, DeployError> {
    for secret in config.secrets() {
        report.masker().add(&secret);
    }
    let publish = publish::run(&config.publish, report).await.map_err(|e| {
        if e.is_invalid_input() {
            DeployError::input(Phase::Publish, e)
        } else {
            DeployError::failed(Phase::Publish, e)
        }
    })?;
    Ok(RunOutcome { publish })
}
