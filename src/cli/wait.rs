//! `gitops-deploy wait`: the verification phases alone, for a commit pushed by someone else.

use clap::Args;

use super::verify::VerifyArgs;
use crate::error::{DeployError, Phase};
use crate::report::Report;
use crate::verify::{Config, Expect};

/// Options of `wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Full SHA of the GitOps commit to wait for.
    #[arg(long, env = "INPUT_COMMIT", value_name = "SHA")]
    pub commit: Option<String>,
    /// Images the commit deployed (`name:tag`, `name@digest`); the rollout requires them in the
    /// live pod templates. Newline- or comma-separated, or repeat the flag.
    #[arg(
        long = "expect-image",
        env = "INPUT_EXPECT_IMAGE",
        value_name = "IMAGE"
    )]
    pub images: Vec<String>,
    /// The verification options.
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// Runs `wait`.
///
/// # Errors
/// Exit code 2 for bad input, 1 naming the phase for a failed verification.
pub async fn execute(args: WaitArgs, report: &Report) -> Result<(), DeployError> {
    let started = tokio::time::Instant::now();
    let mut problems = Vec::new();
    let commit = args
        .commit
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_ascii_lowercase);
    match &commit {
        None => problems.push("commit: required (the full SHA to wait for)".to_owned()),
        Some(c) if c.len() != 40 || !c.chars().all(|ch| ch.is_ascii_hexdigit()) => {
            problems.push(format!("commit: {c:?} is not a full 40-hex SHA"))
        }
        _ => {}
    }
    let images: Vec<String> = crate::verify::split_list(&args.images);
    let expect = Expect::from_images(&images);
    let config = match Config::from_args(&args.verify, &expect) {
        Ok(c) => Some(c),
        Err(mut p) => {
            problems.append(&mut p);
            None
        }
    };
    if !problems.is_empty() {
        return Err(DeployError::input(
            Phase::Inputs,
            crate::verify::InvalidInputs { problems },
        ));
    }
    let config = config.expect("no problems means a config");
    config.register_secrets(report.masker());
    let commit = commit.expect("checked above");
    let outcome = crate::verify::run(&config, &commit, &expect, None, report, started).await?;
    report.line(&format!("verified: {}", outcome.summary()));
    Ok(())
}
