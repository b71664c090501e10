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
use crate::error::Phase;
use crate::forge::gitea;
use crate::pipeline::RunReport;
use crate::report::Report;
use crate::runner::{DeployResult, ImageChange, Outputs, PhaseRow, Runner, RunnerKind, Summary};
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
        match super::inputs::given(&self.report_status) {
            None => Ok(false),
            Some(v) => super::inputs::parse_bool("report_status", v),
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
    /// The Argo CD UI's address of an app without its name (`https://argocd/applications/`), for
    /// the rows of several apps.
    pub argocd_apps: Option<String>,
}

impl Links {
    /// Links from the raw `argocd_server`, `argocd_app` and `argocd_app_namespace` inputs; a list
    /// of apps or `auto` gets no single link (each app's row links its own).
    pub fn from_inputs(server: Option<&str>, app: Option<&str>, namespace: Option<&str>) -> Self {
        let Some(server) = given(server) else {
            return Links::default();
        };
        let base = if server.contains("://") {
            server.trim_end_matches('/').to_owned()
        } else {
            format!("https://{}", server.trim_end_matches('/'))
        };
        // Argo CD's UI addresses apps outside its own namespace as `/applications/<ns>/<app>`.
        let prefix = match given(namespace) {
            Some(ns) => format!("{base}/applications/{ns}/"),
            None => format!("{base}/applications/"),
        };
        let argocd_app = given(app)
            .filter(|a| !a.contains([',', '\n']) && !a.eq_ignore_ascii_case("auto"))
            .map(|a| (a.to_owned(), format!("{prefix}{a}")));
        Links {
            argocd_app,
            argocd_apps: Some(prefix),
        }
    }
}

use super::inputs::given_str as given;

/// The outputs of a finished `run`, from its report: what the steps that ran produced (so a failed
/// deploy still reports its commit), how it ended and where. `elapsed` is the command's time.
pub fn outputs(run: &RunReport, elapsed: Duration) -> Outputs {
    let last_phase = run.phases.last().map_or(Phase::Inputs, |(p, _)| *p);
    let (phase, result) = match &run.failure {
        None => (last_phase, DeployResult::Success),
        Some(err) if err.invalid_input => (err.phase, DeployResult::InvalidInput),
        Some(err) if run.rollback.as_ref().is_some_and(|r| r.result.is_ok()) => {
            (err.phase, DeployResult::RolledBack)
        }
        Some(err) => (err.phase, DeployResult::Failed),
    };
    let mut out = Outputs::new(phase, result, elapsed);
    out.error = run.failure.as_ref().map(ToString::to_string);
    if let Some(p) = &run.publish {
        out.changed = p.changed && !p.dry_run;
        out.commit_sha = Some(p.commit_sha.clone()).filter(|s| !s.is_empty());
        out.commit_url = Some(p.commit_url.clone()).filter(|s| !s.is_empty());
        out.previous_tag = p
            .files
            .iter()
            .flat_map(|f| &f.images)
            .find_map(|i| i.previous_values.as_ref())
            .map(|v| match (&v.new_tag, &v.digest) {
                (Some(t), Some(d)) => format!("{t}@{d}"),
                (Some(t), None) => t.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => String::new(),
            })
            .filter(|t| !t.is_empty());
    }
    if let Some(pr) = &run.pull {
        out.pr_number = Some(pr.number);
        out.pr_url = Some(pr.url.clone());
        out.pr_branch = Some(pr.branch.clone());
        // The PR's commit may differ from the one the (reused) publish outcome named.
        out.commit_sha = Some(pr.head_sha.clone()).filter(|s| !s.is_empty());
    }
    out.merge_commit_sha = run.merged.as_ref().map(|m| m.sha.clone());
    if let Some(v) = &run.verify {
        out.synced_revision = v.synced_revision().map(str::to_owned);
        out.health = v.app_health().map(str::to_owned);
        out.rollout = v.rollout.as_ref().map(|r| r.workloads.join("\n"));
        if !v.apps.is_empty() {
            let apps: Vec<serde_json::Value> = v
                .apps
                .iter()
                .map(|a| {
                    serde_json::json!({
                        "app": a.app,
                        "result": if a.error.is_none() { "success" } else { "failed" },
                        "synced_revision": a.argocd.as_ref().map(|o| o.synced_revision.clone()),
                        "health": a.argocd.as_ref().map(|o| o.health.clone()),
                        "error": a.error,
                    })
                })
                .collect();
            out.apps = Some(serde_json::Value::Array(apps).to_string());
        }
    }
    out
}

