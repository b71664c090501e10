//! The repository handler and one builder per endpoint under `/repos/{owner}/{repo}`.

use base64::Engine as _;
use reqwest::Method;
use serde::Serialize;

use super::models::{
    Branch, ChangeFileOperation, Commit, Compare, Contents, FilesResponse, Identity, Repository,
};
use super::{Client, Error};

/// Endpoints of one repository; borrows the client.
#[derive(Debug, Clone)]
pub struct RepoHandler<'c> {
    client: &'c Client,
    owner: String,
    name: String,
}

impl<'c> RepoHandler<'c> {
    pub(super) fn new(client: &'c Client, owner: String, name: String) -> Self {
        RepoHandler {
            client,
            owner,
            name,
        }
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    pub(super) fn client(&self) -> &'c Client {
        self.client
    }

    pub(super) fn segments<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut s = vec!["repos", self.owner.as_str(), self.name.as_str()];
        s.extend_from_slice(rest);
        s
    }

    /// `GET /repos/{o}/{r}`.
    ///
    /// # Errors
    /// See [`Error`]; 404 when the repository does not exist or the token cannot see it.
    pub async fn get(&self) -> Result<Repository, Error> {
        self.client
            .send(Method::GET, &self.segments(&[]), &[], None::<&()>)
            .await
    }

    /// `GET /repos/{o}/{r}/branches/{branch}`.
    pub fn branch(&self, branch: impl Into<String>) -> GetBranchBuilder<'_, 'c> {
        GetBranchBuilder {
            repo: self,
            branch: branch.into(),
        }
    }

    /// Endpoints for one path of the repository: `/contents/{path}`.
    pub fn contents(&self, path: impl Into<String>) -> ContentsHandler<'_, 'c> {
        ContentsHandler {
            repo: self,
            path: path.into(),
            reference: None,
        }
    }

    /// `POST /repos/{o}/{r}/contents`: change several files in one commit.
    pub fn change_files(&self, message: impl Into<String>) -> ChangeFilesBuilder<'_, 'c> {
        ChangeFilesBuilder {
            repo: self,
            message: message.into(),
            branch: None,
            new_branch: None,
            author: None,
            committer: None,
            files: Vec::new(),
        }
    }

    /// `GET /repos/{o}/{r}/git/commits/{sha}`.
    pub fn commit(&self, sha: impl Into<String>) -> GetCommitBuilder<'_, 'c> {
        GetCommitBuilder {
            repo: self,
            sha: sha.into(),
        }
    }

    /// `POST /repos/{o}/{r}/statuses/{sha}`: a commit status (`state` is one of `pending`,
    /// `success`, `error`, `failure`, the values every Gitea and Forgejo version accepts).
    pub fn create_status(
        &self,
        sha: impl Into<String>,
        state: impl Into<String>,
    ) -> CreateStatusBuilder<'_, 'c> {
        CreateStatusBuilder {
            repo: self,
            sha: sha.into(),
            state: state.into(),
            target_url: None,
            description: None,
            context: None,
        }
    }

    /// `GET /repos/{o}/{r}/compare/{base}...{head}`: the commits in `head` that are not in `base`.
    pub fn compare(
        &self,
        base: impl Into<String>,
        head: impl Into<String>,
    ) -> CompareBuilder<'_, 'c> {
        CompareBuilder {
            repo: self,
            base: base.into(),
            head: head.into(),
        }
    }
}

/// `GET /repos/{o}/{r}/branches/{branch}`.
#[derive(Debug)]
pub struct GetBranchBuilder<'r, 'c> {
    repo: &'r RepoHandler<'c>,
    branch: String,
}

impl GetBranchBuilder<'_, '_> {
    /// Sends the request.
    ///
    /// # Errors
    /// See [`Error`]; 404 when the branch does not exist.
    pub async fn send(self) -> Result<Branch, Error> {
        // The route is `/branches/*`: a branch `release/v1` goes as two raw segments, not `%2F`, which
        // proxies such as Apache (`AllowEncodedSlashes Off`) refuse with 404 (docs/research/field-gitea.md §7).
        let mut rest = vec!["branches"];
        rest.extend(self.branch.split('/'));
        let segments = self.repo.segments(&rest);
        self.repo
            .client
            .send(Method::GET, &segments, &[], None::<&()>)
            .await
    }
}

/// Endpoints of one path: read it as a file or a directory.
#[derive(Debug)]
pub struct ContentsHandler<'r, 'c> {
    repo: &'r RepoHandler<'c>,
    path: String,
    reference: Option<String>,
}

