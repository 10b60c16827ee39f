//! Reading and writing cgroupfs files, with the kernel's terse errno turned into
//! something a person can act on.

use std::io::ErrorKind;
use std::path::Path;

use super::error::CgroupError;

pub(crate) fn read_trim(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| CgroupError::io("reading", path, e))
}

fn hint_for(path: &Path, err: &std::io::Error) -> String {
    let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    match err.raw_os_error() {
        Some(libc::ENOSPC) if file == "cgroup.procs" || file == "tasks" => {
            " (a v1 cpuset group needs cpuset.cpus and cpuset.mems set before it can hold processes)".into()
        }
        Some(libc::EBUSY) if file == "cgroup.subtree_control" => {
            " (cgroup v2 allows controllers in subtree_control only on groups without processes of their own)".into()
        }
        Some(libc::EBUSY) => " (the kernel refused because the group is in use; lower usage first or move its processes)".into(),
        Some(libc::EOPNOTSUPP) if file == "cgroup.procs" => {
            " (on cgroup v2 processes may only live in leaf groups or the root)".into()
        }
        Some(libc::EINVAL) => " (the kernel rejected the value for this file)".into(),
        Some(libc::ERANGE) => " (the value is outside what this host allows)".into(),
        _ => String::new(),
    }
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|e| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        hint: hint_for(path, &e),
        source: e,
    })
}

/// `mkdir`, reporting whether we made it (so rollback removes only our own).
pub(crate) fn mkdir(path: &Path) -> Result<bool, CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CgroupError::io("creating", path, e)),
    }
}

/// Remove a cgroup directory. A group whose last process just exited can be busy
/// for a moment, so EBUSY is retried briefly.
pub(crate) fn rmdir(path: &Path) -> Result<(), CgroupError> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(CgroupError::io("removing", path, e)),
        }
    }
}

/// Child group directories (names only), sorted.
pub(crate) fn subdirs(path: &Path) -> Result<Vec<String>, CgroupError> {
    let rd = std::fs::read_dir(path).map_err(|e| CgroupError::io("listing", path, e))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false)
            && let Some(n) = entry.file_name().to_str()
        {
            out.push(n.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// PIDs listed in a group's `cgroup.procs`.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = read_trim(&dir.join("cgroup.procs"))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}
