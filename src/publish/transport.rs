//! The one publish loop, over a [`Transport`]: read the files at the branch head, apply the change,
//! write it on top of that head; when a write failed in a way that may still have landed, first look
//! for our commit before writing again; retry what is retryable until the policy or the deadline is
//! spent. The API and git transports only say how to read, write and look.

use super::*;

/// How one write failed.
pub(super) struct WriteFailure {
    /// The failure as the step reports it.
    pub error: Error,
    /// The write may have reached the branch although it failed (a timeout, a lost answer, a 5xx).
    pub maybe_landed: bool,
    /// The server answered 500 (what a declining hook looks like on Gitea ≤ 1.25 and Forgejo).
    pub server_error: bool,
}

/// A commit of ours found on the branch.
pub(super) struct Landed {
    /// Its SHA.
    pub sha: String,
    /// Its web URL, when the transport knows it.
    pub url: Option<String>,
    /// The files as they were before it (to describe the change it made).
    pub before: Vec<Read>,
}

/// What a transport does; [`publish`] decides when.
pub(super) trait Transport {
    /// Which transport this is, for the outcome.
    const KIND: UsedTransport;

    /// The branch written to.
    fn branch(&self) -> &str;

    /// The branch's current head.
    async fn head(&mut self) -> Result<String, Error>;

    /// The files at `head` (the commit [`Transport::head`] returned last).
    async fn read(&mut self, head: &str) -> Result<Vec<Read>, Error>;

    /// Writes `applied` as one commit with `message` on top of `head` (the files were read there);
    /// returns its SHA and web URL.
    async fn write(
        &mut self,
        head: &str,
        reads: &[Read],
        applied: &Applied,
        message: &str,
    ) -> Result<(String, Option<String>), WriteFailure>;

    /// Our commit (by its `Deploy-Id`), if one landed between `base` and `head`.
    async fn find_landed(
        &mut self,
        base: &str,
        head: &str,
        deploy_id: &str,
    ) -> Result<Option<Landed>, Error>;
}

/// Writes at most this many times in a row into answers of 500 with nothing landed, then stops: the
/// server refuses the write (a declining hook) rather than failing for a moment.
const SERVER_ERRORS_BEFORE_GIVING_UP: u32 = 3;

/// The publish loop over `transport`.
pub(super) async fn publish<T: Transport>(
    transport: &mut T,
    config: &Config,
    report: &Report,
    deadline: Deadline,
    deploy_id: &str,
) -> Result<Outcome, Error> {
    let mut backoff = config.retry.start(deadline);
    // The head the first possibly-landed write was based on: our commit, if it landed, comes after it.
    let mut maybe_landed_on: Option<String> = None;
    // 500s in a row on a branch that did not move, and the head they were written on: Gitea ≤ 1.25
    // also answers 500 when its own push loses a race, but then the branch has moved.
    let mut server_errors = 0u32;
    let mut refused_on: Option<String> = None;
    loop {
        let attempt = async {
            let head = transport.head().await?;
            if refused_on.as_deref() != Some(head.as_str()) {
                server_errors = 0;
            }
            if let Some(base) = &maybe_landed_on {
                if let Some(landed) = transport.find_landed(base, &head, deploy_id).await? {
                    report.info(
                        Phase::Publish,
                        "the earlier write landed despite the error; not writing again",
                    );
                    let applied = apply(config, &landed.before)?;
                    let msg = message(config, &applied, deploy_id);
                    return Ok(outcome(
                        config,
                        T::KIND,
                        transport.branch(),
                        applied,
                        landed.sha,
                        landed.url,
                        msg,
                    ));
                }
                if server_errors >= SERVER_ERRORS_BEFORE_GIVING_UP {
                    return Err(Error::ServerRefuses {
                        branch: transport.branch().to_owned(),
                        attempts: server_errors,
                    });
                }
            }
            let reads = transport.read(&head).await?;
            let applied = apply(config, &reads)?;
            let msg = message(config, &applied, deploy_id);
            if applied.changed.is_empty() || config.dry_run {
                return Ok(outcome(
                    config,
                    T::KIND,
                    transport.branch(),
                    applied,
                    head,
                    None,
                    msg,
                ));
            }
            match transport.write(&head, &reads, &applied, &msg).await {
                Ok((sha, url)) => Ok(outcome(
                    config,
                    T::KIND,
                    transport.branch(),
                    applied,
                    sha,
                    url,
                    msg,
                )),
                Err(failure) => {
                    if failure.maybe_landed && maybe_landed_on.is_none() {
                        maybe_landed_on = Some(head.clone());
                    }
                    if failure.server_error {
                        server_errors += 1;
                        refused_on = Some(head);
                    } else {
                        server_errors = 0;
                        refused_on = None;
                    }
                    Err(failure.error)
                }
            }
        };
        let failure = match attempt.await {
            Ok(mut done) => {
                done.attempts = backoff.attempts();
                return Ok(done);
            }
            Err(e) => e,
        };
        retry_or_give_up(&mut backoff, report, failure).await?;
    }
}

#[cfg(test)]
mod tests {
    //! The loop on paused time, over a scripted transport: every retry, landed-despite-an-error and
    //! give-up decision without a server or a real sleep.
    use super::*;
    use crate::forge::gitea::ApiError;
    use crate::report::Captured;
    use crate::secret::Masker;
    use std::collections::VecDeque;

    const KUSTOMIZATION: &str = "images:\n- name: app\n  newTag: 1.0.0\n";

