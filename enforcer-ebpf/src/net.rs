//! `count_egress` / `count_ingress`: bytes and packets per socket cgroup.
//!
//! Both charge a packet to `bpf_skb_cgroup_id()`, the cgroup2 id of the cgroup
//! owning the packet's socket (set when the socket was created), so traffic is
//! charged to the group that owns the socket in both directions: a receiver in
//! group B is charged for what it receives, whoever sent it.
//!
//! The programs run for packets of sockets in the attached cgroup and its
//! descendants; each packet goes to its socket's own cgroup.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::{bpf_skb_ancestor_cgroup_id, bpf_skb_cgroup_id},
    macros::cgroup_skb,
    macros::map,
    maps::PerCpuHashMap,
    programs::SkBuffContext,
};
use enforcer_common::{MAX_CGROUPS, NetCounter, full};

use crate::counters::{count_group, upsert};

/// cgroup2 id -> egress bytes and packets, one copy per CPU.
#[map]
static NET_EGRESS: PerCpuHashMap<u64, NetCounter> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// cgroup2 id -> ingress bytes and packets, one copy per CPU.
#[map]
static NET_INGRESS: PerCpuHashMap<u64, NetCounter> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// cgroup_skb return value that lets the packet through.
const ALLOW: i32 = 1;

#[cgroup_skb(egress)]
fn count_egress(ctx: SkBuffContext) -> i32 {
    account(&NET_EGRESS, full::NET_EGRESS, &ctx);
    ALLOW
}

#[cgroup_skb(ingress)]
fn count_ingress(ctx: SkBuffContext) -> i32 {
    account(&NET_INGRESS, full::NET_INGRESS, &ctx);
    ALLOW
}

/// Takes back the count of a packet that a rate limit or budget dropped, so
/// the counters say what left (egress) or reached the socket (ingress). The
/// counting program of the same group may run before or after the dropping
/// one on this CPU; the per-CPU copies are summed with wrapping adds, so the
/// total is right either way.
#[inline(always)]
pub(crate) fn uncount(ctx: &SkBuffContext, egress: bool, len: u64) {
    // SAFETY: as in `account`.
    let cgroup_id = unsafe { bpf_skb_cgroup_id(ctx.skb.skb) };
    if cgroup_id == 0 {
        return;
    }
    let (map, which) = if egress {
        (&NET_EGRESS, full::NET_EGRESS)
    } else {
        (&NET_INGRESS, full::NET_INGRESS)
    };
    let first = NetCounter {
        bytes: 0u64.wrapping_sub(len),
        packets: 0u64.wrapping_sub(1),
    };
    upsert(map, which, &cgroup_id, &first, |slot| {
        // SAFETY: as in `account`.
        unsafe {
            (*slot).bytes = (*slot).bytes.wrapping_sub(len);
            (*slot).packets = (*slot).packets.wrapping_sub(1);
        }
    });
}

#[inline(always)]
fn account(map: &PerCpuHashMap<u64, NetCounter>, which: u32, ctx: &SkBuffContext) {
    // SAFETY: `ctx.skb.skb` is the `__sk_buff` the kernel passed to this program;
    // bpf_skb_cgroup_id is allowed for cgroup_skb programs and only reads it.
    let cgroup_id = unsafe { bpf_skb_cgroup_id(ctx.skb.skb) };
    if cgroup_id == 0 {
        // No full socket: nothing to charge.
        return;
    }
    let len = u64::from(ctx.len());
    let first = NetCounter {
        bytes: len,
        packets: 1,
    };
    // SAFETY: as above; 0 for a level deeper than the socket's cgroup.
    let ancestor = |level| unsafe { bpf_skb_ancestor_cgroup_id(ctx.skb.skb, level) };
    count_group(map, which, cgroup_id, ancestor, &first, |slot| {
        // SAFETY: `slot` is this CPU's copy of a map value, valid for this
        // program run. Plain adds: cgroup_skb programs run with migration (not
        // softirqs) disabled, so a packet of the same group sent from softirq on
        // this CPU (a TCP ACK) could in principle interrupt these few
        // instructions and one of the two updates would be lost. That window is
        // a nanosecond; BPF atomics would need nightly-only intrinsics here (the
        // bpfel target has no `AtomicU64::fetch_add`), so it is accepted.
        unsafe {
            (*slot).bytes = (*slot).bytes.wrapping_add(len);
            (*slot).packets = (*slot).packets.wrapping_add(1);
        }
    });
}
