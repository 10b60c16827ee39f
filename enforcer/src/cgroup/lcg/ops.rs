//! Creating, deleting and joining groups as libcgroup 3.x does
//! (`cgroup_create_cgroup`, `cgroup_delete_cgroup_ext`,
//! `cgroup_change_cgroup_path`), with its error codes.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use super::error::{Ecg, LcgError};
use super::fs::{dir_subdirs, set_values};
use super::model::Group;
use super::table::{CgVersion, Table};

/// Ownership and modes for new groups (`cgroup_set_uid_gid`,
/// `cgroup_set_permissions`); None leaves the kernel's (owner: the caller).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Perms {
    pub(crate) tasks_uid: Option<Uid>,
    pub(crate) tasks_gid: Option<Gid>,
    pub(crate) control_uid: Option<Uid>,
    pub(crate) control_gid: Option<Gid>,
    pub(crate) dperm: Option<u32>,
    pub(crate) fperm: Option<u32>,
    pub(crate) tperm: Option<u32>,
}

/// `cg_mkdir_p`: every component, mode 0775, existing ones fine.
fn mkdir_p(path: &Path) -> Result<(), LcgError> {
    let mut cur = PathBuf::new();
    for comp in path.components() {
        cur.push(comp);
        if cur.as_os_str() == "/" {
            continue;
        }
        match std::fs::DirBuilder::new().mode(0o775).create(&cur) {
            Ok(()) => {}
            Err(e) => match e.raw_os_error() {
                Some(libc::EEXIST) => {}
                Some(libc::EPERM) => return Err(LcgError::new(Ecg::NotOwner)),
                Some(libc::EROFS) if cur.exists() => {}
                _ => return Err(LcgError::new(Ecg::NotAllowed)),
            },
        }
    }
    Ok(())
}

/// `cg_chown`: None means the caller's real id.
fn chown(path: &Path, uid: Option<Uid>, gid: Option<Gid>) -> Result<(), LcgError> {
    let uid = uid.unwrap_or_else(Uid::current);
    let gid = gid.unwrap_or_else(Gid::current);
    nix::unistd::chown(path, Some(uid), Some(gid)).map_err(|e| LcgError::errno(e as i32))
}

/// `cg_chmod_path` with the owner's permissions as a umask for group and
/// others (the kernel's owner bits decide what a file can be).
fn chmod_umask(path: &Path, mode: u32) -> Result<(), LcgError> {
    let md = std::fs::metadata(path).map_err(|e| LcgError::os(&e))?;
    let u = md.mode() & 0o700;
    let mask = u | (u >> 3) | (u >> 6) | 0o7000;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & mask))
        .map_err(|e| LcgError::os(&e))
}

/// Every path under `dir` (itself first), as fts visits them.
fn tree(dir: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = vec![(dir.to_path_buf(), true)];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(tree(&p));
            } else {
                out.push((p, false));
            }
        }
    }
    out
}

/// The write side of `_cgroup_create_cgroup` after the directory exists:
/// ownership and modes of everything below it, then the tasks file (v1).
fn own(dir: &Path, version: CgVersion, p: &Perms) -> Result<(), LcgError> {
    let mut last = Ok(());
    for (path, _) in tree(dir) {
        if let Err(e) = chown(&path, p.control_uid, p.control_gid) {
            last = Err(e);
        }
    }
    last?;
    let mut last = Ok(());
    for (path, is_dir) in tree(dir) {
        if path.file_name().is_some_and(|n| n == "tasks") {
            continue;
        }
        let mode = if is_dir { p.dperm } else { p.fperm };
        if let Some(m) = mode
            && let Err(e) = chmod_umask(&path, m)
        {
            last = Err(e);
        }
    }
    last?;
    if version == CgVersion::V1 {
        let tasks = dir.join("tasks");
        chown(&tasks, p.tasks_uid, p.tasks_gid)?;
        if let Some(m) = p.tperm {
            chmod_umask(&tasks, m)?;
        }
    }
    Ok(())
}

/// Whether `controller` is listed in `dir`'s `file` (cgroup v2).
fn listed(dir: &Path, file: &str, controller: &str) -> Result<bool, LcgError> {
    let text = std::fs::read_to_string(dir.join(file)).map_err(|e| LcgError::os(&e))?;
    Ok(text
        .lines()
        .next()
        .unwrap_or("")
        .split(' ')
        .any(|c| c == controller))
}

fn enable(dir: &Path, controller: &str) -> Result<(), LcgError> {
    super::fs::set_control_value(
        &dir.join("cgroup.subtree_control"),
        &format!("+{controller}"),
    )
}

