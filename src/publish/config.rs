//! The publish step's typed configuration, built from the raw inputs with every problem reported at
//! once, before any network or disk access.

use super::*;

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
                Err(e) => problems.push(format!("image: {}", crate::error::chain(&e))),
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

pub(super) fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Splits a clone URL into the server base URL, owner and name.
pub(super) fn parse_clone_url(raw: &str) -> Result<(Url, String, String), String> {
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

pub(super) fn parse_server_url(raw: &str) -> Result<Url, String> {
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
pub(super) fn normalize_path(p: &str) -> Result<String, &'static str> {
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
pub(super) fn describe_new(
    new_name: Option<&str>,
    tag: Option<&str>,
    digest: Option<&str>,
) -> String {
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
