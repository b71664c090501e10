//! The targets (`helm`, `yaml`, `manifests`) against their vector table
//! (tests/fixtures/values/targets.txt): exact bytes in LF, CRLF and BOM variants, idempotence, and
//! every success re-read by PyYAML (every changed value must read as a string).

mod support;
use support::values_vectors as values_common;

use gitops_deploy::edit::{HelmKeys, ImageSetting, KeyPath, Target, ValueTemplate};
use values_common::{assert_pyyaml_agrees, table, Want};

struct Case {
    id: String,
    target: Target,
    setting: ImageSetting,
    input: String,
    want: Want,
}

fn target(spec: &str) -> Target {
    let mut words = spec.split_whitespace();
    match words.next().unwrap() {
        "helm" => {
            let sets: Vec<HelmKeys> = words.map(|w| HelmKeys::parse(w).unwrap()).collect();
            Target::Helm(if sets.is_empty() {
                vec![HelmKeys::chart_convention()]
            } else {
                sets
            })
        }
        "yaml" => {
            let template = ValueTemplate::parse(words.next().unwrap()).unwrap();
            Target::Yaml {
                paths: words.map(|w| KeyPath::parse(w).unwrap()).collect(),
                template,
            }
        }
        "manifests" => Target::Manifests,
        "markers" => Target::Markers(words.next().unwrap().to_owned()),
        other => panic!("unknown target {other}"),
    }
}

fn cases() -> Vec<Case> {
    table("targets.txt")
        .into_iter()
        .map(|c| {
            let option = |name: &str| {
                c.options
                    .iter()
                    .find_map(|l| l.strip_prefix(name))
                    .unwrap_or_else(|| panic!("{}: no `{name}` line", c.id))
                    .to_owned()
            };
            let deploy = option("deploy: ");
            let deploy: Vec<Option<&str>> = deploy
                .split_whitespace()
                .map(|w| (w != "-").then_some(w))
                .collect();
            Case {
                target: target(&option("target: ")),
                setting: ImageSetting::deploy(deploy[0].unwrap(), deploy[1], deploy[2], deploy[3])
                    .unwrap(),
                id: c.id,
                input: c.input,
                want: c.want,
            }
        })
        .collect()
}

/// Turns a case's text into one of its variants.
type Transform = fn(&str) -> String;

