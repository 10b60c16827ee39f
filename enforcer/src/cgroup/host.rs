//! The host's cgroup hierarchies and how controller names map onto them.
//!
//! Discovery (reading mountinfo and a few root files) is kept apart from acting, so
//! every verb can be tested against a fake cgroupfs in a temp dir.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::error::CgroupError;
use super::fsio::read_trim;
use super::keys::HostFacts;
use super::mounts::{self, Hierarchy, Layout, Version};
use super::path::GroupPath;
use crate::units::parse_list;

/// The hierarchies of one host, discovered once.
#[derive(Debug, Clone)]
pub struct Cgroups {
    hiers: Vec<Hierarchy>,
    facts: HostFacts,
}

/// Where a set of controllers lives: which hierarchies to act in, and which v2
/// controllers to enable in the ancestors' `cgroup.subtree_control`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub hiers: BTreeSet<usize>,
    pub v2_enable: Vec<String>,
}

impl Cgroups {
    /// Discover from this process's mountinfo.
    pub fn discover() -> Result<Self, CgroupError> {
        let p = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(p).map_err(|e| CgroupError::io("reading", p, e))?;
        Self::from_mountinfo(&text)
    }

    /// Discover from mountinfo text; the mount points are read for the rest
    /// (a test points them into a temp dir).
    pub fn from_mountinfo(text: &str) -> Result<Self, CgroupError> {
        let hiers = mounts::hierarchies_from(mounts::parse_mountinfo(text))?;
        let facts = read_facts(&hiers);
        Ok(Cgroups { hiers, facts })
    }

    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hiers
    }

    pub fn hierarchy(&self, idx: usize) -> &Hierarchy {
        &self.hiers[idx]
    }

    pub fn facts(&self) -> &HostFacts {
        &self.facts
    }

    pub fn layout(&self) -> Layout {
        mounts::layout_of(&self.hiers)
    }

    /// The cgroup2 hierarchy, if mounted.
    pub fn v2(&self) -> Option<usize> {
        self.hiers.iter().position(|h| h.version == Version::V2)
    }

    /// On hybrid hosts every group is mirrored into the cgroup2 tree, because eBPF
    /// programs see a process's cgroup2 id and nothing else.
    pub fn mirror(&self) -> Option<usize> {
        (self.layout() == Layout::Hybrid)
            .then(|| self.v2())
            .flatten()
    }

    /// Whether hierarchy `h` is among the targets of `controllers` only as the
    /// cgroup2 mirror, holding none of them. Not so where cgroup2 itself holds
    /// a named controller: on a hybrid host whose kernel lacks that v1
    /// controller (6.12 without v1 memory), or for `cgroup2` and a `freezer`
    /// with no v1 hierarchy. `*` names every hierarchy, the mirror as a mirror.
    pub fn only_mirror(&self, h: usize, controllers: &[String]) -> bool {
        Some(h) == self.mirror()
            && !controllers
                .iter()
                .any(|c| c != "*" && self.locate(c).is_ok_and(|(i, _)| i == h))
    }

    /// `/sys/fs/cgroup/<h>/<path>` for hierarchy `idx`.
    pub fn dir(&self, idx: usize, path: &GroupPath) -> PathBuf {
        path.dir_in(&self.hiers[idx].mount_point)
    }

    pub fn exists(&self, idx: usize, path: &GroupPath) -> bool {
        self.dir(idx, path).is_dir()
    }

    /// Every controller name this host offers, for error messages.
    pub fn available(&self) -> String {
        let mut names: Vec<String> = Vec::new();
        for h in &self.hiers {
            for c in &h.controllers {
                if !names.contains(c) {
                    names.push(c.clone());
                }
            }
        }
        if self.v2().is_some() {
            if !names.iter().any(|n| n == "freezer") {
                names.push("freezer".into());
            }
            names.push("cgroup2".into());
        }
        names.join(", ")
    }

    /// Which hierarchy holds `controller` and, for v2, the controller to enable
    /// (None for v2's built-in freezer).
    pub fn locate(&self, controller: &str) -> Result<(usize, Option<String>), CgroupError> {
        // v2's `io` is v1's `blkio`: a policy in v2 spelling works on v1 too.
        let v1_name = match controller {
            "io" => "blkio",
            c => c,
        };
        if let Some(i) = self
            .hiers
            .iter()
            .position(|h| h.version == Version::V1 && h.has(v1_name))
        {
            return Ok((i, None));
        }
        if let Some(i) = self.v2() {
            let alias = match controller {
                "blkio" => "io",
                "cpuacct" => "cpu",
                c => c,
            };
            if self.hiers[i].has(alias) {
                return Ok((i, Some(alias.to_string())));
            }
            // The v2 freezer is part of the core, not a controller; `cgroup2`
            // names the tree itself.
            if controller == "freezer" || controller == "cgroup2" {
                return Ok((i, None));
            }
        }
        Err(CgroupError::UnknownController {
            name: controller.to_string(),
            available: self.available(),
        })
    }

    /// Resolve `-g` controllers (or `*` for all) to hierarchies, adding the
    /// cgroup2 mirror on hybrid hosts.
    pub fn targets(&self, controllers: &[String]) -> Result<Targets, CgroupError> {
        let mut t = Targets::default();
        for c in controllers {
            if c == "*" {
                // On a hybrid host the cgroup2 tree is the mirror eBPF counts
                // by: `*` puts the group there but enables nothing in its
                // root or ancestors (a controller in the hybrid cgroup2
                // root's subtree_control makes crun refuse every container).
                let hybrid = self.mirror().is_some();
                for (i, h) in self.hiers.iter().enumerate() {
                    t.hiers.insert(i);
                    if h.version == Version::V2 && !hybrid {
                        for c in &h.controllers {
                            if !t.v2_enable.contains(c) {
                                t.v2_enable.push(c.clone());
                            }
                        }
                    }
                }
                continue;
            }
            let (i, enable) = self.locate(c)?;
            t.hiers.insert(i);
            if let Some(e) = enable
                && !t.v2_enable.contains(&e)
            {
                t.v2_enable.push(e);
            }
        }
        if let Some(m) = self.mirror() {
            t.hiers.insert(m);
        }
        Ok(t)
    }

    /// Hierarchies in which `path` currently exists.
    pub fn present_in(&self, path: &GroupPath) -> Vec<usize> {
        (0..self.hiers.len())
            .filter(|&i| self.exists(i, path))
            .collect()
    }
}

