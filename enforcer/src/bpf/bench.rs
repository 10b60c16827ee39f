//! Support for `cargo xtask bench accounting` (driven through
//! `enforcer/examples/bench_accounting.rs`); not used by the agent.
//!
//! * [`attach_noop_sys_enter`], [`attach_noop_skb`]: the empty baseline programs
//!   of `enforcer-ebpf/src/bench.rs`, attached unpinned. Nothing of them outlives
//!   the returned [`Attached`]: dropping it (or the process exiting) detaches them.
//! * [`populate_pinned`]: fills the counter maps pinned under a (private) pin
//!   directory with synthetic groups, to time reading them back.
//! * [`snapshot_pinned_batch`]: what [`snapshot_pinned`](super::snapshot_pinned)
//!   returns, read with `BPF_MAP_LOOKUP_BATCH` (thousands of entries per system
//!   call) instead of aya 0.14's two calls per entry, to show what that would gain.

use std::collections::BTreeMap;
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::path::Path;

use aya::maps::{Map, MapData, PerCpuHashMap, PerCpuValues};
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, RawTracePoint};
use aya::{Ebpf, EbpfLoader, Pod};
use enforcer_common::{NetCounter, SockCounter, SyscallKey};

use super::BpfError;
use super::batch::{cpus, syscall_err};
use super::layout::{NET_EGRESS, NET_INGRESS, SOCK_ATTEMPTS, SYSCALLS, map_pin};
use super::object::open_cgroup2_dir;
use super::snapshot::{GroupCounters, Snapshot};

/// The object built from `enforcer-ebpf` (the same bytes `object.rs` embeds).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/enforcer-ebpf"));

/// Empty raw tracepoint `sys_enter` program (returns 0).
pub const NOOP_SYS_ENTER: &str = "noop_sys_enter";
/// Empty cgroup_skb egress program (returns 1, allow).
pub const NOOP_SKB_EGRESS: &str = "noop_skb_egress";
/// Empty cgroup_skb ingress program (returns 1, allow).
pub const NOOP_SKB_INGRESS: &str = "noop_skb_ingress";

