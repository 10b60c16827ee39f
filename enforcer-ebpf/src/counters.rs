//! Incrementing per-CPU hash map entries, creating them on first use, and
//! noting what could not be counted (`full.rs`).

use aya_ebpf::{bindings::BPF_NOEXIST, maps::PerCpuHashMap};
use enforcer_common::quota::MAX_OWNER_LEVEL;

use crate::full::note_full;
use crate::quota::charge;

/// Applies `add` to this CPU's value of `key` in `map`. If the key is not in the
/// map yet, inserts `first` (the value after one `add` on a zero value) instead:
/// the kernel zeroes the other CPUs' slots of a new per-CPU entry.
///
/// `BPF_NOEXIST` so that if another CPU created the entry between our lookup and
/// insert, we neither overwrite its count nor lose ours: the insert fails and we
/// add to the existing entry. If the map is full the event is not counted, and
/// `MAP_FULL[full]` says so.
#[inline(always)]
pub(crate) fn upsert<K, V>(
    map: &PerCpuHashMap<K, V>,
    full: u32,
    key: &K,
    first: &V,
    add: impl Fn(*mut V),
) {
    if let Some(slot) = map.get_ptr_mut(key) {
        add(slot);
        return;
    }
    if map.insert(key, first, u64::from(BPF_NOEXIST)).is_err() {
        match map.get_ptr_mut(key) {
            Some(slot) => add(slot),
            None => note_full(full),
        }
    }
}

/// [`upsert`] for a map keyed by cgroup2 id, with the group's subtree quota
/// (`quota.rs`): a group without an entry is charged where its owner's
/// quota says, and when the map has no room for it, to the nearest ancestor
/// with an entry, else nowhere (noted as full either way).
#[inline(always)]
pub(crate) fn count_group<V>(
    map: &PerCpuHashMap<u64, V>,
    full: u32,
    id: u64,
    ancestor: impl Fn(i32) -> u64,
    first: &V,
    add: impl Fn(*mut V),
) {
    if let Some(slot) = map.get_ptr_mut(id) {
        add(slot);
        return;
    }
    let to = charge(id, &ancestor);
    if let Some(slot) = map.get_ptr_mut(to) {
        add(slot);
        return;
    }
    if map.insert(to, first, u64::from(BPF_NOEXIST)).is_ok() {
        return;
    }
    if let Some(slot) = map.get_ptr_mut(to) {
        add(slot);
        return;
    }
    // Full: the nearest ancestor's entry (an owner's is always there).
    note_full(full);
    if let Some(slot) = nearest(map, |a| a, ancestor) {
        add(slot);
    }
}

/// The entry of the deepest ancestor (`ancestor(level)`, 0 for none) that
/// has one in `map`, under the key `key_of(ancestor's id)`: where README
/// says the events a full map had no room for are counted. Not only the
/// charge's fallback: an ancestor that counts as itself (admitted by its
/// syscalls) may never have made an entry in this map, and its events would
/// be lost although one above it has one. Only on the full path.
#[inline(always)]
pub(crate) fn nearest<K, V>(
    map: &PerCpuHashMap<K, V>,
    key_of: impl Fn(u64) -> K,
    ancestor: impl Fn(i32) -> u64,
) -> Option<*mut V> {
    let mut level = MAX_OWNER_LEVEL;
    while level > 0 {
        level = level.wrapping_sub(1);
        let a = ancestor(level);
        if a == 0 {
            continue;
        }
        if let Some(slot) = map.get_ptr_mut(key_of(a)) {
            return Some(slot);
        }
    }
    None
}
