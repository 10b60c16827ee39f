//! One agent per group: each agent holds an exclusive `flock` on the cgroup2
//! directory of every group it manages (and, in observe mode, on the cgroup2
//! root) for as long as it manages it.
//!
//! Two agents with their own pin directories and pid files on the same groups
//! would each attach their programs, enforce the rules and count the traffic:
//! double drops, double closed-loop actions, two sets of series. A lock on
//! the group itself is what every agent on the host sees, whatever its pin
//! directory, pid file or mount namespace (a container with the host's
//! cgroupfs sees the same inodes), and the kernel releases it when the agent
//! dies, even by SIGKILL: no registry to go stale. `/proc/locks` names the
//! holder, and its open files its pin directory and pid file.
//!
//! Scope: a claim is on exactly the groups an agent manages (its policy's,
//! and the root for observe mode). An agent observing the whole host and
//! another managing some groups do not conflict: observe mode only counts.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::error::AgentError;
use crate::cgroup::Cgroups;
use crate::plan::Plan;

/// The groups this agent holds, by cgroup2 directory.
#[derive(Debug, Default)]
pub(super) struct Claims {
    held: BTreeMap<PathBuf, File>,
}

impl Claims {
    /// Claims the group `label` whose cgroup2 directory is `dir`. `Ok(true)`
    /// if this call took it, `Ok(false)` if it was held already or the
    /// group does not exist yet (claim it again once it is made); another
    /// agent holding it: [`AgentError::GroupClaimed`].
    pub(super) fn claim(&mut self, label: &str, dir: &Path) -> Result<bool, AgentError> {
        if self.held.contains_key(dir) {
            return Ok(false);
        }
        let io = |op| {
            move |source| AgentError::Io {
                op,
                path: dir.to_path_buf(),
                source,
            }
        };
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("opening")(e)),
        };
        // SAFETY: flock on a valid open fd; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io("locking")(e));
            }
            let meta = file.metadata().map_err(io("examining"))?;
            let pid = super::lock::flock_holder(meta.dev(), meta.ino());
            return Err(AgentError::GroupClaimed {
                group: label.to_string(),
                other: super::lock::other_agent(pid),
            });
        }
        self.held.insert(dir.to_path_buf(), file);
        Ok(true)
    }

    /// Claims every existing group of `wanted` ([`wanted`]); adds those it
    /// took to `taken`.
    pub(super) fn claim_all(
        &mut self,
        wanted: &[(String, PathBuf)],
        taken: &mut Vec<PathBuf>,
    ) -> Result<(), AgentError> {
        for (label, dir) in wanted {
            if self.claim(label, dir)? {
                taken.push(dir.clone());
            }
        }
        Ok(())
    }

    /// Gives up the claims on `dirs` (an install that failed gives back what
    /// it took).
    pub(super) fn release(&mut self, dirs: &[PathBuf]) {
        for d in dirs {
            self.held.remove(d);
        }
    }

    /// Keeps only the claims on `dirs` (the groups now managed).
    pub(super) fn keep_only(&mut self, dirs: &[PathBuf]) {
        self.held.retain(|d, _| dirs.contains(d));
    }
}

/// What an agent claims for `plan` (label, cgroup2 directory): the
/// policy's groups, and in observe mode the cgroup2 root.
pub(super) fn wanted(
    cg: &Cgroups,
    v2: usize,
    plan: Option<&Plan>,
    observe: bool,
) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = plan
        .iter()
        .flat_map(|p| &p.groups)
        .map(|gp| (gp.path.as_str().to_string(), cg.dir(v2, &gp.path)))
        .collect();
    if observe {
        out.push(("/".to_string(), cg.hierarchy(v2).mount_point.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_directory_is_refused_to_a_second_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("group");
        std::fs::create_dir(&dir).unwrap();
        let mut first = Claims::default();
        assert!(first.claim("g", &dir).unwrap());
        assert!(!first.claim("g", &dir).unwrap(), "held already");
        // Another agent's claims (a lock of another open file).
        let mut second = Claims::default();
        match second.claim("g", &dir) {
            Err(AgentError::GroupClaimed { group, other }) => {
                assert_eq!(group, "g");
                assert_eq!(other.pid, Some(std::process::id() as i32));
            }
            other => panic!("expected GroupClaimed, got {other:?}"),
        }
        assert!(!second.claim("h", &tmp.path().join("missing")).unwrap());
        first.keep_only(&[]);
        assert!(second.claim("g", &dir).unwrap(), "released");
    }
}
