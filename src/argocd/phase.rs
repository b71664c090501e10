//! The Argo CD phase: make Argo CD look now (refresh), sync when the app needs it, then wait on the
//! application stream (polling every 2 s when streaming does not work) until [`app_verdict`] says
//! ready or failed.
//!
//! Why refresh: without it Argo CD notices a push only at its next poll (~3 min, docs/research/argocd-rollout.md A4); a
//! `?refresh=normal` GET re-resolves the branch at once. It is repeated every [`REFRESH_EVERY`] while
//! Argo CD is not at our commit yet, in case the first one raced the push.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use tokio::time::Instant;

use super::models::{Application, WatchEvent};
use super::verdict::{
    app_verdict, operation_revision, short, synced_revision, AppSnapshot, Relation, Target,
    VerdictState,
};
use super::{Client, Error, Refresh};
use crate::error::{chain, Phase};
use crate::report::Report;
use crate::verdict::Verdict;
use crate::wait::{wait_until, Fact, WaitError, WaitSpec, POLL_INTERVAL};

/// Re-refresh period while Argo CD has not reached our commit.
pub const REFRESH_EVERY: Duration = Duration::from_secs(20);
/// Client timeout of a refresh GET (the server blocks until the controller reconciled).
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);
/// Client timeout of the first, plain GET (served from the API server's cache).
const FIRST_GET_TIMEOUT: Duration = Duration::from_secs(15);
/// Tries of the first GET before the phase waits without knowing the app's sync policy.
const FIRST_GET_ATTEMPTS: u32 = 3;
/// How often the sync windows of an app we leave to auto-sync are looked at while waiting.
const WINDOWS_EVERY: Duration = Duration::from_secs(15);
/// Sync requests refused with "error resolving repo revision" before the phase gives up.
const RESOLVE_ATTEMPTS: u32 = 4;

/// When to trigger a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Only for apps without auto-sync.
    #[default]
    Auto,
    /// Always (also for auto-sync apps).
    Always,
    /// Never: only wait.
    Never,
}

/// How snapshots are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Watch {
    /// The NDJSON stream, falling back to polling when it does not work.
    #[default]
    Stream,
    /// Poll the application every 2 s.
    Poll,
}

/// Settings of the Argo CD phase.
#[derive(Debug, Clone)]
pub struct ArgoSettings {
    /// Application name.
    pub app: String,
    /// Namespace of the Application object.
    pub app_namespace: Option<String>,
    /// Project (makes a missing app a clear 404).
    pub project: Option<String>,
    /// When to sync.
    pub sync: SyncMode,
    /// How long `Degraded`/`Missing`/`…Error` may last before failing.
    pub degraded_grace: Duration,
    /// Stream or poll.
    pub watch: Watch,
}

/// Why an oracle could not tell a relation (the implementation's own typed error, kept whole for the
/// error chain).
pub type OracleError = Box<dyn std::error::Error + Send + Sync>;

/// Tells how a revision relates to our commit (ancestry from the forge, plus whether our value
/// survived there). Implemented by the pipeline over the forge's compare API.
pub trait RevisionOracle: Send + Sync {
    /// How `rev` relates to `ours`.
    fn relation<'a>(
        &'a self,
        ours: &'a str,
        rev: &'a str,
    ) -> BoxFuture<'a, Result<Relation, OracleError>>;
}

