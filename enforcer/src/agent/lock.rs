//! The agent's locks: its pid file and its pin directory, each `flock`ed for
//! the agent's whole life.
//!
//! A pid file alone proves nothing: after a crash it names whatever process
//! got that PID next, and `stop` would signal it. So the pid file is locked
//! while the agent runs, a second agent refuses to start, and `stop` and
//! `reload` signal a PID only if the kernel says that PID holds the lock
//! (`/proc/locks`) and it is an enforcer binary run by root (`/proc/PID/exe`).
//! The pid file is never followed through a symlink, must be root's and lives
//! in a directory only root can write (checked at start, [`crate::trust`]),
//! so nobody can point the agent's write at another file or remove it. A lock
//! on it held by anything but an agent (a user who opened a 0644 file left by
//! an older version) does not keep the agent from starting: it takes a fresh
//! file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::error::AgentError;

/// `flock(2)` without blocking; `Ok(false)` if another open file holds it.
fn try_flock(file: &File, exclusive: bool) -> io::Result<bool> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    // SAFETY: flock on a valid open fd; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// The PID holding an exclusive `flock` on the file with this device and
/// inode, from `/proc/locks` (`1: FLOCK  ADVISORY  WRITE 4242 00:19:1234 0
/// EOF`). Only the agent takes one; a shared lock someone else holds does not
/// count.
pub(super) fn flock_holder(dev: u64, ino: u64) -> Option<i32> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    let want = format!(
        "{:02x}:{:02x}:{ino}",
        libc::major(dev as libc::dev_t),
        libc::minor(dev as libc::dev_t)
    );
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Waiters are listed as `1: -> FLOCK ...`; only holders count.
        (f.get(1) == Some(&"FLOCK")
            && f.get(3) == Some(&"WRITE")
            && f.get(5) == Some(&want.as_str()))
        .then(|| f.get(4)?.parse().ok())
        .flatten()
    })
}

/// Whether PID is an agent: a process of root's running an enforcer binary
/// (`/proc/PID/exe`, also after an upgrade replaced the file: `enforcer
/// (deleted)`); `Err` says what it is instead. Any user can name a program
/// `enforcer`; only root runs the agent.
fn is_enforcer(pid: i32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata(format!("/proc/{pid}")) {
        Ok(m) if m.uid() != 0 => {
            return Err(format!("it runs as {}", crate::trust::user_name(m.uid())));
        }
        Ok(_) => {}
        Err(e) => return Err(format!("/proc/{pid} cannot be read: {e}")),
    }
    match std::fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(exe)
            if exe
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.trim_end_matches(" (deleted)") == "enforcer") =>
        {
            Ok(())
        }
        Ok(exe) => Err(format!("it runs {}", exe.display())),
        Err(e) => Err(format!("/proc/{pid}/exe cannot be read: {e}")),
    }
}

fn unsafe_file(path: &Path, why: impl Into<String>) -> AgentError {
    AgentError::UnsafeFile {
        what: "pid file",
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Opens the pid file as every file the agent manages is opened
/// ([`crate::trust::open_private`]: no symlink, a regular file of root's,
/// one link, not writable by others).
fn open_checked(path: &Path, opts: &mut OpenOptions) -> Result<File, AgentError> {
    crate::trust::open_private(path, opts).map_err(super::error::untrusted("pid file"))
}

/// What the kernel says about the agent `pid`: the pin directory and pid
/// file it holds locked (from its open files), for a message that names it.
pub(super) fn other_agent(pid: Option<i32>) -> super::error::OtherAgent {
    let mut other = super::error::OtherAgent {
        pid,
        ..Default::default()
    };
    let Some(pid) = pid else {
        return other;
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return other;
    };
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(fd.path()) else {
            continue;
        };
        if flock_holder(meta.dev(), meta.ino()) != Some(pid) {
            continue;
        }
        let on_bpffs = nix::sys::statfs::statfs(&target)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC);
        if meta.is_dir() && on_bpffs {
            other.pin_dir = Some(target);
        } else if meta.is_file() {
            other.pid_file = Some(target);
        }
    }
    other
}

/// The running agent's pid file, locked until dropped (then removed).
#[derive(Debug)]
pub(super) struct PidFile {
    path: PathBuf,
    file: File,
}

