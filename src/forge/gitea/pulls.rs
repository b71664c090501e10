//! Pull requests, their reviews and merges, and the repository's labels and combined commit status:
//! what the pull-request mode needs. Shapes from `sandbox/specs/gitea-swagger.json`; the server's
//! behaviour (status codes, merge styles, auto-merge) in `docs/research/gitea-pulls.md`.

use reqwest::{Method, StatusCode};
use serde::Serialize;

use super::models::{CombinedStatus, Label, PullRequest, PullReview};
use super::{Error, RepoHandler};

/// How a pull request is merged (`MergePullRequestOption.Do`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MergeStyle {
    /// A merge commit with the base and the head as parents.
    #[serde(rename = "merge")]
    Merge,
    /// One new commit on the base with the head's changes.
    #[serde(rename = "squash")]
    Squash,
    /// The head's commits replayed on the base (new SHAs), the base fast-forwarded.
    #[serde(rename = "rebase")]
    Rebase,
    /// Rebased, then a merge commit.
    #[serde(rename = "rebase-merge")]
    RebaseMerge,
    /// Only when the base is an ancestor of the head: the base moves to the head.
    #[serde(rename = "fast-forward-only")]
    FastForwardOnly,
}

impl MergeStyle {
    /// The name the API and the inputs use.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeStyle::Merge => "merge",
            MergeStyle::Squash => "squash",
            MergeStyle::Rebase => "rebase",
            MergeStyle::RebaseMerge => "rebase-merge",
            MergeStyle::FastForwardOnly => "fast-forward-only",
        }
    }

    /// True when the merge keeps our commit itself in the base's history (so the merged commit is a
    /// descendant of ours); false when it writes new commits with our content.
    pub fn keeps_our_commit(self) -> bool {
        matches!(self, MergeStyle::Merge | MergeStyle::FastForwardOnly)
    }

    /// True when the merge writes a commit of its own at the base's tip, with the message we give
    /// (`[skip ci]`); false when the branch's commits become the tip as they are (rebase,
    /// fast-forward).
    pub fn writes_merge_message(self) -> bool {
        matches!(
            self,
            MergeStyle::Merge | MergeStyle::Squash | MergeStyle::RebaseMerge
        )
    }
}

/// How the server answered a merge request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeAnswer {
    /// 200: merged now.
    Merged,
    /// 201: scheduled to merge when the checks succeed.
    Scheduled,
}

impl<'c> RepoHandler<'c> {
    /// `POST /repos/{o}/{r}/pulls`: opens a pull request from `head` into `base`.
    pub fn create_pull(
        &self,
        head: impl Into<String>,
        base: impl Into<String>,
        title: impl Into<String>,
    ) -> CreatePullBuilder<'_, 'c> {
        CreatePullBuilder {
            repo: self,
            head: head.into(),
            base: base.into(),
            title: title.into(),
            body: String::new(),
            labels: Vec::new(),
            assignees: Vec::new(),
            reviewers: Vec::new(),
        }
    }

