//! Tells how a revision Argo CD reports relates to our commit, and whether our value survived there
//! (docs/research/argocd-rollout.md TL;DR 4: "superseded" and "overwritten"): through the Gitea/Forgejo compare API when the
//! commit went through it, or through git itself for any other host.
//!
//! `compare(X...S)` lists the commits of S missing from X: none means X contains S. `compare(S...X)`
//! empty means X is an ancestor of S (Argo CD has not seen our commit). Anything else diverged.

use futures::future::BoxFuture;

use crate::argocd::phase::{OracleError, RevisionOracle};
use crate::argocd::verdict::Relation;
use crate::edit::{ImageSetting, Target};
use crate::forge::git::History;
use crate::forge::gitea::{self, models::Contents};

/// "Does a revision still hold our value?": the files our commit changed and the setting it applied
/// (a file where applying it again would change something no longer holds our value).
#[derive(Debug, Clone)]
pub struct OverwriteCheck {
    /// Kustomization files our commit changed.
    pub files: Vec<String>,
    /// The setting we applied.
    pub setting: ImageSetting,
    /// How it was applied (the kind of file).
    pub target: Target,
    /// The setter whose markers were set too.
    pub setter: Option<String>,
}

/// The oracle over a Gitea repository.
#[derive(Debug)]
pub struct GiteaOracle {
    /// The forge client (with the publish token).
    pub client: gitea::Client,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// How to tell that a descendant overwrote our value (`None`: a descendant always counts).
    pub overwrite: Option<OverwriteCheck>,
    /// Where ancestry comes from when the compare API cannot answer for commit IDs (404): Gitea
    /// ≤ 1.22 (SHAs accepted from 1.23, go-gitea/gitea#32801), older Forgejo, and a repository with
    /// pull requests disabled on Gitea ≤ 1.25 or Forgejo (docs/research/field-gitea.md §5). `None`: no fallback.
    pub git_fallback: Option<GitFallback>,
}

/// The git history a [`GiteaOracle`] falls back to, opened on first need.
#[derive(Debug)]
pub struct GitFallback {
    remote: crate::forge::git::Remote,
    /// `None`: the repository's default branch, asked of the API when first needed.
    branch: Option<String>,
    command_timeout: std::time::Duration,
    /// Opened on first need; a failure to open is not kept, so the next snapshot tries again.
    oracle: tokio::sync::OnceCell<GitOracle>,
}

impl GitFallback {
    /// A fallback over `remote`'s `branch`; nothing is fetched until the compare API fails.
    pub fn new(
        remote: crate::forge::git::Remote,
        branch: impl Into<String>,
        command_timeout: std::time::Duration,
    ) -> Self {
        GitFallback {
            remote,
            branch: Some(branch.into()),
            command_timeout,
            oracle: tokio::sync::OnceCell::new(),
        }
    }

    /// A fallback on the repository's default branch (when the caller does not know the branch).
    pub fn on_default_branch(
        remote: crate::forge::git::Remote,
        command_timeout: std::time::Duration,
    ) -> Self {
        GitFallback {
            remote,
            branch: None,
            command_timeout,
            oracle: tokio::sync::OnceCell::new(),
        }
    }
}

impl GiteaOracle {
    async fn relation_of(&self, ours: &str, rev: &str) -> Result<Relation, Error> {
        match self.compare_relation(ours, rev).await {
            Err(compare) if compare.is_not_found() => match &self.git_fallback {
                Some(fallback) => {
                    let oracle = fallback
                        .oracle
                        .get_or_try_init(|| self.open_fallback(fallback))
                        .await
                        .map_err(|source| Error::Fallback {
                            compare: Box::new(compare),
                            source: Box::new(source),
                        })?;
                    oracle.relation_of(ours, rev).await
                }
                None => Err(compare),
            },
            other => other,
        }
    }

    /// The git history behind `fallback`, on its branch or the repository's default branch.
    async fn open_fallback(&self, fallback: &GitFallback) -> Result<GitOracle, Error> {
        let branch = match &fallback.branch {
            Some(b) => b.clone(),
            None => {
                self.client
                    .repo(&self.owner, &self.name)
                    .get()
                    .await
                    .map_err(|source| Error::DefaultBranch { source })?
                    .default_branch
            }
        };
        let history =
            History::open(fallback.remote.clone(), &branch, fallback.command_timeout).await?;
        Ok(GitOracle {
            history,
            overwrite: self.overwrite.clone(),
        })
    }

    /// Both directions of the compare API: `rev...ours` empty means rev contains ours, `ours...rev`
    /// empty means ours contains rev. Gitea answers both empty when there is no merge base at all
    /// (unrelated histories, docs/research/field-gitea.md §5), which is neither.
    async fn compare_relation(&self, ours: &str, rev: &str) -> Result<Relation, Error> {
        let repo = self.client.repo(&self.owner, &self.name);
        let count =
            |base: &str, head: &str| {
                let repo = repo.clone();
                let (base, head) = (base.to_owned(), head.to_owned());
                async move {
                    let c = repo.compare(&base, &head).send().await.map_err(|source| {
                        Error::Compare {
                            base: short(&base).to_owned(),
                            head: short(&head).to_owned(),
                            source,
                        }
                    })?;
                    Ok::<usize, Error>(c.total_commits.max(c.commits.len() as u64) as usize)
                }
            };
        let missing_ours = count(rev, ours).await?;
        let beyond_ours = count(ours, rev).await?;
        Ok(match (missing_ours, beyond_ours) {
            (0, n) if n > 0 => Relation::Descendant {
                overwritten_by: self.overwritten_at(rev).await?,
            },
            (m, 0) if m > 0 => Relation::Older,
            _ => Relation::Unrelated,
        })
    }

