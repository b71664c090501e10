//! The edit-engine vector table (tests/fixtures/edit/vectors.txt), shared by the edit test binaries.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;

/// What a case expects.
#[derive(Debug, Clone)]
pub enum Want {
    /// This exact output text.
    Text(String),
    /// An error whose message contains this.
    Error(String),
}

/// One vector.
#[derive(Debug, Clone)]
pub struct Case {
    /// `V01`, `L4`, `E12`, ...
    pub id: String,
    /// What it tests.
    pub title: String,
    /// The set-image arguments.
    pub args: Vec<String>,
    /// The file before.
    pub input: String,
    /// The outcome.
    pub want: Want,
}

/// The path of a fixture under tests/fixtures/edit.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edit")
        .join(name)
}

fn substitute(text: &str) -> String {
    text.replace("$D2", &format!("sha256:{}", "b".repeat(64)))
        .replace("$D", &format!("sha256:{}", "a".repeat(64)))
}

/// A block's text: its lines, each ending with `\n`, without trailing blank lines.
fn block(lines: &[&str]) -> String {
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    lines[..end].iter().map(|l| format!("{l}\n")).collect()
}

/// Reads every case of the table.
pub fn cases() -> Vec<Case> {
    let table = std::fs::read_to_string(fixture("vectors.txt")).expect("vectors.txt");
    let lines: Vec<&str> = table.lines().collect();
    let mut cases = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(header) = lines[i].strip_prefix("=== ") else {
            i += 1;
            continue;
        };
        let (id, title) = header.split_once(' ').unwrap_or((header, ""));
        i += 1;
        let mut args = Vec::new();
        let mut opts = Vec::new();
        let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
        while i < lines.len() && !lines[i].starts_with("=== ") {
            let line = lines[i];
            if let Some(kind) = line.strip_prefix(">>> ") {
                sections.push((kind, Vec::new()));
            } else if let Some((_, body)) = sections.last_mut() {
                body.push(line);
            } else if let Some(a) = line.strip_prefix("args:") {
                args = a
                    .split_whitespace()
                    .map(|a| substitute(a).replace("%0A", "\n"))
                    .collect();
            } else if let Some(o) = line.strip_prefix("opts:") {
                opts = o.split_whitespace().map(str::to_string).collect();
            }
            i += 1;
        }
        let has = |o: &str| opts.iter().any(|x| x == o);
        let shape = |text: String, is_input: bool| {
            let mut t = text;
            if has("nofinalnl") || (is_input && has("input-nofinalnl")) {
                t.pop();
            }
            if has("crlf") {
                t = t.replace('\n', "\r\n");
            }
            if has("bom") {
                t.insert(0, '\u{feff}');
            }
            t
        };
        let mut input = None;
        let mut want = None;
        for (kind, body) in sections {
            match kind {
                "input" => input = Some(shape(substitute(&block(&body)), true)),
                "expected" => want = Some(Want::Text(shape(substitute(&block(&body)), false))),
                "unchanged" => want = Some(Want::Text(input.clone().expect("input first"))),
                "error" => want = Some(Want::Error(body.join("\n").trim().to_string())),
                other => panic!("{id}: unknown section {other}"),
            }
        }
        cases.push(Case {
            id: id.to_string(),
            title: title.to_string(),
            args,
            input: input.unwrap_or_else(|| panic!("{id}: no input")),
            want: want.unwrap_or_else(|| panic!("{id}: no expectation")),
        });
    }
    cases
}