/// Why the application source yielded no snapshot this time. None of these ends the wait: the
/// source reconnects, falls back to polling or asks again, and the wait reports each once.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The ancestry oracle failed for a revision Argo CD reports.
    #[error("cannot tell whether {rev} contains our commit")]
    Ancestry {
        /// The revision, shortened.
        rev: String,
        /// The oracle's error.
        #[source]
        source: OracleError,
    },
    /// Reading the application failed.
    #[error("reading the application")]
    Read(#[source] Error),
    /// The application stream failed; the next snapshot reconnects with the last resourceVersion.
    #[error("application stream interrupted; reconnecting")]
    StreamInterrupted(#[source] Error),
    /// The stream cannot be used (not served, or failed too often); polling from now on.
    #[error("application stream unusable; polling every 2s instead")]
    StreamUnusable(#[source] Error),
    /// The stream ended normally (a proxy's idle timeout); resuming.
    #[error("application stream closed; resuming at resourceVersion {resource_version}")]
    StreamClosed {
        /// Where the next stream starts.
        resource_version: String,
    },
    /// The stream keeps ending; polling from now on.
    #[error("application stream keeps closing; polling every 2s instead")]
    StreamKeepsClosing,
    /// The stream reported the application deleted.
    #[error("argocd_app {app:?} was deleted")]
    Deleted {
        /// The application.
        app: String,
    },
}

/// What the Argo CD phase proved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArgoOutcome {
    /// The revision Argo CD synced (our commit or a descendant).
    pub synced_revision: String,
    /// Sync status at the end (`Synced`).
    pub sync_status: String,
    /// Health at the end (`Healthy`).
    pub health: String,
}

/// Errors of the Argo CD phase.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    /// Reading the application failed in a way retrying cannot fix (401, 403, 404).
    #[error("argocd_app {app:?}: cannot read the application")]
    Access {
        /// The app.
        app: String,
        /// The cause.
        #[source]
        source: Error,
    },
    /// A sync window refuses the sync now.
    #[error(
        "argocd_app {app:?}: Argo CD refuses to sync now: {why}; deploy when the window allows it, \
         or let the window allow manual syncs (manualSync: true in the project's syncWindows)"
    )]
    SyncWindow {
        /// The app.
        app: String,
        /// The window that blocks.
        why: String,
    },
    /// Triggering the sync failed.
    #[error("argocd_app {app:?}: sync request failed")]
    Sync {
        /// The app.
        app: String,
        /// The cause.
        #[source]
        source: Error,
    },
    /// The wait failed or timed out.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// Runs the phase until our commit is synced and healthy, or fails. Bounded by `deadline`.
