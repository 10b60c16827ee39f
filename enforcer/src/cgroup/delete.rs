//! `delete` (cgdelete): remove a group from every hierarchy named, and from the
//! cgroup2 mirror once no v1 hierarchy holds it any more.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::CgroupError;
use super::fsio::{procs, rmdir, subdirs, write};
use super::host::Cgroups;
use super::mounts::Version;
use super::path::{GroupPath, GroupSpec};

impl Cgroups {
    /// Validate the whole request, then remove. Processes still in a removed group
    /// move to the deleted group's parent, as libcgroup does.
    pub fn delete(
        &self,
        specs: &[GroupSpec],
        recursive: bool,
    ) -> Result<Vec<PathBuf>, CgroupError> {
        let mut todo: BTreeSet<(usize, GroupPath)> = BTreeSet::new();
        for spec in specs {
            if spec.path.is_root() {
                return Err(CgroupError::RootForbidden { action: "deleted" });
            }
            let targets = self.targets(&spec.controllers)?;
            for &h in &targets.hiers {
                if self.only_mirror(h, &spec.controllers) {
                    continue;
                }
                if !self.exists(h, &spec.path) {
                    return Err(CgroupError::NotFound {
                        path: spec.path.to_string(),
                        hierarchy: self.hierarchy(h).label(),
                    });
                }
                todo.insert((h, spec.path.clone()));
            }
        }
        // The mirror goes when no v1 hierarchy will hold the group any more.
        if let Some(m) = self.mirror() {
            let paths: BTreeSet<GroupPath> = todo.iter().map(|(_, p)| p.clone()).collect();
            for p in paths {
                let stays = (0..self.hierarchies().len()).any(|h| {
                    h != m
                        && self.hierarchy(h).version == Version::V1
                        && self.exists(h, &p)
                        && !todo.contains(&(h, p.clone()))
                });
                if !stays && self.exists(m, &p) {
                    todo.insert((m, p));
                }
            }
        }
        if !recursive {
            for (h, p) in &todo {
                let dir = self.dir(*h, p);
                // A directory's link count is 2 plus its subdirectories (kernfs
                // keeps it, as tmpfs does): one stat instead of a listing.
                let nlink = std::fs::metadata(&dir)
                    .map_err(|e| CgroupError::io("reading", &dir, e))?
                    .nlink();
                if nlink > 2 {
                    let children = subdirs(&dir)?;
                    return Err(CgroupError::HasChildren {
                        path: p.to_string(),
                        children: children.join(", "),
                    });
                }
            }
        }
        let mut removed = Vec::new();
        for (h, p) in &todo {
            let dir = self.dir(*h, p);
            let dest = p
                .parent()
                .map(|pp| self.dir(*h, &pp))
                .unwrap_or_else(|| dir.clone());
            let root = self.dir(*h, &GroupPath::parse("/")?);
            remove_tree(&dir, &dest, &root, recursive, &mut removed)?;
        }
        Ok(removed)
    }
}

/// Remove subgroups first (when recursive), then the group. Processes are moved
/// out only when the kernel says the group is busy, so the common case of an
/// empty group costs one rmdir.
fn remove_tree(
    dir: &Path,
    dest: &Path,
    root: &Path,
    recursive: bool,
    removed: &mut Vec<PathBuf>,
) -> Result<(), CgroupError> {
    if recursive {
        for child in subdirs(dir)? {
            remove_tree(&dir.join(child), dest, root, recursive, removed)?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => {
            tracing::info!(dir = %dir.display(), "removed");
            removed.push(dir.to_path_buf());
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => return Err(CgroupError::io("removing", dir, e)),
    }
    for pid in procs(dir).unwrap_or_default() {
        // v2 refuses processes in a parent that delegates controllers; the root
        // always takes them. A process that exited meanwhile is fine.
        let moved = write(&dest.join("cgroup.procs"), &pid.to_string())
            .or_else(|_| write(&root.join("cgroup.procs"), &pid.to_string()));
        if let Err(e) = moved
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            return Err(e);
        }
    }
    rmdir(dir)?;
    tracing::info!(dir = %dir.display(), "removed");
    removed.push(dir.to_path_buf());
    Ok(())
}
