//! The pin directory: checking it is on bpffs, validating pinned maps,
//! adopting or creating pinned links, and removing everything again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::{MapData, MapError};
use aya::programs::links::{FdLink, PinnedLink};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

use super::BpfError;
use super::layout::{
    GLOBAL_LINKS, MapSpec, PINNED_MAPS, ProgramSpec, all_programs, enforce_dir, links_dir, map_pin,
    maps_dir,
};

/// Fails unless `path` (which must exist) is on a BPF filesystem.
pub(super) fn check_bpffs(path: &Path) -> Result<(), BpfError> {
    let fs = statfs(path).map_err(|errno| BpfError::PinDir {
        op: "examining",
        path: path.to_path_buf(),
        source: errno.into(),
    })?;
    if fs.filesystem_type() == BPF_FS_MAGIC {
        Ok(())
    } else {
        Err(BpfError::NotBpffs {
            path: path.to_path_buf(),
        })
    }
}

/// Whether something exists at `path` (without following symlinks).
fn exists(path: &Path) -> Result<bool, BpfError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(BpfError::PinDir {
            op: "examining",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Checks that every map already pinned under `pin_dir` has the layout this
/// build expects. aya re-uses a pinned map by name without comparing its
/// layout, so an incompatible pin must be caught here.
pub(super) fn check_pinned_maps(pin_dir: &Path) -> Result<(), BpfError> {
    for spec in &PINNED_MAPS {
        let path = map_pin(pin_dir, spec.name);
        if exists(&path)? {
            let data = open_map(&path)?;
            check_layout(&path, &data, spec)?;
        }
    }
    Ok(())
}

fn open_map(path: &Path) -> Result<MapData, BpfError> {
    MapData::from_pin(path).map_err(|source| BpfError::PinnedMap {
        path: path.to_path_buf(),
        source,
    })
}

/// Compares a pinned map's type, key and value sizes with `spec` (its
/// capacity may differ: see [`pinned_capacity`]).
fn check_layout(path: &Path, data: &MapData, spec: &MapSpec) -> Result<(), BpfError> {
    let info = data.info().map_err(|source| BpfError::PinnedMap {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = info.map_type().map_err(|source| BpfError::PinnedMap {
        path: path.to_path_buf(),
        source,
    })?;
    let found = (kind, info.key_size(), info.value_size());
    let want = (spec.kind, spec.key_size, spec.value_size);
    if found == want {
        Ok(())
    } else {
        Err(BpfError::PinnedMapMismatch {
            path: path.to_path_buf(),
            detail: format!("type/key size/value size are {found:?}, this build needs {want:?}"),
        })
    }
}

/// The capacity (`max_entries`) of the map pinned for `spec`, if pinned: a
/// pinned map is adopted as it is, so a capacity set now takes effect only
/// once its pin is gone (`enforcer stop`).
pub(super) fn pinned_capacity(pin_dir: &Path, spec: &MapSpec) -> Result<Option<u32>, BpfError> {
    let path = map_pin(pin_dir, spec.name);
    if !exists(&path)? {
        return Ok(None);
    }
    let data = open_map(&path)?;
    let info = data.info().map_err(|source| BpfError::PinnedMap {
        path: path.clone(),
        source,
    })?;
    Ok(Some(info.max_entries()))
}

/// Opens the pinned map `spec` of `pin_dir` read-only for a reader in another
/// process, checking its layout. [`BpfError::NotRunning`] if it is not pinned.
pub(super) fn open_pinned_map(pin_dir: &Path, spec: &MapSpec) -> Result<MapData, BpfError> {
    let path = map_pin(pin_dir, spec.name);
    let data = match MapData::from_pin(&path) {
        Ok(data) => data,
        Err(MapError::SyscallError(e)) if e.io_error.kind() == io::ErrorKind::NotFound => {
            return Err(BpfError::NotRunning {
                pin_dir: pin_dir.to_path_buf(),
                missing: path,
            });
        }
        Err(source) => return Err(BpfError::PinnedMap { path, source }),
    };
    check_layout(&path, &data, spec)?;
    Ok(data)
}

/// Directory of the links of one group (by cgroup2 id) or of the global ones.
pub(super) fn group_links_dir(pin_dir: &Path, cgroup_id: u64) -> PathBuf {
    links_dir(pin_dir).join(cgroup_id.to_string())
}

pub(super) fn global_links_dir(pin_dir: &Path) -> PathBuf {
    links_dir(pin_dir).join(GLOBAL_LINKS)
}

/// Directory of the enforcement links of one group.
pub(super) fn group_enforce_dir(pin_dir: &Path, cgroup_id: u64) -> PathBuf {
    enforce_dir(pin_dir).join(cgroup_id.to_string())
}

/// Directory of the host-wide enforcement link (`enforce_syscalls`).
pub(super) fn global_enforce_dir(pin_dir: &Path) -> PathBuf {
    enforce_dir(pin_dir).join(GLOBAL_LINKS)
}

/// If a link of `program` is pinned at `path` (left by an earlier run), keeps it
/// and returns true. Something else pinned there (another kind of link, a
/// non-link object) is removed and false returned, as when nothing is there.
///
/// The link is not detached by dropping our fd: the pin holds it. Whether an
/// adopted cgroup link's cgroup still exists is not checked: cgroup2 ids are not
/// reused, and links of removed groups are unpinned by `forget`.
pub(super) fn adopt_link(path: &Path, program: &ProgramSpec) -> Result<bool, BpfError> {
    if !exists(path)? {
        return Ok(false);
    }
    let link_err = |source| BpfError::PinnedLink {
        path: path.to_path_buf(),
        source,
    };
    let pinned = PinnedLink::from_pin(path).map_err(link_err)?;
    let fd_link = FdLink::from(pinned);
    let matches = fd_link
        .info()
        .and_then(|info| info.link_type())
        .is_ok_and(|kind| kind == program.hook.link_type());
    if matches {
        return Ok(true);
    }
    tracing::warn!(path = %path.display(), program = program.name, "replacing a stale pin that is not a link of this program");
    remove_pin(path)?;
    Ok(false)
}

/// Pins a freshly created link at `path`. Dropping the returned value closes our
/// fd; the link stays attached as long as the pin exists.
pub(super) fn pin_link(link: FdLink, path: &Path, program: &ProgramSpec) -> Result<(), BpfError> {
    link.pin(path)
        .map(drop)
        .map_err(|source| BpfError::PinLink {
            program: program.name,
            path: path.to_path_buf(),
            source,
        })
}

fn remove_pin(path: &Path) -> Result<(), BpfError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BpfError::PinDir {
            op: "removing",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Removes an empty directory; a missing or non-empty one is left alone.
fn remove_dir_if_empty(dir: &Path) -> Result<(), BpfError> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Ok(())
        }
        Err(source) => Err(BpfError::PinDir {
            op: "removing",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Unpins the links of one links directory (a group's or the global one) and
/// removes the directory. Only files named like our programs are touched.
/// Returns how many pins were removed.
pub(super) fn unpin_links_in(dir: &Path) -> Result<usize, BpfError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(BpfError::PinDir {
                op: "listing",
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|source| BpfError::PinDir {
            op: "listing",
            path: dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let ours = name
            .to_str()
            .is_some_and(|n| all_programs().any(|p| p.name == n));
        if ours {
            remove_pin(&entry.path())?;
            removed += 1;
        }
    }
    remove_dir_if_empty(dir)?;
    Ok(removed)
}

/// Unpins every group's and the global links under `links` (`<pin_dir>/links`
/// or `<pin_dir>/enforce`), then removes it if empty.
fn unpin_links_tree(links: &Path) -> Result<usize, BpfError> {
    if !exists(links)? {
        return Ok(0);
    }
    let mut removed = 0;
    let entries = fs::read_dir(links).map_err(|source| BpfError::PinDir {
        op: "listing",
        path: links.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| BpfError::PinDir {
            op: "listing",
            path: links.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let ours = name
            .to_str()
            .is_some_and(|n| n == GLOBAL_LINKS || n.parse::<u64>().is_ok());
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if ours && is_dir {
            removed += unpin_links_in(&entry.path())?;
        }
    }
    remove_dir_if_empty(links)?;
    Ok(removed)
}

/// See [`super::unpin_all`].
pub(super) fn unpin_all(pin_dir: &Path) -> Result<usize, BpfError> {
    if !exists(pin_dir)? {
        return Ok(0);
    }
    check_bpffs(pin_dir)?;
    let mut removed = 0;

    // Links first: unpinning detaches them (nobody else holds their fds), so
    // nothing counts into or enforces from the maps once they go.
    removed += unpin_links_tree(&links_dir(pin_dir))?;
    removed += unpin_links_tree(&enforce_dir(pin_dir))?;

    let maps = maps_dir(pin_dir);
    for spec in &PINNED_MAPS {
        let path = map_pin(pin_dir, spec.name);
        if exists(&path)? {
            remove_pin(&path)?;
            removed += 1;
        }
    }
    remove_dir_if_empty(&maps)?;
    // The pin directory itself stays (empty, root's, mode 0700): were it
    // removed, on a bpffs that everyone may write (mode 1777, the kernel's
    // default) another user could create it before the next start, and the
    // agent would refuse to start.
    Ok(removed)
}
