//! Memory and CPU usage of a group from cgroupfs, whichever hierarchy holds them.

use serde::Serialize;

use crate::cgroup::{Cgroups, GroupPath, Version};

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

/// cgroup2's `cpu.stat` exists in every cgroup2 group, controller or not; v1's
/// `cpuacct.usage` (nanoseconds) is the fallback on hosts without cgroup2.
pub(super) fn cpu(cg: &Cgroups, label: &str) -> CpuUsage {
    let Ok(path) = GroupPath::parse(label) else {
        return CpuUsage::default();
    };
    if let Some(v2) = cg.v2() {
        let text = std::fs::read_to_string(cg.dir(v2, &path).join("cpu.stat")).unwrap_or_default();
        if let Some(us) = text.lines().find_map(|l| {
            l.strip_prefix("usage_usec ")
                .and_then(|v| v.trim().parse().ok())
        }) {
            return CpuUsage { usage_usec: us };
        }
    }
    if let Ok((h, _)) = cg.locate("cpuacct")
        && cg.hierarchy(h).version == Version::V1
    {
        let ns: u64 = std::fs::read_to_string(cg.dir(h, &path).join("cpuacct.usage"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        return CpuUsage {
            usage_usec: ns / 1000,
        };
    }
    CpuUsage::default()
}
