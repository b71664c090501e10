//! `gitops-sandbox`: run the sandbox by hand.
//!
//! `gitops-sandbox serve [--state-dir DIR]` starts every server, prints one JSON line on stdout with
//! the URLs, tokens and the demo's coordinates, and runs until SIGINT or SIGTERM, then shuts down
//! cleanly (ports closed, child processes gone).
//!
//! `gitops-sandbox demo` runs the README's first command: see [`gitops_sandbox::showcase`].

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gitops_sandbox::profile::{ArgoProfile, GiteaProfile};
use gitops_sandbox::{Sandbox, SandboxConfig};

fn argo_profile(name: &str) -> Result<ArgoProfile, String> {
    ArgoProfile::named(name).ok_or_else(|| {
        format!("unknown Argo CD profile {name:?}: expected 2.14, 3.0–3.3, 3.4–3.5 or 3.6")
    })
}

/// A local GitOps world for tests and demos: Gitea (real git), Argo CD, Kubernetes and the app.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the sandbox, print one JSON line describing it, and serve until killed.
    Serve {
        /// Keep repositories and generated files here instead of a temporary directory.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Do not seed the demo repository and app.
        #[arg(long)]
        no_demo: bool,
        /// Behave as this Gitea/Forgejo release where releases differ: a profile (`1.22`, `1.25`,
        /// `1.26`, `forgejo-8`, `forgejo-12`) or an exact version (`1.22.6`, `8.0.3+gitea-1.22.0`)
        /// [default: 1.26].
        #[arg(long, value_name = "PROFILE")]
        gitea: Option<String>,
        /// Behave as this Argo CD release line: `2.14`, `3.0` (3.0–3.3), `3.4` (3.4–3.5), `head`
        /// (3.6, unreleased) [default: 3.4].
        #[arg(long, value_name = "PROFILE", value_parser = argo_profile)]
        argocd: Option<ArgoProfile>,
        /// Gitea's `REQUIRE_SIGNIN_VIEW = true`: the API, `/version` included, needs a token.
        #[arg(long)]
        gitea_require_signin_view: bool,
        /// An extra Argo CD token whose role may get applications but not sync them.
        #[arg(long, value_name = "TOKEN")]
        argocd_get_only_token: Option<String>,
        /// The first N Argo CD refresh requests hang without refreshing (as when the repo server
        /// fails the comparison); the controller's own git poll still runs.
        #[arg(long, value_name = "N", default_value_t = 0)]
        argocd_refresh_hangs: u32,
        /// Argo CD's git poll interval in seconds [default: 180, as Argo CD].
        #[arg(long, value_name = "SECONDS")]
        argocd_poll: Option<u64>,
    },
    /// Start the sandbox and deploy through the real `gitops-deploy` binary as a Gitea runner would:
    /// 1.1.0 end to end, then a broken release that is rolled back. Needs no setup.
    Demo,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            state_dir,
            no_demo,
            gitea,
            argocd,
            gitea_require_signin_view,
            argocd_get_only_token,
            argocd_refresh_hangs,
            argocd_poll,
        } => {
            let sandbox = Sandbox::start(SandboxConfig {
                state_dir,
                seed_demo: !no_demo,
                ..SandboxConfig::default()
            })
            .await?;
            match gitea.as_deref().map(|g| (g, GiteaProfile::named(g))) {
                Some((_, Some(profile))) => sandbox.gitea().set_profile(profile),
                Some((version, None)) => sandbox.gitea().set_version(version),
                None => {}
            }
            if let Some(profile) = argocd {
                sandbox.argocd().set_profile(profile);
            }
            sandbox
                .gitea()
                .set_require_signin_view(gitea_require_signin_view);
            if let Some(token) = argocd_get_only_token {
                sandbox.argocd().add_get_only_token(token);
            }
            sandbox.argocd().hang_next_refreshes(argocd_refresh_hangs);
            if let Some(secs) = argocd_poll {
                sandbox
                    .argocd()
                    .set_poll_interval(std::time::Duration::from_secs(secs));
            }
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", sandbox.summary()).context("cannot write to stdout")?;
            stdout.flush().context("cannot write to stdout")?;
            drop(stdout);
            wait_for_signal().await?;
            drop(sandbox);
            Ok(())
        }
        Command::Demo => {
            let bin = gitops_sandbox::showcase::locate_deploy_binary()?;
            let mut stdout = std::io::stdout();
            let report = gitops_sandbox::showcase::run(&bin, &mut stdout).await?;
            anyhow::ensure!(
                report.good.exit_code == Some(0) && report.broken.exit_code == Some(1),
                "the demo did not go as planned (exit codes {:?} and {:?})",
                report.good.exit_code,
                report.broken.exit_code
            );
            Ok(())
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
