//! Rendering a new scalar value so that kustomize reads it back as exactly that string.
//!
//! kustomize reads kustomization files with YAML 1.1 rules (sigs.k8s.io/yaml over go-yaml v2), so a
//! plain `1.10` is a number and `yes` a boolean, and kustomize then fails or silently drops the value
//! (docs/research/kustomize.md §2.4). A value stays plain only when it is a string under YAML 1.1 and
//! 1.2 alike (§5.3); otherwise it is double-quoted, as kustomize itself writes it. An existing quote
//! style is always kept.

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

/// Numbers, infinities and NaN as YAML 1.1 or 1.2 resolves them (go-yaml v2 `resolve.go`, widened).
static NUMERIC_RES: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    [
        Regex::new(r"^[-+]?(\.[0-9]|[0-9])[0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?$"),
        Regex::new(r"^[-+]?0[xXoObB][0-9a-fA-F_]+$"),
        Regex::new(r"(?i)^[-+]?\.(inf|nan)$"),
        // Sexagesimal integers and floats (YAML 1.1 `1:30`).
        Regex::new(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$"),
    ]
    .map(|r| r.expect("numeric regex"))
});

/// Timestamps (YAML 1.1 `!!timestamp` starts with a date).
static DATE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}").expect("date regex"));

/// The YAML 1.1 booleans and nulls, compared case-insensitively.
const KEYWORDS: [&str; 10] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];

/// True when `value` written without quotes reads back as the same string under YAML 1.1 and 1.2,
/// in block and in flow context.
pub(crate) fn is_plain_safe(value: &str) -> bool {
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
            return plain_safe_by_form(value, first);
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
    plain_safe_by_form(value, first)
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
fn plain_safe_by_form(value: &str, first: char) -> bool {
    if value.len() <= 5 && KEYWORDS.iter().any(|k| value.eq_ignore_ascii_case(k)) {
        return false;
    }
    // Numbers, infinities, sexagesimals and dates all start with a digit, a sign or a dot; most
    // names and tags do not, and skip the regexes.
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return true;
    }
    if NUMERIC_RES.iter().any(|r| r.is_match(value)) || DATE_RE.is_match(value) {
        return false;
    }
    true
}

/// Writes `value` in the style `quote`, falling back from plain to double quotes when plain is unsafe.
pub(crate) fn render(value: &str, quote: Quote) -> String {
    match quote {
        Quote::Plain if is_plain_safe(value) => value.to_string(),
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
        // Safe to quote even where go-yaml would not need it.
        for v in ["2024-01-01", "1:30", "", " a", "a: b", "[x]", "-x", "@x"] {
            assert!(!is_plain_safe(v), "{v:?}");
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
                && !KEYWORDS.iter().any(|k| value.eq_ignore_ascii_case(k))
            {
                proptest::prop_assert!(is_plain_safe(&value), "{value:?}");
            }
        }
    }
}
