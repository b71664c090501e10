//! The values engine (the `helm` and `yaml` targets) against its vector table
//! (tests/fixtures/values/vectors.txt), in LF, CRLF, BOM and no-final-newline variants, with every
//! success re-read by PyYAML (tests/oracle/pyyaml_values.py), and property tests.

mod support;
use support::values_vectors as values_common;

use gitops_deploy::edit::{set_values, KeyPath, Reader, Segment, ValueSetting};
use values_common::{assert_pyyaml_agrees, table, Want};

#[derive(Debug, Clone)]
struct Case {
    id: String,
    sets: Vec<(String, String)>,
    reader: Reader,
    input: String,
    want: Want,
}

/// Splits `PATH=VALUE` at the first `=` outside `[…]`; `%0A` in the value is a newline.
fn split_set(line: &str) -> (String, String) {
    let mut depth = 0;
    for (i, c) in line.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '=' if depth == 0 => {
                return (line[..i].to_owned(), line[i + 1..].replace("%0A", "\n"));
            }
            _ => {}
        }
    }
    // An unclosed `[` (a malformed path on purpose): the last `=`.
    let (path, value) = line.rsplit_once('=').expect("set: PATH=VALUE");
    (path.to_owned(), value.to_owned())
}

fn cases() -> Vec<Case> {
    table("vectors.txt")
        .into_iter()
        .map(|c| {
            let mut sets = Vec::new();
            let mut reader = Reader::Yaml11;
            for line in &c.options {
                if let Some(s) = line.strip_prefix("set: ") {
                    sets.push(split_set(s));
                } else if line == "reader: kustomize" {
                    reader = Reader::Kustomize;
                }
            }
            Case {
                id: c.id,
                sets,
                reader,
                input: c.input,
                want: c.want,
            }
        })
        .collect()
}

fn settings(case: &Case) -> Result<Vec<ValueSetting>, String> {
    case.sets
        .iter()
        .map(|(p, v)| {
            Ok(ValueSetting {
                path: KeyPath::parse(p).map_err(|e| e.to_string())?,
                value: v.clone(),
            })
        })
        .collect()
}

/// Turns a case's text into one of its variants.
type Transform = fn(&str) -> String;

/// The variants every successful case runs in: (suffix, transform).
fn variants() -> Vec<(&'static str, Transform)> {
    vec![
        ("", |t| t.to_owned()),
        (" crlf", |t| t.replace('\n', "\r\n")),
        (" bom", |t| format!("\u{feff}{t}")),
        (" nofinalnl", |t| {
            t.strip_suffix('\n').unwrap_or(t).to_owned()
        }),
    ]
}

fn segments_json(path: &KeyPath) -> serde_json::Value {
    path.segments()
        .iter()
        .map(|s| match s {
            Segment::Key(k) => serde_json::json!({ "key": k }),
            Segment::Index(i) => serde_json::json!({ "index": i }),
            Segment::Select { key, value } => serde_json::json!({ "select": [key, value] }),
        })
        .collect()
}

#[test]
fn every_vector_gives_its_exact_output_in_every_variant_and_pyyaml_agrees() {
    let cases = cases();
    let helm = cases.iter().filter(|c| c.id.starts_with('H')).count();
    let yaml = cases.iter().filter(|c| c.id.starts_with('Y')).count();
    assert!(
        helm >= 40 && yaml >= 40,
        "{helm} helm and {yaml} yaml vectors"
    );
    let mut failures = Vec::new();
    let mut oracle = Vec::new();
    for case in &cases {
        let settings = settings(case);
        match (&case.want, settings) {
            (Want::Error(m), Err(e)) => {
                if !e.contains(m.as_str()) {
                    failures.push(format!("{}: error {e:?} lacks {m:?}", case.id));
                }
            }
            (Want::Error(m), Ok(settings)) => match set_values(&case.input, &settings, case.reader)
            {
                Err(e) if e.is_invalid_input() && e.to_string().contains(m.as_str()) => {}
                other => failures.push(format!(
                    "{}: want an error with {m:?}, got {other:?}",
                    case.id
                )),
            },
            (want, Ok(settings)) => {
                let expected = match want {
                    Want::Text(t) => t.clone(),
                    _ => case.input.clone(),
                };
                for (suffix, transform) in variants() {
                    let input = transform(&case.input);
                    let expected = transform(&expected);
                    let id = format!("{}{suffix}", case.id);
                    match set_values(&input, &settings, case.reader) {
                        Ok(edited) => {
                            if edited.text != expected {
                                failures.push(format!(
                                    "{id}:\n--- want\n{expected}--- got\n{}",
                                    edited.text
                                ));
                            }
                            if edited.is_changed() != (edited.text != input) {
                                failures
                                    .push(format!("{id}: is_changed() is {}", edited.is_changed()));
                            }
                            // Idempotent: the same settings again change nothing.
                            match set_values(&edited.text, &settings, case.reader) {
                                Ok(again) if !again.is_changed() && again.text == edited.text => {}
                                other => {
                                    failures.push(format!("{id}: a second run gives {other:?}"))
                                }
                            }
                            if case.reader == Reader::Yaml11 {
                                oracle.push(serde_json::json!({
                                    "id": id,
                                    "old": input,
                                    "new": edited.text,
                                    "sets": settings.iter().map(|s| serde_json::json!([segments_json(&s.path), s.value])).collect::<Vec<_>>(),
                                }));
                            }
                        }
                        Err(e) => failures.push(format!("{id}: {e}")),
                    }
                }
            }
            (_, Err(e)) => failures.push(format!("{}: {e}", case.id)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        oracle.len() >= 200,
        "only {} edits for PyYAML",
        oracle.len()
    );
    assert_pyyaml_agrees(&oracle);
}
