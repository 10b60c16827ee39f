//! `create` (cgcreate): make a group in every hierarchy its controllers live in.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User, chown};

use super::error::CgroupError;
use super::fsio::{mkdir, read_trim, rmdir, write};
use super::host::{Cgroups, Targets};
use super::mounts::Version;
use super::path::GroupPath;

/// Ownership for a group's files, as cgcreate's `-t` (tasks) and `-a` (admin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    pub task: Option<(Uid, Gid)>,
    pub admin: Option<(Uid, Gid)>,
    pub fperm: Option<u32>,
    pub dperm: Option<u32>,
    pub tperm: Option<u32>,
}

fn resolve_uid(name: &str) -> Result<Uid, CgroupError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Uid::from_raw(n));
    }
    User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid)
        .ok_or_else(|| CgroupError::UnknownOwner {
            what: "user",
            name: name.to_string(),
        })
}

fn resolve_gid(name: &str) -> Result<Gid, CgroupError> {
    if let Ok(n) = name.parse::<u32>() {
        return Ok(Gid::from_raw(n));
    }
    Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid)
        .ok_or_else(|| CgroupError::UnknownOwner {
            what: "group",
            name: name.to_string(),
        })
}

/// Parse `UID:GID` (names or numbers; either side may be empty to keep it).
pub fn parse_owner(spec: &str) -> Result<(Uid, Gid), CgroupError> {
    let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
    let uid = if u.is_empty() {
        Uid::current()
    } else {
        resolve_uid(u)?
    };
    let gid = if g.is_empty() {
        Gid::current()
    } else {
        resolve_gid(g)?
    };
    Ok((uid, gid))
}

pub fn owner_from_names(uid: Option<&str>, gid: Option<&str>) -> Result<(Uid, Gid), CgroupError> {
    Ok((
        uid.map(resolve_uid)
            .transpose()?
            .unwrap_or_else(Uid::current),
        gid.map(resolve_gid)
            .transpose()?
            .unwrap_or_else(Gid::current),
    ))
}

/// Directories this process created, so a failed operation can remove exactly
/// those and nothing else.
#[derive(Debug, Default)]
pub struct Created {
    pub dirs: Vec<PathBuf>,
}

impl Created {
    /// Remove what was created, newest first. Returns what was removed.
    pub fn rollback(&mut self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        while let Some(d) = self.dirs.pop() {
            if rmdir(&d).is_ok() {
                tracing::info!(dir = %d.display(), "removed (rolled back)");
                removed.push(d);
            }
        }
        removed
    }
}

const TASK_FILES: &[&str] = &["tasks", "cgroup.procs", "cgroup.threads"];

impl Cgroups {
    /// Create `path` in the hierarchies of `targets`. Existing groups are left as
    /// they are (as cgcreate does); new directories are recorded in `created`.
    pub fn create_in(
        &self,
        targets: &Targets,
        path: &GroupPath,
        own: &Ownership,
        created: &mut Created,
    ) -> Result<(), CgroupError> {
        if path.is_root() {
            return Err(CgroupError::RootForbidden { action: "created" });
        }
        for &h in &targets.hiers {
            let hier = self.hierarchy(h);
            let mut chain = path.ancestors();
            chain.push(path.clone());
            for (n, g) in chain.iter().enumerate() {
                let dir = self.dir(h, g);
                if !g.is_root() && mkdir(&dir)? {
                    tracing::info!(dir = %dir.display(), "created");
                    created.dirs.push(dir.clone());
                    if hier.version == Version::V1 && hier.has("cpuset") {
                        inherit_cpuset(&dir)?;
                    }
                }
                let is_last = n + 1 == chain.len();
                if hier.version == Version::V2 && !is_last {
                    enable_controllers(&dir, &targets.v2_enable)?;
                }
            }
            apply_ownership(&self.dir(h, path), own)?;
        }
        Ok(())
    }
}

/// A new v1 cpuset group starts with no CPUs and no memory nodes and cannot hold
/// a process until both are set; start it with its parent's, as
/// `cgroup.clone_children` would.
fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let mine = read_trim(&dir.join(f)).unwrap_or_default();
        if mine.is_empty() {
            let theirs = read_trim(&parent.join(f))?;
            if !theirs.is_empty() {
                write(&dir.join(f), &theirs)?;
            }
        }
    }
    Ok(())
}

fn enable_controllers(dir: &Path, controllers: &[String]) -> Result<(), CgroupError> {
    if controllers.is_empty() {
        return Ok(());
    }
    let file = dir.join("cgroup.subtree_control");
    let current = read_trim(&file).unwrap_or_default();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !current.split_whitespace().any(|x| x == c.as_str()))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    write(&file, &missing.join(" "))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), CgroupError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| CgroupError::io("chmod", path, e))
}

fn do_chown(path: &Path, (u, g): (Uid, Gid)) -> Result<(), CgroupError> {
    chown(path, Some(u), Some(g)).map_err(|e| CgroupError::io("chown", path, e.into()))
}

fn apply_ownership(dir: &Path, own: &Ownership) -> Result<(), CgroupError> {
    if *own == Ownership::default() {
        return Ok(());
    }
    if let Some(a) = own.admin {
        do_chown(dir, a)?;
    }
    if let Some(m) = own.dperm {
        set_mode(dir, m)?;
    }
    let entries = std::fs::read_dir(dir).map_err(|e| CgroupError::io("listing", dir, e))?;
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_file() {
            continue;
        }
        let name = e.file_name();
        let is_task = TASK_FILES.iter().any(|t| name == *t);
        if is_task {
            if let Some(t) = own.task {
                do_chown(&p, t)?;
            }
            if let Some(m) = own.tperm {
                set_mode(&p, m)?;
            }
        } else {
            if let Some(a) = own.admin {
                do_chown(&p, a)?;
            }
            if let Some(m) = own.fperm {
                set_mode(&p, m)?;
            }
        }
    }
    Ok(())
}