    /// `Some(rev)` when one of our files at `rev` no longer holds our values.
    async fn overwritten_at(&self, rev: &str) -> Result<Option<String>, Error> {
        let Some(check) = &self.overwrite else {
            return Ok(None);
        };
        let repo = self.client.repo(&self.owner, &self.name);
        for path in &check.files {
            let contents = repo
                .contents(path.clone())
                .at_ref(rev)
                .get()
                .await
                .map_err(|source| Error::ReadFile {
                    path: path.clone(),
                    rev: short(rev).to_owned(),
                    source,
                })?;
            let Contents::File(file) = contents else {
                continue;
            };
            let Some(Ok(bytes)) = file.decoded() else {
                continue;
            };
            if !holds(&String::from_utf8_lossy(&bytes), check) {
                return Ok(Some(rev.to_owned()));
            }
        }
        Ok(None)
    }
}

/// Why the relation of a revision to our commit could not be told.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The compare API failed (a 404 means this server cannot compare these commits: a version or
    /// repository limit, or one of them is not in the repository).
    #[error("compare {base}...{head}")]
    Compare {
        /// The compare's base, shortened.
        base: String,
        /// The compare's head, shortened.
        head: String,
        /// What the forge said.
        #[source]
        source: gitea::Error,
    },
    /// Reading one of our files at a revision failed.
    #[error("read {path} at {rev}")]
    ReadFile {
        /// The file.
        path: String,
        /// The revision, shortened.
        rev: String,
        /// What the forge said.
        #[source]
        source: gitea::Error,
    },
    /// The repository's default branch (for the git fallback) could not be read.
    #[error("read the repository's default branch")]
    DefaultBranch {
        /// What the forge said.
        #[source]
        source: gitea::Error,
    },
    /// The compare API could not answer and its git fallback could not be opened either.
    #[error("{}; git fallback", crate::error::chain(compare))]
    Fallback {
        /// Why the compare API did not answer.
        compare: Box<Error>,
        /// Why the fallback did not open.
        #[source]
        source: Box<Error>,
    },
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] crate::forge::git::Error),
}

impl Error {
    /// The compare API answered 404.
    fn is_not_found(&self) -> bool {
        matches!(self, Error::Compare { source: gitea::Error::Api(a), .. } if a.status.as_u16() == 404)
    }
}

/// True when `text` already holds what the check's setting sets (applying it again changes nothing).
/// An entry that is gone, or a file that no longer reads as its target, does not hold our value.
fn holds(text: &str, check: &OverwriteCheck) -> bool {
    check
        .target
        .apply_with_setter(text, &check.setting, check.setter.as_deref())
        .is_ok_and(|edited| !edited.is_changed())
}

impl RevisionOracle for GiteaOracle {
    fn relation<'a>(
        &'a self,
        ours: &'a str,
        rev: &'a str,
    ) -> BoxFuture<'a, Result<Relation, OracleError>> {
        Box::pin(async move { Ok(self.relation_of(ours, rev).await?) })
    }
}

use crate::text::short;

/// The oracle over any git remote (the `git` transport): ancestry from the branch's commit graph,
/// fetched without trees or blobs when a revision is not known yet; our files at a revision fetched
/// on demand.
#[derive(Debug)]
pub struct GitOracle {
    /// The branch's history, fetched lazily.
    pub history: History,
    /// How to tell that a descendant overwrote our value (`None`: a descendant always counts).
    pub overwrite: Option<OverwriteCheck>,
}

impl GitOracle {
    async fn relation_of(&self, ours: &str, rev: &str) -> Result<Relation, Error> {
        for needed in [ours, rev] {
            if !self.history.has_commit(needed).await? {
                self.history.fetch().await?;
                if !self.history.has_commit(needed).await? {
                    // Not on the branch (any more): a history without it.
                    return Ok(Relation::Unrelated);
                }
            }
        }
        if self.history.is_ancestor(ours, rev).await? {
            for path in self.overwrite.iter().flat_map(|c| &c.files) {
                let check = self.overwrite.as_ref().expect("files come from it");
                let text = self.history.file_at(rev, path).await?;
                if !text.is_some_and(|t| holds(&t, check)) {
                    return Ok(Relation::Descendant {
                        overwritten_by: Some(rev.to_owned()),
                    });
                }
            }
            return Ok(Relation::Descendant {
                overwritten_by: None,
            });
        }
        if self.history.is_ancestor(rev, ours).await? {
            Ok(Relation::Older)
        } else {
            Ok(Relation::Unrelated)
        }
    }
}

impl RevisionOracle for GitOracle {
    fn relation<'a>(
        &'a self,
        ours: &'a str,
        rev: &'a str,
    ) -> BoxFuture<'a, Result<Relation, OracleError>> {
        Box::pin(async move { Ok(self.relation_of(ours, rev).await?) })
    }
}
