//! Turning kernel map snapshots into per-group reports: labels for cgroup ids,
//! syscall names, cgroupfs usage, and rates between two snapshots.

mod containers;
mod index;
mod json;
mod usage;
mod workload;

use std::collections::BTreeMap;
use std::time::Instant;

pub use containers::ContainerNames;
pub use index::{CgroupIndex, GroupLabel};
pub use usage::{CpuUsage, MemoryUsage};
pub use workload::{Workload, classify as workload_of};

use crate::arch::{Arch, SyscallId};
use crate::bpf::{GroupCounters, Snapshot};
use crate::cgroup::Cgroups;
use crate::counters::{Counts, PerSec};

/// The name of a counted syscall on this node: this architecture's table,
/// or its compat table's with the ABI in front (`i386:getppid`); `invalid`
/// for the key every number beyond the tables is counted under.
pub fn syscall_name(id: SyscallId) -> String {
    id.label(Arch::host())
}

/// Per-second rates over the last interval (absent on the first sample).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rates {
    /// Every counter's; `stats --json` shows those with a rate name.
    pub per_sec: PerSec,
    /// CPU time over the interval; 100 is one full CPU.
    pub cpu_percent: f64,
}

/// One group's usage: what `enforcer stats --json` prints (see `json.rs`)
/// and the metrics export.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    pub group: GroupLabel,
    pub cgroup_id: u64,
    /// Every counter of [`crate::counters`].
    pub counts: Counts,
    /// Calls per syscall name (their sum is
    /// [`Counter::Syscalls`](crate::counters::Counter::Syscalls)).
    pub syscalls_by_name: BTreeMap<String, u64>,
    pub memory: MemoryUsage,
    pub cpu: CpuUsage,
    pub rates: Option<Rates>,
    /// The systemd unit, container and pod the path names.
    pub workload: Workload,
    /// Rate limits and byte budgets in force (see [`with_limits`]).
    pub limits: Vec<crate::bpf::LimitReport>,
}

impl GroupReport {
    /// A report with no counts (cgroup id 0: not read from the kernel).
    pub fn empty(label: &str) -> Self {
        GroupReport {
            group: label.to_string(),
            cgroup_id: 0,
            counts: Counts::default(),
            syscalls_by_name: BTreeMap::new(),
            memory: MemoryUsage::default(),
            cpu: CpuUsage::default(),
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

/// Per group at the previous collection: its counts and CPU µs (if read).
type Previous = BTreeMap<u64, (Counts, Option<u64>)>;

/// Keeps what rates and labels need between collections.
pub struct Collector {
    index: CgroupIndex,
    prev: Option<(Instant, Previous)>,
    names: ContainerNames,
}

/// What one collection found.
pub struct Collection {
    pub groups: Vec<GroupReport>,
    /// Ids present in the maps whose groups no longer exist: their entries can go.
    pub vanished: Vec<u64>,
}

impl Collector {
    pub fn new(index: CgroupIndex) -> Self {
        Collector {
            index,
            prev: None,
            names: ContainerNames::default(),
        }
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

    /// Every container group in the cgroup2 tree now (walked again), with its
    /// labels: `(cgroup id, label, workload)`. For `[[container]]` rules,
    /// which must find a container before it has been counted.
    pub fn containers(&mut self) -> Vec<(u64, String, Workload)> {
        self.index.refresh();
        self.names.refresh();
        let mut out = Vec::new();
        for (id, label) in self.index.all() {
            let mut w = workload::classify(label);
            let Some(cid) = w.container_id.clone() else {
                continue;
            };
            w.container_name = self.names.name(w.runtime.as_deref(), &cid);
            out.push((id, label.to_string(), w));
        }
        out
    }

    /// The label of a cgroup id, looked up if the id is not known yet (a
    /// group created since). None: it is gone.
    pub fn label_of(&mut self, id: u64) -> Option<&str> {
        self.index.label_or_lookup(id)
    }

    /// Checks up to `budget` of the groups the maps hold (`snap`) for
    /// deletion (see [`CgroupIndex::sweep`]); those gone are forgotten and
    /// returned, for their counters to be reclaimed.
    pub fn sweep(&mut self, snap: &Snapshot, budget: usize) -> Vec<u64> {
        let gone = self.index.sweep(snap.groups.keys().copied(), budget);
        self.forget(&gone);
        gone
    }

    pub fn collect(&mut self, snap: &Snapshot, cg: &Cgroups) -> Collection {
        self.collect_with(snap, cg, &[])
    }

    /// [`collect`](Self::collect), with a report for each of `always` (the
    /// agent's own groups) even before the kernel has counted anything for
    /// it: its cgroupfs usage (memory, OOM kills, CPU) is there regardless.
    pub fn collect_with(&mut self, snap: &Snapshot, cg: &Cgroups, always: &[u64]) -> Collection {
        self.collect_select(snap, cg, always, |_| true)
    }

    /// [`collect_with`](Self::collect_with), reading cgroupfs usage only for
    /// the groups `usage` picks (the others get it by
    /// [`GroupReport::read_usage`] if they need it): reading a few files per
    /// group is what costs at thousands of groups, and only the groups
    /// exported and the policy's need it.
    pub fn collect_select(
        &mut self,
        snap: &Snapshot,
        cg: &Cgroups,
        always: &[u64],
        usage: impl Fn(u64) -> bool,
    ) -> Collection {
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
        self.names.refresh();
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
            let counts = Counts::read(c);
            let read = usage(id);
            let cpu = if read {
                usage::cpu(cg, &label)
            } else {
                CpuUsage::default()
            };
            let rates = self.prev.as_ref().map(|(then, prev)| {
                let dt = now.duration_since(*then).as_secs_f64().max(1e-6);
                let (before, cpu_before) = prev.get(&id).copied().unwrap_or_default();
                Rates {
                    per_sec: counts.per_sec(&before, dt),
                    cpu_percent: match (read, cpu_before) {
                        (true, Some(b)) => cpu.usage_usec.saturating_sub(b) as f64 / dt / 10_000.0,
                        _ => 0.0,
                    },
                }
            });
            current.insert(id, (counts, read.then_some(cpu.usage_usec)));
            let mut workload = workload::classify(&label);
            if let Some(cid) = &workload.container_id {
                workload.container_name = self.names.name(workload.runtime.as_deref(), cid);
            }
            groups.push(GroupReport {
                workload,
                limits: Vec::new(),
                memory: if read {
                    usage::memory(cg, &label)
                } else {
                    MemoryUsage::default()
                },
                cpu,
                group: label,
                cgroup_id: id,
                counts,
                syscalls_by_name: c
                    .syscalls
                    .iter()
                    .map(|(&id, &n)| (syscall_name(id), n))
                    .collect(),
                rates,
            });
        }
        groups.sort_by(|a, b| a.group.cmp(&b.group));
        let seen = groups
            .iter()
            .filter_map(|g| g.workload.container_id.as_deref())
            .collect();
        self.names.retain(&seen);
        self.prev = Some((now, current));
        Collection { groups, vanished }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_names_come_from_the_table() {
        let getppid = Arch::host().number("getppid").unwrap();
        assert_eq!(syscall_name(SyscallId::native(getppid)), "getppid");
        assert_eq!(syscall_name(SyscallId::native(400)), "syscall_400");
        assert_eq!(
            syscall_name(SyscallId::native(enforcer_common::counted_nr(100_000))),
            "invalid"
        );
        // getppid is 64 in both the i386 and the arm32 table.
        assert_eq!(
            syscall_name(SyscallId::compat(64)),
            format!("{}:getppid", Arch::host().compat_name())
        );
    }
}
