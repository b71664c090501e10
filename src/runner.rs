//! CI runner integration: detecting GitHub, Gitea and Forgejo runners, workflow commands, the
//! `$GITHUB_OUTPUT` file, the typed [`Outputs`] of a deploy and the Markdown step summary.
//!
//! Owns everything that depends on the runner's conventions (`docs/research/gitea.md`, Part A): which
//! environment variables name the file commands (`GITHUB_*`, with the `GITEA_*` / `FORGEJO_*` aliases as
//! fallbacks), how workflow-command data is escaped, and the heredoc syntax of multi-line outputs. It
//! never decides anything about the deploy: the pipeline fills [`Outputs`] and [`Summary`], this module
//! renders them. Progress lines and the `::group::` per phase are written by [`crate::report::Report`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::Phase;
use crate::secret::Masker;

/// The names of the action's outputs, in the order they are written (and listed in `action.yml`).
pub const OUTPUT_NAMES: [&str; 16] = [
    "changed",
    "commit_sha",
    "commit_url",
    "previous_tag",
    "pr_number",
    "pr_url",
    "pr_branch",
    "merge_commit_sha",
    "synced_revision",
    "health",
    "apps",
    "rollout",
    "phase",
    "result",
    "error",
    "duration_seconds",
];

/// Errors of the runner integration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The outputs file named by `GITHUB_OUTPUT` could not be written.
    #[error("cannot write the step outputs to {}", path.display())]
    WriteOutputs {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The summary file named by `GITHUB_STEP_SUMMARY` could not be written.
    #[error("cannot write the step summary to {}", path.display())]
    WriteSummary {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Which kind of runner the process runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerKind {
    /// GitHub Actions (or any runner that sets only `GITHUB_ACTIONS=true`, such as nektos/act).
    Github,
    /// Gitea's runner (`GITEA_ACTIONS=true`).
    Gitea,
    /// Forgejo's runner (`FORGEJO_ACTIONS=true`; it also sets `GITEA_ACTIONS=true`).
    Forgejo,
}

impl RunnerKind {
    /// The runner's name as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerKind::Github => "github",
            RunnerKind::Gitea => "gitea",
            RunnerKind::Forgejo => "forgejo",
        }
    }
}

/// What the runner tells us about the pipeline run (the `GITHUB_*` variables Gitea, Forgejo and GitHub set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerEnv {
    /// `GITHUB_SERVER_URL`.
    pub server_url: Option<String>,
    /// `GITHUB_REPOSITORY`.
    pub repository: Option<String>,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_RUN_NUMBER`: the per-repository run index Forgejo's web routes use.
    pub run_number: Option<String>,
    /// True inside Forgejo's runner (`FORGEJO_ACTIONS=true`).
    pub forgejo: bool,
    /// True inside Gitea's runner (`GITEA_ACTIONS=true`).
    pub gitea: bool,
    /// `GITHUB_API_URL` inside GitHub's own runner (Gitea's and Forgejo's point it at `/api/v1`).
    pub github_api_url: Option<String>,
    /// The token the runner put in the environment (`GITHUB_TOKEN`, `GITEA_TOKEN`, `FORGEJO_TOKEN`, the
    /// first one set), read only inside a runner: the `token` input's fallback when a step runs the
    /// image with `uses: docker://…`, which bypasses action.yml and its `${{ github.token }}` default.
    pub token: Option<String>,
}

