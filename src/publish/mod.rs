//! The publish step: write the image change to the GitOps repository as one commit, safely.
//!
//! Inputs become a typed [`Config`] ([`Config::from_args`] reports every problem at once, before any network
//! or disk access). [`run`] then reads the kustomization files at the branch head, applies the edit with
//! [`crate::edit::set_images`], and commits every changed file in one commit through one of two transports:
//!
//! - **api** (Gitea/Forgejo): `POST /repos/{o}/{r}/contents` with each file's blob SHA as the
//!   optimistic-concurrency guard; no clone and no git binary.
//! - **git** (any host): a minimal sparse clone, commit, `git push origin HEAD:<branch>`.
//!
//! Losing a race (a stale SHA, a rejected push) is retried by re-reading and re-applying the edit, never by
//! replaying a diff, with jittered exponential backoff bounded by attempts and time. Because neither a POST
//! nor a push is idempotent, after an ambiguous failure (timeout, reset, 5xx) the step first looks for its
//! own commit, recognised by the unique `Deploy-Id:` trailer (api) or by its SHA (git), before writing
//! again: a write that landed despite an error is never made twice.
//!
//! When every file already holds the requested values no commit is made and the outcome reports the
//! current head. A dry run reads, edits in memory and returns the diffs and the message; it writes nothing.
//! This module never prints: progress goes through [`Report`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use crate::edit::{self, ImageSetting};
use crate::error::Phase;
use crate::forge::{git, gitea};
use crate::report::Report;
use crate::retry::{Deadline, RetryPolicy};
use crate::secret::Secret;

/// Name of the default author and committer.
pub const DEFAULT_AUTHOR_NAME: &str = "gitops-deploy";
/// E-mail of the default author and committer (a reserved domain: it never receives mail).
pub const DEFAULT_AUTHOR_EMAIL: &str = "gitops-deploy@noreply.invalid";
/// The default commit message template; see [`PLACEHOLDERS`].
pub const DEFAULT_MESSAGE: &str = "deploy {image} {new} to {paths}\n\n{image}: {old} -> {new}\n\
source: {source_repo}@{source_sha}\nrun: {run_url}\n\n[skip ci]";
/// The trailer that identifies a run's commit; it is appended to every message.
pub const DEPLOY_ID_TRAILER: &str = "Deploy-Id";
/// Placeholders of the commit message template, with what each stands for. `{{` and `}}` are literal
/// braces. `{source_repo}`, `{source_sha}` and `{run_url}` are unavailable outside a runner: a line whose
/// placeholders are all unavailable is left out.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("image", "the image name (the `image` input)"),
    (
        "old",
        "the previous values, e.g. `1.0.0` (`none` when the entry was missing)",
    ),
    (
        "new",
        "the new value, e.g. `1.2.3`, `1.2.3@sha256:…` or `other/name:1.2.3`",
    ),
    ("paths", "the kustomization directories, comma-separated"),
    (
        "source_repo",
        "the repository that ran the pipeline (`$GITHUB_REPOSITORY`)",
    ),
    (
        "source_sha",
        "the commit that ran the pipeline (`$GITHUB_SHA`)",
    ),
    (
        "run_url",
        "the pipeline run (`$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`)",
    ),
];

/// How the change is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// The Gitea/Forgejo contents API.
    Api,
    /// git over HTTP(S).
    Git,
    /// `api` when `GET {server_url}/api/v1/version` answers like Gitea/Forgejo, else `git`.
    Auto,
}

impl Transport {
    /// The input's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Api => "api",
            Transport::Git => "git",
            Transport::Auto => "auto",
        }
    }
}

/// The raw publish inputs, as typed (empty strings already count as "not given" here).
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// `server_url`.
    pub server_url: Option<String>,
    /// `repository`: `owner/name` or a clone URL.
    pub repository: Option<String>,
    /// `branch`.
    pub branch: Option<String>,
    /// `path`: one or more directories, newline- or comma-separated (possibly in several values).
    pub path: Vec<String>,
    /// `image`.
    pub image: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
    /// `digest`.
    pub digest: Option<String>,
    /// `new_name`.
    pub new_name: Option<String>,
    /// `token`.
    pub token: Option<String>,
    /// `server_ca`: PEM text or a file path.
    pub server_ca: Option<String>,
    /// `transport`.
    pub transport: Option<String>,
    /// `commit_message`.
    pub commit_message: Option<String>,
    /// `author_name`.
    pub author_name: Option<String>,
    /// `author_email`.
    pub author_email: Option<String>,
    /// `dry_run`, parsed by the CLI's boolean grammar.
    pub dry_run: bool,
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

/// Author and committer of the commit.
pub type Identity = git::Identity;

/// The typed publish configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The forge's base URL (`https://gitea.example.com`, maybe with a sub-path).
    pub server_url: Url,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// Branch to commit on; `None` means the repository's default branch.
    pub branch: Option<String>,
    /// Kustomization directories (or files) relative to the repository root, without leading `./` or `/`.
    pub paths: Vec<String>,
    /// The image name as written in `images:`.
    pub image: String,
    /// What to write into each file.
    pub change: Change,
    /// The token; required unless dry-running.
    pub token: Option<Secret>,
    /// Private CAs trusted for the server (API and git), besides the public roots.
    pub server_ca: Option<crate::tls::ExtraRoots>,
    /// How to write.
    pub transport: Transport,
    /// Commit message template (see [`PLACEHOLDERS`]).
    pub message_template: String,
    /// Author and committer.
    pub author: Identity,
    /// Compute and show the change, write nothing.
    pub dry_run: bool,
    /// The source repository, for `{source_repo}`.
    pub source_repo: Option<String>,
    /// The source commit, for `{source_sha}`.
    pub source_sha: Option<String>,
    /// The run URL, for `{run_url}`.
    pub run_url: Option<String>,
    /// On a Gitea runner, the run URL by number: used instead of `run_url` when the server turns out
    /// to be Gitea ≤ 1.25 (or Forgejo), which route runs by number.
    pub run_url_by_number: Option<String>,
    /// Retry policy for reads and writes.
    pub retry: RetryPolicy,
    /// Time budget of the whole step.
    pub timeout: Duration,
    /// Time allowed for one HTTP request, or for a git transfer to stall, before it counts as failed
    /// (and is retried).
    pub request_timeout: Duration,
}

