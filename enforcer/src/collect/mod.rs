//! Turning kernel map snapshots into per-group reports: labels for cgroup ids,
//! syscall names, cgroupfs usage, and rates between two snapshots.

mod index;
mod usage;
mod workload;

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

pub use index::{CgroupIndex, GroupLabel};
pub use usage::{CpuUsage, MemoryUsage};
pub use workload::{Workload, classify as workload_of};

use crate::bpf::{GroupCounters, Snapshot};
use crate::cgroup::Cgroups;

/// x86_64 syscall name for a number, from the `syscalls` crate's table.
pub fn syscall_name(nr: u32) -> String {
    syscalls::Sysno::new(nr as usize)
        .map(|s| s.name().to_string())
        .unwrap_or_else(|| format!("syscall_{nr}"))
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct NetReport {
    pub egress_bytes: u64,
    pub egress_packets: u64,
    pub ingress_bytes: u64,
    pub ingress_packets: u64,
    pub connect_attempts: u64,
    pub bind_attempts: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SyscallReport {
    pub total: u64,
    pub by_name: BTreeMap<String, u64>,
}

/// What the group's rules refused or dropped.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EnforcementReport {
    pub connect_denied: u64,
    pub bind_denied: u64,
    pub sendmsg_denied: u64,
    pub syscalls_denied: u64,
    pub syscalls_killed: u64,
    pub syscalls_logged: u64,
    pub egress_dropped_packets: u64,
    pub egress_dropped_bytes: u64,
    pub ingress_dropped_packets: u64,
    pub ingress_dropped_bytes: u64,
    /// Events (denials, kills, OOM kills...) the kernel could not queue
    /// because the ring buffer was full: they are not in the audit log.
    pub events_lost: u64,
}

/// Per-second rates over the last interval (absent on the first sample).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Rates {
    pub egress_bytes_per_sec: f64,
    pub egress_packets_per_sec: f64,
    pub ingress_bytes_per_sec: f64,
    pub ingress_packets_per_sec: f64,
    pub syscalls_per_sec: f64,
    pub connect_attempts_per_sec: f64,
    /// CPU time over the interval; 100 is one full CPU.
    pub cpu_percent: f64,
}

/// One group's usage: the shape of `enforcer stats --json` and of the metrics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupReport {
    pub group: GroupLabel,
    pub cgroup_id: u64,
    pub net: NetReport,
    pub syscalls: SyscallReport,
    pub memory: MemoryUsage,
    pub cpu: CpuUsage,
    pub enforcement: EnforcementReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rates: Option<Rates>,
    /// The systemd unit, container and pod the path names.
    #[serde(skip_serializing_if = "Workload::is_empty")]
    pub workload: Workload,
    /// Rate limits and byte budgets in force (see [`with_limits`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<crate::bpf::LimitReport>,
}

impl GroupReport {
    /// A report with no counts (cgroup id 0: not read from the kernel).
    pub fn empty(label: &str) -> Self {
        GroupReport {
            group: label.to_string(),
            cgroup_id: 0,
            net: NetReport::default(),
            syscalls: SyscallReport::default(),
            memory: MemoryUsage::default(),
            cpu: CpuUsage::default(),
            enforcement: EnforcementReport::default(),
            rates: None,
            workload: workload::classify(label),
            limits: Vec::new(),
        }
    }

    /// Reads the group's memory and CPU usage from cgroupfs (for a report
    /// made by summing others).
    pub fn read_usage(&mut self, cg: &Cgroups) {
        self.memory = usage::memory(cg, &self.group);
        self.cpu = usage::cpu(cg, &self.group);
    }
}

/// Puts each group's rate limits and budgets (from
/// [`Kernel::limits`](crate::bpf::Kernel::limits) or
/// [`limits_pinned`](crate::bpf::limits_pinned)) into its report.
pub fn with_limits(
    groups: &mut [GroupReport],
    limits: &BTreeMap<u64, Vec<crate::bpf::LimitReport>>,
) {
    for g in groups {
        if let Some(l) = limits.get(&g.cgroup_id) {
            g.limits = l.clone();
        }
    }
}

fn net_of(c: &GroupCounters) -> NetReport {
    NetReport {
        egress_bytes: c.egress.bytes,
        egress_packets: c.egress.packets,
        ingress_bytes: c.ingress.bytes,
        ingress_packets: c.ingress.packets,
        connect_attempts: c.sock.connect4 + c.sock.connect6,
        bind_attempts: c.sock.bind4 + c.sock.bind6,
    }
}

/// Per group at the previous collection: network counters, syscall total, CPU µs.
type Previous = BTreeMap<u64, (NetReport, u64, u64)>;

