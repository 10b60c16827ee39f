//! The `deny` action of syscall rules: the call fails with EPERM.
//!
//! Where a cgroup hook runs before the syscall acts, it is used, because it
//! works on every kernel with cgroup BPF:
//!
//! | syscall | program | hook | covers |
//! |---|---|---|---|
//! | `socket` | `enforce_sock_create_L` | `cgroup/sock_create` | AF_INET and AF_INET6 sockets |
//! | `connect` | `enforce_connect4/6_L` (`netrules.rs`) | `cgroup/connect4/6` | AF_INET, AF_INET6 |
//! | `bind` | `enforce_bind4/6_L` (`netrules.rs`) | `cgroup/bind4/6` | AF_INET, AF_INET6 |
//! | `setsockopt` | `enforce_setsockopt_L` | `cgroup/setsockopt` | every socket |
//!
//! The others have no cgroup hook and use BPF-LSM programs attached to the
//! group's cgroup (`lsm_cgroup`, Linux 6.0+, needs `bpf` among the active
//! LSMs and BPF trampolines):
//!
//! | syscall | program | LSM hook |
//! |---|---|---|
//! | `listen` | `enforce_socket_listen_L` | `socket_listen` |
//! | `accept`, `accept4` | `enforce_socket_accept_L` | `socket_accept` |
//! | `execve`, `execveat` | `enforce_bprm_check_L` | `bprm_check_security` |
//!
//! Each program refuses its operation when the group's `deny_hooks` has the
//! operation's bit and allows it otherwise. `_L` is the cgroup level of the
//! group (`levels.rs`).

use aya_ebpf::programs::{LsmContext, SockContext, SockoptContext};
use enforcer_common::{EVENT_SYSCALL, EnforceCounter, enforce::action};

use crate::events::{emit, task_event};
use crate::policy::{count, current_owner, rules};

const ALLOW: i32 = 1;
const DENY: i32 = 0;

/// Whether `owner`'s rules deny the operation `hook_bit`; if so the denial
/// is counted and reported (the caller returns its "deny" verdict).
#[inline(always)]
pub(crate) fn denied(owner: u64, task_cgroup: u64, hook_bit: u32) -> bool {
    let Some(policy) = rules(owner) else {
        return false;
    };
    if policy.deny_hooks & hook_bit == 0 {
        return false;
    }
    count(owner, |c: &mut EnforceCounter| {
        c.syscalls_denied = c.syscalls_denied.wrapping_add(1);
    });
    let mut event = task_event(EVENT_SYSCALL, owner, task_cgroup);
    event.action = action::DENY;
    event.detail = hook_bit;
    emit(&event);
    true
}

#[inline(always)]
fn verdict(level: i32, hook_bit: u32) -> i32 {
    let (owner, task_cgroup) = current_owner(level);
    if owner != 0 && denied(owner, task_cgroup, hook_bit) {
        DENY
    } else {
        ALLOW
    }
}

/// `cgroup/sock_create` (user sockets of AF_INET/AF_INET6 only: the kernel
/// runs this hook from `inet_create`/`inet6_create` for non-kernel sockets).
#[inline(always)]
pub(crate) fn sock_create(_ctx: &SockContext, level: i32, hook_bit: u32) -> i32 {
    verdict(level, hook_bit)
}

/// `cgroup/setsockopt`: returning 0 fails the call with EPERM; the option
/// buffer is left untouched, so an allowed call proceeds unchanged.
#[inline(always)]
pub(crate) fn setsockopt(_ctx: &SockoptContext, level: i32, hook_bit: u32) -> i32 {
    verdict(level, hook_bit)
}

/// A BPF-LSM hook (`lsm_cgroup`): 0 refuses with EPERM, 1 allows.
#[inline(always)]
pub(crate) fn lsm(_ctx: &LsmContext, level: i32, hook_bit: u32) -> i32 {
    verdict(level, hook_bit)
}
