//! Response and request bodies, taken from `sandbox/specs/gitea-swagger.json`. Responses hold only the
//! fields we read, `Option` where the server may omit them; unknown fields are ignored.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// `ServerVersion`: answer of `GET /version`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerVersion {
    /// E.g. `1.26.4`, `1.27.0+dev-210-g67f86bc3fe`, or Forgejo's `11.0.3+gitea-1.22.0`.
    pub version: String,
}

/// `Repository` (the fields we read).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Repository {
    /// The default branch, used when no branch is given.
    #[serde(default)]
    pub default_branch: String,
}

/// `Branch` (the fields we read).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Branch {
    /// Branch name.
    pub name: String,
    /// The head commit.
    pub commit: PayloadCommit,
    /// True when a branch protection rule applies.
    #[serde(default)]
    pub protected: bool,
    /// Approvals the protection requires before a merge.
    #[serde(default)]
    pub required_approvals: u32,
    /// True when the protection requires status checks.
    #[serde(default)]
    pub enable_status_check: bool,
    /// The required status contexts (glob patterns).
    #[serde(default)]
    pub status_check_contexts: Vec<String>,
    /// True when the token's user may push to the branch directly.
    #[serde(default)]
    pub user_can_push: bool,
}

/// `PayloadCommit`: a commit as embedded in a branch.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct PayloadCommit {
    /// The commit SHA.
    pub id: String,
}

/// `ContentsResponse`: a file or directory entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContentsResponse {
    /// File name.
    pub name: String,
    /// Path from the repository root.
    pub path: String,
    /// Blob SHA: the value a write must send back as `sha`.
    pub sha: String,
    /// `file`, `dir`, `symlink` or `submodule`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Content (files only; omitted above the server's blob-size limit and in directory listings).
    #[serde(default)]
    pub content: Option<String>,
}

impl ContentsResponse {
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == "file"
    }

    /// The decoded content, when present. Line breaks inside the base64 are tolerated.
    pub fn decoded(&self) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        let content = self.content.as_deref()?;
        let compact: String = content.chars().filter(|c| !c.is_whitespace()).collect();
        Some(base64::engine::general_purpose::STANDARD.decode(compact))
    }
}

/// `GET /contents/{path}` answers an object for a file and an array for a directory.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Contents {
    /// A directory listing.
    Dir(Vec<ContentsResponse>),
    /// A single file (or symlink, submodule).
    File(Box<ContentsResponse>),
}

/// `Identity`: author or committer of a write.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

/// `ChangeFileOperation`: one file of a `POST /contents`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChangeFileOperation {
    /// `create`, `update` or `delete` (the subset Gitea and Forgejo share).
    pub operation: &'static str,
    /// Path from the repository root.
    pub path: String,
    /// New content, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Blob SHA the file must still have: the optimistic-concurrency guard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

/// `FilesResponse`: answer of `POST /contents`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilesResponse {
    /// The new commit.
    pub commit: FileCommitResponse,
}

/// `FileCommitResponse`: the commit a write made.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileCommitResponse {
    /// The new commit's SHA.
    pub sha: String,
    /// Web URL of the commit.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// `CommitMeta`: a reference to a commit.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitMeta {
    /// The commit SHA.
    pub sha: String,
}

/// `Commit`: answer of `GET /git/commits/{sha}` and an entry of a comparison.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Commit {
    /// The commit SHA.
    pub sha: String,
    /// Web URL of the commit.
    #[serde(default)]
    pub html_url: Option<String>,
    /// Message and identities.
    pub commit: RepoCommit,
    /// Parents.
    #[serde(default)]
    pub parents: Vec<CommitMeta>,
}

/// `RepoCommit`: the git part of a commit.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepoCommit {
    /// Full commit message.
    #[serde(default)]
    pub message: String,
}

/// `Compare`: answer of `GET /compare/{base}...{head}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Compare {
    /// Commits reachable from head but not from base.
    #[serde(default)]
    pub commits: Vec<Commit>,
    /// Their number.
    #[serde(default)]
    pub total_commits: u64,
}

/// `PRBranchInfo`: the head or base of a pull request.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrBranch {
    /// The branch name.
    #[serde(rename = "ref", default)]
    pub branch: String,
    /// Its commit when the pull request was last updated.
    #[serde(default)]
    pub sha: String,
}

/// `Label` (the fields we read).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct Label {
    /// Its id, the value pull requests are created with.
    pub id: i64,
    /// Its name.
    pub name: String,
}

/// `PullRequest` (the fields we read).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullRequest {
    /// The number, shown as `#N`.
    pub number: u64,
    /// Web URL.
    #[serde(default)]
    pub html_url: String,
    /// `open` or `closed`.
    #[serde(default)]
    pub state: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Body (Markdown).
    #[serde(default)]
    pub body: String,
    /// True once merged.
    #[serde(default)]
    pub merged: bool,
    /// The commit the merge made on the base (a merge commit, the squashed commit, or the rebased tip).
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    /// False when the head conflicts with the base, and while the server is still checking that
    /// (Gitea's `PullRequest.Mergeable`: not checking, not conflicting, not failed).
    #[serde(default)]
    pub mergeable: bool,
    /// The commit the head branched from (as of the server's last check).
    #[serde(default)]
    pub merge_base: String,
    /// The head branch.
    pub head: PrBranch,
    /// The base branch.
    pub base: PrBranch,
}

/// `CommitStatus`: one status of a commit.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitStatus {
    /// Its name (`ci/build`).
    #[serde(default)]
    pub context: String,
    /// `pending`, `success`, `error`, `failure` or `warning`.
    #[serde(default)]
    pub status: String,
    /// Its one-line description.
    #[serde(default)]
    pub description: String,
    /// Its link.
    #[serde(default)]
    pub target_url: String,
}

/// `CombinedStatus`: the latest status of each context of a commit.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct CombinedStatus {
    /// The worst state of all contexts (empty or `pending` when none).
    #[serde(default)]
    pub state: String,
    /// The latest status per context (`null` when there is none, on Gitea ≥ 1.25).
    #[serde(default)]
    pub statuses: Option<Vec<CommitStatus>>,
}

/// `PullReview` (the fields we read).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullReview {
    /// `APPROVED`, `REQUEST_CHANGES`, `COMMENT`, `PENDING`, `REQUEST_REVIEW`.
    #[serde(default)]
    pub state: String,
    /// True for a review that counts towards the protection (by a user allowed to approve).
    #[serde(default)]
    pub official: bool,
    /// True when the head changed after the review.
    #[serde(default)]
    pub stale: bool,
    /// True when dismissed.
    #[serde(default)]
    pub dismissed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_is_file_or_dir() {
        let file: Contents = serde_json::from_str(
            r#"{"name":"k.yaml","path":"a/k.yaml","sha":"abc","type":"file","size":3,
                "encoding":"base64","content":"YWJj\nZA==","extra":1}"#,
        )
        .unwrap();
        let Contents::File(f) = file else {
            panic!("not a file")
        };
        assert_eq!(f.decoded().unwrap().unwrap(), b"abcd");
        let dir: Contents = serde_json::from_str(
            r#"[{"name":"k.yaml","path":"a/k.yaml","sha":"abc","type":"file"}]"#,
        )
        .unwrap();
        assert!(matches!(dir, Contents::Dir(v) if v.len() == 1 && v[0].content.is_none()));
    }
}
