//! The command line: raw options as typed by the user (or as `INPUT_*` variables in a runner), their
//! lowering into each step's typed config ([`inputs`], [`publish::config`], [`verify::config`],
//! [`run::plan`]), the dispatch of each subcommand, and the end of a run ([`action`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::DeployError;
use crate::report::Report;
use crate::secret::Masker;

pub mod action;
pub mod inputs;
pub mod publish;
pub mod pull_request;
pub mod run;
pub mod set_image;
pub mod verify;
pub mod wait;

/// The GitOps CD step: set an image in kustomization.yaml, commit and push it safely, then wait until
/// Argo CD, the rollout and an HTTP check prove the new version runs.
#[derive(Debug, Parser)]
#[command(name = "gitops-deploy", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// How to report the result: `human` (progress on stderr only) or `json` (also one JSON object with
    /// the outputs on stdout at the end). Inside a CI runner, outputs also go to `$GITHUB_OUTPUT`.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Progress and result on stderr.
    Human,
    /// Progress on stderr, and the outputs as one JSON object on stdout at the end.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set images in a kustomization file, as `kustomize edit set image` does, without reformatting it.
    SetImage(set_image::SetImageArgs),
    /// Deploy: set the image in the GitOps repository, commit and push it safely (then verify).
    Run(Box<run::RunArgs>),
    /// Wait until Argo CD, the rollout and an HTTP check prove that a given GitOps commit runs.
    Wait(Box<wait::WaitArgs>),
}

impl Cli {
    /// Parses the process's arguments. Inside a CI runner (`GITHUB_ACTIONS=true`) with no arguments at
    /// all, this is the action's entry point and means `run`, whose options come from `INPUT_*`.
    pub fn parse_for_runner() -> Self {
        let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if args.len() == 1 && std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
            args.push("run".into());
        }
        Cli::parse_from(args)
    }
}

/// Runs the parsed command and returns the process's exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let masker = Masker::new();
    // Workflow commands (groups, masks, errors) only make sense where a runner reads them.
    let runner = crate::runner::Runner::detect();
    let report = Report::stderr(masker).with_workflow_commands(runner.is_some());
    let result: Result<(), DeployError> = match cli.command {
        Command::SetImage(args) => set_image::execute(args, &report).await,
        Command::Run(args) => {
            let links = action::Links::from_inputs(
                args.verify.argocd_server.as_deref(),
                args.verify.argocd_app.as_deref(),
                args.verify.argocd_app_namespace.as_deref(),
            );
            let status = match args.action.report_status() {
                Ok(on) => on.then(|| action::StatusTarget {
                    token: args
                        .publish
                        .token
                        .as_deref()
                        .filter(|t| !t.trim().is_empty())
                        .map(crate::secret::Secret::new),
                }),
                Err(problem) => {
                    let err =
                        DeployError::input(crate::error::Phase::Inputs, anyhow::anyhow!(problem));
                    report.error_command(err.phase, &format!("{:#}", err.source));
                    report.line(&format!("gitops-deploy: error: {err:#}"));
                    return err.exit_code();
                }
            };
            let run = run::execute(*args, &report).await;
            if let Some(err) = &run.failure {
                report.error_command(err.phase, &format!("{:#}", err.source));
            }
            action::finish(
                &run,
                &links,
                &report,
                runner.as_ref(),
                cli.output,
                status.as_ref(),
            )
            .await;
            return match &run.failure {
                None => ExitCode::SUCCESS,
                Some(err) => {
                    report.line(&format!("gitops-deploy: error: {err:#}"));
                    err.exit_code()
                }
            };
        }
        Command::Wait(args) => wait::execute(*args, &report).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report.error_command(err.phase, &format!("{:#}", err.source));
            report.line(&format!("gitops-deploy: error: {err:#}"));
            err.exit_code()
        }
    }
}
