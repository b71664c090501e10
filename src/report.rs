//! Progress and result reporting: the only place that writes user-facing text.
//!
//! Steps never print. They call [`Report`] with what happened (a phase started, a state changed, a
//! retry), and the report renders it: one line per change on stderr for humans, prefixed with the time
//! since start. Every line passes through the [`Masker`] first, so a secret cannot reach the log even
//! when it is part of an upstream error message.
//!
//! Phases are tracked from the lines themselves: the first line of a new phase closes the previous one.
//! This gives the summary its per-phase durations and, in a CI runner ([`Report::with_workflow_commands`]),
//! one `::group::` per phase without the steps knowing about runners.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Tokio's clock, the one every wait and deadline uses (src/retry.rs).
use tokio::time::Instant;

use crate::error::Phase;
use crate::secret::Masker;

/// Where the report's lines go.
type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// The user-facing progress log. Cheap to clone; clones share the sink, the masker and the start time.
#[derive(Clone)]
pub struct Report {
    masker: Masker,
    started: Instant,
    sink: Sink,
    /// Whether to emit runner workflow commands (`::group::`, `::add-mask::`, `::error::`).
    commands: bool,
    phases: Arc<Mutex<PhaseLog>>,
    /// The phase every line of this handle belongs to, whatever step writes it (see
    /// [`Report::scoped`]).
    scope: Option<Phase>,
    /// What this handle's lines are about (an Argo CD app, when several are verified at once):
    /// `argocd[web-eu]: …` (see [`Report::about`]).
    subject: Option<Arc<str>>,
}

/// The phases seen so far, in order, and the one that is open.
#[derive(Debug, Default)]
struct PhaseLog {
    open: Option<Phase>,
    spans: Vec<PhaseSpan>,
}

/// One stretch of time a phase was the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseSpan {
    /// The phase.
    pub phase: Phase,
    /// When it started, since the report was created.
    pub start: Duration,
    /// When it ended (`None` while it is still open).
    pub end: Option<Duration>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report").finish_non_exhaustive()
    }
}

