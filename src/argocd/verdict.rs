//! The pure Argo CD verdict: does one application snapshot prove that *our* commit runs?
//!
//! This implements the predicate of docs/research/argocd-rollout.md TL;DR §3–4 (see `docs/research/argocd-rollout.md`):
//! ready when the synced revision is our commit S or a descendant of it, `Synced`, `Healthy`, no
//! pending operation, the operation for S `Succeeded`, and `reconciledAt ≥ finishedAt` (the
//! stale-health guard of kargo#2196). It never reads the clock or the network: what is known about
//! other revisions (ancestry, whether our value survived) comes in through [`Target`], elapsed
//! grace periods through [`VerdictState`] and `now`.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::models::{Application, ApplicationTree, OperationState, SyncWindow, SyncWindows};
use crate::verdict::{PausePolicy, Verdict};

/// How a revision Argo CD reports relates to our commit S.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// It is S.
    Ours,
    /// It contains S (S is an ancestor). `overwritten_by` is set when our value no longer holds there.
    Descendant {
        /// The commit that replaced our value, if any.
        overwritten_by: Option<String>,
    },
    /// It is an ancestor of S: Argo CD has not seen our commit yet.
    Older,
    /// It neither contains S nor is older: the branch moved to a history without our commit.
    Unrelated,
    /// Not known yet; the wait loop asks the forge and calls again.
    Unknown,
}

/// Our commit and what is known about the revisions seen so far.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Full SHA of our commit S.
    pub commit: String,
    /// The GitOps repository URL, to pick the source of a multi-source application.
    pub repo_url: Option<String>,
    /// Images we deployed (`name:tag`, `name@digest`); pods running them count for stuck-pod checks.
    pub images: Vec<String>,
    /// Facts about other revisions, filled by the wait loop.
    pub known: BTreeMap<String, Relation>,
    /// True when an oracle answers for unknown revisions (else they stay unknown).
    pub ancestry: bool,
    /// What app health `Suspended` (a workload paused for a person: an Argo Rollouts pause step, a
    /// paused Deployment) means here; `Succeed` hands it to the rollout phase, which judges each
    /// paused Rollout.
    pub on_suspended: PausePolicy,
}

impl Target {
    /// A target for commit `sha` with nothing known about other revisions.
    pub fn new(sha: impl Into<String>) -> Self {
        Target {
            commit: sha.into(),
            on_suspended: PausePolicy::Wait,
            ..Target::default()
        }
    }

    /// How `rev` relates to our commit.
    pub fn relation(&self, rev: &str) -> Relation {
        if rev.eq_ignore_ascii_case(&self.commit) {
            return Relation::Ours;
        }
        self.known.get(rev).cloned().unwrap_or(Relation::Unknown)
    }

    fn contains_ours(&self, rev: &str) -> bool {
        matches!(
            self.relation(rev),
            Relation::Ours | Relation::Descendant { .. }
        )
    }
}

/// What the verdict remembers between snapshots: since when a bad state has lasted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerdictState {
    /// Since when the app (or a pod running our image) has been `Degraded`/`Missing` at our revision.
    pub unhealthy_since: Option<Instant>,
    /// Since when an `…Error` condition has been present.
    pub error_condition_since: Option<Instant>,
}

impl VerdictState {
    /// Updates the timers from one snapshot. Pure: `now` comes from the caller.
    ///
    /// The unhealthy clock runs only once the sync of our revision has finished (Synced, no pending
    /// operation, the last operation completed) and Argo CD has reconciled after it: before that the
    /// health is the previous version's, or
    /// PreSync hooks and sync waves are still at work (field-argocd §4), and a fix-forward deploy onto a
    /// Degraded app must not fail for what it is about to repair.
    pub fn observe(&mut self, snap: &AppSnapshot, target: &Target, now: Instant) {
        let at_ours = synced_revision(&snap.app, target).is_some_and(|r| target.contains_ours(r));
        let unhealthy =
            at_ours && sync_settled(&snap.app) && unhealthy_culprit(snap, target).is_some();
        self.unhealthy_since = if unhealthy {
            self.unhealthy_since.or(Some(now))
        } else {
            None
        };
        let has_error = snap.app.status.conditions.iter().any(|c| c.is_error());
        self.error_condition_since = if has_error {
            self.error_condition_since.or(Some(now))
        } else {
            None
        };
    }
}

