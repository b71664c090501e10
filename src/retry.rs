//! Retry policies and deadlines shared by every phase.
//!
//! A [`RetryPolicy`] is plain data (initial delay, factor, cap, attempts, total time); [`RetryPolicy::start`]
//! turns it into a [`Backoff`] on top of `backon`'s jittered exponential builder, bounded by both the
//! attempt count and a [`Deadline`]. Callers keep their own loop, because the publish step must carry state
//! between tries (did an earlier write land?); [`run`] is the loop for the simple cases. Classifying errors
//! is not this module's job: each client offers an `is_retryable()` next to its error type.

use std::future::Future;
use std::time::Duration;

// Tokio's clock, like every wait: a test on paused time covers retries and deadlines alike.
use tokio::time::Instant;

use backon::BackoffBuilder as _;

/// A point in time after which a phase must stop waiting or retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Deadline {
            at: Instant::now() + budget,
        }
    }

    /// A deadline at a given instant.
    pub fn at(at: Instant) -> Self {
        Deadline { at }
    }

    /// Time left; zero once the deadline has passed.
    pub fn remaining(self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// True once the deadline has passed.
    pub fn is_expired(self) -> bool {
        Instant::now() >= self.at
    }

    /// The earlier of two deadlines (a phase's own budget capped by the overall one).
    pub fn min(self, other: Deadline) -> Deadline {
        if other.at < self.at {
            other
        } else {
            self
        }
    }
}

/// How to retry: jittered exponential backoff bounded by attempts and by total time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the second attempt (before jitter).
    pub initial_delay: Duration,
    /// Growth factor of the delay per attempt.
    pub factor: f32,
    /// Cap of a single delay.
    pub max_delay: Duration,
    /// Attempts in total, the first one included.
    pub max_attempts: u32,
    /// Time budget for all attempts, measured from [`RetryPolicy::start`].
    pub max_elapsed: Duration,
}

impl RetryPolicy {
    /// The policy for commits and pushes: many short tries, because concurrent deploys to one branch
    /// contend for a few milliseconds each and a lost race is cheap to redo.
    pub const PUBLISH: RetryPolicy = RetryPolicy {
        initial_delay: Duration::from_millis(100),
        factor: 2.0,
        max_delay: Duration::from_secs(3),
        max_attempts: 60,
        max_elapsed: Duration::from_secs(300),
    };

    /// Starts a retry sequence now; the sequence also stops at `deadline` if that comes first.
    pub fn start(&self, deadline: Deadline) -> Backoff {
        let own = Deadline::after(self.max_elapsed);
        let delays = backon::ExponentialBuilder::new()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        Backoff {
            delays: Box::new(delays),
            deadline: own.min(deadline),
            attempts: 1,
            started: Instant::now(),
        }
    }
}

/// One running retry sequence: hands out the wait before each further attempt.
pub struct Backoff {
    delays: Box<dyn Iterator<Item = Duration> + Send>,
    deadline: Deadline,
    attempts: u32,
    started: Instant,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("attempts", &self.attempts)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Backoff {
    /// The wait before the next attempt, or `None` when attempts or time ran out. The wait never
    /// reaches past the deadline, and the attempt counter advances.
    pub fn next_wait(&mut self) -> Option<Duration> {
        if self.deadline.is_expired() {
            return None;
        }
        let wait = self.delays.next()?.min(self.deadline.remaining());
        self.attempts += 1;
        Some(wait)
    }

    /// Attempts started so far (1 before any retry).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since the sequence started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The deadline the sequence obeys.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }
}

/// Runs `op` until it succeeds, fails with an error `is_retryable` rejects, or the policy runs out;
/// `on_retry(attempt, wait, &err)` is called before each wait. Returns the last error when giving up.
///
/// # Errors
/// The first non-retryable error, or the last error once attempts or time are exhausted.
pub async fn run<T, E, Fut>(
    policy: &RetryPolicy,
    deadline: Deadline,
    is_retryable: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(u32, Duration, &E),
    mut op: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = policy.start(deadline);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if is_retryable(&e) => match backoff.next_wait() {
                Some(wait) => {
                    on_retry(backoff.attempts(), wait, &e);
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            initial_delay: Duration::from_millis(1),
            factor: 2.0,
            max_delay: Duration::from_millis(4),
            max_attempts,
            max_elapsed: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_is_bounded_by_attempts_and_capped() {
        let mut b = quick(4).start(Deadline::after(Duration::from_secs(10)));
        let waits: Vec<_> = std::iter::from_fn(|| b.next_wait()).collect();
        assert_eq!(waits.len(), 3);
        assert_eq!(b.attempts(), 4);
        // Jitter adds at most one more delay on top of the capped one.
        assert!(
            waits.iter().all(|w| *w <= Duration::from_millis(8)),
            "{waits:?}"
        );
    }

    #[test]
    fn backoff_stops_at_the_deadline() {
        let mut b = quick(100).start(Deadline::at(Instant::now()));
        assert_eq!(b.next_wait(), None);
        assert_eq!(b.attempts(), 1);
    }

    #[test]
    fn deadline_min_picks_the_earlier() {
        let a = Deadline::after(Duration::from_secs(1));
        let b = Deadline::after(Duration::from_secs(60));
        assert_eq!(a.min(b), a);
        assert_eq!(b.min(a), a);
        assert!(b.remaining() > Duration::from_secs(59));
    }

    #[tokio::test]
    async fn run_retries_only_retryable_errors() {
        let mut calls = 0;
        let r: Result<(), &str> = run(
            &quick(5),
            Deadline::after(Duration::from_secs(5)),
            |e| *e == "again",
            |_, _, _| {},
            || {
                calls += 1;
                let out = if calls < 3 {
                    Err("again")
                } else {
                    Err("fatal")
                };
                async move { out }
            },
        )
        .await;
        assert_eq!(r, Err("fatal"));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<(), &str> = run(
            &quick(3),
            Deadline::after(Duration::from_secs(5)),
            |_| true,
            |_, _, _| {},
            || {
                calls += 1;
                async { Err("again") }
            },
        )
        .await;
        assert_eq!(r, Err("again"));
        assert_eq!(calls, 3);
    }
}
