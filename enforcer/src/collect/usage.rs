//! Memory and CPU usage of a group from cgroupfs, whichever hierarchy holds them.

use serde::Serialize;

use crate::cgroup::{Cgroups, GroupPath};

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct MemoryUsage {
    pub usage_bytes: u64,
    /// 0 when unlimited.
    pub limit_bytes: u64,
    pub oom_kills: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CpuUsage {
    pub usage_usec: u64,
}

pub(super) fn memory(cg: &Cgroups, label: &str) -> MemoryUsage {
    let Ok(path) = GroupPath::parse(label) else {
        return MemoryUsage::default();
    };
    cg.memory_of(&path)
        .map(|m| MemoryUsage {
            usage_bytes: m.usage_bytes,
            limit_bytes: m.limit_bytes.unwrap_or(0),
            oom_kills: m.oom_kills,
        })
        .unwrap_or_default()
}

/// CPU time from cgroupfs (`cpu.stat`, or v1's `cpuacct.usage`).
pub(super) fn cpu(cg: &Cgroups, label: &str) -> CpuUsage {
    let Ok(path) = GroupPath::parse(label) else {
        return CpuUsage::default();
    };
    CpuUsage {
        usage_usec: cg.cpu_usage_usec(&path).unwrap_or(0),
    }
}
