//! Where Lifeboat's diagnostic log goes: one file per day in the folder the practice names,
//! plain text (no ANSI colour codes), kept for 30 days.
//!
//! This module owns setting the process's log subscriber up once, and a capture helper so
//! tests can read what a piece of work logged (to prove it logged no patient data and no
//! password). It must not be used for the audit trail, which lives in the encrypted cache.
//! What is logged is up to each module, under one rule: usernames and record ids yes;
//! names, NHS numbers, dates of birth, passwords and keys never.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::fmt::MakeWriter;

use crate::error::{AccessError, Result};

/// Keeps the background log writer running; logs written just before it is dropped are
/// flushed then. Hold it for the life of the process.
#[must_use = "dropping the guard stops logging to the file"]
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Sends this process's logs (info and above) to `dir/lifeboat.<date>.log`, rolling daily.
/// Fails if a log subscriber is already set up.
pub fn init(dir: &Path) -> Result<LogGuard> {
    std::fs::create_dir_all(dir).map_err(AccessError::io(dir))?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("lifeboat")
        .filename_suffix("log")
        .max_log_files(30)
        .build(dir)
        .map_err(|e| AccessError::Logging(e.to_string()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_max_level(Level::INFO)
        .try_init()
        .map_err(|e| AccessError::Logging(e.to_string()))?;
    Ok(LogGuard(guard))
}

/// Log output held in memory, at every level, for tests.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A subscriber writing here, for `tracing::subscriber::set_default` where `capture`
    /// does not fit (e.g. around a current-thread async runtime).
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(Level::TRACE)
            .finish()
    }
}

/// Runs `work` with every log event on this thread captured; returns its result and the
/// text logged. Work handed to other threads is not captured: run async code on a
/// current-thread runtime inside `work`.
pub fn capture<R>(work: impl FnOnce() -> R) -> (R, String) {
    let logs = CapturedLogs::default();
    let result = tracing::subscriber::with_default(logs.subscriber(), work);
    (result, logs.text())
}

pub struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CapturedWriter(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_plain_text_to_a_daily_file_once_per_process() {
        let dir = tempfile::tempdir().unwrap();
        let guard = init(dir.path()).unwrap();
        tracing::info!(workstation = "reception-1", "sync finished");
        // The first subscriber stays; a second set-up is refused, not silently ignored.
        assert!(matches!(init(dir.path()), Err(AccessError::Logging(_))));
        drop(guard); // flushes the background writer
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("lifeboat.") && name.ends_with(".log"),
            "{name}"
        );
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("sync finished"), "{text}");
        assert!(!text.contains('\u{1b}'), "no colour codes");
    }

    #[test]
    fn capture_sees_what_was_logged_on_this_thread() {
        let ((), text) = capture(|| tracing::warn!(username = "sam", "login refused"));
        assert!(text.contains("login refused"), "{text}");
        assert!(text.contains("sam"));
        assert!(!text.contains('\u{1b}'), "no colour codes");
    }
}