fn enforcement_of(c: &GroupCounters) -> EnforcementReport {
    EnforcementReport {
        connect_denied: c.denied.connect,
        bind_denied: c.denied.bind,
        sendmsg_denied: c.denied.sendmsg,
        syscalls_denied: c.denied.syscalls,
        syscalls_killed: c.syscalls_killed,
        syscalls_logged: c.syscalls_logged,
        egress_dropped_packets: c.dropped.egress.packets,
        egress_dropped_bytes: c.dropped.egress.bytes,
        ingress_dropped_packets: c.dropped.ingress.packets,
        ingress_dropped_bytes: c.dropped.ingress.bytes,
        events_lost: c.events_lost,
    }
}

/// Keeps what rates and labels need between collections.
pub struct Collector {
    index: CgroupIndex,
    prev: Option<(Instant, Previous)>,
}

/// What one collection found.
pub struct Collection {
    pub groups: Vec<GroupReport>,
    /// Ids present in the maps whose groups no longer exist: their entries can go.
    pub vanished: Vec<u64>,
}

impl Collector {
    pub fn new(index: CgroupIndex) -> Self {
        Collector { index, prev: None }
    }

    pub fn index(&self) -> &CgroupIndex {
        &self.index
    }

    /// Forgets removed groups: their labels and their last samples.
    pub fn forget(&mut self, ids: &[u64]) {
        for id in ids {
            self.index.remove(*id);
            if let Some((_, prev)) = &mut self.prev {
                prev.remove(id);
            }
        }
    }

    /// The label of a cgroup id, walking the tree again first if the id is
    /// not known yet (a group created since the last walk). None: it is gone.
    pub fn label_of(&mut self, id: u64) -> Option<&str> {
        if self.index.label(id).is_none() {
            self.index.refresh();
        }
        self.index.label(id)
    }

    pub fn collect(&mut self, snap: &Snapshot, cg: &Cgroups) -> Collection {
        self.collect_with(snap, cg, &[])
    }

    /// [`collect`](Self::collect), with a report for each of `always` (the
    /// agent's own groups) even before the kernel has counted anything for
    /// it: its cgroupfs usage (memory, OOM kills, CPU) is there regardless.
    pub fn collect_with(&mut self, snap: &Snapshot, cg: &Cgroups, always: &[u64]) -> Collection {
        let now = Instant::now();
        // The agent's own groups are resolved too: one created since the last
        // walk must get its report (and its label) from the first collection.
        let vanished = self.index.resolve(
            snap.groups
                .keys()
                .chain(always)
                .copied()
                .collect::<Vec<_>>(),
        );
        let vanished: Vec<u64> = vanished
            .into_iter()
            .filter(|id| snap.groups.contains_key(id))
            .collect();
        let mut groups = Vec::with_capacity(snap.groups.len());
        let mut current = BTreeMap::new();
        let zero = GroupCounters::default();
        let extra: Vec<(&u64, &GroupCounters)> = always
            .iter()
            .filter(|id| !snap.groups.contains_key(id))
            .map(|id| (id, &zero))
            .collect();
        for (&id, c) in snap.groups.iter().chain(extra) {
            let Some(label) = self.index.label(id).map(str::to_string) else {
                continue;
            };
            let net = net_of(c);
            let cpu = usage::cpu(cg, &label);
            let total: u64 = c.syscalls.values().sum();
            let by_name = c
                .syscalls
                .iter()
                .map(|(&nr, &n)| (syscall_name(nr), n))
                .collect();
            let rates = self.prev.as_ref().map(|(then, prev)| {
                let dt = now.duration_since(*then).as_secs_f64().max(1e-6);
                let (pn, pt, pc) = prev.get(&id).cloned().unwrap_or_default();
                let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                Rates {
                    egress_bytes_per_sec: per(net.egress_bytes, pn.egress_bytes),
                    egress_packets_per_sec: per(net.egress_packets, pn.egress_packets),
                    ingress_bytes_per_sec: per(net.ingress_bytes, pn.ingress_bytes),
                    ingress_packets_per_sec: per(net.ingress_packets, pn.ingress_packets),
                    syscalls_per_sec: per(total, pt),
                    connect_attempts_per_sec: per(net.connect_attempts, pn.connect_attempts),
                    cpu_percent: per(cpu.usage_usec, pc) / 10_000.0,
                }
            });
            current.insert(id, (net.clone(), total, cpu.usage_usec));
            groups.push(GroupReport {
                workload: workload::classify(&label),
                limits: Vec::new(),
                memory: usage::memory(cg, &label),
                cpu,
                group: label,
                cgroup_id: id,
                net,
                syscalls: SyscallReport { total, by_name },
                enforcement: enforcement_of(c),
                rates,
            });
        }
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        self.prev = Some((now, current));
        Collection { groups, vanished }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_names_come_from_the_table() {
        assert_eq!(syscall_name(110), "getppid");
        assert_eq!(syscall_name(0), "read");
        assert_eq!(syscall_name(100_000), "syscall_100000");
    }
}