impl RunnerEnv {
    /// Reads the variables from the process environment; empty values count as absent.
    pub fn from_process() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables from any lookup (for tests); empty values count as absent.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let in_runner = ["GITHUB_ACTIONS", "GITEA_ACTIONS", "FORGEJO_ACTIONS"]
            .iter()
            .any(|k| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true")));
        RunnerEnv {
            server_url: get("GITHUB_SERVER_URL"),
            repository: get("GITHUB_REPOSITORY"),
            sha: get("GITHUB_SHA"),
            run_id: get("GITHUB_RUN_ID"),
            run_number: get("GITHUB_RUN_NUMBER"),
            forgejo: get("FORGEJO_ACTIONS").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            gitea: get("GITEA_ACTIONS").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            github_api_url: (in_runner
                && ["GITEA_ACTIONS", "FORGEJO_ACTIONS"]
                    .iter()
                    .all(|k| !get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"))))
            .then(|| get("GITHUB_API_URL"))
            .flatten(),
            token: in_runner
                .then(|| {
                    ["GITHUB_TOKEN", "GITEA_TOKEN", "FORGEJO_TOKEN"]
                        .iter()
                        .find_map(|k| get(k))
                })
                .flatten(),
        }
    }

    /// The run's web URL, when the runner told us enough to build it. Forgejo routes runs by their
    /// per-repository number (`GITHUB_RUN_NUMBER`, models/actions/run.go `Link`), GitHub and Gitea ≥
    /// 1.26 by the global id (`GITHUB_RUN_ID`; go-gitea/gitea#36842). Gitea ≤ 1.25 used the number
    /// too: [`RunnerEnv::run_url_by_number`] is that link, chosen once the server's version is known.
    pub fn run_url(&self) -> Option<String> {
        let run = if self.forgejo {
            self.run_number.as_deref()?
        } else {
            self.run_id.as_deref()?
        };
        self.run_link(run)
    }

    /// On a Gitea runner: the run's link by number, right for Gitea ≤ 1.25 (`None` elsewhere).
    pub fn run_url_by_number(&self) -> Option<String> {
        if !self.gitea || self.forgejo {
            return None;
        }
        self.run_link(self.run_number.as_deref()?)
    }

    fn run_link(&self, run: &str) -> Option<String> {
        Some(format!(
            "{}/{}/actions/runs/{run}",
            self.server_url.as_deref()?.trim_end_matches('/'),
            self.repository.as_deref()?,
        ))
    }
}

/// The CI runner the process runs in, with the paths of its file commands.
///
/// Every path comes from the environment, never from a hard-coded `/github/...`: Gitea's runner uses
/// `/workspace/<owner>/<repo>` and `/var/run/act/workflow/...` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    /// The runner's kind.
    pub kind: RunnerKind,
    /// `GITHUB_OUTPUT` (or `GITEA_OUTPUT` / `FORGEJO_OUTPUT`): where outputs are appended.
    pub output_file: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY` (or its aliases): where the Markdown summary is appended.
    pub summary_file: Option<PathBuf>,
    /// `GITHUB_WORKSPACE`: the checked-out source repository (the step's working directory).
    pub workspace: Option<PathBuf>,
    /// `GITHUB_API_URL`: its API (`<server>/api/v1` on Gitea and Forgejo).
    pub api_url: Option<String>,
    /// What the runner says about the run (server, repository, commit, run id, token), read by
    /// [`RunnerEnv::from_lookup`], the one reader of those variables.
    pub env: RunnerEnv,
}

impl Runner {
    /// Detects the runner from the process environment; `None` outside a runner.
    pub fn detect() -> Option<Runner> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Detects the runner from any variable lookup (for tests). A runner is recognised by
    /// `GITHUB_ACTIONS=true`, or by `GITEA_ACTIONS=true` / `FORGEJO_ACTIONS=true` alone.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Option<Runner> {
        let is_true = |name: &str| var(name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let kind = if is_true("FORGEJO_ACTIONS") {
            RunnerKind::Forgejo
        } else if is_true("GITEA_ACTIONS") {
            RunnerKind::Gitea
        } else if is_true("GITHUB_ACTIONS") {
            RunnerKind::Github
        } else {
            return None;
        };
        let non_empty = |name: &str| var(name).filter(|v| !v.is_empty());
        // The GITHUB_* names are set by every runner; the aliases only help if a job's env cleared them.
        let file = |suffix: &str| {
            ["GITHUB_", "GITEA_", "FORGEJO_"]
                .iter()
                .find_map(|prefix| non_empty(&format!("{prefix}{suffix}")))
                .map(PathBuf::from)
        };
        Some(Runner {
            kind,
            output_file: file("OUTPUT"),
            summary_file: file("STEP_SUMMARY"),
            workspace: non_empty("GITHUB_WORKSPACE").map(PathBuf::from),
            api_url: non_empty("GITHUB_API_URL"),
            env: RunnerEnv::from_lookup(&var),
        })
    }

    /// Appends the outputs to the outputs file, if the runner named one.
    ///
    /// # Errors
    /// [`Error::WriteOutputs`] when the file cannot be opened or written.
    pub fn write_outputs(&self, outputs: &Outputs, masker: &Masker) -> Result<(), Error> {
        let Some(path) = &self.output_file else {
            return Ok(());
        };
        let text = render_outputs(outputs, masker);
        append(path, &text).map_err(|source| Error::WriteOutputs {
            path: path.clone(),
            source,
        })
    }

    /// Appends the Markdown summary to the summary file, if the runner named one.
    ///
    /// # Errors
    /// [`Error::WriteSummary`] when the file cannot be opened or written.
    pub fn write_summary(&self, summary: &Summary, masker: &Masker) -> Result<(), Error> {
        let Some(path) = &self.summary_file else {
            return Ok(());
        };
        let text = masker.mask(&summary.to_markdown());
        append(path, &text).map_err(|source| Error::WriteSummary {
            path: path.clone(),
            source,
        })
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// How a deploy ended, as the `result` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployResult {
    /// Every phase passed (also when nothing had to change: see `changed`).
    Success,
    /// A phase failed and nothing was rolled back (or rollback was off).
    Failed,
    /// A phase after publish failed and the previous images were committed back.
    RolledBack,
    /// The inputs were rejected before anything was written.
    InvalidInput,
}

impl DeployResult {
    /// The value of the `result` output.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployResult::Success => "success",
            DeployResult::Failed => "failed",
            DeployResult::RolledBack => "rolled_back",
            DeployResult::InvalidInput => "invalid_input",
        }
    }
}

/// The action's outputs, exactly the ones `action.yml` declares ([`OUTPUT_NAMES`]).
///
/// The pipeline fills this in from the steps' outcomes; fields a phase that did not run would have set
/// stay `None` and are written as empty strings (and `null` in `--output json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outputs {
    /// Whether a commit was pushed (false when the images were already set).
    pub changed: bool,
    /// The deploy commit's full SHA.
    pub commit_sha: Option<String>,
    /// A link to the deploy commit on the forge.
    pub commit_url: Option<String>,
    /// The tag the (first) image had before the deploy, for a manual rollback.
    pub previous_tag: Option<String>,
    /// Pull-request mode: the pull request's number.
    pub pr_number: Option<u64>,
    /// Pull-request mode: its web URL.
    pub pr_url: Option<String>,
    /// Pull-request mode: its head branch.
    pub pr_branch: Option<String>,
    /// Pull-request mode: the commit its merge made on the base (what was verified).
    pub merge_commit_sha: Option<String>,
    /// The revision Argo CD reported as synced.
    pub synced_revision: Option<String>,
    /// The last health seen: Argo CD's health status, or the HTTP check's verdict.
    pub health: Option<String>,
    /// With several Argo CD apps: one JSON object per app (`app`, `result`, `synced_revision`,
    /// `health`, `error`), as a JSON array.
    pub apps: Option<String>,
    /// The workloads the rollout phase proved, one per line (`rollout/web: 4/4 updated, 4
    /// available`; a Rollout left as a canary by `rollout_pause: succeed` says `not promoted`).
    pub rollout: Option<String>,
    /// The phase the deploy ended in: the failing phase, or the last phase run on success.
    pub phase: Phase,
    /// How the deploy ended.
    pub result: DeployResult,
    /// Why it failed (the phase and the error's chain); unset on success.
    pub error: Option<String>,
    /// Wall-clock duration of the whole command, in seconds (one decimal).
    pub duration_seconds: f64,
}

impl Outputs {
    /// Empty outputs for a deploy that ended in `phase` with `result` (every optional field unset).
    pub fn new(phase: Phase, result: DeployResult, duration: Duration) -> Self {
        Outputs {
            changed: false,
            commit_sha: None,
            commit_url: None,
            previous_tag: None,
            pr_number: None,
            pr_url: None,
            pr_branch: None,
            merge_commit_sha: None,
            synced_revision: None,
            health: None,
            apps: None,
            rollout: None,
            phase,
            result,
            error: None,
            duration_seconds: round_tenths(duration),
        }
    }

    /// The outputs as `(name, value)` pairs in [`OUTPUT_NAMES`] order, unset values as `""`.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            ("changed", self.changed.to_string()),
            ("commit_sha", opt(&self.commit_sha)),
            ("commit_url", opt(&self.commit_url)),
            ("previous_tag", opt(&self.previous_tag)),
            (
                "pr_number",
                self.pr_number.map(|n| n.to_string()).unwrap_or_default(),
            ),
            ("pr_url", opt(&self.pr_url)),
            ("pr_branch", opt(&self.pr_branch)),
            ("merge_commit_sha", opt(&self.merge_commit_sha)),
            ("synced_revision", opt(&self.synced_revision)),
            ("health", opt(&self.health)),
            ("apps", opt(&self.apps)),
            ("rollout", opt(&self.rollout)),
            ("phase", self.phase.as_str().to_owned()),
            ("result", self.result.as_str().to_owned()),
            ("error", opt(&self.error)),
            ("duration_seconds", format!("{:.1}", self.duration_seconds)),
        ]
    }

