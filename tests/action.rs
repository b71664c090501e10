//! `action.yml`, the CLI and the README describe the same action: same inputs (names, env variables,
//! defaults, descriptions), the declared outputs, a Docker action built from a classic-builder-compatible
//! Dockerfile.

use std::collections::BTreeMap;
use std::path::Path;

use clap::CommandFactory;
use gitops_deploy::cli::Cli;
use gitops_deploy::runner::OUTPUT_NAMES;
use saphyr_parser::{Event, Parser};

/// A YAML document as plain data: enough to check `action.yml` (no anchors, tags or merge keys).
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Str(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }
    fn entries(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(entries) => entries,
            other => panic!("expected a mapping, got {other:?}"),
        }
    }
}

fn load_yaml(text: &str) -> Yaml {
    let mut events = Parser::new_from_str(text).map(|r| r.expect("valid YAML").0);
    loop {
        match events.next().expect("a document") {
            Event::MappingStart(..) => return read_map(&mut events),
            Event::StreamStart | Event::DocumentStart(_) => {}
            other => panic!("action.yml must be a mapping, got {other:?}"),
        }
    }
}

fn read_node<'a>(first: Event<'a>, events: &mut impl Iterator<Item = Event<'a>>) -> Yaml {
    match first {
        Event::Scalar(value, ..) => Yaml::Str(value.into_owned()),
        Event::MappingStart(..) => read_map(events),
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            loop {
                match events.next().expect("sequence end") {
                    Event::SequenceEnd => return Yaml::Seq(items),
                    ev => items.push(read_node(ev, events)),
                }
            }
        }
        other => panic!("unsupported YAML event {other:?}"),
    }
}

fn read_map<'a>(events: &mut impl Iterator<Item = Event<'a>>) -> Yaml {
    let mut entries: Vec<(String, Yaml)> = Vec::new();
    loop {
        let key = match events.next().expect("mapping end") {
            Event::MappingEnd => return Yaml::Map(entries),
            Event::Scalar(k, ..) => k.into_owned(),
            other => panic!("non-scalar key {other:?}"),
        };
        assert!(
            entries.iter().all(|(k, _)| *k != key),
            "duplicate key {key:?}"
        );
        let first = events.next().expect("a value");
        entries.push((key, read_node(first, events)));
    }
}

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn action() -> Yaml {
    load_yaml(&repo_file("action.yml"))
}

/// One option of `gitops-deploy run` that the action exposes.
#[derive(Debug)]
struct CliInput {
    env: String,
    long: String,
    help: String,
    default: Option<String>,
}

/// The `run` options with an `INPUT_*` env variable, keyed by input name (`INPUT_FOO_BAR` → `foo_bar`).
fn cli_inputs() -> BTreeMap<String, CliInput> {
    let mut cmd = Cli::command();
    cmd.build();
    let run = cmd
        .find_subcommand("run")
        .expect("the CLI has a `run` subcommand");
    let mut out = BTreeMap::new();
    for arg in run.get_arguments() {
        // Hidden options are for benchmarks and debugging, not part of the action's interface.
        if arg.is_hide_set() {
            continue;
        }
        let Some(env) = arg.get_env().map(|e| e.to_string_lossy().into_owned()) else {
            continue;
        };
        let name = env
            .strip_prefix("INPUT_")
            .unwrap_or_else(|| panic!("run option {:?} has env {env}, not INPUT_*", arg.get_id()))
            .to_ascii_lowercase();
        let long = arg.get_long().expect("inputs are long options").to_owned();
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        out.insert(
            name,
            CliInput {
                env,
                long,
                help,
                default: (!defaults.is_empty()).then(|| defaults.join(",")),
            },
        );
    }
    out
}

