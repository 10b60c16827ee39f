//! `enforce_egress` / `enforce_ingress` (one copy per cgroup level, see
//! `levels.rs`): per-group rate limits (bytes per second) and byte budgets
//! (bytes per window), per direction; and on egress the group's packet
//! priority (`skb->priority`, from `GroupPolicy::skb_priority`, 0: unchanged),
//! written before the limits are checked.
//!
//! The state of a group and direction ([`LimitState`]) is shared by all CPUs
//! and updated with atomic instructions (`atomic.rs`), so a budget is exact up
//! to the packets in flight on other CPUs at the moment it runs out, and a rate
//! holds whatever CPUs the group's traffic runs on.
//!
//! * Rate: GCRA (a token bucket in virtual-time form). A packet conforms if the
//!   theoretical arrival time `tat` is at most `now + burst`; it then moves
//!   `tat` to `max(tat, now) + len * ns_per_byte` with one compare-and-swap. A
//!   packet larger than the burst still passes when the limiter is idle, so
//!   GSO super-packets (up to 64 KiB) are never starved. Userspace sets the
//!   burst to at least three such packets' worth, which keeps TCP near the
//!   rate (it reacts to drops with a congestion window cut).
//! * Budget: bytes charged to the current window with one atomic add; a packet
//!   that does not fit is dropped. The window restarts at the first packet after
//!   it elapsed (`bpf_ktime_get_ns`).
//!
//! Dropped packets are counted per group and direction; at most one event per
//! group and direction per budget window ("budget exhausted") and per second
//! ("rate limited") goes to the ring buffer, never one per packet.
//!
//! Return values: ingress 0 (drop). Egress 2, which the kernel turns into
//! `NET_XMIT_DROP`: dropped with a congestion notification, so TCP reduces its
//! window (cwr) instead of treating the drop as a hard error, and a UDP sender
//! sees what a full device queue would give it (the datagram silently lost;
//! ENOBUFS only with IP_RECVERR). Returning 0 on egress would make `sendto`
//! fail with EPERM instead.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    helpers::bpf_ktime_get_ns,
    helpers::bpf_skb_ancestor_cgroup_id,
    helpers::bpf_skb_cgroup_id,
    macros::map,
    maps::HashMap,
    programs::SkBuffContext,
};
use enforcer_common::{
    EVENT_BUDGET_EXHAUSTED, EVENT_RATE_LIMITED, EnforceCounter, EnforceEvent, LimitKey, LimitState,
    MAX_CGROUPS, NetCounter, enforce::action, enforce::direction, enforce::skb_priority,
};

use crate::atomic::{cmpxchg, fetch_add, load, store};
use crate::events::emit;
use crate::policy::{count, rules};

/// (owner, direction) -> limiter state, shared by all CPUs.
#[map]
static NET_LIMIT_STATE: HashMap<LimitKey, LimitState> =
    HashMap::with_max_entries(MAX_CGROUPS * 2, BPF_F_NO_PREALLOC);

const PASS: i32 = 1;
const DROP_INGRESS: i32 = 0;
/// Drop with congestion notification (egress only).
const DROP_EGRESS: i32 = 2;

/// Compare-and-swap attempts of the rate limiter before it charges the packet
/// with a plain atomic add (only under heavy contention from several CPUs).
const CAS_ATTEMPTS: usize = 4;

/// Rate-limit events per group and direction: at most one per this interval.
const RATE_EVENT_NS: u64 = 1_000_000_000;

/// Largest length charged for one packet (BIG TCP packets can exceed 64 KiB);
/// keeps `len * ns_per_byte_q16` below 2^64 (userspace caps the factor at 2^43).
const MAX_CHARGE: u64 = 1 << 20;

/// Why a packet is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    Rate,
    Budget,
}

#[inline(always)]
fn state(key: &LimitKey) -> Option<*mut LimitState> {
    if let Some(p) = NET_LIMIT_STATE.get_ptr_mut(key) {
        return Some(p);
    }
    // Created zeroed on first use; BPF_NOEXIST so a racing CPU's entry wins.
    let _ = NET_LIMIT_STATE.insert(key, LimitState::default(), u64::from(BPF_NOEXIST));
    let state = NET_LIMIT_STATE.get_ptr_mut(key);
    if state.is_none() {
        crate::counters::note_full(enforcer_common::full::NET_LIMIT_STATE);
    }
    state
}