///
/// # Errors
/// See [`PhaseError`].
pub async fn run(
    client: &Client,
    settings: &ArgoSettings,
    target: Target,
    oracle: Option<Arc<dyn RevisionOracle>>,
    report: &Report,
    deadline: Instant,
) -> Result<ArgoOutcome, PhaseError> {
    let phase = Phase::Argocd;
    let started = Instant::now();
    // A plain GET (no refresh): the refresh runs in the background task below.
    let get = |timeout: Duration| {
        client
            .apps()
            .get(&settings.app)
            .app_namespace(settings.app_namespace.as_deref())
            .project(settings.project.as_deref())
            .timeout(timeout)
            .send()
    };
    let remaining = |cap: Duration| deadline.saturating_duration_since(Instant::now()).min(cap);

    // 1. Read the app as it is: its sync policy decides whether we sync. A plain GET is answered from
    // the server's informer cache; a refresh GET blocks until the controller reconciled and can hang
    // on a real install (field-argocd §1), so it never decides the sync and runs in the background
    // (step 3). Bad access is fatal; anything else is retried a few times, then waited out.
    let mut first = None;
    for attempt in 1..=FIRST_GET_ATTEMPTS {
        match get(remaining(FIRST_GET_TIMEOUT)).await {
            Ok(app) => {
                first = Some(app);
                break;
            }
            Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => {
                return Err(PhaseError::Access {
                    app: settings.app.clone(),
                    source: e,
                })
            }
            Err(e) if attempt == FIRST_GET_ATTEMPTS || Instant::now() >= deadline => {
                report.warn(
                    phase,
                    format_args!("cannot read the app, waiting anyway: {}", chain(&e)),
                );
            }
            Err(_) => {
                tokio::time::sleep_until((Instant::now() + POLL_INTERVAL).min(deadline)).await
            }
        }
    }
    if let Some(app) = &first {
        for warning in super::verdict::source_warnings(app, &target) {
            report.warn(phase, format_args!("{warning}"));
        }
    }
    report.info(
        phase,
        format_args!(
            "refreshing {}, waiting for {}",
            settings.app,
            short(&target.commit)
        ),
    );

    // 2. Sync when the app will not do it by itself, or when asked to. An app we could not read is
    // synced only when asked to: a sync of an auto-sync app can be refused (a get-only token, a sync
    // window) and would fail a deploy that needs no sync at all.
    let auto = first.as_ref().map(|a| a.spec.is_auto_sync());
    let want_sync = match (settings.sync, auto) {
        (SyncMode::Always, _) => true,
        (SyncMode::Never, _) => false,
        (SyncMode::Auto, Some(auto)) => !auto,
        (SyncMode::Auto, None) => {
            report.warn(
                phase,
                "sync policy unknown: not requesting a sync (set argocd_sync: always for a manual-sync app)",
            );
            false
        }
    };
    if want_sync {
        trigger_sync(client, settings, report, deadline).await?;
    }
    // An auto-sync app inside a blocking sync window stays OutOfSync without a word (the controller
    // only logs "Sync prevented by sync window"): look at its windows, and say so while waiting.
    let window_block: Arc<Mutex<Option<String>>> = Arc::default();
    let _windows = (!want_sync && auto == Some(true)).then(|| {
        AbortOnDrop(tokio::spawn(watch_sync_windows(
            client.clone(),
            settings.clone(),
            report.clone(),
            window_block.clone(),
        )))
    });

    // 3. Wait.
    let mut target = target;
    target.ancestry = oracle.is_some();
    let target = Arc::new(Mutex::new(target));
    let at_ours = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let refresher = {
        let client = client.clone();
        let settings = settings.clone();
        let at_ours = at_ours.clone();
        tokio::spawn(async move {
            // The first refresh at once, then again while Argo CD has not reached our commit.
            let mut first = true;
            loop {
                if !std::mem::take(&mut first) {
                    tokio::time::sleep(REFRESH_EVERY).await;
                }
                if at_ours.load(std::sync::atomic::Ordering::Relaxed) {
                    continue;
                }
                let _ = client
                    .apps()
                    .get(&settings.app)
                    .app_namespace(settings.app_namespace.as_deref())
                    .project(settings.project.as_deref())
                    .refresh(Refresh::Normal)
                    .timeout(REFRESH_TIMEOUT)
                    .send()
                    .await;
            }
        })
    };
    let _abort = AbortOnDrop(refresher);

    let source = AppSource {
        client: client.clone(),
        settings: settings.clone(),
        mode: settings.watch,
        events: None,
        rv: first
            .as_ref()
            .and_then(|a| a.metadata.resource_version.clone()),
        pending_first: first,
        last: None,
        stream_failures: 0,
        target: target.clone(),
        oracle,
        polled_once: false,
    };
    let snapshots = futures::stream::unfold(source, |mut s| async move {
        let item = s.next().await;
        Some((item, s))
    });

    let mut state = VerdictState::default();
    let grace = settings.degraded_grace;
    let describe_target = target.clone();
    let snap = wait_until(
        WaitSpec {
            phase,
            started,
            deadline,
        },
        report,
        snapshots,
        |snap: &AppSnapshot, now| {
            let t = target.lock().expect("target lock");
            state.observe(snap, &t, now);
            let rev = synced_revision(&snap.app, &t);
            let ours = rev.is_some_and(|r| {
                matches!(t.relation(r), Relation::Ours | Relation::Descendant { .. })
            });
            at_ours.store(ours, std::sync::atomic::Ordering::Relaxed);
            // A window matters only while our commit is not synced yet; after that, waiting is about
            // health, and blaming a window would mislead.
            let synced = ours && snap.app.status.sync.status.as_deref() == Some("Synced");
            match app_verdict(snap, &t, &state, grace, now) {
                Verdict::Waiting { why } if !synced => {
                    match &*window_block.lock().expect("window lock") {
                        Some(block) => Verdict::Waiting {
                            why: format!("{why}; Argo CD will not auto-sync now: {block}"),
                        },
                        None => Verdict::Waiting { why },
                    }
                }
                other => other,
            }
        },
        |snap| describe(&snap.app, &describe_target.lock().expect("target lock")),
    )
    .await?;
    let t = target.lock().expect("target lock");
    Ok(ArgoOutcome {
        synced_revision: synced_revision(&snap.app, &t)
            .unwrap_or_default()
            .to_owned(),
        sync_status: snap.app.status.sync.status.clone().unwrap_or_default(),
        health: snap.app.status.health.status.clone().unwrap_or_default(),
    })
}

