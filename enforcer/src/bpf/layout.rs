//! Names and expected shapes of the object's programs and maps, and the layout
//! of a pin directory.
//!
//! ```text
//! <pin_dir>/maps/<MAP>                       every map in PINNED_MAPS
//! <pin_dir>/links/<cgroup id>/<program>      the six per-group counting programs
//! <pin_dir>/links/global/<program>           count_syscalls, oom_kill
//! <pin_dir>/enforce/<cgroup id>/<program>    the 10 (13 with BPF-LSM) enforcement programs of a group
//! <pin_dir>/enforce/global/enforce_syscalls  syscall kill/log rules
//! ```

use std::mem::size_of;
use std::path::{Path, PathBuf};

use aya::maps::MapType;
use aya::programs::CgroupSkbAttachType;
use aya::programs::links::LinkType;
use enforcer_common::enforce::{MAX_NET_RULE_KEYS, enforce_scope};
use enforcer_common::quota::{MAX_FOLDED, MAX_OWNERS};
use enforcer_common::{
    ENFORCE_MAX_LEVEL, EVENTS_BYTES, EnforceCounter, GroupPolicy, LimitKey, LimitState,
    MAX_CGROUPS, MAX_SYSCALL_KEYS, NetCounter, NetKey, NetRuleSet, SHARE_SLOTS, ShareConf,
    ShareState, SockCounter, SyscallKey, full, scope,
};

/// Where `enforcer run` pins its maps and links unless told otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/enforcer";

pub(super) const NET_EGRESS: &str = "NET_EGRESS";
pub(super) const NET_INGRESS: &str = "NET_INGRESS";
pub(super) const SOCK_ATTEMPTS: &str = "SOCK_ATTEMPTS";
pub(super) const SYSCALLS: &str = "SYSCALLS";
pub(super) const SYSCALL_GROUPS: &str = "SYSCALL_GROUPS";
pub(super) const SYSCALL_SCOPE: &str = "SYSCALL_SCOPE";
pub(super) const EVENTS: &str = "EVENTS";
pub(super) const GROUP_RULES: &str = "GROUP_RULES";
pub(super) const NET_RULES: &str = "NET_RULES";
pub(super) const NET_LIMIT_STATE: &str = "NET_LIMIT_STATE";
pub(super) const NET_SHARE_CONF: &str = "NET_SHARE_CONF";
pub(super) const NET_SHARE_STATE: &str = "NET_SHARE_STATE";
pub(super) const ENFORCE_COUNTS: &str = "ENFORCE_COUNTS";
pub(super) const ENFORCE_SCOPE: &str = "ENFORCE_SCOPE";
pub(super) const MAP_FULL: &str = "MAP_FULL";
pub(super) const CGROUP_MIGRATIONS: &str = "CGROUP_MIGRATIONS";
pub(super) const COUNT_OWNERS: &str = "COUNT_OWNERS";
pub(super) const COUNT_TAKEN: &str = "COUNT_TAKEN";
pub(super) const COUNT_ADMITTED: &str = "COUNT_ADMITTED";
pub(super) const COUNT_FOLDED: &str = "COUNT_FOLDED";
pub(super) const COUNT_FOLDS: &str = "COUNT_FOLDS";

/// What a map must look like; checked against maps found pinned before they
/// are re-used, so a pin left by an incompatible build is refused instead of
/// being read with the wrong layout.
#[derive(Debug, Clone, Copy)]
pub(super) struct MapSpec {
    pub(super) name: &'static str,
    pub(super) kind: MapType,
    pub(super) key_size: u32,
    pub(super) value_size: u32,
    pub(super) max_entries: u32,
}

const fn size32<T>() -> u32 {
    size_of::<T>() as u32
}