/// The default `action.yml` must declare for an option: the CLI's own default, or the literal value of
/// a `[default: X]` in its help; `""` when the default is computed at run time (`[default: $GITHUB_…]`,
/// `[default: the repository's default branch]`), since an empty input counts as "not given".
fn expected_default(opt: &CliInput) -> String {
    if let Some(d) = &opt.default {
        return d.clone();
    }
    let Some(start) = opt.help.find("[default: ") else {
        return String::new();
    };
    let rest = &opt.help[start + "[default: ".len()..];
    let value = &rest[..rest.find(']').expect("closing bracket")];
    let literal = !value.starts_with('$')
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@:/+-".contains(c));
    if literal {
        value.to_owned()
    } else {
        String::new()
    }
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn action_yml_has_the_required_top_level_keys_and_docker_runs() {
    let action = action();
    for key in [
        "name",
        "description",
        "author",
        "branding",
        "inputs",
        "outputs",
        "runs",
    ] {
        assert!(action.get(key).is_some(), "action.yml lacks `{key}`");
    }
    for key in ["name", "description", "author"] {
        let value = action.get(key).and_then(Yaml::str).unwrap_or_default();
        assert!(!value.trim().is_empty(), "action.yml `{key}` is empty");
    }
    let branding = action.get("branding").unwrap();
    assert!(branding.get("icon").and_then(Yaml::str).is_some());
    assert!(branding.get("color").and_then(Yaml::str).is_some());
    let runs = action.get("runs").unwrap();
    assert_eq!(runs.get("using").and_then(Yaml::str), Some("docker"));
    let image = runs.get("image").and_then(Yaml::str).expect("runs.image");
    assert_eq!(image, "Dockerfile");
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(image).is_file());
    // `args` would be shell-split by the runner and replace the action's own env handling (docs/research/gitea.md A5).
    assert!(runs.get("args").is_none(), "runs.args must stay unset");
}

#[test]
fn every_input_and_output_is_described_and_snake_case() {
    let action = action();
    for section in ["inputs", "outputs"] {
        for (name, spec) in action.get(section).unwrap().entries() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{section}.{name}: names are snake_case so every runner makes the same env name"
            );
            let description = spec.get("description").and_then(Yaml::str);
            assert!(
                description.is_some_and(|d| !d.trim().is_empty()),
                "{section}.{name} has no description"
            );
        }
    }
    for (name, spec) in action.get("inputs").unwrap().entries() {
        assert!(
            spec.get("default").is_some(),
            "inputs.{name} has no default"
        );
    }
    let token = action
        .get("inputs")
        .unwrap()
        .get("token")
        .expect("a token input");
    assert_eq!(
        token.get("default").and_then(Yaml::str),
        Some("${{ github.token }}")
    );
    let outputs: Vec<&str> = action
        .get("outputs")
        .unwrap()
        .entries()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        outputs, OUTPUT_NAMES,
        "outputs, in the order they are written"
    );
}

#[test]
fn action_inputs_match_the_cli_run_options() {
    let action = action();
    let inputs = action.get("inputs").unwrap().entries();
    let cli = cli_inputs();
    let yml_names: Vec<&str> = inputs.iter().map(|(k, _)| k.as_str()).collect();
    let cli_names: Vec<&str> = cli.keys().map(String::as_str).collect();
    let mut sorted = yml_names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, cli_names, "action.yml inputs vs `run` options");
    for (name, spec) in inputs {
        let opt = &cli[name];
        assert_eq!(opt.env, format!("INPUT_{}", name.to_ascii_uppercase()));
        assert_eq!(opt.long, name.replace('_', "-"), "flag spelling of {name}");
        let description = spec.get("description").and_then(Yaml::str).unwrap();
        assert_eq!(
            normalise(description),
            normalise(opt.help.trim_end_matches('.')),
            "inputs.{name}.description must be the `--{}` help text",
            opt.long
        );
        let required = spec.get("required").and_then(Yaml::str) == Some("true");
        let yml_default = spec.get("default").and_then(Yaml::str).unwrap_or_default();
        if name != "token" {
            let want = expected_default(opt);
            assert_eq!(
                yml_default, want,
                "inputs.{name}.default vs the CLI's default"
            );
            assert!(
                !required || want.is_empty(),
                "inputs.{name} has a default, so it is not required"
            );
        }
    }
}

#[test]
fn readme_input_and_output_tables_match_action_yml() {
    let readme = repo_file("README.md");
    let action = action();
    let table = |heading: &str| -> Vec<String> {
        let start = readme
            .lines()
            .position(|l| l.trim() == heading)
            .unwrap_or_else(|| panic!("README has no `{heading}` heading"));
        readme
            .lines()
            .skip(start + 1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
            .map(|row| {
                let cell = row.split('|').nth(1).unwrap().trim();
                cell.trim_matches('`').to_owned()
            })
            .collect()
    };
    for (heading, section) in [("### Inputs", "inputs"), ("### Outputs", "outputs")] {
        let mut in_readme = table(heading);
        let mut in_yml: Vec<String> = action
            .get(section)
            .unwrap()
            .entries()
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        in_readme.sort();
        in_yml.sort();
        assert_eq!(
            in_readme, in_yml,
            "README {heading} vs action.yml {section}"
        );
    }
}

#[test]
fn dockerfile_works_with_the_classic_builder_and_copies_only_what_exists() {
    let dockerfile = repo_file("Dockerfile");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // BuildKit-only syntax fails on the runners' classic builder (docs/research/gitea.md A2).
    for forbidden in ["# syntax=", "--mount", "<<EOF", "<<-", "--link", "--chmod"] {
        assert!(
            !dockerfile.contains(forbidden),
            "Dockerfile uses BuildKit-only `{forbidden}`"
        );
    }
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "multi-stage build");
    let last_from = dockerfile
        .lines()
        .rfind(|l| l.starts_with("FROM "))
        .unwrap();
    assert_eq!(
        last_from, "FROM scratch",
        "the runtime stage holds nothing else"
    );
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(root.join(src).exists(), "Dockerfile copies missing {src}");
        }
    }
    let dockerignore = repo_file(".dockerignore");
    assert!(
        dockerignore.lines().any(|l| l.trim() == "*"),
        "the context starts empty"
    );
}

