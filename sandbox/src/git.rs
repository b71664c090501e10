//! Running the real `git` on the sandbox's bare repositories: plumbing for commits without a work
//! tree, and the reads the Gitea API needs.
//!
//! Every command runs with a clean configuration (no system or global config, no prompts, C locale)
//! so the developer's own git settings cannot change what the sandbox does, and with `kill_on_drop`
//! so a command whose request was abandoned dies with it. Nothing here knows about HTTP.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The all-zero object id: as the old value of `update-ref`, "the ref must not exist yet".
pub const ZERO_OID: &str = "0000000000000000000000000000000000000000";

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started (is it installed and on `PATH`?).
    #[error("cannot run `git {command}` in {}", dir.display())]
    Spawn {
        /// The arguments, space-joined (never carries a secret: the sandbox passes none).
        command: String,
        /// The repository directory.
        dir: PathBuf,
        /// Why the spawn failed.
        #[source]
        source: std::io::Error,
    },
    /// A commit cannot be built: a path runs through a file, or a file path names a directory.
    #[error("cannot write {path:?}: it {reason}")]
    Tree {
        /// The path component in the way.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `git` ran and exited with a failure.
    #[error("`git {command}` failed in {} ({status}): {stderr}", dir.display())]
    Failed {
        /// The arguments, space-joined.
        command: String,
        /// The repository directory.
        dir: PathBuf,
        /// The exit status.
        status: std::process::ExitStatus,
        /// What git printed on stderr, trimmed.
        stderr: String,
    },
}

/// The environment every sandbox git command gets, isolating it from the user's configuration.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_CONFIG_COUNT")
}

/// One git invocation in a repository directory.
#[derive(Debug)]
pub struct Git<'a> {
    dir: &'a Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
}

