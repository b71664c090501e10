//! The one generic wait loop: snapshots in, a pure verdict applied to each, progress out.
//!
//! Every wait of the verify phases (Argo CD, rollout, HTTP) is this loop around a different snapshot
//! source and verdict. The loop reports only changes (one line per changed fact), a heartbeat at most
//! every [`HEARTBEAT`], re-judges the last snapshot every [`TICK`] so grace periods expire without new
//! events, and stops on `Ready`, on `Failed` or at the deadline. Source errors are reported once and
//! skipped: the source is expected to reconnect or poll again.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::stream::{Stream, StreamExt};
use tokio::time::Instant;

use crate::error::Phase;
use crate::report::Report;
use crate::verdict::Verdict;

/// Longest silence while waiting: a "still waiting" line after this long without output.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often the last snapshot is judged again without a new one (grace periods).
pub const TICK: Duration = Duration::from_secs(1);
/// Poll interval when a source cannot stream.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One reportable fact of a snapshot, e.g. key `sync`, value `Synced @ abc1234`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// What the fact is about (`sync`, `health`, `web`).
    pub key: String,
    /// Its value now.
    pub value: String,
    /// Render a change as `key old → new` (true) or as `key: new` (false).
    pub arrow: bool,
}

impl Fact {
    /// A fact rendered as `key old → new` on change.
    pub fn transition(key: impl Into<String>, value: impl Into<String>) -> Self {
        Fact {
            key: key.into(),
            value: value.into(),
            arrow: true,
        }
    }

    /// A fact rendered as `key: value` on change.
    pub fn status(key: impl Into<String>, value: impl Into<String>) -> Self {
        Fact {
            key: key.into(),
            value: value.into(),
            arrow: false,
        }
    }
}

/// Why a wait ended without `Ready`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The verdict said `Failed`.
    #[error("{why}")]
    Failed {
        /// The phase.
        phase: Phase,
        /// The verdict's reason.
        why: String,
    },
    /// The deadline passed.
    #[error("timed out after {} in phase {phase}; last state: {why}", humantime::format_duration(*elapsed))]
    Timeout {
        /// The phase.
        phase: Phase,
        /// Time spent in this wait, rounded to whole seconds.
        elapsed: Duration,
        /// The last `Waiting { why }` (or the last source error if nothing was ever seen).
        why: String,
    },
}

impl WaitError {
    /// The phase the wait belonged to.
    pub fn phase(&self) -> Phase {
        match self {
            WaitError::Failed { phase, .. } | WaitError::Timeout { phase, .. } => *phase,
        }
    }
}

/// Where and until when to wait.
#[derive(Debug, Clone, Copy)]
pub struct WaitSpec {
    /// The phase, for reports and errors.
    pub phase: Phase,
    /// When the phase started (timeouts report the time since then).
    pub started: Instant,
    /// Stop here with [`WaitError::Timeout`].
    pub deadline: Instant,
}

/// Waits until `verdict` says `Ready` for a snapshot of `snapshots`, or fails.
///
/// `verdict` gets the snapshot and the current time (for grace periods); `describe` lists the facts
/// to report when they change. The snapshot that was ready is returned.
///
/// # Errors
/// [`WaitError::Failed`] when the verdict fails, [`WaitError::Timeout`] at the deadline, also when the
/// source ends early (the loop then waits out the deadline, as there is nothing more to learn).
pub async fn wait_until<S, E, St, V, D>(
    spec: WaitSpec,
    report: &Report,
    snapshots: St,
    mut verdict: V,
    describe: D,
) -> Result<S, WaitError>
where
    E: std::error::Error,
    St: Stream<Item = Result<S, E>>,
    V: FnMut(&S, Instant) -> Verdict,
    D: Fn(&S) -> Vec<Fact>,
{
    let started = spec.started;
    let mut snapshots = std::pin::pin!(snapshots.fuse());
    let mut facts: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<S> = None;
    let mut last_why = "no state seen yet".to_owned();
    let mut last_error: Option<String> = None;
    let mut last_output = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = tokio::time::sleep_until(spec.deadline);
    let mut deadline = std::pin::pin!(deadline);

    loop {
        let judge_last = tokio::select! {
            biased;
            () = &mut deadline => {
                let elapsed = Duration::from_secs(started.elapsed().as_secs_f64().round() as u64);
                return Err(WaitError::Timeout { phase: spec.phase, elapsed, why: last_why });
            }
            item = snapshots.next() => match item {
                Some(Ok(snap)) => {
                    last_error = None;
                    for fact in describe(&snap) {
                        let old = facts.insert(fact.key.clone(), fact.value.clone());
                        if old.as_deref() == Some(fact.value.as_str()) {
                            continue;
                        }
                        let line = match (old, fact.arrow) {
                            (Some(old), true) => format!("{} {old} → {}", fact.key, fact.value),
                            (None, true) => format!("{} {}", fact.key, fact.value),
                            (_, false) => format!("{}: {}", fact.key, fact.value),
                        };
                        report.info(spec.phase, line);
                        last_output = Instant::now();
                    }
                    last = Some(snap);
                    true
                }
                Some(Err(e)) => {
                    let msg = crate::error::chain(&e);
                    if last_error.as_deref() != Some(msg.as_str()) {
                        report.warn(spec.phase, &msg);
                        last_output = Instant::now();
                    }
                    if last.is_none() {
                        last_why = msg.clone();
                    }
                    last_error = Some(msg);
                    false
                }
                // A finished source has nothing more to say; keep judging the last snapshot until the
                // deadline (grace periods may still expire).
                None => {
                    tokio::time::sleep(TICK).await;
                    true
                }
            },
            _ = tick.tick() => true,
        };
        if judge_last {
            if let Some(snap) = last.take() {
                match verdict(&snap, Instant::now()) {
                    Verdict::Ready => return Ok(snap),
                    Verdict::Failed { why } => {
                        return Err(WaitError::Failed {
                            phase: spec.phase,
                            why,
                        })
                    }
                    Verdict::Waiting { why } => last_why = why,
                }
                last = Some(snap);
            }
        }
        if last_output.elapsed() >= HEARTBEAT {
            report.info(
                spec.phase,
                format_args!(
                    "still waiting ({}s): {last_why}",
                    started.elapsed().as_secs()
                ),
            );
            last_output = Instant::now();
        }
    }
}

