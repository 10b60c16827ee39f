//! Events: to tracing, and as JSON lines to an audit file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::error::AgentError;
use crate::bpf::Event;

#[derive(Debug, Serialize)]
struct AuditLine<'a> {
    /// Seconds since the Unix epoch, with milliseconds.
    time: f64,
    kind: &'a str,
    group: &'a str,
    cgroup_id: u64,
    pid: u32,
    comm: &'a str,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    details: serde_json::Value,
}

pub(super) struct Audit {
    file: Option<(PathBuf, std::fs::File)>,
}

impl Audit {
    pub(super) fn open(path: Option<&Path>) -> Result<Self, AgentError> {
        let file = match path {
            None => None,
            Some(p) => {
                if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| AgentError::Io {
                        op: "creating",
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| AgentError::Io {
                        op: "opening",
                        path: p.to_path_buf(),
                        source,
                    })?;
                Some((p.to_path_buf(), f))
            }
        };
        Ok(Audit { file })
    }

    fn time() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| (d.as_millis() as f64) / 1000.0)
            .unwrap_or(0.0)
    }

    fn write(&mut self, v: &serde_json::Value) {
        if let Some((path, f)) = &mut self.file
            && writeln!(f, "{v}").is_err()
        {
            tracing::error!(path = %path.display(), "could not write the audit log");
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
        self.write(&v);
    }

    /// Something the agent itself did (reloads).
    pub(super) fn note(&mut self, kind: &str, message: &str) {
        let v = serde_json::json!({ "time": Self::time(), "kind": kind, "message": message });
        self.write(&v);
    }

    /// Record one event; `group` is its label if the cgroup is known.
    pub(super) fn record(&mut self, event: &Event, group: &str) {
        let time = Self::time();
        tracing::warn!(
            kind = event.kind(),
            group,
            pid = event.pid(),
            comm = event.comm(),
            details = %event.details(),
            "kernel event"
        );
        let line = AuditLine {
            time,
            kind: event.kind(),
            group,
            cgroup_id: event.cgroup_id(),
            pid: event.pid(),
            comm: event.comm(),
            details: event.details(),
        };
        if let Ok(v) = serde_json::to_value(&line) {
            self.write(&v);
        }
    }
}