/// Maps pinned under `<pin_dir>/maps`. `SYSCALL_CACHE`, `SYSCALL_OWNERS` and
/// `SYSCALL_OWNER_CACHE` (caches) are not pinned: each loaded program instance
/// may keep its own. `CGROUP_MIGRATIONS` is, though it only invalidates
/// caches: an adopted `count_syscalls` must see the bumps of a newly attached
/// `cgroup_migrated`.
pub(super) const PINNED_MAPS: [MapSpec; 21] = [
    MapSpec {
        name: NET_EGRESS,
        kind: MapType::PerCpuHash,
        key_size: size32::<u64>(),
        value_size: size32::<NetCounter>(),
        max_entries: MAX_CGROUPS,
    },
    MapSpec {
        name: NET_INGRESS,
        kind: MapType::PerCpuHash,
        key_size: size32::<u64>(),
        value_size: size32::<NetCounter>(),
        max_entries: MAX_CGROUPS,
    },
    MapSpec {
        name: SOCK_ATTEMPTS,
        kind: MapType::PerCpuHash,
        key_size: size32::<u64>(),
        value_size: size32::<SockCounter>(),
        max_entries: MAX_CGROUPS,
    },
    MapSpec {
        name: SYSCALLS,
        kind: MapType::PerCpuHash,
        key_size: size32::<SyscallKey>(),
        value_size: size32::<u64>(),
        max_entries: MAX_SYSCALL_KEYS,
    },
    MapSpec {
        name: SYSCALL_GROUPS,
        kind: MapType::Hash,
        key_size: size32::<u64>(),
        value_size: size32::<u8>(),
        max_entries: MAX_CGROUPS,
    },
    MapSpec {
        name: SYSCALL_SCOPE,
        kind: MapType::Array,
        key_size: size32::<u32>(),
        value_size: size32::<u32>(),
        max_entries: scope::ENTRIES,
    },
    MapSpec {
        name: EVENTS,
        kind: MapType::RingBuf,
        key_size: 0,
        value_size: 0,
        max_entries: EVENTS_BYTES,
    },
    MapSpec {
        name: GROUP_RULES,
        kind: MapType::Hash,
        key_size: size32::<u64>(),
        value_size: size32::<GroupPolicy>(),
        max_entries: MAX_CGROUPS,
    },
    MapSpec {
        name: NET_RULES,
        kind: MapType::LpmTrie,
        // The trie key: a u32 prefix length, then the data.
        key_size: 4 + size32::<NetKey>(),
        value_size: size32::<NetRuleSet>(),
        max_entries: MAX_NET_RULE_KEYS,
    },
    MapSpec {
        name: NET_LIMIT_STATE,
        kind: MapType::Hash,
        key_size: size32::<LimitKey>(),
        value_size: size32::<LimitState>(),
        max_entries: MAX_CGROUPS * 2,
    },
    MapSpec {
        name: NET_SHARE_CONF,
        kind: MapType::Array,
        key_size: size32::<u32>(),
        value_size: size32::<ShareConf>(),
        max_entries: SHARE_SLOTS,
    },
    MapSpec {
        name: NET_SHARE_STATE,
        kind: MapType::Array,
        key_size: size32::<u32>(),
        value_size: size32::<ShareState>(),
        max_entries: SHARE_SLOTS,
    },
    MapSpec {
        name: ENFORCE_COUNTS,
        kind: MapType::PerCpuHash,
        key_size: size32::<u64>(),
        value_size: size32::<EnforceCounter>(),
        max_entries: MAX_CGROUPS,
    },
    MapSpec {
        name: ENFORCE_SCOPE,
        kind: MapType::Array,
        key_size: size32::<u32>(),
        value_size: size32::<u32>(),
        max_entries: enforce_scope::ENTRIES,
    },
    MapSpec {
        name: MAP_FULL,
        kind: MapType::PerCpuArray,
        key_size: size32::<u32>(),
        value_size: size32::<u64>(),
        max_entries: full::ENTRIES,
    },
    MapSpec {
        name: CGROUP_MIGRATIONS,
        kind: MapType::Array,
        key_size: size32::<u32>(),
        value_size: size32::<u64>(),
        max_entries: 1,
    },
    MapSpec {
        name: COUNT_OWNERS,
        kind: MapType::Hash,
        key_size: size32::<u64>(),
        value_size: size32::<u64>(),
        max_entries: MAX_OWNERS,
    },
    MapSpec {
        name: COUNT_TAKEN,
        kind: MapType::Hash,
        key_size: size32::<u64>(),
        value_size: size32::<u64>(),
        max_entries: MAX_OWNERS,
    },
    MapSpec {
        name: COUNT_ADMITTED,
        kind: MapType::Hash,
        key_size: size32::<u64>(),
        value_size: size32::<u64>(),
        max_entries: MAX_CGROUPS,
    },
    MapSpec {
        name: COUNT_FOLDED,
        kind: MapType::LruHash,
        key_size: size32::<u64>(),
        value_size: size32::<u64>(),
        max_entries: MAX_FOLDED,
    },
    MapSpec {
        name: COUNT_FOLDS,
        kind: MapType::PerCpuHash,
        key_size: size32::<u64>(),
        value_size: size32::<u64>(),
        max_entries: MAX_OWNERS,
    },
];

