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
//!   burst to at least three such packets' worth. An outgoing TCP packet over
//!   the burst but within `TCP_SOFT_NS` (200 ms) more passes with a
//!   congestion notification (return 3: `tcp_enter_cwr` cuts the window
//!   without a loss to recover from, as the kernel's HBM sample does), and
//!   only beyond that is it dropped: a policer that only drops holds a
//!   loopback TCP flow far below the rate (measured: 22 Mbit/s under a
//!   200 Mbit/s limit, 205 with this), since every recovery waits for a
//!   retransmission timer. Other packets (UDP ignores the notification) are
//!   dropped over the burst, as before.
//! * Budget: bytes charged to the current window with one atomic add; a packet
//!   that does not fit is dropped. The window restarts at the first packet after
//!   it elapsed (`bpf_ktime_get_ns`).
//!
//! * Share: with a node capacity configured (`[agent] egress_capacity`), a
//!   group with a `share_level` must also fit the node's shares
//!   ([`share_passes`]): its level's assured share, or else what the other
//!   levels leave idle (borrowed, as HTB does). Two array lookups (inlined by
//!   the verifier) and one or two compare-and-swaps per packet; checked after
//!   the group's own rate and before its budget is charged.
//!
//! Dropped packets are counted per group and direction, and outgoing TCP
//! packets passed with a congestion notification apart from them
//! (`egress_marked`); at most one event per group and direction per budget
//! window ("budget exhausted") and per second ("rate limited") goes to the
//! ring buffer, never one per packet.
//!
//! Return values: ingress 0 (drop). Egress 3 for a TCP packet passed with a
//! congestion notification (`NET_XMIT_CN`). Egress 2 to drop, which the kernel turns into
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
    maps::{Array, HashMap},
    programs::SkBuffContext,
};
use enforcer_common::{
    EVENT_BUDGET_EXHAUSTED, EVENT_RATE_LIMITED, EnforceCounter, EnforceEvent, LimitKey, LimitState,
    MAX_CGROUPS, NetCounter, SHARE_SLOTS, ShareConf, ShareState, TCP_SOFT_NS, enforce::action,
    enforce::direction, enforce::skb_priority, share_slot,
};

use crate::atomic::{cmpxchg, fetch_add, load, store};
use crate::events::emit;
use crate::policy::{count, rules};

/// (owner, direction) -> limiter state, shared by all CPUs.
#[map]
static NET_LIMIT_STATE: HashMap<LimitKey, LimitState> =
    HashMap::with_max_entries(MAX_CGROUPS * 2, BPF_F_NO_PREALLOC);

/// The node's capacity and each priority level's share, per direction
/// (`share_slot`); written by userspace.
#[map]
static NET_SHARE_CONF: Array<ShareConf> = Array::with_max_entries(SHARE_SLOTS, 0);

/// The shares' GCRA state and held-back counts, shared by all CPUs.
#[map]
static NET_SHARE_STATE: Array<ShareState> = Array::with_max_entries(SHARE_SLOTS, 0);

const PASS: i32 = 1;
const DROP_INGRESS: i32 = 0;
/// Drop with congestion notification (egress only).
const DROP_EGRESS: i32 = 2;
/// Pass with congestion notification (egress only): TCP cuts its window.
const PASS_SLOWER: i32 = 3;

/// `skb->protocol` of IPv4 and IPv6 (network byte order, as `__sk_buff`
/// holds it).
const ETH_P_IP_BE: u32 = 0x0800u16.to_be() as u32;
const ETH_P_IPV6_BE: u32 = 0x86DDu16.to_be() as u32;
const IPPROTO_TCP: u8 = 6;