/// A buffer that collects a [`Report`]'s output, for tests.
#[derive(Clone, Default, Debug)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("capture lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Report {
    /// A report that writes to stderr.
    pub fn stderr(masker: Masker) -> Self {
        Self::to_writer(masker, Box::new(std::io::stderr()))
    }

    /// A report that writes to any writer.
    pub fn to_writer(masker: Masker, writer: Box<dyn Write + Send>) -> Self {
        Report {
            masker,
            started: Instant::now(),
            sink: Arc::new(Mutex::new(writer)),
            commands: false,
            phases: Arc::new(Mutex::new(PhaseLog::default())),
            scope: None,
            subject: None,
        }
    }

    /// Turns on runner workflow commands: a `::group::` per phase, `::add-mask::` from
    /// [`Report::add_secret`], `::error::` from [`Report::error_command`].
    pub fn with_workflow_commands(mut self, on: bool) -> Self {
        self.commands = on;
        self
    }

    /// Whether workflow commands are emitted.
    pub fn workflow_commands(&self) -> bool {
        self.commands
    }

    /// Registers a secret with the masker and, in a runner, announces each of its forms with
    /// `::add-mask::` (the only lines that bypass the masker, since masking them would defeat them).
    pub fn add_secret(&self, secret: &crate::secret::Secret) {
        let forms = self.masker.add(secret);
        if self.commands {
            self.raw_lines(&crate::runner::add_mask_commands(&forms));
        }
    }

    /// Closes the open phase (its group, in a runner) and prints `::error::` naming `phase`, masked.
    pub fn error_command(&self, phase: Phase, message: &str) {
        self.close_phase();
        if self.commands {
            let line = crate::runner::error_command(phase, &self.masker.mask(message));
            self.raw_lines(&[line]);
        }
    }

    /// Makes `phase` the current one: closes the previous phase (and its group) and opens this one.
    /// Called by every progress line; call it directly to time a phase that has not logged yet.
    pub fn enter(&self, phase: Phase) {
        let phase = self.scope.unwrap_or(phase);
        let now = self.elapsed();
        let mut log = self.phases.lock().expect("phase lock");
        if log.open == Some(phase) {
            return;
        }
        let mut lines = Vec::new();
        if log.open.take().is_some() {
            if let Some(last) = log.spans.last_mut() {
                last.end = Some(now);
            }
            lines.push("::endgroup::".to_owned());
        }
        log.open = Some(phase);
        log.spans.push(PhaseSpan {
            phase,
            start: now,
            end: None,
        });
        lines.push(format!("::group::gitops-deploy: {phase}"));
        drop(log);
        if self.commands {
            self.raw_lines(&lines);
        }
    }

    /// Ends the open phase, if any (and its group, in a runner).
    pub fn close_phase(&self) {
        let now = self.elapsed();
        let mut log = self.phases.lock().expect("phase lock");
        if log.open.take().is_some() {
            if let Some(last) = log.spans.last_mut() {
                last.end = Some(now);
            }
            drop(log);
            if self.commands {
                self.raw_lines(&["::endgroup::".to_owned()]);
            }
        }
    }

    /// Every phase seen, in order of first appearance, with its total time (open spans count up to now).
    pub fn phase_durations(&self) -> Vec<(Phase, Duration)> {
        let now = self.elapsed();
        let log = self.phases.lock().expect("phase lock");
        let mut out: Vec<(Phase, Duration)> = Vec::new();
        for span in &log.spans {
            let d = span.end.unwrap_or(now).saturating_sub(span.start);
            match out.iter_mut().find(|(p, _)| *p == span.phase) {
                Some((_, total)) => *total += d,
                None => out.push((span.phase, d)),
            }
        }
        out
    }

    /// A handle whose lines all belong to `phase` (time included), labelled `phase: step:`: the
    /// orchestrator gives it to the steps a phase reuses, so that a rollback's publish and Argo CD
    /// wait are charged to the rollback.
    pub fn scoped(&self, phase: Phase) -> Report {
        Report {
            scope: Some(phase),
            ..self.clone()
        }
    }

    /// A handle whose lines name `subject` after their phase: `[  3.2s] argocd[web-eu]: …`, so
    /// that the lines of apps verified in parallel can be told apart.
    pub fn about(&self, subject: &str) -> Report {
        Report {
            subject: Some(Arc::from(subject)),
            ..self.clone()
        }
    }

    /// Writes lines unmasked. Only for workflow commands whose content is already safe.
    fn raw_lines(&self, lines: &[String]) {
        let mut sink = self.sink.lock().expect("report lock");
        for line in lines {
            let _ = writeln!(sink, "{line}");
        }
        let _ = sink.flush();
    }

    /// A report whose output is captured in memory (for tests).
    pub fn capture(masker: Masker) -> (Self, Captured) {
        let buf = Captured::default();
        (Self::to_writer(masker, Box::new(buf.clone())), buf)
    }

    /// The masker every line passes through.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// Time since the report was created (the process's start, in practice).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Writes one raw line (masked), without a prefix.
    pub fn line(&self, text: &str) {
        let masked = self.masker.mask(text);
        let mut sink = self.sink.lock().expect("report lock");
        // A closed stderr must not fail the deploy.
        let _ = writeln!(sink, "{masked}");
        let _ = sink.flush();
    }

    /// A progress line for a phase: `[  3.2s] argocd: sync OutOfSync → Synced @ abc1234`.
    pub fn info(&self, phase: Phase, message: impl std::fmt::Display) {
        let secs = self.elapsed().as_secs_f64();
        let about = self
            .subject
            .as_deref()
            .map_or(String::new(), |s| format!("[{s}]"));
        match self.scope {
            Some(scope) if scope != phase => {
                self.enter(scope);
                self.line(&format!("[{secs:6.1}s] {scope}: {phase}{about}: {message}"));
            }
            _ => {
                self.enter(phase);
                self.line(&format!("[{secs:6.1}s] {phase}{about}: {message}"));
            }
        }
    }

    /// A warning for a phase; same shape as [`Report::info`], marked `warning:`.
    pub fn warn(&self, phase: Phase, message: impl std::fmt::Display) {
        self.info(phase, format_args!("warning: {message}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn lines_are_masked_and_prefixed_with_phase() {
        let masker = Masker::new();
        masker.add(&Secret::new("hunter22"));
        let (report, out) = Report::capture(masker);
        report.info(Phase::Publish, "pushed with hunter22");
        let text = out.text();
        assert!(text.ends_with("publish: pushed with ***\n"), "{text}");
        assert!(!text.contains("hunter22"));
    }

    #[test]
    fn workflow_commands_group_each_phase_and_announce_masks_first() {
        let (report, out) = Report::capture(Masker::new());
        let report = report.with_workflow_commands(true);
        report.add_secret(&Secret::new("hunter22"));
        report.info(Phase::Publish, "pushed hunter22");
        report.info(Phase::Publish, "done");
        report.info(Phase::Argocd, "synced");
        report.error_command(Phase::Argocd, "app web: Degraded\nhunter22");
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "::add-mask::hunter22");
        let first_other = lines
            .iter()
            .position(|l| !l.starts_with("::add-mask::"))
            .unwrap();
        assert_eq!(lines[first_other], "::group::gitops-deploy: publish");
        assert!(
            lines[first_other + 1].ends_with("publish: pushed ***"),
            "{text}"
        );
        assert_eq!(lines[first_other + 3], "::endgroup::");
        assert_eq!(lines[first_other + 4], "::group::gitops-deploy: argocd");
        assert_eq!(
            &lines[first_other + 6..],
            [
                "::endgroup::",
                "::error title=gitops-deploy%3A argocd failed::app web: Degraded%0A***"
            ]
        );
        let phases: Vec<Phase> = report
            .phase_durations()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(phases, [Phase::Publish, Phase::Argocd]);
    }

    #[test]
    fn a_scoped_handle_charges_every_line_to_its_phase() {
        let (report, out) = Report::capture(Masker::new());
        report.info(Phase::Publish, "committed a");
        let rollback = report.scoped(Phase::Rollback);
        rollback.info(Phase::Publish, "committed b");
        rollback.info(Phase::Argocd, "Synced");
        rollback.info(Phase::Rollback, "done");
        let text = out.text();
        assert!(
            text.contains("] rollback: publish: committed b\n"),
            "{text}"
        );
        assert!(text.contains("] rollback: argocd: Synced\n"), "{text}");
        assert!(text.contains("] rollback: done\n"), "{text}");
        let phases: Vec<Phase> = report
            .phase_durations()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(phases, [Phase::Publish, Phase::Rollback]);
    }

    #[test]
    fn without_workflow_commands_phases_are_only_timed() {
        let (report, out) = Report::capture(Masker::new());
        report.add_secret(&Secret::new("hunter22"));
        report.info(Phase::Edit, "x");
        report.error_command(Phase::Edit, "boom");
        assert!(!out.text().contains("::"), "{}", out.text());
        assert_eq!(report.phase_durations().len(), 1);
    }
}
