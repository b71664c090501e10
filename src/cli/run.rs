//! `gitops-deploy run`: the deploy command (and the action's entry point). Options are raw strings here,
//! each also read from `INPUT_<NAME>` so that action mode needs no second parser; an empty value counts as
//! "not given", because runners set `INPUT_X=""` for inputs without a value. Typed configs are built by
//! [`plan`].

use std::time::Duration;

use clap::Args;

use super::inputs::InvalidInputs;
use crate::error::{DeployError, Phase};
use crate::pipeline::{self, expect_of, RunConfig};
use crate::publish;
use crate::report::Report;
use crate::secret::Secret;

/// Options of `run`: one flattened group per step.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where and what to publish.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Push or pull request.
    #[command(flatten)]
    pub pull_request: super::pull_request::PullRequestArgs,
    /// How to verify the deploy (and roll it back).
    #[command(flatten)]
    pub verify: super::verify::VerifyArgs,
    /// Reporting back to the workflow's forge.
    #[command(flatten)]
    pub action: crate::cli::action::ActionArgs,
}

/// Publish options: the GitOps repository, the image change and how to commit it.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Publish")]
pub struct PublishArgs {
    /// Base URL of the Gitea/Forgejo (or other git) server [default: $GITHUB_SERVER_URL].
    #[arg(long, env = "INPUT_SERVER_URL", value_name = "URL")]
    pub server_url: Option<String>,
    /// GitOps repository: `owner/name` on the server, or a clone URL (without credentials)
    /// [default: $GITHUB_REPOSITORY].
    #[arg(long, env = "INPUT_REPOSITORY", value_name = "REPO")]
    pub repository: Option<String>,
    /// Branch to commit on [default: the repository's default branch].
    #[arg(long, env = "INPUT_BRANCH")]
    pub branch: Option<String>,
    /// Kustomization directories (target `kustomize`) or files (the other targets), relative to the
    /// repository root; newline- or comma-separated, or repeat the flag.
    #[arg(long, env = "INPUT_PATH", value_name = "PATH")]
    pub path: Vec<String>,
    /// What the paths are: `kustomize` (a kustomization's `images`), `helm` (values files), `yaml`
    /// (any YAML file, at `key_path`), `manifests` (plain Kubernetes manifests: every container
    /// image of the repository) or `markers` (any YAML file: the values marked for `setter`)
    /// [default: kustomize].
    #[arg(
        long,
        env = "INPUT_TARGET",
        value_name = "kustomize|helm|yaml|manifests|markers"
    )]
    pub target: Option<String>,
    /// Target `helm`: the keys of the image, `repository=KEY,tag=KEY,digest=KEY` (any of them; one set
    /// per image, newline- or `;`-separated; the set whose repository holds `image` is edited)
    /// [default: repository=image.repository,tag=image.tag,digest=image.digest].
    #[arg(long, env = "INPUT_HELM_KEYS", value_name = "KEYS")]
    pub helm_keys: Option<String>,
    /// Target `yaml`: the key paths to set (`a.b`, `list[0].c`, `list[name=web].image`), newline- or
    /// comma-separated.
    #[arg(long, env = "INPUT_KEY_PATH", value_name = "PATH")]
    pub key_path: Vec<String>,
    /// A setter, `NAMESPACE:POLICY`: every value marked `# {"$imagepolicy": "NAMESPACE:POLICY"}`
    /// (the whole reference), `…:tag` or `…:name` (Flux's markers) in the paths' files is set too;
    /// required by `target: markers`, which sets only those.
    #[arg(long, env = "INPUT_SETTER", value_name = "NAMESPACE:POLICY")]
    pub setter: Option<String>,
    /// Target `yaml`: the value written at every key path: {image} {tag} {digest} {ref} (the whole
    /// reference) [default: {ref}].
    #[arg(long, env = "INPUT_VALUE_TEMPLATE", value_name = "TEMPLATE")]
    pub value_template: Option<String>,
    /// Image name as written in the kustomization's `images:` (e.g. `registry.example.com/demo/web`).
    #[arg(long, env = "INPUT_IMAGE", value_name = "NAME")]
    pub image: Option<String>,
    /// New tag.
    #[arg(long, env = "INPUT_TAG")]
    pub tag: Option<String>,
    /// New digest (`sha256:…`).
    #[arg(long, env = "INPUT_DIGEST")]
    pub digest: Option<String>,
    /// Replacement image name (`newName`); the entry's existing `newName` is kept when not given.
    #[arg(long, env = "INPUT_NEW_NAME", value_name = "NAME")]
    pub new_name: Option<String>,
    /// Token with write access to the repository. Prefer the environment variable: a flag is visible to
    /// other processes.
    #[arg(long, env = "INPUT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate(s) to trust for `server_url` besides the public roots, for the API and for git (a
    /// server behind a private CA): a PEM file path (inside the workspace in action mode) or the PEM
    /// text itself.
    #[arg(long, env = "INPUT_SERVER_CA", value_name = "PEM")]
    pub server_ca: Option<String>,
    /// How to write: `api` (Gitea/Forgejo contents API, no clone), `git` (any git host) or `auto`
    /// (`api` when the server answers like Gitea/Forgejo) [default: auto].
    #[arg(long, env = "INPUT_TRANSPORT", value_name = "api|git|auto")]
    pub transport: Option<String>,
    /// Commit message template. Placeholders: {image} {old} {new} {paths} {source_repo} {source_sha}
    /// {run_url}; `{{`/`}}` are literal braces; a line whose placeholders are all unavailable (the
    /// source and run outside a runner) is left out. A `Deploy-Id:` trailer is always appended, and
    /// `[skip ci]` unless the message has a skip marker (`[skip ci]`, `[ci skip]`, `[no ci]`, `[skip
    /// actions]`, `[actions skip]`). The default names the image, old and new values and paths.
    #[arg(long, env = "INPUT_COMMIT_MESSAGE", value_name = "TEMPLATE")]
    pub commit_message: Option<String>,
    /// Author (and committer) name [default: gitops-deploy].
    #[arg(long, env = "INPUT_AUTHOR_NAME", value_name = "NAME")]
    pub author_name: Option<String>,
    /// Author (and committer) e-mail [default: gitops-deploy@noreply.invalid].
    #[arg(long, env = "INPUT_AUTHOR_EMAIL", value_name = "EMAIL")]
    pub author_email: Option<String>,
    /// Print the diff of every file and the commit message; write nothing. Accepts true/false.
    #[arg(long, env = "INPUT_DRY_RUN", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dry_run: Option<String>,
}

