//! The edit engine against the vector table, the `kubectl kustomize` oracle, and property tests.

mod edit_common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use edit_common::{cases, Case, Want};
use gitops_deploy::edit::{images_of, set_images, EditError, Edited, ImageSetting, ImageValues};

/// Runs one case through the library: parse every argument, then edit.
fn run(case: &Case) -> Result<Edited, EditError> {
    let settings = case
        .args
        .iter()
        .map(|a| ImageSetting::parse_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    set_images(&case.input, &settings)
}

#[test]
fn the_table_has_enough_cases() {
    let all = cases();
    assert!(all.len() >= 60, "only {} cases", all.len());
    let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "case ids are unique");
}

#[test]
fn every_vector_gives_its_exact_output() {
    let mut failures = String::new();
    for case in cases() {
        let result = run(&case);
        match (&case.want, result) {
            (Want::Text(want), Ok(edited)) => {
                if &edited.text != want {
                    let _ = writeln!(
                        failures,
                        "{} {}:\n--- want\n{want}--- got\n{}",
                        case.id, case.title, edited.text
                    );
                    continue;
                }
                assert_eq!(
                    edited.is_changed(),
                    edited.text != case.input,
                    "{}: is_changed",
                    case.id
                );
                // A second identical run changes nothing.
                let again = run(&Case {
                    input: edited.text.clone(),
                    ..case.clone()
                })
                .unwrap_or_else(|e| panic!("{}: second run failed: {e}", case.id));
                assert!(
                    !again.is_changed(),
                    "{}: second run changed the text",
                    case.id
                );
                assert!(
                    again.changes.is_empty(),
                    "{}: second run reported changes",
                    case.id
                );
            }
            (Want::Error(want), Err(err)) => {
                let msg = err.to_string();
                if !msg.contains(want.as_str()) {
                    let _ = writeln!(failures, "{}: error {msg:?} lacks {want:?}", case.id);
                }
                assert!(
                    err.is_invalid_input(),
                    "{}: {msg} is invalid input",
                    case.id
                );
            }
            (Want::Text(_), Err(err)) => {
                let _ = writeln!(
                    failures,
                    "{} {}: unexpected error: {err}",
                    case.id, case.title
                );
            }
            (Want::Error(want), Ok(edited)) => {
                let _ = writeln!(
                    failures,
                    "{}: wanted error {want:?}, got:\n{}",
                    case.id, edited.text
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// The image a container named `name:0.0.0` renders as after kustomize applies `entries` in order
/// (research notes kustomize.md §2.1; entries chain).
fn rendered(name: &str, entries: &[(String, ImageValues)]) -> String {
    let (mut name, mut tag, mut digest) = (name.to_string(), Some("0.0.0".to_string()), None);
    for (entry_name, v) in entries {
        if *entry_name != name {
            continue;
        }
        if let Some(new_name) = &v.new_name {
            name = new_name.clone();
        }
        match (&v.new_tag, &v.digest) {
            (Some(t), Some(d)) => (tag, digest) = (Some(t.clone()), Some(d.clone())),
            (Some(t), None) => (tag, digest) = (Some(t.clone()), None),
            (None, Some(d)) => (tag, digest) = (None, Some(d.clone())),
            (None, None) => {}
        }
    }
    let mut out = name;
    if let Some(t) = tag {
        out.push(':');
        out.push_str(&t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(&d);
    }
    out
}

/// The `image:` values in `kubectl kustomize` output, by container name.
fn kubectl_images(output: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut image = None;
    for line in output.lines() {
        let line = line.trim_start().trim_start_matches("- ");
        if let Some(v) = line.strip_prefix("image: ") {
            image = Some(v.trim().to_string());
        } else if let Some(n) = line.strip_prefix("name: c") {
            if let Some(img) = image.take() {
                out.insert(format!("c{n}"), img);
            }
        }
    }
    out
}

/// The oracle: for every successful vector, kustomize (inside kubectl) reads the edited file and
/// renders exactly the images it means. kubectl is required; a missing kubectl fails this test.
#[test]
fn kubectl_kustomize_renders_the_edited_images() {
    let mut failures = String::new();
    let mut checked = 0;
    for case in cases() {
        let Want::Text(_) = case.want else { continue };
        let edited = run(&case).unwrap_or_else(|e| panic!("{}: {e}", case.id));
        let entries = images_of(&edited.text).expect("edited text reads back");
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let overlay = dir.path().join("overlay");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(&overlay).unwrap();
        // One container per image name, so every entry has something to rewrite.
        let mut names: Vec<&String> = entries.iter().map(|(n, _)| n).collect();
        names.dedup();
        let mut containers = String::new();
        for (i, name) in names.iter().enumerate() {
            let _ = write!(
                containers,
                "        - name: c{i}\n          image: {name}:0.0.0\n"
            );
        }
        if containers.is_empty() {
            containers.push_str("        - name: placeholder\n          image: busybox:1\n");
        }
        std::fs::write(
            base.join("deployment.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    \
                 matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    \
                 spec:\n      containers:\n{containers}"
            ),
        )
        .unwrap();
        std::fs::write(
            base.join("kustomization.yaml"),
            "resources:\n- deployment.yaml\n",
        )
        .unwrap();
        std::fs::write(overlay.join("kustomization.yaml"), &edited.text).unwrap();
        let out = Command::new("kubectl")
            .arg("kustomize")
            .arg(&overlay)
            .output()
            .expect("kubectl is required for the kustomize oracle (install kubectl)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let _ = writeln!(
                failures,
                "{}: kubectl kustomize failed: {}",
                case.id,
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let renders_base = edited.text.contains("../base");
        if renders_base {
            let got = kubectl_images(&stdout);
            let want: BTreeMap<String, String> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("c{i}"), rendered(n, &entries)))
                .collect();
            if got != want {
                let _ = writeln!(
                    failures,
                    "{}: kubectl rendered {got:?}, want {want:?}",
                    case.id
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 60, "the oracle checked only {checked} vectors");
    assert!(failures.is_empty(), "{failures}");
}
