//! Where the binary's `tracing` output goes: journald's structured fields when
//! stderr is connected to the journal (a systemd service: `JOURNAL_STREAM`
//! names stderr's device and inode), else stderr, without escape codes
//! unless it is a terminal and NO_COLOR is unset. While a full-screen view
//! (`enforcer top`, the embedded default) owns the terminal, lines are held
//! and written once it is left, so they neither garble the screen nor get lost.

use std::io::{IsTerminal as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Lines held while a full-screen view is up (None: write through).
static HELD: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// Whether stderr goes to the journal (systemd sets `JOURNAL_STREAM=dev:ino`
/// for a service whose output it collects).
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let v = v.to_string_lossy();
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse::<u64>().ok() == Some(meta.dev()) && ino.parse::<u64>().ok() == Some(meta.ino())
}

/// Colour only for a person at a terminal (https://no-color.org).
pub fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut held) = HELD.lock()
            && let Some(h) = held.as_mut()
        {
            h.extend_from_slice(buf);
            return Ok(buf.len());
        }
        // A closed stderr must not turn logging into a failure.
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hold log lines until [`release`] (a full-screen view is up).
pub fn hold() {
    if let Ok(mut h) = HELD.lock() {
        h.get_or_insert_with(Vec::new);
    }
}

/// Write the held lines to stderr and write through again.
pub fn release() {
    let held = HELD.lock().ok().and_then(|mut h| h.take());
    if let Some(buf) = held {
        let _ = std::io::stderr().write_all(&buf);
    }
}

/// Sets up `tracing` for the binary; `ENFORCER_LOG` is the filter (default
/// `warn`).
pub fn init() {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("ENFORCER_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    if stderr_is_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        // Fields as README lists them (`GROUP=`, `KIND=`, ...): without the
        // `F_` prefix tracing-journald puts by default. None of ours is a
        // journald name of its own (MESSAGE, PRIORITY, CODE_*, or `_`-led).
        let journald = journald
            .with_syslog_identifier("enforcer".into())
            .with_field_prefix(None);
        if tracing_subscriber::registry()
            .with(filter())
            .with(journald)
            .try_init()
            .is_ok()
        {
            return;
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(|| Stderr)
        .with_ansi(colour(std::io::stderr().is_terminal()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        // SAFETY: tests in this module do not read the environment concurrently.
        unsafe { std::env::set_var("JOURNAL_STREAM", "1:2") };
        assert!(!stderr_is_journal());
        let m = std::fs::metadata("/proc/self/fd/2").unwrap();
        unsafe { std::env::set_var("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino())) };
        assert!(stderr_is_journal());
        unsafe { std::env::remove_var("JOURNAL_STREAM") };
        assert!(!stderr_is_journal());
    }
}
