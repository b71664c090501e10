//! The fuzz audit's reproducers (docs/research/fuzz-edit-engine.md, exact bytes in
//! tests/fixtures/fuzz/): each one either edits correctly or is refused up front as invalid input
//! with a reason; the engine's own self-check (`Verify`) is never what stops it.

use gitops_deploy::edit::{
    images_of, remove_image, set_images, set_images_saphyr_only, EditError, Edited, ImageSetting,
};

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// What a reproducer must give.
enum Want {
    /// This exact text.
    Text(&'static str),
    /// An invalid-input refusal whose message contains this.
    Refused(&'static str),
}

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    String::from_utf8(std::fs::read(&path).unwrap()).unwrap()
}

/// `-NAME` removes; anything else is a `set image` argument. Both parse paths must agree.
fn run(text: &str, arg: &str) -> Result<Edited, EditError> {
    if let Some(name) = arg.strip_prefix('-') {
        return remove_image(text, name);
    }
    let setting = ImageSetting::parse_arg(arg).unwrap();
    let fast = set_images(text, std::slice::from_ref(&setting));
    let saphyr = set_images_saphyr_only(text, std::slice::from_ref(&setting));
    assert_eq!(
        fast.as_ref()
            .map(|e| e.text.clone())
            .map_err(ToString::to_string),
        saphyr
            .as_ref()
            .map(|e| e.text.clone())
            .map_err(ToString::to_string),
        "the two parse paths disagree on {text:?}"
    );
    fast
}

#[test]
fn every_reproducer_edits_correctly_or_is_refused_up_front() {
    let digest_arg = format!("app@{DIGEST}");
    let cases: Vec<(&str, String, Want)> = vec![
        ("O2-u2028-hidden-field.yaml", digest_arg.clone(), Want::Refused("line 2: a LINE or PARAGRAPH SEPARATOR (U+2028/U+2029)")),
        ("O2b-u2028-flow.yaml", "b:v2".into(), Want::Refused("line 1: a LINE or PARAGRAPH SEPARATOR")),
        ("F1-flow-key-without-value.yaml", "app:v2".into(), Want::Refused("line 1: the key newTag of image \"app\" has no value (no `:`)")),
        ("F1b-flow-key-without-value.yaml", "app:v2".into(), Want::Refused("the key newTag of image \"app\" has no value")),
        ("F1b-flow-key-without-value.yaml", digest_arg.clone(), Want::Refused("the key newTag of image \"app\" has no value")),
        ("F2-null-root.yaml", "nginx:1.25.3".into(), Want::Refused("line 1: the document is an explicit null")),
        ("F2b-null-root.yaml", "nginx:1.25.3".into(), Want::Refused("line 1: the document is an explicit null")),
        ("F3-tagged-flow-images.yaml", "app:v2".into(), Want::Refused("line 1: the images list carries an explicit tag")),
        ("F3b-tagged-block-images.yaml", "web:v2".into(), Want::Refused("line 1: the images list carries an explicit tag")),
        ("F4-remove-anchor-used-elsewhere.yaml", "-app".into(), Want::Refused("line 3: newTag of image \"app\" is an anchor, alias or tagged value")),
        ("F5-bare-cr.yaml", "app:v2".into(), Want::Refused("line 1: a lone carriage return (CR)")),
        ("F6-bom-inside-document.yaml", "app:v2".into(), Want::Refused("line 3: a byte order mark (U+FEFF) after the start of the file")),
        ("O1-bom-after-newline.yaml", "app:v1".into(), Want::Refused("line 2: a byte order mark (U+FEFF)")),
        ("O3-document-end-marker-only.yaml", "app:v2".into(), Want::Refused("line 1: a document end marker (`...`) before any content")),
        ("F7-overlap-mixed-eol.yaml", digest_arg.clone(), Want::Text("images:\n- name: app\r\n  digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")),
    ];
    let mut failures = Vec::new();
    for (file, arg, want) in &cases {
        let text = fixture(file);
        let got = run(&text, arg);
        let ok = match (want, &got) {
            (Want::Text(t), Ok(e)) => e.text == *t && images_of(&e.text).is_ok(),
            (Want::Refused(m), Err(e)) => {
                e.is_invalid_input()
                    && !matches!(e, EditError::Verify { .. })
                    && e.to_string().contains(m)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{file} [{arg}]: {:?}", got.map(|e| e.text)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A reading of the file is refused the same way (the checks sit in the parser, not in the edit).
#[test]
fn reading_an_ambiguous_file_is_refused_too() {
    for file in [
        "O2-u2028-hidden-field.yaml",
        "F5-bare-cr.yaml",
        "F6-bom-inside-document.yaml",
    ] {
        let err = images_of(&fixture(file)).unwrap_err();
        assert!(matches!(err, EditError::Ambiguous { .. }), "{file}: {err}");
    }
}

/// The characters are fine where no reader disagrees: a BOM as the first character, CRLF endings.
#[test]
fn a_leading_bom_and_crlf_still_edit() {
    let got = set_images(
        "\u{feff}images:\r\n- name: app\r\n  newTag: v1\r\n",
        &[ImageSetting::parse_arg("app:v2").unwrap()],
    )
    .unwrap();
    assert_eq!(
        got.text,
        "\u{feff}images:\r\n- name: app\r\n  newTag: v2\r\n"
    );
}