/// Baseline programs loaded and attached without pins. Dropping this detaches
/// and unloads them (aya owns the links).
pub struct Attached {
    /// `(program name, kernel program id)`, for `bpftool prog show id N`.
    programs: Vec<(&'static str, u32)>,
    _ebpf: Ebpf,
}

impl Attached {
    /// The attached programs and their kernel ids.
    pub fn programs(&self) -> &[(&'static str, u32)] {
        &self.programs
    }
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("programs", &self.programs)
            .finish_non_exhaustive()
    }
}

/// Parses the object (creating its maps, unpinned) without loading any program.
fn object() -> Result<Ebpf, BpfError> {
    if OBJECT.is_empty() {
        return Err(BpfError::ObjectMissing);
    }
    EbpfLoader::new().load(OBJECT).map_err(BpfError::Load)
}

/// Levers of `enforcer-ebpf/src/bench.rs` attached next to each baseline.
pub const LEVERS_SYS: [&str; 2] = ["lever_sys_pid_hash", "lever_sys_pid_array"];
pub const LEVERS_SKB: [(&str, CgroupSkbAttachType); 4] = [
    ("lever_skb_cache_array_egress", CgroupSkbAttachType::Egress),
    (
        "lever_skb_cache_array_ingress",
        CgroupSkbAttachType::Ingress,
    ),
    ("lever_skb_local_egress", CgroupSkbAttachType::Egress),
    ("lever_skb_local_ingress", CgroupSkbAttachType::Ingress),
];

/// Gives the group of `cgroup2_dir` slot 0 in the levers' slot map.
fn give_slot(ebpf: &mut Ebpf, cgroup2_dir: &Path) -> Result<(), BpfError> {
    let (_, id) = open_cgroup2_dir(cgroup2_dir)?;
    let name = "LEVER_SLOT_OF";
    let map = ebpf.map_mut(name).ok_or(BpfError::MapMissing(name))?;
    let mut slots: aya::maps::HashMap<_, u64, u32> =
        aya::maps::HashMap::try_from(map).map_err(|source| BpfError::Map { map: name, source })?;
    slots
        .insert(id, 0, 0)
        .map_err(|source| BpfError::Map { map: name, source })
}

/// Attaches `noop_sys_enter` and the syscall levers to the raw tracepoint
/// `sys_enter`, host-wide; the levers count the group of `cgroup2_dir`.
pub fn attach_noop_sys_enter(cgroup2_dir: Option<&Path>) -> Result<Attached, BpfError> {
    let mut ebpf = object()?;
    if let Some(dir) = cgroup2_dir {
        give_slot(&mut ebpf, dir)?;
    }
    let mut programs = Vec::new();
    for name in std::iter::once(NOOP_SYS_ENTER).chain(LEVERS_SYS) {
        let program = ebpf
            .program_mut(name)
            .ok_or(BpfError::ProgramMissing(name))?;
        let load_err = |source| BpfError::ProgramLoad { name, source };
        let p: &mut RawTracePoint = program.try_into().map_err(load_err)?;
        p.load().map_err(load_err)?;
        p.attach("sys_enter").map_err(|source| BpfError::Attach {
            program: name,
            target: "raw tracepoint sys_enter".into(),
            source,
        })?;
        programs.push((name, p.info().map_err(load_err)?.id()));
    }
    Ok(Attached {
        programs,
        _ebpf: ebpf,
    })
}

/// Attaches `noop_skb_egress`, `noop_skb_ingress` and the packet levers to
/// the cgroup2 directory `cgroup2_dir` (next to whatever else is attached there).
pub fn attach_noop_skb(cgroup2_dir: &Path) -> Result<Attached, BpfError> {
    let (cgroup, _) = open_cgroup2_dir(cgroup2_dir)?;
    let mut ebpf = object()?;
    give_slot(&mut ebpf, cgroup2_dir)?;
    let mut programs = Vec::new();
    for (name, attach_type) in [
        (NOOP_SKB_EGRESS, CgroupSkbAttachType::Egress),
        (NOOP_SKB_INGRESS, CgroupSkbAttachType::Ingress),
    ]
    .into_iter()
    .chain(LEVERS_SKB)
    {
        let program = ebpf
            .program_mut(name)
            .ok_or(BpfError::ProgramMissing(name))?;
        let load_err = |source| BpfError::ProgramLoad { name, source };
        let p: &mut CgroupSkb = program.try_into().map_err(load_err)?;
        p.load().map_err(load_err)?;
        // Single, as `Kernel::attach_group` does: links coexist regardless.
        p.attach(&cgroup, attach_type, CgroupAttachMode::Single)
            .map_err(|source| BpfError::Attach {
                program: name,
                target: cgroup2_dir.display().to_string(),
                source,
            })?;
        programs.push((name, p.info().map_err(load_err)?.id()));
    }
    Ok(Attached {
        programs,
        _ebpf: ebpf,
    })
}

/// What [`populate_pinned`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Populated {
    /// Entries written to each of `NET_EGRESS`, `NET_INGRESS`, `SOCK_ATTEMPTS`.
    pub group_entries: usize,
    /// Entries written to `SYSCALLS`.
    pub syscall_entries: usize,
}

/// Writes one entry per id of `cgroup_ids` into `NET_EGRESS`, `NET_INGRESS` and
/// `SOCK_ATTEMPTS`, and `syscalls_per_group` (group, syscall) entries per id into
/// `SYSCALLS` (syscall numbers 0, 1, ...), in the maps pinned under
/// `pin_dir/maps` (e.g. by [`Kernel::open`](super::Kernel::open) on a private
/// pin directory). Every CPU's slot gets a non-zero value. Stops early at a
/// map's capacity (the insert fails with E2BIG).
pub fn populate_pinned(
    pin_dir: &Path,
    cgroup_ids: &[u64],
    syscalls_per_group: u32,
) -> Result<Populated, BpfError> {
    let cpus = cpus()?;
    let net = NetCounter {
        bytes: 1500,
        packets: 1,
    };
    let sock = SockCounter {
        connect4: 1,
        ..SockCounter::default()
    };
    let mut group_entries = usize::MAX;
    for name in [NET_EGRESS, NET_INGRESS] {
        let written = fill(pin_dir, name, cpus, net, cgroup_ids.iter().copied())?;
        group_entries = group_entries.min(written);
    }
    let written = fill(
        pin_dir,
        SOCK_ATTEMPTS,
        cpus,
        sock,
        cgroup_ids.iter().copied(),
    )?;
    group_entries = group_entries.min(written);
    let keys = cgroup_ids
        .iter()
        .flat_map(|&id| (0..syscalls_per_group).map(move |nr| SyscallKey::new(id, nr)));
    let syscall_entries = fill(pin_dir, SYSCALLS, cpus, 7u64, keys)?;
    Ok(Populated {
        group_entries,
        syscall_entries,
    })
}