/// How many groups and (group, syscall) pairs the maps hold. None of the
/// maps it sizes is preallocated, so a large capacity costs nothing until
/// used; a full map is counted (`MAP_FULL`), never silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Groups in each per-group map (`NET_EGRESS`, `SYSCALL_GROUPS`, ...).
    pub groups: u32,
    /// (group, syscall) pairs in `SYSCALLS`.
    pub syscall_keys: u32,
    /// Descendants of each policy group (of the root, in observe mode) with
    /// counters of their own; the others are counted in an ancestor
    /// (`enforcer_common::quota`).
    pub subgroups: u32,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            groups: MAX_CGROUPS,
            syscall_keys: MAX_SYSCALL_KEYS,
            subgroups: enforcer_common::quota::DEFAULT_SUBGROUPS,
        }
    }
}

impl Capacity {
    /// `max_entries` of `spec` under this capacity.
    pub(super) fn entries_of(&self, spec: &MapSpec) -> u32 {
        match spec.name {
            NET_EGRESS | NET_INGRESS | SOCK_ATTEMPTS | SYSCALL_GROUPS | GROUP_RULES
            | ENFORCE_COUNTS | COUNT_ADMITTED => self.groups,
            NET_LIMIT_STATE => self.groups.saturating_mul(2),
            SYSCALLS => self.syscall_keys,
            _ => spec.max_entries,
        }
    }
}

