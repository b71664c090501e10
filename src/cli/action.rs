//! The end of a `run`: turning the pipeline's result into the action's [`Outputs`], the step summary,
//! the `--output json` object and the exit code's `::error::` line.
//!
//! Owns the mapping from the steps' outcomes (publish, verify) to the outputs `action.yml` declares, so
//! the steps never know about runners and [`crate::runner`] never knows about steps. It runs after the
//! pipeline, on success and on failure alike: a failed deploy still writes `phase`, `result` and whatever
//! the phases before the failure produced.

use std::time::Duration;

use clap::Args;

use crate::cli::OutputFormat;
use crate::error::{DeployError, Phase};
use crate::forge::gitea;
use crate::pipeline::RunOutcome;
use crate::report::Report;
use crate::runner::{DeployResult, Outputs, PhaseRow, Runner, RunnerKind, Summary};
use crate::secret::Secret;

/// Options about reporting back to the forge the workflow runs on.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Reporting")]
pub struct ActionArgs {
    /// Post a commit status (context `gitops-deploy`) on the source commit ($GITHUB_REPOSITORY at
    /// $GITHUB_SHA), linking to the Argo CD app. Uses `token`. Accepts true/false [default: false].
    #[arg(long, env = "INPUT_REPORT_STATUS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub report_status: Option<String>,
}

impl ActionArgs {
    /// Whether to post a commit status.
    ///
    /// # Errors
    /// A message naming `report_status` when the value is not a boolean.
    pub fn report_status(&self) -> Result<bool, String> {
        match self.report_status.as_deref().map(str::trim) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(format!("report_status: expected true or false, got {v:?}")),
        }
    }
}

/// Where to post the commit status, when `report_status` is on.
#[derive(Debug, Clone)]
pub struct StatusTarget {
    /// The token (the `token` input).
    pub token: Option<Secret>,
}

/// Facts from the inputs the summary links to (read before the pipeline consumes the arguments).
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The Argo CD application's name and its page in the Argo CD UI.
    pub argocd_app: Option<(String, String)>,
}

impl Links {
    /// Links from the raw `argocd_server`, `argocd_app` and `argocd_app_namespace` inputs.
    pub fn from_inputs(server: Option<&str>, app: Option<&str>, namespace: Option<&str>) -> Self {
        let argocd_app = match (given(server), given(app)) {
            (Some(server), Some(app)) => {
                let base = if server.contains("://") {
                    server.trim_end_matches('/').to_owned()
                } else {
                    format!("https://{}", server.trim_end_matches('/'))
                };
                // Argo CD's UI addresses apps outside its own namespace as `/applications/<ns>/<app>`.
                let url = match given(namespace) {
                    Some(ns) => format!("{base}/applications/{ns}/{app}"),
                    None => format!("{base}/applications/{app}"),
                };
                Some((app.to_owned(), url))
            }
            _ => None,
        };
        Links { argocd_app }
    }
}

fn given(v: Option<&str>) -> Option<&str> {
    v.map(str::trim).filter(|v| !v.is_empty())
}

/// The outputs of a finished `run`: what the phases recorded as they went (so a failed deploy still
/// reports its commit), then the verify outcome of a successful one.
pub fn outputs(result: &Result<RunOutcome, DeployError>, report: &Report) -> Outputs {
    let last_phase = report
        .phase_durations()
        .last()
        .map(|(p, _)| *p)
        .unwrap_or(Phase::Inputs);
    let (phase, result_kind) = match result {
        Ok(_) => (last_phase, DeployResult::Success),
        Err(err) if err.invalid_input => (err.phase, DeployResult::InvalidInput),
        Err(err) if report.recorded("result").as_deref() == Some("rolled_back") => {
            (err.phase, DeployResult::RolledBack)
        }
        Err(err) => (err.phase, DeployResult::Failed),
    };
    let mut out = Outputs::new(phase, result_kind, report.elapsed());
    let fact = |name: &str| report.recorded(name).filter(|v| !v.is_empty());
    out.changed = fact("changed").as_deref() == Some("true");
    out.commit_sha = fact("commit_sha");
    out.commit_url = fact("commit_url");
    out.previous_tag = fact("previous_tag");
    out.synced_revision = fact("synced_revision");
    out.health = fact("health");
    if let Ok(RunOutcome {
        verify: Some(verify),
        ..
    }) = result
    {
        out.synced_revision = verify.synced_revision().map(str::to_owned);
        out.health = verify.app_health().map(str::to_owned);
    }
    out
}

