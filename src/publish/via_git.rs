//! The git transport of the publish step: minimal sparse clone, edit, commit, push; on a rejected push
//! fetch, reset and re-apply; after any failed push first check whether one of our commits is already in
//! the branch's history.

use super::*;

/// Maps a git failure to the step's error. `cloning`: the failure is the clone's, where "not found"
/// means the repository or the branch.
fn map(config: &Config, branch: &str, action: String, e: git::Error, cloning: bool) -> Error {
    match e {
        git::Error::Unauthorized { .. } => Error::Unauthorized {
            source: Box::new(e),
        },
        git::Error::Denied { detail } => Error::Forbidden {
            repository: config.repository(),
            branch: branch.to_owned(),
            message: detail,
        },
        git::Error::NotFound { branch_missing, .. } if branch.is_empty() || cloning => {
            if config.branch.is_some() && branch_missing {
                Error::BranchNotFound {
                    repository: config.repository(),
                    branch: config.branch.clone().unwrap_or_default(),
                }
            } else {
                Error::RepoNotFound {
                    repository: config.repository(),
                    server: config.server_url.to_string(),
                }
            }
        }
        other => Error::Git {
            action,
            source: other,
        },
    }
}

fn locate(config: &Config, checkout: &git::Checkout) -> Result<Vec<String>, Error> {
    let mut files = Vec::new();
    for path in &config.paths {
        let dir = if path == "." {
            checkout.root().to_owned()
        } else {
            checkout.root().join(path)
        };
        if !matches!(config.target, edit::Target::Kustomize) {
            if dir.is_file() {
                files.push(path.clone());
                continue;
            }
            return Err(if dir.is_dir() {
                Error::NotAFile {
                    path: path.clone(),
                    target: config.target.name(),
                }
            } else {
                Error::PathNotFound {
                    path: path.clone(),
                    branch: checkout.branch().to_owned(),
                }
            });
        }
        if dir.is_file() {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if edit::KUSTOMIZATION_FILE_NAMES.contains(&name) {
                files.push(path.clone());
                continue;
            }
            return Err(Error::NoKustomization { path: path.clone() });
        }
        if !dir.is_dir() {
            return Err(Error::PathNotFound {
                path: path.clone(),
                branch: checkout.branch().to_owned(),
            });
        }
        let name = edit::KUSTOMIZATION_FILE_NAMES
            .iter()
            .find(|n| dir.join(n).is_file())
            .ok_or_else(|| Error::NoKustomization { path: path.clone() })?;
        files.push(if path == "." {
            (*name).to_owned()
        } else {
            format!("{path}/{name}")
        });
    }
    Ok(files)
}

fn read_files(checkout: &git::Checkout, files: &[String]) -> Result<Vec<Read>, Error> {
    files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(checkout.root().join(f))
                .map_err(|_| Error::Unreadable { path: f.clone() })?;
            Ok(Read {
                path: f.clone(),
                text,
                sha: String::new(),
            })
        })
        .collect()
}

fn write_files(checkout: &git::Checkout, applied: &Applied) -> Result<(), Error> {
    for (path, text) in &applied.changed {
        let full = checkout.root().join(path);
        std::fs::write(&full, text).map_err(|source| Error::Git {
            action: format!("cannot write {path}"),
            source: git::Error::Io { path: full, source },
        })?;
    }
    Ok(())
}

pub(super) async fn publish(
    config: &Config,
    report: &Report,
    deadline: Deadline,
    deploy_id: &str,
) -> Result<Outcome, Error> {
    let remote = git::Remote {
        url: config.clone_url(),
        token: config.token.clone(),
        stall_timeout: config.request_timeout,
        server_ca: config.server_ca.clone(),
    };
    // Cone-mode sparse checkout takes directories: a file's parent (files at the root are always in).
    let mut dirs: Vec<String> = Vec::new();
    for path in &config.paths {
        let dir = if config.names_a_file(path) {
            path.rsplit_once('/').map_or("", |(d, _)| d)
        } else {
            path.as_str()
        };
        if !dir.is_empty() && !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_owned());
        }
    }
    let branch_name = config.branch.clone().unwrap_or_default();
    let checkout = crate::retry::run(
        &config.retry,
        deadline,
        git::Error::is_retryable,
        |attempt, wait, e| retry_note(report, attempt, wait, &format_args!("clone: {e}")),
        || git::Checkout::clone_sparse(remote.clone(), config.branch.as_deref(), &dirs, deadline),
    )
    .await
    .map_err(|e| {
        map(
            config,
            &branch_name,
            format!("cannot clone {}", config.repository()),
            e,
            true,
        )
    })?;
    let branch = checkout.branch().to_owned();
    let files = locate(config, &checkout)?;
    let mut transport = GitTransport {
        config,
        checkout,
        branch,
        files,
        ours: Vec::new(),
        fetch: false,
    };
    super::transport::publish(&mut transport, config, report, deadline, deploy_id).await
}