/// The program body for direction `dir` at cgroup `level`.
#[inline(always)]
pub(crate) fn skb(ctx: &SkBuffContext, level: i32, dir: u32) -> i32 {
    // SAFETY: `ctx.skb.skb` is this program's __sk_buff; the helper only reads
    // the cgroup of its socket.
    let owner = unsafe { bpf_skb_ancestor_cgroup_id(ctx.skb.skb, level) };
    let Some(policy) = rules(owner) else {
        return PASS;
    };
    let prio = policy.skb_priority;
    if dir == direction::EGRESS && prio != skb_priority::UNCHANGED {
        // SAFETY: `ctx.skb.skb` is this program's __sk_buff, whose `priority`
        // cgroup_skb programs may write (the verifier rewrites the store to
        // `skb->priority`).
        unsafe { (*ctx.skb.skb).priority = prio };
    }
    let Some(conf) = policy.limits.get(dir as usize) else {
        return PASS;
    };
    let (q16, burst, budget, window, rate) = (
        conf.ns_per_byte_q16,
        conf.burst_ns,
        conf.budget_bytes,
        conf.window_ns,
        conf.rate,
    );
    if q16 == 0 && budget == 0 {
        return PASS;
    }
    let key = LimitKey::new(owner, dir);
    let Some(st) = state(&key) else {
        // The state map is full: fail open (rules without state cannot hold).
        return PASS;
    };
    let len = u64::from(ctx.len());
    // SAFETY: no arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY (all atomics below): `st` points at a map value of this map,
    // 8-byte aligned, valid for this program run.
    let (used, window_start) = unsafe {
        (
            core::ptr::addr_of_mut!((*st).window_used),
            core::ptr::addr_of_mut!((*st).window_start),
        )
    };
    let mut ws = 0;
    if budget != 0 {
        ws = unsafe { load(window_start) };
        if ws == 0 || now.wrapping_sub(ws) >= window {
            // The first CPU to notice starts the new window; a charge made by
            // another CPU between the swap and the reset is forgotten (at most
            // a packet per CPU of extra allowance).
            if unsafe { cmpxchg(window_start, ws, now) } == ws {
                unsafe { store(used, 0) };
            }
            ws = unsafe { load(window_start) };
        }
        if unsafe { load(used) }.wrapping_add(len) > budget {
            return discard(ctx, owner, dir, len, Reason::Budget, st, ws, now, budget);
        }
    }
    if q16 != 0 && !conforms(st, now, len, q16, burst) {
        return discard(ctx, owner, dir, len, Reason::Rate, st, ws, now, rate);
    }
    if budget != 0 && unsafe { fetch_add(used, len) }.wrapping_add(len) > budget {
        // Another CPU took the rest of the budget since the check above.
        return discard(ctx, owner, dir, len, Reason::Budget, st, ws, now, budget);
    }
    PASS
}

/// GCRA: whether a packet of `len` bytes conforms, charging it if it does.
#[inline(always)]
fn conforms(st: *mut LimitState, now: u64, len: u64, q16: u64, burst: u64) -> bool {
    let cost = len.min(MAX_CHARGE).wrapping_mul(q16) >> 16;
    // SAFETY: as in `skb`.
    let tat = unsafe { core::ptr::addr_of_mut!((*st).tat) };
    for _ in 0..CAS_ATTEMPTS {
        let old = unsafe { load(tat) };
        let base = if old > now { old } else { now };
        if base.wrapping_sub(now) > burst {
            return false;
        }
        if unsafe { cmpxchg(tat, old, base.wrapping_add(cost)) } == old {
            return true;
        }
    }
    unsafe { fetch_add(tat, cost) };
    true
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn discard(
    ctx: &SkBuffContext,
    owner: u64,
    dir: u32,
    len: u64,
    reason: Reason,
    st: *mut LimitState,
    ws: u64,
    now: u64,
    value: u64,
) -> i32 {
    count(owner, |c: &mut EnforceCounter| {
        let d = if dir == direction::EGRESS {
            &mut c.egress_dropped
        } else {
            &mut c.ingress_dropped
        };
        *d = d.wrapping_add(NetCounter {
            bytes: len,
            packets: 1,
        });
    });
    crate::net::uncount(ctx, dir == direction::EGRESS, len);
    // SAFETY: as in `skb`.
    let report = unsafe {
        match reason {
            Reason::Budget => {
                let slot = core::ptr::addr_of_mut!((*st).budget_event_window);
                let last = load(slot);
                last != ws && cmpxchg(slot, last, ws) == last
            }
            Reason::Rate => {
                let slot = core::ptr::addr_of_mut!((*st).rate_event_ns);
                let last = load(slot);
                now.wrapping_sub(last) >= RATE_EVENT_NS && cmpxchg(slot, last, now) == last
            }
        }
    };
    if report {
        emit(&EnforceEvent {
            kind: if reason == Reason::Budget {
                EVENT_BUDGET_EXHAUSTED
            } else {
                EVENT_RATE_LIMITED
            },
            cgroup_id: owner,
            ktime_ns: now,
            // SAFETY: as above; reads the packet's socket cgroup.
            task_cgroup_id: unsafe { bpf_skb_cgroup_id(ctx.skb.skb) },
            action: action::DROP,
            detail: dir,
            value,
            ..EnforceEvent::default()
        });
    }
    if dir == direction::EGRESS {
        DROP_EGRESS
    } else {
        DROP_INGRESS
    }
}
