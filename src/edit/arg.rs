//! The `kustomize edit set image` argument grammar and the validation of image names, tags and digests.
//!
//! Parsing follows kustomize's `setimage.go` and `image.Split` step by step (research notes
//! docs/research/kustomize.md §1.2), so every accepted argument means what it means to kustomize. Validation is
//! stricter than kustomize on purpose (§4 L13): names follow the distribution reference grammar, tags
//! and digests the OCI grammar, and no value may hold a control character.

use std::sync::LazyLock;

use regex::Regex;

use super::{EditError, FieldUpdate, ImageSetting};

/// `kustomize edit set image`'s own one-line usage, shown when an argument has no recognisable form.
const FORMS: &str =
    "use NAME:TAG, NAME@DIGEST, NAME:TAG@DIGEST or NAME=NEWNAME[:TAG][@DIGEST] (`*` keeps a field)";

/// The distribution reference grammar for a repository name: optional `host[:port]/`, then lower-case
/// path components separated by `/` (github.com/distribution/reference, `reference.go`).
static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    let domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let ipv6 = r"\[(?:[a-fA-F0-9:]+)\]";
    let host = format!(r"(?:{domain_component}(?:\.{domain_component})*|{ipv6})");
    let domain = format!(r"{host}(?::[0-9]+)?");
    let path_component = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
    Regex::new(&format!(
        r"^(?:{domain}/)?{path_component}(?:/{path_component})*$"
    ))
    .expect("name regex")
});

/// The OCI tag grammar.
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("tag regex"));

/// The OCI digest grammar: `algorithm:encoded`.
static DIGEST_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$").expect("digest regex")
});

/// The longest repository name the distribution grammar allows.
const NAME_MAX_LEN: usize = 255;

/// The keep-this-field marker of the argument grammar.
const KEEP: &str = "*";

/// Splits an image reference into (name, tag, digest) exactly as kustomize's `image.Split` does:
/// `:` and `@` are only searched for after the first `/` (when it is not the first character), so a
/// registry port is never read as a tag.
pub(crate) fn split_reference(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let search_from = match reference.find('/') {
        Some(slash) if slash > 0 => slash,
        _ => 0,
    };
    let rest = &reference[search_from..];
    let colon = rest.find(':').map(|i| i + search_from);
    let at = rest.find('@').map(|i| i + search_from);
    match (colon, at) {
        (None, None) => (reference, None, None),
        (Some(c), Some(a)) if c < a => (
            &reference[..c],
            Some(&reference[c + 1..a]),
            Some(&reference[a + 1..]),
        ),
        (_, Some(a)) => (&reference[..a], None, Some(&reference[a + 1..])),
        (Some(c), None) => (&reference[..c], Some(&reference[c + 1..]), None),
    }
}

/// Why `name` is not a valid image name, or `None` when it is.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the image name is empty".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Some(format!(
            "the image name contains the control character {c:?}"
        ));
    }
    if name.len() > NAME_MAX_LEN {
        return Some(format!(
            "the image name is {} bytes long, the limit is {NAME_MAX_LEN}",
            name.len()
        ));
    }
    if !NAME_RE.is_match(name) {
        return Some(format!(
            "{name:?} is not a valid image name (lower-case path components separated by `/`, \
             optionally after `host[:port]/`)"
        ));
    }
    None
}

/// Why `name` cannot even be a match key, or `None` when kustomize would use it to match images.
///
/// kustomize only matches `name` against the images of the resources, so placeholders such as
/// `IMAGE_PLACEHOLDER`, `gcr.io/PROJECT_ID/IMAGE` and `ko://…` names work there
/// (docs/research/kustomize.md §2.2); only a name that will be written as a new entry must follow
/// the reference grammar ([`name_problem`]). kustomize v5.5.0 puts the name into a regular
/// expression unescaped and panics when it does not compile (§2.2), so such names are refused.
pub(crate) fn match_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the image name is empty".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Some(format!(
            "the image name contains {c:?}, which no image reference holds"
        ));
    }
    if name.len() > NAME_MAX_LEN {
        return Some(format!(
            "the image name is {} bytes long, the limit is {NAME_MAX_LEN}",
            name.len()
        ));
    }
    // Go's RE2 also refuses a repetition of a repetition (`g++`), which Rust's regex accepts.
    let nested_repetition = name
        .as_bytes()
        .windows(2)
        .any(|w| matches!(w[0], b'*' | b'+' | b'?') && matches!(w[1], b'*' | b'+'));
    if nested_repetition || Regex::new(&format!("^{name}$")).is_err() {
        return Some(format!(
            "{name:?} is not a valid regular expression, and kustomize (which matches names as \
             regular expressions) fails on it"
        ));
    }
    None
}

/// Why `tag` is not a valid tag, or `None` when it is.
pub(crate) fn tag_problem(tag: &str) -> Option<String> {
    if let Some(c) = tag.chars().find(|c| c.is_control()) {
        return Some(format!("the tag contains the control character {c:?}"));
    }
    if !TAG_RE.is_match(tag) {
        return Some(format!(
            "{tag:?} is not a valid tag (1 to 128 of `A-Za-z0-9_.-`, not starting with `.` or `-`)"
        ));
    }
    None
}

