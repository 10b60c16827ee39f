//! Incrementing per-CPU hash map entries, creating them on first use.

use aya_ebpf::{bindings::BPF_NOEXIST, maps::PerCpuHashMap};

/// Applies `add` to this CPU's value of `key` in `map`. If the key is not in the
/// map yet, inserts `first` (the value after one `add` on a zero value) instead:
/// the kernel zeroes the other CPUs' slots of a new per-CPU entry.
///
/// `BPF_NOEXIST` so that if another CPU created the entry between our lookup and
/// insert, we neither overwrite its count nor lose ours: the insert fails and we
/// add to the existing entry. If the map is full the event is not counted.
#[inline(always)]
pub(crate) fn upsert<K, V>(map: &PerCpuHashMap<K, V>, key: &K, first: &V, add: impl Fn(*mut V)) {
    if let Some(slot) = map.get_ptr_mut(key) {
        add(slot);
        return;
    }
    if map.insert(key, first, u64::from(BPF_NOEXIST)).is_err()
        && let Some(slot) = map.get_ptr_mut(key)
    {
        add(slot);
    }
}
