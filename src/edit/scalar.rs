//! Rendering a new scalar value so that its reader reads it back as exactly that string.
//!
//! The rule follows the file's real reader ([`Reader`]):
//! - kustomize reads kustomization files through sigs.k8s.io/yaml over go-yaml v2, so a plain `1.10` is
//!   a number and `yes` a boolean, and kustomize then fails or silently drops the value
//!   (docs/research/kustomize.md §2.4), while go-yaml hands timestamps and base-60 forms to an untyped
//!   target as strings. The table tests/fixtures/kustomize-plain-scalars.tsv, generated with
//!   `kubectl kustomize` v5.5.0 and re-checked against it by tests/quoting.rs, is the reference.
//! - Helm values and other YAML are taken to be read with YAML 1.1 rules in full (timestamps and
//!   base-60 numbers too, as PyYAML reads them), the stricter of the two.
//!
//! A value that would not read back as itself is double-quoted, as kustomize itself writes it. An
//! existing quote style is always kept.

use std::sync::LazyLock;

use regex::Regex;

/// How a scalar is written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quote {
    /// No quotes (kept only while that reads back as the same string).
    Plain,
    /// `'…'`.
    Single,
    /// `"…"`.
    Double,
}

/// Who reads the file, which decides what a plain scalar means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// kustomize: go-yaml v2 into untyped values (timestamps and base-60 stay strings).
    Kustomize,
    /// Any YAML 1.1 reader (Helm values, PyYAML): timestamps and base-60 numbers are not strings.
    Yaml11,
}

/// Numbers, infinities and NaN as go-yaml v2 resolves them (`resolve.go`: underscores removed, then
/// Go's base-prefixed integer parse and float parse), which covers YAML 1.1's and 1.2's forms.
static NUMERIC_RES: LazyLock<[Regex; 5]> = LazyLock::new(|| {
    [
        Regex::new(r"^[-+]?(\.[0-9]|[0-9])[0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?$"),
        Regex::new(r"^[-+]?0[xX][0-9a-fA-F_]+$"),
        Regex::new(r"^[-+]?0[oO][0-7_]+$"),
        Regex::new(r"^[-+]?0[bB][01_]+$"),
        Regex::new(r"(?i)^[-+]?\.(inf|nan)$"),
    ]
    .map(|r| r.expect("numeric regex"))
});

/// YAML 1.1 only: sexagesimal integers and floats (`1:30`, yaml.org/type/int.html, float.html).
static SEXAGESIMAL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$").expect("sexagesimal regex")
});

/// YAML 1.1 only: timestamps, the exact forms of yaml.org/type/timestamp.html.
static TIMESTAMP_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*Z|[-+][0-9]{1,2}(?::[0-9]{2})?)?)$",
    )
    .expect("timestamp regex")
});

/// The YAML 1.1 booleans and nulls in the spellings readers resolve (lower case, capitalised, upper
/// case: go-yaml v2 `resolve.go`, yaml.org/type/bool.html); `nULL` and `tRUE` are strings.
const KEYWORDS: [&str; 8] = ["y", "n", "yes", "no", "on", "off", "true", "false"];
const NULLS: [&str; 4] = ["~", "null", "Null", "NULL"];

/// True when `word` is a YAML 1.1 boolean or null as readers resolve it.
fn is_keyword(word: &str) -> bool {
    if NULLS.contains(&word) {
        return true;
    }
    if !word.is_ascii() {
        return false;
    }
    KEYWORDS.iter().any(|k| {
        word == *k
            || word == k.to_ascii_uppercase()
            || (word.len() == k.len()
                && word[..1] == k[..1].to_ascii_uppercase()
                && word[1..] == k[1..])
    })
}

/// True when `value` written without quotes reads back as the same string for kustomize, in block
/// and in flow context.
pub(crate) fn is_plain_safe(value: &str) -> bool {
    is_plain_safe_for(value, Reader::Kustomize)
}

/// True when `value` written without quotes reads back as the same string for `reader`, in block and
/// in flow context.
pub(crate) fn is_plain_safe_for(value: &str, reader: Reader) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if value.is_ascii() {
        // One pass over the bytes: this runs for every plain value of every edit.
        let bytes = value.as_bytes();
        if bytes[0].is_ascii_whitespace() || bytes[bytes.len() - 1].is_ascii_whitespace() {
            return false;
        }
        if !bytes.iter().any(|&b| NEEDS_A_LOOK[usize::from(b)]) {
            return plain_safe_by_form(value, first, reader);
        }
        let mut previous = 0u8;
        for (i, &b) in bytes.iter().enumerate() {
            let stop = match b {
                b',' | b'[' | b']' | b'{' | b'}' => true,
                b':' => bytes.get(i + 1).is_none_or(|&next| next == b' '),
                b'#' => previous == b' ',
                _ => b.is_ascii_control(),
            };
            if stop {
                return false;
            }
            previous = b;
        }
    } else if value.trim() != value
        || value.chars().any(|c| c.is_control())
        || value.contains(": ")
        || value.contains(" #")
        || value.ends_with(':')
        || value.contains([',', '[', ']', '{', '}'])
    {
        return false;
    }
    plain_safe_by_form(value, first, reader)
}

/// Bytes that can make an ASCII value unsafe as a plain scalar, wherever they are.
const NEEDS_A_LOOK: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20
            || b >= 0x7f
            || matches!(b as u8, b',' | b'[' | b']' | b'{' | b'}' | b':' | b'#');
        b += 1;
    }
    table
};

