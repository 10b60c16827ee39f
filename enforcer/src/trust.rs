//! Whom a file the tool acts on as root may come from: root alone.
//!
//! The agent runs as root and acts on what it reads: the policy (groups,
//! limits, rules), the arbiter's record (files to write back after a crash),
//! its pid file (whom `stop` signals), its audit log, its pins. If another
//! user could write any of them, or replace one by renaming something in a
//! directory on the way to it, that user would decide what root does. So
//! every such path is checked here, one rule for all of them:
//!
//! - every directory on the way (symlinks followed, each checked where it
//!   is) is root's and not writable by group or others, or has the sticky
//!   bit (as /tmp: nobody can rename or replace root's entries in it);
//! - the directory that holds the file itself is not writable by others
//!   even with the sticky bit (they could create the name first);
//! - every symlink on the way is root's;
//! - the file is a regular file of root's that others cannot write.
//!
//! A directory or file on a read-only mount counts as not writable, whatever
//! its mode: nobody writes through that mount. That is how a Kubernetes
//! ConfigMap volume (a 0777 directory of `..data` symlinks, mounted
//! read-only into the agent's container) passes.
//!
//! "Root" is uid 0, or the user running this process (which is root for the
//! agent; the unit tests may run as someone else).

use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed on one path before it counts as a loop (the kernel's
/// own limit).
const MAX_SYMLINKS: usize = 40;

/// What is wrong with a file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NotRoot,
    Writable,
    NotDirectory,
    NotRegularFile,
    Symlink,
    HardLinks(u64),
    SymlinkLoop,
}

