//! Secrets (tokens, kubeconfig contents) and the [`Masker`] every outgoing string passes through.
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show `***`. The value is exposed only
//! where a header or a child process's environment is built. The [`Masker`] knows every secret in its
//! raw, base64 and URL-encoded forms (and `user:token` Basic forms) and replaces them in any text that
//! leaves the process: log lines, error messages, outputs, the step summary.

use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine as _;

/// A secret string. Its value is only reachable through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a value. Surrounding whitespace (a trailing newline from a file or a paste) is trimmed.
    pub fn new(value: impl AsRef<str>) -> Self {
        Secret(Arc::from(value.as_ref().trim()))
    }

    /// The value itself; call this only to build a header, an env var of a child process, or a file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What a masked secret is replaced with.
pub const MASK: &str = "***";

/// Replaces every known secret, in every encoding it may travel in, by `***`.
///
/// Cheap to clone: clones share the same list, so a secret registered late (an Argo CD token read from a
/// file, say) is masked everywhere from then on.
#[derive(Clone, Default)]
pub struct Masker {
    patterns: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.patterns.read().map(|p| p.len()).unwrap_or(0);
        write!(f, "Masker({n} patterns)")
    }
}

impl Masker {
    /// A masker that knows no secret yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret; returns the forms it will be masked in (the raw value first), which action
    /// mode announces with `::add-mask::`.
    pub fn add(&self, secret: &Secret) -> Vec<String> {
        let raw = secret.expose();
        // Very short values would mask ordinary words; a real token is never this short.
        if raw.len() < 4 {
            return Vec::new();
        }
        let forms = encoded_forms(raw);
        let mut patterns = self.patterns.write().expect("masker lock poisoned");
        for form in &forms {
            if !patterns.contains(form) {
                patterns.push(form.clone());
            }
        }
        // Longest first, so a form that contains another is replaced whole.
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        forms
    }

    /// Returns `text` with every registered secret form replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let patterns = self.patterns.read().expect("masker lock poisoned");
        let mut out = text.to_owned();
        for p in patterns.iter() {
            if out.contains(p.as_str()) {
                out = out.replace(p.as_str(), MASK);
            }
        }
        out
    }
}

/// The forms a secret can leak in: raw, base64 (standard and URL-safe, with and without padding), the
/// Basic-auth pair with the user names git and our clients use, and percent-encoded.
fn encoded_forms(raw: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forms = vec![raw.to_owned()];
    let mut push = |s: String| {
        if !forms.contains(&s) {
            forms.push(s);
        }
    };
    push(b64.encode(raw));
    push(b64.encode(raw).trim_end_matches('=').to_owned());
    push(b64url.encode(raw));
    for user in ["x-access-token", "oauth2", "git", "token", "gitops-deploy"] {
        push(b64.encode(format!("{user}:{raw}")));
    }
    push(url::form_urlencoded::byte_serialize(raw.as_bytes()).collect());
    // Inside a JSON string (`--output json`, a JSON report): quotes, backslashes and controls escaped.
    if let Ok(json) = serde_json::to_string(raw) {
        push(json[1..json.len() - 1].to_owned());
    }
    push(percent_encode_all(raw));
    forms
}

/// Percent-encodes every byte that is not unreserved (RFC 3986), as URL user-info encoding does.
fn percent_encode_all(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 3);
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let s = Secret::new("s3cr3t-value\n");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "s3cr3t-value");
    }

    #[test]
    fn masks_the_json_escaped_form() {
        let m = Masker::new();
        m.add(&Secret::new("pa\"ss\\word-0123456789"));
        let json = serde_json::json!({"error": "denied for pa\"ss\\word-0123456789"}).to_string();
        let masked = m.mask(&json);
        assert!(!masked.contains("word-0123456789"), "{masked}");
        assert!(masked.contains("***"), "{masked}");
    }

    #[test]
    fn masks_raw_base64_basic_and_url_encoded_forms() {
        let m = Masker::new();
        let s = Secret::new("tok/en+1=x");
        m.add(&s);
        let b64 = base64::engine::general_purpose::STANDARD;
        let text = format!(
            "raw {} b64 {} basic {} url {}",
            s.expose(),
            b64.encode(s.expose()),
            b64.encode(format!("x-access-token:{}", s.expose())),
            "tok%2Fen%2B1%3Dx"
        );
        assert_eq!(m.mask(&text), "raw *** b64 *** basic *** url ***");
    }

    #[test]
    fn clones_share_secrets_added_later() {
        let m = Masker::new();
        let c = m.clone();
        m.add(&Secret::new("later-token"));
        assert_eq!(c.mask("a later-token b"), "a *** b");
    }
}
