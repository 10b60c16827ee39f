//! `count_syscalls`: raw tracepoint `sys_enter`, counting calls per (cgroup2 id,
//! syscall number) in `SYSCALLS`.
//!
//! This runs on every syscall of every process on the host, so the order of work
//! matters: processes outside the counted groups must pay as little as possible.
//! Most calls are decided by one comparison: this CPU's [`ScopeCache`] holds
//! the last decision together with the task it was for (`pid_tgid`), and a
//! task makes many syscalls in a row on one CPU. Only when another task runs
//! (or the scope changed, or some task moved between cgroups) does the
//! program pay for the cgroup id helper and a `SYSCALL_GROUPS` lookup (and,
//! for a cgroup not listed itself, one per ancestor level: a listed group's
//! descendants, such as a container below a policy group, are counted too,
//! each under its own id while its policy group's subtree quota has room and
//! folded into its nearest counted ancestor beyond it, as their packets are).
//! (Measured with `cargo xtask bench accounting`: the cgroup id helper was a
//! third of the old per-call cost; see BENCHMARKS.md.)

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_pid_tgid,
    },
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::RawTracePointContext,
};
use enforcer_common::{
    MAX_CGROUPS, MAX_SYSCALL_KEYS, ScopeCache, SyscallKey, counted_nr, full, scope, syscall_abi,
};

use crate::cgroup::CGROUP_MIGRATIONS;
use crate::full::note_full;

/// (cgroup2 id, syscall nr) -> calls, one copy per CPU. Not preallocated:
/// entries are allocated as pairs are first seen, so the capacity (which
/// userspace may raise) costs nothing until used.
#[map]
static SYSCALLS: PerCpuHashMap<SyscallKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_SYSCALL_KEYS, BPF_F_NO_PREALLOC);

/// cgroup2 ids whose syscalls are counted (value unused, 1 by convention) when
/// `SYSCALL_SCOPE[MODE]` is `GROUPS`, with their descendants (down to
/// [`MAX_WALK`] levels below the cgroup2 root), each under its own id or
/// where its subtree's quota folds it.
#[map]
static SYSCALL_GROUPS: HashMap<u64, u8> = HashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// `[MODE, GENERATION]`, see `enforcer_common::scope`. Written by userspace.
#[map]
static SYSCALL_SCOPE: Array<u32> = Array::with_max_entries(scope::ENTRIES, 0);

/// Last scope decision on this CPU, and the task it was for.
#[map]
static SYSCALL_CACHE: PerCpuArray<ScopeCache> = PerCpuArray::with_max_entries(1, 0);

/// Ancestor levels examined for a cgroup not listed in `SYSCALL_GROUPS`
/// itself (as `sysenforce.rs` walks for syscall rules).
const MAX_WALK: i32 = 16;

#[raw_tracepoint(tracepoint = "sys_enter")]
fn count_syscalls(ctx: RawTracePointContext) -> u32 {
    let Some(scope) = decide() else {
        return 0;
    };
    if scope.counted == 0 {
        return 0;
    }
    // sys_enter's TP_PROTO is (struct pt_regs *regs, long id): arg 1 is the
    // syscall number. Negative numbers (-1 from ptrace/seccomp tricks) are not
    // syscalls; skip them.
    let nr: i64 = ctx.arg(1);
    let Ok(nr) = u32::try_from(nr) else {
        return 0;
    };
    // Numbers no table has share one key, so a group holds a bounded
    // number of keys whatever it calls.
    let nr = counted_nr(nr);
    // A 32-bit task's numbers are its compat table's: keyed apart.
    let abi = if crate::compat::in_compat_syscall(&ctx) {
        syscall_abi::COMPAT
    } else {
        syscall_abi::NATIVE
    };
    let key = SyscallKey::with_abi(scope.cgroup_id, nr, abi);
    // SAFETY: `slot` is this CPU's copy of the value, valid for this run.
    // Tracepoint programs run with preemption disabled and sys_enter cannot
    // nest on one CPU, so a plain add cannot lose an update.
    let add = |slot: *mut u64| unsafe { *slot = (*slot).wrapping_add(1) };
    if let Some(slot) = SYSCALLS.get_ptr_mut(key) {
        add(slot);
    } else if SYSCALLS.insert(key, 1, u64::from(BPF_NOEXIST)).is_err() {
        match SYSCALLS.get_ptr_mut(key) {
            Some(slot) => add(slot),
            None => count_in_nearest(nr, abi, add),
        }
    }
    0
}

