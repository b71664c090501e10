//! GitHub's pull requests over its REST API (and GraphQL for auto-merge), on the same HTTP client as
//! the Gitea endpoints ([`Client::builder`] with [`ClientBuilder::github`]): what the pull-request
//! mode needs. Answers are converted into the [`models`] the mode decides on, so its rules stay the
//! same for both forges. Facts (status codes, messages, fields): `docs/research/github-pulls.md`.

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::gitea::models::{
    Branch, CommitStatus, Label, PayloadCommit, PrBranch, PullRequest, PullReview,
};
use super::gitea::{ApiError, Client, Error, MergeStyle};

/// Endpoints of one GitHub repository; borrows the client.
#[derive(Debug, Clone)]
pub struct GithubRepo<'c> {
    client: &'c Client,
    owner: String,
    name: String,
}

/// What GitHub adds to a pull request beyond the common model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullExtra {
    /// The GraphQL node id (auto-merge takes it).
    pub node_id: String,
    /// `clean`, `dirty` (conflicts), `blocked`, `behind`, `unstable`, `unknown`, `draft`, `has_hooks`.
    pub mergeable_state: String,
}

/// How GitHub answered an auto-merge request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoMerge {
    /// Enabled: GitHub merges once the requirements are met.
    Enabled,
    /// The pull request is already mergeable ("is in clean status"): merge it directly.
    AlreadyMergeable,
}

#[derive(Debug, Deserialize)]
struct GhRef {
    #[serde(rename = "ref", default)]
    branch: String,
    #[serde(default)]
    sha: String,
}

#[derive(Debug, Deserialize)]
struct GhPull {
    number: u64,
    #[serde(default)]
    node_id: String,
    #[serde(default)]
    html_url: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    merged_at: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    mergeable: Option<bool>,
    #[serde(default)]
    mergeable_state: Option<String>,
    head: GhRef,
    base: GhRef,
}

impl GhPull {
    /// The common model. `merge_commit_sha` is kept only once merged: on an open pull request it
    /// names GitHub's test merge. `mergeable` is `null` while GitHub computes it: not mergeable yet.
    fn into_model(self) -> (PullRequest, PullExtra) {
        let merged = self.merged.unwrap_or(false) || self.merged_at.is_some();
        let pull = PullRequest {
            number: self.number,
            html_url: self.html_url,
            state: self.state,
            title: self.title,
            body: self.body.unwrap_or_default(),
            merged,
            merge_commit_sha: if merged { self.merge_commit_sha } else { None },
            mergeable: self.mergeable == Some(true),
            merge_base: String::new(),
            head: PrBranch {
                branch: self.head.branch,
                sha: self.head.sha,
            },
            base: PrBranch {
                branch: self.base.branch,
                sha: self.base.sha,
            },
        };
        let extra = PullExtra {
            node_id: self.node_id,
            mergeable_state: self.mergeable_state.unwrap_or_default(),
        };
        (pull, extra)
    }
}

impl Client {
    /// The handler for one GitHub repository (a client built with [`super::gitea::ClientBuilder::github`]).
    pub fn github_repo(&self, owner: impl Into<String>, name: impl Into<String>) -> GithubRepo<'_> {
        GithubRepo {
            client: self,
            owner: owner.into(),
            name: name.into(),
        }
    }
}