/// A snapshot source that calls `fetch` now and then every `interval` (the polling fallback).
pub fn poll<S, E, F, Fut>(interval: Duration, fetch: F) -> impl Stream<Item = Result<S, E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    futures::stream::unfold((fetch, true), move |(mut fetch, first)| async move {
        if !first {
            tokio::time::sleep(interval).await;
        }
        let item = fetch().await;
        Some((item, (fetch, false)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Masker;

    fn spec(secs: u64) -> WaitSpec {
        WaitSpec {
            phase: Phase::Rollout,
            started: Instant::now(),
            deadline: Instant::now() + Duration::from_secs(secs),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reports_changes_only_and_stops_on_ready() {
        let (report, out) = Report::capture(Masker::new());
        let mut n = 0;
        let source = poll(POLL_INTERVAL, move || {
            n += 1;
            async move { Ok::<_, std::convert::Infallible>(n.min(4)) }
        });
        let got = wait_until(
            spec(60),
            &report,
            source,
            |s: &u32, _| {
                if *s >= 4 {
                    Verdict::Ready
                } else {
                    Verdict::waiting(format!("at {s}"))
                }
            },
            |s| vec![Fact::status("web", format!("{}/3 updated", s.min(&3)))],
        )
        .await;
        assert_eq!(got, Ok(4));
        let text = out.text();
        assert_eq!(text.matches("web: ").count(), 3, "{text}");
        assert!(text.contains("rollout: web: 3/3 updated"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_names_phase_elapsed_and_last_state() {
        let (report, out) = Report::capture(Masker::new());
        let t0 = Instant::now();
        let source = poll(POLL_INTERVAL, || async {
            Ok::<_, std::convert::Infallible>(1u8)
        });
        let err = wait_until(
            spec(40),
            &report,
            source,
            |_, _| Verdict::waiting("1 old replicas are pending termination"),
            |_| vec![Fact::transition("health", "Progressing")],
        )
        .await
        .unwrap_err();
        assert_eq!(
            Instant::now() - t0,
            Duration::from_secs(40),
            "stops at the deadline"
        );
        assert_eq!(
            err.to_string(),
            "timed out after 40s in phase rollout; last state: 1 old replicas are pending termination"
        );
        let text = out.text();
        assert_eq!(
            text.matches("still waiting").count(),
            2,
            "heartbeat every 15 s: {text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn grace_expires_without_new_snapshots() {
        let (report, _) = Report::capture(Masker::new());
        let t0 = Instant::now();
        // One snapshot, then silence (a stream with no further events).
        let source = futures::stream::iter([Ok::<_, std::convert::Infallible>(())])
            .chain(futures::stream::pending());
        let start = t0;
        let err = wait_until(
            spec(600),
            &report,
            source,
            move |_, now| {
                if now - start >= Duration::from_secs(30) {
                    Verdict::failed("degraded for 30s")
                } else {
                    Verdict::waiting("degraded")
                }
            },
            |_| vec![],
        )
        .await
        .unwrap_err();
        assert!(matches!(err, WaitError::Failed { .. }));
        let took = Instant::now() - t0;
        assert!(
            took >= Duration::from_secs(30) && took <= Duration::from_secs(31),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn source_errors_are_reported_once_and_skipped() {
        let (report, out) = Report::capture(Masker::new());
        let mut n = 0;
        let source = poll(POLL_INTERVAL, move || {
            n += 1;
            async move {
                if n < 4 {
                    Err(std::io::Error::other(
                        "GET /api/v1/applications/web: HTTP 503: unavailable",
                    ))
                } else {
                    Ok(())
                }
            }
        });
        let got = wait_until(spec(60), &report, source, |_, _| Verdict::Ready, |_| vec![]).await;
        assert_eq!(got, Ok(()));
        assert_eq!(out.text().matches("HTTP 503").count(), 1, "{}", out.text());
    }
}
