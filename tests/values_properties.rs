//! Property tests of the values engine and the targets on generated files: no panic; every byte
//! outside the edited value is kept; the result means the intended value (read back by the engine);
//! a second run changes nothing. Generated files vary quoting, comments, blank lines, flow style,
//! CRLF, a BOM and the final newline.

use gitops_deploy::edit::{
    set_values, values_at, HelmKeys, ImageSetting, KeyPath, Reader, Target, ValueSetting,
};
use proptest::prelude::*;

/// Values that stress quoting: numbers, keywords, dates, indicators, plain words.
const VALUES: [&str; 16] = [
    "1.2.3",
    "1.10",
    "1234",
    "yes",
    "No",
    "null",
    "~",
    "2024-01-01",
    "1e3",
    "0x1F",
    "v2",
    "a: b",
    "#x",
    "it's",
    "",
    "registry.example.com/app:1.2.3",
];

#[derive(Debug, Clone)]
struct Key {
    value: usize,
    /// 0 plain (when safe), 1 single, 2 double.
    quote: u8,
    comment: bool,
    blank_before: bool,
}

#[derive(Debug, Clone)]
struct Doc {
    keys: Vec<Key>,
    flow: bool,
    crlf: bool,
    bom: bool,
    final_newline: bool,
    header: bool,
}

fn key() -> impl Strategy<Value = Key> {
    (0..VALUES.len(), 0u8..3, any::<bool>(), any::<bool>()).prop_map(
        |(value, quote, comment, blank_before)| Key {
            value,
            quote,
            comment,
            blank_before,
        },
    )
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        prop::collection::vec(key(), 1..8),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(keys, flow, crlf, bom, final_newline, header)| Doc {
            keys,
            flow,
            crlf,
            bom,
            final_newline,
            header,
        })
}

/// A scalar written so that it reads back as `v` (double quotes when in doubt).
fn written(v: &str, quote: u8) -> String {
    let plain_ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "./-_".contains(c))
        && !v.chars().next().unwrap().is_ascii_digit()
        && !["yes", "No", "null", "v2"].contains(&v);
    match quote {
        0 if plain_ok => v.to_owned(),
        1 => format!("'{}'", v.replace('\'', "''")),
        _ => format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

fn render(doc: &Doc) -> String {
    let mut text = String::new();
    if doc.header {
        text.push_str("# generated\n");
    }
    text.push_str("app:\n");
    if doc.flow {
        let pairs: Vec<String> = doc
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("k{i}: {}", written(VALUES[k.value], k.quote.max(1))))
            .collect();
        text.push_str(&format!("  flow: {{{}}}\n", pairs.join(", ")));
    }
    for (i, k) in doc.keys.iter().enumerate() {
        if k.blank_before {
            text.push('\n');
        }
        text.push_str(&format!("  k{i}: {}", written(VALUES[k.value], k.quote)));
        if k.comment {
            text.push_str(" # note");
        }
        text.push('\n');
    }
    text.push_str("other: 1\n");
    if !doc.final_newline {
        text.pop();
    }
    if doc.crlf {
        text = text.replace('\n', "\r\n");
    }
    if doc.bom {
        text.insert(0, '\u{feff}');
    }
    text
}

