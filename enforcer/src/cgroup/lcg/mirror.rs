//! The cgroup2 mirror on hybrid hosts, kept by the compat tools too.
//!
//! eBPF sees a process's cgroup2 group only, so on a hybrid host enforcer
//! mirrors every group into the cgroup2 tree and puts processes there as
//! well (see README, "Layouts and decisions"). libcgroup knows nothing of
//! this: the mirror is an implementation detail that no compat tool prints.
//! Failing to keep it never fails the command, whose libcgroup part already
//! succeeded; the group is then simply not accounted on its own.

use std::path::{Path, PathBuf};

use super::ops::Perms;
use super::{CgVersion, SetupMode, Table};

/// The group's mirror directory, if this host mirrors (hybrid, with a
/// cgroup2 mount) and the name stays inside the tree.
fn mirror_dir(table: &Table, name: &str) -> Option<PathBuf> {
    if table.setup_mode() != SetupMode::Hybrid || name.split('/').any(|c| c == ".." || c == ".") {
        return None;
    }
    let rel = name.trim_matches('/');
    if rel.is_empty() {
        return None;
    }
    Some(table.v2_mount.as_ref()?.join(rel))
}

fn own(path: &Path, u: Option<nix::unistd::Uid>, g: Option<nix::unistd::Gid>) {
    if u.is_some() || g.is_some() {
        let _ = nix::unistd::chown(path, u, g);
    }
}

/// Create the mirror of `name` (and its ancestors), owned as the group is.
pub(crate) fn create(table: &Table, name: &str, p: &Perms) {
    let Some(dir) = mirror_dir(table, name) else {
        return;
    };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    own(&dir, p.control_uid, p.control_gid);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let procs = e.file_name() == "cgroup.procs" || e.file_name() == "cgroup.threads";
            if procs {
                own(&e.path(), p.tasks_uid, p.tasks_gid);
            } else {
                own(&e.path(), p.control_uid, p.control_gid);
            }
        }
    }
}

/// Put `pid` into the mirror of `name`, creating it if needed.
pub(crate) fn place(table: &Table, name: &str, pid: i32) {
    let Some(dir) = mirror_dir(table, name) else {
        return;
    };
    if !dir.is_dir() && std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let _ = std::fs::write(dir.join("cgroup.procs"), pid.to_string());
}

/// Remove the mirror of `name` once no v1 hierarchy holds the group,
/// moving what is still inside to the parent (and subgroups first when
/// `recursive`).
pub(crate) fn remove_unused(table: &Table, name: &str, recursive: bool) {
    let Some(dir) = mirror_dir(table, name) else {
        return;
    };
    let rel = name.trim_matches('/');
    let still = table
        .entries
        .iter()
        .filter(|e| e.version == CgVersion::V1)
        .any(|e| e.path.join(rel).is_dir());
    if still || !dir.is_dir() {
        return;
    }
    fn rm(dir: &Path, parent: &Path, recursive: bool) {
        if recursive {
            for d in super::fs::dir_subdirs(dir) {
                rm(&dir.join(d), parent, recursive);
            }
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in text.split_whitespace() {
                let _ = std::fs::write(parent.join("cgroup.procs"), pid);
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    let parent = dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.clone());
    rm(&dir, &parent, recursive);
}
