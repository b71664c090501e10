//! The project works from a clone alone: no code, test, bench or script reads a file outside the
//! repository (a folder beside it, an absolute path of one machine).

use std::path::{Component, Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every tracked source and script, by walking the tree (the `target` directory and dot-folders
/// other than the workflows left out).
fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "target" && (!name.starts_with('.') || name == ".ci") {
                    stack.push(path);
                }
            } else if ["rs", "sh"]
                .iter()
                .any(|e| path.extension().is_some_and(|x| x == *e))
                || path
                    .parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == ".ci")
            {
                out.push(path);
            }
        }
    }
    out
}

/// `path` made absolute against `base` without touching the disk (`..` pops a component).
fn resolve(base: &Path, path: &str) -> PathBuf {
    let mut out = if path.starts_with('/') {
        PathBuf::from("/")
    } else {
        base.to_path_buf()
    };
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

/// The crate directory a Rust file belongs to (where its `CARGO_MANIFEST_DIR` points).
fn crate_dir(file: &Path) -> PathBuf {
    let mut dir = file.parent().unwrap();
    while !dir.join("Cargo.toml").is_file() {
        dir = dir.parent().unwrap();
    }
    dir.to_path_buf()
}

/// Places that name files in the sources: (file, line, literal, resolved path) for every string used
/// as a path — `include_str!`/`include_bytes!`/`#[path]` (relative to the file), `join`/`Path::new`/
/// `PathBuf::from`/`read_to_string`/`fs::read` (relative to the crate), and literals naming this
/// workplace's folders (`/work/…`, `…/shared/…`).
fn path_literals() -> Vec<(PathBuf, usize, String, PathBuf)> {
    let file_relative = regex::Regex::new(
        r#"(?:include_str!|include_bytes!)\(\s*"([^"]+)"|#\[path\s*=\s*"([^"]+)""#,
    )
    .unwrap();
    let crate_relative = regex::Regex::new(
        r#"(?:\.join|Path::new|PathBuf::from|read_to_string|fs::read)\(\s*"([^"]*\.\.[^"]*)""#,
    )
    .unwrap();
    // This machine's folders: the workplace and the folder beside the clone.
    let absolute = regex::Regex::new(r#""(/work/[^"]*|[^"]*/shared/[^"]*)""#).unwrap();
    let shell_up = regex::Regex::new(r#"(?:^|[\s"'=])(\.\./[^\s"']*)"#).unwrap();
    let mut out = Vec::new();
    // This file's own examples are not reads.
    for file in sources()
        .into_iter()
        .filter(|f| !f.ends_with("tests/hygiene.rs"))
    {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let is_rust = file.extension().is_some_and(|e| e == "rs");
        for (n, line) in text.lines().enumerate() {
            let mut hit = |literal: &str, base: &Path| {
                out.push((
                    file.clone(),
                    n + 1,
                    literal.to_owned(),
                    resolve(base, literal),
                ));
            };
            if is_rust {
                for c in file_relative.captures_iter(line) {
                    let lit = c.get(1).or_else(|| c.get(2)).unwrap().as_str();
                    hit(lit, file.parent().unwrap());
                }
                for c in crate_relative.captures_iter(line) {
                    hit(&c[1], &crate_dir(&file));
                }
                for c in absolute.captures_iter(line) {
                    hit(&c[1], root());
                }
            } else if !line.trim_start().starts_with('#') {
                // Scripts run from the repository root (each begins with `cd "$(dirname "$0")/.."`).
                for c in shell_up.captures_iter(line) {
                    hit(&c[1], root());
                }
            }
        }
    }
    out
}

#[test]
fn no_source_reads_outside_the_repository() {
    let found = path_literals();
    // The scan sees the files it must see (the edit vectors are included by src/edit/quick.rs).
    assert!(
        found
            .iter()
            .any(|(_, _, lit, _)| lit == "../../tests/fixtures/edit/vectors.txt"),
        "the scan found no include_str! at all"
    );
    let outside: Vec<String> = found
        .iter()
        .filter(|(_, _, _, resolved)| !resolved.starts_with(root()))
        .map(|(file, line, lit, _)| {
            format!(
                "{}:{line}: {lit:?}",
                file.strip_prefix(root()).unwrap().display()
            )
        })
        .collect();
    assert!(
        outside.is_empty(),
        "paths outside the repository (vendor what the tests need):\n{}",
        outside.join("\n")
    );
}

#[test]
fn the_scan_catches_what_it_must() {
    assert_eq!(
        resolve(Path::new("/r/sandbox"), "../../beside/x"),
        PathBuf::from("/beside/x")
    );
    assert!(!resolve(root(), "../beside/specs/a.json").starts_with(root()));
    assert!(resolve(&root().join("src/edit"), "../../tests/fixtures/x").starts_with(root()));
}

/// The behaviour table of docs/compatibility.md and the README's Compatibility section name tests in
/// backquotes; each must exist (a renamed or deleted test would leave a row that proves nothing).
#[test]
fn every_test_the_compatibility_table_cites_exists() {
    let functions: std::collections::HashSet<String> = sources()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.split("fn ")
                .skip(1)
                .filter_map(|rest| {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    (!name.is_empty()).then_some(name)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut cited = 0;
    for doc in ["docs/compatibility.md", "README.md"] {
        let mut text = std::fs::read_to_string(root().join(doc)).unwrap();
        if doc == "README.md" {
            // Only its Compatibility section cites tests.
            let start = text
                .find("\n## Compatibility")
                .expect("README has a Compatibility section");
            let end = text[start + 1..]
                .find("\n## ")
                .map_or(text.len(), |e| start + 1 + e);
            text = text[start..end].to_owned();
        }
        // The last cell of each table row is "covered by"/"tested by".
        let cells = text
            .lines()
            .filter(|l| l.starts_with('|'))
            .filter_map(|l| l.trim_end().trim_end_matches('|').rsplit('|').next());
        for cell in cells {
            for (i, quoted) in cell.split('`').enumerate() {
                // Odd pieces are inside backquotes; a test name is snake_case with two underscores.
                let is_test_name = i % 2 == 1
                    && quoted.matches('_').count() >= 2
                    && quoted
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if is_test_name {
                    cited += 1;
                    assert!(
                        functions.contains(quoted),
                        "{doc} cites `{quoted}`, which is no function of the repository"
                    );
                }
            }
        }
    }
    assert!(cited > 30, "only {cited} tests cited: the scan is broken");
}

/// The module graph of `src/` (README "Architecture"): only `cli` and `main.rs` use `cli`, and no two
/// top-level modules use each other, directly or through others.
#[test]
fn top_level_modules_form_no_circle_and_only_the_cli_knows_the_cli() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = root().join("src");
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in sources()
        .into_iter()
        .filter(|p| p.starts_with(&src) && p.extension().is_some_and(|e| e == "rs"))
    {
        let rel = path.strip_prefix(&src).unwrap();
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let entry = uses.entry(module.clone()).or_default();
        for piece in code.split("crate::").skip(1) {
            // `crate::a::…`, or a group `crate::{a, b::c}`: every first segment counts.
            let names: Vec<String> = match piece.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or_default().to_owned())
                    .collect(),
                None => vec![piece
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect()],
            };
            for used in names {
                if !used.is_empty() && used != module && used != "self" {
                    entry.insert(used);
                }
            }
        }
    }
    for (module, used) in &uses {
        assert!(
            module == "cli" || module == "main" || !used.contains("cli"),
            "src/{module} uses crate::cli: inputs are the CLI's job"
        );
    }
    // Depth-first search for a circle.
    fn visit(
        m: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = path.iter().position(|p| p == m) {
            panic!("import circle: {} → {m}", path[at..].join(" → "));
        }
        path.push(m.to_owned());
        for next in uses.get(m).into_iter().flatten() {
            visit(next, uses, path, done);
        }
        path.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in uses.keys() {
        visit(m, &uses, &mut Vec::new(), &mut done);
    }
    assert!(uses.len() > 15, "the scan found too few modules: {uses:?}");
}

/// Every repository file the code's comments point at (`docs/…`, `sandbox/specs/…`) exists: a reader of
/// a clone can follow each reference.
#[test]
fn every_file_the_code_cites_is_in_the_repository() {
    let cited =
        regex::Regex::new(r"\b(docs/[A-Za-z0-9_./-]+\.md|sandbox/specs/[A-Za-z0-9_.-]+\.json)")
            .unwrap();
    let mut seen = 0;
    for path in sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        for m in cited.find_iter(&text) {
            seen += 1;
            assert!(
                root().join(m.as_str()).is_file(),
                "{} cites {}, which is not in the repository",
                path.display(),
                m.as_str()
            );
        }
    }
    assert!(seen > 50, "only {seen} citations found: the scan is broken");
}
