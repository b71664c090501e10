//! The HTTP check: poll a URL until `successes` consecutive answers have the expected status and
//! body, proving the app *serves the new version* (not just that pods are up: anchors pain 9).
//!
//! Body expectations (`health_expect_body`):
//! - plain text: the body must contain it;
//! - `re:<regex>`: the body must match the regular expression;
//! - `{tag}` and `{digest}` in either form are replaced by the deployed tag and digest (escaped in a
//!   regex), so `"version":"{tag}"` asserts the version the app reports.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Phase;
use crate::report::Report;
use crate::verdict::Verdict;
use crate::wait::{poll, wait_until, Fact, WaitError, WaitSpec};

/// What the body must satisfy.
#[derive(Debug, Clone)]
pub enum BodyMatch {
    /// Contains this text.
    Contains(String),
    /// Matches this regex.
    Regex(regex::Regex),
}

impl BodyMatch {
    /// Parses an expectation, substituting `{tag}` and `{digest}`.
    ///
    /// # Errors
    /// A message naming the problem: an invalid regex, or a placeholder with no value to put there.
    pub fn parse(spec: &str, tag: Option<&str>, digest: Option<&str>) -> Result<Self, String> {
        let (is_re, body) = match spec.strip_prefix("re:") {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let mut text = body.to_owned();
        for (ph, val) in [("{tag}", tag), ("{digest}", digest)] {
            if text.contains(ph) {
                let val = val.ok_or_else(|| {
                    format!("{ph} is used but no {} is known", &ph[1..ph.len() - 1])
                })?;
                let val = if is_re {
                    regex::escape(val)
                } else {
                    val.to_owned()
                };
                text = text.replace(ph, &val);
            }
        }
        if is_re {
            regex::Regex::new(&text)
                .map(BodyMatch::Regex)
                .map_err(|e| format!("not a valid regex: {e}"))
        } else {
            Ok(BodyMatch::Contains(text))
        }
    }

    /// True when `body` satisfies the expectation.
    pub fn is_match(&self, body: &str) -> bool {
        match self {
            BodyMatch::Contains(s) => body.contains(s.as_str()),
            BodyMatch::Regex(r) => r.is_match(body),
        }
    }
}

impl std::fmt::Display for BodyMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyMatch::Contains(s) => write!(f, "containing {s:?}"),
            BodyMatch::Regex(r) => write!(f, "matching /{}/", r.as_str()),
        }
    }
}

/// Settings of the HTTP check.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// URL to poll.
    pub url: url::Url,
    /// Expected status.
    pub expect_status: u16,
    /// Expected body, if any.
    pub expect_body: Option<BodyMatch>,
    /// Consecutive passing answers required.
    pub successes: u32,
    /// Time between requests.
    pub interval: Duration,
}

/// One answer (or failure to get one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// HTTP status, if an answer came.
    pub status: Option<u16>,
    /// The body (capped at 64 KiB).
    pub body: String,
    /// The transport error, if no answer came.
    pub error: Option<String>,
}

/// Judges one probe given the count of consecutive passes before it; returns the verdict and the
/// new count. Pure.
pub fn probe_verdict(probe: &Probe, passes_before: u32, s: &HealthSettings) -> (Verdict, u32) {
    let why = match (probe.status, &probe.error) {
        (_, Some(e)) => Some(format!("no answer: {e}")),
        (Some(st), None) if st != s.expect_status => Some(format!(
            "HTTP {st} (want {}), body {:?}",
            s.expect_status,
            crate::text::excerpt(&probe.body, 120)
        )),
        (Some(_), None) => match &s.expect_body {
            Some(m) if !m.is_match(&probe.body) => Some(format!(
                "HTTP {}, body {:?} is not {m}",
                probe.status.unwrap_or(0),
                crate::text::excerpt(&probe.body, 120)
            )),
            _ => None,
        },
        (None, None) => Some("no answer".into()),
    };
    match why {
        Some(why) => (
            Verdict::waiting(format!("{why} (0/{} passes)", s.successes)),
            0,
        ),
        None => {
            let passes = passes_before + 1;
            if passes >= s.successes {
                (Verdict::Ready, passes)
            } else {
                (
                    Verdict::waiting(format!("{passes}/{} consecutive passes", s.successes)),
                    passes,
                )
            }
        }
    }
}

/// What the HTTP check proved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthOutcome {
    /// Last status.
    pub status: u16,
    /// Excerpt of the last body.
    pub body: String,
}

