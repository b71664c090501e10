//! Tells how a revision Argo CD reports relates to our commit, through the Gitea/Forgejo compare
//! API, and whether our value survived there (research TL;DR 4: "superseded" and "overwritten").
//!
//! `compare(X...S)` lists the commits of S missing from X: none means X contains S. `compare(S...X)`
//! empty means X is an ancestor of S (Argo CD has not seen our commit). Anything else diverged.

use futures::future::BoxFuture;

use crate::argocd::phase::RevisionOracle;
use crate::argocd::verdict::Relation;
use crate::edit::{self, ImageSetting};
use crate::forge::gitea::{self, models::Contents};

/// The oracle over a Gitea repository.
#[derive(Debug, Clone)]
pub struct GiteaOracle {
    /// The forge client (with the publish token).
    pub client: gitea::Client,
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// Kustomization files our commit changed.
    pub files: Vec<String>,
    /// The setting we applied: a file where applying it again would change something no longer
    /// holds our value.
    pub setting: ImageSetting,
}

impl GiteaOracle {
    async fn relation_of(&self, ours: &str, rev: &str) -> Result<Relation, String> {
        let repo = self.client.repo(&self.owner, &self.name);
        let missing_ours = repo
            .compare(rev, ours)
            .send()
            .await
            .map_err(|e| format!("compare {}...{}: {e}", short(rev), short(ours)))?;
        if missing_ours.total_commits == 0 && missing_ours.commits.is_empty() {
            return Ok(Relation::Descendant {
                overwritten_by: self.overwritten_at(rev).await?,
            });
        }
        let beyond_ours = repo
            .compare(ours, rev)
            .send()
            .await
            .map_err(|e| format!("compare {}...{}: {e}", short(ours), short(rev)))?;
        if beyond_ours.total_commits == 0 && beyond_ours.commits.is_empty() {
            Ok(Relation::Older)
        } else {
            Ok(Relation::Unrelated)
        }
    }

    /// `Some(rev)` when one of our files at `rev` no longer holds our values.
    async fn overwritten_at(&self, rev: &str) -> Result<Option<String>, String> {
        let repo = self.client.repo(&self.owner, &self.name);
        for path in &self.files {
            let contents = repo
                .contents(path.clone())
                .at_ref(rev)
                .get()
                .await
                .map_err(|e| format!("read {path} at {}: {e}", short(rev)))?;
            let Contents::File(file) = contents else {
                continue;
            };
            let Some(Ok(bytes)) = file.decoded() else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            match edit::set_images(&text, std::slice::from_ref(&self.setting)) {
                Ok(edited) if edited.is_changed() => return Ok(Some(rev.to_owned())),
                Ok(_) => {}
                // Our entry is gone or the file is broken: our value does not hold there either.
                Err(_) => return Ok(Some(rev.to_owned())),
            }
        }
        Ok(None)
    }
}

impl RevisionOracle for GiteaOracle {
    fn relation<'a>(
        &'a self,
        ours: &'a str,
        rev: &'a str,
    ) -> BoxFuture<'a, Result<Relation, String>> {
        Box::pin(self.relation_of(ours, rev))
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}