/// `cgroupv2_subtree_control_recursive`: the controller enabled in the
/// root's and every ancestor's `cgroup.subtree_control`, creating ancestors.
fn enable_v2(mount: &Path, parent: &Path, controller: &str) -> Result<(), LcgError> {
    if !listed(mount, "cgroup.subtree_control", controller)? {
        if !listed(mount, "cgroup.controllers", controller)? {
            return Err(LcgError::new(Ecg::NotMounted));
        }
        enable(mount, controller)?;
    }
    let rel = parent.strip_prefix(mount).unwrap_or(Path::new(""));
    // The ancestors below the mount, or the mount itself when there are none.
    let mut dirs = Vec::new();
    let mut cur = mount.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        dirs.push(cur.clone());
    }
    if dirs.is_empty() {
        dirs.push(mount.to_path_buf());
    }
    for dir in dirs {
        mkdir_p(&dir)?;
        if !listed(&dir, "cgroup.subtree_control", controller).unwrap_or(false) {
            enable(&dir, controller)?;
        }
    }
    Ok(())
}

/// `cgroup_create_cgroup(g, 0)`: the group in each of its controllers (or,
/// with none, in the cgroup2 tree), owned and moded as `p` says. On failure
/// the directories are removed again (`cgroup_delete_cgroup(g, 1)`).
pub(crate) fn create(table: &Table, g: &mut Group, p: &Perms) -> Result<(), LcgError> {
    if g.controllers.is_empty() {
        let dir = table.v2_group_dir(&g.name).ok_or(LcgError::errno(0))?;
        mkdir_p(&dir)?;
        return own(&dir, CgVersion::V2, p);
    }
    let name = g.name.clone();
    for i in 0..g.controllers.len() {
        let r = create_one(table, &name, g, i, p);
        if let Err(e) = r {
            let _ = delete(table, g, DeleteFlags::IGNORE_MIGRATION);
            return Err(e);
        }
    }
    Ok(())
}

fn create_one(
    table: &Table,
    name: &str,
    g: &mut Group,
    i: usize,
    p: &Perms,
) -> Result<(), LcgError> {
    let cname = g.controllers[i].name.clone();
    let dir = table.group_dir(name, &cname).ok_or(LcgError::errno(0))?;
    let e = table
        .entry_for(&cname)
        .ok_or(LcgError::new(Ecg::NotExist))?;
    if e.version == CgVersion::V2 {
        let parent = dir.parent().unwrap_or(&e.path).to_path_buf();
        enable_v2(&e.path, &parent, &cname)?;
    }
    mkdir_p(&dir)?;
    own(&dir, e.version, p)?;
    set_values(&dir, &mut g.controllers[i], false)
}

/// `CGFLAG_DELETE_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeleteFlags(u32);

impl DeleteFlags {
    pub(crate) const NONE: DeleteFlags = DeleteFlags(0);
    pub(crate) const IGNORE_MIGRATION: DeleteFlags = DeleteFlags(1);
    pub(crate) const RECURSIVE: DeleteFlags = DeleteFlags(2);

    fn has(self, f: DeleteFlags) -> bool {
        self.0 & f.0 != 0
    }

    pub(crate) fn with(self, f: DeleteFlags) -> DeleteFlags {
        DeleteFlags(self.0 | f.0)
    }
}

/// The file processes are listed in: `tasks` (v1) or `cgroup.procs` (v2).
fn procs_file(dir: &Path, version: CgVersion) -> PathBuf {
    dir.join(match version {
        CgVersion::V1 => "tasks",
        CgVersion::V2 => "cgroup.procs",
    })
}

/// `cg_move_task_files`: one write per id; a process that exited is fine.
fn move_tasks(from: &Path, to: &Path) -> Result<(), LcgError> {
    let Ok(text) = std::fs::read_to_string(from) else {
        return Ok(());
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .open(to)
        .map_err(|e| LcgError::os(&e))?;
    for id in text.split_whitespace() {
        if let Err(e) = out.write_all(id.as_bytes())
            && e.raw_os_error() != Some(libc::ESRCH)
        {
            return Err(LcgError::os(&e));
        }
    }
    Ok(())
}

/// `cg_delete_cgrp_controller`: move the tasks out, then rmdir.
fn delete_dir(
    dir: &Path,
    version: CgVersion,
    target: &Path,
    flags: DeleteFlags,
) -> Result<(), LcgError> {
    if let Err(e) = move_tasks(&procs_file(dir, version), target)
        && !flags.has(DeleteFlags::IGNORE_MIGRATION)
    {
        return Err(e);
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LcgError::os(&e)),
    }
}

/// Directories below `dir`, children before parents (fts post-order).
fn postorder(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dir_subdirs(dir) {
        let p = dir.join(d);
        out.extend(postorder(&p));
        out.push(p);
    }
    out
}