/// How a program is attached.
#[derive(Debug, Clone, Copy)]
pub(super) enum Hook {
    /// cgroup_skb on a cgroup2 directory.
    Skb(CgroupSkbAttachType),
    /// cgroup sock_addr on a cgroup2 directory (attach type is in the object).
    SockAddr,
    /// Raw tracepoint.
    RawTracepoint(&'static str),
    /// Classic tracepoint (category, name).
    Tracepoint(&'static str, &'static str),
    /// BPF-LSM program attached to a cgroup2 directory (`lsm_cgroup`), for the
    /// named LSM hook.
    LsmCgroup(&'static str),
    /// cgroup sock program (`cgroup/sock_create`; attach type in the object).
    Sock,
    /// cgroup sockopt program (`cgroup/setsockopt`; attach type in the object).
    Sockopt,
}

impl Hook {
    /// The kind of kernel link this hook produces, to recognise a pinned one.
    pub(super) fn link_type(self) -> LinkType {
        match self {
            Self::Skb(_) | Self::SockAddr | Self::LsmCgroup(_) | Self::Sock | Self::Sockopt => {
                LinkType::Cgroup
            }
            Self::RawTracepoint(_) => LinkType::RawTracePoint,
            Self::Tracepoint(..) => LinkType::PerfEvent,
        }
    }
}

/// A program of the object.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProgramSpec {
    pub(super) name: &'static str,
    pub(super) hook: Hook,
}

/// The six programs [`Kernel::attach_group`](super::Kernel::attach_group)
/// attaches to each group.
pub(super) const GROUP_PROGRAMS: [ProgramSpec; 6] = [
    ProgramSpec {
        name: "count_egress",
        hook: Hook::Skb(CgroupSkbAttachType::Egress),
    },
    ProgramSpec {
        name: "count_ingress",
        hook: Hook::Skb(CgroupSkbAttachType::Ingress),
    },
    ProgramSpec {
        name: "count_connect4",
        hook: Hook::SockAddr,
    },
    ProgramSpec {
        name: "count_connect6",
        hook: Hook::SockAddr,
    },
    ProgramSpec {
        name: "count_bind4",
        hook: Hook::SockAddr,
    },
    ProgramSpec {
        name: "count_bind6",
        hook: Hook::SockAddr,
    },
];

/// The host-wide programs of [`Kernel::attach_tracing`](super::Kernel::attach_tracing).
/// `cgroup_migrated` first: `count_syscalls`' caches are only right once task
/// migrations bump them.
pub(super) const TRACING_PROGRAMS: [ProgramSpec; 4] = [
    ProgramSpec {
        name: "cgroup_migrated",
        hook: Hook::Tracepoint("cgroup", "cgroup_attach_task"),
    },
    ProgramSpec {
        name: "count_syscalls",
        hook: Hook::RawTracepoint("sys_enter"),
    },
    ProgramSpec {
        name: "oom_kill",
        hook: Hook::Tracepoint("oom", "mark_victim"),
    },
    ProgramSpec {
        name: "cgroup_removed",
        hook: Hook::Tracepoint("cgroup", "cgroup_rmdir"),
    },
];

/// Exec classification (`exec.rs`): not pinned, owned by the classifying process.
pub(super) const EXEC_PROGRAMS: [ProgramSpec; 2] = [
    ProgramSpec {
        name: "classify_exec",
        hook: Hook::Tracepoint("sched", "sched_process_exec"),
    },
    ProgramSpec {
        name: "classify_fork",
        hook: Hook::Tracepoint("task", "task_newtask"),
    },
];

/// `enforce_syscalls`, attached host-wide once a group has syscall `kill` or
/// `log` rules, pinned at `<pin_dir>/enforce/global/enforce_syscalls`.
pub(super) const ENFORCE_SYSCALLS: ProgramSpec = ProgramSpec {
    name: "enforce_syscalls",
    hook: Hook::RawTracepoint("sys_enter"),
};

/// Enforcement programs per group: each exists once per cgroup level
/// 1..=[`ENFORCE_MAX_LEVEL`], named `<kind>_<level>` (see
/// `enforcer-ebpf/src/levels.rs`).
pub(super) const ENFORCE_KINDS: [Hook; 13] = [
    Hook::Skb(CgroupSkbAttachType::Egress),
    Hook::Skb(CgroupSkbAttachType::Ingress),
    Hook::SockAddr,
    Hook::SockAddr,
    Hook::SockAddr,
    Hook::SockAddr,
    Hook::SockAddr,
    Hook::SockAddr,
    Hook::Sock,
    Hook::Sockopt,
    Hook::LsmCgroup("socket_listen"),
    Hook::LsmCgroup("socket_accept"),
    Hook::LsmCgroup("bprm_check_security"),
];

macro_rules! enforce_names {
    ($level:literal) => {
        [
            concat!("enforce_egress_", $level),
            concat!("enforce_ingress_", $level),
            concat!("enforce_connect4_", $level),
            concat!("enforce_connect6_", $level),
            concat!("enforce_bind4_", $level),
            concat!("enforce_bind6_", $level),
            concat!("enforce_sendmsg4_", $level),
            concat!("enforce_sendmsg6_", $level),
            concat!("enforce_sock_create_", $level),
            concat!("enforce_setsockopt_", $level),
            concat!("enforce_socket_listen_", $level),
            concat!("enforce_socket_accept_", $level),
            concat!("enforce_bprm_check_", $level),
        ]
    };
}

/// Names of the enforcement programs, by level - 1 and kind.
const ENFORCE_NAMES: [[&str; ENFORCE_KINDS.len()]; ENFORCE_MAX_LEVEL as usize] = [
    enforce_names!(1),
    enforce_names!(2),
    enforce_names!(3),
    enforce_names!(4),
    enforce_names!(5),
    enforce_names!(6),
    enforce_names!(7),
    enforce_names!(8),
];

/// The enforcement programs for groups at cgroup level `level`
/// (1..=[`ENFORCE_MAX_LEVEL`]); empty for other levels.
pub(super) fn enforce_programs(level: u32) -> impl Iterator<Item = ProgramSpec> {
    let names = level
        .checked_sub(1)
        .and_then(|i| ENFORCE_NAMES.get(i as usize))
        .copied();
    names.into_iter().flat_map(|names| {
        names
            .into_iter()
            .zip(ENFORCE_KINDS)
            .map(|(name, hook)| ProgramSpec { name, hook })
    })
}

/// The counting programs, loaded by every [`Kernel::open`](super::Kernel::open).
pub(super) fn counting_programs() -> impl Iterator<Item = ProgramSpec> {
    GROUP_PROGRAMS.into_iter().chain(TRACING_PROGRAMS)
}

/// Every program userspace attaches (also the names of every link pin).
pub(super) fn all_programs() -> impl Iterator<Item = ProgramSpec> {
    counting_programs()
        .chain([ENFORCE_SYSCALLS])
        .chain((1..=ENFORCE_MAX_LEVEL).flat_map(enforce_programs))
}

/// Directory name of host-wide links under `<pin_dir>/links`.
pub(super) const GLOBAL_LINKS: &str = "global";

pub(super) fn maps_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("maps")
}

pub(super) fn links_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("links")
}

/// Where enforcement links are pinned (`<pin_dir>/enforce`).
pub(super) fn enforce_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("enforce")
}

pub(super) fn map_pin(pin_dir: &Path, map: &str) -> PathBuf {
    maps_dir(pin_dir).join(map)
}
