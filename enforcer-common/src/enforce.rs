//! Enforcement: the per-group rules userspace writes, the limiter state the
//! kernel keeps, the per-group decision counters and the event record.
//!
//! Who reads what (all keyed by the cgroup2 id of the group that *owns* the
//! rules, i.e. the policy group whose directory the `enforce_*` programs are
//! attached to):
//!
//! | map | kind | key -> value | read by | written by |
//! |---|---|---|---|---|
//! | `GROUP_RULES` | hash (no prealloc) | `u64` -> [`GroupPolicy`] | every `enforce_*` program | userspace, one whole value per change |
//! | `NET_RULES` | LPM trie | [`NetKey`] -> [`NetRuleSet`] | `enforce_connect*`, `enforce_bind*`, `enforce_sendmsg*` | userspace |
//! | `NET_LIMIT_STATE` | hash | [`LimitKey`] -> [`LimitState`] | `enforce_egress*`, `enforce_ingress*` | those programs (atomics) |
//! | `NET_SHARE_CONF` | array | [`share_slot`] -> [`ShareConf`] | `enforce_egress*`, `enforce_ingress*` | userspace (the arbiter's shares) |
//! | `NET_SHARE_STATE` | array | [`share_slot`] -> [`ShareState`] | userspace (drops) | `enforce_egress*`, `enforce_ingress*` (atomics) |
//! | `ENFORCE_COUNTS` | per-CPU hash | `u64` -> [`EnforceCounter`] | userspace | every `enforce_*` program |
//! | `ENFORCE_SCOPE` | array | [`enforce_scope`] index -> `u32` | `enforce_syscalls` | userspace |
//! | `SYSCALL_OWNERS` | LRU hash (not pinned) | `u64` -> [`SyscallOwners`] | `enforce_syscalls` | `enforce_syscalls` |
//! | `SYSCALL_OWNER_CACHE` | per-CPU array (not pinned) | `0` -> [`SyscallOwnerCache`] | `enforce_syscalls` | `enforce_syscalls` |

use crate::NetCounter;

/// Deepest cgroup2 level (the root is level 0) whose directory the cgroup
/// attached `enforce_*` programs can be attached to. Each of those programs
/// exists once per level (`enforce_egress_1` ... `enforce_egress_8`): the
/// program attached to a group at level `L` finds that group's id as the
/// level-`L` ancestor of the packet's or task's cgroup, so it enforces exactly
/// the rules of the group it is attached to, for the group and every
/// descendant, and nested policy groups each apply their own rules.
pub const ENFORCE_MAX_LEVEL: u32 = 8;

/// Entries of one [`NetRuleSet`]: the most rules of one list whose networks
/// contain one prefix (the prefix's own rules and those of every shorter
/// prefix of the same list that contains it).
pub const RULES_PER_PREFIX: usize = 32;

/// Capacity of `NET_RULES` (prefixes over all groups, lists, families and the
/// two generations alive during a replacement).
pub const MAX_NET_RULE_KEYS: u32 = 65536;

/// `u64` words of each syscall bitmap of [`GroupPolicy`]: numbers 0..512
/// (x86_64 uses up to about 470, i386 as many).
pub const SYSCALL_BITMAP_WORDS: usize = 8;

/// Syscall numbers a bitmap covers.
pub const SYSCALL_BITMAP_BITS: u32 = (SYSCALL_BITMAP_WORDS * 64) as u32;

/// Nested groups with syscall rules that `enforce_syscalls` applies to one
/// task (the deepest ones if there are more).
pub const SYSCALL_OWNERS: usize = 4;

/// Capacity of the `SYSCALL_OWNERS` LRU cache (cgroups seen by `enforce_syscalls`).
pub const SYSCALL_OWNER_SLOTS: u32 = 8192;

/// [`NetRuleSet`] rule index meaning "no rule": the decision is the list's
/// default (an allow list denies what it does not list).
pub const RULE_NONE: u32 = u32::MAX;