/// Looks at the app's sync windows every [`WINDOWS_EVERY`]; keeps `block` at why Argo CD will not
/// auto-sync now, and warns when that starts. A failed look keeps the last answer.
async fn watch_sync_windows(
    client: Client,
    settings: ArgoSettings,
    report: Report,
    block: Arc<Mutex<Option<String>>>,
) {
    loop {
        if let Ok(windows) = sync_windows(&client, &settings).await {
            let now = super::verdict::automatic_sync_block(&windows);
            let mut shared = block.lock().expect("window lock");
            if let Some(why) = now.as_ref().filter(|_| shared.is_none()) {
                report.warn(
                    Phase::Argocd,
                    format_args!(
                        "Argo CD will not auto-sync {} now: {why}; waiting for the window",
                        settings.app
                    ),
                );
            }
            *shared = now;
        }
        tokio::time::sleep(WINDOWS_EVERY).await;
    }
}

/// The app's sync windows.
async fn sync_windows(
    client: &Client,
    settings: &ArgoSettings,
) -> Result<super::models::SyncWindows, Error> {
    client
        .apps()
        .sync_windows(&settings.app)
        .app_namespace(settings.app_namespace.as_deref())
        .project(settings.project.as_deref())
        .send()
        .await
}

/// Why a sync window blocks a manual sync of the app, for the error message (a generic reason when
/// the windows cannot be read).
async fn manual_sync_block(client: &Client, settings: &ArgoSettings) -> String {
    use super::verdict::{describe_window, window_block, WindowBlock};
    let names = |list: Vec<&super::models::SyncWindow>| {
        list.into_iter()
            .map(describe_window)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let windows = sync_windows(client, settings).await.ok();
    match windows.as_ref().and_then(window_block) {
        Some(WindowBlock::Deny(denies)) => format!("the sync {} blocks it", names(denies)),
        Some(WindowBlock::OnlyInside(allows)) => format!(
            "syncs are allowed only inside the sync {}, none of them active",
            names(allows)
        ),
        None => "a sync window blocks it".to_owned(),
    }
}

/// POSTs a sync; "another operation is already in progress" is waited out (the running operation
/// finishes first), then the sync is requested again. A sync window's refusal fails at once, naming
/// the window; a revision the server could not resolve is tried [`RESOLVE_ATTEMPTS`] times.
async fn trigger_sync(
    client: &Client,
    settings: &ArgoSettings,
    report: &Report,
    deadline: Instant,
) -> Result<(), PhaseError> {
    let mut announced = false;
    let mut unresolved = 0;
    loop {
        let res = client
            .apps()
            .sync(&settings.app)
            .app_namespace(settings.app_namespace.as_deref())
            .project(settings.project.as_deref())
            .send()
            .await;
        match res {
            Ok(_) => {
                report.info(Phase::Argocd, "sync requested");
                return Ok(());
            }
            Err(e) if e.is_sync_window_block() => {
                return Err(PhaseError::SyncWindow {
                    app: settings.app.clone(),
                    why: manual_sync_block(client, settings).await,
                })
            }
            Err(e)
                if (e.is_operation_in_progress()
                    || e.is_retryable()
                    || (e.is_revision_unresolved() && {
                        unresolved += 1;
                        unresolved < RESOLVE_ATTEMPTS
                    }))
                    && Instant::now() < deadline =>
            {
                if !announced {
                    report.info(
                        Phase::Argocd,
                        format_args!("sync not accepted yet ({}); retrying", chain(&e)),
                    );
                    announced = true;
                }
                let wake = (Instant::now() + POLL_INTERVAL).min(deadline);
                tokio::time::sleep_until(wake).await;
            }
            Err(source) => {
                return Err(PhaseError::Sync {
                    app: settings.app.clone(),
                    source,
                })
            }
        }
    }
}

/// The facts reported on change: sync status with revision, health, operation phase.
fn describe(app: &Application, target: &Target) -> Vec<Fact> {
    let st = &app.status;
    let rev = synced_revision(app, target).map(short).unwrap_or("-");
    let mut facts = vec![
        Fact::transition(
            "sync",
            format!("{} @ {rev}", st.sync.status.as_deref().unwrap_or("Unknown")),
        ),
        Fact::transition("health", st.health.status.as_deref().unwrap_or("Unknown")),
    ];
    if let Some(op) = &st.operation_state {
        let op_rev = operation_revision(app, op, target)
            .map(short)
            .unwrap_or("-");
        facts.push(Fact::transition(
            "operation",
            format!("{} @ {op_rev}", op.phase.as_deref().unwrap_or("?")),
        ));
    }
    facts
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Streams application snapshots: the NDJSON stream resumed by resourceVersion after a cut, or
/// polling when streaming fails three times in a row. While the app is at our revision but not
/// healthy yet, the resource tree is fetched every 2 s too (pod health is not part of app events).
struct AppSource {
    client: Client,
    settings: ArgoSettings,
    mode: Watch,
    events: Option<BoxStream<'static, Result<WatchEvent, Error>>>,
    rv: Option<String>,
    pending_first: Option<Application>,
    last: Option<Application>,
    stream_failures: u32,
    target: Arc<Mutex<Target>>,
    oracle: Option<Arc<dyn RevisionOracle>>,
    polled_once: bool,
}

/// Consecutive stream failures (without an event in between) before falling back to polling.
const STREAM_ATTEMPTS: u32 = 3;

impl AppSource {
    async fn next(&mut self) -> Result<AppSnapshot, SourceError> {
        let app = match self.pending_first.take() {
            Some(app) => app,
            None => self.next_app().await?,
        };
        if let Err(e) = self.learn(&app).await {
            // Ask again shortly with the same snapshot: a stream may not send another event soon.
            self.pending_first = Some(app);
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Err(e);
        }
        let tree = if self.wants_tree(&app) {
            self.client
                .apps()
                .resource_tree(&self.settings.app)
                .app_namespace(self.settings.app_namespace.as_deref())
                .project(self.settings.project.as_deref())
                .send()
                .await
                .ok()
        } else {
            None
        };
        self.last = Some(app.clone());
        Ok(AppSnapshot { app, tree })
    }

    /// Pod health only matters while the app is at our revision and still progressing.
    fn wants_tree(&self, app: &Application) -> bool {
        let t = self.target.lock().expect("target lock");
        let at_ours = synced_revision(app, &t)
            .is_some_and(|r| matches!(t.relation(r), Relation::Ours | Relation::Descendant { .. }));
        at_ours && app.status.health.status.as_deref() == Some("Progressing")
    }

    /// Asks the oracle about revisions the target does not know yet.
    async fn learn(&mut self, app: &Application) -> Result<(), SourceError> {
        let Some(oracle) = self.oracle.clone() else {
            return Ok(());
        };
        let (ours, unknown) = {
            let t = self.target.lock().expect("target lock");
            let mut revs: Vec<String> = Vec::new();
            if let Some(r) = synced_revision(app, &t) {
                revs.push(r.to_owned());
            }
            if let Some(op) = &app.status.operation_state {
                if let Some(r) = operation_revision(app, op, &t) {
                    revs.push(r.to_owned());
                }
            }
            revs.retain(|r| t.relation(r) == Relation::Unknown);
            (t.commit.clone(), revs)
        };
        for rev in unknown {
            let rel =
                oracle
                    .relation(&ours, &rev)
                    .await
                    .map_err(|source| SourceError::Ancestry {
                        rev: short(&rev).to_owned(),
                        source,
                    })?;
            self.target
                .lock()
                .expect("target lock")
                .known
                .insert(rev, rel);
        }
        Ok(())
    }

    async fn next_app(&mut self) -> Result<Application, SourceError> {
        match self.mode {
            Watch::Poll => {
                if self.polled_once {
                    tokio::time::sleep(POLL_INTERVAL).await;
                }
                self.polled_once = true;
                return self.get().await;
            }
            Watch::Stream => {
                if self.events.is_none() {
                    let opened = self
                        .client
                        .apps()
                        .stream(&self.settings.app)
                        .app_namespace(self.settings.app_namespace.as_deref())
                        .project(self.settings.project.as_deref())
                        .resource_version(self.rv.as_deref())
                        .send()
                        .await;
                    match opened {
                        Ok(s) => self.events = Some(s),
                        Err(e) => return Err(self.stream_failed(e).await),
                    }
                }
                let tree_due = self.last.as_ref().is_some_and(|a| self.wants_tree(a));
                let events = self.events.as_mut().expect("stream is open");
                let item = if tree_due {
                    match tokio::time::timeout(POLL_INTERVAL, events.next()).await {
                        Ok(item) => item,
                        // Nothing new on the app; hand back the last one so the tree is re-read.
                        Err(_) => return Ok(self.last.clone().expect("tree_due needs a last app")),
                    }
                } else {
                    events.next().await
                };
                match item {
                    Some(Ok(ev)) => {
                        self.stream_failures = 0;
                        if let Some(rv) = &ev.application.metadata.resource_version {
                            self.rv = Some(rv.clone());
                        }
                        if ev.type_.as_deref() == Some("DELETED") {
                            return Err(SourceError::Deleted {
                                app: self.settings.app.clone(),
                            });
                        }
                        Ok(ev.application)
                    }
                    Some(Err(e)) => {
                        self.events = None;
                        return Err(self.stream_failed(e).await);
                    }
                    None => {
                        // A normal end (a proxy's idle timeout): reconnect from the last version.
                        self.events = None;
                        self.stream_failures += 1;
                        if self.stream_failures >= STREAM_ATTEMPTS {
                            self.mode = Watch::Poll;
                            return Err(SourceError::StreamKeepsClosing);
                        }
                        if self.stream_failures > 1 {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(SourceError::StreamClosed {
                            resource_version: self.rv.clone().unwrap_or_else(|| "0".into()),
                        })
                    }
                }
            }
        }
    }

    async fn stream_failed(&mut self, e: Error) -> SourceError {
        self.stream_failures += 1;
        if self.stream_failures >= STREAM_ATTEMPTS || matches!(e.status(), Some(404 | 405 | 501)) {
            self.mode = Watch::Poll;
            return SourceError::StreamUnusable(e);
        }
        // As `argocd app wait` does: wait a second, reconnect with the last resourceVersion.
        tokio::time::sleep(Duration::from_secs(1)).await;
        SourceError::StreamInterrupted(e)
    }

    async fn get(&self) -> Result<Application, SourceError> {
        self.client
            .apps()
            .get(&self.settings.app)
            .app_namespace(self.settings.app_namespace.as_deref())
            .project(self.settings.project.as_deref())
            .send()
            .await
            .map_err(SourceError::Read)
    }
}