/// Why `digest` is not a valid digest, or `None` when it is. sha256 and sha512 digests must have
/// exactly 64 and 128 lower-case hex digits, as the OCI image spec requires.
pub(crate) fn digest_problem(digest: &str) -> Option<String> {
    if let Some(c) = digest.chars().find(|c| c.is_control()) {
        return Some(format!("the digest contains the control character {c:?}"));
    }
    if !DIGEST_RE.is_match(digest) {
        return Some(format!(
            "{digest:?} is not a valid digest (expected ALGORITHM:HEX, e.g. sha256:<64 hex digits>)"
        ));
    }
    let (algorithm, encoded) = digest.split_once(':').expect("checked by the regex");
    let want = match algorithm {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    if let Some(want) = want {
        let is_hex = encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if encoded.len() != want || !is_hex {
            return Some(format!(
                "{digest:?} is not a valid {algorithm} digest (expected {want} lower-case hex digits, \
                 got {})",
                encoded.len()
            ));
        }
    }
    None
}

/// The field update a value position of the grammar means: `*` keeps, empty clears, anything else sets.
fn update_of(value: Option<&str>) -> FieldUpdate {
    match value {
        Some(KEEP) => FieldUpdate::Keep,
        None | Some("") => FieldUpdate::Remove,
        Some(v) => FieldUpdate::Set(v.to_string()),
    }
}

/// Parses one `kustomize edit set image` argument (docs/research/kustomize.md §1.2), then validates every value.
pub(crate) fn parse_arg(arg: &str) -> Result<ImageSetting, EditError> {
    let invalid = |reason: String| EditError::InvalidArg {
        arg: arg.to_string(),
        reason,
    };
    if let Some(c) = arg.chars().find(|c| c.is_control()) {
        return Err(invalid(format!("contains the control character {c:?}")));
    }
    // Step 1: split on the first `=`; an empty key is ignored (V33).
    let (key, value) = match arg.split_once('=') {
        Some((key, value)) => (Some(key).filter(|k| !k.is_empty()), value),
        None => (None, arg),
    };
    // Step 2: split the value into name, tag and digest.
    let (parsed_name, tag, digest) = split_reference(value);
    // Step 3: kustomize's only syntax check; it rejects a bare name (V22) and a `/` hiding a `:` (V30).
    if parsed_name == arg {
        return Err(invalid(format!(
            "no tag, digest or new name in it; {FORMS}"
        )));
    }
    // Step 4: with a key, the key is the name and the parsed name is the new name.
    let (name, new_name) = match key {
        Some(key) => (key, update_of(Some(parsed_name))),
        None => (parsed_name, FieldUpdate::Remove),
    };
    let setting = ImageSetting {
        name: name.to_string(),
        new_name,
        new_tag: update_of(tag),
        digest: update_of(digest),
        // kustomize replaces the whole entry, so a targeted entry loses its tagSuffix (V17).
        tag_suffix: FieldUpdate::Remove,
    };
    setting
        .problem()
        .map_or(Ok(setting), |reason| Err(invalid(reason)))
}

impl ImageSetting {
    /// Why this setting is invalid, or `None` when every value passes the grammar checks.
    pub(crate) fn problem(&self) -> Option<String> {
        if let Some(p) = match_name_problem(&self.name) {
            return Some(p);
        }
        if let FieldUpdate::Set(new_name) = &self.new_name {
            if let Some(p) = name_problem(new_name) {
                return Some(format!("new name: {p}"));
            }
        }
        if let FieldUpdate::Set(tag) = &self.new_tag {
            if let Some(p) = tag_problem(tag) {
                return Some(p);
            }
        }
        if let FieldUpdate::Set(digest) = &self.digest {
            if let Some(p) = digest_problem(digest) {
                return Some(p);
            }
        }
        if let FieldUpdate::Set(suffix) = &self.tag_suffix {
            if let Some(c) = suffix.chars().find(|c| c.is_control()) {
                return Some(format!(
                    "the tag suffix contains the control character {c:?}"
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reference_follows_kustomize_image_split() {
        for (input, want) in [
            ("nginx", ("nginx", None, None)),
            ("nginx:1", ("nginx", Some("1"), None)),
            ("nginx@sha256:ab", ("nginx", None, Some("sha256:ab"))),
            ("nginx:1@sha256:ab", ("nginx", Some("1"), Some("sha256:ab"))),
            ("host:5000/app", ("host:5000/app", None, None)),
            ("host:5000/app:1", ("host:5000/app", Some("1"), None)),
            ("localhost:5000", ("localhost", Some("5000"), None)),
            ("app:feature/x", ("app:feature/x", None, None)),
            ("/x:1", ("/x", Some("1"), None)),
        ] {
            assert_eq!(split_reference(input), want, "{input}");
        }
    }

    #[test]
    fn names_follow_the_reference_grammar() {
        for good in [
            "nginx",
            "library/nginx",
            "ghcr.io/acme/api",
            "localhost:5000/team/app",
            "registry:5000/app",
            "a__b/c-d/e.f",
            "[::1]:5000/app",
        ] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for (name, problem) in [
            ("IMAGE_PLACEHOLDER", false),
            ("gcr.io/PROJECT_ID/IMAGE", false),
            ("ko://github.com/kserve/kserve/cmd/manager", false),
            (".*nginx", false),
            ("", true),
            ("nginx[", true),
            ("g++", true),
            ("a b", true),
            ("a\tb", true),
        ] {
            assert_eq!(match_name_problem(name).is_some(), problem, "{name}");
        }
        for bad in [
            "",
            "Nginx",
            "nginx/",
            "a//b",
            "-a",
            "a_",
            "host:port/x",
            ".*nginx",
        ] {
            assert!(name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn digests_need_the_right_length() {
        let d64 = format!("sha256:{}", "a".repeat(64));
        let d128 = format!("sha512:{}", "b".repeat(128));
        assert_eq!(digest_problem(&d64), None);
        assert_eq!(digest_problem(&d128), None);
        assert!(digest_problem(&format!("sha256:{}", "a".repeat(63))).is_some());
        assert!(digest_problem(&format!("sha256:{}", "A".repeat(64))).is_some());
        assert!(digest_problem("foo").is_some());
        assert_eq!(digest_problem("blake3:abc"), None);
    }
}
