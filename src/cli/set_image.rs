//! `gitops-deploy set-image`: the edit engine on a local directory.
//!
//! Parses every argument first (all problems reported at once), then finds and edits the one
//! kustomization file. `--dry-run` prints a unified diff on stdout and writes nothing; otherwise the
//! file is replaced atomically, and only when its text changed.

use std::path::PathBuf;

use clap::Args;

use crate::edit::{self, EditError, ImageSetting};
use crate::error::{DeployError, Phase};
use crate::report::Report;

/// Options of `set-image`.
#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// Directory holding the kustomization file (kustomization.yaml, kustomization.yml or
    /// Kustomization).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// Print a unified diff on stdout and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Images to set, as for `kustomize edit set image`: NAME:TAG, NAME@DIGEST, NAME:TAG@DIGEST,
    /// NAME=NEWNAME[:TAG][@DIGEST]; `*` keeps a field, e.g. NAME=*:TAG keeps newName.
    #[arg(required = true, value_name = "ARG")]
    pub images: Vec<String>,
}

/// Maps an edit error to the command's error: bad input is exit code 2, anything else 1.
fn to_deploy_error(err: EditError, context: Option<&std::path::Path>) -> DeployError {
    let invalid = err.is_invalid_input();
    let err = match context {
        Some(path) => anyhow::Error::new(err).context(path.display().to_string()),
        None => anyhow::Error::new(err),
    };
    if invalid {
        DeployError::input(Phase::Edit, err)
    } else {
        DeployError::failed(Phase::Edit, err)
    }
}

/// Shows an optional value for the progress log.
fn shown(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

/// Runs `set-image`.
pub async fn execute(args: SetImageArgs, report: &Report) -> Result<(), DeployError> {
    let mut settings = Vec::new();
    let mut problems = Vec::new();
    for arg in &args.images {
        match ImageSetting::parse_arg(arg) {
            Ok(s) => settings.push(s),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(DeployError::input(
            Phase::Edit,
            anyhow::anyhow!("{}", problems.join("; ")),
        ));
    }
    let path = edit::find_kustomization(&args.path).map_err(|e| to_deploy_error(e, None))?;
    let text = edit::read_kustomization(&path).map_err(|e| to_deploy_error(e, None))?;
    let edited = edit::set_images(&text, &settings).map_err(|e| to_deploy_error(e, Some(&path)))?;
    for change in &edited.changes {
        let after = &change.after;
        let values = format!(
            "newName {} newTag {} digest {}",
            shown(&after.new_name),
            shown(&after.new_tag),
            shown(&after.digest)
        );
        match &change.before {
            None => report.info(
                Phase::Edit,
                format_args!("{}: added ({values})", change.name),
            ),
            Some(before) => report.info(
                Phase::Edit,
                format_args!(
                    "{}: newName {} newTag {} digest {} → {values}",
                    change.name,
                    shown(&before.new_name),
                    shown(&before.new_tag),
                    shown(&before.digest)
                ),
            ),
        }
    }
    for warning in &edited.warnings {
        report.warn(Phase::Edit, format_args!("{}: {warning}", path.display()));
    }
    let shown_path = path.display();
    if !edited.is_changed() {
        report.info(Phase::Edit, format_args!("{shown_path}: unchanged"));
        return Ok(());
    }
    if args.dry_run {
        print!(
            "{}",
            edit::unified_diff(&path.display().to_string(), &text, &edited.text)
        );
        report.info(
            Phase::Edit,
            format_args!("{shown_path}: dry run, not written"),
        );
        return Ok(());
    }
    edit::write_atomic(&path, &edited.text).map_err(|e| to_deploy_error(e, None))?;
    report.info(Phase::Edit, format_args!("{shown_path}: written"));
    Ok(())
}