/// Builds every step's config from the raw options and the runner's environment; no I/O.
///
/// # Errors
/// An invalid-input [`DeployError`] listing every problem.
pub fn plan(args: &RunArgs, env: &publish::RunnerEnv) -> Result<RunConfig, DeployError> {
    let mut problems = Vec::new();
    let publish = super::publish::config(&args.publish, env)
        .map_err(|p| problems.extend(p))
        .ok();
    let expect = publish.as_ref().map(expect_of).unwrap_or_default();
    let verify = super::verify::config(&args.verify, &expect)
        .map_err(|p| problems.extend(p))
        .ok();
    let overall = verify
        .as_ref()
        .map_or(Duration::from_secs(600), |v| v.timeout);
    let pull_request = super::pull_request::config(
        &args.pull_request,
        overall,
        publish.as_ref().map(|p| &p.server_url),
        env,
    )
    .map_err(|p| problems.extend(p))
    .ok();
    let mut publish = publish;
    if let (Some(p), Some(Some(pr))) = (publish.as_mut(), pull_request.as_ref()) {
        if matches!(pr.forge, crate::pull_request::ForgeKind::Github { .. }) {
            // The contents API is Gitea's: on GitHub the branch is written over git.
            if p.transport == publish::Transport::Api {
                problems.push(
                    "transport: `api` is the Gitea/Forgejo contents API; on GitHub the pull \
                     request's branch is written over git (transport: git or auto)"
                        .to_owned(),
                );
            }
            p.transport = publish::Transport::Git;
        }
    }
    match (publish, verify, pull_request) {
        (Some(mut publish), Some(verify), Some(pull_request)) if problems.is_empty() => {
            // The publish step's own budget is capped by the overall deadline.
            publish.timeout = publish.timeout.min(verify.timeout);
            Ok(RunConfig {
                publish,
                verify,
                expect,
                pull_request,
            })
        }
        _ => Err(DeployError::input(
            Phase::Inputs,
            InvalidInputs { problems },
        )),
    }
}

/// Runs `run`: checks every input, then the pipeline. A dry run prints its diffs and message on stdout.
/// The report's `failure` names the phase (invalid input: exit code 2).
pub async fn execute(args: RunArgs, report: &Report) -> pipeline::RunReport {
    // Before anything else, so that no message can carry the token, not even an input error.
    let env = crate::publish::RunnerEnv::from_process();
    for token in [args.publish.token.as_deref(), env.token.as_deref()]
        .into_iter()
        .flatten()
        .filter(|t| !t.trim().is_empty())
    {
        report.add_secret(&Secret::new(token));
    }
    let config = match plan(&args, &env) {
        Ok(c) => c,
        Err(e) => return pipeline::RunReport::failed(e),
    };
    let run = pipeline::run(&config, report).await;
    if let Some(publish) = run.publish.as_ref().filter(|p| p.dry_run) {
        let mut out = String::new();
        for f in publish.files.iter().filter(|f| f.changed) {
            out.push_str(&f.diff);
            if !f.diff.ends_with('\n') {
                out.push('\n');
            }
        }
        if publish.changed {
            out.push_str("--- commit message ---\n");
            out.push_str(&publish.message);
        } else {
            out.push_str("no change: every file already holds the requested values\n");
        }
        print!("{}", report.masker().mask(&out));
    }
    run
}
