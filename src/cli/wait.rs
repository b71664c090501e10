//! `gitops-deploy wait`: the verification phases alone, for a commit pushed by someone else.

use std::sync::Arc;

use clap::Args;

use super::verify::VerifyArgs;
use crate::ancestry::GiteaOracle;
use crate::argocd::phase::RevisionOracle;
use crate::error::{DeployError, Phase};
use crate::report::Report;
use crate::secret::Secret;
use crate::verify::Expect;

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
    /// Base URL of the Gitea/Forgejo server holding the GitOps repository; with `repository` it lets
    /// a newer commit that contains ours count (ancestry from the compare API).
    #[arg(long, env = "INPUT_SERVER_URL", value_name = "URL")]
    pub server_url: Option<String>,
    /// GitOps repository, `owner/name`.
    #[arg(long, env = "INPUT_REPOSITORY", value_name = "OWNER/NAME")]
    pub repository: Option<String>,
    /// Token with read access to the repository. Prefer the environment variable.
    #[arg(long, env = "INPUT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    let images: Vec<String> = super::inputs::split_list(&args.images);
    let given = super::inputs::given_owned;
    if let Some(t) = given(&args.token) {
        report.add_secret(&Secret::new(t));
    }
    let oracle = match (given(&args.server_url), given(&args.repository)) {
        (Some(server), Some(repo)) => match repo.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
                let token = given(&args.token).map(Secret::new);
                let clone_url = format!(
                    "{}/{owner}/{}.git",
                    server.trim_end_matches('/'),
                    name.trim_end_matches(".git")
                );
                match crate::forge::gitea::Client::builder(server.as_str())
                    .token(token.clone())
                    .request_timeout(std::time::Duration::from_secs(15))
                    .build()
                {
                    Ok(client) => {
                        // Where compare cannot answer (Gitea 1.22, old Forgejo, pull requests
                        // disabled), ancestry comes from git instead of stalling the wait.
                        let git_fallback = url::Url::parse(&clone_url).ok().map(|url| {
                            crate::ancestry::GitFallback::on_default_branch(
                                crate::forge::git::Remote {
                                    url,
                                    token: token.clone(),
                                    stall_timeout: std::time::Duration::from_secs(15),
                                    server_ca: None,
                                },
                                std::time::Duration::from_secs(60),
                            )
                        });
                        let oracle: Arc<dyn RevisionOracle> = Arc::new(GiteaOracle {
                            client,
                            owner: owner.to_owned(),
                            name: name.trim_end_matches(".git").to_owned(),
                            // Without the deploy's paths and setting, "our value survived" cannot
                            // be checked: any descendant counts.
                            overwrite: None,
                            git_fallback,
                        });
                        Some(oracle)
                    }
                    Err(e) => {
                        problems.push(format!("server_url: {e}"));
                        None
                    }
                }
            }
            _ => {
                problems.push(format!("repository: {repo:?} is not owner/name"));
                None
            }
        },
        _ => None,
    };
    let mut expect = Expect::from_images(&images);
    // The repository tells a multi-source app's source of ours from its others (a chart, a `ref`).
    if let (Some(server), Some(repo)) = (given(&args.server_url), given(&args.repository)) {
        expect.repo_url = Some(format!("{}/{repo}", server.trim_end_matches('/')));
    }
    let config = match super::verify::config(&args.verify, &expect) {
        Ok(c) => Some(c),
        Err(mut p) => {
            problems.append(&mut p);
            None
        }
    };
    if !problems.is_empty() {
        return Err(DeployError::input(
            Phase::Inputs,
            super::inputs::InvalidInputs { problems },
        ));
    }
    let mut config = config.expect("no problems means a config");
    for secret in config.secrets() {
        report.add_secret(&secret);
    }
    if config
        .argocd
        .as_ref()
        .is_some_and(|a| a.apps == crate::argocd::apps::Selection::Auto)
    {
        return Err(DeployError::input(
            Phase::Inputs,
            super::inputs::InvalidInputs {
                problems: vec![
                    "argocd_app: `auto` finds the apps that deploy what a `run` edits; name the \
                     apps (or give argocd_selector) to wait for a commit"
                        .into(),
                ],
            },
        ));
    }
    // Nothing was edited here: named apps are taken as they are, a selector keeps what it matches.
    crate::verify::settle_apps(&mut config, None, None)
        .await
        .map_err(|e| {
            if e.is_invalid_input() {
                DeployError::input(Phase::Inputs, e)
            } else {
                DeployError::failed(Phase::Argocd, e)
            }
        })?;
    let commit = commit.expect("checked above");
    let outcome = crate::verify::run(&config, &commit, &expect, oracle, report, started).await?;
    report.line(&format!("verified: {}", outcome.summary()));
    Ok(())
}