/// The image changes the deploy made, old → new.
fn changes(run: &RunReport) -> Vec<ImageChange> {
    let Some(p) = &run.publish else {
        return Vec::new();
    };
    p.files
        .iter()
        .filter(|f| f.changed)
        .flat_map(|f| {
            f.images.iter().map(|i| ImageChange {
                file: f.path.clone(),
                image: i.name.clone(),
                old: i.previous.clone(),
                new: i.new.clone(),
            })
        })
        .collect()
}

/// The step summary of a finished `run`.
pub fn summary(run: &RunReport, outputs: &Outputs, links: &Links) -> Summary {
    let failed = run.failure.as_ref().filter(|e| !e.invalid_input);
    let phases = run
        .phases
        .iter()
        .map(|&(phase, duration)| PhaseRow {
            phase,
            duration,
            passed: match phase {
                Phase::Rollback => run
                    .rollback
                    .as_ref()
                    .is_some_and(|r| r.result.as_ref().is_ok_and(|o| o.healthy)),
                _ => failed.is_none_or(|e| e.phase != phase),
            },
        })
        .collect();
    let apps = run
        .verify
        .as_ref()
        .map(|v| {
            v.apps
                .iter()
                .map(|a| crate::runner::AppRow {
                    link: links.argocd_apps.as_ref().map(|p| format!("{p}{}", a.app)),
                    app: a.app.clone(),
                    passed: a.error.is_none(),
                    detail: match (&a.error, &a.argocd) {
                        (Some(e), _) => e.clone(),
                        (None, Some(o)) => format!(
                            "{} {} at {}",
                            o.sync_status,
                            o.health,
                            crate::text::short(&o.synced_revision)
                        ),
                        (None, None) => String::new(),
                    },
                    duration: a.elapsed,
                })
                .collect()
        })
        .unwrap_or_default();
    Summary {
        outputs: outputs.clone(),
        apps,
        phases,
        changes: changes(run),
        argocd_app: links.argocd_app.clone(),
        error: run.failure.as_ref().map(|e| format!("{e:#}")),
    }
}

/// The commit status a finished `run` posts: state and description.
pub fn status_of(outputs: &Outputs) -> (&'static str, String) {
    match outputs.result {
        DeployResult::Success if outputs.changed => ("success", "deployed".to_owned()),
        DeployResult::Success => ("success", "already deployed".to_owned()),
        DeployResult::RolledBack => (
            "failure",
            format!("failed in {}, rolled back", outputs.phase),
        ),
        _ => ("failure", format!("failed in {}", outputs.phase)),
    }
}

