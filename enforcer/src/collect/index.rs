//! cgroup2 id -> group path.
//!
//! A cgroup2 id is the inode number of the group's directory, and the
//! kernel opens a cgroup2 directory by its id as a file handle
//! (`open_by_handle_at`, what `name_to_handle_at` gives for it): so an id a
//! map holds is named, or found gone, with one system call, whatever the
//! size of the tree. The tree is walked once at the start (and again only
//! where handles do not work), not each time a new id appears: at 65,000
//! groups a walk took longer than a collection interval.
//!
//! Groups deleted while the agent runs are normally reported by the kernel
//! (`cgroup_rmdir`); a ring buffer that overflowed loses some of those
//! reports, so [`CgroupIndex::sweep`] checks the known ids a bounded number
//! at a time and finds the rest.

use std::collections::HashMap;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The label of a group: its path below the cgroup2 root without the leading
/// slash (`web/api`), or `/` for the root itself; bytes of a name that are
/// not UTF-8 as `\xNN` ([`crate::escape::name`]).
pub type GroupLabel = String;

#[derive(Debug, Clone)]
pub struct CgroupIndex {
    root: PathBuf,
    by_id: HashMap<u64, GroupLabel>,
    /// The root directory, for opening groups by handle; None where that
    /// does not work (the tree is walked instead).
    mount: Option<Arc<OwnedFd>>,
    /// Known ids still to check in the current sweep.
    to_sweep: Vec<u64>,
}

/// What opening a group by its id said.
enum ByHandle {
    Found(GroupLabel),
    Gone,
    /// Handles do not work here (or the answer was unclear): walk.
    Unknown,
}

/// `FILEID_KERNFS`: the handle type of a kernfs (cgroup2) node, an id.
const FILEID_KERNFS: i32 = 0xfe;

/// Time one [`CgroupIndex::resolve`] may spend naming new groups by handle:
/// a handle the kernel has no cached entry for costs a read of its parent
/// directory (some 7 ms with 70,000 siblings, 10 us cached), so a tree
/// full of new groups is named over several collections, not in one.
pub(crate) const LEARN_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);

impl CgroupIndex {
    pub fn new(cgroup2_root: &Path) -> Self {
        let mount = std::fs::File::open(cgroup2_root)
            .ok()
            .map(|f| Arc::new(OwnedFd::from(f)));
        let mut idx = CgroupIndex {
            root: cgroup2_root.to_path_buf(),
            by_id: HashMap::new(),
            mount,
            to_sweep: Vec::new(),
        };
        idx.refresh();
        if let Ok(m) = std::fs::metadata(cgroup2_root)
            && !matches!(idx.by_handle(m.ino()), ByHandle::Found(_))
        {
            // Not a cgroup2 mount (a test's directory), or no handles: walk.
            idx.mount = None;
        }
        idx
    }

    /// `id`'s group opened by its handle (an `O_PATH` fd), or why not.
    fn open(&self, id: u64) -> Result<OwnedFd, ByHandle> {
        let Some(mount) = &self.mount else {
            return Err(ByHandle::Unknown);
        };
        #[repr(C)]
        struct Handle {
            bytes: u32,
            kind: i32,
            id: u64,
        }
        let mut h = Handle {
            bytes: 8,
            kind: FILEID_KERNFS,
            id,
        };
        // SAFETY: `h` is a file_handle header followed by its 8 bytes of
        // handle, alive for the call; the returned fd is owned below.
        let fd = unsafe {
            libc::open_by_handle_at(
                mount.as_raw_fd(),
                (&raw mut h).cast(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ESTALE | libc::ENOENT) => ByHandle::Gone,
                _ => ByHandle::Unknown,
            });
        }
        // SAFETY: a new fd we own.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    }

