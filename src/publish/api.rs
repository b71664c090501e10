//! The API transport of the publish step (Gitea/Forgejo contents API): read at the branch head, edit,
//! write all files in one `POST /contents` guarded by blob SHAs, and after an ambiguous failure look for our
//! `Deploy-Id` trailer before writing again.

use super::*;
use crate::forge::gitea::models::Contents;

fn map(config: &Config, branch: &str, action: String, e: gitea::Error) -> Error {
    use reqwest::StatusCode;
    match e.api() {
        Some(a) if a.status == StatusCode::UNAUTHORIZED => Error::Unauthorized {
            source: Box::new(e),
        },
        Some(a) if a.status == StatusCode::FORBIDDEN || a.status == StatusCode::LOCKED => {
            Error::Forbidden {
                repository: config.repository(),
                branch: branch.to_owned(),
                message: if a.message.is_empty() {
                    a.status.to_string()
                } else {
                    a.message.clone()
                },
            }
        }
        _ => Error::Api { action, source: e },
    }
}

/// Retries an idempotent read on retryable failures.
async fn read<T, F, Fut>(
    config: &Config,
    report: &Report,
    deadline: Deadline,
    what: &(dyn Fn() -> String + Sync),
    op: F,
) -> Result<T, gitea::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, gitea::Error>>,
{
    crate::retry::run(
        &config.retry,
        deadline,
        gitea::Error::is_retryable,
        |attempt, wait, e| retry_note(report, attempt, wait, &format_args!("{}: {e}", what())),
        op,
    )
    .await
}

/// Finds and reads the kustomization file of each path at `reference`. The file names are tried
/// directly (`kustomization.yaml` first) instead of listing the directory: one cheap request in the
/// common case, where a listing makes the server look up the last commit of every entry.
async fn locate(
    config: &Config,
    report: &Report,
    deadline: Deadline,
    repo: &gitea::RepoHandler<'_>,
    branch: &str,
    reference: &str,
) -> Result<Vec<Read>, Error> {
    let mut reads = Vec::new();
    for path in &config.paths {
        let candidates: Vec<String> = if config.names_a_file(path) {
            vec![path.clone()]
        } else {
            edit::KUSTOMIZATION_FILE_NAMES
                .iter()
                .map(|n| {
                    if path == "." {
                        (*n).to_owned()
                    } else {
                        format!("{path}/{n}")
                    }
                })
                .collect()
        };
        let mut found = None;
        for candidate in &candidates {
            if let Some(r) =
                get_file(config, report, deadline, repo, branch, candidate, reference).await?
            {
                found = Some(r);
                break;
            }
        }
        match found {
            Some(r) => reads.push(r),
            None => {
                // Tell a missing path from a directory without a kustomization file.
                let p = if path == "." { "" } else { path.as_str() };
                let got = read(
                    config,
                    report,
                    deadline,
                    &|| format!("reading {path}"),
                    || repo.contents(p).at_ref(reference).get(),
                )
                .await;
                return Err(match got {
                    Ok(_) if !matches!(config.target, edit::Target::Kustomize) => Error::NotAFile {
                        path: path.clone(),
                        target: config.target.name(),
                    },
                    Ok(_) => Error::NoKustomization { path: path.clone() },
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                        Error::PathNotFound {
                            path: path.clone(),
                            branch: branch.to_owned(),
                        }
                    }
                    Err(e) => map(config, branch, format!("cannot read {path}"), e),
                });
            }
        }
    }
    Ok(reads)
}

