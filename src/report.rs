//! Progress and result reporting: the only place that writes user-facing text.
//!
//! Steps never print. They call [`Report`] with what happened (a phase started, a state changed, a
//! retry), and the report renders it: one line per change on stderr for humans, prefixed with the time
//! since start. Every line passes through the [`Masker`] first, so a secret cannot reach the log even
//! when it is part of an upstream error message.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        }
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
        self.line(&format!("[{secs:6.1}s] {phase}: {message}"));
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
}
