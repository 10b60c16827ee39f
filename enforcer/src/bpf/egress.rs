//! Per-cgroup egress accounting: the `count_egress` cgroup_skb program and its
//! `NET_EGRESS` per-CPU hash map.

use std::path::{Path, PathBuf};

use aya::Ebpf;
use aya::maps::{MapError, PerCpuHashMap};
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, cgroup_skb::CgroupSkbLink};
use enforcer_common::NetCounter;

use super::BpfError;
use super::object::{LogReader, load_object, open_cgroup2_dir};

const PROGRAM: &str = "count_egress";
const MAP: &str = "NET_EGRESS";

// Callers will move the counter into async tasks and threads.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<EgressCounter>();
};

/// One attachment: the cgroup it is on and the link that keeps it there.
#[derive(Debug)]
struct Attachment {
    cgroup_id: u64,
    path: PathBuf,
    /// Owned link: dropping it detaches the program from the cgroup.
    _link: CgroupSkbLink,
}

/// Counts egress bytes and packets per cgroup2 id.
///
/// The program is loaded (verified) by [`load`](Self::load) and runs once
/// [`attach`](Self::attach)ed to one or more cgroup2 directories; packets sent by
/// sockets of that cgroup *and its descendants* are charged to the sending socket's
/// own cgroup. Attach to disjoint subtrees only: with links on both a cgroup and
/// its ancestor the program runs twice per packet and counts it twice.
///
/// Dropping the counter detaches every link and unloads the program and map.
#[derive(Debug)]
pub struct EgressCounter {
    // Field order is drop order: links go first so the program is detached before
    // the object (programs, maps) is released.
    attachments: Vec<Attachment>,
    logs: Option<LogReader>,
    ebpf: Ebpf,
}

impl EgressCounter {
    /// Loads the embedded object and the `count_egress` program into the kernel.
    /// Nothing is attached yet.
    pub fn load() -> Result<Self, BpfError> {
        let (mut ebpf, logs) = load_object()?;
        let program = program_mut(&mut ebpf)?;
        program.load().map_err(|source| BpfError::ProgramLoad {
            name: PROGRAM,
            source,
        })?;
        if ebpf.map(MAP).is_none() {
            return Err(BpfError::MapMissing(MAP));
        }
        Ok(Self {
            attachments: Vec::new(),
            logs,
            ebpf,
        })
    }

    /// Attaches the program to the egress hook of the cgroup2 directory
    /// `cgroup_dir`. Attaching again to a cgroup that is already attached is a
    /// no-op (a second link would count every packet twice).
    ///
    /// Uses [`CgroupAttachMode::Single`]: on kernels >= 5.7 aya attaches with
    /// `bpf_link_create`, where `AllowMultiple` fails with EINVAL, while links are
    /// multi-attach anyway, so other programs on the same cgroup are unaffected.
    pub fn attach(&mut self, cgroup_dir: &Path) -> Result<(), BpfError> {
        let (cgroup, cgroup_id) = open_cgroup2_dir(cgroup_dir)?;
        if self.attachments.iter().any(|a| a.cgroup_id == cgroup_id) {
            return Ok(());
        }
        let attach_err = |source| BpfError::Attach {
            program: PROGRAM,
            path: cgroup_dir.to_path_buf(),
            source,
        };
        let program = program_mut(&mut self.ebpf)?;
        let link_id = program
            .attach(
                &cgroup,
                CgroupSkbAttachType::Egress,
                CgroupAttachMode::Single,
            )
            .map_err(attach_err)?;
        // Take the link out of the program's own table so that its lifetime is
        // ours: detaching is dropping the `Attachment`.
        let link = program.take_link(link_id).map_err(attach_err)?;
        self.attachments.push(Attachment {
            cgroup_id,
            path: cgroup_dir.to_path_buf(),
            _link: link,
        });
        Ok(())
    }

    /// Detaches from `cgroup_dir` if attached there. Returns whether it was.
    /// Counts already collected stay in the map.
    pub fn detach(&mut self, cgroup_dir: &Path) -> Result<bool, BpfError> {
        let id = super::cgroup_id(cgroup_dir)?;
        let before = self.attachments.len();
        self.attachments.retain(|a| a.cgroup_id != id);
        Ok(self.attachments.len() != before)
    }

    /// The cgroup2 directories this counter is attached to.
    pub fn attached(&self) -> impl Iterator<Item = &Path> {
        self.attachments.iter().map(|a| a.path.as_path())
    }

    /// Egress bytes and packets counted for `cgroup_id` (see
    /// [`cgroup_id`](super::cgroup_id)), summed over all CPUs. Zero if the group
    /// has sent nothing since the program was loaded.
    pub fn counts(&self, cgroup_id: u64) -> Result<NetCounter, BpfError> {
        let map = self.map()?;
        match map.get(&cgroup_id, 0) {
            Ok(per_cpu) => Ok(per_cpu
                .iter()
                .fold(NetCounter::default(), |sum, c| sum.wrapping_add(*c))),
            Err(MapError::KeyNotFound) => Ok(NetCounter::default()),
            Err(source) => Err(BpfError::Map { map: MAP, source }),
        }
    }

    /// Forgets the counts of `cgroup_id`, e.g. after the group was removed, so its
    /// slot in the map (16384 groups) can be reused. Absent ids are fine.
    pub fn forget(&mut self, cgroup_id: u64) -> Result<(), BpfError> {
        let map = self.ebpf.map_mut(MAP).ok_or(BpfError::MapMissing(MAP))?;
        let mut map: PerCpuHashMap<_, u64, NetCounter> =
            PerCpuHashMap::try_from(map).map_err(|source| BpfError::Map { map: MAP, source })?;
        match map.remove(&cgroup_id) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(BpfError::Map { map: MAP, source }),
        }
    }

    /// Writes pending aya-log records of the kernel programs to the `log` crate's
    /// logger. A no-op when the object does not use aya-log (currently it does not:
    /// the packet path must not log).
    pub fn flush_logs(&mut self) {
        if let Some(logs) = &mut self.logs {
            logs.flush();
        }
    }

    pub(super) fn ebpf(&self) -> &Ebpf {
        &self.ebpf
    }

    fn map(&self) -> Result<PerCpuHashMap<&aya::maps::MapData, u64, NetCounter>, BpfError> {
        let map = self.ebpf.map(MAP).ok_or(BpfError::MapMissing(MAP))?;
        PerCpuHashMap::try_from(map).map_err(|source| BpfError::Map { map: MAP, source })
    }
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut CgroupSkb, BpfError> {
    let program = ebpf
        .program_mut(PROGRAM)
        .ok_or(BpfError::ProgramMissing(PROGRAM))?;
    program.try_into().map_err(|source| BpfError::ProgramLoad {
        name: PROGRAM,
        source,
    })
}