/// Effective CPUs and memory nodes as cgroupfs sees them, with sysfs as fallback.
fn read_facts(hiers: &[Hierarchy]) -> HostFacts {
    let mut candidates_cpus: Vec<PathBuf> = Vec::new();
    let mut candidates_mems: Vec<PathBuf> = Vec::new();
    for h in hiers {
        match h.version {
            Version::V1 if h.has("cpuset") => {
                candidates_cpus.push(h.mount_point.join("cpuset.effective_cpus"));
                candidates_cpus.push(h.mount_point.join("cpuset.cpus"));
                candidates_mems.push(h.mount_point.join("cpuset.effective_mems"));
                candidates_mems.push(h.mount_point.join("cpuset.mems"));
            }
            Version::V2 => {
                candidates_cpus.push(h.mount_point.join("cpuset.cpus.effective"));
                candidates_mems.push(h.mount_point.join("cpuset.mems.effective"));
            }
            Version::V1 => {}
        }
    }
    candidates_cpus.push(PathBuf::from("/sys/devices/system/cpu/online"));
    candidates_mems.push(PathBuf::from("/sys/devices/system/node/online"));
    let first_list = |paths: &[PathBuf]| {
        paths
            .iter()
            .filter_map(|p| read_trim(p).ok())
            .filter_map(|t| parse_list(&t).ok())
            .find(|l| !l.is_empty())
    };
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    HostFacts {
        online_cpus: first_list(&candidates_cpus).unwrap_or_else(|| vec![0]),
        online_mems: first_list(&candidates_mems).unwrap_or_else(|| vec![0]),
        page_size: if page > 0 { page as u64 } else { 4096 },
    }
}
