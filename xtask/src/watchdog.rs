//! A host test executable that outlives its limit is killed with what it
//! started, so one hung test fails the suite (cargo reports the executable
//! killed by a signal and, with `--no-fail-fast`, goes on) instead of holding
//! CI past its own limit. `cargo xtask vmtest`'s guest does the same with
//! timeout(1).
//!
//! Test executables are the direct children of `cargo test` (rustdoc's too);
//! each is timed from when the watchdog first saw it. Killing the tree
//! skips the guards of the tests it ran: `sweep::run` removes what they
//! leave, after the suite and before the next one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The default limit per executable; `ENFORCER_TEST_EXEC_TIMEOUT` (seconds)
/// sets another. The slowest executable takes about four minutes here.
const DEFAULT_LIMIT: Duration = Duration::from_secs(20 * 60);

pub(crate) struct Watchdog {
    killed: Arc<Mutex<Vec<String>>>,
}

impl Watchdog {
    /// Watches the children of `cargo` (its pid).
    pub(crate) fn start(cargo: u32) -> Watchdog {
        let limit = std::env::var("ENFORCER_TEST_EXEC_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIMIT);
        let killed = Arc::new(Mutex::new(Vec::new()));
        let out = killed.clone();
        thread::spawn(move || {
            let mut seen: HashMap<i32, Instant> = HashMap::new();
            // Ends when cargo has gone (the suite is over).
            while std::path::Path::new(&format!("/proc/{cargo}")).exists() {
                let table = processes();
                let children: Vec<i32> = table
                    .iter()
                    .filter(|(_, p)| p.ppid == cargo as i32)
                    .map(|(pid, _)| *pid)
                    .collect();
                seen.retain(|pid, _| children.contains(pid));
                for pid in children {
                    let since = *seen.entry(pid).or_insert_with(Instant::now);
                    if since.elapsed() > limit {
                        let name = table
                            .get(&pid)
                            .map(|p| p.exe.display().to_string())
                            .unwrap_or_default();
                        eprintln!(
                            "[test] {name} (PID {pid}) ran longer than {} s: killed with \
                             what it started (ENFORCER_TEST_EXEC_TIMEOUT sets the limit)",
                            limit.as_secs()
                        );
                        if let Ok(mut k) = out.lock() {
                            k.push(name);
                        }
                        kill_tree(pid, &table);
                        seen.remove(&pid);
                    }
                }
                thread::sleep(Duration::from_secs(2));
            }
        });
        Watchdog { killed }
    }

    /// The executables it killed.
    pub(crate) fn killed(&self) -> Vec<String> {
        self.killed.lock().map(|k| k.clone()).unwrap_or_default()
    }
}

struct Proc {
    ppid: i32,
    exe: PathBuf,
}

fn processes() -> HashMap<i32, Proc> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some(ppid) = ppid_of(&stat) {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            out.insert(pid, Proc { ppid, exe });
        }
    }
    out
}

/// The parent pid in a `/proc/PID/stat` line (after the command's closing
/// parenthesis, which the command itself may contain).
fn ppid_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// SIGKILL to `root` and every descendant, children first stopped so none
/// escapes by forking while the tree is walked.
fn kill_tree(root: i32, table: &HashMap<i32, Proc>) {
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            table
                .iter()
                .filter(|(_, p)| p.ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    for pid in &tree {
        // SAFETY: kill(2) with a pid and a signal; no memory is passed.
        unsafe { libc::kill(*pid, libc::SIGSTOP) };
    }
    for pid in &tree {
        // SAFETY: as above.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_after_the_last_parenthesis() {
        assert_eq!(ppid_of("42 (a) b) S 7 42 42 0"), Some(7));
        assert_eq!(ppid_of("1 (init) S 0 1 1"), Some(0));
        assert_eq!(ppid_of("garbage"), None);
    }

    #[test]
    fn a_child_past_its_limit_is_killed_with_its_children() {
        // A stand-in for cargo: a shell whose child sleeps and has a child.
        let mut cargo = std::process::Command::new("sh")
            .args(["-c", "sh -c 'sleep 60 & sleep 60; wait'; exit 0"])
            .spawn()
            .unwrap();
        // SAFETY: setting an environment variable before threads read it in
        // this test executable's own process; other tests do not read it.
        unsafe { std::env::set_var("ENFORCER_TEST_EXEC_TIMEOUT", "1") };
        let dog = Watchdog::start(cargo.id());
        let start = Instant::now();
        let st = cargo.wait().unwrap();
        assert!(st.success());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "killed well before 60 s"
        );
        assert_eq!(dog.killed().len(), 1, "{:?}", dog.killed());
    }
}