/// Where a packet stands against a GCRA.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Within the burst: charged, passes.
    Within,
    /// Over the burst but within a second one: charged; an outgoing TCP
    /// packet passes with a congestion notification, others are dropped.
    Over,
    /// Beyond both: not charged, dropped.
    Beyond,
}

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
        crate::full::note_full(enforcer_common::full::NET_LIMIT_STATE);
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
    let level = policy.share_level;
    if q16 == 0 && budget == 0 && level == 0 {
        return PASS;
    }
    let len = u64::from(ctx.len());
    // SAFETY: no arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    // The group's limiter state, if it has one (a null pointer, not an
    // `Option`: the verifier refuses to see a `None`'s undefined payload
    // register read).
    let mut st: *mut LimitState = core::ptr::null_mut();
    let mut ws = 0;
    let mut slower = false;
    let tcp_out = TcpOut::new(dir);
    if q16 != 0 || budget != 0 {
        let key = LimitKey::new(owner, dir);
        // The state map is full: fail open (rules without state cannot hold).
        if let Some(found) = state(&key) {
            st = found;
            // SAFETY (all atomics below): `st` points at a map value of this
            // map, 8-byte aligned, valid for this program run.
            let (used, window_start) = unsafe {
                (
                    core::ptr::addr_of_mut!((*st).window_used),
                    core::ptr::addr_of_mut!((*st).window_start),
                )
            };
            if budget != 0 {
                ws = unsafe { load(window_start) };
                if ws == 0 || now.wrapping_sub(ws) >= window {
                    // The first CPU to notice starts the new window; a charge
                    // made by another CPU between the swap and the reset is
                    // forgotten (at most a packet per CPU of extra allowance).
                    if unsafe { cmpxchg(window_start, ws, now) } == ws {
                        unsafe { store(used, 0) };
                    }
                    ws = unsafe { load(window_start) };
                }
                if unsafe { load(used) }.wrapping_add(len) > budget {
                    return discard(ctx, owner, dir, len, Reason::Budget, st, ws, now, budget);
                }
            }
            // SAFETY: as above.
            let tat = unsafe { core::ptr::addr_of_mut!((*st).tat) };
            if q16 != 0 {
                let soft = || {
                    if tcp_out.get(ctx) { TCP_SOFT_NS } else { 0 }
                };
                match gcra(tat, now, len, q16, burst, soft) {
                    Fit::Within => {}
                    Fit::Over => slower = true,
                    Fit::Beyond => {
                        return discard(ctx, owner, dir, len, Reason::Rate, st, ws, now, rate);
                    }
                }
            }
        }
    }
    if level != 0 {
        match share_fit(dir, level, now, len, || tcp_out.get(ctx)) {
            Fit::Within => {}
            Fit::Over => slower = true,
            Fit::Beyond => {
                count_share_drop(dir, level, len);
                return held_back(ctx, owner, dir, len);
            }
        }
    }
    // SAFETY: `st` is null or a map value of this map, as above.
    if budget != 0
        && !st.is_null()
        && unsafe { fetch_add(core::ptr::addr_of_mut!((*st).window_used), len) }.wrapping_add(len)
            > budget
    {
        // Another CPU took the rest of the budget since the check above.
        return discard(ctx, owner, dir, len, Reason::Budget, st, ws, now, budget);
    }
    // Only egress may return 3 (the verifier holds ingress to 0 or 1); `dir`
    // is a constant of each program, so this folds away.
    if slower && dir == direction::EGRESS {
        // Counted apart from drops: a marked packet left (it is in the
        // traffic counters), and the sender slowed without a loss.
        count(owner, |c: &mut EnforceCounter| {
            c.egress_marked = c.egress_marked.wrapping_add(1);
        });
        PASS_SLOWER
    } else {
        PASS
    }
}

/// Whether the packet is outgoing TCP, which a congestion notification
/// slows down: found out at most once per packet, and only for a packet
/// over a burst, so the common path never reads the header.
struct TcpOut {
    egress: bool,
    /// 0: not looked at yet, 1: TCP, 2: not TCP. A plain integer, not an
    /// `Option<bool>`, whose undefined payload bits the verifier would
    /// refuse to see read.
    known: core::cell::Cell<u8>,
}

impl TcpOut {
    #[inline(always)]
    fn new(dir: u32) -> Self {
        TcpOut {
            egress: dir == direction::EGRESS,
            known: core::cell::Cell::new(0),
        }
    }

    #[inline(always)]
    fn get(&self, ctx: &SkBuffContext) -> bool {
        if !self.egress {
            return false;
        }
        match self.known.get() {
            1 => true,
            2 => false,
            _ => {
                let tcp = is_tcp(ctx);
                self.known.set(if tcp { 1 } else { 2 });
                tcp
            }
        }
    }
}

/// Whether the packet is TCP (IPv4, or IPv6 without extension headers
/// before TCP).
#[inline(always)]
fn is_tcp(ctx: &SkBuffContext) -> bool {
    // SAFETY: `ctx.skb.skb` is this program's __sk_buff; `protocol` is
    // readable by cgroup_skb programs.
    let protocol = unsafe { (*ctx.skb.skb).protocol };
    // cgroup_skb data starts at the network header.
    let offset = if protocol == ETH_P_IP_BE {
        9
    } else if protocol == ETH_P_IPV6_BE {
        6
    } else {
        return false;
    };
    ctx.load::<u8>(offset).is_ok_and(|p| p == IPPROTO_TCP)
}

