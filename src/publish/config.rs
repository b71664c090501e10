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
    /// Write the commit on this new branch instead, starting at `branch`'s head (pull-request mode).
    /// The API transport creates it (and fails if it exists); the git transport force-pushes it, as
    /// the branch belongs to this deploy alone.
    pub new_branch: Option<String>,
    /// Kustomization directories (or files) relative to the repository root, without leading `./` or `/`;
    /// for the other targets, files.
    pub paths: Vec<String>,
    /// What the paths are and how the image lands in them.
    pub target: crate::edit::Target,
    /// A setter (`NAMESPACE:POLICY`) whose `$imagepolicy` markers are set too, in every file.
    pub setter: Option<String>,
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
    /// A valid configuration for unit tests: `https://git.example.com/o/r`, path `k`, image `app`
    /// set to `2.0.0`, a token, the default message, fast retries.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Config {
        Config {
            server_url: "https://git.example.com".parse().expect("a URL"),
            owner: "o".into(),
            name: "r".into(),
            branch: None,
            new_branch: None,
            paths: vec!["k".into()],
            target: crate::edit::Target::Kustomize,
            setter: None,
            image: "app".into(),
            change: Change::Set {
                setting: ImageSetting::deploy("app", Some("2.0.0"), None, None).expect("valid"),
                shown: "2.0.0".into(),
            },
            token: Some(Secret::new("t0k3n-t0k3n")),
            server_ca: None,
            transport: Transport::Api,
            message_template: DEFAULT_MESSAGE.into(),
            author: Identity {
                name: DEFAULT_AUTHOR_NAME.into(),
                email: DEFAULT_AUTHOR_EMAIL.into(),
            },
            dry_run: false,
            source_repo: None,
            source_sha: None,
            run_url: None,
            run_url_by_number: None,
            retry: RetryPolicy::PUBLISH,
            timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
        }
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
    /// True when `path` names a file itself: always for the targets that edit files, and for a
    /// kustomization given by its file name; otherwise it is a kustomization's directory.
    pub fn names_a_file(&self, path: &str) -> bool {
        !matches!(self.target, crate::edit::Target::Kustomize)
            || path
                .rsplit('/')
                .next()
                .is_some_and(|n| crate::edit::KUSTOMIZATION_FILE_NAMES.contains(&n))
    }

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