/// A YAML file as JSON, with YAML 1.2 core-schema scalars (`false` is a boolean, `on` a string).
fn yaml_as_json(path: &str) -> serde_json::Value {
    serde_saphyr::from_str(&repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn schemastore(name: &str) -> jsonschema::Validator {
    // Vendored from SchemaStore/schemastore `src/schemas/json/<name>.json` at 3b6446a (2026-08-07).
    let schema: serde_json::Value = serde_json::from_str(&repo_file(&format!(
        "tests/fixtures/schemastore/{name}.json"
    )))
    .unwrap();
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_schema_valid(validator: &jsonschema::Validator, path: &str, doc: &serde_json::Value) {
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{path} fails the SchemaStore schema:\n{errors:#?}"
    );
}

/// action.yml, its release form (pinned to an image by digest) and every workflow file validate
/// against SchemaStore's schemas; a document the schema must refuse is refused (the check can fail).
#[test]
fn action_and_workflows_validate_against_schemastore() {
    let action = schemastore("github-action");
    let mut doc = yaml_as_json("action.yml");
    assert_schema_valid(&action, "action.yml", &doc);
    doc["runs"]["image"] = format!(
        "docker://gitea.example.com/ops/gitops-deploy@sha256:{}",
        "ab".repeat(32)
    )
    .into();
    assert_schema_valid(&action, "action.yml (release)", &doc);
    doc["runs"].as_object_mut().unwrap().remove("image");
    assert!(
        !action.is_valid(&doc),
        "a docker action without runs.image must fail"
    );

    let workflow = schemastore("github-workflow");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = Vec::new();
    for dir in [
        ".gitea/workflows",
        ".github/workflows",
        ".forgejo/workflows",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let rel = format!("{dir}/{}", entry.file_name().to_string_lossy());
            let doc = yaml_as_json(&rel);
            assert_schema_valid(&workflow, &rel, &doc);
            let mut broken = doc.clone();
            broken["jobs"]["release"]["steps"] = "not a list".into();
            assert!(
                !workflow.is_valid(&broken),
                "{rel}: a broken copy must fail"
            );
            seen.push(rel);
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ".gitea/workflows/release.yaml",
            ".github/workflows/release.yaml"
        ]
    );
}

/// A runner sets every declared input, with action.yml's default when the workflow leaves it out:
/// those defaults must plan a plain push deploy. Run as a runner would (no arguments, `INPUT_*`
/// only) with the defaults and a missing `path`: the only problem reported is `path`.
#[test]
fn action_defaults_plan_a_push_deploy() {
    let action = action();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gitops-deploy"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GITHUB_ACTIONS", "true")
        .env("GITEA_ACTIONS", "true");
    for (name, spec) in action.get("inputs").unwrap().entries() {
        let default = match spec.get("default") {
            Some(Yaml::Str(d)) => d.clone(),
            _ => String::new(),
        };
        // `${{ github.token }}` is the runner's expression; a value stands in for it.
        let default = if default.contains("${{") {
            "t0ken".to_owned()
        } else {
            default
        };
        cmd.env(format!("INPUT_{}", name.to_ascii_uppercase()), default);
    }
    cmd.env("INPUT_REPOSITORY", "ops/gitops")
        .env("INPUT_SERVER_URL", "https://git.example.com")
        .env("INPUT_IMAGE", "registry.example.com/web")
        .env("INPUT_TAG", "1.0.0");
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let problems: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    assert_eq!(problems.len(), 1, "{err}");
    assert!(problems[0].starts_with("path: required"), "{err}");
}