/// What a connect or bind list is, in [`GroupPolicy::connect`] / `bind`.
pub mod list {
    /// No list: everything allowed.
    pub const NONE: u8 = 0;
    /// An allow list: a call matching a rule is allowed, every other denied.
    pub const ALLOW: u8 = 1;
    /// A deny list: a call matching a rule is denied, every other allowed.
    pub const DENY: u8 = 2;
    /// [`NetKey::list`](super::NetKey::list) of the connect list (which also
    /// covers UDP `sendmsg` with a destination address).
    pub const CONNECT: u8 = 0;
    /// [`NetKey::list`](super::NetKey::list) of the bind list.
    pub const BIND: u8 = 1;
    /// [`NetKey::family`](super::NetKey::family) of IPv4 prefixes.
    pub const V4: u8 = 4;
    /// [`NetKey::family`](super::NetKey::family) of IPv6 prefixes.
    pub const V6: u8 = 6;
}

/// The socket operation a network decision was about ([`EnforceEvent::detail`]).
pub mod op {
    pub const CONNECT4: u32 = 1;
    pub const CONNECT6: u32 = 2;
    pub const BIND4: u32 = 3;
    pub const BIND6: u32 = 4;
    pub const SENDMSG4: u32 = 5;
    pub const SENDMSG6: u32 = 6;
}

/// Operations the `deny` action of syscall rules can refuse with EPERM: bits
/// of [`GroupPolicy::deny_hooks`], and [`EnforceEvent::detail`] of a denial.
/// Which program refuses each is in `enforcer-ebpf/src/deny.rs`.
pub mod hook {
    /// `socket(2)` of AF_INET/AF_INET6 sockets (`cgroup/sock_create`).
    pub const SOCKET_CREATE: u32 = 1 << 0;
    /// `connect(2)` of AF_INET/AF_INET6 sockets (`cgroup/connect4/6`).
    pub const SOCKET_CONNECT: u32 = 1 << 1;
    /// `bind(2)` of AF_INET/AF_INET6 sockets (`cgroup/bind4/6`).
    pub const SOCKET_BIND: u32 = 1 << 2;
    /// `listen(2)` (BPF-LSM `socket_listen`).
    pub const SOCKET_LISTEN: u32 = 1 << 3;
    /// `accept(2)` and `accept4(2)` (BPF-LSM `socket_accept`).
    pub const SOCKET_ACCEPT: u32 = 1 << 4;
    /// `setsockopt(2)` (`cgroup/setsockopt`).
    pub const SOCKET_SETSOCKOPT: u32 = 1 << 5;
    /// `execve(2)` and `execveat(2)` (BPF-LSM `bprm_check_security`).
    pub const BPRM_CHECK: u32 = 1 << 6;
    /// The operations that need BPF-LSM programs.
    pub const NEEDS_LSM: u32 = SOCKET_LISTEN | SOCKET_ACCEPT | BPRM_CHECK;
}

/// [`EnforceEvent::action`].
pub mod action {
    /// The call failed with EPERM.
    pub const DENY: u32 = 1;
    /// The process was sent SIGKILL.
    pub const KILL: u32 = 2;
    /// The call went ahead and was recorded.
    pub const LOG: u32 = 3;
    /// Packets are being dropped.
    pub const DROP: u32 = 4;
}

/// Traffic direction: [`LimitKey::direction`], index into
/// [`GroupPolicy::limits`], and [`EnforceEvent::detail`] of limit events.
pub mod direction {
    pub const EGRESS: u32 = 0;
    pub const INGRESS: u32 = 1;
}

/// Bits of [`GroupPolicy::flags`].
pub mod policy_flags {
    /// The group has `kill` or `log` syscall rules (`enforce_syscalls` looks
    /// for groups with this bit when it resolves a task's rule owners).
    pub const SYSCALLS: u32 = 1 << 0;
}