/// Reads one file at `reference`; `None` when it does not exist (or is not a file).
async fn get_file(
    config: &Config,
    report: &Report,
    deadline: Deadline,
    repo: &gitea::RepoHandler<'_>,
    branch: &str,
    path: &str,
    reference: &str,
) -> Result<Option<Read>, Error> {
    let got = read(
        config,
        report,
        deadline,
        &|| format!("reading {path}"),
        || repo.contents(path).at_ref(reference).get(),
    )
    .await;
    let file = match got {
        Ok(Contents::File(f)) if f.is_file() => f,
        Ok(_) => return Ok(None),
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => return Ok(None),
        Err(e) => return Err(map(config, branch, format!("cannot read {path}"), e)),
    };
    let bytes = match file.decoded() {
        Some(Ok(b)) => b,
        _ => {
            return Err(Error::Unreadable {
                path: path.to_owned(),
            })
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| Error::Unreadable {
        path: path.to_owned(),
    })?;
    Ok(Some(Read {
        path: path.to_owned(),
        text,
        sha: file.sha.clone(),
    }))
}

/// Looks for our commit (by its `Deploy-Id` trailer) among the commits since `base`.
async fn find_landed(
    repo: &gitea::RepoHandler<'_>,
    base: &str,
    head: &str,
    deploy_id: &str,
) -> Result<Option<(String, Option<String>)>, gitea::Error> {
    if base == head {
        return Ok(None);
    }
    let needle = format!("{DEPLOY_ID_TRAILER}: {deploy_id}");
    match repo.compare(base, head).send().await {
        Ok(cmp) => Ok(cmp
            .commits
            .into_iter()
            .find(|c| c.commit.message.contains(&needle))
            .map(|c| (c.sha, c.html_url))),
        // Older servers have no compare endpoint: walk first parents from the head (a handful of
        // commits at most: only those made since our read).
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
            let mut sha = head.to_owned();
            for _ in 0..200 {
                if sha == base {
                    return Ok(None);
                }
                let c = repo.commit(&sha).send().await?;
                if c.commit.message.contains(&needle) {
                    return Ok(Some((c.sha, c.html_url)));
                }
                match c.parents.first() {
                    Some(p) => sha = p.sha.clone(),
                    None => return Ok(None),
                }
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Our commit at the tip of the new branch, if the branch was created.
async fn find_on_new_branch(
    repo: &gitea::RepoHandler<'_>,
    branch: &str,
    deploy_id: &str,
) -> Result<Option<(String, Option<String>)>, gitea::Error> {
    let tip = match repo.branch(branch).send().await {
        Ok(b) => b.commit.id,
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => return Ok(None),
        Err(e) => return Err(e),
    };
    let c = repo.commit(&tip).send().await?;
    let needle = format!("{DEPLOY_ID_TRAILER}: {deploy_id}");
    Ok(c.commit
        .message
        .contains(&needle)
        .then_some((c.sha, c.html_url)))
}

pub(super) async fn publish(
    config: &Config,
    report: &Report,
    deadline: Deadline,
    deploy_id: &str,
) -> Result<Outcome, Error> {
    let client = gitea::Client::builder(config.server_url.as_str())
        .token(config.token.clone())
        .extra_roots(config.server_ca.clone())
        .read_timeout(config.request_timeout)
        .request_timeout(config.request_timeout)
        .build()
        .map_err(|e| Error::Api {
            action: "cannot create the API client".to_owned(),
            source: e,
        })?;
    let repo = client.repo(&config.owner, &config.name);
    let repository = config.repository();
    let not_found_repo = || Error::RepoNotFound {
        repository: repository.clone(),
        server: config.server_url.to_string(),
    };

    let branch = match &config.branch {
        Some(b) => b.clone(),
        None => match read(
            config,
            report,
            deadline,
            &|| "reading the repository".into(),
            || repo.get(),
        )
        .await
        {
            Ok(r) => r.default_branch,
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                return Err(not_found_repo())
            }
            Err(e) => return Err(map(config, "", "cannot read the repository".into(), e)),
        },
    };
    let head_of = || async {
        match read(
            config,
            report,
            deadline,
            &|| format!("reading branch {branch}"),
            || repo.branch(&branch).send(),
        )
        .await
        {
            Ok(b) => Ok(b.commit.id),
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                // Tell a missing repository from a missing branch.
                match repo.get().await {
                    Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                        Err(not_found_repo())
                    }
                    _ => Err(Error::BranchNotFound {
                        repository: repository.clone(),
                        branch: branch.clone(),
                    }),
                }
            }
            Err(e) => Err(map(
                config,
                &branch,
                format!("cannot read branch {branch}"),
                e,
            )),
        }
    };

    let head = head_of().await?;
    let first_reads = locate(config, report, deadline, &repo, &branch, &head).await?;
    let files: Vec<String> = first_reads.iter().map(|r| r.path.clone()).collect();
    let mut transport = ApiTransport {
        config,
        report,
        deadline,
        repo: &repo,
        branch: branch.clone(),
        files,
        // The first attempt works on what `locate` read at `head`.
        first: Some((head, first_reads)),
        head_of: &head_of,
    };
    super::transport::publish(&mut transport, config, report, deadline, deploy_id).await
}

/// The contents API as a [`Transport`](super::transport::Transport): one `POST /contents` per
/// write, guarded by the blob SHAs read at the head.
struct ApiTransport<'a, H> {
    config: &'a Config,
    report: &'a Report,
    deadline: Deadline,
    repo: &'a gitea::RepoHandler<'a>,
    branch: String,
    files: Vec<String>,
    first: Option<(String, Vec<Read>)>,
    head_of: &'a H,
}