proptest! {
    // 512 cases per run in the suite; the long randomized run sets PROPTEST_CASES (BENCHMARKS.md).
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512), ..ProptestConfig::default() })]

    /// Setting one key: the intended value, nothing else touched, idempotent.
    #[test]
    fn a_set_changes_only_its_value(doc in doc(), pick in any::<prop::sample::Index>(), new in 0..VALUES.len(), in_flow in any::<bool>()) {
        let text = render(&doc);
        let i = pick.index(doc.keys.len());
        let path = if doc.flow && in_flow { format!("app.flow.k{i}") } else { format!("app.k{i}") };
        let setting = ValueSetting { path: KeyPath::parse(&path).unwrap(), value: VALUES[new].to_owned() };
        let edited = set_values(&text, std::slice::from_ref(&setting), Reader::Yaml11);
        let edited = match edited {
            Ok(e) => e,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text:?}"))),
        };
        // The value reads back.
        let got = values_at(&edited.text, std::slice::from_ref(&setting.path)).unwrap();
        let want = if VALUES[new].is_empty() { None } else { Some(VALUES[new].to_owned()) };
        prop_assert!(got[0] == want || (VALUES[new].is_empty() && got[0].as_deref() == Some("")), "{got:?} != {want:?}\n{}", edited.text);
        // Every other key reads as before.
        for (j, _) in doc.keys.iter().enumerate() {
            for prefix in ["app.k", "app.flow.k"] {
                let other = format!("{prefix}{j}");
                if other == path || (prefix == "app.flow.k" && !doc.flow) {
                    continue;
                }
                let p = KeyPath::parse(&other).unwrap();
                prop_assert_eq!(values_at(&text, std::slice::from_ref(&p)).unwrap(), values_at(&edited.text, std::slice::from_ref(&p)).unwrap());
            }
        }
        // Only the edited line's bytes differ (a flow mapping is one line).
        let old_lines: Vec<&str> = text.split('\n').collect();
        let new_lines: Vec<&str> = edited.text.split('\n').collect();
        prop_assert_eq!(old_lines.len(), new_lines.len());
        let differing = old_lines.iter().zip(&new_lines).filter(|(a, b)| a != b).count();
        prop_assert!(differing <= 1, "{differing} lines changed:\n{text}\n---\n{}", edited.text);
        // A second run changes nothing.
        let again = set_values(&edited.text, std::slice::from_ref(&setting), Reader::Yaml11).unwrap();
        prop_assert!(!again.is_changed());
        prop_assert_eq!(again.text, edited.text);
    }

    /// A Helm deploy: the tag reads back as the exact string, the rest of the file as before.
    #[test]
    fn a_helm_deploy_sets_exactly_its_tag(doc in doc(), tag in prop::sample::select(&VALUES[..])) {
        // Only OCI tags reach a values file.
        if tag.is_empty() || tag.contains([':', ' ', '#', '\'', '/']) || tag.starts_with(['.', '-', '~']) {
            prop_assert!(ImageSetting::deploy("web", Some(tag), None, None).is_err(), "{tag:?}");
            return Ok(());
        }
        let text = render(&doc).replacen("app:", "image:\n  repository: web\n  tag: v0\napp:", 1);
        let Ok(setting) = ImageSetting::deploy("web", Some(tag), None, None) else {
            return Ok(()); // not an OCI tag: refused before any edit
        };
        let target = Target::Helm(vec![HelmKeys::chart_convention()]);
        let edited = target.apply(&text, &setting).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        let got = values_at(&edited.text, &[KeyPath::parse("image.tag").unwrap()]).unwrap();
        prop_assert_eq!(got[0].as_deref(), Some(tag));
        let again = target.apply(&edited.text, &setting).unwrap();
        prop_assert!(!again.is_changed());
    }

    /// A manifests deploy: every container of the repository gets the new reference, every other
    /// image and byte stays.
    #[test]
    fn a_manifests_deploy_sets_every_container_of_the_repository(
        images in prop::collection::vec((0usize..3, 0usize..3, any::<bool>()), 1..6),
        docs in 1usize..3,
        crlf in any::<bool>(),
    ) {
        const REPOS: [&str; 3] = ["registry.example.com/web", "registry.example.com/web-worker", "envoy"];
        const TAGS: [&str; 3] = ["1.0.0", "1.10", "sha-0f1e2d3"];
        let mut text = String::new();
        for d in 0..docs {
            text.push_str(&format!("---
kind: Deployment
metadata:
  name: d{d}
spec:
  template:
    spec:
      containers:
"));
            for (i, (repo, tag, quoted)) in images.iter().enumerate() {
                let image = format!("{}:{}", REPOS[*repo], TAGS[*tag]);
                let image = if *quoted { format!("\"{image}\"") } else { image };
                text.push_str(&format!("      - name: c{i} # container {i}\n        image: {image}\n"));
            }
        }
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        let setting = ImageSetting::deploy("registry.example.com/web", Some("2.0.0"), None, None).unwrap();
        let uses = images.iter().any(|(r, _, _)| *r == 0);
        match Target::Manifests.apply(&text, &setting) {
            Ok(edited) => {
                prop_assert!(uses);
                let mut want = String::new();
                for line in text.split_inclusive('\n') {
                    let is_web = line.contains("image: registry.example.com/web:") || line.contains("image: \"registry.example.com/web:");
                    if is_web {
                        let quoted = line.contains('"');
                        let eol = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
                        let image = if quoted { "\"registry.example.com/web:2.0.0\"" } else { "registry.example.com/web:2.0.0" };
                        want.push_str(&format!("        image: {image}{eol}"));
                    } else {
                        want.push_str(line);
                    }
                }
                prop_assert_eq!(&edited.text, &want);
                prop_assert!(!Target::Manifests.apply(&edited.text, &setting).unwrap().is_changed());
            }
            Err(e) => prop_assert!(!uses, "{e}"),
        }
    }
}
