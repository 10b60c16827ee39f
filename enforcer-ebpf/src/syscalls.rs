//! `count_syscalls`: raw tracepoint `sys_enter`, counting calls per (cgroup2 id,
//! syscall number) in `SYSCALLS`.
//!
//! This runs on every syscall of every process on the host, so the order of work
//! matters: processes outside the counted groups must pay as little as possible.
//! Most calls are decided by one comparison: this CPU's [`ScopeCache`] holds
//! the last decision together with the task it was for (`pid_tgid`), and a
//! task makes many syscalls in a row on one CPU. Only when another task runs
//! (or the scope changed, or some task moved between cgroups) does the
//! program pay for the cgroup id helper and a `SYSCALL_GROUPS` lookup.
//! (Measured with `cargo xtask bench accounting`: the cgroup id helper was a
//! third of the old per-call cost; see BENCHMARKS.md.)

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid},
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::RawTracePointContext,
};
use enforcer_common::{
    MAX_CGROUPS, MAX_SYSCALL_KEYS, ScopeCache, SyscallKey, full, scope, syscall_abi,
};

use crate::cgroup::CGROUP_MIGRATIONS;
use crate::counters::upsert;

/// (cgroup2 id, syscall nr) -> calls, one copy per CPU. Not preallocated:
/// entries are allocated as pairs are first seen, so the capacity (which
/// userspace may raise) costs nothing until used.
#[map]
static SYSCALLS: PerCpuHashMap<SyscallKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_SYSCALL_KEYS, BPF_F_NO_PREALLOC);

/// cgroup2 ids whose syscalls are counted (value unused, 1 by convention) when
/// `SYSCALL_SCOPE[MODE]` is `GROUPS`. Exact ids: a sub-cgroup is counted only if
/// listed itself.
#[map]
static SYSCALL_GROUPS: HashMap<u64, u8> = HashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// `[MODE, GENERATION]`, see `enforcer_common::scope`. Written by userspace.
#[map]
static SYSCALL_SCOPE: Array<u32> = Array::with_max_entries(scope::ENTRIES, 0);

/// Last scope decision on this CPU, and the task it was for.
#[map]
static SYSCALL_CACHE: PerCpuArray<ScopeCache> = PerCpuArray::with_max_entries(1, 0);

#[raw_tracepoint(tracepoint = "sys_enter")]
fn count_syscalls(ctx: RawTracePointContext) -> u32 {
    let Some((cgroup_id, counted)) = decide() else {
        return 0;
    };
    if !counted {
        return 0;
    }
    // sys_enter's TP_PROTO is (struct pt_regs *regs, long id): arg 1 is the
    // syscall number. Negative numbers (-1 from ptrace/seccomp tricks) are not
    // syscalls; skip them.
    let nr: i64 = ctx.arg(1);
    let Ok(nr) = u32::try_from(nr) else {
        return 0;
    };
    // A 32-bit task's numbers are its compat table's: keyed apart.
    let abi = if crate::compat::in_compat_syscall(&ctx) {
        syscall_abi::COMPAT
    } else {
        syscall_abi::NATIVE
    };
    let key = SyscallKey::with_abi(cgroup_id, nr, abi);
    upsert(&SYSCALLS, full::SYSCALLS, &key, &1, |slot| {
        // SAFETY: `slot` is this CPU's copy of the value, valid for this run.
        // Tracepoint programs run with preemption disabled and sys_enter cannot
        // nest on one CPU, so a plain add cannot lose an update.
        unsafe { *slot = (*slot).wrapping_add(1) };
    });
    0
}

/// The calling task's cgroup2 id and whether its syscalls are counted: from
/// this CPU's cache when it holds a decision for the same task made under the
/// current generation and migration count, else decided (and cached) now.
#[inline(always)]
fn decide() -> Option<(u64, bool)> {
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
            return Some(((*cache).cgroup_id, (*cache).counted != 0));
        }
        // SAFETY: no arguments; allowed in tracing programs.
        let cgroup_id = bpf_get_current_cgroup_id();
        let counted = mode == scope::ALL || SYSCALL_GROUPS.get_ptr(cgroup_id).is_some();
        *cache = ScopeCache {
            pid_tgid,
            cgroup_id,
            stamp,
            counted: u32::from(counted),
        };
        Some((cgroup_id, counted))
    }
}
