//! The file side of editing: finding the kustomization file, reading it, writing it atomically, and
//! showing a change as a unified diff. Everything else in `edit` is pure.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{EditError, KUSTOMIZATION_FILE_NAMES};

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> EditError {
    EditError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Finds the one kustomization file in `dir`, as kustomize does: exactly one of
/// [`KUSTOMIZATION_FILE_NAMES`] (case-sensitive) must exist, and it must be a file.
///
/// # Errors
/// [`EditError::NoKustomization`], [`EditError::SeveralKustomizations`], [`EditError::NotAFile`], or
/// [`EditError::Io`] when `dir` cannot be read.
pub fn find_kustomization(dir: &Path) -> Result<PathBuf, EditError> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EditError::NoSuchDirectory {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => return Err(io_error("read the directory", dir, e)),
    };
    if !meta.is_dir() {
        return Err(EditError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    // Listing the directory (rather than probing each name) keeps the match case-sensitive on
    // case-insensitive file systems, as kustomize's is.
    let mut present: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_error("list", dir, e))? {
        let entry = entry.map_err(|e| io_error("list", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if KUSTOMIZATION_FILE_NAMES.contains(&name) {
                present.push(name.to_string());
            }
        }
    }
    present.sort_by_key(|n| KUSTOMIZATION_FILE_NAMES.iter().position(|k| k == n));
    match present.as_slice() {
        [] => Err(EditError::NoKustomization {
            dir: dir.to_path_buf(),
        }),
        [one] => {
            let path = dir.join(one);
            let meta = std::fs::metadata(&path).map_err(|e| io_error("read", &path, e))?;
            if meta.is_file() {
                Ok(path)
            } else {
                Err(EditError::NotAFile { path })
            }
        }
        several => Err(EditError::SeveralKustomizations {
            dir: dir.to_path_buf(),
            found: several.join(", "),
        }),
    }
}

/// Reads a kustomization file as UTF-8 text.
///
/// # Errors
/// [`EditError::Io`] when it cannot be read, [`EditError::NotUtf8`] when it is not UTF-8.
pub fn read_kustomization(path: &Path) -> Result<String, EditError> {
    let bytes = std::fs::read(path).map_err(|e| io_error("read", path, e))?;
    String::from_utf8(bytes).map_err(|_| EditError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Replaces the file at `path` with `text` atomically: the text goes to a temporary file in the same
/// directory, which takes the old file's permissions, is flushed to disk and renamed over the old one.
/// A reader sees either the old or the new file, never a mix; on error the old file is untouched.
/// A symlink is followed: its target is replaced and the link stays.
///
/// # Errors
/// [`EditError::Io`] naming the step that failed.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), EditError> {
    // Through a symlink, replace its target (as kustomize's plain write does), not the link.
    let resolved = std::fs::canonicalize(path).ok();
    let path = resolved.as_deref().unwrap_or(path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let old_permissions = match std::fs::metadata(path) {
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error("read", path, e)),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gitops-deploy-")
        .tempfile_in(dir)
        .map_err(|e| io_error("create a temporary file in", dir, e))?;
    tmp.write_all(text.as_bytes())
        .map_err(|e| io_error("write a temporary file in", dir, e))?;
    if let Some(permissions) = old_permissions {
        std::fs::set_permissions(tmp.path(), permissions)
            .map_err(|e| io_error("set permissions of a temporary file in", dir, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| io_error("flush a temporary file in", dir, e))?;
    tmp.persist(path)
        .map_err(|e| io_error("replace", path, e.error))?;
    Ok(())
}

/// A unified diff of `old` → `new` with three lines of context, headed `--- a/LABEL` / `+++ b/LABEL`.
/// Empty when the texts are equal.
pub fn unified_diff(label: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{label}"), &format!("b/{label}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_one_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            find_kustomization(dir.path()),
            Err(EditError::NoKustomization { .. })
        ));
        std::fs::write(dir.path().join("KUSTOMIZATION.yaml"), "").unwrap();
        assert!(matches!(
            find_kustomization(dir.path()),
            Err(EditError::NoKustomization { .. })
        ));
        std::fs::write(dir.path().join("kustomization.yml"), "").unwrap();
        assert_eq!(
            find_kustomization(dir.path()).unwrap(),
            dir.path().join("kustomization.yml")
        );
        std::fs::write(dir.path().join("Kustomization"), "").unwrap();
        let err = find_kustomization(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("kustomization.yml, Kustomization"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_named_like_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("kustomization.yaml")).unwrap();
        assert!(matches!(
            find_kustomization(dir.path()),
            Err(EditError::NotAFile { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kustomization.yaml");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_follows_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shared.yaml");
        let link = dir.path().join("kustomization.yaml");
        std::fs::write(&target, "old\n").unwrap();
        std::os::unix::fs::symlink("shared.yaml", &link).unwrap();
        write_atomic(&link, "new\n").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
    }

    #[test]
    fn diff_has_headers() {
        let d = unified_diff("k.yaml", "a\nb\n", "a\nc\n");
        assert!(d.starts_with("--- a/k.yaml\n+++ b/k.yaml\n@@"), "{d}");
        assert!(d.contains("-b\n+c\n"), "{d}");
        assert_eq!(unified_diff("k", "x", "x"), "");
    }
}
