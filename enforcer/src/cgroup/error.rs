//! Errors of the cgroup control plane.
//!
//! Every variant a user can cause says what was wrong and what to do instead.
//! `is_user_error` separates those (exit status 2, nothing changed) from failures
//! the kernel reported while acting (exit status 1).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid group path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    #[error("invalid group {spec:?}: {reason}")]
    InvalidSpec { spec: String, reason: String },

    #[error("the root group cannot be {action}; name a group below it")]
    RootForbidden { action: &'static str },

    #[error("unknown controller {name:?}; this host has: {available}")]
    UnknownController { name: String, available: String },

    #[error("unknown key {key:?}: {hint}")]
    UnknownKey { key: String, hint: String },

    #[error("{}", invalid_value(.key, .value, .reason))]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },

    #[error(
        "{key}={value} asks for {what} {missing}, which this host does not have; online {what}s are {online}"
    )]
    OutOfRange {
        key: String,
        value: String,
        what: &'static str,
        missing: String,
        online: String,
    },

    /// `hierarchy` is a hierarchy's label (`memory`, `cpu,cpuacct`, `cgroup2`),
    /// or `any` when the group is in none at all.
    #[error("group {path} does not exist {}", not_found_hint(.path, .hierarchy))]
    NotFound { path: String, hierarchy: String },

    #[error("group {path} has subgroups ({children}); delete with -r to remove them too")]
    HasChildren { path: String, children: String },

    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: i32 },

    #[error("unknown {what} {name:?}: no such entry in the user/group database")]
    UnknownOwner { what: &'static str, name: String },

    #[error("{0}")]
    Usage(String),

    #[error(
        "no cgroup hierarchies are mounted (nothing of type cgroup or cgroup2 in /proc/self/mountinfo)"
    )]
    NoHierarchies,

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("writing {value:?} to {path}: {source}{hint}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
        hint: String,
    },

    #[error("timed out after {secs}s waiting for {path} to become {state}")]
    Timeout {
        path: PathBuf,
        state: &'static str,
        secs: u64,
    },

    #[error("{source}; rolled back: {rolled_back}")]
    RolledBack {
        #[source]
        source: Box<CgroupError>,
        rolled_back: String,
    },
}

/// "invalid value "X" for KEY: REASON", without the value when the reason
/// already quotes it (the value grammars do): a message says each thing once.
fn invalid_value(key: &str, value: &str, reason: &str) -> String {
    if reason.contains(&format!("`{}`", value.trim())) {
        format!("invalid value for {key}: {reason}")
    } else {
        format!("invalid value {value:?} for {key}: {reason}")
    }
}

/// Where the group is missing and a `create` command that makes it there. A
/// label names controllers `-g` accepts; `*` (quoted for the shell) is every one.
fn not_found_hint(path: &str, hierarchy: &str) -> String {
    if hierarchy == "any" {
        format!(
            "in any hierarchy; create it first with `enforcer create -g '*:{path}'` \
             (in every hierarchy) or name the controllers it needs, as in \
             `-g memory,cpu:{path}`"
        )
    } else {
        format!(
            "in the {hierarchy} hierarchy; create it first with \
             `enforcer create -g {hierarchy}:{path}`"
        )
    }
}

impl CgroupError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the input was wrong (exit 2, host untouched); false when the
    /// host refused or failed while we acted (exit 1).
    pub fn is_user_error(&self) -> bool {
        match self {
            CgroupError::Io { .. }
            | CgroupError::Write { .. }
            | CgroupError::Timeout { .. }
            | CgroupError::NoHierarchies => false,
            CgroupError::RolledBack { source, .. } => source.is_user_error(),
            _ => true,
        }
    }
}
