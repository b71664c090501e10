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
    let mut server_errors = 0u32;
    loop {
        let attempt = async {
            let head = transport.head().await?;
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
                        maybe_landed_on = Some(head);
                    }
                    server_errors = if failure.server_error {
                        server_errors + 1
                    } else {
                        0
                    };
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
