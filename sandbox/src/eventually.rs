//! The one way tests wait for a condition on the sandbox: poll a probe until it holds or a deadline
//! passes, and fail naming the last state seen. Never a bare sleep standing in for a condition.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The condition did not hold within the time given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: not reached within {within:?}; last state: {last}")]
pub struct NotReached {
    /// What was waited for.
    pub what: String,
    /// How long.
    pub within: Duration,
    /// The probe's last answer.
    pub last: String,
}

/// How often a probe runs: short, as probes read in-process state or loopback servers.
pub const EVERY: Duration = Duration::from_millis(20);

/// Runs `probe` every [`EVERY`] until it returns `Ok(value)`, and returns that value; an `Err(state)`
/// means "not yet" and describes what was seen. Fails with [`NotReached`] (naming `what` and the last
/// state) once `within` has passed; the probe always runs at least once.
pub async fn eventually<T, F, Fut>(
    what: impl Into<String>,
    within: Duration,
    probe: F,
) -> Result<T, NotReached>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    eventually_every(what, within, EVERY, probe).await
}

/// [`eventually`] probing every `every`: waits of many minutes on paused time probe each second, not
/// each 20 ms of the cluster's time (every probe is a pass of the runtime).
pub async fn eventually_every<T, F, Fut>(
    what: impl Into<String>,
    within: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T, NotReached>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => {
                return Err(NotReached {
                    what: what.into(),
                    within,
                    last,
                })
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn returns_the_first_value_that_holds() {
        let mut n = 0;
        let got = eventually("three", Duration::from_secs(1), || {
            n += 1;
            let now = n;
            async move {
                if now >= 3 {
                    Ok(now)
                } else {
                    Err(format!("n = {now}"))
                }
            }
        })
        .await;
        assert_eq!(got, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn fails_at_the_deadline_naming_the_last_state() {
        let started = Instant::now();
        let got = eventually("never", Duration::from_millis(100), || async {
            Err::<(), _>("still 0".to_owned())
        })
        .await;
        let err = got.unwrap_err();
        assert_eq!(
            err.to_string(),
            "never: not reached within 100ms; last state: still 0"
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_millis(100) + EVERY * 2
        );
    }
}