/// Where a packet of `len` bytes of a group at share `level` stands against
/// the node's shares in direction `dir`, charged unless beyond: within its
/// level's assured share it always goes (and is charged to the node too, so
/// borrowers make room at once); beyond it, it borrows if the node's backlog
/// leaves the level room (`borrow_ns`; outgoing TCP up to the node's hard
/// limit, with a congestion notification). Within when no capacity is
/// configured.
#[inline(always)]
fn share_fit(dir: u32, level: u32, now: u64, len: u64, tcp_out: impl Fn() -> bool) -> Fit {
    let node_slot = share_slot(dir, 0);
    let Some(node) = NET_SHARE_CONF.get(node_slot) else {
        return Fit::Within;
    };
    let node_q16 = node.ns_per_byte_q16;
    if node_q16 == 0 {
        return Fit::Within;
    }
    let slot = share_slot(dir, level);
    let (Some(class), Some(node_st), Some(class_st)) = (
        NET_SHARE_CONF.get(slot),
        NET_SHARE_STATE.get_ptr_mut(node_slot),
        NET_SHARE_STATE.get_ptr_mut(slot),
    ) else {
        return Fit::Within;
    };
    // SAFETY: both point at values of an array map, 8-byte aligned, valid
    // for this program run (array values are never freed).
    let (node_tat, class_tat) = unsafe {
        (
            core::ptr::addr_of_mut!((*node_st).tat),
            core::ptr::addr_of_mut!((*class_st).tat),
        )
    };
    let assured = class.ns_per_byte_q16;
    if assured != 0 {
        let burst = class.burst_ns;
        let fit = gcra(class_tat, now, len, assured, burst, || {
            if tcp_out() { TCP_SOFT_NS } else { 0 }
        });
        if fit != Fit::Beyond {
            // Assured traffic always goes, but it fills the node (up to its
            // own soft limit, so the node's debt stays bounded).
            let cap = node.burst_ns.saturating_add(TCP_SOFT_NS);
            gcra(node_tat, now, len, node_q16, cap, || 0);
            return fit;
        }
    }
    let room = class.borrow_ns;
    if room == 0 {
        return Fit::Beyond;
    }
    // Every level's TCP may borrow up to the same hard limit (a lower one
    // gets its congestion notifications sooner); other traffic only within
    // its level's room, so lower levels yield the spare capacity first.
    let hard = node.burst_ns.saturating_add(TCP_SOFT_NS);
    gcra(node_tat, now, len, node_q16, room, || {
        if tcp_out() {
            hard.saturating_sub(room)
        } else {
            0
        }
    })
}

/// Counts a packet the shares held back at `level` (the arbiter's signal
/// that the level's demand is held back while the node is saturated).
#[inline(always)]
fn count_share_drop(dir: u32, level: u32, len: u64) {
    if let Some(st) = NET_SHARE_STATE.get_ptr_mut(share_slot(dir, level)) {
        // SAFETY: a value of an array map, 8-byte aligned, valid for this run.
        unsafe {
            fetch_add(core::ptr::addr_of_mut!((*st).dropped_bytes), len);
            fetch_add(core::ptr::addr_of_mut!((*st).dropped_packets), 1);
        }
    }
}

/// A packet the shares hold back: dropped and counted as the group's drop,
/// with no event (a share at work is not news; the arbiter reads the level's
/// count).
#[inline(always)]
fn held_back(ctx: &SkBuffContext, owner: u64, dir: u32, len: u64) -> i32 {
    count_drop(ctx, owner, dir, len);
    if dir == direction::EGRESS {
        DROP_EGRESS
    } else {
        DROP_INGRESS
    }
}

/// Counts a dropped packet as the group's and takes it out of the traffic
/// counters (what was dropped did not leave or arrive).
#[inline(always)]
fn count_drop(ctx: &SkBuffContext, owner: u64, dir: u32, len: u64) {
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
}

/// GCRA: where a packet of `len` bytes stands with backlog room `burst`
/// (and `soft()` more, asked only for a packet over `burst`), charging it
/// unless it is beyond both. `tat` points at the 8-byte aligned `tat` field
/// of a map value.
#[inline(always)]
fn gcra(tat: *mut u64, now: u64, len: u64, q16: u64, burst: u64, soft: impl Fn() -> u64) -> Fit {
    let cost = len.min(MAX_CHARGE).wrapping_mul(q16) >> 16;
    // The hard limit, asked for once (0: not yet).
    let mut hard = 0u64;
    let mut backlog = 0;
    // SAFETY (all atomics here): the caller passes a valid, aligned map value
    // field.
    for _ in 0..CAS_ATTEMPTS {
        let old = unsafe { load(tat) };
        let base = if old > now { old } else { now };
        backlog = base.wrapping_sub(now);
        if backlog > burst {
            if hard == 0 {
                hard = burst.saturating_add(soft()).max(1);
            }
            if backlog > hard {
                return Fit::Beyond;
            }
        }
        if unsafe { cmpxchg(tat, old, base.wrapping_add(cost)) } == old {
            return if backlog > burst {
                Fit::Over
            } else {
                Fit::Within
            };
        }
    }
    unsafe { fetch_add(tat, cost) };
    if backlog > burst {
        Fit::Over
    } else {
        Fit::Within
    }
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
    count_drop(ctx, owner, dir, len);
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
