//! Before the suite runs: remove what an earlier, killed run of it left.
//!
//! Every test names what it makes `enf-test-<what>-<pid>-<n>` or
//! `enforcer-test-<pid>-<n>` (pid of the test process). A killed run leaves
//! such groups, pin directories, scratch directories, bpffs mounts and
//! agents (one in observe mode counts at the cgroup2 root). Only names whose
//! pid is no longer alive are touched, so a run going on next to this one
//! keeps its own. Nothing else on the host is looked at twice.

use std::fs;
use std::path::{Path, PathBuf};

/// The test pid in a name made by the suite, if it is one.
fn test_pid(name: &str) -> Option<i32> {
    if !(name.starts_with("enf-test-") || name.starts_with("enforcer-test-")) {
        return None;
    }
    let mut parts = name.rsplit('-');
    parts.next()?.parse::<u64>().ok()?;
    parts.next()?.parse().ok()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A name of a test run that is over.
fn stale(name: &str) -> bool {
    test_pid(name).is_some_and(|pid| !alive(pid))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn name_of(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// Agents started by a finished run: their command line names a stale pin
/// directory, pid file or audit log.
fn kill_stale_agents() -> usize {
    let mut killed = 0;
    for proc_dir in entries(Path::new("/proc")) {
        let Ok(pid) = name_of(&proc_dir).parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_agent = args.iter().any(|a| a == "run")
            && args
                .first()
                .is_some_and(|a| a.ends_with("/enforcer") || a == "enforcer");
        let stale_arg = args
            .iter()
            .any(|a| Path::new(a).ancestors().any(|p| stale(name_of(p))));
        if is_agent && stale_arg {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed += 1;
        }
    }
    killed
}

/// Kills what is inside a stale group and removes it, children first.
fn remove_group(dir: &Path) {
    for child in entries(dir) {
        if child.is_dir() {
            remove_group(&child);
        }
    }
    for _ in 0..50 {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = fs::write(dir.join("freezer.state"), "THAWED");
        let _ = fs::write(dir.join("cgroup.freeze"), "0");
        if fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Mount points of cgroup filesystems and bpffs, from mountinfo.
fn mounts() -> Vec<(PathBuf, String)> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mount_point = l.split(' ').nth(4)?;
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            Some((PathBuf::from(mount_point), fstype.to_string()))
        })
        .collect()
}

/// podman containers and images of the DaemonSet test (daemonset.rs) a
/// killed run left: the container is named after the run, the image's
/// tag ends with that name.
fn remove_stale_containers() -> usize {
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let stale_in = |s: &str| s.find("enf-test-").is_some_and(|i| stale(&s[i..]));
    let mut removed = 0;
    let names = podman(&["ps", "--all", "--format", "{{.Names}}"]).unwrap_or_default();
    for name in names.lines().filter(|n| stale_in(n)) {
        let _ = podman(&["rm", "--force", "--time", "0", name]);
        removed += 1;
    }
    let images = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).unwrap_or_default();
    for image in images.lines().filter(|i| stale_in(i)) {
        let _ = podman(&["rmi", "--force", image]);
        removed += 1;
    }
    removed
}

/// Removes every stale leftover; returns a one-line summary if anything was.
pub(crate) fn run() -> Option<String> {
    let agents = kill_stale_agents();
    // Before the groups: a container's processes live in one of them.
    let containers = remove_stale_containers();
    if agents > 0 {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut groups = 0;
    let mut pins = 0;
    let mut other = 0;
    for (mount, fstype) in mounts() {
        match fstype.as_str() {
            "cgroup" | "cgroup2" => {
                for dir in entries(&mount) {
                    if dir.is_dir() && stale(name_of(&dir)) {
                        remove_group(&dir);
                        groups += 1;
                    }
                }
            }
            "bpf" if stale(name_of(&mount)) => {
                let _ = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH);
                let _ = fs::remove_dir(&mount);
                other += 1;
            }
            "bpf" => {
                for dir in entries(&mount) {
                    if stale(name_of(&dir)) {
                        // Unpinning a link detaches it: the programs go too.
                        let _ = fs::remove_dir_all(&dir);
                        pins += 1;
                    }
                }
            }
            _ => {}
        }
    }
    for dir in entries(&std::env::temp_dir()) {
        if stale(name_of(&dir)) && !mounts().iter().any(|(m, _)| m == &dir) {
            let _ = fs::remove_dir_all(&dir);
            other += 1;
        }
    }
    (agents + containers + groups + pins + other > 0).then(|| {
        format!(
            "removed what an earlier test run left: {agents} agents, {containers} containers \
             and images, {groups} groups, {pins} pin directories, {other} scratch directories \
             and mounts"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_suite_carry_their_pid() {
        assert_eq!(test_pid("enf-test-agent-4242-7"), Some(4242));
        assert_eq!(test_pid("enforcer-test-99-0"), Some(99));
        assert_eq!(test_pid("enf-test-loop-kill-12-3"), Some(12));
        assert_eq!(test_pid("process_api"), None);
        assert_eq!(test_pid("enf-test-x"), None);
        assert_eq!(test_pid("system.slice"), None);
    }
}