impl Config {
    /// Builds the configuration from raw inputs and the runner's environment, collecting every problem.
    /// No network or disk access.
    ///
    /// # Errors
    /// One message per problem, each naming the input and what is wrong.
    pub fn from_args(args: &Args, env: &RunnerEnv) -> Result<Config, Vec<String>> {
        let mut problems = Vec::new();
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };

        // Repository and server.
        let server_arg = given(&args.server_url).or_else(|| env.server_url.clone());
        let repo_arg = given(&args.repository).or_else(|| env.repository.clone());
        let mut server_url = None;
        let mut owner_name = None;
        match repo_arg.as_deref() {
            None => problems.push(
                "repository: required (`owner/name` or a clone URL; defaults to $GITHUB_REPOSITORY)".to_owned(),
            ),
            Some(repo) if repo.contains("://") => match parse_clone_url(repo) {
                Ok((base, owner, name)) => {
                    server_url = Some(base);
                    owner_name = Some((owner, name));
                }
                Err(why) => problems.push(format!("repository: {why}")),
            },
            Some(repo) => match repo.split_once('/') {
                Some((o, n)) if valid_segment(o) && valid_segment(n.trim_end_matches(".git")) => {
                    owner_name = Some((o.to_owned(), n.trim_end_matches(".git").to_owned()));
                }
                _ => problems.push(format!(
                    "repository: {repo:?} is neither `owner/name` nor a clone URL"
                )),
            },
        }
        // An explicit server_url wins over the one implied by a clone URL.
        match server_arg.as_deref() {
            Some(s) => match parse_server_url(s) {
                Ok(u) => server_url = Some(u),
                Err(why) => problems.push(format!("server_url: {why}")),
            },
            None if server_url.is_none() && owner_name.is_some() => problems.push(
                "server_url: required when `repository` is `owner/name` (defaults to $GITHUB_SERVER_URL)"
                    .to_owned(),
            ),
            None => {}
        }

        // Paths.
        let mut paths = Vec::new();
        for raw in args.path.iter().flat_map(|p| p.split(['\n', ','])) {
            let p = raw.trim();
            if p.is_empty() {
                continue;
            }
            match normalize_path(p) {
                Ok(n) if !paths.contains(&n) => paths.push(n),
                Ok(_) => {}
                Err(why) => problems.push(format!("path: {p:?} {why}")),
            }
        }
        if paths.is_empty() && problems.iter().all(|p| !p.starts_with("path:")) {
            problems.push("path: required (one or more kustomization directories, newline- or comma-separated)".to_owned());
        }

        // The image edit.
        let image = given(&args.image);
        let tag = given(&args.tag);
        let digest = given(&args.digest);
        let new_name = given(&args.new_name);
        let mut setting = None;
        match image.as_deref() {
            None => {
                problems.push("image: required (the image name as written in `images:`)".to_owned())
            }
            Some(_) if tag.is_none() && digest.is_none() && new_name.is_none() => problems.push(
                "tag: give `tag`, `digest` or `new_name` (nothing to change otherwise)".to_owned(),
            ),
            Some(name) => match ImageSetting::deploy(
                name,
                tag.as_deref(),
                digest.as_deref(),
                new_name.as_deref(),
            ) {
                Ok(s) => setting = Some(s),
                Err(e) => problems.push(format!("image: {}", crate_error_chain(&e))),
            },
        }
        let new_value = describe_new(new_name.as_deref(), tag.as_deref(), digest.as_deref());

