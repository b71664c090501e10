//! The git transport of the publish step: minimal sparse clone, edit, commit, push; on a rejected push
//! fetch, reset and re-apply; after any failed push first check whether one of our commits is already in
//! the branch's history.

use super::*;

fn map(config: &Config, branch: &str, action: String, e: git::Error) -> Error {
    match e {
        git::Error::Unauthorized { .. } => Error::Unauthorized {
            source: Box::new(e),
        },
        git::Error::Denied { detail } => Error::Forbidden {
            repository: config.repository(),
            branch: branch.to_owned(),
            message: detail,
        },
        git::Error::NotFound { .. } if branch.is_empty() || action.starts_with("cannot clone") => {
            if config.branch.is_some()
                && matches!(&e, git::Error::NotFound { detail } if detail.contains("Remote branch"))
            {
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
    let dirs: Vec<String> = config.paths.clone();
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
        )
    })?;
    let branch = checkout.branch().to_owned();
    let files = locate(config, &checkout)?;

    let mut backoff = config.retry.start(deadline);
    let mut ours: Vec<String> = Vec::new();
    // Set once a push failed in a way that does not prove it changed nothing.
    let mut maybe_landed = false;
    let mut first = true;
    // The clone's tip: any commit of ours that landed comes after it.
    let base = checkout
        .head()
        .await
        .map_err(|e| map(config, &branch, "cannot read HEAD".into(), e))?;
    loop {
        let attempt = async {
            // The commit the edit applies to: the clone's tip, then each newly fetched tip.
            let mut head = base.clone();
            if !first {
                let tip = checkout
                    .fetch()
                    .await
                    .map_err(|e| map(config, &branch, format!("cannot fetch {branch}"), e))?;
                // Any failed push may have landed: an ambiguous error, but also a rejection, because
                // curl silently re-sends a request whose answer was lost and the second one is then
                // refused ("cannot lock ref") although the first one updated the branch.
                if maybe_landed {
                    let since = checkout.commits_between(&base, &tip).await.map_err(|e| {
                        map(config, &branch, "cannot look for our commit".into(), e)
                    })?;
                    if let Some(c) = ours.iter().find(|c| since.contains(c)) {
                        report.info(
                            Phase::Publish,
                            "the earlier push landed despite the error; not pushing again",
                        );
                        // Describe the change our commit made: reset to its parent and re-apply.
                        checkout
                            .reset_to(&format!("{c}~1"))
                            .await
                            .map_err(|e| map(config, &branch, "cannot reset".into(), e))?;
                        let applied = apply(config, &read_files(&checkout, &files)?)?;
                        let msg = message(config, &applied, deploy_id);
                        return Ok(outcome(
                            config,
                            UsedTransport::Git,
                            &branch,
                            applied,
                            c.clone(),
                            None,
                            msg,
                        ));
                    }
                }
                checkout
                    .reset_to(&tip)
                    .await
                    .map_err(|e| map(config, &branch, format!("cannot reset to {branch}"), e))?;
                head = tip;
            }
            let applied = apply(config, &read_files(&checkout, &files)?)?;
            let msg = message(config, &applied, deploy_id);
            if applied.changed.is_empty() || config.dry_run {
                return Ok(outcome(
                    config,
                    UsedTransport::Git,
                    &branch,
                    applied,
                    head,
                    None,
                    msg,
                ));
            }
            write_files(&checkout, &applied)?;
            let changed: Vec<String> = applied.changed.iter().map(|(p, _)| p.clone()).collect();
            let sha = checkout
                .commit(&changed, &msg, &config.author)
                .await
                .map_err(|e| map(config, &branch, "cannot commit".into(), e))?;
            ours.push(sha.clone());
            match checkout.push().await {
                Ok(()) => Ok(outcome(
                    config,
                    UsedTransport::Git,
                    &branch,
                    applied,
                    sha,
                    None,
                    msg,
                )),
                Err(e) => {
                    // Only git's own check against the advertised tip ("[rejected] (fetch first)",
                    // "non-fast-forward") proves that nothing was sent.
                    maybe_landed |= !matches!(&e, git::Error::Rejected { detail }
                        if detail.contains("[rejected]") && !detail.contains("remote rejected"));
                    Err(map(config, &branch, format!("cannot push to {branch}"), e))
                }
            }
        };
        let failure = match attempt.await {
            Ok(mut done) => {
                done.attempts = backoff.attempts();
                return Ok(done);
            }
            Err(e) => e,
        };
        first = false;
        retry_or_give_up(&mut backoff, report, failure).await?;
    }
}