/// [`GroupPolicy::skb_priority`] values of the policy's `priority`: the
/// `TC_PRIO_*` bands of `include/uapi/linux/pkt_sched.h` (what `SO_PRIORITY`
/// and the default `pfifo_fast` priomap use). `normal` leaves packets alone.
pub mod skb_priority {
    /// Leave `skb->priority` unchanged (`priority = "normal"` or unset).
    pub const UNCHANGED: u32 = 0;
    /// `TC_PRIO_INTERACTIVE`, for `priority = "high"`.
    pub const HIGH: u32 = 6;
    /// `TC_PRIO_BULK`, for `priority = "low"`.
    pub const LOW: u32 = 1;
}

/// Indexes of the `ENFORCE_SCOPE` array (`u32` values, written by userspace).
pub mod enforce_scope {
    /// Bumped whenever the set of groups with [`policy_flags::SYSCALLS`](super::policy_flags::SYSCALLS)
    /// changes: invalidates the cached rule owners of every cgroup.
    pub const GENERATION: u32 = 0;
    /// How many groups have syscall rules; 0 makes `enforce_syscalls` return at
    /// once for every task.
    pub const SYSCALL_GROUPS: u32 = 1;
    /// Offset of `thread_info.status` in `task_struct` (see [`compat`](super::compat)).
    pub const COMPAT_OFFSET: u32 = 2;
    /// The `TS_COMPAT` bit in it; 0 disables compat detection.
    pub const COMPAT_MASK: u32 = 3;
    pub const ENTRIES: u32 = 4;
}

/// How `enforce_syscalls` tells a compat (i386) syscall from a native one on
/// x86_64: the `TS_COMPAT` bit of `current->thread_info.status`. Userspace
/// finds the field's offset in the running kernel's BTF and writes it, and the
/// bit, to `ENFORCE_SCOPE` ([`enforce_scope::COMPAT_OFFSET`],
/// [`enforce_scope::COMPAT_MASK`]); a mask of 0 (other architectures, or the
/// field not found) treats every syscall as native. The x32 bit is always
/// masked off syscall numbers.
pub mod compat {
    /// Offset of `thread_info.status` in `struct task_struct` (`thread_info`
    /// is its first member with `CONFIG_THREAD_INFO_IN_TASK`) on Linux 6.x
    /// x86_64, for reference; the value used comes from BTF.
    pub const THREAD_INFO_STATUS_OFFSET: usize = 16;
    /// `TS_COMPAT` in `thread_info.status` (arch/x86/include/asm/thread_info.h).
    pub const TS_COMPAT: u32 = 0x0002;
    /// `__X32_SYSCALL_BIT`: x32 syscalls use the x86_64 numbers with this bit.
    pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;
}

/// [`EnforceEvent::kind`] of a denied connect, bind or UDP sendmsg.
pub const EVENT_NET_DENIED: u32 = 2;
/// [`EnforceEvent::kind`] of a logged, killed or denied syscall.
pub const EVENT_SYSCALL: u32 = 3;
/// [`EnforceEvent::kind`] of a byte budget running out (once per window).
pub const EVENT_BUDGET_EXHAUSTED: u32 = 4;
/// [`EnforceEvent::kind`] of a rate limit dropping packets (at most once a second).
pub const EVENT_RATE_LIMITED: u32 = 5;

/// Limits of one direction of a group, in [`GroupPolicy::limits`].
///
/// Layout: eight `u64`s, 64 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitConf {
    /// Cost of one byte at the effective rate, in nanoseconds times 2^16; 0
    /// means no rate limit.
    pub ns_per_byte_q16: u64,
    /// Burst tolerance of the rate limiter, in nanoseconds of credit.
    pub burst_ns: u64,
    /// Bytes allowed per window; 0 means no budget.
    pub budget_bytes: u64,
    /// The budget's window in nanoseconds.
    pub window_ns: u64,
    /// The effective rate in bytes per second (0: none), for events.
    pub rate: u64,
    /// The rate the rules configure (0: none). Not read by the kernel.
    pub rule_rate: u64,
    /// The rate set by userspace's `Kernel::set_rate` (0: none); the effective rate is
    /// the lowest of the three. Not read by the kernel.
    pub throttle_rate: u64,
    /// The rate the arbiter holds the group to while it yields to a
    /// higher-priority group (`Kernel::set_yield_rate`; 0: none). Kept apart
    /// from `throttle_rate` so a `when` throttle and a yield never undo each
    /// other. Not read by the kernel.
    pub yield_rate: u64,
}

