//! Reading the counter maps into a [`Snapshot`].

use std::collections::BTreeMap;
use std::path::Path;

use aya::Pod;
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::maps::{IterableMap as _, Map, MapData, PerCpuHashMap};
use enforcer_common::{EnforceCounter, NetCounter, SockCounter, SyscallKey};

use crate::arch::SyscallId;

use super::BpfError;
use super::layout::{
    ENFORCE_COUNTS, MAP_FULL, NET_EGRESS, NET_INGRESS, PINNED_MAPS, SOCK_ATTEMPTS, SYSCALLS,
};
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
    /// Per counting map that was ever full: how many events went uncounted.
    pub map_full: BTreeMap<&'static str, u64>,
    /// How full each per-group counter map is.
    pub maps: Vec<MapFill>,
}

/// Entries in a map and how many it can hold: a full map stops counting new
/// groups (`enforcer_map_entries` / `enforcer_map_capacity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFill {
    pub name: &'static str,
    pub entries: u64,
    pub capacity: u64,
}

fn fill(name: &'static str, entries: u64) -> MapFill {
    MapFill {
        name,
        entries,
        capacity: PINNED_MAPS
            .iter()
            .find(|s| s.name == name)
            .map_or(0, |s| u64::from(s.max_entries)),
    }
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
    /// Syscall (number and ABI) -> calls, for groups in the syscall scope
    /// ([`Kernel::set_syscall_scope`](super::Kernel::set_syscall_scope)).
    pub syscalls: BTreeMap<SyscallId, u64>,
    /// What the group's rules refused, killed, logged and dropped, and its
    /// events lost (charged to the group that owns the rules, also for calls
    /// from its descendant cgroups). Whole, so a new field reaches the
    /// counter table without a change here.
    pub enforce: EnforceCounter,
}

/// How maps are read: batch lookups where the kernel has them (falling back
/// by itself where it does not), or entry by entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReadMode {
    Batch,
    PerEntry,
}

/// The counter maps, from a loaded object or from pins.
pub(super) struct CounterMaps<'a> {
    pub(super) egress: &'a Map,
    pub(super) ingress: &'a Map,
    pub(super) sock: &'a Map,
    pub(super) syscalls: &'a Map,
    pub(super) enforce: &'a Map,
    pub(super) full: &'a Map,
}

fn per_cpu<'a, K: Pod, V: Pod>(
    map: &'a Map,
    name: &'static str,
) -> Result<PerCpuHashMap<&'a MapData, K, V>, BpfError> {
    PerCpuHashMap::try_from(map).map_err(|source| BpfError::Map { map: name, source })
}

/// Calls `f(key, per-CPU values)` for every entry: with batch lookups (a few
/// system calls for the whole map), or, where the kernel has none, aya's
/// iterator (one `get_next_key` and one lookup per entry). Entries deleted
/// meanwhile are skipped; if the kernel restarts a walk an entry may be seen
/// twice, so `f` must overwrite, not add.
fn for_each<K: Pod, V: Pod>(
    map: &PerCpuHashMap<&MapData, K, V>,
    name: &'static str,
    mode: ReadMode,
    mut f: impl FnMut(K, &[V]),
) -> Result<(), BpfError> {
    if mode == ReadMode::Batch {
        let fd = map.map().fd().as_fd().as_raw_fd();
        match super::batch::lookup_batch(fd, super::batch::cpus()?, &mut f) {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP)) => {}
            Err(e) => return Err(super::batch::syscall_err(name, "bpf_map_lookup_batch", e)),
        }
    }
    for entry in map.iter() {
        let (key, values) = entry.map_err(|source| BpfError::Map { map: name, source })?;
        f(key, &values);
    }
    Ok(())
}

/// Calls `f(key)` for every key of a per-CPU hash (batch lookups where the
/// kernel has them).
pub(super) fn for_each_key<K: Pod, V: Pod>(
    map: &PerCpuHashMap<&MapData, K, V>,
    name: &'static str,
    mut f: impl FnMut(K),
) -> Result<(), BpfError> {
    for_each(map, name, ReadMode::Batch, |k, _| f(k))
}

