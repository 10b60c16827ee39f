//! Where `top` reads from: the maps pinned under the pin directory (with or
//! without a running agent: the programs keep counting while none runs),
//! cgroupfs for memory and CPU, and the kernel's limiter state for budgets.

use std::path::{Path, PathBuf};

use crate::bpf::BpfError;
use crate::cgroup::Cgroups;
use crate::collect::{CgroupIndex, Collector, GroupReport};

/// Reads samples; rates come from the previous one.
pub struct Source {
    cg: Cgroups,
    collector: Collector,
    pin_dir: PathBuf,
}

/// Why there is nothing to show (yet).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Boxed: aya's errors are large.
    #[error(transparent)]
    Bpf(Box<BpfError>),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(
        "eBPF accounting needs a cgroup2 mount (none in /proc/self/mountinfo); mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`"
    )]
    NoCgroup2,
}

impl From<BpfError> for SourceError {
    fn from(e: BpfError) -> Self {
        SourceError::Bpf(Box::new(e))
    }
}

impl SourceError {
    /// Nothing is pinned (yet): no agent has run, or it is still starting.
    pub fn is_not_running(&self) -> bool {
        matches!(self, SourceError::Bpf(e) if matches!(**e, BpfError::NotRunning { .. }))
    }
}

impl Source {
    pub fn new(pin_dir: &Path) -> Result<Source, SourceError> {
        let cg = Cgroups::discover()?;
        let v2 = cg.v2().ok_or(SourceError::NoCgroup2)?;
        let collector = Collector::new(CgroupIndex::new(&cg.hierarchy(v2).mount_point));
        Ok(Source {
            cg,
            collector,
            pin_dir: pin_dir.to_path_buf(),
        })
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Every counted group, by path.
    pub fn sample(&mut self) -> Result<Vec<GroupReport>, SourceError> {
        let snap = crate::bpf::snapshot_pinned(&self.pin_dir)?;
        // Budgeted groups are rows even with nothing counted in them
        // themselves (an inner policy group on pure cgroup2).
        let limits = crate::bpf::limits_pinned(&self.pin_dir).unwrap_or_default();
        let budgeted: Vec<u64> = limits.keys().copied().collect();
        let mut groups = self
            .collector
            .collect_with(&snap, &self.cg, &budgeted)
            .groups;
        crate::collect::with_limits(&mut groups, &limits);
        Ok(groups)
    }
}
