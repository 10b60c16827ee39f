//! Where the counting programs are attached, so that each packet and each
//! connect/bind is counted once.
//!
//! A cgroup program runs for the cgroup it is attached to and for all its
//! descendants, and the counting programs charge what they see to the
//! socket's or task's own cgroup, wherever they are attached. So one
//! attachment at a cgroup counts its whole subtree, and a second one above or
//! below it counts the same packets again (observe mode at the cgroup2 root
//! beside policy groups; nested policy groups). The rule: attach only at the
//! topmost of the wanted cgroups (an antichain: none below another), which
//! covers exactly their union, and take the counting links off every other
//! cgroup, including links an earlier run pinned and this one adopted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::BpfError;
use super::kernel::Kernel;
use super::layout::links_dir;
use super::object::open_cgroup2_dir;
use super::pins::group_links_dir;

/// What [`Kernel::count_at`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountingLinks {
    /// The cgroup2 directories the counting programs are attached to now.
    pub at: Vec<PathBuf>,
    /// Links newly attached (the others were in place already).
    pub attached: usize,
    /// Links taken off cgroups no longer wanted, or covered by an ancestor.
    pub detached: usize,
}

/// The topmost of `dirs` (cgroup2 directories): those with no other of them
/// above them, once each, in order.
pub fn attach_points(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let set: BTreeSet<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    set.iter()
        .filter(|d| !d.ancestors().skip(1).any(|up| set.contains(up)))
        .map(|d| d.to_path_buf())
        .collect()
}

impl Kernel {
    /// Makes the counting programs attached at exactly the topmost of `dirs`
    /// ([`attach_points`]): attaches (or adopts) the six links at each, then
    /// detaches the counting links pinned for any other cgroup. New links go
    /// on before old ones come off, so a move (observe mode switched on, a
    /// policy group's parent added) loses no packet; one in flight in the
    /// microseconds between may be counted twice.
    pub fn count_at(&mut self, dirs: &[PathBuf]) -> Result<CountingLinks, BpfError> {
        let at = attach_points(dirs);
        let mut keep = BTreeSet::new();
        let mut attached = 0;
        for dir in &at {
            let (_, id) = open_cgroup2_dir(dir)?;
            attached += self.attach_group(dir)?;
            keep.insert(id);
        }
        let mut detached = 0;
        for id in self.counted_ids()? {
            if !keep.contains(&id) {
                detached += self.unpin_and_release(&group_links_dir(&self.pin_dir, id))?;
            }
        }
        Ok(CountingLinks {
            at,
            attached,
            detached,
        })
    }

    /// cgroup ids with a directory of counting links under the pins.
    fn counted_ids(&self) -> Result<Vec<u64>, BpfError> {
        let dir = links_dir(&self.pin_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(BpfError::PinDir {
                    op: "listing",
                    path: dir,
                    source,
                });
            }
        };
        Ok(entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn the_root_covers_everything() {
        let r = "/sys/fs/cgroup";
        assert_eq!(
            attach_points(&paths(&["/sys/fs/cgroup/web", r, "/sys/fs/cgroup/web/api"])),
            paths(&[r])
        );
    }

    #[test]
    fn nested_groups_keep_the_topmost_and_siblings_stay() {
        assert_eq!(
            attach_points(&paths(&[
                "/cg/a/b/c",
                "/cg/a/b",
                "/cg/ab",
                "/cg/a/x",
                "/cg/d",
                "/cg/d",
            ])),
            paths(&["/cg/a/b", "/cg/a/x", "/cg/ab", "/cg/d"])
        );
    }

    #[test]
    fn nothing_wanted_nothing_attached() {
        assert!(attach_points(&[]).is_empty());
    }
}
