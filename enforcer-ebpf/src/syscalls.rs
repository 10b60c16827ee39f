//! `count_syscalls`: raw tracepoint `sys_enter`, counting calls per (cgroup2 id,
//! syscall number) in `SYSCALLS`.
//!
//! This runs on every syscall of every process on the host, so the order of work
//! matters: processes outside the counted groups must pay as little as possible.
//! They pay one inlined array lookup (`SYSCALL_SCOPE`), the cgroup id helper, and
//! either a compare against the per-CPU [`ScopeCache`] (usually) or one hash
//! lookup in `SYSCALL_GROUPS` (when this CPU last decided for another group).

use aya_ebpf::{
    helpers::bpf_get_current_cgroup_id,
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::RawTracePointContext,
};
use enforcer_common::{MAX_CGROUPS, MAX_SYSCALL_KEYS, ScopeCache, SyscallKey, scope};

use crate::counters::upsert;

/// (cgroup2 id, syscall nr) -> calls, one copy per CPU.
#[map]
static SYSCALLS: PerCpuHashMap<SyscallKey, u64> =
    PerCpuHashMap::with_max_entries(MAX_SYSCALL_KEYS, 0);

/// cgroup2 ids whose syscalls are counted (value unused, 1 by convention) when
/// `SYSCALL_SCOPE[MODE]` is `GROUPS`. Exact ids: a sub-cgroup is counted only if
/// listed itself.
#[map]
static SYSCALL_GROUPS: HashMap<u64, u8> = HashMap::with_max_entries(MAX_CGROUPS, 0);

/// `[MODE, GENERATION]`, see `enforcer_common::scope`. Written by userspace.
#[map]
static SYSCALL_SCOPE: Array<u32> = Array::with_max_entries(scope::ENTRIES, 0);

/// Last scope decision on this CPU.
#[map]
static SYSCALL_CACHE: PerCpuArray<ScopeCache> = PerCpuArray::with_max_entries(1, 0);

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn count_syscalls(ctx: RawTracePointContext) -> u32 {
    // Array lookups with a constant index are inlined by the verifier: a bounds
    // check and a load, no helper call.
    let Some(mode) = SYSCALL_SCOPE.get(scope::MODE) else {
        return 0;
    };
    let mode = *mode;
    // SAFETY: no arguments; allowed in tracing programs.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    if mode != scope::ALL && !in_scope(cgroup_id) {
        return 0;
    }
    // sys_enter's TP_PROTO is (struct pt_regs *regs, long id): arg 1 is the
    // syscall number. Negative numbers (-1 from ptrace/seccomp tricks) are not
    // syscalls; skip them.
    let nr: i64 = ctx.arg(1);
    let Ok(nr) = u32::try_from(nr) else {
        return 0;
    };
    let key = SyscallKey::new(cgroup_id, nr);
    upsert(&SYSCALLS, &key, &1, |slot| {
        // SAFETY: `slot` is this CPU's copy of the value, valid for this run.
        // Tracepoint programs run with preemption disabled and sys_enter cannot
        // nest on one CPU, so a plain add cannot lose an update.
        unsafe { *slot = (*slot).wrapping_add(1) };
    });
    0
}

/// Whether `cgroup_id` is in `SYSCALL_GROUPS`, answered from this CPU's cache
/// when it holds a decision for the same group made in the current generation.
#[inline(always)]
fn in_scope(cgroup_id: u64) -> bool {
    // +1 so that the zeroed initial cache entry never matches.
    let generation = SYSCALL_SCOPE
        .get(scope::GENERATION)
        .map_or(0, |g| g.wrapping_add(1));
    let Some(cache) = SYSCALL_CACHE.get_ptr_mut(0) else {
        return SYSCALL_GROUPS.get_ptr(cgroup_id).is_some();
    };
    // SAFETY: `cache` points at this CPU's slot of a per-CPU array, valid for
    // this program run; with preemption disabled nothing else on this CPU runs
    // this program meanwhile.
    unsafe {
        if (*cache).cgroup_id == cgroup_id && (*cache).generation == generation {
            return (*cache).counted != 0;
        }
        let counted = SYSCALL_GROUPS.get_ptr(cgroup_id).is_some();
        *cache = ScopeCache {
            cgroup_id,
            generation,
            counted: u32::from(counted),
        };
        counted
    }
}