/// The step summary of a finished `run`.
pub fn summary(
    result: &Result<RunOutcome, DeployError>,
    outputs: &Outputs,
    links: &Links,
    report: &Report,
) -> Summary {
    let failed = result.as_ref().err().filter(|e| !e.invalid_input);
    let phases = report
        .phase_durations()
        .into_iter()
        .map(|(phase, duration)| PhaseRow {
            phase,
            duration,
            passed: failed.is_none_or(|e| e.phase != phase),
        })
        .collect();
    let changes = report.changes();
    Summary {
        outputs: outputs.clone(),
        phases,
        changes,
        argocd_app: links.argocd_app.clone(),
        error: result.as_ref().err().map(|e| format!("{e:#}")),
    }
}

/// Reports a finished `run` everywhere it goes: the commit status (if asked), `$GITHUB_OUTPUT`,
/// `$GITHUB_STEP_SUMMARY`, and with `--output json` one JSON object on stdout. Failing to write any of
/// them is a warning: the deploy itself already happened and its exit code must stand.
pub async fn finish(
    result: &Result<RunOutcome, DeployError>,
    links: &Links,
    report: &Report,
    runner: Option<&Runner>,
    format: OutputFormat,
    status: Option<&StatusTarget>,
) {
    let outputs = outputs(result, report);
    report.close_phase();
    if let Some(target) = status {
        let invalid = result.as_ref().is_err_and(|e| e.invalid_input);
        if !invalid {
            if let Err(why) = post_status(&outputs, links, runner, target).await {
                report.line(&format!("gitops-deploy: warning: report_status: {why}"));
            }
        }
    }
    if let Some(runner) = runner {
        let masker = report.masker();
        if let Err(e) = runner.write_outputs(&outputs, masker) {
            report.line(&format!(
                "gitops-deploy: warning: {:#}",
                anyhow::Error::new(e)
            ));
        }
        let summary = summary(result, &outputs, links, report);
        if let Err(e) = runner.write_summary(&summary, masker) {
            report.line(&format!(
                "gitops-deploy: warning: {:#}",
                anyhow::Error::new(e)
            ));
        }
    }
    if format == OutputFormat::Json {
        println!("{}", outputs.to_json(report.masker()));
    }
}

/// Posts the `gitops-deploy` commit status on the source commit.
async fn post_status(
    outputs: &Outputs,
    links: &Links,
    runner: Option<&Runner>,
    target: &StatusTarget,
) -> Result<(), String> {
    let runner = runner.ok_or("not running in a CI runner, so there is no source commit")?;
    let missing = |v: &Option<String>, name: &str| {
        v.clone()
            .ok_or_else(|| format!("{name} is not set, so there is no source commit to mark"))
    };
    let server = missing(&runner.server_url, "GITHUB_SERVER_URL")?;
    let repository = missing(&runner.repository, "GITHUB_REPOSITORY")?;
    let sha = missing(&runner.sha, "GITHUB_SHA")?;
    let (owner, name) = repository
        .split_once('/')
        .ok_or_else(|| format!("GITHUB_REPOSITORY {repository:?} is not owner/name"))?;
    // GitHub's API is not under the server URL: `$GITHUB_API_URL` (field-runner.md §7). Gitea and
    // Forgejo serve it at `<server>/api/v1`.
    let builder = match (runner.kind, &runner.api_url) {
        (RunnerKind::Github, Some(api)) => gitea::Client::builder(api.as_str()).api_root(),
        _ => gitea::Client::builder(server),
    };
    let client = builder
        .token(target.token.clone())
        .request_timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| format!("{:#}", anyhow::Error::new(e)))?;
    let (state, description) = match outputs.result {
        DeployResult::Success if outputs.changed => ("success", "deployed".to_owned()),
        DeployResult::Success => ("success", "already deployed".to_owned()),
        _ => ("failure", format!("failed in {}", outputs.phase)),
    };
    let repo = client.repo(owner, name);
    let mut request = repo
        .create_status(sha, state)
        .context("gitops-deploy")
        .description(description);
    let link = links
        .argocd_app
        .as_ref()
        .map(|(_, url)| url.clone())
        .or_else(|| outputs.commit_url.clone());
    if let Some(url) = link {
        request = request.target_url(url);
    }
    request
        .send()
        .await
        .map_err(|e| format!("{:#}", anyhow::Error::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argocd_links_follow_the_ui_routes() {
        let l = Links::from_inputs(Some("argocd.example.com/"), Some("web-prod"), None);
        assert_eq!(
            l.argocd_app,
            Some((
                "web-prod".into(),
                "https://argocd.example.com/applications/web-prod".into()
            ))
        );
        let l = Links::from_inputs(Some("http://127.0.0.1:9"), Some("web"), Some("team-a"));
        assert_eq!(
            l.argocd_app.unwrap().1,
            "http://127.0.0.1:9/applications/team-a/web"
        );
        assert!(Links::from_inputs(Some(""), Some("web"), None)
            .argocd_app
            .is_none());
    }
}