        // Transport, message, author, flags.
        let transport = match given(&args.transport).as_deref() {
            None | Some("auto") => Transport::Auto,
            Some("api") => Transport::Api,
            Some("git") => Transport::Git,
            Some(other) => {
                problems.push(format!(
                    "transport: {other:?} is not one of `api`, `git`, `auto`"
                ));
                Transport::Auto
            }
        };
        let message_template = args
            .commit_message
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_MESSAGE.to_owned());
        if let Err(why) = check_template(&message_template) {
            problems.push(format!("commit_message: {why}"));
        }
        let author = Identity {
            name: given(&args.author_name).unwrap_or_else(|| DEFAULT_AUTHOR_NAME.to_owned()),
            email: given(&args.author_email).unwrap_or_else(|| DEFAULT_AUTHOR_EMAIL.to_owned()),
        };
        if author.name.contains(['<', '>', '\n']) {
            problems.push("author_name: must not contain `<`, `>` or a line break".to_owned());
        }
        if !author.email.contains('@') || author.email.contains(['<', '>', '\n', ' ']) {
            problems.push(format!(
                "author_email: {:?} is not an e-mail address",
                author.email
            ));
        }
        let dry_run = args.dry_run;
        let token = given(&args.token)
            .or_else(|| env.token.clone())
            .map(Secret::new);
        if token.is_none() && !dry_run {
            problems.push("token: required to publish (a token with write access to the repository; in a runner it defaults to $GITHUB_TOKEN, $GITEA_TOKEN or $FORGEJO_TOKEN; or set dry_run)".to_owned());
        }
        if token
            .as_ref()
            .is_some_and(|t| t.expose().chars().any(|c| c.is_control() || c == ' '))
        {
            problems.push("token: contains spaces or control characters".to_owned());
        }

        let server_ca = given(&args.server_ca).and_then(|ca| {
            crate::tls::ExtraRoots::from_input("server_ca", &ca)
                .map_err(|why| problems.push(why))
                .ok()
        });

        if !problems.is_empty() {
            return Err(problems);
        }
        let (owner, name) = owner_name.expect("checked above");
        Ok(Config {
            server_url: server_url.expect("checked above"),
            owner,
            name,
            branch: given(&args.branch),
            paths,
            image: image.expect("checked above"),
            change: Change::Set {
                setting: setting.expect("checked above"),
                shown: new_value,
            },
            token,
            server_ca,
            transport,
            message_template,
            author,
            dry_run,
            source_repo: env.repository.clone(),
            source_sha: env.sha.clone(),
            run_url: env.run_url(),
            run_url_by_number: env.run_url_by_number(),
            retry: RetryPolicy::PUBLISH,
            timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
        })
    }

    /// `owner/name`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The clone URL: `{server_url}/{owner}/{name}.git`, never with credentials.
    pub fn clone_url(&self) -> Url {
        let mut u = self.server_url.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{base}/{}/{}.git", self.owner, self.name));
        u
    }

    /// The web URL of a commit: `{server_url}/{owner}/{name}/commit/{sha}`.
    pub fn commit_url(&self, sha: &str) -> String {
        format!(
            "{}/{}/{}/commit/{sha}",
            self.server_url.as_str().trim_end_matches('/'),
            self.owner,
            self.name
        )
    }
}

/// The chain of an error on one line, for messages that embed it.
fn crate_error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Splits a clone URL into the server base URL, owner and name.
fn parse_clone_url(raw: &str) -> Result<(Url, String, String), String> {
    let url = Url::parse(raw).map_err(|_| "not a valid URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http(s) clone URLs are supported (got `{}`)",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL: it holds a credential.
        return Err(
            "the clone URL must not contain credentials; pass the token in `token`".to_owned(),
        );
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).collect())
        .unwrap_or_default();
    if segments.len() < 2 {
        return Err("a clone URL needs `/owner/name` in its path".to_owned());
    }
    let name = segments[segments.len() - 1].trim_end_matches(".git");
    let owner = segments[segments.len() - 2];
    if !valid_segment(owner) || !valid_segment(name) {
        return Err("a clone URL needs `/owner/name` in its path".to_owned());
    }
    let mut base = url.clone();
    base.set_path(&segments[..segments.len() - 2].join("/"));
    base.set_query(None);
    base.set_fragment(None);
    Ok((base, owner.to_owned(), name.to_owned()))
}

fn parse_server_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|_| format!("{raw:?} is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("{raw:?} is not an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; pass the token in `token`".to_owned());
    }
    Ok(url)
}

/// `./apps/web/` → `apps/web`; `.` stays `.`; absolute paths and `..` are refused.
fn normalize_path(p: &str) -> Result<String, &'static str> {
    if p.starts_with('/') || p.contains('\\') {
        return Err("must be relative to the repository root");
    }
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.contains(&"..") {
        return Err("must not contain `..`");
    }
    if parts.is_empty() {
        return Ok(".".to_owned());
    }
    Ok(parts.join("/"))
}

/// The new value as shown to people.
fn describe_new(new_name: Option<&str>, tag: Option<&str>, digest: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(n) = new_name {
        s.push_str(n);
    }
    if let Some(t) = tag {
        if !s.is_empty() {
            s.push(':');
        }
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(d);
    }
    s
}

/// Checks a template's placeholders.
fn check_template(template: &str) -> Result<(), String> {
    render(template, |name| {
        PLACEHOLDERS
            .iter()
            .any(|(n, _)| *n == name)
            .then(|| Some(String::new()))
    })
    .map(drop)
}

/// Renders a template line by line. `value(name)` is `None` for an unknown placeholder and `Some(None)`
/// for one whose value is unavailable (`{run_url}` outside a runner); a line whose placeholders are all
/// unavailable is left out, so the default message carries no `unknown` filler.
fn render(
    template: &str,
    value: impl Fn(&str) -> Option<Option<String>>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 64);
    for line in template.split_inclusive('\n') {
        let (mut used, mut missing) = (0, 0);
        let mut rendered = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(i) = rest.find(['{', '}']) {
            rendered.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(t) = tail.strip_prefix("{{") {
                rendered.push('{');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("}}") {
                rendered.push('}');
                rest = t;
            } else if let Some(t) = tail.strip_prefix('{') {
                let end = t
                    .find('}')
                    .ok_or("unclosed `{` (write `{{` for a literal brace)")?;
                let name = &t[..end];
                let v = value(name).ok_or_else(|| {
                    let known: Vec<String> = PLACEHOLDERS
                        .iter()
                        .map(|(n, _)| format!("{{{n}}}"))
                        .collect();
                    format!(
                        "unknown placeholder {{{name}}} (known: {})",
                        known.join(" ")
                    )
                })?;
                used += 1;
                match v {
                    Some(v) => rendered.push_str(&v),
                    None => missing += 1,
                }
                rest = &t[end + 1..];
            } else {
                return Err("unmatched `}` (write `}}` for a literal brace)".to_owned());
            }
        }
        rendered.push_str(rest);
        if used == 0 || missing < used {
            out.push_str(&rendered);
        }
    }
    Ok(out)
}

