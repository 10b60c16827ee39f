//! The loader's own references to everything it pinned.
//!
//! A pin keeps a link attached (and a map alive) while no agent runs. While one
//! runs, enforcement must not depend on a file at all: [`Held`] keeps an fd of
//! every pinned link and map, so removing a pin detaches nothing, and
//! [`Held::restore_missing`] pins again what disappeared. Dropping the fds
//! (detaching a group, or the process ending) leaves the pins in charge.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::BpfError;
use super::rawlink;
use super::trust::create_private_dir;

/// Directory timestamps are coarse (a clock tick): a change in the same tick
/// as our last look would not move the mtime, so a directory modified this
/// recently is always checked entry by entry.
const MTIME_SLACK: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct HeldDir {
    /// The directory's mtime when last found complete.
    mtime: Option<SystemTime>,
    pins: BTreeMap<OsString, OwnedFd>,
}

/// What [`Held::restore_missing`] found and did for one pin.
#[derive(Debug)]
pub struct Restored {
    /// The pin that had disappeared.
    pub path: PathBuf,
    /// Whether pinning it again worked.
    pub result: Result<(), String>,
}

/// fds of pinned objects, by pin directory.
#[derive(Debug, Default)]
pub(super) struct Held {
    dirs: BTreeMap<PathBuf, HeldDir>,
}

fn mtime(dir: &Path) -> Option<SystemTime> {
    fs::symlink_metadata(dir).and_then(|m| m.modified()).ok()
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

impl Held {
    /// Takes an fd of the object pinned at `path` and keeps it.
    pub(super) fn hold(&mut self, path: &Path) -> Result<(), BpfError> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Ok(());
        };
        let fd = rawlink::obj_get(path).map_err(|source| BpfError::PinDir {
            op: "opening the pin",
            path: path.to_path_buf(),
            source,
        })?;
        let held = self.dirs.entry(dir.to_path_buf()).or_default();
        held.pins.insert(name.to_os_string(), fd);
        held.mtime = None;
        Ok(())
    }

    /// Lets go of the objects pinned in `dir` (after their pins were removed,
    /// this detaches the links).
    pub(super) fn release_dir(&mut self, dir: &Path) {
        self.dirs.remove(dir);
    }

    /// Lets go of the object pinned at `path`.
    pub(super) fn release(&mut self, path: &Path) {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name())
            && let Some(held) = self.dirs.get_mut(dir)
        {
            held.pins.remove(name);
            if held.pins.is_empty() {
                self.dirs.remove(dir);
            }
        }
    }

    /// How many objects are held.
    pub(super) fn len(&self) -> usize {
        self.dirs.values().map(|d| d.pins.len()).sum()
    }

    /// Pins again every held object whose pin is gone (re-creating its
    /// directory, mode 0700, if that went too). One `stat` per directory when
    /// nothing changed.
    pub(super) fn restore_missing(&mut self) -> Vec<Restored> {
        let mut restored = Vec::new();
        let now = SystemTime::now();
        for (dir, held) in &mut self.dirs {
            let current = mtime(dir);
            let settled = current.is_some_and(|m| {
                now.duration_since(m).is_ok_and(|age| age > MTIME_SLACK) && held.mtime == Some(m)
            });
            if settled {
                continue;
            }
            if current.is_none()
                && let Err(e) = create_private_dir(dir)
            {
                restored.extend(held.pins.keys().map(|name| Restored {
                    path: dir.join(name),
                    result: Err(e.to_string()),
                }));
                continue;
            }
            for (name, fd) in &held.pins {
                let path = dir.join(name);
                if exists(&path) {
                    continue;
                }
                let result = rawlink::obj_pin(fd.as_fd(), &path)
                    .or_else(|e| match e.kind() {
                        // Pinned again in between (by a concurrent restore).
                        io::ErrorKind::AlreadyExists => Ok(()),
                        _ => Err(e),
                    })
                    .map_err(|e| format!("pinning {} again failed: {e}", path.display()));
                restored.push(Restored { path, result });
            }
            held.mtime = mtime(dir);
        }
        restored
    }
}
