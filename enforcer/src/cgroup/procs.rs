//! Moving processes: `exec` (cgexec), `classify` (cgclassify), `which` (ps -o cgroup).

use std::path::Path;

use serde::Serialize;

use super::error::CgroupError;
use super::fsio::write;
use super::host::Cgroups;
use super::mounts::Version;
use super::path::{GroupPath, GroupSpec};

/// One line of /proc/PID/cgroup.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Membership {
    pub hierarchy_id: u32,
    pub controllers: String,
    pub path: String,
}

impl Cgroups {
    /// Resolve where `pid` must be written for these specs, creating only the
    /// cgroup2 mirror of a group that exists in its v1 hierarchies.
    fn placements(&self, specs: &[GroupSpec]) -> Result<Vec<(usize, GroupPath)>, CgroupError> {
        let mut out: Vec<(usize, GroupPath)> = Vec::new();
        let mut mirrors = Vec::new();
        for spec in specs {
            let t = self.targets(&spec.controllers)?;
            for &h in &t.hiers {
                if self.only_mirror(h, &spec.controllers) {
                    mirrors.push((h, spec.path.clone()));
                    continue;
                }
                if !self.exists(h, &spec.path) {
                    return Err(CgroupError::NotFound {
                        path: spec.path.to_string(),
                        hierarchy: self.hierarchy(h).label(),
                    });
                }
                if !out.iter().any(|(oh, _)| *oh == h) {
                    out.push((h, spec.path.clone()));
                }
            }
        }
        for (h, p) in mirrors {
            if !out.iter().any(|(oh, _)| *oh == h) {
                out.push((h, p));
            }
        }
        Ok(out)
    }

    fn place(&self, placements: &[(usize, GroupPath)], pid: i32) -> Result<(), CgroupError> {
        for (h, p) in placements {
            if Some(*h) == self.mirror() && !self.exists(*h, p) {
                let t = super::host::Targets {
                    hiers: [*h].into_iter().collect(),
                    v2_enable: Vec::new(),
                };
                self.create_in(&t, p, &Default::default(), &mut Default::default())?;
            }
            write(&self.dir(*h, p).join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// cgclassify: move existing processes (whole thread groups).
    pub fn classify(&self, specs: &[GroupSpec], pids: &[i32]) -> Result<(), CgroupError> {
        for &pid in pids {
            if pid <= 0 || !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(CgroupError::NoSuchProcess { pid });
            }
        }
        let placements = self.placements(specs)?;
        for &pid in pids {
            self.place(&placements, pid)?;
        }
        Ok(())
    }

    /// cgexec's first half: move the calling process; the caller then execs.
    pub fn enter(&self, specs: &[GroupSpec]) -> Result<(), CgroupError> {
        let placements = self.placements(specs)?;
        self.place(&placements, std::process::id() as i32)
    }
}

/// Parse /proc/PID/cgroup.
pub fn memberships(pid: i32) -> Result<Vec<Membership>, CgroupError> {
    let path = format!("/proc/{pid}/cgroup");
    // Bytes: a group named by someone else need not be UTF-8.
    let raw = std::fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CgroupError::NoSuchProcess { pid }
        } else {
            CgroupError::io("reading", Path::new(&path), e)
        }
    })?;
    Ok(parse_proc_cgroup(&crate::escape::bytes(&raw)))
}

pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            Some(Membership {
                hierarchy_id: it.next()?.parse().ok()?,
                controllers: it.next()?.to_string(),
                path: it.next()?.to_string(),
            })
        })
        .collect()
}

/// `ps -o cgroup` style: non-root memberships joined by commas, v1 first.
pub fn ps_format(m: &[Membership]) -> String {
    let parts: Vec<String> = m
        .iter()
        .filter(|x| x.path != "/")
        .map(|x| format!("{}:{}:{}", x.hierarchy_id, x.controllers, x.path))
        .collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(",")
    }
}

/// The cgroup2 path of `pid` (the `0::` line), if it has one.
pub fn v2_path(m: &[Membership]) -> Option<&str> {
    m.iter()
        .find(|x| x.hierarchy_id == 0 && x.controllers.is_empty())
        .map(|x| x.path.as_str())
}

/// Whether a process's membership line belongs to a hierarchy of `version`.
pub fn is_version(m: &Membership, version: Version) -> bool {
    (m.hierarchy_id == 0 && m.controllers.is_empty()) == (version == Version::V2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_cgroup_and_ps_format() {
        let text = "4:memory:/process_api/x\n3:cpuset:/\n1:name=systemd:/user.slice\n0::/\n";
        let m = parse_proc_cgroup(text);
        assert_eq!(m.len(), 4);
        assert_eq!(
            ps_format(&m),
            "4:memory:/process_api/x,1:name=systemd:/user.slice"
        );
        assert_eq!(v2_path(&m), Some("/"));
        assert!(is_version(&m[3], Version::V2));
        assert!(is_version(&m[0], Version::V1));
    }
}
