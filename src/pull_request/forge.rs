//! The forges the pull-request mode talks to, behind one set of operations: Gitea/Forgejo
//! (`/api/v1`) and GitHub (REST, GraphQL for auto-merge). Each answer is the common model the
//! decisions read ([`crate::forge::gitea::models`]); the differences live here:
//!
//! | | Gitea / Forgejo | GitHub |
//! | --- | --- | --- |
//! | labels at creation | ids in `POST /pulls` | names, `POST /issues/{n}/labels` after |
//! | an open duplicate | 409 | 422 "A pull request already exists for …" |
//! | auto-merge | `merge_when_checks_succeed` on the merge call | GraphQL `enablePullRequestAutoMerge`; "clean status" means merge now |
//! | merge | `POST /pulls/{n}/merge` `Do`, `head_commit_id` | `PUT /pulls/{n}/merge` `merge_method`, `sha` |
//! | required approvals | the branch's `required_approvals` | not readable without admin: `mergeable_state: blocked` |
//! | checks | commit statuses | commit statuses and check runs |
//! | a conflict | not mergeable twice on the same base, and the base changed our files | `mergeable_state: dirty`, or `behind` (the protection wants it up to date) |

use reqwest::StatusCode;

use crate::forge::gitea::models::{Branch, CommitStatus, Label, PullRequest, PullReview};
use crate::forge::gitea::{self, MergeAnswer, MergeStyle};
use crate::forge::github;

