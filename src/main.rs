//! The `gitops-deploy` binary: parse the command line, run the command, map the result to an exit code.

use std::process::ExitCode;

use gitops_deploy::cli::Cli;

fn main() -> ExitCode {
    // Parse before starting the runtime: `--help`, `--version` and usage errors exit here without
    // spawning worker threads, which is most of a bare start's cost (BENCHMARKS.md, startup).
    let cli = Cli::parse_for_runner();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gitops-deploy: error: cannot start the async runtime: {e}");
            return ExitCode::from(gitops_deploy::error::EXIT_FAILED);
        }
    };
    runtime.block_on(gitops_deploy::cli::run(cli))
}
