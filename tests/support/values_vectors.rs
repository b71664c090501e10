//! What the values-engine and target vector tests share: the table format of
//! tests/fixtures/values/*.txt and the PyYAML oracle (tests/oracle/pyyaml_values.py).

use std::io::Write as _;
use std::process::{Command, Stdio};

/// What a case expects.
#[derive(Debug, Clone)]
pub enum Want {
    /// This exact output text.
    Text(String),
    /// The output equals the input.
    Unchanged,
    /// An invalid-input error whose message contains this.
    Error(String),
}

/// One case of a table: its id, the lines between its `===` header and `>>> input` (each test reads
/// its own options there), its input and what it expects.
#[derive(Debug, Clone)]
pub struct Case {
    /// `H01`, `Y12`, `M03`, ...
    pub id: String,
    /// The option lines (`set: …`, `target: …`, `deploy: …`).
    pub options: Vec<String>,
    /// The file before.
    pub input: String,
    /// The outcome.
    pub want: Want,
}

/// A block's text: its lines, each ending with `\n`, without trailing blank lines.
fn block(lines: &[&str]) -> String {
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    lines[..end].iter().map(|l| format!("{l}\n")).collect()
}

/// Every case of tests/fixtures/values/`name`.
pub fn table(name: &str) -> Vec<Case> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/values")
            .join(name),
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(header) = lines[i].strip_prefix("=== ") else {
            i += 1;
            continue;
        };
        let id = header.split_whitespace().next().unwrap().to_owned();
        i += 1;
        let mut options = Vec::new();
        while !lines[i].starts_with(">>>") {
            options.push(lines[i].to_owned());
            i += 1;
        }
        assert_eq!(lines[i], ">>> input", "{id}");
        i += 1;
        let start = i;
        while !lines[i].starts_with(">>>") {
            i += 1;
        }
        let input = block(&lines[start..i]);
        let marker = lines[i];
        i += 1;
        let start = i;
        while i < lines.len() && !lines[i].starts_with("=== ") {
            i += 1;
        }
        let body = block(&lines[start..i]);
        let want = match marker {
            ">>> expected" => Want::Text(body),
            ">>> unchanged" => Want::Unchanged,
            ">>> error" => Want::Error(body.trim().to_owned()),
            other => panic!("{id}: unknown marker {other}"),
        };
        out.push(Case {
            id,
            options,
            input,
            want,
        });
    }
    out
}

/// Runs the PyYAML oracle over `cases` (the JSON objects tests/oracle/pyyaml_values.py reads) and
/// fails with what it printed when it disagrees.
pub fn assert_pyyaml_agrees(cases: &[serde_json::Value]) {
    let mut child = Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/pyyaml_values.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with PyYAML is required (scripts/test.sh installs python3-yaml)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(cases).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "PyYAML disagrees:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
