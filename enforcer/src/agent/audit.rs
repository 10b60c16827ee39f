//! Events: to tracing, and as JSON lines to an audit file.
//!
//! The audit log records who was denied what, so it is private (0600, or 0640
//! with `[agent] audit_group`), opened without following a symlink, and must be
//! a regular file of root's with no other links in a directory only root can
//! write ([`crate::trust`]): nobody can make the agent append to another file
//! or remove the log. Each line goes out in one `write(2)` with `O_APPEND`, so
//! a killed agent leaves no torn line; a write the disk could take only part
//! of is cut back, and a log found ending in a fragment is mended when opened
//! ([`super::torn`]). While the log cannot be written, kernel events stay in
//! the ring buffer (the caller offers them again) and the agent's own lines
//! are counted as lost. Kernel events carry their
//! kernel time; the last one written is remembered (read back from the file at
//! start), so the one event an agent can be killed between writing and
//! releasing from the ring buffer is not written twice.
//!
//! Rotation: past `audit_max_size` the log is renamed to `.1` (`.1` to `.2`
//! ... up to [`KEEP`]) and a new one opened with the same checks; SIGHUP
//! reopens it, for logrotate's `postrotate`. The last event is looked for in
//! `.1` too when the current file is empty, so a rotation just before a crash
//! does not let an event be written twice.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::error::{AgentError, untrusted};
use super::torn;
use crate::bpf::Event;

/// How much of the end of an existing log is read to find the last event.
const TAIL_BYTES: u64 = 64 * 1024;

/// Rotated files kept: `audit.jsonl.1` (newest) to `audit.jsonl.5`.
pub(super) const KEEP: u32 = 5;

/// `audit_max_size` default.
pub const DEFAULT_AUDIT_MAX_SIZE: u64 = 100 << 20;

#[derive(Debug, Serialize)]
struct AuditLine<'a> {
    /// Seconds since the Unix epoch, with milliseconds.
    time: f64,
    kind: &'a str,
    /// The group's path; null only if the cgroup no longer exists.
    group: Option<&'a str>,
    cgroup_id: u64,
    pid: u32,
    comm: &'a str,
    /// When the kernel saw it (CLOCK_MONOTONIC ns): with kind, group and pid
    /// it identifies the event.
    ktime_ns: u64,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    details: serde_json::Value,
}

/// What identifies a kernel event across agent restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EventId {
    kind: String,
    cgroup_id: u64,
    pid: u64,
    ktime_ns: u64,
}

impl EventId {
    fn of(event: &Event) -> Self {
        EventId {
            kind: event.kind().to_string(),
            cgroup_id: event.cgroup_id(),
            pid: u64::from(event.pid()),
            ktime_ns: event.ktime_ns(),
        }
    }

    fn from_line(line: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Some(EventId {
            kind: v.get("kind")?.as_str()?.to_string(),
            cgroup_id: v.get("cgroup_id")?.as_u64()?,
            pid: v.get("pid")?.as_u64()?,
            ktime_ns: v.get("ktime_ns")?.as_u64()?,
        })
    }
}

pub(super) struct Audit {
    file: Option<(PathBuf, File)>,
    last_event: Option<EventId>,
    group: Option<u32>,
    /// Rotate past this size.
    max_size: u64,
    /// Bytes in the current file.
    size: u64,
    /// Lines of the agent's own (notes, rule and arbiter changes) that could
    /// not be written. Kernel events are not lost this way: they wait in the
    /// ring buffer (see [`record`](Self::record)).
    lines_lost: u64,
    /// Why the last write failed, while writes fail.
    failing: Option<String>,
    /// Where a fragment a failed write left (and could not cut) begins: cut
    /// there before the next write.
    cut_at: Option<u64>,
}

/// What became of a kernel event given to [`Audit::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    Written,
    /// The event last written, met again after a restart: nothing written.
    Duplicate,
    /// The log cannot be written now: keep the event and try again later.
    Failed,
}

