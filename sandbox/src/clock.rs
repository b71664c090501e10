//! The simulated cluster's one clock: tokio's. Argo CD's and Kubernetes' timestamps
//! (`reconciledAt`, `startedAt`, `creationTimestamp`, ages) are read from it, so a test on paused
//! time (`#[tokio::test(start_paused = true)]`) sees them advance with the durations it waits, and a
//! normal run sees the wall clock's time. (Gitea's commit dates come from git, on the wall clock.)

use std::sync::OnceLock;
use std::time::Instant as StdInstant;

use jiff::{SignedDuration, Timestamp};

/// The wall time at one monotonic instant, taken once per process.
fn anchor() -> (StdInstant, Timestamp) {
    static ANCHOR: OnceLock<(StdInstant, Timestamp)> = OnceLock::new();
    *ANCHOR.get_or_init(|| (StdInstant::now(), Timestamp::now()))
}

/// Now, on tokio's clock: the anchor's wall time plus the time tokio says has passed since. A paused
/// runtime starts from the real instant it was created at, so the two agree until time is advanced.
pub fn now() -> Timestamp {
    let (at, wall) = anchor();
    let tokio_now = tokio::time::Instant::now().into_std();
    let offset = if tokio_now >= at {
        SignedDuration::try_from(tokio_now - at)
    } else {
        SignedDuration::try_from(at - tokio_now).map(|d| -d)
    }
    .unwrap_or(SignedDuration::ZERO);
    wall.checked_add(offset).unwrap_or(wall)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn advances_with_paused_time_only() {
        let before = super::now();
        tokio::time::advance(Duration::from_secs(600)).await;
        let after = super::now();
        let passed = after.duration_since(before);
        assert!(
            passed >= jiff::SignedDuration::from_secs(600)
                && passed < jiff::SignedDuration::from_secs(601),
            "{passed:?}"
        );
    }

    #[tokio::test]
    async fn follows_the_wall_clock_when_not_paused() {
        let skew = super::now().duration_since(jiff::Timestamp::now()).abs();
        assert!(skew < jiff::SignedDuration::from_secs(1), "{skew:?}");
    }
}
