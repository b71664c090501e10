//! A GitOps repository on disk for tests without the Gitea server: a work tree that pushes to a bare
//! repository beside it, which the Argo CD controller reads directly (`AppSpec::repo_dir`). Its git
//! commands block the calling thread, so on a paused tokio clock they take no time.

use std::path::{Path, PathBuf};

/// A work tree (`DIR/work`, branch `main`) and the bare repository it pushes to (`DIR/gitops.git`,
/// its `origin`).
#[derive(Debug, Clone)]
pub struct LocalRepo {
    work: PathBuf,
    bare: PathBuf,
}

impl LocalRepo {
    /// Commits `files` (path, text) as the first commit of `main` in `dir/work` and clones it bare to
    /// `dir/gitops.git`.
    ///
    /// # Errors
    /// A file cannot be written, or git fails (its stderr in the message).
    pub fn seed(dir: &Path, files: &[(&str, &str)]) -> std::io::Result<LocalRepo> {
        let repo = LocalRepo {
            work: dir.join("work"),
            bare: dir.join("gitops.git"),
        };
        std::fs::create_dir_all(&repo.work)?;
        repo.write(files)?;
        repo.git(&["init", "-q", "-b", "main"])?;
        repo.git(&["add", "-A"])?;
        repo.git(&["commit", "-q", "-m", "seed"])?;
        let bare = repo.bare.to_string_lossy().into_owned();
        repo.git(&["clone", "-q", "--bare", ".", &bare])?;
        repo.git(&["remote", "add", "origin", &bare])?;
        Ok(repo)
    }

    /// The bare repository (what Argo CD reads).
    pub fn bare(&self) -> &Path {
        &self.bare
    }

    /// Writes `files`, commits every change in the work tree as `message`, pushes `main`; the new
    /// commit's SHA.
    ///
    /// # Errors
    /// As [`LocalRepo::seed`].
    pub fn commit(&self, files: &[(&str, &str)], message: &str) -> std::io::Result<String> {
        self.write(files)?;
        self.git(&["commit", "-q", "-am", message])?;
        self.git(&["push", "-q", "origin", "main"])?;
        self.head()
    }

    /// The work tree's `HEAD`.
    ///
    /// # Errors
    /// As [`LocalRepo::seed`].
    pub fn head(&self) -> std::io::Result<String> {
        self.git(&["rev-parse", "HEAD"])
    }

    fn write(&self, files: &[(&str, &str)]) -> std::io::Result<()> {
        for (path, text) in files {
            let file = self.work.join(path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(file, text)?;
        }
        Ok(())
    }

    /// `git ARGS` in the work tree with the sandbox's clean environment; trimmed stdout.
    fn git(&self, args: &[&str]) -> std::io::Result<String> {
        let mut cmd = tokio::process::Command::new("git");
        crate::git::clean_env(&mut cmd)
            .args([
                "-c",
                "user.name=sandbox",
                "-c",
                "user.email=sandbox@example.invalid",
            ])
            .args(args)
            .current_dir(&self.work);
        let out = cmd.as_std_mut().output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "git {} in {}: {}",
                args.join(" "),
                self.work.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}