    /// The outputs as one JSON object (for `--output json`), masked.
    pub fn to_json(&self, masker: &Masker) -> String {
        let json = serde_json::to_string(self).expect("outputs serialise");
        masker.mask(&json)
    }
}

fn round_tenths(d: Duration) -> f64 {
    (d.as_secs_f64() * 10.0).round() / 10.0
}

/// Renders outputs in the file-command syntax: `name=value` for single-line values, the heredoc form
/// `name<<DELIM` … `DELIM` for multi-line ones, with a random delimiter that does not occur in the value.
pub fn render_outputs(outputs: &Outputs, masker: &Masker) -> String {
    let mut out = String::new();
    for (name, value) in outputs.pairs() {
        push_output(&mut out, name, &masker.mask(&value));
    }
    out
}

/// Appends one output in file-command syntax to `out`.
pub fn push_output(out: &mut String, name: &str, value: &str) {
    if value.contains('\n') || value.contains('\r') {
        let delimiter = loop {
            let d = format!(
                "ghadelimiter_{:016x}{:016x}",
                rand::random::<u64>(),
                rand::random::<u64>()
            );
            if !value.contains(&d) {
                break d;
            }
        };
        let _ = write!(out, "{name}<<{delimiter}\n{value}\n{delimiter}\n");
    } else {
        let _ = writeln!(out, "{name}={value}");
    }
}

