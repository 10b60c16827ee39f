//! Noticing that the policy file changed, including the way the kubelet
//! updates a ConfigMap volume: it writes a new timestamped directory and
//! swaps the `..data` symlink to it in one rename, so `policy.toml ->
//! ..data/policy.toml` names another file while nothing was written to the
//! old one (whose mtime a plain check would keep reading, or lose once the
//! old directory is removed). The watch compares what the path resolves to:
//! device, inode, size, mtime and ctime, followed through every symlink.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

/// The policy file as last loaded.
#[derive(Debug)]
pub(super) struct PolicyWatch {
    path: PathBuf,
    seen: Option<Stamp>,
}

impl PolicyWatch {
    pub(super) fn new(path: &Path) -> Self {
        PolicyWatch {
            path: path.to_path_buf(),
            seen: stamp(path),
        }
    }

    /// Whether the path names another file, or the file changed, since the
    /// last call (or [`new`](Self::new)). A path that is gone for a moment
    /// (mid-swap) is not a change: the next look sees the new file.
    pub(super) fn changed(&mut self) -> bool {
        let Some(now) = stamp(&self.path) else {
            return false;
        };
        if self.seen.as_ref() == Some(&now) {
            return false;
        }
        self.seen = Some(now);
        true
    }

    /// Remember the file as it is now (after a reload for another reason).
    pub(super) fn mark(&mut self) {
        self.seen = stamp(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kubelet does: `..data` swapped to a new directory by rename,
    /// the old one removed.
    #[test]
    fn a_configmap_style_symlink_swap_is_a_change() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("..v1")).unwrap();
        std::fs::write(d.join("..v1/policy.toml"), "a = 1\n").unwrap();
        std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/policy.toml", d.join("policy.toml")).unwrap();
        let mut w = PolicyWatch::new(&d.join("policy.toml"));
        assert!(!w.changed());
        std::fs::create_dir(d.join("..v2")).unwrap();
        // Same size, and the same mtime as far as a coarse clock can tell.
        std::fs::write(d.join("..v2/policy.toml"), "a = 2\n").unwrap();
        let old = std::fs::metadata(d.join("..v1/policy.toml")).unwrap();
        let t = std::fs::FileTimes::new().set_modified(old.modified().unwrap());
        std::fs::File::options()
            .write(true)
            .open(d.join("..v2/policy.toml"))
            .unwrap()
            .set_times(t)
            .unwrap();
        std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        std::fs::remove_dir_all(d.join("..v1")).unwrap();
        assert!(w.changed(), "the swap is seen");
        assert!(!w.changed(), "once");
    }
}