/// Inserts `value` on every CPU for each key into the pinned per-CPU hash `name`;
/// returns how many were written before the map was full.
fn fill<K: Pod, V: Pod>(
    pin_dir: &Path,
    name: &'static str,
    cpus: usize,
    value: V,
    keys: impl Iterator<Item = K>,
) -> Result<usize, BpfError> {
    let map_err = |source| BpfError::Map { map: name, source };
    let path = map_pin(pin_dir, name);
    let data = MapData::from_pin(&path).map_err(|source| BpfError::PinnedMap {
        path: path.clone(),
        source,
    })?;
    let mut map = Map::from_map_data(data).map_err(map_err)?;
    let mut map: PerCpuHashMap<&mut MapData, K, V> =
        PerCpuHashMap::try_from(&mut map).map_err(map_err)?;
    let mut written = 0;
    for key in keys {
        let values = PerCpuValues::try_from(vec![value; cpus])
            .map_err(|e| syscall_err(name, "nr_cpus", e))?;
        match map.insert(key, values, 0) {
            Ok(()) => written += 1,
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::E2BIG) =>
            {
                break;
            }
            Err(source) => return Err(map_err(source)),
        }
    }
    Ok(written)
}

/// Reads the counter maps pinned under `pin_dir/maps` into the same
/// [`Snapshot`] as [`snapshot_pinned`](super::snapshot_pinned), but with
/// `BPF_MAP_LOOKUP_BATCH` (Linux 5.6+), up to 4096 entries per system call.
/// The maps' layouts are not checked here; the benchmark compares the result
/// with `snapshot_pinned`'s.
pub fn snapshot_pinned_batch(pin_dir: &Path) -> Result<Snapshot, BpfError> {
    let cpus = cpus()?;
    let mut groups: BTreeMap<u64, GroupCounters> = BTreeMap::new();
    let sum_net = |v: &[NetCounter]| {
        v.iter()
            .fold(NetCounter::default(), |sum, x| sum.wrapping_add(*x))
    };
    batch_read::<u64, NetCounter>(pin_dir, NET_EGRESS, cpus, |id, v| {
        groups.entry(id).or_default().egress = sum_net(v);
    })?;
    batch_read::<u64, NetCounter>(pin_dir, NET_INGRESS, cpus, |id, v| {
        groups.entry(id).or_default().ingress = sum_net(v);
    })?;
    batch_read::<u64, SockCounter>(pin_dir, SOCK_ATTEMPTS, cpus, |id, v| {
        groups.entry(id).or_default().sock = v
            .iter()
            .fold(SockCounter::default(), |sum, x| sum.wrapping_add(*x));
    })?;
    batch_read::<SyscallKey, u64>(pin_dir, SYSCALLS, cpus, |key, v| {
        let calls = v.iter().fold(0u64, |sum, x| sum.wrapping_add(*x));
        groups
            .entry(key.cgroup_id)
            .or_default()
            .syscalls
            .insert(crate::arch::SyscallId::of_key(&key), calls);
    })?;
    Ok(Snapshot {
        groups,
        ..Default::default()
    })
}

/// Calls `f(key, per-CPU values)` for every entry of the pinned per-CPU hash
/// `name` with batch lookups.
fn batch_read<K: Pod, V: Pod>(
    pin_dir: &Path,
    name: &'static str,
    cpus: usize,
    f: impl FnMut(K, &[V]),
) -> Result<(), BpfError> {
    let path = map_pin(pin_dir, name);
    let data = MapData::from_pin(&path).map_err(|source| BpfError::PinnedMap {
        path: path.clone(),
        source,
    })?;
    super::batch::lookup_batch(data.fd().as_fd().as_raw_fd(), cpus, f)
        .map_err(|e| syscall_err(name, "bpf_map_lookup_batch", e))
}
