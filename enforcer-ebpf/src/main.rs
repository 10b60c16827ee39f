//! Kernel side of enforcer: accounting and enforcement programs in one object.
//!
//! Accounting (attached by observe mode at the cgroup2 root, or to each group):
//!
//! | program | hook | counts into |
//! |---|---|---|
//! | `count_egress`, `count_ingress` | `cgroup_skb/egress`, `cgroup_skb/ingress` | `NET_EGRESS`, `NET_INGRESS` |
//! | `count_connect4`, `count_connect6`, `count_bind4`, `count_bind6` | `cgroup/connect4` ... `cgroup/bind6` | `SOCK_ATTEMPTS` |
//! | `count_syscalls` | raw tracepoint `sys_enter` | `SYSCALLS` (scope: `SYSCALL_SCOPE`, `SYSCALL_GROUPS`) |
//! | `oom_kill` | tracepoint `oom/mark_victim` | ring buffer `EVENTS` |
//! | `cgroup_migrated` | tracepoint `cgroup/cgroup_attach_task` | `CGROUP_MIGRATIONS` (invalidates `count_syscalls`' per-CPU caches) |
//! | `cgroup_removed` | tracepoint `cgroup/cgroup_rmdir` | ring buffer `EVENTS` (a cgroup2 group went away) |
//! | `classify_exec`, `classify_fork` | tracepoints `sched/sched_process_exec`, `task/task_newtask` | ring buffer `EXEC_EVENTS` (`exec.rs`) |
//!
//! The counting programs only observe: they always allow.
//!
//! Enforcement (attached only to the policy's groups; they never count into the
//! accounting maps, so a group with both attached is counted once):
//!
//! | program | hook | does |
//! |---|---|---|
//! | `enforce_connect4/6_L`, `enforce_sendmsg4/6_L`, `enforce_bind4/6_L` | `cgroup/connect4` ... | allow/deny lists, EPERM (`netrules.rs`) |
//! | `enforce_egress_L`, `enforce_ingress_L` | `cgroup_skb` | rate limits and byte budgets, drops (`limits.rs`) |
//! | `enforce_sock_create_L`, `enforce_setsockopt_L` | `cgroup/sock_create`, `cgroup/setsockopt` | syscall `deny`, EPERM (`deny.rs`) |
//! | `enforce_socket_listen_L`, `enforce_socket_accept_L`, `enforce_bprm_check_L` | `lsm_cgroup` | syscall `deny`, EPERM (`deny.rs`) |
//! | `enforce_syscalls` | raw tracepoint `sys_enter` | syscall `kill` and `log` (`sysenforce.rs`) |
//!
//! `_L` is the cgroup level the copy is for (`levels.rs`). Layouts of keys,
//! values and records are in `enforcer-common`.
//!
//! Rules for this crate: nothing may panic (no indexing, no unwrap, wrapping
//! arithmetic only; clippy enforces these, below) and nothing logs (aya-log
//! would add a ring buffer write per packet or syscall). Maps are declared
//! unpinned; userspace decides where (and whether) to pin them, so loading the
//! object for a probe pins nothing.
//!
//! Program entry points are private `fn`s: the aya macros make them
//! `#[no_mangle]`, which exports them whatever their Rust visibility.
//!
//! The real build is for `bpfel-unknown-none` (`enforcer/build.rs`). For the
//! host (`cargo build --workspace`, `cargo clippy --workspace` on stable) the
//! crate compiles as an ordinary std binary whose `main` does nothing: the
//! workspace builds `enforcer-common` with its `user` feature, which brings in
//! aya and so std, and std's panic handler would clash with ours.
#![cfg_attr(target_arch = "bpf", no_std, no_main)]
// BPF atomic instructions with fetch and compare-and-swap (`atomic.rs`).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]
// The no-panic rules above, checked on the host by `cargo clippy --workspace` and
// `cargo clippy -p enforcer-ebpf --features bench --all-targets -- -D warnings`
// (the host build sees the same code, but for `atomic.rs`'s inline assembly).
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

mod atomic;
#[cfg(feature = "bench")]
mod bench;
mod cgroup;
mod compat;
mod counters;
mod deny;
mod events;
mod exec;
mod full;
mod levels;
mod limits;
mod net;
mod netrules;
mod oom;
mod policy;
mod quota;
mod scope;
mod sock;
mod syscalls;
mod sysenforce;

/// Never reached: nothing in this crate can panic, and the verifier rejects
/// programs whose code could loop forever, so a reachable panic would fail to load.
#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// The host stub (see the crate docs): the programs are only ever run by the
/// kernel, from the bpfel object.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