/// Escapes the data part of a workflow command (`::error::<data>`): `%`, CR and LF.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command property value (`title=<value>`): as data, plus `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// The `::add-mask::` lines for the forms of a secret. Multi-line forms (a kubeconfig) are left out:
/// runners match masks within one log line, and announcing each line would mask ordinary words such as
/// `clusters:` in every later step; the credentials inside are registered as secrets of their own.
///
/// A form holding `%` is announced twice: escaped (`%25`), which GitHub's runner and Gitea's runner
/// ≥ v3.1 unescape, and as it is, because Forgejo's runner (v12) and older Gitea runners register the
/// value literally (docs/research/field-runner.md §4). The extra mask is harmless where the first one works.
pub fn add_mask_commands(forms: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for form in forms.iter().filter(|f| !f.contains(['\n', '\r'])) {
        for value in [escape_data(form), form.clone()] {
            let line = format!("::add-mask::{value}");
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines
}

/// The `::error title=…::message` line naming the failed phase.
pub fn error_command(phase: Phase, message: &str) -> String {
    format!(
        "::error title={}::{}",
        escape_property(&format!("gitops-deploy: {phase} failed")),
        escape_data(message)
    )
}

/// The outcome of one phase, as a row of the summary's table.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRow {
    /// The phase.
    pub phase: Phase,
    /// How long it ran.
    pub duration: Duration,
    /// Whether it passed.
    pub passed: bool,
}

/// One Argo CD app of a deploy to several, as a row of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRow {
    /// The app.
    pub app: String,
    /// Its page in the Argo CD UI.
    pub link: Option<String>,
    /// True when it synced our commit, is healthy, and (when checked) rolled out.
    pub passed: bool,
    /// What it reached (`Synced Healthy at abc1234`), or why it failed.
    pub detail: String,
    /// Its time.
    pub duration: Duration,
}

