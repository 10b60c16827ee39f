//! What the arbiter has changed, kept on disk while anything is yielded
//! (`<pid file>.arbiter.json`, root's, 0600, replaced whole on every change).
//!
//! It is how a restarted agent puts things back after a crash before it acts
//! again ([`recover`]), and what `enforcer stats` reads to say who yields to
//! whom ([`Record::lines`]). A file is put back only while it still holds
//! what the arbiter wrote: a value someone changed since is theirs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Host, Knob};
use crate::cgroup::GroupPath;
use crate::plan::Direction;

/// Everything yielded now, per group label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub groups: BTreeMap<String, GroupRecord>,
}

/// One yielding group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// Its cgroup2 id (what the kernel's yield rate is keyed by).
    pub cgroup_id: u64,
    /// Per resource name (`cpu`, `memory`, `io`, `egress`, `ingress`).
    pub yields: BTreeMap<String, YieldRecord>,
}

/// One resource a group yields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct YieldRecord {
    /// The group it yields to (whose pressure made it yield).
    pub to: String,
    /// Steps taken.
    pub steps: u32,
    /// What it is held to, for people: `cpu.max 25%`, `egress 20Mbit`.
    pub now: String,
    /// Files changed: what they held before and what the arbiter wrote.
    pub files: Vec<FileChange>,
    /// The rate the kernel holds the group to (`egress`, `ingress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
}

/// One control file the arbiter wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    pub path: PathBuf,
    /// Its text before the first step.
    pub original: String,
    /// Its text after the arbiter's last write (as the kernel reads it back).
    pub set: String,
}

impl Record {
    /// Where the agent of `pid_file` keeps it.
    pub fn path(pid_file: &Path) -> PathBuf {
        pid_file.with_extension("arbiter.json")
    }

    /// The record at `path`; `None` if there is none (nothing yielded), or
    /// it cannot be trusted or read (see [`read_trusted`](Self::read_trusted)).
    pub fn read(path: &Path) -> Option<Record> {
        Self::read_trusted(path).ok().flatten()
    }

    /// The record at `path`, if it is root's alone ([`crate::trust::read_private`]:
    /// no symlink, one link, not writable by others): a restarted agent writes
    /// back what it says, as root. `Ok(None)`: no record; a record that does
    /// not parse is an error too.
    pub fn read_trusted(path: &Path) -> Result<Option<Record>, String> {
        let Some(bytes) = crate::trust::read_private(path).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not an arbiter record: {e}", path.display()))
    }

    /// Replaces the file with this record (removes it when nothing yields),
    /// never through a symlink, so a reader sees the old record or the new.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if self.groups.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::trust::write_private(path, &bytes)
    }

    /// One line per yielding group: `batch yielding to web: cpu.max 25%,
    /// egress 20Mbit`.
    pub fn lines(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter_map(|(group, g)| Some((group, g.line()?)))
            .map(|(group, line)| format!("{group} {line}"))
            .collect()
    }
}

impl GroupRecord {
    /// `yielding to web: cpu.max 25%, egress 20Mbit` (two causes: `yielding to
    /// web: cpu.max 25%; to db: io.weight 25`).
    pub fn line(&self) -> Option<String> {
        let mut by_cause: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for y in self.yields.values() {
            by_cause.entry(&y.to).or_default().push(&y.now);
        }
        let parts: Vec<String> = by_cause
            .iter()
            .map(|(to, nows)| format!("to {to}: {}", nows.join(", ")))
            .collect();
        (!parts.is_empty()).then(|| format!("yielding {}", parts.join("; ")))
    }
}

