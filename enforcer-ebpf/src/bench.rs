//! Benchmark-only programs (cargo feature `bench`; never in the shipped
//! object): empty baselines and the data-path levers issue 10 asks to measure.
//!
//! Baselines have the same type and hook as a counting program, so the
//! kernel's own cost of running a program there (the hook, the BPF dispatch,
//! and with `kernel.bpf_stats_enabled` the two clock reads) can be told apart
//! from the cost of counting.
//!
//! Levers count the same events as the production programs in other ways, so
//! `cargo xtask bench accounting` can compare them in one run (each attached
//! program sees every event; BPF stats time each one on its own):
//! - `lever_sys_pid_hash`: a per-CPU cache keyed by `pid_tgid` in front of the
//!   (cgroup, nr) hash, so a hit skips `bpf_get_current_cgroup_id()`.
//! - `lever_sys_pid_array`: the same cache holding a slot; counts in a per-CPU
//!   array indexed by `slot * 512 + nr` (no hash at all).
//! - `lever_skb_cache_array_*`: `bpf_skb_cgroup_id()`, a per-CPU cache of the
//!   last group's slot, a per-CPU array of counters by slot.
//! - `lever_skb_local_*`: per-CPU cgroup local storage of the group the
//!   program is attached to (no id, no key, no lookup).

// `PerCpuCgroupStorage` is deprecated in favour of BPF_MAP_TYPE_CGRP_STORAGE,
// which Linux 6.1 (Debian 12) does not have.
#![allow(deprecated)]

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_skb_cgroup_id},
    macros::{cgroup_skb, map, raw_tracepoint},
    maps::{HashMap, PerCpuArray, PerCpuCgroupStorage, PerCpuHashMap},
    programs::{RawTracePointContext, SkBuffContext},
};
use enforcer_common::{NetCounter, SyscallKey};

