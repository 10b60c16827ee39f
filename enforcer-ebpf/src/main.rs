//! Kernel side of enforcer's accounting: one object, seven programs.
//!
//! | program | hook | counts into |
//! |---|---|---|
//! | `count_egress`, `count_ingress` | `cgroup_skb/egress`, `cgroup_skb/ingress` | `NET_EGRESS`, `NET_INGRESS` |
//! | `count_connect4`, `count_connect6`, `count_bind4`, `count_bind6` | `cgroup/connect4` ... `cgroup/bind6` | `SOCK_ATTEMPTS` |
//! | `count_syscalls` | raw tracepoint `sys_enter` | `SYSCALLS` (scope: `SYSCALL_SCOPE`, `SYSCALL_GROUPS`) |
//! | `oom_kill` | tracepoint `oom/mark_victim` | ring buffer `EVENTS` |
//!
//! Every program only observes: the cgroup programs always return 1 (allow).
//! Layouts of keys, values and records are in `enforcer-common`.
//!
//! Rules for this crate: nothing may panic (no indexing, no unwrap, wrapping
//! arithmetic only) and nothing logs (aya-log would add a ring buffer write per
//! packet or syscall). Maps are declared unpinned; userspace decides where (and
//! whether) to pin them, so loading the object for a probe pins nothing.
#![no_std]
#![no_main]

mod bench;
mod counters;
mod net;
mod oom;
mod sock;
mod syscalls;

/// Never reached: nothing in this crate can panic, and the verifier rejects
/// programs whose code could loop forever, so a reachable panic would fail to load.
#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