impl PidFile {
    /// Creates or opens `path`, takes its lock and writes our PID (and, on a
    /// second line, the policy file the agent runs, for `reload --config`).
    /// Another agent holding it: [`AgentError::AlreadyRunning`].
    pub(super) fn acquire(path: &Path, policy: Option<&Path>) -> Result<PidFile, AgentError> {
        let mut file = open_checked(
            path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
        )?;
        let io = |op| {
            move |source| AgentError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        if !try_flock(&file, true).map_err(io("locking"))? {
            let meta = file.metadata().map_err(io("examining"))?;
            match flock_holder(meta.dev(), meta.ino()) {
                Some(pid) if pid == std::process::id() as i32 || is_enforcer(pid).is_ok() => {
                    return Err(AgentError::AlreadyRunning {
                        pid: Some(pid),
                        what: "pid file",
                        path: path.to_path_buf(),
                    });
                }
                // Only a shared lock, or a lock of a process that is no
                // agent (a user holding an old 0644 file, say): take a fresh
                // file instead of waiting on it. The directory is root's
                // alone, so the new name is ours.
                _ => {
                    std::fs::remove_file(path).map_err(io("replacing"))?;
                    file = open_checked(
                        path,
                        OpenOptions::new()
                            .read(true)
                            .write(true)
                            .create_new(true)
                            .mode(0o600),
                    )?;
                    if !try_flock(&file, true).map_err(io("locking"))? {
                        return Err(AgentError::AlreadyRunning {
                            pid: None,
                            what: "pid file",
                            path: path.to_path_buf(),
                        });
                    }
                }
            }
        }
        // Root's alone: a user who could open it could take a shared lock
        // and keep every agent from starting.
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(io("restricting the mode of"))?;
        file.set_len(0).map_err(io("truncating"))?;
        let mut text = format!("{}\n", std::process::id());
        if let Some(p) = policy {
            text.push_str(&format!("{}\n", p.display()));
        }
        file.write_all(text.as_bytes()).map_err(io("writing"))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl Drop for PidFile {
    /// Removes the file while still holding the lock, and only if the path
    /// still names our file.
    fn drop(&mut self) {
        let ours = self.file.metadata().ok().map(|m| (m.dev(), m.ino()));
        let at_path = std::fs::symlink_metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours.is_some() && ours == at_path {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The live agent behind `pid_file`: the PID that holds its lock, if that PID
/// runs an enforcer binary. `Ok(None)` when no agent holds it (no file, or a
/// stale one: its PID is never signalled).
pub(super) fn running_agent(pid_file: &Path) -> Result<Option<i32>, AgentError> {
    let mut file = match open_checked(pid_file, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(AgentError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let io = |op| {
        move |source| AgentError::Io {
            op,
            path: pid_file.to_path_buf(),
            source,
        }
    };
    // Read from /proc/locks rather than by trying the lock: a lock taken here,
    // even briefly, could make an agent starting at that moment refuse.
    let meta = file.metadata().map_err(io("examining"))?;
    let Some(holder) = flock_holder(meta.dev(), meta.ino()) else {
        return Ok(None);
    };
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io("reading"))?;
    let written = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok());
    // An agent that is exiting has no /proc/PID/exe for a moment.
    let mut check = is_enforcer(holder);
    for _ in 0..5 {
        if check.is_ok() || flock_holder(meta.dev(), meta.ino()) != Some(holder) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        check = is_enforcer(holder);
    }
    if flock_holder(meta.dev(), meta.ino()) != Some(holder) {
        return Ok(None);
    }
    if let Err(what) = check {
        return Err(unsafe_file(
            pid_file,
            format!("its lock is held by PID {holder}, which is not an enforcer agent ({what})"),
        ));
    }
    if written.is_some_and(|w| w != holder) {
        tracing::warn!(
            path = %pid_file.display(),
            "the pid file says {text:?} but PID {holder} holds its lock; using the lock holder"
        );
    }
    Ok(Some(holder))
}

/// The policy file of the agent behind `pid_file` (the pid file's second
/// line), if it runs one.
pub(super) fn agent_policy(pid_file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let line = text.lines().nth(1)?.trim();
    (!line.is_empty()).then(|| PathBuf::from(line))
}

/// An exclusive lock on the pin directory for the agent's life, so two agents
/// never manage the same pins (whatever pid files they were given).
#[derive(Debug)]
pub(super) struct PinDirLock {
    _dir: File,
}

impl PinDirLock {
    pub(super) fn acquire(pin_dir: &Path) -> Result<PinDirLock, AgentError> {
        let io = |op| {
            move |source| AgentError::Io {
                op,
                path: pin_dir.to_path_buf(),
                source,
            }
        };
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(pin_dir)
            .map_err(io("opening"))?;
        if !try_flock(&dir, true).map_err(io("locking"))? {
            let meta = dir.metadata().map_err(io("examining"))?;
            return Err(AgentError::AlreadyRunning {
                pid: flock_holder(meta.dev(), meta.ino()),
                what: "pin directory",
                path: pin_dir.to_path_buf(),
            });
        }
        Ok(PinDirLock { _dir: dir })
    }

    /// The PID of the agent holding `pin_dir`'s lock, if any.
    pub(super) fn holder(pin_dir: &Path) -> Option<i32> {
        let meta = std::fs::symlink_metadata(pin_dir).ok()?;
        flock_holder(meta.dev(), meta.ino())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent.pid");
        let first = PidFile::acquire(&path, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        match PidFile::acquire(&path, None) {
            Err(AgentError::AlreadyRunning { pid, .. }) => {
                assert_eq!(pid, Some(std::process::id() as i32));
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(first);
        assert!(!path.exists(), "removed on drop");
        assert!(running_agent(&path).unwrap().is_none());
    }

    #[test]
    fn stale_and_symlinked_pid_files() {
        let tmp = tempfile::tempdir().unwrap();
        let stale = tmp.path().join("stale.pid");
        std::fs::write(&stale, "1\n").unwrap();
        assert_eq!(running_agent(&stale).unwrap(), None, "PID 1 holds no lock");

        let target = tmp.path().join("target");
        std::fs::write(&target, "keep me").unwrap();
        let link = tmp.path().join("link.pid");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = PidFile::acquire(&link, None).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        assert!(running_agent(&link).is_err());
    }

    #[test]
    fn a_lock_held_by_a_non_enforcer_process_is_not_an_agent() {
        // This test binary holds the lock: it is not an enforcer, so the pid
        // file is refused rather than its holder signalled.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent.pid");
        let _held = PidFile::acquire(&path, None).unwrap();
        let err = running_agent(&path).unwrap_err().to_string();
        assert!(err.contains("not an enforcer agent"), "{err}");
    }
}