/// A call the full SYSCALLS map had no room for: counted under the nearest
/// ancestor of the caller that has a key for it, else uncounted (README,
/// `enforcer_map_full_total`), noted full either way.
#[inline(always)]
fn count_in_nearest(nr: u32, abi: u32, add: impl Fn(*mut u64)) {
    note_full(full::SYSCALLS);
    let slot = crate::counters::nearest(
        &SYSCALLS,
        |a| SyscallKey::with_abi(a, nr, abi),
        // SAFETY: no pointer arguments; allowed in tracing programs.
        |level| unsafe { bpf_get_current_ancestor_cgroup_id(level) },
    );
    if let Some(slot) = slot {
        add(slot);
    }
}

/// The calling task's decision: the id its calls are counted under (its
/// cgroup2 id, or where its subtree's quota folds it) and
/// whether they are counted, from this CPU's cache when it holds a decision
/// for the same task made under the current generation and migration
/// count, else decided (and cached) now.
#[inline(always)]
fn decide() -> Option<ScopeCache> {
    // Array lookups with a constant index are inlined by the verifier: a bounds
    // check and a load, no helper call.
    let mode = *SYSCALL_SCOPE.get(scope::MODE)?;
    let generation = *SYSCALL_SCOPE.get(scope::GENERATION)?;
    let migrations = *CGROUP_MIGRATIONS.get(0)? as u32;
    // +1 so that the zeroed initial cache entry never matches.
    let stamp = (generation.wrapping_add(1) & 0xffff) | (migrations << 16);
    let pid_tgid = bpf_get_current_pid_tgid();
    let cache = SYSCALL_CACHE.get_ptr_mut(0)?;
    // SAFETY: `cache` points at this CPU's slot of a per-CPU array, valid for
    // this program run; with preemption disabled nothing else on this CPU runs
    // this program meanwhile.
    unsafe {
        if (*cache).pid_tgid == pid_tgid && (*cache).stamp == stamp {
            return Some(*cache);
        }
        // SAFETY: no arguments; allowed in tracing programs.
        let cgroup_id = bpf_get_current_cgroup_id();
        let decision = if mode != scope::ALL && SYSCALL_GROUPS.get_ptr(cgroup_id).is_some() {
            // A policy group itself: an owner, never folded.
            ScopeCache {
                pid_tgid,
                cgroup_id,
                stamp,
                counted: 1,
            }
        } else if mode == scope::ALL || listed(cgroup_id) {
            // Every group in observe mode, or a policy group's descendant:
            // the quota of its subtree decides where.
            let to = crate::quota::charge(cgroup_id, |level| {
                // SAFETY: no pointer arguments; allowed in tracing programs.
                bpf_get_current_ancestor_cgroup_id(level)
            });
            ScopeCache {
                pid_tgid,
                cgroup_id: to,
                stamp,
                counted: 1,
            }
        } else {
            ScopeCache {
                pid_tgid,
                cgroup_id,
                stamp,
                counted: 0,
            }
        };
        *cache = decision;
        Some(decision)
    }
}

/// Whether one of the ancestors of `cgroup_id` (the current task's, not
/// listed itself) is in `SYSCALL_GROUPS`.
#[inline(always)]
fn listed(cgroup_id: u64) -> bool {
    for level in 1..=MAX_WALK {
        // SAFETY: no pointer arguments; allowed in tracing programs.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        // 0: the task's cgroup is not that deep; itself: checked above.
        if id == 0 || id == cgroup_id {
            return false;
        }
        if SYSCALL_GROUPS.get_ptr(id).is_some() {
            return true;
        }
    }
    false
}