    /// How a scripted write ends.
    #[derive(Clone, Copy, Debug)]
    enum Write {
        /// Lands.
        Ok,
        /// 409: the branch moved; nothing landed.
        Conflict,
        /// A 500 after which the write did land.
        LandedDespite500,
        /// A 500 and nothing landed.
        Refused500,
    }

    struct Scripted {
        script: VecDeque<Write>,
        writes: usize,
        landed: Option<String>,
        /// The head moves after each write (other pipelines, or the server's own lost race).
        moves: bool,
    }

    impl Transport for Scripted {
        const KIND: UsedTransport = UsedTransport::Api;

        fn branch(&self) -> &str {
            "main"
        }

        async fn head(&mut self) -> Result<String, Error> {
            Ok(format!("head{}", if self.moves { self.writes } else { 0 }))
        }

        async fn read(&mut self, _head: &str) -> Result<Vec<Read>, Error> {
            Ok(vec![Read {
                path: "k/kustomization.yaml".into(),
                text: KUSTOMIZATION.into(),
                sha: "blob".into(),
            }])
        }

        async fn write(
            &mut self,
            _head: &str,
            _reads: &[Read],
            _applied: &Applied,
            _message: &str,
        ) -> Result<(String, Option<String>), WriteFailure> {
            self.writes += 1;
            let status = |code: u16| Error::Api {
                action: "cannot commit to main".into(),
                source: crate::forge::gitea::Error::Api(ApiError {
                    method: reqwest::Method::POST,
                    path: "/api/v1/repos/o/r/contents".into(),
                    status: reqwest::StatusCode::from_u16(code).unwrap(),
                    message: String::new(),
                }),
            };
            match self.script.pop_front().unwrap_or(Write::Ok) {
                Write::Ok => Ok((format!("ours{}", self.writes), None)),
                Write::Conflict => Err(WriteFailure {
                    error: status(409),
                    maybe_landed: false,
                    server_error: false,
                }),
                Write::LandedDespite500 => {
                    self.landed = Some(format!("ours{}", self.writes));
                    Err(WriteFailure {
                        error: status(500),
                        maybe_landed: true,
                        server_error: true,
                    })
                }
                Write::Refused500 => Err(WriteFailure {
                    error: status(500),
                    maybe_landed: true,
                    server_error: true,
                }),
            }
        }

        async fn find_landed(
            &mut self,
            _base: &str,
            _head: &str,
            _deploy_id: &str,
        ) -> Result<Option<Landed>, Error> {
            Ok(self.landed.clone().map(|sha| Landed {
                sha,
                url: None,
                before: vec![Read {
                    path: "k/kustomization.yaml".into(),
                    text: KUSTOMIZATION.into(),
                    sha: "blob".into(),
                }],
            }))
        }
    }

    fn config(max_attempts: u32) -> Config {
        let mut c = Config::for_tests();
        c.retry = crate::retry::RetryPolicy {
            initial_delay: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(8),
            max_attempts,
            max_elapsed: Duration::from_secs(600),
        };
        c
    }

    async fn run(script: &[Write], max_attempts: u32) -> (Result<Outcome, Error>, usize, String) {
        run_on(script, max_attempts, true).await
    }

    async fn run_on(
        script: &[Write],
        max_attempts: u32,
        moves: bool,
    ) -> (Result<Outcome, Error>, usize, String) {
        let mut t = Scripted {
            script: script.iter().copied().collect(),
            writes: 0,
            landed: None,
            moves,
        };
        let config = config(max_attempts);
        let (report, out): (Report, Captured) = Report::capture(Masker::new());
        let deadline = Deadline::after(Duration::from_secs(600));
        let r = publish(&mut t, &config, &report, deadline, "id-1").await;
        (r, t.writes, out.text())
    }

    #[tokio::test(start_paused = true)]
    async fn a_moved_branch_is_retried_after_a_backoff() {
        let started = tokio::time::Instant::now();
        let (r, writes, _) = run(&[Write::Conflict, Write::Conflict, Write::Ok], 10).await;
        let done = r.unwrap();
        assert_eq!(
            (writes, done.attempts, done.commit_sha.as_str()),
            (3, 3, "ours3")
        );
        // Two backoffs (jittered around 1 s and 2 s) passed on the paused clock, not on the wall.
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_landed_despite_a_500_is_not_made_again() {
        let (r, writes, log) = run(&[Write::LandedDespite500], 10).await;
        let done = r.unwrap();
        assert_eq!((writes, done.commit_sha.as_str()), (1, "ours1"));
        assert!(done.changed);
        assert!(log.contains("landed despite the error"), "{log}");
    }

    #[tokio::test(start_paused = true)]
    async fn three_refused_500s_stop_the_step_naming_a_declining_hook() {
        // A hook: the branch stays where it was.
        let (r, writes, _) = run_on(&[Write::Refused500; 10], 10, false).await;
        assert!(
            matches!(r, Err(Error::ServerRefuses { attempts: 3, .. })),
            "{r:?}"
        );
        assert_eq!(writes, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_on_a_branch_that_keeps_moving_are_races_and_retried() {
        let mut script = vec![Write::Refused500; 5];
        script.push(Write::Ok);
        let (r, writes, _) = run_on(&script, 10, true).await;
        assert_eq!((r.unwrap().commit_sha, writes), ("ours6".to_owned(), 6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_policy_gives_up_with_the_last_failure() {
        let (r, writes, _) = run(&[Write::Conflict; 10], 4).await;
        match r {
            Err(Error::GaveUp { attempts, last, .. }) => {
                assert_eq!(attempts, 4);
                assert!(last.to_string().contains("cannot commit"), "{last}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(writes, 4);
    }
}