/// A sparse clone as a [`Transport`](super::transport::Transport): commit, push; on a rejected push,
/// fetch, reset and re-apply.
struct GitTransport<'a> {
    config: &'a Config,
    checkout: git::Checkout,
    branch: String,
    files: Vec<String>,
    /// Every commit we made: the one that landed, if any, is among them.
    ours: Vec<String>,
    /// False until the clone's tip has been used: each later attempt fetches first.
    fetch: bool,
}

impl GitTransport<'_> {
    fn map(&self, action: String, e: git::Error) -> Error {
        map(self.config, &self.branch, action, e, false)
    }
}

impl super::transport::Transport for GitTransport<'_> {
    const KIND: UsedTransport = UsedTransport::Git;

    fn branch(&self) -> &str {
        &self.branch
    }

    async fn head(&mut self) -> Result<String, Error> {
        if !std::mem::replace(&mut self.fetch, true) {
            return self
                .checkout
                .head()
                .await
                .map_err(|e| self.map("cannot read HEAD".into(), e));
        }
        self.checkout
            .fetch()
            .await
            .map_err(|e| self.map(format!("cannot fetch {}", self.branch), e))
    }

    async fn read(&mut self, head: &str) -> Result<Vec<Read>, Error> {
        self.checkout
            .reset_to(head)
            .await
            .map_err(|e| self.map(format!("cannot reset to {}", self.branch), e))?;
        read_files(&self.checkout, &self.files)
    }

    async fn write(
        &mut self,
        _head: &str,
        _reads: &[Read],
        applied: &Applied,
        message: &str,
    ) -> Result<(String, Option<String>), super::transport::WriteFailure> {
        let refused = |error| super::transport::WriteFailure {
            error,
            maybe_landed: false,
            server_error: false,
        };
        write_files(&self.checkout, applied).map_err(refused)?;
        let changed: Vec<String> = applied.changed.iter().map(|(p, _)| p.clone()).collect();
        let sha = self
            .checkout
            .commit(&changed, message, &self.config.author)
            .await
            .map_err(|e| refused(self.map("cannot commit".into(), e)))?;
        self.ours.push(sha.clone());
        let pushed = match &self.config.new_branch {
            Some(new) => self.checkout.push_to(new, true).await,
            None => self.checkout.push().await,
        };
        match pushed {
            Ok(()) => Ok((sha, None)),
            Err(e) => Err(super::transport::WriteFailure {
                // Only git's own check against the advertised tip ("[rejected] (fetch first)",
                // "non-fast-forward") proves that nothing was sent. Any other failed push may have
                // landed: an ambiguous error, but also a rejection, because curl silently re-sends a
                // request whose answer was lost and the second one is then refused ("cannot lock
                // ref") although the first one updated the branch.
                maybe_landed: !matches!(
                    &e,
                    git::Error::Rejected {
                        proven_unsent: true,
                        ..
                    }
                ),
                server_error: false,
                error: self.map(
                    format!(
                        "cannot push to {}",
                        self.config.new_branch.as_deref().unwrap_or(&self.branch)
                    ),
                    e,
                ),
            }),
        }
    }

    async fn find_landed(
        &mut self,
        base: &str,
        head: &str,
        _deploy_id: &str,
    ) -> Result<Option<super::transport::Landed>, Error> {
        let since = self
            .checkout
            .commits_between(base, head)
            .await
            .map_err(|e| self.map("cannot look for our commit".into(), e))?;
        let Some(sha) = self.ours.iter().find(|c| since.contains(c)).cloned() else {
            return Ok(None);
        };
        // Describe the change our commit made: the files at its parent.
        self.checkout
            .reset_to(&format!("{sha}~1"))
            .await
            .map_err(|e| self.map("cannot reset".into(), e))?;
        let before = read_files(&self.checkout, &self.files)?;
        Ok(Some(super::transport::Landed {
            sha,
            url: None,
            before,
        }))
    }
}
