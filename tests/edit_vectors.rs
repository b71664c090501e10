//! The edit engine against the vector table, the `kubectl kustomize` oracle, and property tests.

mod support;
use support::edit_vectors as edit_common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use edit_common::{cases, Case, Want};
use gitops_deploy::edit::{
    images_of, remove_image, set_images, set_images_saphyr_only, EditError, Edited, ImageSetting,
    ImageValues,
};

/// Runs one case through the library: parse every argument, then edit.
fn run(case: &Case) -> Result<Edited, EditError> {
    // `-NAME`: remove that entry (the library's `remove_image`, used by the rollback).
    if let [arg] = case.args.as_slice() {
        if let Some(name) = arg.strip_prefix('-') {
            return remove_image(&case.input, name);
        }
    }
    let settings = case
        .args
        .iter()
        .map(|a| ImageSetting::parse_arg(a))
        .collect::<Result<Vec<_>, _>>()?;
    let edited = set_images(&case.input, &settings);
    // The fast path for plain block YAML never changes an outcome: saphyr alone gives the same.
    let by_saphyr = set_images_saphyr_only(&case.input, &settings);
    match (&edited, &by_saphyr) {
        (Ok(a), Ok(b)) => assert_eq!(a.text, b.text, "{}", case.id),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{}", case.id),
        _ => panic!("{}: {edited:?} but saphyr alone: {by_saphyr:?}", case.id),
    }
    edited
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
/// (docs/research/kustomize.md §2.1; entries chain).
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

/// Property tests: generated kustomization files with random comments, quoting, indentation, key
/// orders and entry orders.
mod properties {
    use gitops_deploy::edit::{images_of, set_images, FieldUpdate, ImageSetting, ImageValues};
    use proptest::prelude::*;

    const NAMES: [&str; 6] = [
        "app",
        "web",
        "ghcr.io/acme/api",
        "localhost:5000/team/db",
        "nginx",
        "registry.example.com/demo/web",
    ];
    const TAGS: [&str; 8] = [
        "v1", "1.10", "1234", "2.0.1", "yes", "latest", "1e3", "v2-rc.1",
    ];
    /// Tags that YAML 1.1 does not read as strings when plain.
    const UNSAFE_PLAIN: [&str; 4] = ["1.10", "1234", "yes", "1e3"];
    const NEW_NAMES: [&str; 3] = ["reg/app", "registry.example.com:5000/x/y", "other"];

    fn digests() -> [String; 2] {
        [
            format!("sha256:{}", "a".repeat(64)),
            format!("sha256:{}", "b".repeat(64)),
        ]
    }

    #[derive(Debug, Clone)]
    struct EntrySpec {
        name: usize,
        /// (field 1..=3, value index, quote 0 plain / 1 single / 2 double)
        fields: Vec<(usize, usize, u8)>,
        name_position: usize,
        flow: bool,
        comment_before: bool,
        eol_comment: bool,
        inner_comment: bool,
        key_below_dash: bool,
    }

    #[derive(Debug, Clone)]
    struct FileSpec {
        entries: Vec<EntrySpec>,
        dash_indent: usize,
        crlf: bool,
        final_newline: bool,
        header_comment: bool,
        images_first: bool,
        /// (name index, updates for newName/newTag/digest: 0 keep, 1 remove, 2 set; value index)
        settings: Vec<(usize, [(u8, usize); 3])>,
    }

    fn value(field: usize, index: usize) -> String {
        match field {
            1 => NEW_NAMES[index % NEW_NAMES.len()].to_string(),
            2 => TAGS[index % TAGS.len()].to_string(),
            _ => digests()[index % 2].clone(),
        }
    }

    fn key(field: usize) -> &'static str {
        ["name", "newName", "newTag", "digest"][field]
    }

    fn entry_spec() -> impl Strategy<Value = EntrySpec> {
        (
            0..NAMES.len(),
            proptest::sample::subsequence(vec![1usize, 2, 3], 0..=3),
            proptest::collection::vec((0usize..8, 0u8..3), 3),
            0usize..4,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.15),
            Just(()).prop_perturb(|_, mut rng| {
                let mut order = vec![0usize, 1, 2];
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.random_range(0..=i));
                }
                order
            }),
        )
            .prop_map(
                |(name, fields, values, name_position, flow, c1, c2, c3, below, order)| {
                    let mut fields: Vec<(usize, usize, u8)> = fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| (*f, values[i].0, values[i].1))
                        .collect();
                    fields.sort_by_key(|(f, _, _)| order[*f - 1]);
                    EntrySpec {
                        name,
                        name_position: name_position.min(fields.len()),
                        fields,
                        flow: flow && !c3,
                        comment_before: c1,
                        eol_comment: c2,
                        inner_comment: c3,
                        key_below_dash: below,
                    }
                },
            )
    }

    fn file_spec() -> impl Strategy<Value = FileSpec> {
        (
            proptest::collection::vec(entry_spec(), 1..6),
            prop_oneof![Just(0usize), Just(2), Just(4)],
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(
                (
                    0..NAMES.len(),
                    proptest::array::uniform3((0u8..3, 0usize..8)),
                ),
                1..4,
            ),
        )
            .prop_map(
                |(mut entries, dash_indent, crlf, final_newline, header, first, settings)| {
                    // Entry names are unique: a duplicate targeted name is an error by design.
                    let mut seen = Vec::new();
                    entries.retain(|e| {
                        let fresh = !seen.contains(&e.name);
                        seen.push(e.name);
                        fresh
                    });
                    let mut seen = Vec::new();
                    let settings = settings
                        .into_iter()
                        .filter(|(n, _)| {
                            let fresh = !seen.contains(n);
                            seen.push(*n);
                            fresh
                        })
                        .collect();
                    FileSpec {
                        entries,
                        dash_indent,
                        crlf,
                        final_newline,
                        header_comment: header,
                        images_first: first,
                        settings,
                    }
                },
            )
    }

    fn quoted(v: &str, quote: u8) -> String {
        match quote {
            0 if !UNSAFE_PLAIN.contains(&v) => v.to_string(),
            1 => format!("'{v}'"),
            _ => format!("\"{v}\""),
        }
    }

    /// The file text, and for each entry the range of lines it may change (its own lines).
    fn render(spec: &FileSpec) -> (String, Vec<std::ops::Range<usize>>) {
        let mut lines: Vec<String> = Vec::new();
        let mut ranges = Vec::new();
        if spec.header_comment {
            lines.push("# generated overlay: keep this comment".into());
        }
        let other = [
            "apiVersion: kustomize.config.k8s.io/v1beta1",
            "kind: Kustomization",
            "resources:",
        ];
        let push_other = |lines: &mut Vec<String>| {
            lines.extend(other.iter().map(|s| s.to_string()));
            lines.push(format!(
                "{}- ../base # the base",
                " ".repeat(spec.dash_indent)
            ));
        };
        if !spec.images_first {
            push_other(&mut lines);
        }
        lines.push("images:".into());
        let dash = " ".repeat(spec.dash_indent);
        let key_indent = " ".repeat(spec.dash_indent + 2);
        for e in &spec.entries {
            if e.comment_before {
                lines.push(format!("{dash}# entry {}", NAMES[e.name]));
            }
            let start = lines.len();
            let mut pairs: Vec<String> = e
                .fields
                .iter()
                .map(|(f, v, q)| format!("{}: {}", key(*f), quoted(&value(*f, *v), *q)))
                .collect();
            pairs.insert(e.name_position, format!("name: {}", NAMES[e.name]));
            if e.flow {
                lines.push(format!("{dash}- {{{}}}", pairs.join(", ")));
            } else {
                if e.key_below_dash {
                    lines.push(format!("{dash}-"));
                }
                for (i, p) in pairs.iter().enumerate() {
                    let prefix = if i == 0 && !e.key_below_dash {
                        format!("{dash}- ")
                    } else {
                        key_indent.clone()
                    };
                    let comment = if e.eol_comment && i % 2 == 0 {
                        " # note"
                    } else {
                        ""
                    };
                    lines.push(format!("{prefix}{p}{comment}"));
                    if e.inner_comment && i == 0 {
                        lines.push(format!("{key_indent}# inside"));
                    }
                }
            }
            ranges.push(start..lines.len());
        }
        if spec.images_first {
            lines.push(String::new());
            lines.push("# after images".into());
            push_other(&mut lines);
        }
        let eol = if spec.crlf { "\r\n" } else { "\n" };
        let mut text = lines.join(eol);
        if spec.final_newline {
            text.push_str(eol);
        }
        (text, ranges)
    }

    fn settings(spec: &FileSpec) -> Vec<ImageSetting> {
        spec.settings
            .iter()
            .map(|(name, updates)| {
                let update = |field: usize| match updates[field - 1] {
                    (0, _) => FieldUpdate::Keep,
                    (1, _) => FieldUpdate::Remove,
                    (_, v) => FieldUpdate::Set(value(field, v)),
                };
                ImageSetting {
                    name: NAMES[*name].to_string(),
                    new_name: update(1),
                    new_tag: update(2),
                    digest: update(3),
                    tag_suffix: FieldUpdate::Keep,
                }
            })
            .collect()
    }

    /// The images the settings mean, by the rules of docs/research/kustomize.md §1.3 (minus the sorting).
    fn intended(spec: &FileSpec, settings: &[ImageSetting]) -> Vec<(String, ImageValues)> {
        let mut out: Vec<(String, ImageValues)> = spec
            .entries
            .iter()
            .map(|e| {
                let mut v = ImageValues::default();
                for (f, i, _) in &e.fields {
                    let slot = match f {
                        1 => &mut v.new_name,
                        2 => &mut v.new_tag,
                        _ => &mut v.digest,
                    };
                    *slot = Some(value(*f, *i));
                }
                (NAMES[e.name].to_string(), v)
            })
            .collect();
        for s in settings {
            let apply = |u: &FieldUpdate, old: Option<String>| match u {
                FieldUpdate::Keep => old,
                FieldUpdate::Remove => None,
                FieldUpdate::Set(v) => Some(v.clone()),
            };
            let current = out.iter().position(|(n, _)| *n == s.name);
            let old = current.map(|i| out[i].1.clone()).unwrap_or_default();
            let new = ImageValues {
                new_name: apply(&s.new_name, old.new_name),
                new_tag: apply(&s.new_tag, old.new_tag),
                digest: apply(&s.digest, old.digest),
            };
            match current {
                Some(i) => out[i].1 = new,
                None => out.push((s.name.clone(), new)),
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 400,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn edits_touch_only_targeted_entries_and_mean_what_was_asked(spec in file_spec()) {
            let (text, ranges) = render(&spec);
            let settings = settings(&spec);
            let edited = set_images(&text, &settings)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

            // The re-parsed meaning is the intended one.
            let got = images_of(&edited.text).unwrap();
            prop_assert_eq!(&got, &intended(&spec, &settings), "\n{}", edited.text);

            // Bytes outside the edited entries are identical: every changed line is a line of a
            // targeted entry, or an insertion right after the last entry (a new entry).
            let targeted: Vec<std::ops::Range<usize>> = spec
                .entries
                .iter()
                .zip(&ranges)
                .filter(|(e, _)| settings.iter().any(|s| s.name == NAMES[e.name]))
                .map(|(_, r)| r.clone())
                .collect();
            let images_end = ranges.last().map_or(0, |r| r.end);
            // Byte offset of each line start (and of the end).
            let mut offsets = vec![0];
            offsets.extend(text.match_indices('\n').map(|(i, _)| i + 1));
            if *offsets.last().unwrap() != text.len() {
                offsets.push(text.len());
            }
            let at = |line: usize| offsets[line.min(offsets.len() - 1)];
            // The preserved segments, in order: everything outside targeted entries, cut at the end
            // of the images list (where new entries go).
            let mut cuts = vec![(at(images_end), at(images_end))];
            cuts.extend(targeted.iter().map(|r| (at(r.start), at(r.end))));
            cuts.sort();
            let mut preserved = Vec::new();
            let mut cursor = 0;
            for (a, b) in cuts {
                preserved.push(&text[cursor..a.max(cursor)]);
                cursor = cursor.max(b);
            }
            preserved.push(&text[cursor..]);
            let new = edited.text.as_str();
            prop_assert!(new.starts_with(preserved[0]), "the start changed\n{}\n---\n{}", text, new);
            prop_assert!(new.ends_with(preserved[preserved.len() - 1]), "the end changed\n{}\n---\n{}", text, new);
            let mut pos = preserved[0].len();
            for segment in &preserved[1..] {
                let found = new[pos..].find(segment);
                prop_assert!(found.is_some(), "{:?} is gone\n{}\n---\n{}", segment, text, new);
                pos += found.unwrap() + segment.len();
            }

            // Comments survive: every whole-line comment is still there, in order.
            let comments = |t: &str| t.lines().filter(|l| l.trim_start().starts_with('#')).map(str::to_string).collect::<Vec<_>>();
            prop_assert_eq!(comments(&text), comments(&edited.text));
            // The line ending style is kept.
            prop_assert_eq!(spec.crlf, edited.text.contains("\r\n"));
            prop_assert!(!spec.crlf || !edited.text.replace("\r\n", "").contains('\n'));

            // A second identical run changes nothing.
            let again = set_images(&edited.text, &settings).unwrap();
            prop_assert!(!again.is_changed(), "second run changed\n{}\n---\n{}", edited.text, again.text);
        }
    }
}