    /// The group of `id`, opened by its handle.
    fn by_handle(&self, id: u64) -> ByHandle {
        let fd = match self.open(id) {
            Ok(fd) => fd,
            Err(why) => return why,
        };
        let Ok(path) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
            return ByHandle::Unknown;
        };
        if path.to_string_lossy().ends_with(" (deleted)") {
            return ByHandle::Gone;
        }
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ByHandle::Found("/".to_string()),
            Ok(rel) => ByHandle::Found(crate::escape::name(rel.as_os_str()).into_owned()),
            Err(_) => ByHandle::Unknown,
        }
    }

    /// Learns `id`'s label by its handle; false if it is gone or that could
    /// not be told.
    fn learn(&mut self, id: u64) -> Option<bool> {
        match self.by_handle(id) {
            ByHandle::Found(label) => {
                self.by_id.insert(id, label);
                Some(true)
            }
            ByHandle::Gone => Some(false),
            ByHandle::Unknown => None,
        }
    }

    /// Checks up to `budget` of `candidates` (the ids the maps hold; a
    /// round over all of them takes as many calls as needed) and forgets
    /// those whose group is gone; returns them. A group is checked by its
    /// path (one `stat`, a name lookup per level), not by its handle, which
    /// for a group the kernel no longer caches reads its whole parent
    /// directory: 7 ms with 70,000 siblings.
    pub fn sweep(&mut self, candidates: impl IntoIterator<Item = u64>, budget: usize) -> Vec<u64> {
        if self.to_sweep.is_empty() {
            self.to_sweep = candidates.into_iter().collect();
        }
        let mut gone = Vec::new();
        for _ in 0..budget {
            let Some(id) = self.to_sweep.pop() else { break };
            let Some(label) = self.by_id.get(&id) else {
                continue;
            };
            let here = if label.contains('\\') {
                // Maybe a name that is not UTF-8, escaped: its path is not
                // the label, so asked by handle (rare names only).
                !matches!(self.by_handle(id), ByHandle::Gone)
            } else {
                let path = if label == "/" {
                    self.root.clone()
                } else {
                    self.root.join(label)
                };
                match std::fs::metadata(&path) {
                    Ok(m) => m.ino() == id,
                    Err(e) => e.kind() != std::io::ErrorKind::NotFound,
                }
            };
            if !here {
                // Gone (or renamed: looked up again by its handle if the
                // maps still hold it).
                self.by_id.remove(&id);
                gone.push(id);
            }
        }
        gone
    }

    /// Walk the tree again.
    pub fn refresh(&mut self) {
        self.by_id.clear();
        let mut stack = vec![(self.root.clone(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let label = if rel.is_empty() {
                "/".to_string()
            } else {
                rel.clone()
            };
            self.by_id.insert(meta.ino(), label);
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let name = crate::escape::name(&e.file_name()).into_owned();
                    let child = if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    };
                    stack.push((e.path(), child));
                }
            }
        }
    }

    /// Every group known at the last walk: `(cgroup id, label)`.
    pub fn all(&self) -> impl Iterator<Item = (u64, &str)> {
        self.by_id.iter().map(|(id, l)| (*id, l.as_str()))
    }

    /// Forgets a removed group.
    pub fn remove(&mut self, id: u64) {
        self.by_id.remove(&id);
    }

    pub fn label(&self, id: u64) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// Labels for `ids`: unknown ones are looked up by handle, for at most
    /// [`LEARN_BUDGET`] per call (the rest at the next; where handles do not
    /// work, by walking the tree once more). Returns the ids found gone.
    pub fn resolve(&mut self, ids: impl IntoIterator<Item = u64> + Clone) -> Vec<u64> {
        if self.mount.is_none() {
            if ids
                .clone()
                .into_iter()
                .any(|id| !self.by_id.contains_key(&id))
            {
                self.refresh();
            }
            return ids
                .into_iter()
                .filter(|id| !self.by_id.contains_key(id))
                .collect();
        }
        let start = Instant::now();
        let mut gone = Vec::new();
        for id in ids {
            if self.by_id.contains_key(&id) {
                continue;
            }
            if start.elapsed() > LEARN_BUDGET {
                break;
            }
            if self.learn(id) == Some(false) {
                gone.push(id);
            }
        }
        gone
    }

    /// The label of `id`, looked up (by handle, or a walk) if not known.
    pub fn label_or_lookup(&mut self, id: u64) -> Option<&str> {
        if !self.by_id.contains_key(&id) && self.learn(id).is_none() && self.mount.is_none() {
            self.refresh();
        }
        self.label(id)
    }

    /// The id of a group label, if it exists now.
    pub fn id_of(&self, label: &str) -> Option<u64> {
        let want = label.trim_matches('/');
        let want = if want.is_empty() { "/" } else { want };
        self.by_id
            .iter()
            .find(|(_, l)| l.as_str() == want)
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_notices_deleted_groups() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("web/api")).unwrap();
        let mut idx = CgroupIndex::new(tmp.path());
        let api = std::fs::metadata(tmp.path().join("web/api")).unwrap().ino();
        assert_eq!(idx.label(api), Some("web/api"));
        assert_eq!(idx.id_of("/web/api"), Some(api));
        let root = std::fs::metadata(tmp.path()).unwrap().ino();
        assert_eq!(idx.label(root), Some("/"));
        std::fs::create_dir(tmp.path().join("new")).unwrap();
        let new = std::fs::metadata(tmp.path().join("new")).unwrap().ino();
        assert_eq!(idx.resolve([new]), Vec::<u64>::new());
        assert_eq!(idx.label(new), Some("new"));
        std::fs::remove_dir(tmp.path().join("web/api")).unwrap();
        assert_eq!(idx.resolve([api, 999_999_999]).len(), 2);
        // A sweep finds a deleted group the index still knows.
        std::fs::remove_dir(tmp.path().join("new")).unwrap();
        let mut gone = Vec::new();
        for _ in 0..3 {
            gone.extend(idx.sweep([root, new], 1));
        }
        assert_eq!(gone, vec![new]);
        assert_eq!(idx.label(new), None);
    }

    /// A name that is not UTF-8 is escaped in its label, and a sweep does
    /// not take the escaped label for a path that is gone.
    #[test]
    fn names_that_are_not_utf8_are_escaped_and_kept_by_sweeps() {
        use std::os::unix::ffi::OsStrExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
        std::fs::create_dir(&dir).unwrap();
        let id = std::fs::metadata(&dir).unwrap().ino();
        let mut idx = CgroupIndex::new(tmp.path());
        assert_eq!(idx.label(id), Some("bad\\xffname"));
        assert_eq!(idx.sweep([id], 1), Vec::<u64>::new());
        assert_eq!(idx.label(id), Some("bad\\xffname"));
    }

    /// On the host's cgroup2 tree, ids are named and found gone by handle.
    #[test]
    fn groups_are_found_by_their_id() {
        let Ok(cg) = crate::cgroup::Cgroups::discover() else {
            return;
        };
        let Some(v2) = cg.v2() else { return };
        let root = cg.hierarchy(v2).mount_point.clone();
        let Ok(meta) = std::fs::metadata(&root) else {
            return;
        };
        let mut idx = CgroupIndex::new(&root);
        if idx.mount.is_none() {
            return;
        }
        assert!(matches!(idx.by_handle(meta.ino()), ByHandle::Found(l) if l == "/"));
        assert!(matches!(idx.by_handle(u64::MAX - 7), ByHandle::Gone));
        assert_eq!(idx.resolve([u64::MAX - 7]), vec![u64::MAX - 7]);
    }
}
