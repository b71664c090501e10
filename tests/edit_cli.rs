//! `gitops-deploy set-image` as a user runs it: the built binary on temporary directories.

mod support;
use support::edit_vectors as edit_common;

use std::path::Path;
use std::process::{Command, Output};

use edit_common::{cases, Want};

fn set_image(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gitops-deploy"))
        .arg("set-image")
        .arg("--path")
        .arg(dir)
        .args(args)
        .output()
        .expect("run gitops-deploy")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of examples/overlay in a temporary directory.
fn example() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/overlay");
    for name in ["kustomization.yaml", "deployment.yaml"] {
        std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

const WEB: &str = "registry.example.com/demo/web";

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let dir = example();
    let file = dir.path().join("kustomization.yaml");
    let before = std::fs::read(&file).unwrap();
    let out = set_image(dir.path(), &["--dry-run", &format!("{WEB}:1.1.0")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(diff.contains("--- a/"), "{diff}");
    assert!(
        diff.contains("\n-    newTag: 1.0.0 # {\"$imagepolicy\": \"demo:web:tag\"}\n"),
        "{diff}"
    );
    assert!(
        diff.contains("\n+    newTag: 1.1.0 # {\"$imagepolicy\": \"demo:web:tag\"}\n"),
        "{diff}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "dry run wrote the file"
    );
}

#[test]
fn a_real_run_writes_only_the_tag_and_kubectl_renders_it() {
    let dir = example();
    let file = dir.path().join("kustomization.yaml");
    let before = std::fs::read_to_string(&file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = set_image(dir.path(), &[&format!("{WEB}:1.10")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "no diff without --dry-run");
    let after = std::fs::read_to_string(&file).unwrap();
    assert_eq!(after, before.replace("newTag: 1.0.0", "newTag: \"1.10\""));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file keeps its mode");
    }
    let rendered = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir.path())
        .output()
        .expect("kubectl is required");
    assert!(rendered.status.success(), "{}", text(&rendered.stderr));
    assert!(text(&rendered.stdout).contains(&format!("image: {WEB}:1.10\n")));
}

#[test]
fn nothing_to_change_exits_zero_and_keeps_the_file() {
    let dir = example();
    let file = dir.path().join("kustomization.yaml");
    let before = std::fs::read(&file).unwrap();
    let out = set_image(dir.path(), &[&format!("{WEB}:1.0.0")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unchanged"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

/// Every error vector, through the binary: exit code 2, the message on stderr, the file untouched.
#[test]
fn every_error_vector_exits_2_and_leaves_the_file_byte_identical() {
    let mut checked = 0;
    for case in cases() {
        let Want::Error(want) = &case.want else {
            continue;
        };
        // `-NAME` vectors exercise the library's `remove_image`, which the CLI does not offer.
        if case.args.iter().any(|a| a.starts_with('-')) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kustomization.yaml");
        std::fs::write(&file, &case.input).unwrap();
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = set_image(dir.path(), &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", case.id);
        assert!(
            stderr.contains(want.as_str()),
            "{}: {stderr:?} lacks {want:?}",
            case.id
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            case.input.as_bytes(),
            "{}: the file changed",
            case.id
        );
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "{}: a temporary file was left behind", case.id);
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} error vectors");
}

#[test]
fn every_problem_with_the_arguments_is_reported_at_once() {
    let dir = example();
    let out = set_image(dir.path(), &["nginx", "app:feature/x", "ok:v1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"nginx\"") && stderr.contains("\"app:feature/x\""),
        "{stderr}"
    );
}

#[test]
fn the_kustomization_file_must_exist_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = set_image(dir.path(), &["app:v1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no kustomization file"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(dir.path().join("kustomization.yaml"), "resources: []\n").unwrap();
    std::fs::write(dir.path().join("Kustomization"), "resources: []\n").unwrap();
    let out = set_image(dir.path(), &["app:v1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("several kustomization files (kustomization.yaml, Kustomization)"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Kustomization")).unwrap(),
        "resources: []\n"
    );

    let out = set_image(&dir.path().join("missing"), &["app:v1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_other_file_names_are_found() {
    for name in ["kustomization.yml", "Kustomization"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, "images:\n- name: app\n  newTag: v1\n").unwrap();
        let out = set_image(dir.path(), &["app:v2"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "images:\n- name: app\n  newTag: v2\n"
        );
    }
}

#[test]
fn no_arguments_is_a_usage_error() {
    let dir = example();
    let out = set_image(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_file_that_is_not_utf8_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kustomization.yaml");
    let bytes = b"images:\n- name: app\n  newTag: \xff\n";
    std::fs::write(&file, bytes).unwrap();
    let out = set_image(dir.path(), &["app:v2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not UTF-8"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}