/// One image entry of one file: its value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageOutcome {
    /// The image name.
    pub name: String,
    /// The value before (`None` when the entry was added).
    pub previous: Option<String>,
    /// The value after.
    pub new: String,
    /// The fields before (`None` when the entry was added); a rollback writes them back.
    #[serde(skip)]
    pub previous_values: Option<edit::ImageValues>,
}

/// One kustomization file the step read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileOutcome {
    /// Path from the repository root.
    pub path: String,
    /// True when the file changed.
    pub changed: bool,
    /// The image entries the edit touched (also those that already held the value).
    pub images: Vec<ImageOutcome>,
    /// Unified diff of the change (empty when unchanged).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

/// What the transport actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsedTransport {
    /// The contents API.
    Api,
    /// git.
    Git,
}

/// The result of the publish step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// True when a commit was made (or, in a dry run, would be).
    pub changed: bool,
    /// The new commit, or the branch head when nothing changed (so verification runs on it).
    pub commit_sha: String,
    /// Web URL of that commit.
    pub commit_url: String,
    /// The branch written to.
    pub branch: String,
    /// The transport used.
    pub transport: UsedTransport,
    /// Per file, the touched images with their previous and new values.
    pub files: Vec<FileOutcome>,
    /// The commit message (with its `Deploy-Id` trailer); empty when nothing changed.
    pub message: String,
    /// Attempts used (1 when the first write succeeded).
    pub attempts: u32,
    /// Time the step took.
    pub elapsed: Duration,
    /// True for a dry run: nothing was written.
    pub dry_run: bool,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the token.
    #[error("the server refused the token (401); check that `token` is valid and not expired")]
    Unauthorized {
        /// The failed request.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The token may not write to the branch: read-only token, no write access, protected branch.
    #[error(
        "not allowed to write to branch {branch:?} of {repository}: {message} (a read-only token, or \
         a protected branch: those accept pushes only from users on their allowlist, which the \
         workflow's job token never is; set `token` to a personal access token of such a user with \
         `write:repository`)"
    )]
    Forbidden {
        /// `owner/name`.
        repository: String,
        /// The branch.
        branch: String,
        /// The server's explanation.
        message: String,
    },
    /// The repository does not exist or the token cannot see it.
    #[error("repository {repository} not found at {server} (or the token cannot read it)")]
    RepoNotFound {
        /// `owner/name`.
        repository: String,
        /// The server.
        server: String,
    },
    /// The branch does not exist.
    #[error("branch {branch:?} not found in {repository}")]
    BranchNotFound {
        /// `owner/name`.
        repository: String,
        /// The branch.
        branch: String,
    },
    /// A path does not exist on the branch.
    #[error("path {path:?} not found on branch {branch:?}")]
    PathNotFound {
        /// The path input.
        path: String,
        /// The branch.
        branch: String,
    },
    /// A directory has no kustomization file.
    #[error("path {path:?} has no kustomization file (looked for {})", edit::KUSTOMIZATION_FILE_NAMES.join(", "))]
    NoKustomization {
        /// The path input.
        path: String,
    },
    /// A kustomization file is not UTF-8 text or too large for the API.
    #[error("{path}: not a readable text file")]
    Unreadable {
        /// The file.
        path: String,
    },
    /// The edit could not be applied to a file.
    #[error("{path}: cannot set the image")]
    Edit {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: edit::EditError,
    },
    /// A request to the forge failed.
    #[error("{action}")]
    Api {
        /// What we were doing.
        action: String,
        /// The failed request.
        #[source]
        source: gitea::Error,
    },
    /// A git command failed.
    #[error("{action}")]
    Git {
        /// What we were doing.
        action: String,
        /// The failure.
        #[source]
        source: git::Error,
    },
    /// A value is longer than the Gitea API accepts (modules/structs/repo_file.go `MaxSize`).
    #[error(
        "{input} is {len} characters long; the Gitea/Forgejo API accepts at most {max} (use a \
         shorter value, or transport: git)"
    )]
    TooLong {
        /// The input (or file) named.
        input: String,
        /// Its length in characters.
        len: usize,
        /// The API's limit.
        max: usize,
    },
    /// Every write got a 500 and none landed: what a declining pre-receive hook looks like on Gitea
    /// ≤ 1.25 and Forgejo, which answer it with an unmapped error whose message production hides.
    #[error(
        "the server answered HTTP 500 to {attempts} writes to branch {branch:?} and none of them \
         landed; Gitea ≤ 1.25 and Forgejo answer this way when a server-side pre-receive hook \
         declines the push (the reason is hidden): check the repository's hooks and the server log, \
         or run with transport: git to see the hook's output"
    )]
    ServerRefuses {
        /// The branch.
        branch: String,
        /// Writes answered 500.
        attempts: u32,
    },
    /// Retries ran out: the branch kept changing under us, or the server kept failing.
    #[error("gave up after {attempts} attempts in {:.1}s", elapsed.as_secs_f64())]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last failure.
        #[source]
        last: Box<Error>,
    },
}

impl Error {
    /// True when the failure is the user's input (a missing repository, branch or path; an edit the
    /// engine refuses): exit code 2.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            Error::RepoNotFound { .. }
            | Error::BranchNotFound { .. }
            | Error::PathNotFound { .. }
            | Error::NoKustomization { .. }
            | Error::TooLong { .. } => true,
            Error::Edit { source, .. } => source.is_invalid_input(),
            _ => false,
        }
    }

    /// True when another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api { source, .. } => source.is_retryable(),
            Error::Git { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

/// What the step writes into each file: one of two things, never both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set the image's fields, as `kustomize edit set image` does.
    Set {
        /// The edit, as the engine takes it.
        setting: ImageSetting,
        /// The new value as messages show it (`1.2.3`, `1.2.3@sha256:…`, `other/name:1.2.3`).
        shown: String,
    },
    /// Remove the image's entry (the rollback of a deploy that added it).
    Remove,
}