/// One view of the application: the app and, when fetched, its resource tree (for pod health).
#[derive(Debug, Clone, Default)]
pub struct AppSnapshot {
    /// The application.
    pub app: Application,
    /// Its resource tree, fetched while the app is `Progressing` at our revision.
    pub tree: Option<ApplicationTree>,
}

/// Index of our source in a multi-source application: by repository URL, else the source whose
/// revision is S, else the first.
pub fn source_index(app: &Application, target: &Target) -> usize {
    if let Some(repo) = &target.repo_url {
        if let Some(i) = app.spec.sources.iter().position(|s| {
            s.repo_url.as_deref().map(normalize_repo_url) == Some(normalize_repo_url(repo))
        }) {
            return i;
        }
    }
    app.status
        .sync
        .revisions
        .iter()
        .position(|r| r.eq_ignore_ascii_case(&target.commit))
        .unwrap_or(0)
}

/// Why Argo CD will not auto-sync now, from the app's sync windows; `None` when it may. The rule is
/// `SyncWindows.CanSync(false)` (pkg/apis/application/v1alpha1/types.go, v3.0.0 :2858-2892): an
/// active deny window blocks; with allow windows, one must be active. The API's own `canSync` is
/// `CanSync(true)`, the rule for manual syncs, so it cannot tell.
pub fn automatic_sync_block(windows: &SyncWindows) -> Option<String> {
    Some(match window_block(windows)? {
        WindowBlock::Deny(denies) => format!("the sync {} is active", describe_window(denies[0])),
        WindowBlock::OnlyInside(allows) => format!(
            "syncs are allowed only inside the sync {}, which is not active",
            describe_window(allows[0])
        ),
    })
}

/// Which windows stop a sync now (each list non-empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowBlock<'a> {
    /// Active deny windows.
    Deny(Vec<&'a SyncWindow>),
    /// Allow windows, none of them active.
    OnlyInside(Vec<&'a SyncWindow>),
}

/// `CanSync`'s rule without the manual-sync exceptions: an active deny window blocks; with allow
/// windows, one must be active.
pub fn window_block(windows: &SyncWindows) -> Option<WindowBlock<'_>> {
    fn of_kind<'a>(list: &'a [SyncWindow], kind: &str) -> Vec<&'a SyncWindow> {
        list.iter().filter(|w| w.kind == kind).collect()
    }
    let denies = of_kind(&windows.active_windows, "deny");
    if !denies.is_empty() {
        return Some(WindowBlock::Deny(denies));
    }
    let allows = of_kind(&windows.assigned_windows, "allow");
    let allow_active = windows.active_windows.iter().any(|w| w.kind == "allow");
    (!allows.is_empty() && !allow_active).then_some(WindowBlock::OnlyInside(allows))
}

/// A sync window as messages name it: `deny window "0 22 * * *" (8h)`.
pub fn describe_window(w: &SyncWindow) -> String {
    format!("{} window {:?} ({})", w.kind, w.schedule, w.duration)
}

/// What makes waiting on this app for our commit hopeless or doubtful, said at the start of the phase
/// instead of after a timeout (docs/research/field-argocd.md §4, ranked #10): a source-hydrator app (it syncs commits
/// of the hydrated branch, never ours), or no source from our repository.
pub fn source_warnings(app: &Application, target: &Target) -> Vec<String> {
    let mut out = Vec::new();
    if app.spec.source_hydrator.is_some() {
        out.push(
            "the app uses Argo CD's source hydrator: it syncs commits of the hydrated branch, never our commit, so this wait cannot succeed (unsupported)"
                .to_owned(),
        );
    }
    if let Some(repo) = &target.repo_url {
        let sources: Vec<&str> = app
            .spec
            .source
            .iter()
            .chain(&app.spec.sources)
            .filter_map(|s| s.repo_url.as_deref())
            .collect();
        let ours = normalize_repo_url(repo);
        if !sources.is_empty() && !sources.iter().any(|s| normalize_repo_url(s) == ours) {
            out.push(format!(
                "none of the app's sources is {repo} (they are: {}); unless Argo CD reaches that repository under another address, it will never see our commit",
                sources.join(", ")
            ));
        }
    }
    out
}

