//! Kernel side of enforcer's network accounting.
//!
//! `count_egress` is a `cgroup_skb/egress` program: the kernel runs it for every
//! packet a socket in the attached cgroup (or a descendant) sends. It charges the
//! packet to the sending socket's cgroup2 id in `NET_EGRESS` and always allows it.
//!
//! Rules for this file: nothing on the packet path may panic (no indexing, no
//! unwrap, wrapping arithmetic only) and nothing logs (aya-log would add a ring
//! buffer write per packet).
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::bpf_skb_cgroup_id,
    macros::{cgroup_skb, map},
    maps::PerCpuHashMap,
    programs::SkBuffContext,
};
use enforcer_common::NetCounter;

/// Maximum number of cgroups tracked at once; userspace deletes entries of removed
/// groups. When full, new groups are simply not counted (insert fails, packet passes).
const MAX_CGROUPS: u32 = 16384;

/// cgroup2 id -> egress bytes and packets. Per-CPU so the hot path needs no atomics:
/// each CPU only ever writes its own slot, userspace sums the slots.
#[map]
static NET_EGRESS: PerCpuHashMap<u64, NetCounter> = PerCpuHashMap::with_max_entries(MAX_CGROUPS, 0);

/// cgroup_skb return value that lets the packet through.
const ALLOW: i32 = 1;

#[cgroup_skb(egress)]
pub fn count_egress(ctx: SkBuffContext) -> i32 {
    account(&ctx);
    ALLOW
}

#[inline(always)]
fn account(ctx: &SkBuffContext) {
    // SAFETY: `ctx.skb.skb` is the `__sk_buff` the kernel passed to this program;
    // bpf_skb_cgroup_id is allowed for cgroup_skb programs and only reads it.
    let cgroup_id = unsafe { bpf_skb_cgroup_id(ctx.skb.skb) };
    let len = u64::from(ctx.len());

    if let Some(slot) = NET_EGRESS.get_ptr_mut(cgroup_id) {
        add(slot, len);
        return;
    }
    // First packet of this group: create the entry with this packet in it (the
    // kernel zeroes the other CPUs' slots). BPF_NOEXIST so that if another CPU
    // created the entry in the meantime we neither overwrite it nor lose this
    // packet: the insert fails and we add to the existing entry instead.
    let first = NetCounter {
        bytes: len,
        packets: 1,
    };
    if NET_EGRESS
        .insert(cgroup_id, first, u64::from(BPF_NOEXIST))
        .is_err()
    {
        // Either it exists now (add to it) or the map is full (not counted).
        if let Some(slot) = NET_EGRESS.get_ptr_mut(cgroup_id) {
            add(slot, len);
        }
    }
}

#[inline(always)]
fn add(slot: *mut NetCounter, len: u64) {
    // SAFETY: `slot` comes from a successful lookup in a per-CPU map, so it points
    // at this CPU's copy of the value, valid for the rest of this program run; the
    // program runs with migration disabled, so no other CPU writes this copy.
    unsafe {
        (*slot).bytes = (*slot).bytes.wrapping_add(len);
        (*slot).packets = (*slot).packets.wrapping_add(1);
    }
}

/// Never reached: nothing above can panic, and the verifier rejects programs
/// whose code could loop forever, so a reachable panic would fail to load.
#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
