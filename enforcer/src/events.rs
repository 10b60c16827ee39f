//! `enforcer events`: the agent's decision and OOM events, read from its audit
//! log (JSON lines), optionally followed as they are written, across
//! rotations (`audit.jsonl` renamed to `.1` and a new one opened) and
//! truncation.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Seek as _, SeekFrom};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(
        "{path}: no audit log here (the agent writes one when it runs; choose another with --audit-log)"
    )]
    Missing { path: PathBuf },
    #[error(
        "permission denied: reading the audit log {path} needs root, or membership of its \
         group (the agent's --audit-group / [agent] audit_group); run it as root (e.g. with sudo)"
    )]
    Denied { path: PathBuf },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Which events to print: all, or those of some groups and their subgroups.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub groups: Vec<String>,
}

impl Filter {
    /// Kernel events, rule decisions and the agent's notes (those have no
    /// group: shown only when no group is asked for).
    pub fn wants(&self, v: &serde_json::Value) -> bool {
        if self.groups.is_empty() {
            return true;
        }
        let Some(g) = v.get("group").and_then(|g| g.as_str()) else {
            return false;
        };
        self.groups
            .iter()
            .any(|w| w == "/" || g == w || g.starts_with(&format!("{w}/")))
    }
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix seconds as `2026-12-01T10:51:05.123Z`.
pub fn utc(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    let (s, ms) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (y, mo, d) = civil(s.div_euclid(86_400));
    let t = s.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// One event as a line for people.
pub fn human(v: &serde_json::Value) -> String {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
    let time = v
        .get("time")
        .and_then(|t| t.as_f64())
        .map(utc)
        .unwrap_or_default();
    let kind = s("kind");
    let mut out = format!("{time}  {kind:<16}");
    if let Some(g) = v.get("group") {
        out.push_str(&format!("  {}", g.as_str().unwrap_or("(removed)")));
    }
    if let Some(pid) = v.get("pid").and_then(|p| p.as_u64()) {
        out.push_str(&format!("  pid {pid} ({})", s("comm")));
    }
    match kind {
        "rule" => out.push_str(&format!(
            "  {} {} {}{}",
            s("rule"),
            s("phase"),
            s("action"),
            if v.get("ok").and_then(|o| o.as_bool()) == Some(false) {
                format!(" FAILED: {}", s("error"))
            } else {
                String::new()
            }
        )),
        _ => {
            if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
                out.push_str(&format!("  {m}"));
            }
            if let Some(d) = v.get("details").filter(|d| !d.is_null()) {
                out.push_str(&format!("  {d}"));
            }
        }
    }
    // One line: every field (group, comm, rule, message) escaped.
    crate::escape::human(&out).into_owned()
}

/// Reads the audit log line by line, following it if asked.
pub struct Reader {
    path: PathBuf,
    file: BufReader<File>,
    ino: u64,
    offset: u64,
    partial: String,
}

fn open(path: &Path) -> Result<File, EventsError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => EventsError::Missing {
                path: path.to_path_buf(),
            },
            std::io::ErrorKind::PermissionDenied => EventsError::Denied {
                path: path.to_path_buf(),
            },
            _ => EventsError::Io {
                op: "opening",
                path: path.to_path_buf(),
                source,
            },
        })
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, EventsError> {
        let file = open(path)?;
        let ino = file.metadata().map_or(0, |m| m.ino());
        Ok(Reader {
            path: path.to_path_buf(),
            file: BufReader::new(file),
            ino,
            offset: 0,
            partial: String::new(),
        })
    }

    /// Starts at the last `n` lines instead of the beginning.
    pub fn tail(&mut self, n: usize) -> Result<(), EventsError> {
        let mut ends = std::collections::VecDeque::with_capacity(n + 1);
        let mut pos = 0u64;
        let mut line = String::new();
        loop {
            line.clear();
            let read = self
                .file
                .read_line(&mut line)
                .map_err(|e| self.io("reading", e))?;
            if read == 0 || !line.ends_with('\n') {
                break;
            }
            ends.push_back(pos);
            if ends.len() > n {
                ends.pop_front();
            }
            pos += read as u64;
        }
        let start = ends.front().copied().unwrap_or(pos);
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|e| self.io("reading", e))?;
        self.offset = start;
        Ok(())
    }

    fn io(&self, op: &'static str, source: std::io::Error) -> EventsError {
        EventsError::Io {
            op,
            path: self.path.clone(),
            source,
        }
    }

    /// The next complete line now written, if any.
    fn next_line(&mut self) -> Result<Option<String>, EventsError> {
        let mut buf = String::new();
        let n = self
            .file
            .read_line(&mut buf)
            .map_err(|e| self.io("reading", e))?;
        self.offset += n as u64;
        self.partial.push_str(&buf);
        if self.partial.ends_with('\n') {
            let line = std::mem::take(&mut self.partial);
            return Ok(Some(line.trim_end().to_string()));
        }
        Ok(None)
    }

    /// What happened to the path since it was opened.
    fn changed(&self) -> Change {
        match std::fs::symlink_metadata(&self.path) {
            // Mid-rotation: look again later.
            Err(_) => Change::None,
            Ok(m) if m.ino() != self.ino => Change::Rotated,
            Ok(m) if m.len() < self.offset => Change::Truncated,
            Ok(_) => Change::None,
        }
    }

    /// Calls `f` with every event line (parsed) until the end, or, with
    /// `follow`, for ever (until `f` returns an error, such as a closed
    /// stdout). Lines that are not JSON are skipped.
    pub fn run<E: From<EventsError>>(
        &mut self,
        follow: bool,
        mut f: impl FnMut(&serde_json::Value) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            while let Some(line) = self.next_line()? {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    f(&v)?;
                }
            }
            if !follow {
                return Ok(());
            }
            match self.changed() {
                Change::None => std::thread::sleep(Duration::from_millis(200)),
                Change::Rotated => {
                    // What was written before the rename is read first.
                    while let Some(line) = self.next_line()? {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                            f(&v)?;
                        }
                    }
                    *self = Reader::open(&self.path)?;
                }
                Change::Truncated => {
                    self.file
                        .seek(SeekFrom::Start(0))
                        .map_err(|e| self.io("reading", e))?;
                    self.offset = 0;
                    self.partial.clear();
                }
            }
        }
    }
}