/// The second half of [`is_plain_safe`]: keywords, numbers and dates.
fn plain_safe_by_form(value: &str, first: char, reader: Reader) -> bool {
    if value.len() <= 5 && is_keyword(value) {
        return false;
    }
    // Numbers, infinities, sexagesimals and dates all start with a digit, a sign or a dot; most
    // names and tags do not, and skip the regexes.
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return true;
    }
    if NUMERIC_RES.iter().any(|r| r.is_match(value)) {
        return false;
    }
    reader == Reader::Kustomize || !(SEXAGESIMAL_RE.is_match(value) || TIMESTAMP_RE.is_match(value))
}

impl Quote {
    /// How an existing scalar node is quoted (plain for anything that is not a quoted scalar).
    pub(crate) fn of(node: &super::locate::Node<'_>) -> Quote {
        match &node.kind {
            super::locate::Kind::Scalar {
                style: saphyr_parser::ScalarStyle::SingleQuoted,
                ..
            } => Quote::Single,
            super::locate::Kind::Scalar {
                style: saphyr_parser::ScalarStyle::DoubleQuoted,
                ..
            } => Quote::Double,
            _ => Quote::Plain,
        }
    }
}

/// Writes `value` in the style `quote` for kustomize, falling back from plain to double quotes when
/// plain is unsafe.
pub(crate) fn render(value: &str, quote: Quote) -> String {
    render_for(value, quote, Reader::Kustomize)
}

/// Writes `value` in the style `quote` for `reader`, falling back from plain to double quotes when
/// plain is unsafe.
pub(crate) fn render_for(value: &str, quote: Quote, reader: Reader) -> String {
    match quote {
        Quote::Plain if is_plain_safe_for(value, reader) => value.to_string(),
        Quote::Plain | Quote::Double => double_quoted(value),
        Quote::Single if value.chars().any(|c| c.is_control()) => double_quoted(value),
        Quote::Single => format!("'{}'", value.replace('\'', "''")),
    }
}

/// A double-quoted YAML scalar with `\`, `"` and control characters escaped.
fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/research/kustomize.md §2.4: every value kustomize cannot read as a plain string.
    #[test]
    fn yaml_1_1_non_strings_are_unsafe() {
        let table =
            "y n Y N yes No ON off true False TRUE NO 1234 1.10 1. 0. .5 +1 -1 1e3 1E3 1e+3 6e1 \
                     017 0x1F 0o17 0b101 1_000 1_ 1__0 1_0.5 0x_1 .inf -.inf .NaN null Null ~";
        for v in table.split_whitespace() {
            assert!(!is_plain_safe(v), "{v} must be quoted");
            assert_eq!(render(v, Quote::Plain), format!("\"{v}\""));
        }
    }

    #[test]
    fn ordinary_tags_stay_plain() {
        for v in [
            "1.2.3",
            "v1.0",
            "sha-1e5",
            ".e3",
            "0b",
            "0x",
            "_1",
            "x#y",
            "latest",
            "1.25.3-alpine",
        ] {
            assert!(is_plain_safe(v), "{v} can stay plain");
        }
        for v in ["", " a", "a: b", "[x]", "-x", "@x"] {
            assert!(!is_plain_safe(v), "{v:?}");
        }
    }

    /// kustomize (go-yaml v2 into untyped values) reads dates, base-60 forms, odd-case keywords and
    /// prefixes with foreign digits as strings; a YAML 1.1 reader does not take the first two.
    #[test]
    fn the_reader_decides_dates_and_base_60() {
        for (v, kustomize, yaml11) in [
            ("2024-01-01", true, false),
            ("2024-1-1", true, true),
            ("2024-01-01-rc1", true, true),
            ("2024-01-01 10:00:00", true, false),
            ("1:30", true, false),
            ("190:20:30", true, false),
            ("nULL", true, true),
            ("tRUE", true, true),
            ("Yes", false, false),
            ("0b2", true, true),
            ("0o8", true, true),
            ("0O17", false, false),
        ] {
            assert_eq!(
                is_plain_safe_for(v, Reader::Kustomize),
                kustomize,
                "{v} for kustomize"
            );
            assert_eq!(
                is_plain_safe_for(v, Reader::Yaml11),
                yaml11,
                "{v} for YAML 1.1"
            );
        }
    }

    #[test]
    fn quote_styles_are_kept() {
        assert_eq!(render("v2", Quote::Single), "'v2'");
        assert_eq!(render("it's", Quote::Single), "'it''s'");
        assert_eq!(render("v2", Quote::Double), "\"v2\"");
        assert_eq!(render("a\"b\\c\n", Quote::Double), r#""a\"b\\c\n""#);
    }

    proptest::proptest! {
        /// The one-pass check for ASCII values means what the plain string rules say.
        #[test]
        fn the_ascii_fast_path_matches_the_string_rules(value in "[ -~\t\x7f]{1,12}") {
            let by_rules = value.trim() == value
                && !value.chars().any(|c| c.is_control())
                && !"-?:,[]{}#&*!|>'\"%@`".contains(value.chars().next().unwrap())
                && !value.contains(": ")
                && !value.contains(" #")
                && !value.ends_with(':')
                && !value.contains([',', '[', ']', '{', '}']);
            if !by_rules {
                proptest::prop_assert!(!is_plain_safe(&value), "{value:?}");
            }
            if by_rules && !value.starts_with(|c: char| c.is_ascii_digit() || "+.".contains(c))
                && !is_keyword(&value)
            {
                proptest::prop_assert!(is_plain_safe(&value), "{value:?}");
            }
        }
    }
}