/// One image change, as a line of the summary: `file` `name`: `old` → `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChange {
    /// The kustomization file.
    pub file: String,
    /// The image name.
    pub image: String,
    /// The reference before the deploy (`None` if the entry was added).
    pub old: Option<String>,
    /// The reference after the deploy.
    pub new: String,
}

/// Everything the Markdown step summary shows. The pipeline fills it in; [`Summary::to_markdown`] renders.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The outputs (result, phase, duration, commit).
    pub outputs: Outputs,
    /// The phases that ran, in order.
    pub phases: Vec<PhaseRow>,
    /// The image changes, old → new.
    pub changes: Vec<ImageChange>,
    /// The Argo CD application's name and a link to it in the Argo CD UI.
    pub argocd_app: Option<(String, String)>,
    /// With several apps: one row per app.
    pub apps: Vec<AppRow>,
    /// The error message when the deploy failed (masked on write).
    pub error: Option<String>,
}

impl Summary {
    /// Renders the summary as GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let o = &self.outputs;
        let (icon, verdict) = match o.result {
            DeployResult::Success if o.changed => ("✅", "deployed".to_owned()),
            DeployResult::Success => ("✅", "already up to date".to_owned()),
            DeployResult::Failed => ("❌", format!("failed in {}", o.phase)),
            DeployResult::RolledBack => ("↩️", format!("failed in {}, rolled back", o.phase)),
            DeployResult::InvalidInput => ("⛔", "invalid input, nothing written".to_owned()),
        };
        let mut md = String::new();
        let _ = writeln!(
            md,
            "### {icon} gitops-deploy: {verdict} ({:.1} s)\n",
            o.duration_seconds
        );
        if !self.changes.is_empty() {
            md.push_str("| file | image | old | new |\n|---|---|---|---|\n");
            for c in &self.changes {
                let old = c.old.as_deref().map(code).unwrap_or_else(|| "—".into());
                let _ = writeln!(
                    md,
                    "| {} | {} | {} → | {} |",
                    code(&c.file),
                    code(&c.image),
                    old,
                    code(&c.new)
                );
            }
            md.push('\n');
        }
        if !self.apps.is_empty() {
            md.push_str("| app | result | detail | duration |\n|---|---|---|---|\n");
            for row in &self.apps {
                let mark = if row.passed {
                    "✅ passed"
                } else {
                    "❌ failed"
                };
                let app = match &row.link {
                    Some(url) => format!("[{}]({url})", code(&row.app)),
                    None => code(&row.app),
                };
                let _ = writeln!(
                    md,
                    "| {app} | {mark} | {} | {:.1} s |",
                    row.detail.replace('|', "\\|").replace('\n', " "),
                    row.duration.as_secs_f64()
                );
            }
            md.push('\n');
        }
        if !self.phases.is_empty() {
            md.push_str("| phase | result | duration |\n|---|---|---|\n");
            for row in &self.phases {
                let mark = if row.passed {
                    "✅ passed"
                } else {
                    "❌ failed"
                };
                let _ = writeln!(
                    md,
                    "| {} | {mark} | {:.1} s |",
                    row.phase,
                    row.duration.as_secs_f64()
                );
            }
            md.push('\n');
        }
        if let (Some(n), Some(url)) = (o.pr_number, &o.pr_url) {
            let merged = match &o.merge_commit_sha {
                Some(sha) => format!(", merged as `{}`", short(sha)),
                None => ", not merged".to_owned(),
            };
            let _ = writeln!(md, "- Pull request: [#{n}]({url}){merged}");
        }
        match (&o.commit_sha, &o.commit_url) {
            (Some(sha), Some(url)) => {
                let _ = writeln!(md, "- Commit: [`{}`]({url})", short(sha));
            }
            (Some(sha), None) => {
                let _ = writeln!(md, "- Commit: `{}`", short(sha));
            }
            _ => {}
        }
        if let Some((name, url)) = &self.argocd_app {
            let _ = writeln!(md, "- Argo CD: [{}]({url})", table_safe(name));
        }
        if let Some(rev) = &o.synced_revision {
            let _ = writeln!(md, "- Synced revision: `{}`", short(rev));
        }
        if let Some(health) = &o.health {
            let _ = writeln!(md, "- Health: {}", table_safe(health));
        }
        if let Some(error) = &self.error {
            let _ = writeln!(md, "\n```text\n{}\n```", error.replace("```", "'''"));
        }
        md.push('\n');
        md
    }
}