/// A repository URL reduced to `host[:port]/path` in lower case, so that the forms Argo CD apps use for
/// one repository compare equal: any scheme (`https://`, `http://`, `ssh://`), credentials (`user@`,
/// `user:token@`), scp-like `git@host:owner/repo`, a trailing `/` or `.git`.
pub fn normalize_repo_url(url: &str) -> String {
    let url = url.trim();
    let (rest, scp) = match url.split_once("://") {
        Some((_, rest)) => (rest, false),
        None => (url, true),
    };
    let rest = rest
        .rsplit_once('@')
        .map_or(rest, |(_, host_path)| host_path);
    let rest = if scp {
        // `host:owner/repo` (no port in the scp form) → `host/owner/repo`.
        rest.replacen(':', "/", 1)
    } else {
        rest.to_owned()
    };
    let rest = rest.trim_end_matches('/');
    rest.strip_suffix(".git")
        .unwrap_or(rest)
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

/// `rev(app)`: `status.sync.revision`, or `revisions[i]` for a multi-source app.
pub fn synced_revision<'a>(app: &'a Application, target: &Target) -> Option<&'a str> {
    if app.spec.is_multi_source() || !app.status.sync.revisions.is_empty() {
        let i = source_index(app, target);
        if let Some(r) = app.status.sync.revisions.get(i) {
            return Some(r.as_str());
        }
    }
    app.status
        .sync
        .revision
        .as_deref()
        .filter(|r| !r.is_empty())
}

/// The revision an operation synced or was asked to sync (for our source).
pub fn operation_revision<'a>(
    app: &Application,
    op: &'a OperationState,
    target: &Target,
) -> Option<&'a str> {
    let i = source_index(app, target);
    let from_result = op.sync_result.as_ref().and_then(|r| {
        r.revision
            .as_deref()
            .filter(|s| !s.is_empty())
            .or_else(|| r.revisions.get(i).map(String::as_str))
    });
    from_result.or_else(|| {
        op.operation.as_ref()?.sync.as_ref().and_then(|s| {
            s.revision
                .as_deref()
                .filter(|s| !s.is_empty())
                .or_else(|| s.revisions.get(i).map(String::as_str))
        })
    })
}

pub use crate::text::short;