enum Change {
    None,
    Rotated,
    Truncated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_utc() {
        assert_eq!(utc(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(1_796_118_665.5), "2026-12-01T09:51:05.500Z");
        assert_eq!(utc(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn reads_tails_filters_and_follows_a_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("audit.jsonl");
        let line = |g: &str, t: u64| {
            format!(
                "{{\"time\":1.0,\"kind\":\"oom_kill\",\"group\":\"{g}\",\"pid\":{t},\"comm\":\"x\"}}\n"
            )
        };
        std::fs::write(
            &p,
            [line("web", 1), line("web/api", 2), line("db", 3)].concat(),
        )
        .unwrap();
        let f = Filter {
            groups: vec!["web".into()],
        };
        let mut seen = Vec::new();
        let mut r = Reader::open(&p).unwrap();
        r.run::<EventsError>(false, |v| {
            if f.wants(v) {
                seen.push(v["pid"].as_u64().unwrap());
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [1, 2]);
        let mut r = Reader::open(&p).unwrap();
        r.tail(1).unwrap();
        let mut last = Vec::new();
        r.run::<EventsError>(false, |v| {
            last.push(v["pid"].as_u64().unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(last, [3]);
        // Following: a rotation moves the file away and starts a new one.
        let path = p.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::rename(&path, path.with_extension("jsonl.1")).unwrap();
            std::fs::write(&path, line("web", 4)).unwrap();
        });
        let mut r = Reader::open(&p).unwrap();
        let mut got = Vec::new();
        #[derive(Debug)]
        struct Done;
        impl From<EventsError> for Done {
            fn from(_: EventsError) -> Self {
                Done
            }
        }
        let _ = r.run::<Done>(true, |v| {
            got.push(v["pid"].as_u64().unwrap());
            if got.len() == 4 { Err(Done) } else { Ok(()) }
        });
        writer.join().unwrap();
        assert_eq!(got, [1, 2, 3, 4]);
        assert!(
            human(&serde_json::from_str(line("db", 9).trim()).unwrap()).contains("db  pid 9 (x)")
        );
    }
}