/// Everything the kernel enforces for one group, but the address lists (in
/// `NET_RULES`, selected by `net_generation`). Userspace replaces it as a
/// whole, so a program sees either the old rules or the new ones.
///
/// Layout: 408 bytes, 8-byte aligned, no implicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPolicy {
    /// Generation of this group's `NET_RULES` entries.
    pub net_generation: u32,
    /// [`list`] kind of the connect list (also for UDP sendmsg).
    pub connect: u8,
    /// [`list`] kind of the bind list.
    pub bind: u8,
    /// Always zero.
    pub _pad: u16,
    /// [`hook`] bits: syscalls refused with EPERM.
    pub deny_hooks: u32,
    /// [`policy_flags`].
    pub flags: u32,
    /// `skb->priority` that `enforce_egress` gives the group's outgoing
    /// packets (a `TC_PRIO_*` value, see [`skb_priority`]); 0 leaves it as it is.
    pub skb_priority: u32,
    /// The group's priority level (1..=[`SHARE_LEVELS`]) in the node's
    /// network shares (`NET_SHARE_CONF`); 0: the group takes no part in them.
    pub share_level: u32,
    /// Indexed by [`direction`].
    pub limits: [LimitConf; 2],
    /// Syscalls (x86_64 numbers) that kill the process.
    pub kill: [u64; SYSCALL_BITMAP_WORDS],
    /// Syscalls (x86_64 numbers) that are logged.
    pub log: [u64; SYSCALL_BITMAP_WORDS],
    /// Syscalls that kill, in the i386 numbering of compat (32-bit) tasks.
    pub kill_compat: [u64; SYSCALL_BITMAP_WORDS],
    /// Syscalls that are logged, i386 numbering.
    pub log_compat: [u64; SYSCALL_BITMAP_WORDS],
}

impl Default for GroupPolicy {
    fn default() -> Self {
        Self {
            net_generation: 0,
            connect: list::NONE,
            bind: list::NONE,
            _pad: 0,
            deny_hooks: 0,
            flags: 0,
            skb_priority: 0,
            share_level: 0,
            limits: [LimitConf::default(); 2],
            kill: [0; SYSCALL_BITMAP_WORDS],
            log: [0; SYSCALL_BITMAP_WORDS],
            kill_compat: [0; SYSCALL_BITMAP_WORDS],
            log_compat: [0; SYSCALL_BITMAP_WORDS],
        }
    }
}

const _: () = assert!(core::mem::size_of::<LimitConf>() == 64);
const _: () = assert!(core::mem::size_of::<GroupPolicy>() == 24 + 128 + 4 * 64);
const _: () = assert!(core::mem::align_of::<GroupPolicy>() == 8);

/// Key data of the LPM trie `NET_RULES` (after the trie's `u32` prefix length).
///
/// The first [`NetKey::FIXED_BITS`] bits select the group, generation, list and
/// family and are always matched in full; the address follows in network byte
/// order (an IPv4 address in the first 4 bytes of `addr`, the rest zero). An
/// entry for prefix `a/p` has prefix length `FIXED_BITS + p`; a lookup uses
/// `FIXED_BITS + 32` (IPv4) or `FIXED_BITS + 128` (IPv6).
///
/// Layout: 32 bytes, 4-byte aligned (the trie key puts it at offset 4).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetKey {
    /// Low half of the owner's cgroup2 id.
    pub cgroup_lo: u32,
    /// High half.
    pub cgroup_hi: u32,
    /// [`GroupPolicy::net_generation`] the entry belongs to.
    pub generation: u32,
    /// [`list::CONNECT`] or [`list::BIND`].
    pub list: u8,
    /// [`list::V4`] or [`list::V6`].
    pub family: u8,
    /// Always zero.
    pub _pad: [u8; 2],
    /// The address, network byte order.
    pub addr: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<NetKey>() == 32);