impl Change {
    /// The new value as messages show it.
    pub fn shown(&self) -> &str {
        match self {
            Change::Set { shown, .. } => shown,
            Change::Remove => "(entry removed)",
        }
    }
}

impl Config {
    /// The edit this config sets, if it sets one (not a removal).
    pub fn setting(&self) -> Option<&ImageSetting> {
        match &self.change {
            Change::Set { setting, .. } => Some(setting),
            Change::Remove => None,
        }
    }

    /// The same destination, writing `change` to `paths` with the message `template`, within
    /// `timeout`: what a rollback publishes.
    pub fn with_change(
        &self,
        paths: Vec<String>,
        change: Change,
        template: String,
        timeout: Duration,
    ) -> Config {
        Config {
            paths,
            change,
            message_template: template,
            timeout: self.timeout.min(timeout),
            ..self.clone()
        }
    }
}

/// Runs the publish step.
///
/// # Errors
/// See [`Error`]; nothing is written when the error is invalid input, a refused token or permission.
pub async fn run(config: &Config, report: &Report) -> Result<Outcome, Error> {
    let started = Instant::now();
    let deadline = Deadline::after(config.timeout);
    if let Some(t) = &config.token {
        report.masker().add(t);
    }
    let (transport, version) = match config.transport {
        Transport::Api => (UsedTransport::Api, None),
        Transport::Git => (UsedTransport::Git, None),
        Transport::Auto => detect(config, &deadline).await,
    };
    if transport == UsedTransport::Api {
        check_api_limits(config)?;
    }
    // The run link: Gitea ≤ 1.25 routes runs by number, and only the server's version tells.
    let by_number;
    let config = match &config.run_url_by_number {
        Some(url) => {
            let version = match version {
                Some(v) => Some(v),
                None => server_version(config, &deadline).await,
            };
            if version.as_deref().is_some_and(routes_runs_by_number) {
                by_number = Config {
                    run_url: Some(url.clone()),
                    ..config.clone()
                };
                &by_number
            } else {
                config
            }
        }
        None => config,
    };
    report.info(
        Phase::Publish,
        format_args!(
            "{} {} via {}{}",
            config.repository(),
            config.branch.as_deref().unwrap_or("(default branch)"),
            match transport {
                UsedTransport::Api => "api",
                UsedTransport::Git => "git",
            },
            if config.dry_run { " (dry run)" } else { "" }
        ),
    );
    let deploy_id = format!("{:032x}", rand::random::<u128>());
    let mut outcome = match transport {
        UsedTransport::Api => api::publish(config, report, deadline, &deploy_id).await?,
        UsedTransport::Git => via_git::publish(config, report, deadline, &deploy_id).await?,
    };
    outcome.elapsed = started.elapsed();
    let short = crate::text::short(&outcome.commit_sha);
    let verb = match (outcome.dry_run, outcome.changed) {
        (true, true) => "would commit on",
        (true, false) => "nothing to change at",
        (false, true) => "committed",
        (false, false) => "already up to date at",
    };
    report.info(
        Phase::Publish,
        format_args!(
            "{verb} {short} on {} ({} attempt{}, {:.1}s)",
            outcome.branch,
            outcome.attempts,
            if outcome.attempts == 1 { "" } else { "s" },
            outcome.elapsed.as_secs_f64()
        ),
    );
    Ok(outcome)
}

/// `auto`: the API when the server answers `GET /api/v1/version` like Gitea/Forgejo, git otherwise;
/// with the version it answered.
async fn detect(config: &Config, deadline: &Deadline) -> (UsedTransport, Option<String>) {
    match server_version(config, deadline).await {
        Some(v) => (UsedTransport::Api, Some(v)),
        None => (UsedTransport::Git, None),
    }
}

/// `GET /api/v1/version`, when the server answers it like Gitea/Forgejo (a version starting with a
/// digit). The probe gets one request's time (`request_timeout`), never more than the step has left.
async fn server_version(config: &Config, deadline: &Deadline) -> Option<String> {
    let limit = config.request_timeout.min(deadline.remaining());
    // With the token: under REQUIRE_SIGNIN_VIEW Gitea refuses even `/version` to anonymous callers
    // (field-gitea.md §6), and `auto` would fall back to git for no reason.
    let client = gitea::Client::builder(config.server_url.as_str())
        .token(config.token.clone())
        .extra_roots(config.server_ca.clone())
        .connect_timeout(limit)
        .request_timeout(limit)
        .build()
        .ok()?;
    let v = client.version().await.ok()?.version;
    v.chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit())
        .then_some(v)
}

/// True for servers whose web routes link runs by number: Gitea ≤ 1.25 (1.26 moved to the id,
/// go-gitea/gitea#36842) and Forgejo (`X.Y.Z+gitea-1.22.0`).
fn routes_runs_by_number(version: &str) -> bool {
    if version.contains("+gitea-") {
        return true;
    }
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u32>().ok());
    matches!((parts.next().flatten(), parts.next().flatten()), (Some(1), Some(minor)) if minor <= 25)
}

