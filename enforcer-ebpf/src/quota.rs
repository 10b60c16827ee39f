//! Per-subtree quotas of the counting maps (see `enforcer_common::quota`):
//! which id a group's events are counted under.
//!
//! Only the first event of a group (no entry of its own in the map yet) and
//! the events of folded groups come here; a group with an entry is counted
//! as before, one lookup. A folded group costs one LRU lookup more.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuHashMap},
};
use enforcer_common::quota::{MAX_FOLDED, MAX_OWNER_LEVEL, MAX_OWNERS};
use enforcer_common::{MAX_CGROUPS, full};

use crate::atomic::{fetch_add, load};

/// Owner cgroup2 id -> allowance (see the common crate's docs).
#[map]
static COUNT_OWNERS: HashMap<u64, u64> = HashMap::with_max_entries(MAX_OWNERS, BPF_F_NO_PREALLOC);

/// Owner cgroup2 id -> admissions taken, atomic adds.
#[map]
static COUNT_TAKEN: HashMap<u64, u64> = HashMap::with_max_entries(MAX_OWNERS, BPF_F_NO_PREALLOC);

/// Admitted cgroup2 id -> its owner's id.
#[map]
static COUNT_ADMITTED: HashMap<u64, u64> =
    HashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// Folded cgroup2 id -> the id its events are charged to.
#[map]
static COUNT_FOLDED: LruHashMap<u64, u64> = LruHashMap::with_max_entries(MAX_FOLDED, 0);

/// Owner cgroup2 id -> events of its folded descendants, one copy per CPU.
#[map]
static COUNT_FOLDS: PerCpuHashMap<u64, u64> =
    PerCpuHashMap::with_max_entries(MAX_OWNERS, BPF_F_NO_PREALLOC);

#[inline(always)]
fn present(map: &HashMap<u64, u64>, id: u64) -> bool {
    // SAFETY: only tested for presence.
    unsafe { map.get(id).is_some() }
}

/// Where the events of cgroup `id` are counted: itself, or where its
/// subtree's quota folds it (the deepest ancestor counting as itself, its
/// owner at worst). `ancestor(level)` is its ancestor at `level` (0 for
/// none, as the kernel's helpers say). A map with no room for that id
/// counts in the nearest ancestor with an entry (`counters::nearest`).
#[inline(always)]
pub(crate) fn charge(id: u64, ancestor: impl Fn(i32) -> u64) -> u64 {
    // SAFETY: the value is copied out.
    if let Some(to) = unsafe { COUNT_FOLDED.get(id) }.copied() {
        note_fold(to);
        return to;
    }
    let own = present(&COUNT_OWNERS, id) || present(&COUNT_ADMITTED, id);
    // The nearest owner above, and the deepest ancestor counting as itself.
    let (mut owner, mut fallback) = (0u64, 0u64);
    let mut level = 0;
    while level < MAX_OWNER_LEVEL {
        let a = ancestor(level);
        if a == 0 || a == id {
            break;
        }
        if present(&COUNT_OWNERS, a) {
            owner = a;
            fallback = a;
        } else if owner != 0 && present(&COUNT_ADMITTED, a) {
            fallback = a;
        }
        level = level.wrapping_add(1);
    }
    if own || owner == 0 || admit(id, owner) {
        // An owner, an admitted group, or a group no owner is above within
        // reach: itself.
        return id;
    }
    let _ = COUNT_FOLDED.insert(id, fallback, 0);
    note_fold(owner);
    fallback
}

/// Takes a place in `owner`'s quota for `id`, if there is one.
#[inline(always)]
fn admit(id: u64, owner: u64) -> bool {
    // SAFETY: the allowance is copied out.
    let Some(allowance) = (unsafe { COUNT_OWNERS.get(owner) }).copied() else {
        return false;
    };
    let Some(taken) = COUNT_TAKEN.get_ptr_mut(owner) else {
        return false;
    };
    // SAFETY: an aligned u64 map value, valid for this program run.
    if unsafe { load(taken) } >= allowance {
        return false;
    }
    // SAFETY: as above. Two CPUs may both pass the check above: the atomic
    // add decides; a place taken in vain is given back by userspace, which
    // recomputes the allowance from the groups admitted.
    if unsafe { fetch_add(taken, 1) } >= allowance {
        return false;
    }
    // Another CPU admitting the same group first is fine too.
    COUNT_ADMITTED
        .insert(id, owner, u64::from(BPF_NOEXIST))
        .is_ok()
        || present(&COUNT_ADMITTED, id)
}

/// Counts one folded event of the group charged to `to` (an owner, or an
/// admitted group, whose owner is then found in `COUNT_ADMITTED`).
#[inline(always)]
fn note_fold(to: u64) {
    // SAFETY: the value is copied out.
    let owner = unsafe { COUNT_ADMITTED.get(to) }.copied().unwrap_or(to);
    if let Some(n) = COUNT_FOLDS.get_ptr_mut(owner) {
        // SAFETY: this CPU's copy of the value, valid for this run.
        unsafe { *n = (*n).wrapping_add(1) };
    } else if COUNT_FOLDS
        .insert(owner, 1, u64::from(BPF_NOEXIST))
        .is_err()
    {
        crate::full::note_full(full::COUNT_FOLDS);
    }
}
