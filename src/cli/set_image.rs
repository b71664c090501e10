//! `gitops-deploy set-image`: the edit engine on a local directory.

use std::path::PathBuf;

use clap::Args;

use crate::error::{DeployError, Phase};
use crate::report::Report;

/// Options of `set-image`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// Directory holding the kustomization file.
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// Print a unified diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Images to set: NAME:TAG, NAME@DIGEST, NAME:TAG@DIGEST, NAME=NEWNAME[:TAG][@DIGEST].
    #[arg(required = true, value_name = "ARG")]
    pub images: Vec<String>,
}

/// Runs `set-image`.
pub async fn execute(args: SetImageArgs, _report: &Report) -> Result<(), DeployError> {
    Err(DeployError::input(
        Phase::Edit,
        anyhow::anyhow!("set-image is not built yet ({} args)", args.images.len()),
    ))
}
