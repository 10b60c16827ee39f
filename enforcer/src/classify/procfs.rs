//! What the rules match a process by, read from /proc as libcgroup reads it:
//! the effective uid and gid (`Uid:`/`Gid:` of `status`), and the process
//! name (`cgroup_get_procname_from_procfs`): the executable's path, or for a
//! script (whose `exe` is the interpreter) the script's path from `cmdline`.

use std::path::{Path, PathBuf};

/// Length of a task's comm without its NUL (`TASK_COMM_LEN - 1`).
const COMM_MAX: usize = 15;

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

fn basename(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

/// `strncmp(comm, basename(name), 15) == 0`: the comm is the name cut to
/// 15 bytes by the kernel.
fn comm_matches(comm: &str, name: &str) -> bool {
    let b = basename(name).as_bytes();
    let c = comm.as_bytes();
    b[..b.len().min(COMM_MAX)] == c[..c.len().min(COMM_MAX)]
}

/// `cgroup_get_procname_from_procfs`.
pub fn procname(pid: i32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let name = status_field(&status, "Name:")?
        .trim_end_matches('\n')
        .to_string();
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        // A kernel thread has no executable.
        return Some(name);
    };
    let exe = exe.to_string_lossy().into_owned();
    if comm_matches(&name, &exe) {
        return Some(exe);
    }
    // A script: /proc/PID/exe is the interpreter, the comm the script's name.
    if let Some(script) = script_path(pid, &name) {
        return Some(script);
    }
    Some(exe)
}

/// The argument of `cmdline` whose basename is the comm, made absolute
/// against the process's cwd.
fn script_path(pid: i32, comm: &str) -> Option<String> {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    for arg in cmdline.split(|&b| b == 0) {
        let a = String::from_utf8_lossy(arg);
        if !comm_matches(comm, &a) {
            continue;
        }
        if a.starts_with('/') {
            return Some(a.into_owned());
        }
        let full: PathBuf = cwd.join(a.as_ref());
        return std::fs::canonicalize(&full)
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
    }
    None
}

/// The user name of `uid` and the groups whose member list names it.
pub fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
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
        assert!(comm_matches("sleep", "/usr/bin/sleep"));
        assert!(!comm_matches("sleep", "/usr/bin/sleepy"));
        assert!(comm_matches(
            "a-very-long-nam",
            "/x/a-very-long-name-indeed"
        ));
        assert!(!comm_matches("bash", "/usr/bin/dash"));
        let (me, _) = euid_egid(std::process::id() as i32).unwrap();
        assert_eq!(me, nix::unistd::geteuid().as_raw());
        let name = procname(std::process::id() as i32).unwrap();
        assert!(name.starts_with('/'), "{name}");
    }
}