/// Reports a finished `run` everywhere it goes: the commit status (if asked), `$GITHUB_OUTPUT`,
/// `$GITHUB_STEP_SUMMARY`, and with `--output json` one JSON object on stdout. Failing to write any of
/// them is a warning: the deploy itself already happened and its exit code must stand.
pub async fn finish(
    run: &RunReport,
    links: &Links,
    report: &Report,
    runner: Option<&Runner>,
    format: OutputFormat,
    status: Option<&StatusTarget>,
) {
    let outputs = outputs(run, report.elapsed());
    report.close_phase();
    if let Some(target) = status {
        let invalid = run.failure.as_ref().is_some_and(|e| e.invalid_input);
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
        let summary = summary(run, &outputs, links);
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
    let server = missing(&runner.env.server_url, "GITHUB_SERVER_URL")?;
    let repository = missing(&runner.env.repository, "GITHUB_REPOSITORY")?;
    let sha = missing(&runner.env.sha, "GITHUB_SHA")?;
    let (owner, name) = repository
        .split_once('/')
        .ok_or_else(|| format!("GITHUB_REPOSITORY {repository:?} is not owner/name"))?;
    // GitHub's API is not under the server URL: `$GITHUB_API_URL` (docs/research/field-runner.md §7). Gitea and
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
    let (state, description) = status_of(outputs);
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
    use crate::error::DeployError;
    use crate::pipeline::{RollbackFailure, RollbackOutcome, RollbackReport};
    use crate::publish::{FileOutcome, ImageOutcome, Outcome as Published, UsedTransport};

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn published(changed: bool, dry_run: bool) -> Published {
        Published {
            changed,
            commit_sha: SHA.into(),
            commit_url: format!("https://git.example.com/ops/gitops/commit/{SHA}"),
            branch: "main".into(),
            transport: UsedTransport::Api,
            files: vec![FileOutcome {
                path: "apps/web/kustomization.yaml".into(),
                changed,
                images: vec![ImageOutcome {
                    name: "registry.example.com/web".into(),
                    previous: Some("1.0.0".into()),
                    new: "1.1.0".into(),
                    previous_values: Some(crate::edit::ImageValues {
                        new_name: None,
                        new_tag: Some("1.0.0".into()),
                        digest: None,
                    }),
                }],
                diff: String::new(),
            }],
            message: "deploy".into(),
            attempts: 1,
            elapsed: Duration::from_millis(800),
            dry_run,
        }
    }

    fn argo(health: &str) -> crate::verify::Outcome {
        crate::verify::Outcome {
            argocd: Some(crate::argocd::phase::ArgoOutcome {
                synced_revision: SHA.into(),
                sync_status: "Synced".into(),
                health: health.into(),
            }),
            ..Default::default()
        }
    }

    fn failed(phase: Phase) -> Option<DeployError> {
        Some(DeployError::failed(phase, anyhow::anyhow!("{phase} broke")))
    }

    fn rollback(result: Result<bool, &str>) -> Option<RollbackReport> {
        Some(RollbackReport {
            result: result
                .map(|healthy| RollbackOutcome {
                    restored: "1.0.0".into(),
                    commits: vec!["feed".into()],
                    healthy,
                })
                .map_err(|e| RollbackFailure {
                    error: e.to_owned(),
                    commits: Vec::new(),
                }),
            elapsed: Duration::from_millis(2300),
        })
    }

    fn phases(list: &[Phase]) -> Vec<(Phase, Duration)> {
        list.iter().map(|p| (*p, Duration::from_secs(1))).collect()
    }

    /// (name, run, want result, phase, changed, commit, synced revision, rollback row passed)
    type Case = (
        &'static str,
        RunReport,
        DeployResult,
        Phase,
        bool,
        bool,
        bool,
        Option<bool>,
    );

    /// Pull-request mode: the outputs name the pull request; the merge commit only once merged, also
    /// when a later phase or the merge itself failed.
    #[test]
    fn pull_request_outputs() {
        use crate::forge::gitea::MergeStyle;
        use crate::pull_request::{Merged, PullInfo};
        let pull = PullInfo {
            number: 42,
            url: "https://git.example.com/ops/gitops/pulls/42".into(),
            branch: "gitops-deploy/web-1.1.0-0123abcd".into(),
            base: "main".into(),
            title: "deploy registry.example.com/web 1.1.0".into(),
            head_sha: SHA.into(),
            reused: false,
            recreated: 0,
            superseded: Vec::new(),
        };
        let merged = Merged {
            sha: "fedcba9876543210fedcba9876543210fedcba98".into(),
            style: MergeStyle::Squash,
            keeps_our_commit: false,
        };
        use Phase::*;
        for (name, run, result, phase, merge_sha, synced) in [
            (
                "merged and verified",
                RunReport {
                    publish: Some(published(true, false)),
                    pull: Some(pull.clone()),
                    merged: Some(merged.clone()),
                    verify: Some(argo("Healthy")),
                    phases: phases(&[Publish, Merge, Argocd]),
                    ..Default::default()
                },
                DeployResult::Success,
                Argocd,
                true,
                true,
            ),
            (
                "left open (merge: none)",
                RunReport {
                    publish: Some(published(true, false)),
                    pull: Some(pull.clone()),
                    phases: phases(&[Publish]),
                    ..Default::default()
                },
                DeployResult::Success,
                Publish,
                false,
                false,
            ),
            (
                "a check failed",
                RunReport {
                    publish: Some(published(true, false)),
                    pull: Some(pull.clone()),
                    failure: failed(Merge),
                    phases: phases(&[Publish, Merge]),
                    ..Default::default()
                },
                DeployResult::Failed,
                Merge,
                false,
                false,
            ),
        ] {
            let o = outputs(&run, Duration::from_millis(1000));
            assert_eq!((o.result, o.phase), (result, phase), "{name}");
            assert_eq!(o.pr_number, Some(42), "{name}");
            assert_eq!(o.pr_url.as_deref(), Some(pull.url.as_str()), "{name}");
            assert_eq!(o.pr_branch.as_deref(), Some(pull.branch.as_str()), "{name}");
            assert_eq!(o.commit_sha.as_deref(), Some(SHA), "{name}");
            assert_eq!(o.merge_commit_sha.is_some(), merge_sha, "{name}");
            assert_eq!(o.synced_revision.is_some(), synced, "{name}");
            let md = summary(&run, &o, &Links::default()).to_markdown();
            let line = if merge_sha {
                "- Pull request: [#42](https://git.example.com/ops/gitops/pulls/42), merged as `fedcba9`"
            } else {
                "- Pull request: [#42](https://git.example.com/ops/gitops/pulls/42), not merged"
            };
            assert!(md.contains(line), "{name}: {md}");
        }
    }

    #[test]
    fn outputs_summary_and_status_from_the_run_report() {
        use Phase::*;
        let cases: Vec<Case> = vec![
            (
                "success",
                RunReport {
                    publish: Some(published(true, false)),
                    verify: Some(argo("Healthy")),
                    phases: phases(&[Publish, Argocd, Rollout, Health]),
                    ..Default::default()
                },
                DeployResult::Success,
                Health,
                true,
                true,
                true,
                None,
            ),
            (
                "no change",
                RunReport {
                    publish: Some(published(false, false)),
                    verify: Some(argo("Healthy")),
                    phases: phases(&[Publish, Argocd]),
                    ..Default::default()
                },
                DeployResult::Success,
                Argocd,
                false,
                true,
                true,
                None,
            ),
            (
                "dry run",
                RunReport {
                    publish: Some(published(true, true)),
                    phases: phases(&[Publish]),
                    ..Default::default()
                },
                DeployResult::Success,
                Publish,
                false,
                true,
                false,
                None,
            ),
            (
                "invalid input",
                RunReport::failed(DeployError::input(Inputs, anyhow::anyhow!("tag: required"))),
                DeployResult::InvalidInput,
                Inputs,
                false,
                false,
                false,
                None,
            ),
            (
                "publish fails",
                RunReport {
                    failure: failed(Publish),
                    phases: phases(&[Publish]),
                    ..Default::default()
                },
                DeployResult::Failed,
                Publish,
                false,
                false,
                false,
                None,
            ),
            (
                "argocd fails",
                RunReport {
                    publish: Some(published(true, false)),
                    verify: Some(crate::verify::Outcome::default()),
                    failure: failed(Argocd),
                    phases: phases(&[Publish, Argocd]),
                    ..Default::default()
                },
                DeployResult::Failed,
                Argocd,
                true,
                true,
                false,
                None,
            ),
            (
                "rollout fails after argocd passed",
                RunReport {
                    publish: Some(published(true, false)),
                    verify: Some(argo("Progressing")),
                    failure: failed(Rollout),
                    phases: phases(&[Publish, Argocd, Rollout]),
                    ..Default::default()
                },
                DeployResult::Failed,
                Rollout,
                true,
                true,
                true,
                None,
            ),
            (
                "health fails",
                RunReport {
                    publish: Some(published(true, false)),
                    verify: Some(argo("Healthy")),
                    failure: failed(Health),
                    phases: phases(&[Publish, Argocd, Health]),
                    ..Default::default()
                },
                DeployResult::Failed,
                Health,
                true,
                true,
                true,
                None,
            ),
            (
                "rolled back, healthy",
                RunReport {
                    publish: Some(published(true, false)),
                    verify: Some(crate::verify::Outcome::default()),
                    failure: failed(Argocd),
                    rollback: rollback(Ok(true)),
                    phases: phases(&[Publish, Argocd, Rollback]),
                    ..Default::default()
                },
                DeployResult::RolledBack,
                Argocd,
                true,
                true,
                false,
                Some(true),
            ),
            (
                "rolled back, not healthy",
                RunReport {
                    publish: Some(published(true, false)),
                    verify: Some(crate::verify::Outcome::default()),
                    failure: failed(Argocd),
                    rollback: rollback(Ok(false)),
                    phases: phases(&[Publish, Argocd, Rollback]),
                    ..Default::default()
                },
                DeployResult::RolledBack,
                Argocd,
                true,
                true,
                false,
                Some(false),
            ),
            (
                "rollback failed",
                RunReport {
                    publish: Some(published(true, false)),
                    verify: Some(crate::verify::Outcome::default()),
                    failure: failed(Argocd),
                    rollback: rollback(Err("cannot commit")),
                    phases: phases(&[Publish, Argocd, Rollback]),
                    ..Default::default()
                },
                DeployResult::Failed,
                Argocd,
                true,
                true,
                false,
                Some(false),
            ),
        ];
        for (name, run, result, phase, changed, commit, synced, rollback_passed) in cases {
            let o = outputs(&run, Duration::from_millis(4250));
            assert_eq!(o.result, result, "{name}");
            assert_eq!(o.phase, phase, "{name}");
            assert_eq!(o.changed, changed, "{name}");
            assert_eq!(o.commit_sha.is_some(), commit, "{name}");
            assert_eq!(o.synced_revision.is_some(), synced, "{name}");
            assert_eq!(o.duration_seconds, 4.3, "{name}");
            if commit {
                assert_eq!(o.previous_tag.as_deref(), Some("1.0.0"), "{name}");
            }
            let s = summary(&run, &o, &Links::default());
            assert_eq!(s.phases.len(), run.phases.len(), "{name}");
            let row = |p: Phase| s.phases.iter().find(|r| r.phase == p).map(|r| r.passed);
            if let Some(err) = run.failure.as_ref().filter(|e| !e.invalid_input) {
                assert_eq!(row(err.phase), Some(false), "{name}: the failing phase");
                assert!(s.error.as_deref().unwrap().contains("broke"), "{name}");
            } else {
                assert!(s.phases.iter().all(|r| r.passed), "{name}");
            }
            assert_eq!(row(Rollback), rollback_passed, "{name}");
            assert_eq!(
                s.changes.len(),
                usize::from(changed || name == "dry run"),
                "{name}"
            );
            let (state, description) = status_of(&o);
            match result {
                DeployResult::Success => assert_eq!(state, "success", "{name}"),
                _ => {
                    assert_eq!(state, "failure", "{name}");
                    assert!(
                        description.starts_with(&format!("failed in {phase}")),
                        "{name}"
                    );
                }
            }
            if result == DeployResult::RolledBack {
                assert!(description.ends_with("rolled back"), "{name}");
            }
        }
    }

    #[test]
    fn argocd_links_follow_the_ui_routes() {
        let several = Links::from_inputs(Some("argocd.example.com"), Some("web-eu, web-us"), None);
        assert_eq!(several.argocd_app, None);
        assert_eq!(
            several.argocd_apps.as_deref(),
            Some("https://argocd.example.com/applications/")
        );
        assert_eq!(
            Links::from_inputs(Some("argocd.example.com"), Some("auto"), None).argocd_app,
            None
        );
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
