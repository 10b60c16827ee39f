//! Names and expected shapes of the object's programs and maps, and the layout
//! of a pin directory.
//!
//! ```text
//! <pin_dir>/maps/<MAP>                     every map in PINNED_MAPS
//! <pin_dir>/links/<cgroup id>/<program>    the six per-group programs
//! <pin_dir>/links/global/<program>         count_syscalls, oom_kill
//! ```

use std::mem::size_of;
use std::path::{Path, PathBuf};

use aya::maps::MapType;
use aya::programs::CgroupSkbAttachType;
use aya::programs::links::LinkType;
use enforcer_common::{
    EVENTS_BYTES, MAX_CGROUPS, MAX_SYSCALL_KEYS, NetCounter, SockCounter, SyscallKey, scope,
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

/// Maps pinned under `<pin_dir>/maps`. `SYSCALL_CACHE` (a per-CPU scratch
/// entry) is not pinned: each loaded program instance may keep its own.
pub(super) const PINNED_MAPS: [MapSpec; 7] = [
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
];

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
}

impl Hook {
    /// The kind of kernel link this hook produces, to recognise a pinned one.
    pub(super) fn link_type(self) -> LinkType {
        match self {
            Self::Skb(_) | Self::SockAddr => LinkType::Cgroup,
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
pub(super) const TRACING_PROGRAMS: [ProgramSpec; 2] = [
    ProgramSpec {
        name: "count_syscalls",
        hook: Hook::RawTracepoint("sys_enter"),
    },
    ProgramSpec {
        name: "oom_kill",
        hook: Hook::Tracepoint("oom", "mark_victim"),
    },
];

/// Every program, in load order.
pub(super) fn all_programs() -> impl Iterator<Item = ProgramSpec> {
    GROUP_PROGRAMS.into_iter().chain(TRACING_PROGRAMS)
}

/// Directory name of host-wide links under `<pin_dir>/links`.
pub(super) const GLOBAL_LINKS: &str = "global";

pub(super) fn maps_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("maps")
}

pub(super) fn links_dir(pin_dir: &Path) -> PathBuf {
    pin_dir.join("links")
}

pub(super) fn map_pin(pin_dir: &Path, map: &str) -> PathBuf {
    maps_dir(pin_dir).join(map)
}