/// `path` with `.N` appended.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Opens (creating if needed) the audit log for appending, private to root
/// (and `group`, if given), as every file the agent manages is opened
/// ([`crate::trust`]): in a directory only root can write (made 0750 if
/// missing), never through a symlink or another hard link, a regular file
/// of root's that others cannot write.
fn open_log(path: &Path, group: Option<u32>) -> Result<File, AgentError> {
    let io = |op| {
        move |source| AgentError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    crate::trust::private_parent(path, 0o750).map_err(untrusted("audit log"))?;
    let mode = if group.is_some() { 0o640 } else { 0o600 };
    let file = crate::trust::open_private(
        path,
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(mode),
    )
    .map_err(untrusted("audit log"))?;
    let meta = file.metadata().map_err(io("examining"))?;
    if meta.mode() & 0o7777 != mode {
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(io("restricting the mode of"))?;
    }
    if let Some(gid) = group
        && meta.gid() != gid
    {
        std::os::unix::fs::fchown(&file, None, Some(gid)).map_err(io("changing the group of"))?;
    }
    Ok(file)
}

/// [`open_log`], then a torn last line cut off ([`torn::mend`]): how many
/// bytes, if any.
fn open_mended(path: &Path, group: Option<u32>) -> Result<(File, Option<u64>), AgentError> {
    let mut f = open_log(path, group)?;
    let mended = torn::mend(&mut f).map_err(|source| AgentError::Io {
        op: "mending the torn last line of",
        path: path.to_path_buf(),
        source,
    })?;
    Ok((f, mended))
}

/// The identity of the last kernel event in the log's last `TAIL_BYTES`.
fn last_event_in(file: &mut File) -> Option<EventId> {
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find_map(EventId::from_line)
}

impl Audit {
    pub(super) fn open(
        path: Option<&Path>,
        group: Option<u32>,
        max_size: u64,
    ) -> Result<Self, AgentError> {
        let mut audit = Audit {
            file: None,
            last_event: None,
            group,
            max_size,
            size: 0,
            lines_lost: 0,
            failing: None,
            cut_at: None,
        };
        let Some(p) = path else {
            return Ok(audit);
        };
        let (f, mended) = open_mended(p, group)?;
        audit.file = Some((p.to_path_buf(), f));
        if let Some((_, f)) = &mut audit.file {
            audit.size = f.metadata().map_or(0, |m| m.len());
            audit.last_event = last_event_in(f);
        }
        if audit.size == 0 && rotated(p, 1).exists() {
            // Rotated just before the agent stopped: the last event is at
            // the end of `.1`.
            audit.last_event = open_log(&rotated(p, 1), group)
                .ok()
                .and_then(|mut f| last_event_in(&mut f));
        }
        audit.said_mended(p, mended);
        Ok(audit)
    }

    /// Open the log again at its path (SIGHUP: logrotate moved it away).
    pub(super) fn reopen(&mut self) -> Result<(), AgentError> {
        let Some((path, _)) = &self.file else {
            return Ok(());
        };
        let path = path.clone();
        let (f, mended) = open_mended(&path, self.group)?;
        self.size = f.metadata().map_or(0, |m| m.len());
        self.file = Some((path.clone(), f));
        self.cut_at = None;
        self.said_mended(&path, mended);
        Ok(())
    }

    /// Says (log and audit log) that a torn last line was cut off.
    fn said_mended(&mut self, path: &Path, mended: Option<u64>) {
        if let Some(bytes) = mended {
            let message = format!(
                "{} ended in a torn line ({bytes} bytes of a line never completed); cut off, \
                 so the next line starts whole",
                path.display()
            );
            tracing::warn!("{message}");
            self.note("audit_mended", &message);
        }
    }

    /// Lines of the agent's own that could not be written, so far.
    pub(super) fn lines_lost(&self) -> u64 {
        self.lines_lost
    }

    /// Whether the last write failed (kernel events wait until one works).
    pub(super) fn failing(&self) -> bool {
        self.failing.is_some()
    }

    /// `audit.jsonl` -> `.1` -> ... -> `.KEEP` (the oldest dropped), and a
    /// new, empty log.
    fn rotate(&mut self) -> Result<(), AgentError> {
        let Some((path, _)) = &self.file else {
            return Ok(());
        };
        let path = path.clone();
        let io = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |source| AgentError::Io {
                op,
                path: p,
                source,
            }
        };
        for n in (1..KEEP).rev() {
            let from = rotated(&path, n);
            if std::fs::symlink_metadata(&from).is_ok() {
                std::fs::rename(&from, rotated(&path, n + 1)).map_err(io("rotating", &from))?;
            }
        }
        std::fs::rename(&path, rotated(&path, 1)).map_err(io("rotating", &path))?;
        self.reopen()?;
        tracing::info!(path = %path.display(), "audit log rotated");
        Ok(())
    }

    fn time() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| (d.as_millis() as f64) / 1000.0)
            .unwrap_or(0.0)
    }

    /// One complete line, one `write(2)`. A write that fails takes back
    /// what part of the line got out, so the next line never continues a
    /// fragment; the error is said once until writes work again.
    fn write(&mut self, v: &serde_json::Value) -> Result<(), ()> {
        let Some((path, f)) = &mut self.file else {
            return Ok(());
        };
        let mut line = v.to_string();
        line.push('\n');
        if let Some(at) = self.cut_at
            && torn::cut_to(f, at).is_ok()
        {
            self.cut_at = None;
        }
        // A fragment that could not be cut: end it rather than continue it.
        let text = if self.cut_at.is_some() {
            format!("\n{line}")
        } else {
            line
        };
        match torn::append(f, text.as_bytes()) {
            Ok(()) => {
                self.cut_at = None;
                self.size += text.len() as u64;
                if let Some(why) = self.failing.take() {
                    tracing::warn!(
                        path = %path.display(),
                        lost = self.lines_lost,
                        "the audit log can be written again (it could not: {why})"
                    );
                }
            }
            Err(failed) => {
                self.cut_at = failed.fragment_at;
                if self.failing.is_none() {
                    tracing::error!(
                        path = %path.display(),
                        "could not write the audit log: {}; kernel events wait in the ring \
                         buffer until it can be written (what does not fit is dropped and \
                         counted as events_lost), the agent's own lines are counted in \
                         enforcer_audit_lines_lost_total",
                        failed.error
                    );
                }
                self.failing = Some(failed.error.to_string());
                return Err(());
            }
        }
        if self.size >= self.max_size
            && let Err(e) = self.rotate()
        {
            tracing::error!("could not rotate the audit log: {e}");
        }
        Ok(())
    }

    /// A line of the agent's own: counted when it cannot be written.
    fn write_own(&mut self, v: &serde_json::Value) {
        if self.write(v).is_err() {
            self.lines_lost += 1;
        }
    }

    /// A closed-loop rule fired or was undone.
    pub(super) fn decision(&mut self, d: &crate::enforce::Decision) {
        match &d.result {
            Ok(()) => tracing::warn!(
                group = d.group.as_str(),
                rule = d.rule.as_str(),
                action = d.action.as_str(),
                phase = d.phase,
                "rule"
            ),
            Err(e) => tracing::error!(
                group = d.group.as_str(),
                rule = d.rule.as_str(),
                action = d.action.as_str(),
                phase = d.phase,
                "rule action failed: {e}"
            ),
        }
        let v = serde_json::json!({
            "time": Self::time(),
            "kind": "rule",
            "group": d.group,
            "rule": d.rule,
            "phase": d.phase,
            "action": d.action,
            "value": d.value,
            "ok": d.result.is_ok(),
            "error": d.result.as_ref().err(),
        });
        self.write_own(&v);
    }

    /// A yield or restore of the arbiter: which group, which resource, from
    /// what to what, because of which group's pressure.
    pub(super) fn arbiter(&mut self, c: &crate::control::arbiter::Change) {
        let v = serde_json::json!({
            "time": Self::time(),
            "kind": "arbiter",
            "phase": c.phase.name(),
            "group": c.group,
            "resource": c.resource.name(),
            "to": c.cause,
            "pressure": c.pressure,
            "change": c.detail,
            "ok": c.result.is_ok(),
            "error": c.result.as_ref().err(),
        });
        self.write_own(&v);
    }

    /// Something the agent itself did (reloads, pins restored, lost events).
    pub(super) fn note(&mut self, kind: &str, message: &str) {
        let v = serde_json::json!({ "time": Self::time(), "kind": kind, "message": message });
        self.write_own(&v);
    }

    /// Record one kernel event; `group` is its label (None: the cgroup is
    /// gone). Nothing is written for the event last written, met again
    /// because the agent was killed before it could release it from the ring
    /// buffer ([`Recorded::Duplicate`]). [`Recorded::Failed`]: the log
    /// cannot be written now; the caller keeps the event (in the ring
    /// buffer) and offers it again.
    pub(super) fn record(&mut self, event: &Event, group: Option<&str>) -> Recorded {
        let id = EventId::of(event);
        if self.last_event.as_ref() == Some(&id) {
            return Recorded::Duplicate;
        }
        let line = AuditLine {
            time: Self::time(),
            kind: event.kind(),
            group,
            cgroup_id: event.cgroup_id(),
            pid: event.pid(),
            comm: event.comm(),
            ktime_ns: event.ktime_ns(),
            details: event.details(),
        };
        if let Ok(v) = serde_json::to_value(&line)
            && self.write(&v).is_err()
        {
            return Recorded::Failed;
        }
        // Decisions can come by the thousand (a process retrying a denied
        // connect): the audit log has them all, the log only at debug level.
        // OOM kills are rare and worth a warning.
        if matches!(event, Event::OomKill { .. }) {
            tracing::warn!(
                kind = event.kind(),
                group = group.unwrap_or("(removed)"),
                pid = event.pid(),
                comm = event.comm(),
                "kernel event"
            );
        } else {
            tracing::debug!(
                kind = event.kind(),
                group = group.unwrap_or("(removed)"),
                pid = event.pid(),
                comm = event.comm(),
                details = %event.details(),
                "kernel event"
            );
        }
        self.last_event = Some(id);
        Recorded::Written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oom(ktime_ns: u64) -> Event {
        Event::OomKill {
            pid: 7,
            cgroup_id: 9,
            comm: "x".into(),
            ktime_ns,
        }
    }

    #[test]
    fn private_log_and_no_duplicate_after_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log/audit.jsonl");
        let mut a = Audit::open(Some(&path), None, DEFAULT_AUDIT_MAX_SIZE).unwrap();
        assert_eq!(a.record(&oom(1), Some("g")), Recorded::Written);
        assert_eq!(a.record(&oom(2), Some("g")), Recorded::Written);
        assert_eq!(
            std::fs::metadata(&path).unwrap().mode() & 0o777,
            0o600,
            "private"
        );
        drop(a);
        // A restart meets event 2 again (killed before releasing it): skipped.
        let mut b = Audit::open(Some(&path), None, DEFAULT_AUDIT_MAX_SIZE).unwrap();
        assert_eq!(b.record(&oom(2), Some("g")), Recorded::Duplicate);
        assert_eq!(b.record(&oom(3), Some("g")), Recorded::Written);
        let text = std::fs::read_to_string(&path).unwrap();
        let times: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["ktime_ns"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(times, [1, 2, 3]);
    }

    #[test]
    fn symlinks_hard_links_and_wide_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = tmp.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = Audit::open(Some(&link), None, DEFAULT_AUDIT_MAX_SIZE)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("symlink"), "{err}");
        std::fs::remove_file(&link).unwrap();

        std::fs::hard_link(&target, &link).unwrap();
        let err = Audit::open(Some(&link), None, DEFAULT_AUDIT_MAX_SIZE)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("hard links"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        std::fs::remove_file(&link).unwrap();

        std::fs::write(&link, "").unwrap();
        std::fs::set_permissions(&link, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        Audit::open(Some(&link), None, DEFAULT_AUDIT_MAX_SIZE).unwrap();
        assert_eq!(std::fs::metadata(&link).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn rotates_by_size_keeps_five_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("audit.jsonl");
        let mut a = Audit::open(Some(&path), None, 4096).unwrap();
        for t in 0..400 {
            assert_eq!(a.record(&oom(t), Some("g")), Recorded::Written);
        }
        for n in 1..=KEEP {
            let r = rotated(&path, n);
            assert!(r.exists(), "{} missing", r.display());
            assert_eq!(std::fs::metadata(&r).unwrap().mode() & 0o777, 0o600);
            let text = std::fs::read_to_string(&r).unwrap();
            assert!(
                text.lines()
                    .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
            );
        }
        assert!(!rotated(&path, KEEP + 1).exists());
        // The newest event is in the live file; the rest in order before it.
        let live = std::fs::read_to_string(&path).unwrap();
        assert!(live.lines().last().unwrap().contains("\"ktime_ns\":399"));
        // logrotate moved it away: SIGHUP reopens at the path.
        std::fs::rename(&path, tmp.path().join("moved")).unwrap();
        a.reopen().unwrap();
        assert_eq!(a.record(&oom(1000), Some("g")), Recorded::Written);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        // A restart right after a rotation does not repeat the last event.
        std::fs::rename(&path, rotated(&path, 1)).unwrap();
        let mut b = Audit::open(Some(&path), None, 4096).unwrap();
        assert_eq!(b.record(&oom(1000), Some("g")), Recorded::Duplicate);
    }
}
