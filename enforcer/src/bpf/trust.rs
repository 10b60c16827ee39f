//! Who may touch the pin directory: root alone.
//!
//! A pinned link is what keeps a group's enforcement attached while no agent
//! runs, so whoever can remove a pin can switch enforcement off. bpffs mounted
//! without options is mode 1777, where any user may create directories: a pin
//! directory made by someone else before the agent starts would let that user
//! delete the agent's pins later. So the agent creates its directories itself,
//! mode 0700, and refuses a pin directory (or anything under it) that root
//! does not own or that others can write, naming the path, the owner and the
//! fix. The bpffs directories above it must be root's and either not writable
//! by others or sticky (the kernel default 1777 is), so nobody can rename the
//! pin directory away either.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

use super::BpfError;
use crate::trust::{Problem, Sticky, TrustError, check_owner_and_mode};

/// Mode of every directory enforcer makes under bpffs.
pub(super) const DIR_MODE: u32 = 0o700;
/// Mode the kernel gives a pin (`BPF_OBJ_PIN`): owner read and write.
const PIN_MODE: u32 = 0o600;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> BpfError + 'a {
    move |source| BpfError::PinDir {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The tool's one ownership rule ([`crate::trust`]), said as a pin's refusal.
fn pin_refusal(e: TrustError) -> BpfError {
    match e {
        TrustError::Untrusted {
            path,
            uid,
            owner,
            mode,
            problem,
        } => BpfError::UntrustedPin {
            path,
            uid,
            owner,
            mode,
            why: format!("it {problem}"),
        },
        TrustError::Io { op, path, source } => BpfError::PinDir { op, path, source },
    }
}

fn untrusted(path: &Path, meta: &fs::Metadata, problem: Problem) -> BpfError {
    pin_refusal(crate::trust::untrusted(path, meta, problem))
}

fn on_bpffs(path: &Path) -> bool {
    statfs(path).is_ok_and(|fs| fs.filesystem_type() == BPF_FS_MAGIC)
}

/// Creates `dir` and its missing parents with mode 0700 (nothing is ever
/// created wider, whatever the umask), then checks it as [`check_dir`] does.
pub(super) fn create_private_dir(dir: &Path) -> Result<(), BpfError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .map_err(|source| not_bpffs_or(dir, source))?;
        }
        Err(source) => return Err(io_err("examining", dir)(source)),
    }
    check_dir(dir)
}

/// mkdir in a directory that is not bpffs (e.g. /sys/fs/bpf unmounted, which
/// is read-only sysfs) fails; say what is wrong rather than "EPERM".
fn not_bpffs_or(dir: &Path, source: io::Error) -> BpfError {
    let parent_is_bpffs = dir
        .ancestors()
        .skip(1)
        .find(|p| p.exists())
        .is_some_and(on_bpffs);
    if parent_is_bpffs {
        BpfError::PinDir {
            op: "creating",
            path: dir.to_path_buf(),
            source,
        }
    } else {
        BpfError::NotBpffs {
            path: dir.to_path_buf(),
        }
    }
}

/// Checks one directory of ours: a real directory (not a symlink), owned by
/// root; tightened to 0700 if it is wider but nobody else could have written
/// into it (it is root's and not group- or world-writable), refused otherwise.
pub(super) fn check_dir(dir: &Path) -> Result<(), BpfError> {
    let meta = fs::symlink_metadata(dir).map_err(io_err("examining", dir))?;
    if !meta.file_type().is_dir() {
        return Err(untrusted(dir, &meta, Problem::NotDirectory));
    }
    check_owner_and_mode(dir, &meta, Sticky::NotEnough).map_err(pin_refusal)?;
    if meta.mode() & 0o7777 != DIR_MODE {
        fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
            .map_err(io_err("restricting the mode of", dir))?;
    }
    Ok(())
}

/// Checks the bpffs directories above `pin_dir` (up to the mount's root; those
/// not made yet are skipped): each must be root's, and writable by others only
/// with the sticky bit, so no other user can rename or replace the pin
/// directory. Runs before anything is created there.
pub(super) fn check_ancestors(pin_dir: &Path) -> Result<(), BpfError> {
    for dir in pin_dir.ancestors().skip(1) {
        if dir.as_os_str().is_empty() {
            break;
        }
        let meta = match fs::metadata(dir) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("examining", dir)(e)),
        };
        if !on_bpffs(dir) {
            break;
        }
        check_owner_and_mode(dir, &meta, Sticky::Enough).map_err(pin_refusal)?;
    }
    Ok(())
}

/// Walks everything under `pin_dir`: every directory as [`check_dir`], every
/// pin owned by root and not writable by others (tightened to 0600 if it is
/// only readable by them), no symlinks or other file types. Run once at start,
/// before anything under it is trusted; while the agent runs, its 0700
/// directories keep everyone else out.
pub(super) fn check_tree(pin_dir: &Path) -> Result<(), BpfError> {
    let mut stack: Vec<PathBuf> = vec![pin_dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        check_dir(&dir)?;
        let entries = fs::read_dir(&dir).map_err(io_err("listing", &dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io_err("examining", &path))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                let problem = if kind.is_symlink() {
                    Problem::Symlink
                } else {
                    Problem::NotRegularFile
                };
                return Err(untrusted(&path, &meta, problem));
            }
            check_owner_and_mode(&path, &meta, Sticky::NotEnough).map_err(pin_refusal)?;
            if meta.mode() & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(PIN_MODE))
                    .map_err(io_err("restricting the mode of", &path))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // These run on any filesystem (the checks are plain ownership and modes);
    // as root in CI, so files are root's unless chowned.
    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn new_directories_are_private_and_wide_ones_are_tightened() {
        if !is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, DIR_MODE);
        assert_eq!(
            fs::metadata(tmp.path().join("a")).unwrap().mode() & 0o7777,
            DIR_MODE
        );
        let wide = tmp.path().join("wide");
        fs::create_dir(&wide).unwrap();
        fs::set_permissions(&wide, fs::Permissions::from_mode(0o755)).unwrap();
        check_tree(&wide).unwrap();
        assert_eq!(fs::metadata(&wide).unwrap().mode() & 0o7777, DIR_MODE);
    }

    #[test]
    fn foreign_or_writable_entries_are_refused() {
        if !is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let pins = tmp.path().join("pins");
        create_private_dir(&pins.join("enforce")).unwrap();

        let foreign = pins.join("enforce/123");
        fs::create_dir(&foreign).unwrap();
        nix::unistd::chown(&foreign, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let err = check_tree(&pins).unwrap_err().to_string();
        assert!(err.contains("enforce/123"), "{err}");
        assert!(err.contains("not owned by root"), "{err}");
        fs::remove_dir(&foreign).unwrap();

        let writable = pins.join("enforce/pin");
        fs::write(&writable, b"").unwrap();
        fs::set_permissions(&writable, fs::Permissions::from_mode(0o666)).unwrap();
        let err = check_tree(&pins).unwrap_err().to_string();
        assert!(err.contains("writable by users other than root"), "{err}");
        fs::remove_file(&writable).unwrap();

        std::os::unix::fs::symlink("/etc", pins.join("enforce/link")).unwrap();
        let err = check_tree(&pins).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        fs::remove_file(pins.join("enforce/link")).unwrap();

        check_tree(&pins).unwrap();
    }
}