impl GithubRepo<'_> {
    fn segments<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut s = vec!["repos", self.owner.as_str(), self.name.as_str()];
        s.extend_from_slice(rest);
        s
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// `GET /repos/{o}/{r}`: the default branch.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn default_branch(&self) -> Result<String, Error> {
        #[derive(Deserialize)]
        struct Repo {
            #[serde(default)]
            default_branch: String,
        }
        let r: Repo = self
            .client
            .send(Method::GET, &self.segments(&[]), &[], None::<&()>)
            .await?;
        Ok(r.default_branch)
    }

    /// `GET /repos/{o}/{r}/branches/{branch}`, with its protection's required status checks.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn branch(&self, branch: &str) -> Result<Branch, Error> {
        #[derive(Deserialize)]
        struct Commit {
            sha: String,
        }
        #[derive(Deserialize, Default)]
        struct Checks {
            #[serde(default)]
            contexts: Vec<String>,
        }
        #[derive(Deserialize, Default)]
        struct Protection {
            #[serde(default)]
            required_status_checks: Option<Checks>,
        }
        #[derive(Deserialize)]
        struct GhBranch {
            name: String,
            commit: Commit,
            #[serde(default)]
            protected: bool,
            #[serde(default)]
            protection: Option<Protection>,
        }
        let mut rest = vec!["branches"];
        rest.extend(branch.split('/'));
        let b: GhBranch = self
            .client
            .send(Method::GET, &self.segments(&rest), &[], None::<&()>)
            .await?;
        let contexts = b
            .protection
            .and_then(|p| p.required_status_checks)
            .map(|c| c.contexts)
            .unwrap_or_default();
        Ok(Branch {
            name: b.name,
            commit: PayloadCommit { id: b.commit.sha },
            protected: b.protected,
            required_approvals: 0,
            enable_status_check: !contexts.is_empty(),
            status_check_contexts: contexts,
            user_can_push: false,
        })
    }

    /// `GET /repos/{o}/{r}/labels`: every label (all pages).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn labels(&self) -> Result<Vec<Label>, Error> {
        let mut all = Vec::new();
        for page in 1..=20u32 {
            let p = page.to_string();
            let got: Vec<Label> = self
                .client
                .send(
                    Method::GET,
                    &self.segments(&["labels"]),
                    &[("per_page", "100"), ("page", &p)],
                    None::<&()>,
                )
                .await?;
            let last = got.len() < 100;
            all.extend(got);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// `GET /repos/{o}/{r}/pulls?state=open`: one page (from 1) of the open pull requests, newest
    /// first. List items carry no `merged` or `mergeable`: read a pull request for those.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn open_pulls(&self, page: u32, per_page: u32) -> Result<Vec<PullRequest>, Error> {
        let (page, per_page) = (page.to_string(), per_page.to_string());
        let got: Vec<GhPull> = self
            .client
            .send(
                Method::GET,
                &self.segments(&["pulls"]),
                &[
                    ("state", "open"),
                    ("sort", "created"),
                    ("direction", "desc"),
                    ("per_page", &per_page),
                    ("page", &page),
                ],
                None::<&()>,
            )
            .await?;
        Ok(got.into_iter().map(|p| p.into_model().0).collect())
    }

    /// `GET /repos/{o}/{r}/pulls/{n}`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn pull(&self, number: u64) -> Result<(PullRequest, PullExtra), Error> {
        let n = number.to_string();
        let p: GhPull = self
            .client
            .send(
                Method::GET,
                &self.segments(&["pulls", &n]),
                &[],
                None::<&()>,
            )
            .await?;
        Ok(p.into_model())
    }

    /// `POST /repos/{o}/{r}/pulls`; 422 "A pull request already exists for owner:branch." when one is
    /// open for the same head and base.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn create_pull(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest, Error> {
        let p: GhPull = self
            .client
            .send(
                Method::POST,
                &self.segments(&["pulls"]),
                &[],
                Some(
                    &json!({"head": head, "base": base, "title": title, "body": body,
                             "maintainer_can_modify": false}),
                ),
            )
            .await?;
        Ok(p.into_model().0)
    }

    /// Adds labels (by name), assignees and requested reviewers to a new pull request.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn decorate(
        &self,
        number: u64,
        labels: &[String],
        assignees: &[String],
        reviewers: &[String],
    ) -> Result<(), Error> {
        let n = number.to_string();
        if !labels.is_empty() {
            self.client
                .send_for_status(
                    Method::POST,
                    &self.segments(&["issues", &n, "labels"]),
                    &[],
                    Some(&json!({ "labels": labels })),
                )
                .await?;
        }
        if !assignees.is_empty() {
            self.client
                .send_for_status(
                    Method::POST,
                    &self.segments(&["issues", &n, "assignees"]),
                    &[],
                    Some(&json!({ "assignees": assignees })),
                )
                .await?;
        }
        if !reviewers.is_empty() {
            self.client
                .send_for_status(
                    Method::POST,
                    &self.segments(&["pulls", &n, "requested_reviewers"]),
                    &[],
                    Some(&json!({ "reviewers": reviewers })),
                )
                .await?;
        }
        Ok(())
    }

    /// `PATCH /repos/{o}/{r}/pulls/{n}` with `state: closed`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn close_pull(&self, number: u64) -> Result<(), Error> {
        let n = number.to_string();
        self.client
            .send_for_status(
                Method::PATCH,
                &self.segments(&["pulls", &n]),
                &[],
                Some(&json!({"state": "closed"})),
            )
            .await
            .map(drop)
    }

    /// `DELETE /repos/{o}/{r}/git/refs/heads/{branch}`: 204; `Ok(false)` when the branch is gone
    /// already (422 "Reference does not exist", e.g. deleted by the repository's "automatically
    /// delete head branches" setting).
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn delete_branch(&self, branch: &str) -> Result<bool, Error> {
        let mut rest = vec!["git", "refs", "heads"];
        rest.extend(branch.split('/'));
        match self
            .client
            .send_for_status(Method::DELETE, &self.segments(&rest), &[], None::<&()>)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(reqwest::StatusCode::UNPROCESSABLE_ENTITY) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /repos/{o}/{r}/issues/{n}/comments`.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), Error> {
        let n = number.to_string();
        self.client
            .send_for_status(
                Method::POST,
                &self.segments(&["issues", &n, "comments"]),
                &[],
                Some(&json!({ "body": body })),
            )
            .await
            .map(drop)
    }

    /// `PUT /repos/{o}/{r}/pulls/{n}/merge` if the head is still `sha`: the merge's commit.
    ///
    /// # Errors
    /// See [`Error`]; 405 when it cannot be merged (not mergeable, required checks or reviews, base
    /// modified, a disallowed method), 409 when the head moved.
    pub async fn merge_pull(
        &self,
        number: u64,
        style: MergeStyle,
        sha: &str,
        title: &str,
        message: &str,
    ) -> Result<String, Error> {
        #[derive(Deserialize)]
        struct Merged {
            sha: String,
        }
        let n = number.to_string();
        let method = github_method(style).ok_or_else(|| {
            Error::Api(ApiError {
                method: Method::PUT,
                path: format!("/repos/{}/pulls/{n}/merge", self.full_name()),
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("GitHub has no {} merge", style.as_str()),
            })
        })?;
        let m: Merged = self
            .client
            .send(
                Method::PUT,
                &self.segments(&["pulls", &n, "merge"]),
                &[],
                Some(
                    &json!({"merge_method": method, "sha": sha, "commit_title": title,
                             "commit_message": message}),
                ),
            )
            .await?;
        Ok(m.sha)
    }

    /// GraphQL `enablePullRequestAutoMerge` (there is no REST endpoint).
    ///
    /// # Errors
    /// See [`Error`]; a GraphQL error (HTTP 200 with `errors`) becomes a 422 with its message, e.g.
    /// "Auto merge is not allowed for this repository".
    pub async fn enable_auto_merge(
        &self,
        node_id: &str,
        style: MergeStyle,
        headline: &str,
        body: &str,
    ) -> Result<AutoMerge, Error> {
        #[derive(Deserialize)]
        struct GqlError {
            #[serde(default)]
            message: String,
        }
        #[derive(Deserialize)]
        struct Gql {
            #[serde(default)]
            errors: Vec<GqlError>,
        }
        let method = github_method(style)
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| "MERGE".into());
        let query = "mutation($id: ID!, $method: PullRequestMergeMethod!, $headline: String, \
                     $body: String) { enablePullRequestAutoMerge(input: {pullRequestId: $id, \
                     mergeMethod: $method, commitHeadline: $headline, commitBody: $body}) \
                     { pullRequest { id } } }";
        let answer: Gql = self
            .client
            .send_graphql(&json!({"query": query, "variables": {
                "id": node_id, "method": method, "headline": headline, "body": body}}))
            .await?;
        match answer.errors.first() {
            None => Ok(AutoMerge::Enabled),
            // "Pull request Pull request is in clean status" (or "unstable status"): nothing to wait
            // for, so GitHub refuses to schedule.
            Some(e)
                if e.message.contains("clean status") || e.message.contains("unstable status") =>
            {
                Ok(AutoMerge::AlreadyMergeable)
            }
            Some(e) => Err(Error::Api(ApiError {
                method: Method::POST,
                path: "/graphql".into(),
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: e.message.clone(),
            })),
        }
    }

    /// The head's statuses and check runs as statuses (`GET …/commits/{ref}/status` and
    /// `…/check-runs`); a token that may not read checks sees only the statuses.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn statuses(&self, reference: &str) -> Result<Vec<CommitStatus>, Error> {
        #[derive(Deserialize)]
        struct GhStatus {
            #[serde(default)]
            context: String,
            #[serde(default)]
            state: String,
            #[serde(default)]
            description: Option<String>,
            #[serde(default)]
            target_url: Option<String>,
        }
        #[derive(Deserialize)]
        struct Combined {
            #[serde(default)]
            statuses: Vec<GhStatus>,
        }
        #[derive(Deserialize)]
        struct Run {
            #[serde(default)]
            name: String,
            #[serde(default)]
            status: String,
            #[serde(default)]
            conclusion: Option<String>,
            #[serde(default)]
            html_url: Option<String>,
        }
        #[derive(Deserialize)]
        struct Runs {
            #[serde(default)]
            check_runs: Vec<Run>,
        }
        let combined: Combined = self
            .client
            .send(
                Method::GET,
                &self.segments(&["commits", reference, "status"]),
                &[("per_page", "100")],
                None::<&()>,
            )
            .await?;
        let mut out: Vec<CommitStatus> = combined
            .statuses
            .into_iter()
            .map(|s| CommitStatus {
                context: s.context,
                status: s.state,
                description: s.description.unwrap_or_default(),
                target_url: s.target_url.unwrap_or_default(),
            })
            .collect();
        match self
            .client
            .send::<Runs, ()>(
                Method::GET,
                &self.segments(&["commits", reference, "check-runs"]),
                &[("per_page", "100")],
                None,
            )
            .await
        {
            Ok(runs) => out.extend(runs.check_runs.into_iter().map(|r| CommitStatus {
                status: check_state(&r.status, r.conclusion.as_deref()).to_owned(),
                description: r.conclusion.clone().unwrap_or(r.status),
                context: r.name,
                target_url: r.html_url.unwrap_or_default(),
            })),
            Err(e)
                if matches!(
                    e.status(),
                    Some(StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
                ) => {}
            Err(e) => return Err(e),
        }
        Ok(out)
    }

    /// `GET /repos/{o}/{r}/pulls/{n}/reviews`, as the common model: each user's latest verdict,
    /// stale when it reviewed another head.
    ///
    /// # Errors
    /// See [`Error`].
    pub async fn reviews(&self, number: u64, head: &str) -> Result<Vec<PullReview>, Error> {
        #[derive(Deserialize)]
        struct User {
            #[serde(default)]
            login: String,
        }
        #[derive(Deserialize)]
        struct Review {
            #[serde(default)]
            user: Option<User>,
            #[serde(default)]
            state: String,
            #[serde(default)]
            commit_id: String,
        }
        let n = number.to_string();
        let got: Vec<Review> = self
            .client
            .send(
                Method::GET,
                &self.segments(&["pulls", &n, "reviews"]),
                &[("per_page", "100")],
                None::<&()>,
            )
            .await?;
        let mut latest: Vec<(String, Review)> = Vec::new();
        for r in got.into_iter().filter(|r| r.state != "COMMENTED") {
            let login = r.user.as_ref().map(|u| u.login.clone()).unwrap_or_default();
            latest.retain(|(l, _)| *l != login);
            latest.push((login, r));
        }
        Ok(latest
            .into_iter()
            .map(|(_, r)| PullReview {
                state: match r.state.as_str() {
                    "CHANGES_REQUESTED" => "REQUEST_CHANGES".into(),
                    other => other.to_owned(),
                },
                official: true,
                stale: r.commit_id != head,
                dismissed: r.state == "DISMISSED",
            })
            .collect())
    }
}

/// GitHub's `merge_method` for a style; it has no rebase-merge or fast-forward-only.
pub fn github_method(style: MergeStyle) -> Option<&'static str> {
    match style {
        MergeStyle::Merge => Some("merge"),
        MergeStyle::Squash => Some("squash"),
        MergeStyle::Rebase => Some("rebase"),
        MergeStyle::RebaseMerge | MergeStyle::FastForwardOnly => None,
    }
}

/// A check run as a status state: a completed run's conclusion decides; anything else is pending.
fn check_state(status: &str, conclusion: Option<&str>) -> &'static str {
    match (status, conclusion) {
        ("completed", Some("success" | "neutral" | "skipped")) => "success",
        ("completed", Some(_)) => "failure",
        _ => "pending",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_pull_requests_are_never_merged_by_their_test_merge_sha() {
        let open: GhPull = serde_json::from_value(json!({
            "number": 3, "state": "open", "merged": false, "merge_commit_sha": "7e57",
            "mergeable": null, "mergeable_state": "unknown", "node_id": "PR_1",
            "head": {"ref": "b", "sha": "h"}, "base": {"ref": "main", "sha": "m"},
        }))
        .unwrap();
        let (p, extra) = open.into_model();
        assert_eq!(
            (p.merged, p.merge_commit_sha, p.mergeable),
            (false, None, false)
        );
        assert_eq!(extra.node_id, "PR_1");
        // List items: no `merged`, but `merged_at`.
        let listed: GhPull = serde_json::from_value(json!({
            "number": 4, "state": "closed", "merged_at": "2026-12-01T00:00:00Z",
            "merge_commit_sha": "d0ne", "head": {"ref": "b", "sha": "h"}, "base": {"ref": "main", "sha": "m"},
        }))
        .unwrap();
        let (p, _) = listed.into_model();
        assert_eq!(
            (p.merged, p.merge_commit_sha.as_deref()),
            (true, Some("d0ne"))
        );
    }

    #[test]
    fn check_runs_read_as_statuses() {
        for (status, conclusion, want) in [
            ("completed", Some("success"), "success"),
            ("completed", Some("skipped"), "success"),
            ("completed", Some("neutral"), "success"),
            ("completed", Some("failure"), "failure"),
            ("completed", Some("timed_out"), "failure"),
            ("completed", Some("action_required"), "failure"),
            ("in_progress", None, "pending"),
            ("queued", None, "pending"),
        ] {
            assert_eq!(
                check_state(status, conclusion),
                want,
                "{status} {conclusion:?}"
            );
        }
        assert_eq!(github_method(MergeStyle::FastForwardOnly), None);
    }
}