/// The API's size limits on what we send (modules/structs/repo_file.go: `branch` MaxSize(100),
/// identity `name` MaxSize(100) and `email` MaxSize(254), counted in characters). Checked before any
/// write, so a long value is a clear input error rather than a 422 "[BranchName]: MaxSize".
fn check_api_limits(config: &Config) -> Result<(), Error> {
    let branch = config.branch.as_deref().unwrap_or_default();
    for (input, value, max) in [
        ("branch", branch, 100),
        ("author_name", config.author.name.as_str(), 100),
        ("author_email", config.author.email.as_str(), 254),
    ] {
        let len = value.chars().count();
        if len > max {
            return Err(Error::TooLong {
                input: input.to_owned(),
                len,
                max,
            });
        }
    }
    Ok(())
}

/// A kustomization file as read at some commit.
#[derive(Debug, Clone)]
struct Read {
    path: String,
    text: String,
    /// Blob SHA (api only).
    sha: String,
}

/// The edit applied to every file.
struct Applied {
    files: Vec<FileOutcome>,
    /// (path, new text) of the files that changed.
    changed: Vec<(String, String)>,
}

/// Pure: applies the image setting to each file's text.
fn apply(config: &Config, reads: &[Read]) -> Result<Applied, Error> {
    let mut files = Vec::new();
    let mut changed = Vec::new();
    for r in reads {
        let edited = match &config.change {
            Change::Remove => edit::remove_image(&r.text, &config.image),
            Change::Set { setting, .. } => edit::set_images(&r.text, std::slice::from_ref(setting)),
        }
        .map_err(|source| Error::Edit {
            path: r.path.clone(),
            source,
        })?;
        let is_changed = edited.is_changed();
        let mut images: Vec<ImageOutcome> = edited
            .changes
            .iter()
            .map(|c| ImageOutcome {
                name: c.name.clone(),
                previous: c.before.as_ref().map(describe_values),
                new: describe_values(&c.after),
                previous_values: c.before.clone(),
            })
            .collect();
        if images.is_empty() {
            // Nothing changed: report the value the file already holds.
            let current = edit::images_of(&edited.text)
                .map_err(|source| Error::Edit {
                    path: r.path.clone(),
                    source,
                })?
                .into_iter()
                .find(|(name, _)| *name == config.image)
                .map(|(_, v)| describe_values(&v));
            images.push(ImageOutcome {
                name: config.image.clone(),
                new: current.clone().unwrap_or_default(),
                previous: current,
                previous_values: None,
            });
        }
        let diff = if is_changed {
            edit::unified_diff(&r.path, &r.text, &edited.text)
        } else {
            String::new()
        };
        if is_changed {
            changed.push((r.path.clone(), edited.text.clone()));
        }
        files.push(FileOutcome {
            path: r.path.clone(),
            changed: is_changed,
            images,
            diff,
        });
    }
    Ok(Applied { files, changed })
}

/// An entry's values as shown to people.
fn describe_values(v: &edit::ImageValues) -> String {
    describe_new(
        v.new_name.as_deref(),
        v.new_tag.as_deref(),
        v.digest.as_deref(),
    )
}

/// Pure: renders the commit message and appends the `Deploy-Id` trailer.
fn message(config: &Config, applied: &Applied, deploy_id: &str) -> String {
    let mut old: Vec<String> = Vec::new();
    for f in &applied.files {
        for i in &f.images {
            let v = i.previous.clone().unwrap_or_else(|| "none".to_owned());
            if !old.contains(&v) {
                old.push(v);
            }
        }
    }
    let paths: BTreeSet<&str> = config.paths.iter().map(String::as_str).collect();
    let body = render(&config.message_template, |name| {
        Some(match name {
            "image" => Some(config.image.clone()),
            "old" => Some(if old.is_empty() {
                "none".to_owned()
            } else {
                old.join(", ")
            }),
            "new" => Some(config.change.shown().to_owned()),
            "paths" => Some(paths.iter().copied().collect::<Vec<_>>().join(", ")),
            "source_repo" => config.source_repo.clone(),
            "source_sha" => config.source_sha.clone(),
            "run_url" => config.run_url.clone(),
            _ => return None,
        })
    })
    .expect("template checked in Config::from_args");
    // A custom template must not make the deploy trigger its own workflow again (field-gitea.md §9):
    // without one of the skip markers runners honour, `[skip ci]` is added.
    let skip = SKIP_MARKERS
        .iter()
        .any(|m| body.to_ascii_lowercase().contains(m));
    let body = body.trim_end();
    if skip {
        format!("{body}\n\n{DEPLOY_ID_TRAILER}: {deploy_id}\n")
    } else {
        format!("{body}\n\n[skip ci]\n\n{DEPLOY_ID_TRAILER}: {deploy_id}\n")
    }
}

/// Commit-message markers that make Gitea, Forgejo and GitHub skip the push's workflows (Gitea
/// `services/actions/notifier_helper.go` `SkipWorkflowStrings`; GitHub's documented list).
const SKIP_MARKERS: [&str; 5] = [
    "[skip ci]",
    "[ci skip]",
    "[no ci]",
    "[skip actions]",
    "[actions skip]",
];

/// Builds the outcome for a head that needs no change, a dry run, or a new commit.
fn outcome(
    config: &Config,
    transport: UsedTransport,
    branch: &str,
    applied: Applied,
    commit_sha: String,
    commit_url: Option<String>,
    message: String,
) -> Outcome {
    let changed = !applied.changed.is_empty();
    Outcome {
        changed,
        commit_url: commit_url.unwrap_or_else(|| config.commit_url(&commit_sha)),
        commit_sha,
        branch: branch.to_owned(),
        transport,
        files: applied.files,
        message: if changed { message } else { String::new() },
        attempts: 0,
        elapsed: Duration::ZERO,
        dry_run: config.dry_run,
    }
}