impl<H> ApiTransport<'_, H> {
    /// The kustomization files at `reference`.
    async fn read_at(&self, reference: &str) -> Result<Vec<Read>, Error> {
        read_files(
            self.config,
            self.report,
            self.deadline,
            self.repo,
            &self.branch,
            &self.files,
            reference,
        )
        .await
    }
}

impl<H, F> super::transport::Transport for ApiTransport<'_, H>
where
    H: Fn() -> F,
    F: std::future::Future<Output = Result<String, Error>>,
{
    const KIND: UsedTransport = UsedTransport::Api;

    fn branch(&self) -> &str {
        &self.branch
    }

    async fn head(&mut self) -> Result<String, Error> {
        match &self.first {
            Some((head, _)) => Ok(head.clone()),
            None => (self.head_of)().await,
        }
    }

    async fn read(&mut self, head: &str) -> Result<Vec<Read>, Error> {
        match self.first.take() {
            Some((_, reads)) => Ok(reads),
            None => self.read_at(head).await,
        }
    }

    async fn write(
        &mut self,
        _head: &str,
        reads: &[Read],
        applied: &Applied,
        message: &str,
    ) -> Result<(String, Option<String>), super::transport::WriteFailure> {
        let config = self.config;
        let refused = |error| super::transport::WriteFailure {
            error,
            maybe_landed: false,
            server_error: false,
        };
        for (path, _) in &applied.changed {
            let len = path.chars().count();
            if len > 500 {
                // ChangeFileOperation `path`: MaxSize(500).
                return Err(refused(Error::TooLong {
                    input: format!("file path {path:?}"),
                    len,
                    max: 500,
                }));
            }
        }
        let mut req = self
            .repo
            .change_files(message.to_owned())
            .branch(&self.branch)
            .new_branch(config.new_branch.clone())
            .author(&config.author.name, &config.author.email)
            .committer(&config.author.name, &config.author.email);
        for (path, text) in &applied.changed {
            let sha = &reads
                .iter()
                .find(|r| &r.path == path)
                .expect("read before")
                .sha;
            req = req.update(path, text.as_bytes(), sha);
        }
        match req.send().await {
            Ok(resp) => Ok((resp.commit.sha, resp.commit.html_url)),
            Err(e) => Err(super::transport::WriteFailure {
                maybe_landed: e.is_ambiguous(),
                server_error: e
                    .api()
                    .is_some_and(|a| a.status == reqwest::StatusCode::INTERNAL_SERVER_ERROR),
                error: map(
                    config,
                    &self.branch,
                    format!("cannot commit to {}", self.branch),
                    e,
                ),
            }),
        }
    }

    async fn find_landed(
        &mut self,
        base: &str,
        head: &str,
        deploy_id: &str,
    ) -> Result<Option<super::transport::Landed>, Error> {
        let landed = match &self.config.new_branch {
            Some(new) => find_on_new_branch(self.repo, new, deploy_id).await,
            None => find_landed(self.repo, base, head, deploy_id).await,
        };
        let landed = landed.map_err(|e| {
            map(
                self.config,
                &self.branch,
                "cannot look for our commit".into(),
                e,
            )
        })?;
        let Some((sha, url)) = landed else {
            return Ok(None);
        };
        // Describe the change our commit made: the files at the base it was written on.
        let before = self.read_at(base).await?;
        Ok(Some(super::transport::Landed { sha, url, before }))
    }
}

async fn read_files(
    config: &Config,
    report: &Report,
    deadline: Deadline,
    repo: &gitea::RepoHandler<'_>,
    branch: &str,
    files: &[String],
    reference: &str,
) -> Result<Vec<Read>, Error> {
    let mut reads = Vec::with_capacity(files.len());
    for path in files {
        match get_file(config, report, deadline, repo, branch, path, reference).await? {
            Some(r) => reads.push(r),
            None => {
                return Err(Error::PathNotFound {
                    path: path.clone(),
                    branch: branch.to_owned(),
                })
            }
        }
    }
    Ok(reads)
}
