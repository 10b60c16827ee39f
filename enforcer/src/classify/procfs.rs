//! What the rules match a process by, read from /proc: the effective uid
//! and gid (`Uid:`/`Gid:` of `status`), and the process name: the
//! executable the kernel ran (`/proc/PID/exe`), or for a script (whose
//! `exe` is the interpreter) the script's path as the kernel recorded it at
//! exec.
//!
//! libcgroup (`cgroup_get_procname_from_procfs`) takes a script's path from
//! `cmdline` when the comm differs from the executable's name. Both are the
//! process's own words: `exec -a /usr/bin/special ./link-named-special` set
//! them and was matched as `/usr/bin/special`. Here nothing the process says
//! about itself names it: a running script (found at start, or given to
//! `cgclassify`) is matched by its interpreter.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim_start)
}

/// The second number of a `Uid:`/`Gid:` line (the effective id).
fn effective(status: &str, key: &str) -> Option<u32> {
    status_field(status, key)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `(euid, egid)` of `pid`, None once it is gone.
pub fn euid_egid(pid: i32) -> Option<(u32, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((effective(&s, "Uid:")?, effective(&s, "Gid:")?))
}

/// What the kernel recorded when a process exec'd: the file name execve
/// was given, and whether the process is stopped at that exec (so its
/// cwd is still the one a relative name was resolved against).
#[derive(Debug, Clone, Copy)]
pub struct Exec<'a> {
    pub path: &'a [u8],
    pub held: bool,
}

/// The name rules match `pid` by: its executable, or the script an exec
/// the kernel reported ran. None once the process is gone.
pub fn procname(pid: i32, exec: Option<Exec<'_>>) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        // A kernel thread has no executable: its comm.
        return status_field(&status, "Name:").map(|n| n.trim_end_matches('\n').to_string());
    };
    if let Some(script) = exec.and_then(|e| script_path(pid, &exe, e)) {
        return Some(script);
    }
    Some(exe.to_string_lossy().into_owned())
}

/// The script an exec ran: the name execve was given (made absolute against
/// the cwd only while the process is held at that exec: running, it could
/// have changed directory since), when it is a `#!` file other than the
/// executable itself.
fn script_path(pid: i32, exe: &Path, exec: Exec<'_>) -> Option<String> {
    let name = Path::new(std::ffi::OsStr::from_bytes(exec.path));
    let full: PathBuf = if name.is_absolute() {
        name.to_path_buf()
    } else if exec.held {
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .ok()?
            .join(name)
    } else {
        return None;
    };
    let real = std::fs::canonicalize(&full).ok()?;
    if real == exe {
        return None;
    }
    let mut head = [0u8; 2];
    let mut f = std::fs::File::open(&real).ok()?;
    std::io::Read::read_exact(&mut f, &mut head).ok()?;
    (&head == b"#!").then(|| real.to_string_lossy().into_owned())
}

/// The user name of `uid` and the groups whose member list names it.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// What `/proc/PID/stat` says of a process's state, parent and start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `T` (stopped by a signal), `t` (traced), ...
    pub state: char,
    pub ppid: i32,
    /// Clock ticks after boot: with the pid, names one process for good.
    pub start: u64,
}

/// `/proc/PID/stat`, None once the process is gone.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The comm (in parentheses) may hold anything: fields follow the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    // Fields 3 (state) .. 22 (starttime): 19 more after ppid.
    let start = f.nth(17)?.parse().ok()?;
    Some(Stat { state, ppid, start })
}

/// Whether `pid` still exists.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The pids of `pid`'s children (every thread's `children` file).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|s| s.parse::<i32>().ok()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_ids_and_names() {
        let status = "Name:\tbash\nUid:\t1000\t0\t0\t0\nGid:\t100\t5\t5\t5\n";
        assert_eq!(effective(status, "Uid:"), Some(0));
        assert_eq!(effective(status, "Gid:"), Some(5));
        let (me, _) = euid_egid(std::process::id() as i32).unwrap();
        assert_eq!(me, nix::unistd::geteuid().as_raw());
        let me = std::process::id() as i32;
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let name = procname(me, None).unwrap();
        assert_eq!(Path::new(&name), exe);
    }

    #[test]
    fn stat_reads_state_parent_and_start() {
        let me = stat(std::process::id() as i32).unwrap();
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw());
        assert!(me.start > 0);
        assert!(matches!(me.state, 'R' | 'S'), "{me:?}");
        assert_eq!(stat(std::process::id() as i32).unwrap().start, me.start);
    }

    #[test]
    fn a_script_is_named_by_what_the_kernel_ran_not_by_argv() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tool.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let plain = dir.path().join("data");
        std::fs::write(&plain, "no shebang").unwrap();
        let me = std::process::id() as i32;
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy().into_owned();
        let real = std::fs::canonicalize(&script).unwrap();
        let abs = real.as_os_str().as_bytes();
        let named = |path: &[u8], held| procname(me, Some(Exec { path, held })).unwrap();
        assert_eq!(named(abs, false), real.to_string_lossy());
        // Not a script: the executable.
        assert_eq!(
            named(
                std::fs::canonicalize(&plain)
                    .unwrap()
                    .as_os_str()
                    .as_bytes(),
                false
            ),
            exe
        );
        // A relative name is only resolved while the process is held.
        let cwd = std::env::current_dir().unwrap();
        let rel = pathdiff(&real, &cwd);
        assert_eq!(named(rel.as_os_str().as_bytes(), false), exe);
        assert_eq!(
            named(rel.as_os_str().as_bytes(), true),
            real.to_string_lossy()
        );
        assert_eq!(named(b"/no/such/file", true), exe);
    }

    /// `to` relative to `from` (both absolute).
    fn pathdiff(to: &Path, from: &Path) -> PathBuf {
        let mut up = PathBuf::new();
        let mut base = from.to_path_buf();
        while !to.starts_with(&base) {
            up.push("..");
            base.pop();
        }
        up.join(to.strip_prefix(&base).unwrap())
    }
}
