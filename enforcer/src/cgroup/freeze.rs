//! `freeze`, `thaw` and `kill`: the seed's "groups can be frozen, stopped or
//! restarted". cgroup v2's `cgroup.freeze`/`cgroup.kill` where the group is in the
//! cgroup2 tree (every group enforcer makes is), v1's freezer otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::error::CgroupError;
use super::fsio::{procs, read_trim, subdirs, write};
use super::host::Cgroups;
use super::mounts::Version;
use super::path::GroupPath;

const SETTLE: Duration = Duration::from_secs(10);

/// How a group can be frozen on this host.
enum Freezer {
    V2(PathBuf),
    V1(PathBuf),
}

impl Cgroups {
    fn freezer(&self, path: &GroupPath) -> Result<Freezer, CgroupError> {
        if path.is_root() {
            return Err(CgroupError::RootForbidden {
                action: "frozen or killed",
            });
        }
        if let Some(v2) = self.v2() {
            let dir = self.dir(v2, path);
            if dir.join("cgroup.freeze").is_file() {
                return Ok(Freezer::V2(dir));
            }
        }
        if let Ok((h, None)) = self.locate("freezer")
            && self.hierarchy(h).version == Version::V1
            && self.exists(h, path)
        {
            return Ok(Freezer::V1(self.dir(h, path)));
        }
        Err(CgroupError::NotFound {
            path: path.to_string(),
            hierarchy: "freezer".into(),
        })
    }

    /// Freeze (or thaw) and wait until the kernel reports it done.
    pub fn set_frozen(&self, path: &GroupPath, frozen: bool) -> Result<Duration, CgroupError> {
        let start = Instant::now();
        match self.freezer(path)? {
            Freezer::V2(dir) => {
                write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                wait_for(&dir.join("cgroup.events"), want, |t| {
                    t.lines().any(|l| l == want)
                })?;
            }
            Freezer::V1(dir) => {
                let state = if frozen { "FROZEN" } else { "THAWED" };
                write(&dir.join("freezer.state"), state)?;
                wait_for(&dir.join("freezer.state"), state, |t| t.trim() == state)?;
            }
        }
        Ok(start.elapsed())
    }

    /// Signal every process in the group and its subgroups. SIGKILL on v2 uses
    /// `cgroup.kill`, which also catches processes forking meanwhile; otherwise
    /// the group is frozen while signalled so no child escapes. Returns how many
    /// processes were signalled (for cgroup.kill: how many were there).
    pub fn kill(&self, path: &GroupPath, sig: Signal) -> Result<usize, CgroupError> {
        let freezer = self.freezer(path);
        let dirs = self.kill_dirs(path)?;
        let count = dirs.iter().map(|d| all_procs(d).len()).max().unwrap_or(0);
        if let Ok(Freezer::V2(dir)) = &freezer
            && sig == Signal::SIGKILL
            && dir.join("cgroup.kill").is_file()
        {
            write(&dir.join("cgroup.kill"), "1")?;
            return Ok(count);
        }
        let frozen = freezer.is_ok() && self.set_frozen(path, true).is_ok();
        let mut pids: Vec<i32> = dirs.iter().flat_map(|d| all_procs(d)).collect();
        pids.sort_unstable();
        pids.dedup();
        for &pid in &pids {
            // A process that exited meanwhile is not an error.
            let _ = kill(Pid::from_raw(pid), sig);
        }
        if frozen {
            self.set_frozen(path, false)?;
        }
        Ok(pids.len())
    }

    fn kill_dirs(&self, path: &GroupPath) -> Result<Vec<PathBuf>, CgroupError> {
        let dirs: Vec<PathBuf> = self
            .present_in(path)
            .into_iter()
            .map(|h| self.dir(h, path))
            .collect();
        if dirs.is_empty() || path.is_root() {
            return Err(CgroupError::NotFound {
                path: path.to_string(),
                hierarchy: "any".into(),
            });
        }
        Ok(dirs)
    }
}

/// Processes of a group and all its descendants.
fn all_procs(dir: &Path) -> Vec<i32> {
    let mut out = procs(dir).unwrap_or_default();
    for c in subdirs(dir).unwrap_or_default() {
        out.extend(all_procs(&dir.join(c)));
    }
    out
}

fn wait_for(
    file: &Path,
    state: &'static str,
    done: impl Fn(&str) -> bool,
) -> Result<(), CgroupError> {
    let deadline = Instant::now() + SETTLE;
    loop {
        if done(&read_trim(file)?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(CgroupError::Timeout {
                path: file.to_path_buf(),
                state,
                secs: SETTLE.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
