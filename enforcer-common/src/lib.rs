//! Types shared by the kernel programs (`enforcer-ebpf`) and userspace
//! (`enforcer::bpf`): map keys and values, event records and the constants both
//! sides must agree on. Every type is `#[repr(C)]` with explicit padding fields, so
//! both sides agree on every byte and no uninitialised byte can reach a map. With
//! the `user` feature each type implements `aya::Pod`.
//!
//! Map overview (all keyed by the cgroup2 id, i.e. the inode number of the group's
//! cgroup2 directory, which is what `bpf_skb_cgroup_id()` and
//! `bpf_get_current_cgroup_id()` return):
//!
//! | map | kind | key -> value | written by |
//! |---|---|---|---|
//! | `NET_EGRESS`, `NET_INGRESS` | per-CPU hash | `u64` -> [`NetCounter`] | `count_egress`, `count_ingress` |
//! | `SOCK_ATTEMPTS` | per-CPU hash | `u64` -> [`SockCounter`] | `count_connect4/6`, `count_bind4/6` |
//! | `SYSCALLS` | per-CPU hash | [`SyscallKey`] -> `u64` | `count_syscalls` |
//! | `SYSCALL_GROUPS` | hash | `u64` -> `u8` | userspace (which groups to count) |
//! | `SYSCALL_SCOPE` | array | `u32` index -> `u32` | userspace ([`scope`]) |
//! | `SYSCALL_CACHE` | per-CPU array | `0` -> [`ScopeCache`] | `count_syscalls` |
//! | `EVENTS` | ring buffer | [`OomEvent`], [`EnforceEvent`] records | `oom_kill`, the `enforce_*` programs |
//!
//! The enforcement maps are listed in [`enforce`](mod@enforce), the exec
//! classification maps in [`exec`](mod@exec), the per-subtree quotas of the
//! counting maps in [`quota`](mod@quota).
#![no_std]

pub mod enforce;
mod event;
pub mod exec;
mod net;
pub mod quota;
mod sock;
mod syscall;

pub use enforce::{
    ENFORCE_MAX_LEVEL, EVENT_BUDGET_EXHAUSTED, EVENT_NET_DENIED, EVENT_RATE_LIMITED, EVENT_SYSCALL,
    EnforceCounter, EnforceEvent, GroupPolicy, LimitConf, LimitKey, LimitState, NetKey,
    NetRuleEntry, NetRuleSet, RULE_NONE, RULES_PER_PREFIX, SHARE_LEVELS, SHARE_SLOTS, ShareConf,
    ShareState, SyscallOwnerCache, SyscallOwners, TCP_SOFT_NS, share_slot,
};
pub use event::{
    CgroupEvent, EVENT_CGROUP_REMOVED, EVENT_OOM_KILL, OomEvent, TASK_COMM_LEN, cgroup_rmdir,
    mark_victim,
};
pub use net::NetCounter;
pub use sock::SockCounter;
pub use syscall::{SYSCALL_NR_INVALID, ScopeCache, SyscallKey, counted_nr, scope, syscall_abi};

/// Default capacity of the per-group maps (`NET_EGRESS`, `NET_INGRESS`,
/// `SOCK_ATTEMPTS`, `SYSCALL_GROUPS`, `GROUP_RULES`, `ENFORCE_COUNTS`; twice it
/// for `NET_LIMIT_STATE`). None is preallocated, so this is a ceiling, not a
/// cost; userspace may set another one (`[agent] max_groups`). Userspace
/// deletes the entries of removed groups; when a map is full, a new group is
/// not counted (the packet or call proceeds) and `MAP_FULL` says so.
pub const MAX_CGROUPS: u32 = 65536;

/// Default capacity of `SYSCALLS`: (group, syscall number) pairs. The map is
/// not preallocated (memory grows with the pairs in use), so the capacity is a
/// ceiling, not a cost: 10,000 groups each using 100 distinct syscalls fit.
/// Userspace may set another one (`[agent] max_syscall_keys`).
pub const MAX_SYSCALL_KEYS: u32 = 1 << 20;

/// Indexes of the per-CPU array `MAP_FULL`: how many times a counting program
/// found its map full (the event went uncounted). Userspace reports them
/// (`enforcer_map_full_total{map}`) and warns, so a full map is never silent.
pub mod full {
    pub const NET_EGRESS: u32 = 0;
    pub const NET_INGRESS: u32 = 1;
    pub const SOCK_ATTEMPTS: u32 = 2;
    pub const SYSCALLS: u32 = 3;
    pub const ENFORCE_COUNTS: u32 = 4;
    pub const NET_LIMIT_STATE: u32 = 5;
    pub const COUNT_FOLDS: u32 = 6;
    /// Number of entries of the array.
    pub const ENTRIES: u32 = 8;
    /// The map each index counts for, as userspace names it.
    pub const NAMES: [(u32, &str); 7] = [
        (NET_EGRESS, "NET_EGRESS"),
        (NET_INGRESS, "NET_INGRESS"),
        (SOCK_ATTEMPTS, "SOCK_ATTEMPTS"),
        (SYSCALLS, "SYSCALLS"),
        (ENFORCE_COUNTS, "ENFORCE_COUNTS"),
        (NET_LIMIT_STATE, "NET_LIMIT_STATE"),
        (COUNT_FOLDS, "COUNT_FOLDS"),
    ];
}

/// Size of the `EVENTS` ring buffer in bytes (a power of two and a multiple of the
/// page size). One OOM record takes 40 bytes with the ring buffer's header, an
/// enforcement record 96: about 2500 enforcement events fit between two drains.
pub const EVENTS_BYTES: u32 = 256 * 1024;