/// One repository on one forge.
pub(super) enum Forge<'a> {
    /// Gitea or Forgejo.
    Gitea(gitea::RepoHandler<'a>),
    /// GitHub (or GitHub Enterprise Server).
    Github(github::GithubRepo<'a>),
}

/// Why opening a pull request failed.
pub(super) enum CreateFailure {
    /// One is open already for the same head and base.
    Exists(gitea::Error),
    /// The repository does not take pull requests.
    Disabled,
    /// Anything else.
    Other(gitea::Error),
}

/// How a merge request was answered.
pub(super) enum Asked {
    /// Merged (or scheduled, or already scheduled): look at the pull request next.
    Accepted,
    /// Scheduled to merge when the checks succeed.
    Scheduled,
    /// Refused for now with the forge's message; the state says why.
    Refused(String),
}

/// What the merge decision reads, owned.
pub(super) struct Seen {
    pub pull: PullRequest,
    pub base: Branch,
    pub statuses: Vec<CommitStatus>,
    pub reviews: Vec<PullReview>,
    pub base_changed_our_files: bool,
    pub forge_blocked: Option<String>,
}

/// The merge commit's message: the merge lands on the base (maybe the repository whose pipeline
/// builds the image), and must not start that pipeline again. Rebase merges keep our commit's
/// message instead (the forges ignore it).
const SKIP_CI: &str = "[skip ci]";

fn refused(e: &gitea::Error) -> Option<String> {
    matches!(
        e.status(),
        Some(StatusCode::METHOD_NOT_ALLOWED | StatusCode::CONFLICT)
    )
    .then(|| e.api().map(|a| a.message.clone()).unwrap_or_default())
}

impl Forge<'_> {
    /// `owner/name`.
    pub fn full_name(&self) -> String {
        match self {
            Forge::Gitea(r) => r.full_name(),
            Forge::Github(r) => r.full_name(),
        }
    }

    /// The repository's default branch.
    pub async fn default_branch(&self) -> Result<String, gitea::Error> {
        match self {
            Forge::Gitea(r) => Ok(r.get().await?.default_branch),
            Forge::Github(r) => r.default_branch().await,
        }
    }

    /// Every label.
    pub async fn labels(&self) -> Result<Vec<Label>, gitea::Error> {
        match self {
            Forge::Gitea(r) => r.labels().await,
            Forge::Github(r) => r.labels().await,
        }
    }

    /// Page `page` (from 1) of the open pull requests and the page size asked for.
    pub async fn open_pulls(&self, page: u32) -> Result<(Vec<PullRequest>, usize), gitea::Error> {
        match self {
            Forge::Gitea(r) => Ok((r.open_pulls(page, 50).await?, 50)),
            Forge::Github(r) => Ok((r.open_pulls(page, 100).await?, 100)),
        }
    }

    /// Opens a pull request with its labels (id and name), assignees and reviewers.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
        labels: &[Label],
        assignees: &[String],
        reviewers: &[String],
    ) -> Result<(PullRequest, Option<String>), CreateFailure> {
        match self {
            Forge::Gitea(r) => r
                .create_pull(head, base, title)
                .body(body)
                .labels(labels.iter().map(|l| l.id).collect())
                .assignees(assignees.to_vec())
                .reviewers(reviewers.to_vec())
                .send()
                .await
                .map(|p| (p, None))
                .map_err(|e| match e.status() {
                    Some(StatusCode::CONFLICT) => CreateFailure::Exists(e),
                    Some(StatusCode::NOT_FOUND) => CreateFailure::Disabled,
                    _ => CreateFailure::Other(e),
                }),
            Forge::Github(r) => {
                let pull =
                    r.create_pull(head, base, title, body)
                        .await
                        .map_err(|e| match e.status() {
                            Some(StatusCode::UNPROCESSABLE_ENTITY)
                                if e.api()
                                    .is_some_and(|a| a.message.contains("already exists")) =>
                            {
                                CreateFailure::Exists(e)
                            }
                            _ => CreateFailure::Other(e),
                        })?;
                let names: Vec<String> = labels.iter().map(|l| l.name.clone()).collect();
                // The pull request exists now: a failure to decorate it is a warning, not a
                // failure that would leave it open unnamed.
                let warning = r
                    .decorate(pull.number, &names, assignees, reviewers)
                    .await
                    .err()
                    .map(|e| {
                        format!(
                            "cannot add the labels, assignees or reviewers to #{}: {}",
                            pull.number,
                            crate::error::chain(&e)
                        )
                    });
                Ok((pull, warning))
            }
        }
    }

    /// Comments on a pull request.
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), gitea::Error> {
        match self {
            Forge::Gitea(r) => r.comment(number, body).await,
            Forge::Github(r) => r.comment(number, body).await,
        }
    }

    /// After a merge: deletes the head branch where the merge itself does not (GitHub's merge API
    /// has no such option; Gitea's merge deletes it with `delete_branch_after_merge`). Returns
    /// whether this call deleted it.
    pub async fn delete_merged_branch(&self, branch: &str) -> Result<bool, gitea::Error> {
        match self {
            Forge::Gitea(_) => Ok(false),
            Forge::Github(r) => r.delete_branch(branch).await,
        }
    }

    /// Closes a pull request.
    pub async fn close(&self, number: u64) -> Result<(), gitea::Error> {
        match self {
            Forge::Gitea(r) => r.close_pull(number).await.map(drop),
            Forge::Github(r) => r.close_pull(number).await,
        }
    }

    /// Asks for the merge: now, or (`auto`) when the required checks succeed.
    pub async fn ask_merge(
        &self,
        number: u64,
        style: MergeStyle,
        head: &str,
        title: &str,
        delete_branch: bool,
        auto: bool,
    ) -> Result<Asked, gitea::Error> {
        match self {
            Forge::Gitea(r) => {
                let req = r
                    .merge_pull(number, style)
                    .message(title, SKIP_CI)
                    .head_commit_id(head)
                    .delete_branch_after_merge(delete_branch)
                    .when_checks_succeed(auto);
                match req.send().await {
                    Ok(MergeAnswer::Merged) => Ok(Asked::Accepted),
                    Ok(MergeAnswer::Scheduled) => Ok(Asked::Scheduled),
                    // Already scheduled by an earlier run of the same change.
                    Err(e)
                        if e.status() == Some(StatusCode::CONFLICT)
                            && e.api()
                                .is_some_and(|a| a.message.contains("already scheduled")) =>
                    {
                        Ok(Asked::Accepted)
                    }
                    Err(e) => refused(&e).map(Asked::Refused).ok_or(e),
                }
            }
            Forge::Github(r) if auto => {
                let (_, extra) = r.pull(number).await?;
                match r
                    .enable_auto_merge(&extra.node_id, style, title, SKIP_CI)
                    .await?
                {
                    github::AutoMerge::Enabled => Ok(Asked::Scheduled),
                    // Nothing to wait for: GitHub wants a direct merge.
                    github::AutoMerge::AlreadyMergeable => {
                        self.merge_now(number, style, head, title, delete_branch)
                            .await
                    }
                }
            }
            Forge::Github(_) => {
                self.merge_now(number, style, head, title, delete_branch)
                    .await
            }
        }
    }

    /// Merges now if the head is still `head`.
    pub async fn merge_now(
        &self,
        number: u64,
        style: MergeStyle,
        head: &str,
        title: &str,
        delete_branch: bool,
    ) -> Result<Asked, gitea::Error> {
        let result = match self {
            Forge::Gitea(r) => r
                .merge_pull(number, style)
                .message(title, SKIP_CI)
                .head_commit_id(head)
                .delete_branch_after_merge(delete_branch)
                .send()
                .await
                .map(drop),
            // GitHub deletes merged branches by the repository's setting.
            Forge::Github(r) => r
                .merge_pull(number, style, head, title, SKIP_CI)
                .await
                .map(drop),
        };
        match result {
            Ok(()) => Ok(Asked::Accepted),
            Err(e) => refused(&e).map(Asked::Refused).ok_or(e),
        }
    }

    /// Everything the merge decision needs about pull request `number` into `base` at `head`;
    /// `changed_files` are the files our commit changed.
    pub async fn seen(
        &self,
        number: u64,
        base: &str,
        head: &str,
        changed_files: &[String],
    ) -> Result<Seen, gitea::Error> {
        match self {
            Forge::Gitea(r) => {
                let pull = r.pull(number).await?;
                let branch = r.branch(base).send().await?;
                if pull.merged || pull.state == "closed" {
                    return Ok(Seen::settled(pull, branch));
                }
                let mut base_changed_our_files = false;
                if !pull.mergeable
                    && !pull.merge_base.is_empty()
                    && pull.merge_base != branch.commit.id
                {
                    for path in changed_files {
                        let blob = |at: String| async move {
                            match r.contents(path).at_ref(at).get().await {
                                Ok(gitea::models::Contents::File(c)) => Ok(Some(c.sha)),
                                Ok(_) => Ok(None),
                                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
                                Err(e) => Err(e),
                            }
                        };
                        if blob(pull.merge_base.clone()).await?
                            != blob(branch.commit.id.clone()).await?
                        {
                            base_changed_our_files = true;
                            break;
                        }
                    }
                }
                let statuses = r
                    .combined_status(head)
                    .await?
                    .and_then(|c| c.statuses)
                    .unwrap_or_default();
                let reviews = r.pull_reviews(number).await?;
                Ok(Seen {
                    pull,
                    base: branch,
                    statuses,
                    reviews,
                    base_changed_our_files,
                    forge_blocked: None,
                })
            }
            Forge::Github(r) => {
                let (mut pull, extra) = r.pull(number).await?;
                let branch = r.branch(base).await?;
                // `behind` (the protection wants the branch up to date) is mergeable by itself but
                // refused: like a conflict, it is re-applied to the new base.
                if extra.mergeable_state == "behind" {
                    pull.mergeable = false;
                }
                if pull.merged || pull.state == "closed" {
                    return Ok(Seen::settled(pull, branch));
                }
                let statuses = r.statuses(head).await?;
                let reviews = r.reviews(number, head).await?;
                let state = extra.mergeable_state.as_str();
                Ok(Seen {
                    // A conflict, or a branch the protection requires up to date: both are
                    // re-applied to the new base.
                    base_changed_our_files: matches!(state, "dirty" | "behind"),
                    forge_blocked: (state == "blocked").then(|| {
                        "GitHub's branch rules (mergeable_state: blocked; required reviews, or \
                         rules a token without admin rights cannot read)"
                            .to_owned()
                    }),
                    pull,
                    base: branch,
                    statuses,
                    reviews,
                })
            }
        }
    }
}

impl Seen {
    /// A merged or closed pull request: nothing else matters.
    fn settled(pull: PullRequest, base: Branch) -> Seen {
        Seen {
            pull,
            base,
            statuses: Vec::new(),
            reviews: Vec::new(),
            base_changed_our_files: false,
            forge_blocked: None,
        }
    }
}