/// `cgroup_delete_cgroup_ext` over the group's controllers (each given
/// controller, unlike libcgroup 3.2's cgdelete, which skips all but the
/// first of `-g a,b:x`). Returns the first error; every controller is tried.
pub(crate) fn delete(table: &Table, g: &Group, flags: DeleteFlags) -> Result<(), LcgError> {
    if g.controllers.iter().any(|c| !table.subsys_mounted(&c.name)) {
        return Err(LcgError::new(Ecg::SubsysNotMounted));
    }
    let mut first: Option<LcgError> = None;
    let mut deleted_shared = false;
    let targets: Vec<(PathBuf, CgVersion, bool)> = if g.controllers.is_empty() {
        match table.v2_group_dir(&g.name) {
            Some(d) => vec![(d, CgVersion::V2, false)],
            None => Vec::new(),
        }
    } else {
        g.controllers
            .iter()
            .filter_map(|c| {
                let e = table.entry_for(&c.name)?;
                let shared = table
                    .entries
                    .iter()
                    .any(|o| o.name != e.name && o.path == e.path);
                Some((table.group_dir(&g.name, &c.name)?, e.version, shared))
            })
            .collect()
    };
    for (dir, version, shared) in targets {
        let child = match std::fs::metadata(&dir) {
            Ok(m) => m,
            Err(e) => {
                if first.is_none() && !(shared && deleted_shared) {
                    first = Some(LcgError::os(&e));
                }
                continue;
            }
        };
        if shared {
            deleted_shared = true;
        }
        let parent_dir = dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.clone());
        let is_root = std::fs::metadata(&parent_dir).map_or(true, |m| m.dev() != child.dev())
            || g.name.trim_matches('/').is_empty();
        let (target_dir, delete_root) = if is_root {
            if !flags.has(DeleteFlags::RECURSIVE) {
                continue;
            }
            (dir.clone(), false)
        } else {
            (parent_dir, true)
        };
        let target = procs_file(&target_dir, version);
        if let Err(e) = std::fs::OpenOptions::new().write(true).open(&target) {
            if first.is_none() {
                first = Some(LcgError::os(&e));
            }
            continue;
        }
        let mut r = Ok(());
        if flags.has(DeleteFlags::RECURSIVE) {
            for d in postorder(&dir) {
                r = delete_dir(&d, version, &target, flags);
                if r.is_err() {
                    break;
                }
            }
        }
        if r.is_ok() && delete_root {
            r = delete_dir(&dir, version, &target, flags);
        }
        if let Err(e) = r
            && first.is_none()
        {
            first = Some(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `cgroup_change_cgroup_path`: `pid` and each of its threads into `dest` in
/// the given controllers (`*`: all; none: the cgroup2 tree).
pub(crate) fn change_path(
    table: &Table,
    dest: &str,
    pid: i32,
    controllers: &[String],
) -> Result<(), LcgError> {
    let mut g = Group::new(dest);
    for c in controllers {
        if c == "*" {
            for e in &table.entries {
                if g.add_controller(table, &e.name).is_none() {
                    return Err(LcgError::new(Ecg::NotAllowed));
                }
            }
            break;
        }
        if g.add_controller(table, c).is_none() {
            return Err(LcgError::new(Ecg::NotAllowed));
        }
    }
    attach(table, &g, pid)?;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task/")).map_err(|e| LcgError::os(&e))?;
    for t in tasks.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if tid != pid {
            attach(table, &g, tid)?;
        }
    }
    Ok(())
}

/// `cgroup_attach_task_pid`: the id written to the group's tasks or
/// cgroup.procs file in each controller.
fn attach(table: &Table, g: &Group, tid: i32) -> Result<(), LcgError> {
    let mut files = Vec::new();
    if g.controllers.is_empty() {
        let dir = table
            .v2_group_dir(&g.name)
            .ok_or(LcgError::new(Ecg::NotExist))?;
        files.push(dir.join("cgroup.procs"));
    }
    for c in &g.controllers {
        let e = table
            .entry_for(&c.name)
            .ok_or(LcgError::new(Ecg::SubsysNotMounted))?;
        let dir = table
            .group_dir(&g.name, &c.name)
            .ok_or(LcgError::errno(0))?;
        if e.version == CgVersion::V2
            && c.name != super::table::CGRP_PSEUDO
            && !g.name.trim_matches('/').is_empty()
        {
            let parent = dir.parent().unwrap_or(&e.path);
            match listed(parent, "cgroup.subtree_control", &c.name) {
                Ok(true) => {}
                Ok(false) => return Err(LcgError::new(Ecg::NotMounted)),
                Err(err) => return Err(err),
            }
        }
        if table.is_mirror(&dir) {
            return Err(LcgError::new(Ecg::NotExist));
        }
        files.push(procs_file(&dir, e.version));
    }
    for f in files {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .map_err(|e| {
                LcgError::new(match e.raw_os_error() {
                    Some(libc::EPERM) => Ecg::NotOwner,
                    Some(libc::ENOENT) => Ecg::NotExist,
                    _ => Ecg::NotAllowed,
                })
            })?;
        file.write_all(tid.to_string().as_bytes())
            .map_err(|e| LcgError::os(&e))?;
    }
    Ok(())
}