use crate::text::short;

/// Inline code that survives a Markdown table cell.
fn code(text: &str) -> String {
    format!("`{}`", table_safe(text).replace('`', "'"))
}

fn table_safe(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn detects_runner_kinds_and_their_paths() {
        assert_eq!(Runner::from_lookup(lookup(&[])), None);
        assert_eq!(
            Runner::from_lookup(lookup(&[("GITHUB_ACTIONS", "false")])),
            None
        );
        let gh = Runner::from_lookup(lookup(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", "/home/runner/out"),
            ("GITHUB_WORKSPACE", "/github/workspace"),
        ]))
        .unwrap();
        assert_eq!(gh.kind, RunnerKind::Github);
        assert_eq!(gh.output_file, Some(PathBuf::from("/home/runner/out")));

        let gitea = Runner::from_lookup(lookup(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITEA_ACTIONS", "true"),
            ("GITEA_OUTPUT", "/var/run/act/workflow/outputcmd.txt"),
            (
                "GITHUB_STEP_SUMMARY",
                "/var/run/act/workflow/step-summary-1.md",
            ),
            ("GITHUB_WORKSPACE", "/workspace/ops/web"),
        ]))
        .unwrap();
        assert_eq!(gitea.kind, RunnerKind::Gitea);
        assert_eq!(
            gitea.output_file,
            Some(PathBuf::from("/var/run/act/workflow/outputcmd.txt"))
        );
        assert_eq!(gitea.workspace, Some(PathBuf::from("/workspace/ops/web")));

        let forgejo = Runner::from_lookup(lookup(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITEA_ACTIONS", "true"),
            ("FORGEJO_ACTIONS", "true"),
            ("FORGEJO_STEP_SUMMARY", "/var/run/act/workflow/SUMMARY.md"),
        ]))
        .unwrap();
        assert_eq!(forgejo.kind, RunnerKind::Forgejo);
        assert_eq!(
            forgejo.summary_file,
            Some(PathBuf::from("/var/run/act/workflow/SUMMARY.md"))
        );
        assert_eq!(forgejo.output_file, None);
    }

    #[test]
    fn escapes_workflow_command_data_and_properties() {
        assert_eq!(escape_data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(escape_property("a: b, c%"), "a%3A b%2C c%25");
        assert_eq!(
            error_command(Phase::Argocd, "timed out\nlast: Progressing"),
            "::error title=gitops-deploy%3A argocd failed::timed out%0Alast: Progressing"
        );
    }

    #[test]
    fn outputs_use_the_declared_names_in_order() {
        let outputs = Outputs::new(
            Phase::Health,
            DeployResult::Success,
            Duration::from_millis(12_345),
        );
        let names: Vec<_> = outputs.pairs().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, OUTPUT_NAMES);
        let text = render_outputs(&outputs, &Masker::new());
        assert!(text.starts_with("changed=false\ncommit_sha=\n"), "{text}");
        assert!(
            text.ends_with("phase=health\nresult=success\nerror=\nduration_seconds=12.3\n"),
            "{text}"
        );
    }

    #[test]
    fn multi_line_values_use_a_delimiter_absent_from_the_value() {
        let mut out = String::new();
        push_output(&mut out, "health", "Degraded\nghadelimiter_x");
        let mut lines = out.lines();
        let head = lines.next().unwrap();
        let delim = head.strip_prefix("health<<").unwrap();
        assert!(delim.starts_with("ghadelimiter_") && delim.len() > 20);
        assert_eq!(lines.next(), Some("Degraded"));
        assert_eq!(lines.next(), Some("ghadelimiter_x"));
        assert_eq!(lines.next(), Some(delim));
        assert_eq!(lines.next(), None);
        // Two renders never share a delimiter, so a value cannot be crafted to close it.
        let mut again = String::new();
        push_output(&mut again, "health", "a\nb");
        assert_ne!(again.lines().next().unwrap(), head);
    }

    #[test]
    fn outputs_and_summary_are_masked() {
        let masker = Masker::new();
        masker.add(&Secret::new("tok-123456"));
        let mut outputs = Outputs::new(Phase::Publish, DeployResult::Failed, Duration::ZERO);
        outputs.commit_url = Some("https://x/tok-123456".into());
        assert!(render_outputs(&outputs, &masker).contains("commit_url=https://x/***\n"));
        assert_eq!(
            outputs.to_json(&masker),
            r#"{"changed":false,"commit_sha":null,"commit_url":"https://x/***","previous_tag":null,"pr_number":null,"pr_url":null,"pr_branch":null,"merge_commit_sha":null,"synced_revision":null,"health":null,"apps":null,"rollout":null,"phase":"publish","result":"failed","error":null,"duration_seconds":0.0}"#
        );
    }

    #[test]
    fn add_mask_commands_cover_every_form_and_line() {
        let masker = Masker::new();
        let forms = masker.add(&Secret::new("abcd%efgh"));
        let lines = add_mask_commands(&forms);
        assert_eq!(lines[0], "::add-mask::abcd%25efgh");
        // docs/research/field-runner.md ranked #5: also literal, for runners that do not unescape mask values.
        assert_eq!(lines[1], "::add-mask::abcd%efgh");
        for form in &forms {
            assert!(
                lines.contains(&format!("::add-mask::{form}")),
                "{form}: {lines:?}"
            );
            assert!(
                lines.contains(&format!("::add-mask::{}", escape_data(form))),
                "{form}"
            );
        }
        let multi = add_mask_commands(&["apiVersion: v1\nclusters:".to_owned(), "b64".to_owned()]);
        assert_eq!(multi, ["::add-mask::b64"]);
    }

    #[test]
    fn summary_shows_phases_change_commit_and_app() {
        let mut outputs =
            Outputs::new(Phase::Health, DeployResult::Success, Duration::from_secs(4));
        outputs.changed = true;
        outputs.commit_sha = Some("0123456789abcdef0123".into());
        outputs.commit_url = Some("http://gitea/demo/gitops/commit/0123456789abcdef0123".into());
        let summary = Summary {
            outputs,
            apps: vec![
                AppRow {
                    link: Some("http://argo/applications/web-eu".into()),
                    app: "web-eu".into(),
                    passed: true,
                    detail: "Synced Healthy at 4d5e6f7".into(),
                    duration: Duration::from_millis(1900),
                },
                AppRow {
                    link: None,
                    app: "web-us".into(),
                    passed: false,
                    detail: "health Degraded | for 30s".into(),
                    duration: Duration::from_millis(30500),
                },
            ],
            phases: vec![
                PhaseRow {
                    phase: Phase::Publish,
                    duration: Duration::from_millis(300),
                    passed: true,
                },
                PhaseRow {
                    phase: Phase::Argocd,
                    duration: Duration::from_millis(2100),
                    passed: true,
                },
            ],
            changes: vec![ImageChange {
                file: "apps/web/overlays/prod/kustomization.yaml".into(),
                image: "registry.example.com/demo/web".into(),
                old: Some("1.0.0".into()),
                new: "1.1.0".into(),
            }],
            argocd_app: Some((
                "web-prod".into(),
                "http://argo/applications/web-prod".into(),
            )),
            error: None,
        };
        let md = summary.to_markdown();
        assert!(
            md.starts_with("### ✅ gitops-deploy: deployed (4.0 s)\n"),
            "{md}"
        );
        assert!(md.contains("| `apps/web/overlays/prod/kustomization.yaml` | `registry.example.com/demo/web` | `1.0.0` → | `1.1.0` |"), "{md}");
        assert!(
            md.contains("| publish | ✅ passed | 0.3 s |\n| argocd | ✅ passed | 2.1 s |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| app | result | detail | duration |\n|---|---|---|---|\n\
                 | [`web-eu`](http://argo/applications/web-eu) | ✅ passed | Synced Healthy at 4d5e6f7 | 1.9 s |\n\
                 | `web-us` | ❌ failed | health Degraded \\| for 30s | 30.5 s |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "- Commit: [`0123456`](http://gitea/demo/gitops/commit/0123456789abcdef0123)"
            ),
            "{md}"
        );
        assert!(
            md.contains("- Argo CD: [web-prod](http://argo/applications/web-prod)"),
            "{md}"
        );
    }
}
