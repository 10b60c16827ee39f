//! The per-group rules (`GROUP_RULES`) and decision counters
//! (`ENFORCE_COUNTS`) every enforcement program uses.
//!
//! Both are keyed by the cgroup2 id of the group that owns the rules. The
//! cgroup-attached programs exist once per cgroup level (see `levels.rs`):
//! the copy attached to a group at level `L` finds the group as the level-`L`
//! ancestor of the calling task's or the packet's cgroup, one helper call,
//! so a group's rules cover its descendants too, and each of two nested policy
//! groups applies its own rules.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id},
    macros::map,
    maps::{HashMap, PerCpuHashMap},
};
use enforcer_common::{EnforceCounter, GroupPolicy, MAX_CGROUPS, full};

use crate::counters::upsert;

/// Owner cgroup2 id -> its rules. Written by userspace only, one whole value
/// per change. Not preallocated, so a replaced value is freed only after the
/// programs that may still read it are done.
#[map]
pub(crate) static GROUP_RULES: HashMap<u64, GroupPolicy> =
    HashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// Owner cgroup2 id -> what its rules did, one copy per CPU.
#[map]
static ENFORCE_COUNTS: PerCpuHashMap<u64, EnforceCounter> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// Applies `bump` to this CPU's counters of `owner`, creating the entry on
/// first use. Plain adds: every caller runs with migration disabled, and an
/// interleaving on one CPU (a softirq packet drop during a task's denied
/// connect) would at worst lose one count.
#[inline(always)]
pub(crate) fn count(owner: u64, bump: impl Fn(&mut EnforceCounter)) {
    let mut first = EnforceCounter::default();
    bump(&mut first);
    upsert(
        &ENFORCE_COUNTS,
        full::ENFORCE_COUNTS,
        &owner,
        &first,
        |slot| {
            // SAFETY: `slot` is this CPU's copy of the value, valid for this run.
            bump(unsafe { &mut *slot });
        },
    );
}

/// The calling task's ancestor at `level` (0 if the task is not that deep),
/// and the task's own cgroup2 id.
#[inline(always)]
pub(crate) fn current_owner(level: i32) -> (u64, u64) {
    // SAFETY: plain helpers without pointer arguments, allowed for cgroup
    // sock_addr, LSM and tracing programs.
    unsafe {
        (
            bpf_get_current_ancestor_cgroup_id(level),
            bpf_get_current_cgroup_id(),
        )
    }
}

/// The rules of `owner`, if it has any.
#[inline(always)]
pub(crate) fn rules(owner: u64) -> Option<&'static GroupPolicy> {
    if owner == 0 {
        return None;
    }
    // SAFETY: the value stays valid for the rest of this program run (RCU);
    // userspace replaces values, it never writes into them.
    unsafe { GROUP_RULES.get(owner) }
}
