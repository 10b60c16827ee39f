//! `count_connect4`, `count_connect6`, `count_bind4`, `count_bind6`: socket
//! address hooks, counted per calling task's cgroup2 id in `SOCK_ATTEMPTS`.
//!
//! They run in the context of the task calling `connect()`/`bind()`, before the
//! kernel acts on the call, so they count attempts. All of them allow the call
//! (return 1); a later issue adds deny decisions here.

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id},
    macros::cgroup_sock_addr,
    macros::map,
    maps::PerCpuHashMap,
    programs::SockAddrContext,
};
use enforcer_common::{MAX_CGROUPS, SockCounter, full};

use crate::counters::count_group;

/// cgroup2 id -> connect/bind attempts, one copy per CPU.
#[map]
static SOCK_ATTEMPTS: PerCpuHashMap<u64, SockCounter> =
    PerCpuHashMap::with_max_entries(MAX_CGROUPS, BPF_F_NO_PREALLOC);

/// sock_addr return value that lets the call proceed.
const ALLOW: i32 = 1;

/// Which field of [`SockCounter`] a hook counts.
#[derive(Clone, Copy)]
enum Hook {
    Connect4,
    Connect6,
    Bind4,
    Bind6,
}

#[cgroup_sock_addr(connect4)]
fn count_connect4(_ctx: SockAddrContext) -> i32 {
    count(Hook::Connect4);
    ALLOW
}

#[cgroup_sock_addr(connect6)]
fn count_connect6(_ctx: SockAddrContext) -> i32 {
    count(Hook::Connect6);
    ALLOW
}

#[cgroup_sock_addr(bind4)]
fn count_bind4(_ctx: SockAddrContext) -> i32 {
    count(Hook::Bind4);
    ALLOW
}

#[cgroup_sock_addr(bind6)]
fn count_bind6(_ctx: SockAddrContext) -> i32 {
    count(Hook::Bind6);
    ALLOW
}

#[inline(always)]
fn count(hook: Hook) {
    // SAFETY: no arguments; allowed for cgroup sock_addr programs.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let mut first = SockCounter::default();
    bump(&mut first, hook);
    // SAFETY: no pointer arguments; allowed for cgroup sock_addr programs.
    let ancestor = |level| unsafe { bpf_get_current_ancestor_cgroup_id(level) };
    count_group(
        &SOCK_ATTEMPTS,
        full::SOCK_ATTEMPTS,
        cgroup_id,
        ancestor,
        &first,
        |slot| {
            // SAFETY: `slot` is this CPU's copy of a map value, valid for this
            // program run. These hooks run in process context for the calling task,
            // so an update of the same slot can only be interleaved by preemption
            // within these few instructions; a plain add is accepted for that.
            bump(unsafe { &mut *slot }, hook);
        },
    );
}

#[inline(always)]
fn bump(counter: &mut SockCounter, hook: Hook) {
    let field = match hook {
        Hook::Connect4 => &mut counter.connect4,
        Hook::Connect6 => &mut counter.connect6,
        Hook::Bind4 => &mut counter.bind4,
        Hook::Bind6 => &mut counter.bind6,
    };
    *field = field.wrapping_add(1);
}