impl NetKey {
    /// Bits before the address.
    pub const FIXED_BITS: u32 = 128;

    /// A key with `addr` in network byte order (4 or 16 significant bytes).
    #[must_use]
    pub const fn new(
        cgroup_id: u64,
        generation: u32,
        list: u8,
        family: u8,
        addr: [u8; 16],
    ) -> Self {
        Self {
            cgroup_lo: cgroup_id as u32,
            cgroup_hi: (cgroup_id >> 32) as u32,
            generation,
            list,
            family,
            _pad: [0; 2],
            addr,
        }
    }

    /// The owner's cgroup2 id.
    #[must_use]
    pub const fn cgroup_id(&self) -> u64 {
        (self.cgroup_lo as u64) | ((self.cgroup_hi as u64) << 32)
    }
}

/// One rule of a [`NetRuleSet`]. Layout: 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetRuleEntry {
    /// Lowest port (host byte order); 0 with `port_hi` 65535 for every port.
    pub port_lo: u16,
    /// Highest port, inclusive.
    pub port_hi: u16,
    /// IP protocol number (6 TCP, 17 UDP); 0 for any protocol.
    pub proto: u8,
    /// Always zero.
    pub _pad: u8,
    /// Index of the rule in its list, for events.
    pub rule: u16,
}

/// Value of `NET_RULES`: every rule of one list whose network contains the
/// entry's prefix, so that the longest matching prefix of an address carries
/// all the rules that can apply to it. Only the first `count` entries are used.
///
/// Layout: 8 + 32 * 8 = 264 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetRuleSet {
    pub count: u32,
    /// Always zero.
    pub _pad: u32,
    pub entries: [NetRuleEntry; RULES_PER_PREFIX],
}

impl Default for NetRuleSet {
    fn default() -> Self {
        Self {
            count: 0,
            _pad: 0,
            entries: [NetRuleEntry::default(); RULES_PER_PREFIX],
        }
    }
}

const _: () = assert!(core::mem::size_of::<NetRuleSet>() == 8 + 8 * RULES_PER_PREFIX);

/// How far (ns of backlog) past its burst an outgoing TCP packet may go,
/// with a congestion notification (`enforce_egress` returns 3, so TCP cuts
/// its window without a loss), before the rate limiter or the shares drop
/// it. At a loopback RTT no window is small enough to hold TCP to a rate:
/// what sets its throughput under a policer is how much passes between
/// retransmission timeouts (200 ms at least). Measured on loopback under
/// 200 Mbit/s: drops alone 22 Mbit/s, 100 ms 130, 200 ms 205. The long-run
/// rate is unchanged; from idle a TCP flow may send this much more at once.
pub const TCP_SOFT_NS: u64 = 200_000_000;

/// Priority levels of the network shares: a group's `priority` (1 to 100;
/// `low` 25, `normal` 50, `high` 75) is its level.
pub const SHARE_LEVELS: u32 = 100;

/// Entries of `NET_SHARE_CONF` and `NET_SHARE_STATE`: per [`direction`], the
/// node's slot (level 0: the configured capacity) and one slot per level.
pub const SHARE_SLOTS: u32 = 2 * (SHARE_LEVELS + 1);

/// The slot of `level` (0: the node) in direction `dir`.
#[must_use]
pub const fn share_slot(dir: u32, level: u32) -> u32 {
    dir.wrapping_mul(SHARE_LEVELS + 1).wrapping_add(level)
}

/// One slot of `NET_SHARE_CONF`, written by userspace (the arbiter).
///
/// The node's slot holds the capacity; a level's slot holds its assured
/// share. A packet of a group at level `l` passes if it fits `l`'s assured
/// share (it is charged to the node too, even beyond the capacity: assured
/// traffic always goes), or else if the node has `borrow_ns` of backlog room
/// left (it borrows what other levels leave idle, as an HTB class under its
/// ceiling does). Lower levels get less room to borrow, so when borrowers
/// compete for the spare capacity the higher levels keep getting through.
///
/// Layout: four `u64`s, 32 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShareConf {
    /// Cost of one byte at the slot's rate, nanoseconds times 2^16; 0: no
    /// capacity (node) or no assured share (level).
    pub ns_per_byte_q16: u64,
    /// GCRA burst tolerance at that rate, nanoseconds.
    pub burst_ns: u64,
    /// Levels only: the most backlog (ns) the node may have for a packet of
    /// this level to borrow; 0: the level never borrows.
    pub borrow_ns: u64,
    /// The slot's rate in bytes per second (for userspace; not read by the
    /// kernel).
    pub rate: u64,
}