impl<'a> Git<'a> {
    /// `git <args>` run in `dir` (for a bare repository, `dir` is the repository itself).
    pub fn new<I, S>(dir: &'a Path, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Git {
            dir,
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// Add an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Feed `input` on stdin.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Run and return stdout.
    ///
    /// # Errors
    /// git could not start, or exited with a failure.
    pub async fn output(self) -> Result<Vec<u8>, GitError> {
        let (status, stdout, stderr) = self.run_raw().await?;
        if status.success() {
            Ok(stdout)
        } else {
            Err(GitError::Failed {
                command: self.args.join(" "),
                dir: self.dir.to_owned(),
                status,
                stderr: String::from_utf8_lossy(&stderr).trim().to_owned(),
            })
        }
    }

    /// Run and return stdout as a trimmed string.
    ///
    /// # Errors
    /// As [`Git::output`].
    pub async fn text(self) -> Result<String, GitError> {
        let out = self.output().await?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Run and return whether it succeeded (for commands whose failure is an answer, like
    /// `merge-base --is-ancestor` or `update-ref` with an old value).
    ///
    /// # Errors
    /// git could not start.
    pub async fn succeeds(self) -> Result<bool, GitError> {
        Ok(self.run_raw().await?.0.success())
    }

    async fn run_raw(&self) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>), GitError> {
        let mut cmd = Command::new("git");
        clean_env(&mut cmd)
            .args(&self.args)
            .current_dir(self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawn_err = |source| GitError::Spawn {
            command: self.args.join(" "),
            dir: self.dir.to_owned(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let (Some(input), Some(mut pipe)) = (&self.stdin, child.stdin.take()) {
            // Inputs are small (a file, an index listing); git reads all of it before writing much.
            pipe.write_all(input).await.map_err(spawn_err)?;
        }
        let out = child.wait_with_output().await.map_err(spawn_err)?;
        Ok((out.status, out.stdout, out.stderr))
    }
}

/// A person line of a commit (`author` / `committer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// Name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Seconds since the epoch.
    pub seconds: i64,
    /// The UTC offset as git writes it, e.g. `+0100`.
    pub offset: String,
}

impl Person {
    fn parse(line: &str) -> Option<Person> {
        let (name, rest) = line.split_once(" <")?;
        let (email, rest) = rest.split_once("> ")?;
        let (seconds, offset) = rest.split_once(' ')?;
        Some(Person {
            name: name.to_owned(),
            email: email.to_owned(),
            seconds: seconds.parse().ok()?,
            offset: offset.to_owned(),
        })
    }

    /// The time in RFC 3339 with the commit's own offset, as Gitea prints it.
    pub fn rfc3339(&self) -> String {
        let offset = parse_offset(&self.offset).unwrap_or(jiff::tz::Offset::UTC);
        jiff::Timestamp::from_second(self.seconds)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .to_zoned(jiff::tz::TimeZone::fixed(offset))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
            .replace("+00:00", "Z")
    }
}

fn parse_offset(raw: &str) -> Option<jiff::tz::Offset> {
    let sign = match raw.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours: i32 = raw.get(1..3)?.parse().ok()?;
    let minutes: i32 = raw.get(3..5)?.parse().ok()?;
    jiff::tz::Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// A parsed commit object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit id.
    pub sha: String,
    /// Its tree id.
    pub tree: String,
    /// Parent ids, in order.
    pub parents: Vec<String>,
    /// Author.
    pub author: Person,
    /// Committer.
    pub committer: Person,
    /// The full message.
    pub message: String,
}

/// Read and parse the commit `sha` (already resolved to a full id).
///
/// # Errors
/// git failed (e.g. no such object).
pub async fn read_commit(dir: &Path, sha: &str) -> Result<CommitInfo, GitError> {
    let raw = Git::new(dir, ["cat-file", "commit", sha]).output().await?;
    let raw = String::from_utf8_lossy(&raw);
    let (headers, message) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut info = CommitInfo {
        sha: sha.to_owned(),
        tree: String::new(),
        parents: Vec::new(),
        author: Person::parse("unknown <unknown> 0 +0000").expect("static person line parses"),
        committer: Person::parse("unknown <unknown> 0 +0000").expect("static person line parses"),
        message: message.to_owned(),
    };
    for line in headers.lines() {
        if let Some(v) = line.strip_prefix("tree ") {
            info.tree = v.to_owned();
        } else if let Some(v) = line.strip_prefix("parent ") {
            info.parents.push(v.to_owned());
        } else if let Some(p) = line.strip_prefix("author ").and_then(Person::parse) {
            info.author = p;
        } else if let Some(p) = line.strip_prefix("committer ").and_then(Person::parse) {
            info.committer = p;
        }
    }
    Ok(info)
}

/// Resolve `rev` to a commit id, or `None` when it names no commit.
///
/// # Errors
/// git could not start.
pub async fn resolve_commit(dir: &Path, rev: &str) -> Result<Option<String>, GitError> {
    if rev.starts_with('-') {
        return Ok(None);
    }
    let spec = format!("{rev}^{{commit}}");
    match Git::new(
        dir,
        [
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
    .output()
    .await
    {
        Ok(out) => Ok(Some(String::from_utf8_lossy(&out).trim().to_owned())),
        Err(GitError::Failed { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One entry of a tree listing (`git ls-tree -l`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// Mode, e.g. `100644`, `040000`, `120000`, `160000`.
    pub mode: String,
    /// `blob`, `tree` or `commit`.
    pub kind: String,
    /// Object id.
    pub sha: String,
    /// Size in bytes for blobs.
    pub size: u64,
    /// Path from the repository root.
    pub path: String,
}

/// `git ls-tree -l <commit> -- <path>`: the entry at `path`, or the entries of the root when `path`
/// is empty. With `children`, list the entries inside the tree at `path` instead.
///
/// # Errors
/// git failed.
pub async fn ls_tree(
    dir: &Path,
    commit: &str,
    path: &str,
    children: bool,
) -> Result<Vec<TreeEntry>, GitError> {
    let mut args = vec![
        "ls-tree".to_owned(),
        "-l".to_owned(),
        "-z".to_owned(),
        "--full-tree".to_owned(),
        commit.to_owned(),
    ];
    if !path.is_empty() {
        args.push("--".to_owned());
        args.push(if children {
            format!("{path}/")
        } else {
            path.to_owned()
        });
    }
    let out = Git::new(dir, args).output().await?;
    let mut entries = Vec::new();
    for record in out.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let record = String::from_utf8_lossy(record);
        let Some((meta, path)) = record.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split_whitespace();
        let (Some(mode), Some(kind), Some(sha), Some(size)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        entries.push(TreeEntry {
            mode: mode.to_owned(),
            kind: kind.to_owned(),
            sha: sha.to_owned(),
            size: size.parse().unwrap_or(0),
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

/// A change to apply in one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Write `content` at `path` (create or replace).
    Write {
        /// Path from the repository root.
        path: String,
        /// The new bytes.
        content: Vec<u8>,
    },
    /// Remove `path`.
    Delete {
        /// Path from the repository root.
        path: String,
    },
}

/// Who and when, for a new commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// A date git accepts (RFC 3339 works); `None` means now.
    pub date: Option<String>,
}

/// Build a commit on `parent` (or a root commit) applying `changes`, without touching any ref.
/// Only the trees on the changed paths are read and rewritten (`ls-tree` and `mktree` per level), so
/// the cost follows the paths' depth, not the repository's size, and concurrent builds share nothing
/// but the object store. Returns the commit id.
///
/// # Errors
/// git failed, or a path runs through a file.
pub async fn build_commit(
    dir: &Path,
    parent: Option<&str>,
    changes: &[Change],
    message: &str,
    author: &Signature,
    committer: &Signature,
) -> Result<String, GitError> {
    let mut edits = Vec::with_capacity(changes.len());
    for change in changes {
        let (path, blob) = match change {
            Change::Write { path, content } => {
                let blob = Git::new(dir, ["hash-object", "-w", "--stdin"])
                    .stdin(content.clone())
                    .text()
                    .await?;
                (path, Some(blob))
            }
            Change::Delete { path } => (path, None),
        };
        let components = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        edits.push(TreeEdit { components, blob });
    }
    let base = parent.map(|p| format!("{p}^{{tree}}"));
    let tree = match edited_tree(dir, base, edits).await? {
        Some(tree) => tree,
        None => Git::new(dir, ["mktree"]).text().await?,
    };
    let mut args = vec!["commit-tree".to_owned(), tree];
    if let Some(p) = parent {
        args.push("-p".into());
        args.push(p.to_owned());
    }
    let mut cmd = Git::new(dir, args)
        .stdin(message.as_bytes().to_vec())
        .env("GIT_AUTHOR_NAME", &author.name)
        .env("GIT_AUTHOR_EMAIL", &author.email)
        .env("GIT_COMMITTER_NAME", &committer.name)
        .env("GIT_COMMITTER_EMAIL", &committer.email);
    if let Some(date) = &author.date {
        cmd = cmd.env("GIT_AUTHOR_DATE", date);
    }
    if let Some(date) = &committer.date {
        cmd = cmd.env("GIT_COMMITTER_DATE", date);
    }
    cmd.text().await
}

/// One change below a tree: the path's remaining components, and the new blob (`None`: delete).
struct TreeEdit {
    components: Vec<String>,
    blob: Option<String>,
}

/// The tree `base` (a tree-ish; `None` for none) with `edits` applied, or `None` when it ends up
/// empty (git stores no empty trees below the root).
fn edited_tree(
    dir: &Path,
    base: Option<String>,
    edits: Vec<TreeEdit>,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Option<String>, GitError>> + Send + '_>,
> {
    Box::pin(async move {
        // ls-tree -z lines: "<mode> <type> <oid>\t<name>", which is also what mktree reads.
        let mut entries: Vec<(String, String)> = match &base {
            Some(tree) => {
                let listing = Git::new(dir, ["ls-tree", "-z", tree.as_str()])
                    .output()
                    .await?;
                listing
                    .split(|&b| b == 0)
                    .filter(|line| !line.is_empty())
                    .filter_map(|line| {
                        let line = String::from_utf8_lossy(line);
                        let (meta, name) = line.split_once('\t')?;
                        Some((name.to_owned(), meta.to_owned()))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        // Group the edits by their first component, keeping their order.
        let mut groups: Vec<(String, Vec<TreeEdit>)> = Vec::new();
        for mut edit in edits {
            if edit.components.is_empty() {
                continue;
            }
            let first = edit.components.remove(0);
            match groups.iter_mut().find(|(name, _)| *name == first) {
                Some((_, group)) => group.push(edit),
                None => groups.push((first, vec![edit])),
            }
        }
        for (name, group) in groups {
            let existing = entries.iter().position(|(n, _)| *n == name);
            let meta = existing.map(|i| entries[i].1.clone());
            let is_tree = meta
                .as_deref()
                .is_some_and(|m| m.split(' ').nth(1) == Some("tree"));
            let new_meta = if group.iter().all(|e| e.components.is_empty()) {
                // The entry itself is written or deleted; the last change wins, as in an index.
                if is_tree {
                    return Err(GitError::Tree {
                        path: name,
                        reason: "is a directory",
                    });
                }
                group
                    .last()
                    .and_then(|e| e.blob.as_ref())
                    .map(|blob| format!("100644 blob {blob}"))
            } else {
                if meta.is_some() && !is_tree {
                    return Err(GitError::Tree {
                        path: name,
                        reason: "is a file, not a directory",
                    });
                }
                let subtree = meta.and_then(|m| m.split(' ').nth(2).map(str::to_owned));
                edited_tree(dir, subtree, group)
                    .await?
                    .map(|tree| format!("040000 tree {tree}"))
            };
            match (existing, new_meta) {
                (Some(i), Some(meta)) => entries[i].1 = meta,
                (Some(i), None) => {
                    entries.remove(i);
                }
                (None, Some(meta)) => entries.push((name, meta)),
                (None, None) => {}
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let mut input = Vec::new();
        for (name, meta) in &entries {
            input.extend_from_slice(meta.as_bytes());
            input.push(b'\t');
            input.extend_from_slice(name.as_bytes());
            input.push(0);
        }
        Git::new(dir, ["mktree", "-z"])
            .stdin(input)
            .text()
            .await
            .map(Some)
    })
}

/// Move `refs/heads/<branch>` from `old` (or from "absent" when `None`) to `new` atomically.
/// Returns false when the branch was not at `old` (someone else moved it first).
///
/// # Errors
/// git could not start.
pub async fn cas_branch(
    dir: &Path,
    branch: &str,
    new: &str,
    old: Option<&str>,
) -> Result<bool, GitError> {
    Git::new(
        dir,
        [
            "update-ref",
            "-m",
            "sandbox",
            &format!("refs/heads/{branch}"),
            new,
            old.unwrap_or(ZERO_OID),
        ],
    )
    .succeeds()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree git itself builds for `changes` on `parent`, through a temporary index.
    async fn tree_by_index(dir: &Path, parent: &str, changes: &[Change]) -> String {
        let index = dir.join("check-index");
        let index = index.to_str().unwrap();
        Git::new(dir, ["read-tree", parent])
            .env("GIT_INDEX_FILE", index)
            .output()
            .await
            .unwrap();
        let mut listing = String::new();
        for change in changes {
            match change {
                Change::Write { path, content } => {
                    let blob = Git::new(dir, ["hash-object", "-w", "--stdin"])
                        .stdin(content.clone())
                        .text()
                        .await
                        .unwrap();
                    listing.push_str(&format!("100644 {blob}\t{path}\n"));
                }
                Change::Delete { path } => listing.push_str(&format!("0 {ZERO_OID}\t{path}\n")),
            }
        }
        Git::new(dir, ["update-index", "--index-info"])
            .env("GIT_INDEX_FILE", index)
            .stdin(listing)
            .output()
            .await
            .unwrap();
        let tree = Git::new(dir, ["write-tree"])
            .env("GIT_INDEX_FILE", index)
            .text()
            .await
            .unwrap();
        std::fs::remove_file(index).unwrap();
        tree
    }

    fn write(path: &str, content: &str) -> Change {
        Change::Write {
            path: path.into(),
            content: content.as_bytes().to_vec(),
        }
    }

    /// Rewriting only the trees on the changed paths gives exactly the tree git's index gives.
    #[tokio::test]
    async fn built_trees_equal_the_index_built_ones() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path();
        Git::new(dir, ["init", "--bare", "-q"])
            .output()
            .await
            .unwrap();
        let who = Signature {
            name: "T".into(),
            email: "t@example.invalid".into(),
            date: None,
        };
        let seed = [
            write("README.md", "hi\n"),
            write("apps/a/overlays/prod/kustomization.yaml", "images: []\n"),
            write("apps/a/overlays/dev/kustomization.yaml", "images: []\n"),
            write("apps/b/base/deploy.yaml", "kind: Deployment\n"),
            write("apps/b-c/x", "sorting: '-' sorts before '/'\n"),
        ];
        let root = build_commit(dir, None, &seed, "seed", &who, &who)
            .await
            .unwrap();
        let cases: Vec<Vec<Change>> = vec![
            vec![write(
                "apps/a/overlays/prod/kustomization.yaml",
                "images: [x]\n",
            )],
            vec![
                write("apps/a/overlays/prod/kustomization.yaml", "1\n"),
                write("apps/a/overlays/dev/kustomization.yaml", "2\n"),
                write("apps/new/deep/er/file", "3\n"),
                write("apps/b.txt", "4\n"),
            ],
            vec![Change::Delete {
                path: "apps/b/base/deploy.yaml".into(),
            }],
            vec![
                Change::Delete {
                    path: "apps/a/overlays/dev/kustomization.yaml".into(),
                },
                write("README.md", "changed\n"),
            ],
            vec![write("z", "last\n"), write("a", "first\n")],
        ];
        for changes in cases {
            let commit = build_commit(dir, Some(&root), &changes, "m", &who, &who)
                .await
                .unwrap();
            let built = Git::new(dir, ["rev-parse", &format!("{commit}^{{tree}}")])
                .text()
                .await
                .unwrap();
            assert_eq!(
                built,
                tree_by_index(dir, &root, &changes).await,
                "{changes:?}"
            );
        }
        let file_as_dir = [write("README.md/x", "no\n")];
        assert!(matches!(
            build_commit(dir, Some(&root), &file_as_dir, "m", &who, &who).await,
            Err(GitError::Tree { .. })
        ));
    }

    #[test]
    fn person_line_and_dates() {
        let p = Person::parse("A B <a@b.c> 1700000000 +0130").unwrap();
        assert_eq!(p.name, "A B");
        assert_eq!(p.email, "a@b.c");
        assert_eq!(p.rfc3339(), "2023-11-14T23:43:20+01:30");
        let p = Person::parse("x <x@y> 0 +0000").unwrap();
        assert_eq!(p.rfc3339(), "1970-01-01T00:00:00Z");
    }
}