    /// `GET /repos/{o}/{r}/pulls?state=open`: one page (`page` from 1) of the open pull requests,
    /// newest first, at most `limit` (the server caps it, 50 by default).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn open_pulls(&self, page: u32, limit: u32) -> Result<Vec<PullRequest>, Error> {
        let (page, limit) = (page.to_string(), limit.to_string());
        self.client()
            .send(
                Method::GET,
                &self.segments(&["pulls"]),
                &[
                    ("state", "open"),
                    ("sort", "newest"),
                    ("page", &page),
                    ("limit", &limit),
                ],
                None::<&()>,
            )
            .await
    }

    /// `GET /repos/{o}/{r}/pulls/{index}`.
    ///
    /// # Errors
    /// See [`Error`]; 404 for an unknown number.
    pub async fn pull(&self, number: u64) -> Result<PullRequest, Error> {
        let n = number.to_string();
        self.client()
            .send(
                Method::GET,
                &self.segments(&["pulls", &n]),
                &[],
                None::<&()>,
            )
            .await
    }

    /// `PATCH /repos/{o}/{r}/pulls/{index}` with `state: closed`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn close_pull(&self, number: u64) -> Result<PullRequest, Error> {
        let n = number.to_string();
        self.client()
            .send(
                Method::PATCH,
                &self.segments(&["pulls", &n]),
                &[],
                Some(&serde_json::json!({"state": "closed"})),
            )
            .await
    }

    /// `GET /repos/{o}/{r}/pulls/{index}/reviews`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn pull_reviews(&self, number: u64) -> Result<Vec<PullReview>, Error> {
        let n = number.to_string();
        self.client()
            .send(
                Method::GET,
                &self.segments(&["pulls", &n, "reviews"]),
                &[],
                None::<&()>,
            )
            .await
    }

    /// `POST /repos/{o}/{r}/pulls/{index}/merge`.
    pub fn merge_pull(&self, number: u64, style: MergeStyle) -> MergePullBuilder<'_, 'c> {
        MergePullBuilder {
            repo: self,
            number,
            style,
            title: None,
            message: None,
            head_commit_id: None,
            delete_branch_after_merge: false,
            merge_when_checks_succeed: false,
        }
    }

    /// `POST /repos/{o}/{r}/issues/{index}/comments`: a comment on an issue or pull request.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), Error> {
        let n = number.to_string();
        let _: serde_json::Value = self
            .client()
            .send(
                Method::POST,
                &self.segments(&["issues", &n, "comments"]),
                &[],
                Some(&serde_json::json!({ "body": body })),
            )
            .await?;
        Ok(())
    }

    /// `GET /repos/{o}/{r}/labels`: every label of the repository (all pages).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn labels(&self) -> Result<Vec<Label>, Error> {
        let mut all = Vec::new();
        for page in 1..=20u32 {
            let p = page.to_string();
            let got: Vec<Label> = self
                .client()
                .send(
                    Method::GET,
                    &self.segments(&["labels"]),
                    &[("page", &p), ("limit", "50")],
                    None::<&()>,
                )
                .await?;
            let last = got.len() < 50;
            all.extend(got);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /repos/{o}/{r}/commits/{ref}/status`: the latest status of each context; `None` for a
    /// commit without statuses on Gitea ≤ 1.24 and Forgejo, which answer a `null` body.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn combined_status(&self, reference: &str) -> Result<Option<CombinedStatus>, Error> {
        self.client()
            .send(
                Method::GET,
                &self.segments(&["commits", reference, "status"]),
                &[("limit", "50")],
                None::<&()>,
            )
            .await
    }
}

/// `POST /repos/{o}/{r}/pulls`; serialises as `CreatePullRequestOption`.
#[derive(Debug, Serialize)]
pub struct CreatePullBuilder<'r, 'c> {
    #[serde(skip)]
    repo: &'r RepoHandler<'c>,
    head: String,
    base: String,
    title: String,
    body: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    assignees: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reviewers: Vec<String>,
}

impl CreatePullBuilder<'_, '_> {
    /// The description (Markdown).
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// Label ids (see [`RepoHandler::labels`]).
    pub fn labels(mut self, ids: Vec<i64>) -> Self {
        self.labels = ids;
        self
    }

    /// Assignees by login.
    pub fn assignees(mut self, logins: Vec<String>) -> Self {
        self.assignees = logins;
        self
    }

    /// Requested reviewers by login.
    pub fn reviewers(mut self, logins: Vec<String>) -> Self {
        self.reviewers = logins;
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    /// See [`Error`]; 409 when an open pull request with the same head and base exists, 422 when
    /// the head has no changes.
    pub async fn send(self) -> Result<PullRequest, Error> {
        let segments = self.repo.segments(&["pulls"]);
        self.repo
            .client()
            .send(Method::POST, &segments, &[], Some(&self))
            .await
    }
}

/// `POST /repos/{o}/{r}/pulls/{index}/merge`; serialises as `MergePullRequestOption`.
#[derive(Debug, Serialize)]
pub struct MergePullBuilder<'r, 'c> {
    #[serde(skip)]
    repo: &'r RepoHandler<'c>,
    #[serde(skip)]
    number: u64,
    #[serde(rename = "Do")]
    style: MergeStyle,
    #[serde(rename = "MergeTitleField", skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(rename = "MergeMessageField", skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_commit_id: Option<String>,
    delete_branch_after_merge: bool,
    merge_when_checks_succeed: bool,
}

impl MergePullBuilder<'_, '_> {
    /// The merge commit's title and message (merge and squash styles).
    pub fn message(mut self, title: impl Into<String>, message: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self.message = Some(message.into());
        self
    }

    /// Merge only if the head is still this commit (409 otherwise).
    pub fn head_commit_id(mut self, sha: impl Into<String>) -> Self {
        self.head_commit_id = Some(sha.into());
        self
    }

    /// Delete the head branch once merged.
    pub fn delete_branch_after_merge(mut self, on: bool) -> Self {
        self.delete_branch_after_merge = on;
        self
    }

    /// Schedule the merge for when the required checks succeed (merges now when they already have).
    pub fn when_checks_succeed(mut self, on: bool) -> Self {
        self.merge_when_checks_succeed = on;
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    /// See [`Error`]; 405 when the pull request may not be merged yet (checks, approvals, already
    /// merged), 409 when the head moved or conflicts.
    pub async fn send(self) -> Result<MergeAnswer, Error> {
        let n = self.number.to_string();
        let segments = self.repo.segments(&["pulls", &n, "merge"]);
        let status = self
            .repo
            .client()
            .send_for_status(Method::POST, &segments, &[], Some(&self))
            .await?;
        Ok(if status == StatusCode::CREATED {
            MergeAnswer::Scheduled
        } else {
            MergeAnswer::Merged
        })
    }
}