/// One slot of `NET_SHARE_STATE`, shared by all CPUs and updated with atomic
/// instructions. Layout: eight `u64`s, 64 bytes (one cache line per slot).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShareState {
    /// GCRA theoretical arrival time, `bpf_ktime_get_ns` clock.
    pub tat: u64,
    /// Levels only: bytes dropped because the level was over its share and
    /// the node had no room (its demand held back while the node is
    /// saturated: the arbiter's network pressure signal).
    pub dropped_bytes: u64,
    /// Packets of `dropped_bytes`.
    pub dropped_packets: u64,
    /// Always zero.
    pub _reserved: [u64; 5],
}

const _: () = assert!(core::mem::size_of::<ShareConf>() == 32);
const _: () = assert!(core::mem::size_of::<ShareState>() == 64);

/// Key of `NET_LIMIT_STATE`. Layout: 16 bytes, `_pad` zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LimitKey {
    pub cgroup_id: u64,
    /// [`direction`].
    pub direction: u32,
    pub _pad: u32,
}

impl LimitKey {
    #[must_use]
    pub const fn new(cgroup_id: u64, direction: u32) -> Self {
        Self {
            cgroup_id,
            direction,
            _pad: 0,
        }
    }
}

/// The limiter state of one group and direction, shared by all CPUs and
/// updated with atomic instructions. Layout: eight `u64`s, 64 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitState {
    /// Rate limiter (GCRA): the theoretical arrival time, `bpf_ktime_get_ns`
    /// clock. A packet conforms if `tat <= now + burst`; it then moves `tat`
    /// to `max(tat, now) + cost`.
    pub tat: u64,
    /// Start of the current budget window; 0 before the first packet.
    pub window_start: u64,
    /// Bytes charged in the current window (may exceed the budget by the
    /// packets that did not fit).
    pub window_used: u64,
    /// `window_start` of the window whose exhaustion was last reported.
    pub budget_event_window: u64,
    /// When a rate-limit event was last reported.
    pub rate_event_ns: u64,
    pub _reserved: [u64; 3],
}

/// Enforcement decisions of one group, per CPU, summed by userspace.
///
/// Layout: 12 `u64`s, 96 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnforceCounter {
    /// `connect()` calls refused with EPERM.
    pub connect_denied: u64,
    /// `bind()` calls refused.
    pub bind_denied: u64,
    /// UDP `sendmsg()`/`sendto()` calls with a destination address refused.
    pub sendmsg_denied: u64,
    /// Syscalls refused by a BPF-LSM hook (`action = "deny"`).
    pub syscalls_denied: u64,
    /// Syscalls that got their process SIGKILLed (`action = "kill"`).
    pub syscalls_killed: u64,
    /// Syscalls logged (`action = "log"`).
    pub syscalls_logged: u64,
    /// Packets sent by the group and dropped by its rate limit or budget.
    pub egress_dropped: NetCounter,
    /// Packets to the group dropped by its ingress rate limit or budget.
    pub ingress_dropped: NetCounter,
    /// Events of this group lost because the ring buffer was full.
    pub events_lost: u64,
    /// Outgoing TCP packets over the group's rate limit or its level's share
    /// that passed with a congestion notification (the sender cuts its
    /// window) instead of being dropped: in the traffic counters, not in
    /// `egress_dropped`.
    pub egress_marked: u64,
}

const _: () = assert!(core::mem::size_of::<EnforceCounter>() == 96);