impl ContentsHandler<'_, '_> {
    /// Reads at this branch, tag or commit (default: the default branch).
    pub fn at_ref(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// `GET /repos/{o}/{r}/contents/{path}?ref=`: a file, or a directory listing.
    ///
    /// # Errors
    /// See [`Error`]; 404 when the path does not exist at that ref.
    pub async fn get(self) -> Result<Contents, Error> {
        let mut segments = self.repo.segments(&["contents"]);
        segments.extend(self.path.split('/').filter(|s| !s.is_empty()));
        let query: Vec<(&str, &str)> = self
            .reference
            .as_deref()
            .map(|r| ("ref", r))
            .into_iter()
            .collect();
        self.repo
            .client
            .send(Method::GET, &segments, &query, None::<&()>)
            .await
    }
}

/// `POST /repos/{o}/{r}/contents`: one commit that changes several files, each guarded by its blob SHA.
#[derive(Debug, Serialize)]
pub struct ChangeFilesBuilder<'r, 'c> {
    #[serde(skip)]
    repo: &'r RepoHandler<'c>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    committer: Option<Identity>,
    files: Vec<ChangeFileOperation>,
}

impl ChangeFilesBuilder<'_, '_> {
    /// The branch to commit on (default: the default branch).
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// Commit on a new branch `name` that starts at [`ChangeFilesBuilder::branch`] (422 when it
    /// exists).
    pub fn new_branch(mut self, name: Option<String>) -> Self {
        self.new_branch = name;
        self
    }

    /// Author of the commit.
    pub fn author(mut self, name: impl Into<String>, email: impl Into<String>) -> Self {
        self.author = Some(Identity {
            name: name.into(),
            email: email.into(),
        });
        self
    }

    /// Committer of the commit.
    pub fn committer(mut self, name: impl Into<String>, email: impl Into<String>) -> Self {
        self.committer = Some(Identity {
            name: name.into(),
            email: email.into(),
        });
        self
    }

    /// Replaces the file at `path`, which must still have blob `sha`; the server rejects the whole
    /// commit otherwise (422 "sha does not match", or 409 on Forgejo).
    pub fn update(
        mut self,
        path: impl Into<String>,
        content: &[u8],
        sha: impl Into<String>,
    ) -> Self {
        self.files.push(ChangeFileOperation {
            operation: "update",
            path: path.into(),
            content: Some(base64::engine::general_purpose::STANDARD.encode(content)),
            sha: Some(sha.into()),
        });
        self
    }

    /// Sends the request.
    ///
    /// # Errors
    /// See [`Error`]. This endpoint is not idempotent: after an [`Error::is_ambiguous`] failure the commit
    /// may have landed, so look at the branch before trying again.
    pub async fn send(self) -> Result<FilesResponse, Error> {
        let segments = self.repo.segments(&["contents"]);
        self.repo
            .client
            .send(Method::POST, &segments, &[], Some(&self))
            .await
    }
}

/// `GET /repos/{o}/{r}/git/commits/{sha}`.
#[derive(Debug)]
pub struct GetCommitBuilder<'r, 'c> {
    repo: &'r RepoHandler<'c>,
    sha: String,
}

impl GetCommitBuilder<'_, '_> {
    /// Sends the request (without the file list and stats, which we never read).
    ///
    /// # Errors
    /// See [`Error`]; 404 for an unknown commit.
    pub async fn send(self) -> Result<Commit, Error> {
        let segments = self.repo.segments(&["git", "commits", &self.sha]);
        let query = [
            ("stat", "false"),
            ("verification", "false"),
            ("files", "false"),
        ];
        self.repo
            .client
            .send(Method::GET, &segments, &query, None::<&()>)
            .await
    }
}

/// `GET /repos/{o}/{r}/compare/{base}...{head}`.
#[derive(Debug)]
pub struct CompareBuilder<'r, 'c> {
    repo: &'r RepoHandler<'c>,
    base: String,
    head: String,
}

impl CompareBuilder<'_, '_> {
    /// Sends the request.
    ///
    /// # Errors
    /// See [`Error`]; 404 when either side is unknown.
    pub async fn send(self) -> Result<Compare, Error> {
        let basehead = format!("{}...{}", self.base, self.head);
        let segments = self.repo.segments(&["compare", &basehead]);
        self.repo
            .client
            .send(Method::GET, &segments, &[], None::<&()>)
            .await
    }
}

/// `POST /repos/{o}/{r}/statuses/{sha}`; serialises as the `CreateStatusOption` body.
#[derive(Debug, Serialize)]
pub struct CreateStatusBuilder<'r, 'c> {
    #[serde(skip)]
    repo: &'r RepoHandler<'c>,
    #[serde(skip)]
    sha: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
}

impl CreateStatusBuilder<'_, '_> {
    /// The link shown next to the status.
    pub fn target_url(mut self, url: impl Into<String>) -> Self {
        self.target_url = Some(url.into());
        self
    }

    /// The one-line description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The status's name; a later status with the same context replaces it.
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Sends the request; the created status is not read back.
    ///
    /// # Errors
    /// See [`Error`]; 404 for an unknown commit, 403 without write access to the repository.
    pub async fn send(self) -> Result<(), Error> {
        let segments = self.repo.segments(&["statuses", &self.sha]);
        let _: serde_json::Value = self
            .repo
            .client
            .send(Method::POST, &segments, &[], Some(&self))
            .await?;
        Ok(())
    }
}