impl Problem {
    /// How to put it right, for `path`.
    fn fix(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            Problem::NotRoot => {
                format!("make it root's (`chown root {p}`) or choose a path only root can write")
            }
            Problem::Writable => format!(
                "take the write permission away (`chmod go-w {p}`) or choose a path only \
                 root can write"
            ),
            Problem::SymlinkLoop => "fix the symlinks or give the real path".to_string(),
            Problem::NotDirectory
            | Problem::NotRegularFile
            | Problem::Symlink
            | Problem::HardLinks(_) => {
                format!("check what {p} is, remove it (as root) or choose another path")
            }
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotRoot => f.write_str("is not owned by root"),
            Problem::Writable => f.write_str("is writable by users other than root"),
            Problem::NotDirectory => f.write_str("is not a directory"),
            Problem::NotRegularFile => f.write_str("is not a regular file"),
            Problem::Symlink => f.write_str("is a symlink"),
            Problem::HardLinks(n) => {
                write!(f, "has {n} hard links (another name could be any file)")
            }
            Problem::SymlinkLoop => f.write_str("has too many levels of symlinks"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Someone other than root could have written it, or could replace it.
    #[error(
        "{} {problem} (owner {owner}, mode {mode:04o}); {fix}",
        path.display(),
        fix = problem.fix(path)
    )]
    Untrusted {
        path: PathBuf,
        uid: u32,
        owner: String,
        mode: u32,
        problem: Problem,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl TrustError {
    /// The name does not exist (a file not written yet).
    pub fn is_not_found(&self) -> bool {
        matches!(self, TrustError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> TrustError + 'a {
    move |source| TrustError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The refusal of `path` for `problem`, with its owner and mode.
pub fn untrusted(path: &Path, meta: &Metadata, problem: Problem) -> TrustError {
    TrustError::Untrusted {
        path: path.to_path_buf(),
        uid: meta.uid(),
        owner: user_name(meta.uid()),
        mode: meta.mode() & 0o7777,
        problem,
    }
}

/// `nobody`, or `uid 1234` for a uid without a name.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {uid}"), |u| u.name)
}

/// Root, or the user this process runs as.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Nobody can write through the mount `path` is on.
fn on_read_only_mount(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Whether a directory lets others rename or replace what is in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sticky {
    /// The sticky bit protects root's entries: fine on the way to a file.
    Enough,
    /// The directory holds the file itself: others must not write it at all.
    NotEnough,
}

/// The one ownership and permission rule, for something `path` names
/// (`meta` from `lstat`): root's, and not writable by group or others
/// (for a directory, unless `sticky` says the sticky bit is enough), or on
/// a read-only mount.
pub fn check_owner_and_mode(
    path: &Path,
    meta: &Metadata,
    sticky: Sticky,
) -> Result<(), TrustError> {
    if !trusted_owner(meta.uid()) {
        return Err(untrusted(path, meta, Problem::NotRoot));
    }
    let writable = meta.mode() & 0o022 != 0;
    let protected = sticky == Sticky::Enough && meta.is_dir() && meta.mode() & 0o1000 != 0;
    if writable && !protected && !on_read_only_mount(path) {
        return Err(untrusted(path, meta, Problem::Writable));
    }
    Ok(())
}

/// What the last component of a checked path must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A regular file (the policy, a record).
    File,
    /// A directory (the one a managed file lives in).
    Dir,
}

/// Follows `path` as the kernel would, component by component, and checks
/// everything that decides what it names (see the module's rules). Returns
/// the path it resolves to.
pub fn check_path(path: &Path, want: Want) -> Result<PathBuf, TrustError> {
    let abs = std::path::absolute(path).map_err(io_err("resolving", path))?;
    let mut rest: Vec<OsString> = Vec::new();
    push_front(&mut rest, &abs);
    let mut cur = PathBuf::from("/");
    let root = fs::symlink_metadata(&cur).map_err(io_err("examining", &cur))?;
    let root_sticky = if rest.is_empty() {
        Sticky::NotEnough
    } else {
        Sticky::Enough
    };
    check_owner_and_mode(&cur, &root, root_sticky)?;
    let mut links = 0;
    while let Some(name) = rest.pop() {
        if name == "/" {
            cur = PathBuf::from("/");
            continue;
        }
        if name == "." {
            continue;
        }
        if name == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&name);
        let meta = fs::symlink_metadata(&next).map_err(io_err("examining", &next))?;
        let last = rest.is_empty();
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(untrusted(path, &meta, Problem::SymlinkLoop));
            }
            // A symlink's own mode means nothing; who may replace it is
            // decided by the directory it is in (checked) and its owner.
            if !trusted_owner(meta.uid()) {
                return Err(untrusted(&next, &meta, Problem::NotRoot));
            }
            let target = fs::read_link(&next).map_err(io_err("reading the symlink", &next))?;
            push_front(&mut rest, &target);
            continue;
        }
        if last {
            let kind_ok = match want {
                Want::File => meta.file_type().is_file(),
                Want::Dir => meta.file_type().is_dir(),
            };
            if !kind_ok {
                let problem = match want {
                    Want::File => Problem::NotRegularFile,
                    Want::Dir => Problem::NotDirectory,
                };
                return Err(untrusted(&next, &meta, problem));
            }
            if want == Want::File {
                // The directory holding the file: others may not create
                // names in it, sticky or not.
                let parent = fs::symlink_metadata(&cur).map_err(io_err("examining", &cur))?;
                check_owner_and_mode(&cur, &parent, Sticky::NotEnough)?;
            }
            check_owner_and_mode(&next, &meta, Sticky::NotEnough)?;
        } else {
            if !meta.file_type().is_dir() {
                return Err(untrusted(&next, &meta, Problem::NotDirectory));
            }
            check_owner_and_mode(&next, &meta, Sticky::Enough)?;
        }
        cur = next;
    }
    Ok(cur)
}

/// Puts `path`'s components in front of `rest` (a stack: the next one last).
fn push_front(rest: &mut Vec<OsString>, path: &Path) {
    for c in path.components().rev() {
        rest.push(match c {
            Component::RootDir | Component::Prefix(_) => OsString::from("/"),
            Component::CurDir => OsString::from("."),
            Component::ParentDir => OsString::from(".."),
            Component::Normal(n) => n.to_os_string(),
        });
    }
}

/// Checks the directory a managed file (`file`) lives in, creating it and
/// its missing parents (mode `mode`) below the nearest existing one, which
/// must pass [`check_path`] first: nothing is created where another user
/// could have prepared the way.
pub fn private_parent(file: &Path, mode: u32) -> Result<PathBuf, TrustError> {
    use std::os::unix::fs::DirBuilderExt as _;
    let abs = std::path::absolute(file).map_err(io_err("resolving", file))?;
    let dir = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    match check_path(&dir, Want::Dir) {
        Err(e) if e.is_not_found() => {}
        other => return other,
    }
    let existing = dir
        .ancestors()
        .find(|d| fs::symlink_metadata(d).is_ok())
        .unwrap_or(Path::new("/"));
    check_path(existing, Want::Dir)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(&dir)
        .map_err(io_err("creating", &dir))?;
    check_path(&dir, Want::Dir)
}

/// Opens a managed file without following a symlink and checks what was
/// opened: a regular file of root's, one link, not writable by others.
/// With `create`, a missing file is made (mode `mode`).
pub fn open_private(path: &Path, opts: &mut OpenOptions) -> Result<File, TrustError> {
    // O_NOFOLLOW is what protects; looking first only names the reason (the
    // kernel refuses O_CREAT on another user's symlink in a sticky directory
    // with EACCES rather than ELOOP).
    if let Ok(m) = fs::symlink_metadata(path)
        && m.file_type().is_symlink()
    {
        return Err(untrusted(path, &m, Problem::Symlink));
    }
    let file = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(
            |source| match (source.raw_os_error(), fs::symlink_metadata(path)) {
                (Some(libc::ELOOP), Ok(m)) => untrusted(path, &m, Problem::Symlink),
                _ => io_err("opening", path)(source),
            },
        )?;
    let meta = file.metadata().map_err(io_err("examining", path))?;
    if !meta.file_type().is_file() {
        return Err(untrusted(path, &meta, Problem::NotRegularFile));
    }
    if !trusted_owner(meta.uid()) {
        return Err(untrusted(path, &meta, Problem::NotRoot));
    }
    if meta.nlink() > 1 {
        return Err(untrusted(path, &meta, Problem::HardLinks(meta.nlink())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(path, &meta, Problem::Writable));
    }
    Ok(file)
}

/// A managed file's contents, checked as [`open_private`] does; `Ok(None)`
/// when there is none.
pub fn read_private(path: &Path) -> Result<Option<Vec<u8>>, TrustError> {
    let mut file = match open_private(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io_err("reading", path))?;
    Ok(Some(bytes))
}

/// Replaces `path` with `bytes`, root's alone (0600), never through a
/// symlink: written beside it and renamed over it, so a reader sees the old
/// contents or the new, never half.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    f.write_all(bytes)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// A private temporary directory (0700 under the system's sticky /tmp).
    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_file_of_roots_in_root_directories_passes() {
        let t = tmp();
        let f = t.path().join("policy.toml");
        fs::write(&f, "x").unwrap();
        chmod(&f, 0o644);
        assert_eq!(check_path(&f, Want::File).unwrap(), f);
        assert!(check_path(t.path(), Want::Dir).is_ok());
    }

    #[test]
    fn writable_files_and_directories_are_refused_with_the_fix() {
        let t = tmp();
        let f = t.path().join("policy.toml");
        fs::write(&f, "x").unwrap();
        chmod(&f, 0o666);
        let err = check_path(&f, Want::File).unwrap_err().to_string();
        assert!(err.contains("writable by users other than root"), "{err}");
        assert!(err.contains("chmod go-w"), "{err}");
        chmod(&f, 0o644);
        // The directory holding it: sticky is not enough.
        chmod(t.path(), 0o1777);
        let err = check_path(&f, Want::File).unwrap_err().to_string();
        assert!(err.contains(&t.path().display().to_string()), "{err}");
        // A sticky directory on the way is.
        let sub = t.path().join("sub");
        fs::create_dir(&sub).unwrap();
        chmod(&sub, 0o755);
        let g = sub.join("policy.toml");
        fs::write(&g, "x").unwrap();
        chmod(&g, 0o600);
        check_path(&g, Want::File).unwrap();
        chmod(t.path(), 0o777);
        assert!(check_path(&g, Want::File).is_err(), "not sticky");
        chmod(t.path(), 0o700);
    }

    #[test]
    fn symlinks_are_followed_and_checked_where_they_point() {
        if !is_root() {
            return;
        }
        let t = tmp();
        // The ConfigMap layout: policy.toml -> ..data/policy.toml, ..data ->
        // ..v1 (a directory).
        let v1 = t.path().join("..v1");
        fs::create_dir(&v1).unwrap();
        chmod(&v1, 0o755);
        fs::write(v1.join("policy.toml"), "x").unwrap();
        std::os::unix::fs::symlink("..v1", t.path().join("..data")).unwrap();
        let link = t.path().join("policy.toml");
        std::os::unix::fs::symlink("..data/policy.toml", &link).unwrap();
        assert_eq!(
            check_path(&link, Want::File).unwrap(),
            v1.join("policy.toml")
        );
        // A user's directory at the end of a link.
        nix::unistd::chown(&v1, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let err = check_path(&link, Want::File).unwrap_err().to_string();
        assert!(
            err.contains("not owned by root") && err.contains("nobody"),
            "{err}"
        );
        nix::unistd::chown(&v1, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
        // A user's symlink.
        let theirs = t.path().join("theirs");
        std::os::unix::fs::symlink("..v1/policy.toml", &theirs).unwrap();
        std::os::unix::fs::lchown(&theirs, Some(65534), None).unwrap();
        assert!(check_path(&theirs, Want::File).is_err());
        // A loop.
        std::os::unix::fs::symlink("loop", t.path().join("loop")).unwrap();
        let err = check_path(&t.path().join("loop"), Want::File)
            .unwrap_err()
            .to_string();
        assert!(err.contains("too many levels"), "{err}");
    }

    #[test]
    fn private_files_are_written_whole_and_read_back_checked() {
        let t = tmp();
        let f = t.path().join("record.json");
        assert_eq!(read_private(&f).unwrap(), None);
        write_private(&f, b"one").unwrap();
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        write_private(&f, b"two").unwrap();
        assert_eq!(read_private(&f).unwrap().unwrap(), b"two");
        chmod(&f, 0o646);
        assert!(read_private(&f).is_err(), "writable by others");
        chmod(&f, 0o600);
        let link = t.path().join("link.json");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        let err = read_private(&link).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{err}");
        fs::hard_link(&f, t.path().join("other")).unwrap();
        let err = read_private(&f).unwrap_err().to_string();
        assert!(err.contains("hard links"), "{err}");
    }

    #[test]
    fn a_private_parent_is_made_only_below_a_trusted_directory() {
        let t = tmp();
        let file = t.path().join("a/b/audit.jsonl");
        private_parent(&file, 0o750).unwrap();
        assert_eq!(
            fs::metadata(t.path().join("a/b")).unwrap().mode() & 0o777,
            0o750
        );
        let open = t.path().join("open");
        fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let err = private_parent(&open.join("x/audit.jsonl"), 0o750)
            .unwrap_err()
            .to_string();
        assert!(err.contains("writable"), "{err}");
        assert!(
            !open.join("x").exists(),
            "nothing made in an open directory"
        );
    }

    /// Ubuntu's `/var/log` is `root:syslog 0775`: writable by a group alone
    /// is writable by users other than root (the group's members could swap
    /// the audit log's directory), so it is refused as 0777 is.
    #[test]
    fn a_directory_writable_by_its_group_alone_is_refused() {
        if !is_root() {
            eprintln!("skipped: chown to another group needs root");
            return;
        }
        let t = tmp();
        let log = t.path().join("log");
        fs::create_dir(&log).unwrap();
        std::os::unix::fs::chown(&log, Some(0), Some(4)).unwrap();
        chmod(&log, 0o775);
        let err = private_parent(&log.join("enforcer/audit.jsonl"), 0o750)
            .unwrap_err()
            .to_string();
        assert!(err.contains("writable by users other than root"), "{err}");
        assert!(err.contains(&log.display().to_string()), "{err}");
        assert!(!log.join("enforcer").exists(), "nothing made below it");
        let f = log.join("audit.jsonl");
        chmod(&log, 0o755);
        fs::write(&f, "").unwrap();
        std::os::unix::fs::chown(&f, Some(0), Some(4)).unwrap();
        chmod(&f, 0o664);
        assert!(check_path(&f, Want::File).is_err(), "a group-writable file");
        // Without the group's write bit both pass.
        chmod(&f, 0o644);
        check_path(&f, Want::File).unwrap();
    }
}