/// Puts back what a record says the arbiter changed: every file that still
/// holds what it wrote gets its original text, and every yield rate is
/// lifted. Returns one line per action, for the log and the audit log.
///
/// Only for groups `managed` says this agent manages, and only files that
/// are the group's own control files for the resource (the path the host
/// would write for it now): the record names paths, and nothing read from a
/// file chooses what root writes without that check.
pub fn recover(
    record: &Record,
    host: &mut dyn Host,
    managed: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for (group, g) in &record.groups {
        let path = match GroupPath::parse(group) {
            Ok(p) if managed(group) => p,
            _ => {
                out.push(format!(
                    "{group}: not a group of this agent's policy; what the record says of it \
                     is left alone"
                ));
                continue;
            }
        };
        for (resource, y) in &g.yields {
            let controls = control_files(host, &path, resource);
            for f in y.files.iter().filter(|f| f.set != f.original) {
                if controls.contains(&f.path) {
                    out.push(put_back(host, group, f).0);
                } else {
                    out.push(format!(
                        "{group}: {} is not a control file of the group's {resource}; \
                         left alone",
                        f.path.display()
                    ));
                }
            }
            if y.rate.is_some() {
                let dir = if resource == "ingress" {
                    Direction::Ingress
                } else {
                    Direction::Egress
                };
                out.push(match host.set_yield_rate(g.cgroup_id, dir, None) {
                    Ok(()) => format!("{group}: lifted the {resource} rate the arbiter had set"),
                    Err(e) => format!("{group}: could not lift the {resource} rate: {e}"),
                });
            }
        }
    }
    out
}

/// The files the arbiter writes for `resource` of `group` on this host.
fn control_files(host: &mut dyn Host, group: &GroupPath, resource: &str) -> Vec<PathBuf> {
    let knobs: &[Knob] = match resource {
        "cpu" => &[Knob::CpuMax, Knob::CpuWeight],
        "memory" => &[Knob::MemoryHigh],
        "io" => &[Knob::IoWeight],
        _ => &[],
    };
    knobs
        .iter()
        .filter_map(|k| host.get(group, *k).ok())
        .map(|s| s.path)
        .collect()
}

/// Writes `f.original` back if the file still holds `f.set`; says what it
/// did (`group: file from -> to`), and whether that failed.
pub(super) fn put_back(host: &mut dyn Host, group: &str, f: &FileChange) -> (String, bool) {
    let name = f.path.file_name().map_or_else(
        || f.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    match host.read_file(&f.path) {
        Ok(now) if now.trim() == f.set.trim() => match host.write_file(&f.path, &f.original) {
            Ok(()) => (format!("{group}: {name} {} -> {}", f.set, f.original), true),
            Err(e) => (
                format!("{group}: could not restore {name} to {}: {e}", f.original),
                false,
            ),
        },
        Ok(now) => (
            format!(
                "{group}: {name} holds {} since the arbiter set {}: someone else changed it, \
                 left as is",
                now.trim(),
                f.set
            ),
            true,
        ),
        Err(e) => (
            format!(
                "{group}: {} is gone ({e}): nothing to restore",
                f.path.display()
            ),
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let y = |to: &str, now: &str| YieldRecord {
            to: to.into(),
            steps: 1,
            now: now.into(),
            files: Vec::new(),
            rate: None,
        };
        Record {
            groups: BTreeMap::from([(
                "batch".to_string(),
                GroupRecord {
                    cgroup_id: 7,
                    yields: BTreeMap::from([
                        ("cpu".to_string(), y("web", "cpu.max 25%")),
                        ("egress".to_string(), y("web", "egress 20Mbit")),
                        ("io".to_string(), y("db", "io.weight 25")),
                    ]),
                },
            )]),
        }
    }

    #[test]
    fn one_line_per_group_by_cause() {
        assert_eq!(
            record().lines(),
            ["batch yielding to db: io.weight 25; to web: cpu.max 25%, egress 20Mbit"]
        );
        assert!(Record::default().lines().is_empty());
    }

    #[test]
    fn saved_privately_and_removed_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = Record::path(&dir.path().join("agent.pid"));
        assert_eq!(path.file_name().unwrap(), "agent.arbiter.json");
        record().save(&path).unwrap();
        assert_eq!(Record::read(&path), Some(record()));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        Record::default().save(&path).unwrap();
        assert!(!path.exists());
        Record::default().save(&path).unwrap();
    }
}
