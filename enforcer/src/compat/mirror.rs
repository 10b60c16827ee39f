//! The cgroup2 mirror on hybrid hosts, kept by the compat tools too.
//!
//! eBPF sees a process's cgroup2 group only, so on a hybrid host enforcer
//! mirrors every group into the cgroup2 tree and puts processes there as
//! well (see README, "Layouts and decisions"). libcgroup knows nothing of
//! this: the mirror is an implementation detail that no compat tool prints.
//! Failing to keep it never fails the command, whose libcgroup part already
//! succeeded; the group is then simply not accounted on its own.

use std::path::PathBuf;

use crate::cgroup::Cgroups;

use super::lcg::ops::Perms;

/// The group's mirror directory, if this host mirrors and the name stays
/// inside the tree.
fn mirror_dir(name: &str) -> Option<PathBuf> {
    if super::lcg::table::escapes(name) || name.split('/').any(|c| c == ".") {
        return None;
    }
    let cg = Cgroups::discover().ok()?;
    let m = cg.mirror()?;
    let rel = name.trim_matches('/');
    if rel.is_empty() {
        return None;
    }
    Some(cg.hierarchy(m).mount_point.join(rel))
}

/// Create the mirror of `name` (and its ancestors), owned as the group is.
pub(crate) fn create(name: &str, p: &Perms) {
    let Some(dir) = mirror_dir(name) else { return };
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let own = |path: &std::path::Path, u: Option<nix::unistd::Uid>, g: Option<nix::unistd::Gid>| {
        if u.is_some() || g.is_some() {
            let _ = nix::unistd::chown(path, u, g);
        }
    };
    own(&dir, p.control_uid, p.control_gid);
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let is_procs = e.file_name() == "cgroup.procs" || e.file_name() == "cgroup.threads";
            if is_procs {
                own(&e.path(), p.tasks_uid, p.tasks_gid);
            } else {
                own(&e.path(), p.control_uid, p.control_gid);
            }
        }
    }
}

/// Put `pid` into the mirror of `name`, creating it if needed.
pub(crate) fn place(name: &str, pid: i32) {
    let Some(dir) = mirror_dir(name) else { return };
    if !dir.is_dir() && std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let _ = std::fs::write(dir.join("cgroup.procs"), pid.to_string());
}

/// Remove the mirror of `name` once no v1 hierarchy holds the group,
/// moving what is still inside to the parent (and subgroups first when
/// `recursive`).
pub(crate) fn remove_unused(name: &str, recursive: bool) {
    let Some(dir) = mirror_dir(name) else { return };
    let Ok(cg) = Cgroups::discover() else { return };
    let rel = name.trim_matches('/');
    let still = cg
        .hierarchies()
        .iter()
        .any(|h| h.version == crate::cgroup::Version::V1 && h.mount_point.join(rel).is_dir());
    if still || !dir.is_dir() {
        return;
    }
    fn rm(dir: &std::path::Path, parent: &std::path::Path, recursive: bool) {
        if recursive {
            for d in super::lcg::fs::dir_subdirs(dir) {
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