/// Baseline for `count_syscalls`: raw tracepoint `sys_enter`, returns at once.
#[raw_tracepoint(tracepoint = "sys_enter")]
fn noop_sys_enter(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Baseline for `count_egress`: cgroup_skb egress, lets every packet through.
#[cgroup_skb(egress)]
fn noop_skb_egress(_ctx: SkBuffContext) -> i32 {
    1
}

/// Baseline for `count_ingress`: cgroup_skb ingress, lets every packet through.
#[cgroup_skb(ingress)]
fn noop_skb_ingress(_ctx: SkBuffContext) -> i32 {
    1
}

/// Syscall numbers per slot in the array lever.
const NR_PER_SLOT: u32 = 512;
/// Slots the array levers have.
const LEVER_SLOTS: u32 = 64;

/// cgroup2 id -> slot, filled by the benchmark for the managed group.
#[map]
static LEVER_SLOT_OF: HashMap<u64, u32> = HashMap::with_max_entries(1024, 0);

#[repr(C)]
#[derive(Clone, Copy)]
struct TaskCache {
    pid_tgid: u64,
    cgroup_id: u64,
    /// Slot + 1; 0: not counted.
    slot: u32,
    _pad: u32,
}

#[map]
static LEVER_TASK_CACHE: PerCpuArray<TaskCache> = PerCpuArray::with_max_entries(1, 0);

#[map]
static LEVER_SYS_HASH: PerCpuHashMap<SyscallKey, u64> = PerCpuHashMap::with_max_entries(65536, 0);

#[map]
static LEVER_SYS_ARRAY: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(LEVER_SLOTS * NR_PER_SLOT, 0);

/// The calling task's (cgroup id, slot + 1), from this CPU's cache when the
/// same task made the last syscall here.
#[inline(always)]
fn task_slot() -> (u64, u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(cache) = LEVER_TASK_CACHE.get_ptr_mut(0) else {
        return (0, 0);
    };
    // SAFETY: this CPU's slot of a per-CPU array, valid for this run.
    unsafe {
        if (*cache).pid_tgid == pid_tgid {
            return ((*cache).cgroup_id, (*cache).slot);
        }
        let cgroup_id = bpf_get_current_cgroup_id();
        let slot = LEVER_SLOT_OF
            .get(cgroup_id)
            .map_or(0, |s| s.wrapping_add(1));
        *cache = TaskCache {
            pid_tgid,
            cgroup_id,
            slot,
            _pad: 0,
        };
        (cgroup_id, slot)
    }
}

#[raw_tracepoint(tracepoint = "sys_enter")]
fn lever_sys_pid_hash(ctx: RawTracePointContext) -> u32 {
    let (cgroup_id, slot) = task_slot();
    if slot == 0 {
        return 0;
    }
    let nr: i64 = ctx.arg(1);
    let Ok(nr) = u32::try_from(nr) else {
        return 0;
    };
    let key = SyscallKey::new(cgroup_id, nr);
    if let Some(v) = LEVER_SYS_HASH.get_ptr_mut(key) {
        // SAFETY: this CPU's value, valid for this run.
        unsafe { *v = (*v).wrapping_add(1) };
    } else {
        let _ = LEVER_SYS_HASH.insert(key, 1, u64::from(BPF_NOEXIST));
    }
    0
}

#[raw_tracepoint(tracepoint = "sys_enter")]
fn lever_sys_pid_array(ctx: RawTracePointContext) -> u32 {
    let (_, slot) = task_slot();
    if slot == 0 {
        return 0;
    }
    let nr: i64 = ctx.arg(1);
    let Ok(nr) = u32::try_from(nr) else {
        return 0;
    };
    let index = (slot.wrapping_sub(1) & (LEVER_SLOTS - 1))
        .wrapping_mul(NR_PER_SLOT)
        .wrapping_add(nr & (NR_PER_SLOT - 1));
    if let Some(v) = LEVER_SYS_ARRAY.get_ptr_mut(index) {
        // SAFETY: as above.
        unsafe { *v = (*v).wrapping_add(1) };
    }
    0
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SkbCache {
    cgroup_id: u64,
    slot: u32,
    _pad: u32,
}

#[map]
static LEVER_SKB_CACHE: PerCpuArray<SkbCache> = PerCpuArray::with_max_entries(1, 0);

#[map]
static LEVER_NET_ARRAY: PerCpuArray<NetCounter> = PerCpuArray::with_max_entries(LEVER_SLOTS * 2, 0);

#[inline(always)]
fn cache_array(ctx: &SkBuffContext, dir: u32) {
    // SAFETY: this program's __sk_buff.
    let cgroup_id = unsafe { bpf_skb_cgroup_id(ctx.skb.skb) };
    let Some(cache) = LEVER_SKB_CACHE.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot of a per-CPU array, valid for this run.
    let slot = unsafe {
        if (*cache).cgroup_id != cgroup_id {
            let slot = LEVER_SLOT_OF
                .get(cgroup_id)
                .map_or(0, |s| s.wrapping_add(1));
            *cache = SkbCache {
                cgroup_id,
                slot,
                _pad: 0,
            };
        }
        (*cache).slot
    };
    if slot == 0 {
        return;
    }
    let index = ((slot.wrapping_sub(1) & (LEVER_SLOTS - 1)) << 1) | (dir & 1);
    if let Some(c) = LEVER_NET_ARRAY.get_ptr_mut(index) {
        let len = u64::from(ctx.len());
        // SAFETY: as above.
        unsafe {
            (*c).bytes = (*c).bytes.wrapping_add(len);
            (*c).packets = (*c).packets.wrapping_add(1);
        }
    }
}

#[cgroup_skb(egress)]
fn lever_skb_cache_array_egress(ctx: SkBuffContext) -> i32 {
    cache_array(&ctx, 0);
    1
}

#[cgroup_skb(ingress)]
fn lever_skb_cache_array_ingress(ctx: SkBuffContext) -> i32 {
    cache_array(&ctx, 1);
    1
}

#[map]
static LEVER_LOCAL: PerCpuCgroupStorage<NetCounter> = PerCpuCgroupStorage::new();

#[inline(always)]
fn local(ctx: &SkBuffContext) {
    let c = LEVER_LOCAL.get_ptr_mut();
    let len = u64::from(ctx.len());
    // SAFETY: the storage of the cgroup this program is attached to, this
    // CPU's copy, valid for this run (the helper cannot fail).
    unsafe {
        (*c).bytes = (*c).bytes.wrapping_add(len);
        (*c).packets = (*c).packets.wrapping_add(1);
    }
}

#[cgroup_skb(egress)]
fn lever_skb_local_egress(ctx: SkBuffContext) -> i32 {
    local(&ctx);
    1
}

#[cgroup_skb(ingress)]
fn lever_skb_local_ingress(ctx: SkBuffContext) -> i32 {
    local(&ctx);
    1
}