pub(super) fn read(maps: &CounterMaps<'_>, mode: ReadMode) -> Result<Snapshot, BpfError> {
    let mut groups: BTreeMap<u64, GroupCounters> = BTreeMap::new();

    // A dropped packet is taken back by the enforcing program, which may run
    // before the counting one on its CPU: read in between, a group's first
    // packet shows as -1. Such a transient negative total reads as zero.
    let sum_net = |values: &[NetCounter]| {
        let sum = values
            .iter()
            .fold(NetCounter::default(), |sum, v| sum.wrapping_add(*v));
        if sum.bytes > i64::MAX as u64 || sum.packets > i64::MAX as u64 {
            NetCounter::default()
        } else {
            sum
        }
    };
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let egress = per_cpu::<u64, NetCounter>(maps.egress, NET_EGRESS)?;
    for_each(&egress, NET_EGRESS, mode, |id, values| {
        *counts.entry(NET_EGRESS).or_default() += 1;
        groups.entry(id).or_default().egress = sum_net(values);
    })?;
    let ingress = per_cpu::<u64, NetCounter>(maps.ingress, NET_INGRESS)?;
    for_each(&ingress, NET_INGRESS, mode, |id, values| {
        *counts.entry(NET_INGRESS).or_default() += 1;
        groups.entry(id).or_default().ingress = sum_net(values);
    })?;
    let sock = per_cpu::<u64, SockCounter>(maps.sock, SOCK_ATTEMPTS)?;
    for_each(&sock, SOCK_ATTEMPTS, mode, |id, values| {
        *counts.entry(SOCK_ATTEMPTS).or_default() += 1;
        groups.entry(id).or_default().sock = values
            .iter()
            .fold(SockCounter::default(), |sum, v| sum.wrapping_add(*v));
    })?;
    let syscalls = per_cpu::<SyscallKey, u64>(maps.syscalls, SYSCALLS)?;
    for_each(&syscalls, SYSCALLS, mode, |key, values| {
        *counts.entry(SYSCALLS).or_default() += 1;
        let calls = values.iter().fold(0u64, |sum, v| sum.wrapping_add(*v));
        groups
            .entry(key.cgroup_id)
            .or_default()
            .syscalls
            .insert(SyscallId::of_key(&key), calls);
    })?;
    let enforce = per_cpu::<u64, EnforceCounter>(maps.enforce, ENFORCE_COUNTS)?;
    for_each(&enforce, ENFORCE_COUNTS, mode, |id, values| {
        *counts.entry(ENFORCE_COUNTS).or_default() += 1;
        groups.entry(id).or_default().enforce = values
            .iter()
            .fold(EnforceCounter::default(), |sum, v| sum.wrapping_add(*v));
    })?;
    let full: aya::maps::PerCpuArray<&MapData, u64> = aya::maps::PerCpuArray::try_from(maps.full)
        .map_err(|source| BpfError::Map {
        map: MAP_FULL,
        source,
    })?;
    let mut map_full = BTreeMap::new();
    for (index, name) in enforcer_common::full::NAMES {
        let n = full
            .get(&index, 0)
            .map_err(|source| BpfError::Map {
                map: MAP_FULL,
                source,
            })?
            .iter()
            .fold(0u64, |sum, v| sum.wrapping_add(*v));
        if n > 0 {
            map_full.insert(name, n);
        }
    }
    // A batch walk the kernel restarts may see an entry twice: never more
    // than the map holds.
    let maps = [
        NET_EGRESS,
        NET_INGRESS,
        SOCK_ATTEMPTS,
        SYSCALLS,
        ENFORCE_COUNTS,
    ]
    .into_iter()
    .map(|name| {
        let mut f = fill(name, counts.get(name).copied().unwrap_or(0));
        f.entries = f.entries.min(f.capacity);
        f
    })
    .collect();
    Ok(Snapshot {
        groups,
        map_full,
        maps,
    })
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
    let enforce = open(ENFORCE_COUNTS)?;
    let full = open(MAP_FULL)?;
    read(
        &CounterMaps {
            egress: &egress,
            ingress: &ingress,
            sock: &sock,
            syscalls: &syscalls,
            enforce: &enforce,
            full: &full,
        },
        ReadMode::Batch,
    )
}
