//! Programs that do nothing, as baselines for benchmarks (see xtask bench accounting).
//!
//! Each has the same type and hook as one of the counting programs, so the kernel's
//! own cost of running a program there (the hook, the BPF dispatch, and with
//! `kernel.bpf_stats_enabled` the two clock reads) can be told apart from the cost
//! of counting. Userspace never attaches them outside benchmarks
//! (`enforcer::bpf::bench`); they are not in the agent's program lists.

use aya_ebpf::{
    macros::{cgroup_skb, raw_tracepoint},
    programs::{RawTracePointContext, SkBuffContext},
};

/// Baseline for `count_syscalls`: raw tracepoint `sys_enter`, returns at once.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn noop_sys_enter(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Baseline for `count_egress`: cgroup_skb egress, lets every packet through.
#[cgroup_skb(egress)]
pub fn noop_skb_egress(_ctx: SkBuffContext) -> i32 {
    1
}

/// Baseline for `count_ingress`: cgroup_skb ingress, lets every packet through.
#[cgroup_skb(ingress)]
pub fn noop_skb_ingress(_ctx: SkBuffContext) -> i32 {
    1
}