impl EnforceCounter {
    /// Field-wise wrapping sum.
    #[must_use]
    pub const fn wrapping_add(self, o: Self) -> Self {
        Self {
            connect_denied: self.connect_denied.wrapping_add(o.connect_denied),
            bind_denied: self.bind_denied.wrapping_add(o.bind_denied),
            sendmsg_denied: self.sendmsg_denied.wrapping_add(o.sendmsg_denied),
            syscalls_denied: self.syscalls_denied.wrapping_add(o.syscalls_denied),
            syscalls_killed: self.syscalls_killed.wrapping_add(o.syscalls_killed),
            syscalls_logged: self.syscalls_logged.wrapping_add(o.syscalls_logged),
            egress_dropped: self.egress_dropped.wrapping_add(o.egress_dropped),
            ingress_dropped: self.ingress_dropped.wrapping_add(o.ingress_dropped),
            events_lost: self.events_lost.wrapping_add(o.events_lost),
            egress_marked: self.egress_marked.wrapping_add(o.egress_marked),
        }
    }
}

/// Value of the `SYSCALL_OWNERS` LRU cache: the groups with syscall rules
/// that contain a cgroup (deepest first, zero-filled), valid while
/// `generation` equals `ENFORCE_SCOPE[GENERATION] + 1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallOwners {
    pub generation: u32,
    pub _pad: u32,
    pub owners: [u64; SYSCALL_OWNERS],
}

/// The one entry of the per-CPU array `SYSCALL_OWNER_CACHE`: the owners of the
/// cgroup `enforce_syscalls` last saw on this CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallOwnerCache {
    pub cgroup_id: u64,
    pub owners: SyscallOwners,
}

/// One enforcement decision on the `EVENTS` ring buffer (kinds
/// [`EVENT_NET_DENIED`], [`EVENT_SYSCALL`], [`EVENT_BUDGET_EXHAUSTED`],
/// [`EVENT_RATE_LIMITED`]). Starts like [`OomEvent`](crate::OomEvent) so that
/// userspace dispatches on `kind`.
///
/// Layout: 88 bytes, 8-byte aligned, no implicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnforceEvent {
    pub kind: u32,
    /// Thread-group id (the process id) of the task; 0 for packet events (they
    /// may run in softirq context, for no particular task).
    pub pid: u32,
    /// cgroup2 id of the group whose rule decided.
    pub cgroup_id: u64,
    /// The task's `comm` (zero for packet events).
    pub comm: [u8; crate::TASK_COMM_LEN],
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) of the decision.
    pub ktime_ns: u64,
    /// cgroup2 id of the task (or the packet's socket): the group itself or
    /// one of its descendants.
    pub task_cgroup_id: u64,
    /// [`action`].
    pub action: u32,
    /// [`op`] for network denials, the syscall number for kill/log, the
    /// [`hook`] bit for LSM denials, the [`direction`] for limit events.
    pub detail: u32,
    /// Rule index in its list, or [`RULE_NONE`] (allow list: not listed).
    /// For syscall events: 1 if the task was a compat (i386) task.
    pub rule: u32,
    /// Port (host byte order) of network denials.
    pub port: u16,
    /// IP protocol of network denials.
    pub proto: u8,
    /// [`list::V4`] / [`list::V6`] for network denials.
    pub family: u8,
    /// Address of network denials, network byte order.
    pub addr: [u8; 16],
    /// Limit events: the budget in bytes or the rate in bytes per second.
    pub value: u64,
}

const _: () = assert!(core::mem::size_of::<EnforceEvent>() == 88);
const _: () = assert!(core::mem::align_of::<EnforceEvent>() == 8);

// SAFETY (all below): `#[repr(C)]`, `Copy`, only integers and arrays of them,
// no implicit padding (sizes asserted above), so every bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for LimitConf {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for GroupPolicy {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for NetKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for NetRuleEntry {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for NetRuleSet {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LimitKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for LimitState {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for ShareConf {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for ShareState {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for EnforceCounter {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for SyscallOwners {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for SyscallOwnerCache {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for EnforceEvent {}
