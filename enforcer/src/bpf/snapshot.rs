//! Reading the counter maps into a [`Snapshot`].

use std::collections::BTreeMap;
use std::path::Path;

use aya::Pod;
use aya::maps::{Map, MapData, PerCpuHashMap, PerCpuValues};
use enforcer_common::{NetCounter, SockCounter, SyscallKey};

use super::BpfError;
use super::layout::{NET_EGRESS, NET_INGRESS, PINNED_MAPS, SOCK_ATTEMPTS, SYSCALLS};
use super::pins::open_pinned_map;

/// Everything counted so far, per group, summed over CPUs.
///
/// Counters only grow (until [`Kernel::forget`](super::Kernel::forget) removes a
/// group); rates are differences between two snapshots.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Per cgroup2 id (see [`cgroup_id`](super::cgroup_id)). A group is listed once
    /// any of its counters has been touched.
    pub groups: BTreeMap<u64, GroupCounters>,
}

/// The counters of one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupCounters {
    /// Sent by sockets of the group (`count_egress`).
    pub egress: NetCounter,
    /// Received by sockets of the group (`count_ingress`).
    pub ingress: NetCounter,
    /// connect()/bind() attempts of tasks in the group.
    pub sock: SockCounter,
    /// Syscall number -> calls, for groups in the syscall scope
    /// ([`Kernel::set_syscall_scope`](super::Kernel::set_syscall_scope)).
    pub syscalls: BTreeMap<u32, u64>,
}

/// The four counter maps, from a loaded object or from pins.
pub(super) struct CounterMaps<'a> {
    pub(super) egress: &'a Map,
    pub(super) ingress: &'a Map,
    pub(super) sock: &'a Map,
    pub(super) syscalls: &'a Map,
}

fn per_cpu<'a, K: Pod, V: Pod>(
    map: &'a Map,
    name: &'static str,
) -> Result<PerCpuHashMap<&'a MapData, K, V>, BpfError> {
    PerCpuHashMap::try_from(map).map_err(|source| BpfError::Map { map: name, source })
}

/// Calls `f(key, per-CPU values)` for every entry. aya has no batch lookup in
/// 0.14, so this is one `get_next_key` and one lookup per entry. Entries deleted
/// meanwhile are skipped; if the kernel restarts the walk (the current key was
/// deleted) an entry may be seen twice, so `f` must overwrite, not add.
fn for_each<K: Pod, V: Pod>(
    map: &PerCpuHashMap<&MapData, K, V>,
    name: &'static str,
    mut f: impl FnMut(K, &PerCpuValues<V>),
) -> Result<(), BpfError> {
    for entry in map.iter() {
        let (key, values) = entry.map_err(|source| BpfError::Map { map: name, source })?;
        f(key, &values);
    }
    Ok(())
}

pub(super) fn read(maps: &CounterMaps<'_>) -> Result<Snapshot, BpfError> {
    let mut groups: BTreeMap<u64, GroupCounters> = BTreeMap::new();

    let sum_net = |values: &PerCpuValues<NetCounter>| {
        values
            .iter()
            .fold(NetCounter::default(), |sum, v| sum.wrapping_add(*v))
    };
    let egress = per_cpu::<u64, NetCounter>(maps.egress, NET_EGRESS)?;
    for_each(&egress, NET_EGRESS, |id, values| {
        groups.entry(id).or_default().egress = sum_net(values);
    })?;
    let ingress = per_cpu::<u64, NetCounter>(maps.ingress, NET_INGRESS)?;
    for_each(&ingress, NET_INGRESS, |id, values| {
        groups.entry(id).or_default().ingress = sum_net(values);
    })?;
    let sock = per_cpu::<u64, SockCounter>(maps.sock, SOCK_ATTEMPTS)?;
    for_each(&sock, SOCK_ATTEMPTS, |id, values| {
        groups.entry(id).or_default().sock = values
            .iter()
            .fold(SockCounter::default(), |sum, v| sum.wrapping_add(*v));
    })?;
    let syscalls = per_cpu::<SyscallKey, u64>(maps.syscalls, SYSCALLS)?;
    for_each(&syscalls, SYSCALLS, |key, values| {
        let calls = values.iter().fold(0u64, |sum, v| sum.wrapping_add(*v));
        groups
            .entry(key.cgroup_id)
            .or_default()
            .syscalls
            .insert(key.nr, calls);
    })?;
    Ok(Snapshot { groups })
}

/// See [`super::snapshot_pinned`].
pub(super) fn read_pinned(pin_dir: &Path) -> Result<Snapshot, BpfError> {
    let open = |name: &'static str| -> Result<Map, BpfError> {
        let spec = PINNED_MAPS
            .iter()
            .find(|s| s.name == name)
            .ok_or(BpfError::MapMissing(name))?;
        let data = open_pinned_map(pin_dir, spec)?;
        Map::from_map_data(data).map_err(|source| BpfError::Map { map: name, source })
    };
    let egress = open(NET_EGRESS)?;
    let ingress = open(NET_INGRESS)?;
    let sock = open(SOCK_ATTEMPTS)?;
    let syscalls = open(SYSCALLS)?;
    read(&CounterMaps {
        egress: &egress,
        ingress: &ingress,
        sock: &sock,
        syscalls: &syscalls,
    })
}