/// Runs the HTTP check until it passes or the deadline.
///
/// # Errors
/// [`WaitError::Timeout`] naming the last status and body excerpt.
pub async fn run(
    settings: &HealthSettings,
    report: &Report,
    deadline: Instant,
) -> Result<HealthOutcome, WaitError> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("gitops-deploy/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("plain HTTP client builds");
    let url = settings.url.clone();
    let source = poll(settings.interval, move || {
        let http = http.clone();
        let url = url.clone();
        async move { Ok::<_, std::convert::Infallible>(probe_once(&http, url).await) }
    });
    let mut passes = 0;
    let probe = wait_until(
        WaitSpec {
            phase: Phase::Health,
            started: Instant::now(),
            deadline,
        },
        report,
        source,
        |p: &Probe, _| {
            let (v, n) = probe_verdict(p, passes, settings);
            passes = n;
            v
        },
        |p| {
            vec![Fact::status(
                "http",
                match (p.status, &p.error) {
                    (Some(st), _) => format!("HTTP {st} {}", crate::text::excerpt(&p.body, 60)),
                    (None, Some(e)) => format!("no answer ({e})"),
                    _ => "no answer".into(),
                },
            )]
        },
    )
    .await?;
    Ok(HealthOutcome {
        status: probe.status.unwrap_or(0),
        body: crate::text::excerpt(&probe.body, 200),
    })
}

async fn probe_once(http: &reqwest::Client, url: url::Url) -> Probe {
    match http.get(url).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(64 * 1024).collect();
            Probe {
                status: Some(status),
                body,
                error: None,
            }
        }
        Err(e) => Probe {
            status: None,
            body: String::new(),
            error: Some(if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "connection refused or unreachable".into()
            } else {
                "request failed".into()
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(body: Option<&str>) -> HealthSettings {
        HealthSettings {
            url: "http://127.0.0.1:1/version".parse().unwrap(),
            expect_status: 200,
            expect_body: body.map(|b| BodyMatch::parse(b, Some("1.4.2"), None).unwrap()),
            successes: 3,
            interval: Duration::from_secs(1),
        }
    }

    fn ok(body: &str) -> Probe {
        Probe {
            status: Some(200),
            body: body.into(),
            error: None,
        }
    }

    #[test]
    fn needs_consecutive_passes_and_resets_on_a_miss() {
        let s = settings(Some(r#""version":"{tag}""#));
        let new = ok(r#"{"version":"1.4.2"}"#);
        let old = ok(r#"{"version":"1.4.1"}"#);
        let (v, n) = probe_verdict(&new, 0, &s);
        assert_eq!((v, n), (Verdict::waiting("1/3 consecutive passes"), 1));
        let (v, n) = probe_verdict(&old, n, &s);
        assert_eq!(n, 0);
        assert_eq!(
            v,
            Verdict::waiting(
                r#"HTTP 200, body "{\"version\":\"1.4.1\"}" is not containing "\"version\":\"1.4.2\"" (0/3 passes)"#
            )
        );
        let (_, n) = probe_verdict(&new, 0, &s);
        let (_, n) = probe_verdict(&new, n, &s);
        assert_eq!(probe_verdict(&new, n, &s).0, Verdict::Ready);
    }

    #[test]
    fn wrong_status_shows_status_and_body_excerpt() {
        let s = settings(None);
        let p = Probe {
            status: Some(503),
            body: "upstream connect error ".repeat(20),
            error: None,
        };
        let (v, _) = probe_verdict(&p, 2, &s);
        let Verdict::Waiting { why } = v else {
            panic!("{v:?}")
        };
        assert!(
            why.starts_with("HTTP 503 (want 200), body \"upstream connect error"),
            "{why}"
        );
        assert!(why.contains('…'), "long bodies are cut: {why}");
    }

    #[test]
    fn regex_with_placeholders_is_escaped() {
        let m = BodyMatch::parse(r"re:^\{.*{tag}.*\}$", Some("1.4.2"), None).unwrap();
        assert!(m.is_match(r#"{"version":"1.4.2"}"#));
        assert!(
            !m.is_match(r#"{"version":"1x4x2"}"#),
            "the dots of the tag are literal"
        );
        assert!(BodyMatch::parse("re:(", None, None)
            .unwrap_err()
            .contains("not a valid regex"));
        assert!(BodyMatch::parse("{digest}", Some("1"), None)
            .unwrap_err()
            .contains("no digest"));
    }
}