/// After a failed attempt of a transport's loop: a non-retryable failure is returned as it is; a
/// retryable one waits for the next try (reported) or, when the policy is spent, becomes `GaveUp`.
async fn retry_or_give_up(
    backoff: &mut crate::retry::Backoff,
    report: &Report,
    failure: Error,
) -> Result<(), Error> {
    if !failure.is_retryable() {
        return Err(failure);
    }
    match backoff.next_wait() {
        Some(wait) => {
            retry_note(
                report,
                backoff.attempts(),
                wait,
                &format_args!("{}", chain(&failure)),
            );
            tokio::time::sleep(wait).await;
            Ok(())
        }
        None => Err(Error::GaveUp {
            attempts: backoff.attempts(),
            elapsed: backoff.elapsed(),
            last: Box::new(failure),
        }),
    }
}

fn retry_note(report: &Report, attempt: u32, wait: Duration, why: &dyn std::fmt::Display) {
    report.info(
        Phase::Publish,
        format_args!("attempt {attempt} in {}ms: {why}", wait.as_millis()),
    );
}

/// The API transport.
mod api;

/// The error chain on one line.
fn chain(e: &Error) -> String {
    crate_error_chain(e)
}

/// The git transport.
mod via_git;

/// The one publish loop over either transport.
mod transport;

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args {
            server_url: Some("http://127.0.0.1:3000".into()),
            repository: Some("demo/gitops".into()),
            path: vec!["apps/web/overlays/prod".into()],
            image: Some("registry.example.com/demo/web".into()),
            tag: Some("1.2.3".into()),
            token: Some("t0ken".into()),
            ..Args::default()
        }
    }

    #[test]
    fn builds_config_with_defaults() {
        let c = Config::from_args(&args(), &RunnerEnv::default()).unwrap();
        assert_eq!(c.repository(), "demo/gitops");
        assert_eq!(
            c.clone_url().as_str(),
            "http://127.0.0.1:3000/demo/gitops.git"
        );
        assert_eq!(c.transport, Transport::Auto);
        assert_eq!(c.author.name, DEFAULT_AUTHOR_NAME);
        assert!(!c.dry_run);
        assert_eq!(c.change.shown(), "1.2.3");
    }

    #[test]
    fn collects_every_problem_naming_the_input() {
        let a = Args {
            server_url: Some("ftp://x".into()),
            repository: Some("no-slash".into()),
            path: vec!["/abs, ../up".into()],
            image: None,
            transport: Some("carrier-pigeon".into()),
            commit_message: Some("{nope}".into()),
            author_email: Some("not-an-email".into()),
            ..Args::default()
        };
        let problems = Config::from_args(&a, &RunnerEnv::default()).unwrap_err();
        for input in [
            "repository:",
            "server_url:",
            "path: \"/abs\"",
            "path: \"../up\"",
            "image:",
            "transport:",
            "commit_message:",
            "author_email:",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(input)),
                "{input} missing in {problems:#?}"
            );
        }
    }

    #[test]
    fn repository_from_env_and_clone_url() {
        let env = RunnerEnv {
            server_url: Some("https://git.example.com/sub".into()),
            repository: Some("ops/deploy".into()),
            sha: Some("abc".into()),
            run_id: Some("7".into()),
            run_number: Some("3".into()),
            forgejo: false,
            gitea: false,
            token: None,
        };
        let a = Args {
            server_url: None,
            repository: None,
            ..args()
        };
        let c = Config::from_args(&a, &env).unwrap();
        assert_eq!(
            c.clone_url().as_str(),
            "https://git.example.com/sub/ops/deploy.git"
        );
        assert_eq!(
            c.run_url.as_deref(),
            Some("https://git.example.com/sub/ops/deploy/actions/runs/7")
        );

        let a = Args {
            server_url: None,
            repository: Some("https://h.example/o/r.git".into()),
            ..args()
        };
        let c = Config::from_args(&a, &RunnerEnv::default()).unwrap();
        assert_eq!(c.server_url.as_str(), "https://h.example/");
        assert_eq!((c.owner.as_str(), c.name.as_str()), ("o", "r"));

        let a = Args {
            repository: Some("https://user:s3cret@h.example/o/r.git".into()),
            ..args()
        };
        let problems = Config::from_args(&a, &RunnerEnv::default()).unwrap_err();
        assert!(
            problems.iter().all(|p| !p.contains("s3cret")),
            "{problems:?}"
        );
        assert!(problems[0].contains("must not contain credentials"));
    }

    #[test]
    fn paths_split_on_newlines_and_commas() {
        let a = Args {
            path: vec!["./a/b/\n c ,a/b".into(), "d".into()],
            ..args()
        };
        let c = Config::from_args(&a, &RunnerEnv::default()).unwrap();
        assert_eq!(c.paths, ["a/b", "c", "d"]);
    }

    #[test]
    fn token_is_required_unless_dry_run() {
        let a = Args {
            token: None,
            ..args()
        };
        assert!(Config::from_args(&a, &RunnerEnv::default()).unwrap_err()[0].starts_with("token:"));
        let a = Args {
            token: None,
            dry_run: true,
            ..args()
        };
        assert!(
            Config::from_args(&a, &RunnerEnv::default())
                .unwrap()
                .dry_run
        );
    }

    /// field-runner.md ranked #4: Forgejo links a run by its number, GitHub and Gitea by its id;
    /// on a Gitea runner the number link is kept for a server that turns out to be ≤ 1.25.
    #[test]
    fn run_url_uses_the_number_on_forgejo_and_the_id_elsewhere() {
        let gitea = RunnerEnv::from_lookup(|k| {
            [
                ("GITHUB_ACTIONS", "true"),
                ("GITEA_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", "https://git.example.com"),
                ("GITHUB_REPOSITORY", "ops/web"),
                ("GITHUB_RUN_ID", "48213"),
                ("GITHUB_RUN_NUMBER", "17"),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, x)| x.to_string())
        });
        assert_eq!(
            gitea.run_url_by_number().as_deref(),
            Some("https://git.example.com/ops/web/actions/runs/17")
        );
        for (version, by_number) in [
            ("1.22.6", true),
            ("1.25.3", true),
            ("1.26.0", false),
            ("1.27.0+dev-40-g82edc3da01", false),
            ("12.0.4+gitea-1.22.0", true),
            ("2.0.0", false),
        ] {
            assert_eq!(routes_runs_by_number(version), by_number, "{version}");
        }
        let vars = |forgejo: bool| {
            let mut v = vec![
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_SERVER_URL", "https://git.example.com/"),
                ("GITHUB_REPOSITORY", "ops/web"),
                ("GITHUB_RUN_ID", "48213"),
                ("GITHUB_RUN_NUMBER", "17"),
            ];
            if forgejo {
                v.push(("FORGEJO_ACTIONS", "true"));
            }
            RunnerEnv::from_lookup(move |k| {
                v.iter().find(|(n, _)| *n == k).map(|(_, x)| x.to_string())
            })
        };
        assert_eq!(
            vars(true).run_url().as_deref(),
            Some("https://git.example.com/ops/web/actions/runs/17")
        );
        assert_eq!(
            vars(false).run_url().as_deref(),
            Some("https://git.example.com/ops/web/actions/runs/48213")
        );
        // Neither GitHub nor Forgejo needs the alternative.
        assert_eq!(vars(false).run_url_by_number(), None);
        assert_eq!(vars(true).run_url_by_number(), None);
    }

    #[test]
    fn token_falls_back_to_the_runners_token_inside_a_runner_only() {
        let env = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            RunnerEnv::from_lookup(move |k| {
                vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
        };
        // (environment, expected fallback)
        type Vars<'a> = &'a [(&'a str, &'a str)];
        let table: [(Vars, Option<&str>); 6] = [
            (&[("GITHUB_TOKEN", "gh")], None),
            (
                &[("GITHUB_ACTIONS", "true"), ("GITHUB_TOKEN", "gh")],
                Some("gh"),
            ),
            (
                &[
                    ("GITEA_ACTIONS", "true"),
                    ("GITHUB_TOKEN", ""),
                    ("GITEA_TOKEN", "gt"),
                ],
                Some("gt"),
            ),
            (
                &[("FORGEJO_ACTIONS", "true"), ("FORGEJO_TOKEN", "fj")],
                Some("fj"),
            ),
            (
                &[
                    ("GITHUB_ACTIONS", "true"),
                    ("GITHUB_TOKEN", "gh"),
                    ("GITEA_TOKEN", "gt"),
                ],
                Some("gh"),
            ),
            (&[("GITHUB_ACTIONS", "false"), ("GITEA_TOKEN", "gt")], None),
        ];
        for (vars, expected) in table {
            let env = env(vars);
            assert_eq!(env.token.as_deref(), expected, "{vars:?}");
            let a = Args {
                token: None,
                ..args()
            };
            let config = Config::from_args(&a, &env);
            match expected {
                Some(t) => assert_eq!(config.unwrap().token.unwrap().expose(), t),
                None => assert!(config.unwrap_err()[0].starts_with("token: required")),
            }
        }
        // The input wins over the environment.
        let config = Config::from_args(
            &args(),
            &env(&[("GITHUB_ACTIONS", "true"), ("GITHUB_TOKEN", "gh")]),
        );
        assert_eq!(config.unwrap().token.unwrap().expose(), "t0ken");
    }

    /// field-gitea.md ranked #9: a custom message without a skip marker gets `[skip ci]`; one with
    /// any marker runners honour is left as written.
    #[test]
    fn custom_messages_keep_the_deploy_from_triggering_ci() {
        let applied = Applied {
            files: Vec::new(),
            changed: Vec::new(),
        };
        for (template, want_added) in [
            ("deploy {image} {new}", true),
            ("deploy {image} {new} [skip ci]", false),
            ("deploy {image} {new}\n\n[CI SKIP]", false),
            ("deploy [skip actions]", false),
        ] {
            let a = Args {
                commit_message: Some(template.into()),
                ..args()
            };
            let c = Config::from_args(&a, &RunnerEnv::default()).unwrap();
            let m = message(&c, &applied, "id-1");
            assert!(m.ends_with("\n\nDeploy-Id: id-1\n"), "{m:?}");
            assert_eq!(
                m.contains("\n\n[skip ci]\n\nDeploy-Id"),
                want_added,
                "{template}: {m:?}"
            );
        }
    }

    #[test]
    fn renders_templates() {
        let v = |n: &str| match n {
            "x" => Some(Some("X".to_owned())),
            "gone" => Some(None),
            _ => None,
        };
        assert_eq!(render("a {x} {{lit}} b", v).unwrap(), "a X {lit} b");
        assert_eq!(
            render("a\nrun: {gone}\nb {x}{gone}\n", v).unwrap(),
            "a\nb X\n"
        );
        assert!(render("{y}", v)
            .unwrap_err()
            .contains("unknown placeholder {y}"));
        assert!(render("{x", v).unwrap_err().contains("unclosed"));
        assert!(render("x}", v).unwrap_err().contains("unmatched"));
        check_template(DEFAULT_MESSAGE).unwrap();
    }
}