/// Judges one snapshot. See the module docs for the predicate; the checks run in this order so the
/// most specific failure wins.
pub fn app_verdict(
    snap: &AppSnapshot,
    target: &Target,
    state: &VerdictState,
    grace: Duration,
    now: Instant,
) -> Verdict {
    let app = &snap.app;
    let status = &app.status;
    let s = short(&target.commit);
    let op = status.operation_state.as_ref();

    // A finished operation for S (or a descendant) that failed is final: retries are exhausted.
    if let Some(op) = op {
        if let Some(op_rev) = operation_revision(app, op, target) {
            let phase = op.phase.as_deref().unwrap_or("");
            if matches!(phase, "Failed" | "Error") && target.contains_ours(op_rev) {
                return Verdict::failed(failed_operation(op, op_rev));
            }
        }
    }

    let rev = synced_revision(app, target);
    let error_condition = status.conditions.iter().find(|c| c.is_error());
    let error_lasted = lasted(state.error_condition_since, grace, now);
    match rev.map(|r| (r, target.relation(r))) {
        Some((_, Relation::Ours))
        | Some((
            _,
            Relation::Descendant {
                overwritten_by: None,
            },
        )) => {}
        Some((
            r,
            Relation::Descendant {
                overwritten_by: Some(by),
            },
        )) => {
            return Verdict::failed(format!(
                "our value was overwritten by commit {} (Argo CD synced {}, which contains our commit {s})",
                short(&by),
                short(r)
            ));
        }
        Some((r, Relation::Unrelated)) => {
            return Verdict::failed(format!(
                "Argo CD moved to commit {} which does not contain our commit {s}",
                short(r)
            ));
        }
        other => {
            if let (Some(c), true) = (error_condition, error_lasted) {
                return Verdict::failed(condition_message(c));
            }
            let why = match other {
                Some((r, Relation::Unknown)) if target.ancestry => {
                    format!(
                        "Argo CD is at {}; checking whether it contains {s}",
                        short(r)
                    )
                }
                Some((r, _)) => format!("Argo CD is still at {}, waiting for {s}", short(r)),
                None => format!("Argo CD has no revision yet, waiting for {s}"),
            };
            return Verdict::waiting(why);
        }
    }
    let rev = rev.unwrap_or_default();

    if let (Some(c), true) = (error_condition, error_lasted) {
        return Verdict::failed(condition_message(c));
    }
    if let Some(culprit) = unhealthy_culprit(snap, target) {
        if lasted(state.unhealthy_since, grace, now) {
            return Verdict::failed(format!(
                "{culprit} (for more than {})",
                humantime::format_duration(grace)
            ));
        }
        return Verdict::waiting(culprit);
    }
    let sync = status.sync.status.as_deref().unwrap_or("Unknown");
    if sync != "Synced" {
        // An app whose only difference is resources to prune stays OutOfSync until someone syncs with
        // pruning (auto-sync without `prune: true` never does): say so instead of a silent timeout.
        let prune: Vec<String> = status
            .resources
            .iter()
            .filter(|r| r.requires_pruning == Some(true))
            .map(|r| {
                format!(
                    "{} {}",
                    r.kind.as_deref().unwrap_or("?"),
                    r.name.as_deref().unwrap_or("?")
                )
            })
            .collect();
        if !prune.is_empty() {
            return Verdict::waiting(format!(
                "sync {sync} at {}: {} resource(s) require pruning ({}); a sync with prune, or deleting them, ends this",
                short(rev),
                prune.len(),
                prune.join(", ")
            ));
        }
        // The running operation says what it waits for (a hook Job, a sync wave); a timeout names it.
        return Verdict::waiting(match op.and_then(running_operation) {
            Some(running) => format!("sync {sync} at {}; {running}", short(rev)),
            None => format!("sync {sync} at {}", short(rev)),
        });
    }
    if app.operation.is_some() {
        return Verdict::waiting("an operation is pending");
    }
    if let Some(op) = op {
        if let Some(running) = running_operation(op) {
            return Verdict::waiting(running);
        }
        if !reconciled_after_sync(app) {
            return Verdict::waiting(match health_culprit(status) {
                Some(stale) => format!(
                    "waiting for Argo CD to reconcile after the sync (its {stale} is from before it)"
                ),
                None => "waiting for Argo CD to reconcile after the sync".to_owned(),
            });
        }
    }
    match status.health.status.as_deref().unwrap_or("Unknown") {
        "Healthy" => Verdict::Ready,
        // Argo CD's Suspended: a paused Deployment, a paused Argo Rollout (canary pause step), a
        // suspended CronJob. Nothing moves until someone resumes it.
        "Suspended" => {
            let msg = status.health.message.as_deref().unwrap_or("");
            let why = format!(
                "health Suspended{}: a paused workload (a paused Deployment or Argo Rollouts pause step) waits for a manual resume",
                if msg.is_empty() { String::new() } else { format!(" ({msg})") }
            );
            match target.on_suspended {
                PausePolicy::Wait => Verdict::waiting(why),
                PausePolicy::Fail => Verdict::failed(format!("{why} (rollout_pause: fail)")),
                PausePolicy::Succeed => Verdict::Ready,
            }
        }
        other => {
            let msg = status.health.message.as_deref().unwrap_or("");
            Verdict::waiting(format!("health {other} {msg}").trim_end().to_owned())
        }
    }
}

/// True unless the last operation finished after Argo CD's last reconcile: health computed before the
/// controller reconciled once after the sync is the previous version's (a busy controller takes
/// seconds to minutes, docs/research/field-argocd.md §4).
fn reconciled_after_sync(app: &Application) -> bool {
    let status = &app.status;
    match status
        .operation_state
        .as_ref()
        .and_then(|op| op.finished_at)
    {
        Some(finished) => status.reconciled_at.is_some_and(|r| r >= finished),
        None => true,
    }
}

/// `operation Running: <message>` for an operation that has not completed.
fn running_operation(op: &OperationState) -> Option<String> {
    if op.is_completed() {
        return None;
    }
    let phase = op.phase.as_deref().unwrap_or("Running");
    let msg = op.message.as_deref().unwrap_or("");
    Some(
        format!("operation {phase}: {msg}")
            .trim_end_matches(": ")
            .to_owned(),
    )
}