#[test]
fn every_target_vector_gives_its_exact_output_and_pyyaml_reads_strings() {
    let cases = cases();
    let count = |p: char| cases.iter().filter(|c| c.id.starts_with(p)).count();
    assert!(count('M') >= 20, "{} manifests vectors", count('M'));
    let mut failures = Vec::new();
    let mut oracle = Vec::new();
    for case in &cases {
        let expected = match &case.want {
            Want::Error(m) => {
                match case.target.apply(&case.input, &case.setting) {
                    Err(e) if e.is_invalid_input() && e.to_string().contains(m.as_str()) => {}
                    other => failures.push(format!(
                        "{}: want an error with {m:?}, got {:?}",
                        case.id,
                        other.map(|e| e.text)
                    )),
                }
                continue;
            }
            Want::Text(t) => t.clone(),
            Want::Unchanged => case.input.clone(),
        };
        let variants: [(&str, Transform); 3] = [
            ("", |t| t.to_owned()),
            (" crlf", |t| t.replace('\n', "\r\n")),
            (" bom", |t| format!("\u{feff}{t}")),
        ];
        for (suffix, transform) in variants {
            let id = format!("{}{suffix}", case.id);
            let input = transform(&case.input);
            match case.target.apply(&input, &case.setting) {
                Ok(edited) => {
                    if edited.text != transform(&expected) {
                        failures.push(format!(
                            "{id}:\n--- want\n{}--- got\n{}",
                            transform(&expected),
                            edited.text
                        ));
                    }
                    if edited.is_changed() == edited.changes.is_empty() && edited.text != input {
                        failures.push(format!(
                            "{id}: changed text but changes {:?}",
                            edited.changes
                        ));
                    }
                    match case.target.apply(&edited.text, &case.setting) {
                        Ok(again) if !again.is_changed() => {}
                        other => failures.push(format!(
                            "{id}: a second run gives {:?}",
                            other.map(|e| e.text)
                        )),
                    }
                    oracle.push(serde_json::json!({"id": id, "old": input, "new": edited.text, "mode": "strings"}));
                }
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_pyyaml_agrees(&oracle);
}

/// What a rollback needs: the values before, as the target reports them.
#[test]
fn each_target_reports_the_previous_values() {
    let setting = ImageSetting::deploy("web", Some("2.0.0"), None, None).unwrap();
    let helm = Target::Helm(vec![HelmKeys::chart_convention()]);
    let edited = helm
        .apply("image:\n  repository: web\n  tag: 1.0.0\n", &setting)
        .unwrap();
    let before = edited.changes[0].before.clone().unwrap();
    assert_eq!(before.new_tag.as_deref(), Some("1.0.0"));
    // Rolling back is deploying the previous values: the original text comes back.
    let back = ImageSetting::deploy(
        "web",
        before.new_tag.as_deref(),
        before.digest.as_deref(),
        None,
    )
    .unwrap();
    assert_eq!(
        helm.apply(&edited.text, &back).unwrap().text,
        "image:\n  repository: web\n  tag: 1.0.0\n"
    );

    let manifests = Target::Manifests;
    let text = "kind: Pod\nspec:\n  containers:\n  - image: web:1.0.0\n";
    let edited = manifests.apply(text, &setting).unwrap();
    let before = edited.changes[0].before.clone().unwrap();
    assert_eq!(
        (before.new_name.as_deref(), before.new_tag.as_deref()),
        (Some("web"), Some("1.0.0"))
    );
    let back = ImageSetting::deploy(
        "web",
        before.new_tag.as_deref(),
        before.digest.as_deref(),
        None,
    )
    .unwrap();
    assert_eq!(manifests.apply(&edited.text, &back).unwrap().text, text);
    assert_eq!(
        manifests
            .current(&edited.text, "web")
            .unwrap()
            .unwrap()
            .new_tag
            .as_deref(),
        Some("2.0.0")
    );

    let yaml = Target::Yaml {
        paths: vec![KeyPath::parse("app.image").unwrap()],
        template: ValueTemplate::whole_reference(),
    };
    let text = "app:\n  image: web:1.0.0\n";
    let edited = yaml.apply(text, &setting).unwrap();
    assert_eq!(edited.text, "app:\n  image: web:2.0.0\n");
    let before = edited.changes[0].before.clone().unwrap();
    let back = ImageSetting::deploy(
        "web",
        before.new_tag.as_deref(),
        before.digest.as_deref(),
        None,
    )
    .unwrap();
    assert_eq!(yaml.apply(&edited.text, &back).unwrap().text, text);
}

/// A setter's markers are set in any target's files besides the target's own values: a Helm values
/// file whose sidecar image carries a Flux marker.
#[test]
fn a_setter_adds_its_markers_to_any_target() {
    let text = "image:\n  repository: web\n  tag: 1.0.0\nsidecar:\n  image: web:1.0.0 # {\"$imagepolicy\": \"flux-system:web\"}\n";
    let setting = ImageSetting::deploy("web", Some("2.0.0"), None, None).unwrap();
    let helm = Target::Helm(vec![HelmKeys::chart_convention()]);
    let edited = helm
        .apply_with_setter(text, &setting, Some("flux-system:web"))
        .unwrap();
    assert_eq!(
        edited.text,
        "image:\n  repository: web\n  tag: 2.0.0\nsidecar:\n  image: web:2.0.0 # {\"$imagepolicy\": \"flux-system:web\"}\n"
    );
    assert!(edited.is_changed());
    // Without the setter, the marked value stays.
    assert!(helm
        .apply(text, &setting)
        .unwrap()
        .text
        .contains("web:1.0.0 #"));
    // Idempotent.
    assert!(!helm
        .apply_with_setter(&edited.text, &setting, Some("flux-system:web"))
        .unwrap()
        .is_changed());
    // The markers' previous values are what a rollback of a markers deploy restores.
    let markers = Target::Markers("flux-system:web".into());
    let before = markers.current(text, "web").unwrap().unwrap();
    assert_eq!(
        (before.new_name.as_deref(), before.new_tag.as_deref()),
        (Some("web"), Some("1.0.0"))
    );
}

/// Value templates: an unclosed placeholder is refused; a placeholder used twice still reads the
/// previous values back (the rollback needs them).
#[test]
fn value_templates_are_checked_and_read_back() {
    let err = ValueTemplate::parse("{tag").unwrap_err().to_string();
    assert!(err.contains("is never closed"), "{err}");
    let twice = Target::Yaml {
        paths: vec![KeyPath::parse("app.image").unwrap()],
        template: ValueTemplate::parse("{image}:{tag} # {tag}").unwrap(),
    };
    let current = twice
        .current("app:\n  image: \"web:1.0.0 # 1.0.0\"\n", "web")
        .unwrap()
        .unwrap();
    assert_eq!(current.new_tag.as_deref(), Some("1.0.0"));
}

/// A setter on a file where only markers change records the change, with the marked values as
/// the previous ones (what a rollback restores).
#[test]
fn a_markers_only_change_is_recorded() {
    let text = "images:\n- name: web\n  newTag: 2.0.0\ncommonAnnotations:\n  deployed: web:1.0.0 # {\"$imagepolicy\": \"flux-system:web\"}\n";
    let setting = ImageSetting::deploy("web", Some("2.0.0"), None, None).unwrap();
    let kustomize = Target::Kustomize;
    let edited = kustomize
        .apply_with_setter(text, &setting, Some("flux-system:web"))
        .unwrap();
    assert!(
        edited.text.contains("deployed: web:2.0.0 #"),
        "{}",
        edited.text
    );
    let change = edited.changes.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(
        change.before.as_ref().and_then(|b| b.new_tag.as_deref()),
        Some("1.0.0")
    );
}
