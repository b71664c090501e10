//! The `gitops-deploy` binary: parse the command line, run the command, map the result to an exit code.

use std::process::ExitCode;

use gitops_deploy::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_for_runner();
    gitops_deploy::cli::run(cli).await
}