/// True when nothing is left to apply: `Synced`, no pending operation, the last operation completed.
fn sync_settled(app: &Application) -> bool {
    app.status.sync.status.as_deref() == Some("Synced")
        && app.operation.is_none()
        && app
            .status
            .operation_state
            .as_ref()
            .is_none_or(|op| op.is_completed())
}

fn lasted(since: Option<Instant>, grace: Duration, now: Instant) -> bool {
    since.is_some_and(|t| now.saturating_duration_since(t) >= grace)
}

fn condition_message(c: &super::models::ApplicationCondition) -> String {
    format!(
        "{}: {}",
        c.type_.as_deref().unwrap_or("Error"),
        c.message.as_deref().unwrap_or("")
    )
}

fn failed_operation(op: &OperationState, rev: &str) -> String {
    let mut why = format!(
        "sync of {} {}: {}",
        short(rev),
        op.phase.as_deref().unwrap_or("Failed").to_ascii_lowercase(),
        op.message.as_deref().unwrap_or("no message")
    );
    let failed: Vec<String> = op
        .sync_result
        .iter()
        .flat_map(|r| r.resources.iter())
        .filter(|r| r.is_failed())
        .map(|r| {
            format!(
                "{} {}/{}: {}",
                r.kind.as_deref().unwrap_or("?"),
                r.namespace.as_deref().unwrap_or(""),
                r.name.as_deref().unwrap_or("?"),
                r.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    if !failed.is_empty() {
        why.push_str("; failed resources: ");
        why.push_str(&failed.join("; "));
    }
    why
}

/// What makes the app unhealthy now: its own `Degraded`/`Missing` health, once Argo CD has reconciled
/// after the last sync (before that the health is the previous version's), or a pod running our image
/// that is `Degraded` (live, from the resource tree).
fn unhealthy_culprit(snap: &AppSnapshot, target: &Target) -> Option<String> {
    reconciled_after_sync(&snap.app)
        .then(|| health_culprit(&snap.app.status))
        .flatten()
        .or_else(|| pod_culprit(snap, target))
}

/// The app's `Degraded`/`Missing` health, naming the first resource with that health.
fn health_culprit(status: &super::models::ApplicationStatus) -> Option<String> {
    let app_health = status.health.status.as_deref().unwrap_or("");
    if !matches!(app_health, "Degraded" | "Missing") {
        return None;
    }
    let res = status.resources.iter().find(|r| {
        r.hook != Some(true)
            && r.health
                .as_ref()
                .is_some_and(|h| h.status.as_deref() == Some(app_health))
    });
    Some(match res {
        Some(r) => format!(
            "health {app_health}: {} {}/{}: {}",
            r.kind.as_deref().unwrap_or("?"),
            r.namespace.as_deref().unwrap_or(""),
            r.name.as_deref().unwrap_or("?"),
            r.health
                .as_ref()
                .and_then(|h| h.message.as_deref())
                .or(status.health.message.as_deref())
                .unwrap_or("no message")
        ),
        None => format!(
            "health {app_health}: {}",
            status.health.message.as_deref().unwrap_or("no message")
        ),
    })
}

/// A `Degraded` pod running our image, from the resource tree (CrashLoopBackOff, ImagePullBackOff: app
/// health stays `Progressing` until the progress deadline).
fn pod_culprit(snap: &AppSnapshot, target: &Target) -> Option<String> {
    let tree = snap.tree.as_ref()?;
    tree.nodes
        .iter()
        .filter(|n| n.kind.as_deref() == Some("Pod"))
        .filter(|n| target.images.is_empty() || n.images.iter().any(|i| target.images.contains(i)))
        .find(|n| {
            n.health
                .as_ref()
                .is_some_and(|h| h.status.as_deref() == Some("Degraded"))
        })
        .map(|n| {
            format!(
                "pod {}/{} Degraded: {}",
                n.namespace.as_deref().unwrap_or(""),
                n.name.as_deref().unwrap_or("?"),
                n.health
                    .as_ref()
                    .and_then(|h| h.message.as_deref())
                    .unwrap_or("no message")
            )
        })
}

#[cfg(test)]
mod tests;
