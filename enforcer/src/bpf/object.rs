//! The embedded eBPF object: loading it (optionally with pinned maps),
//! describing it, and cgroup ids.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use aya::programs::{CgroupSkb, CgroupSockAddr, RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, fstatfs};

use super::BpfError;
use super::layout::{Hook, PINNED_MAPS, ProgramSpec, all_programs, map_pin};

/// The object built from `enforcer-ebpf` by build.rs (aya-build names it after the
/// crate's `[[bin]]`). `include_bytes_aligned!` because the ELF parser needs the
/// bytes 8-byte aligned; plain `include_bytes!` gives no alignment guarantee.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/enforcer"));

/// aya-log's ring buffer map. Only present if a kernel program uses aya-log-ebpf.
const AYA_LOG_MAP: &str = "AYA_LOGS";

/// Keeps aya-log's reader alive and flushes it on demand.
///
/// Dropping `aya_log::EbpfLogger` closes the `AYA_LOGS` map fd, after which loading
/// further programs of the object fails ("fd N is not pointing to valid bpf_map",
/// see shared/HOST.md), so whoever loads the object must hold this as long as the
/// programs live. The logger is boxed behind a closure so its type (generic over
/// `log::Log`) does not leak into our types.
pub(super) struct LogReader(Box<dyn FnMut() + Send>);

impl LogReader {
    pub(super) fn flush(&mut self) {
        (self.0)();
    }
}

impl fmt::Debug for LogReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogReader")
    }
}

/// Loads the embedded object, creating its maps, and loads every program into the
/// kernel (through the verifier). Nothing is attached.
///
/// With `pin_dir`, each map of [`PINNED_MAPS`] is opened from
/// `<pin_dir>/maps/<NAME>` if pinned there (the caller has checked its layout)
/// and otherwise created and pinned there. Without it nothing is pinned.
pub(super) fn load(pin_dir: Option<&Path>) -> Result<(Ebpf, Option<LogReader>), BpfError> {
    if OBJECT.is_empty() {
        return Err(BpfError::ObjectMissing);
    }
    let mut loader = EbpfLoader::new();
    if let Some(pin_dir) = pin_dir {
        for spec in &PINNED_MAPS {
            loader.map_pin_path(spec.name, map_pin(pin_dir, spec.name));
        }
    }
    let mut ebpf = loader.load(OBJECT).map_err(BpfError::Load)?;
    let logs = if ebpf.map(AYA_LOG_MAP).is_some() {
        let mut logger = aya_log::EbpfLogger::init(&mut ebpf).map_err(BpfError::Logger)?;
        Some(LogReader(Box::new(move || logger.flush())))
    } else {
        None
    };
    for spec in all_programs() {
        load_program(&mut ebpf, spec)?;
    }
    Ok((ebpf, logs))
}

fn load_program(ebpf: &mut Ebpf, spec: ProgramSpec) -> Result<(), BpfError> {
    let name = spec.name;
    let program = ebpf
        .program_mut(name)
        .ok_or(BpfError::ProgramMissing(name))?;
    let err = |source| BpfError::ProgramLoad { name, source };
    match spec.hook {
        Hook::Skb(_) => {
            let p: &mut CgroupSkb = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
        Hook::SockAddr => {
            let p: &mut CgroupSockAddr = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
        Hook::RawTracepoint(_) => {
            let p: &mut RawTracePoint = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
        Hook::Tracepoint(..) => {
            let p: &mut TracePoint = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
    }
}

/// What the embedded eBPF object contains, after loading it into the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Size of the embedded ELF object in bytes.
    pub object_bytes: usize,
    /// Program names (sorted). All of them passed the verifier.
    pub programs: Vec<String>,
    /// Map names (sorted). All of them were created.
    pub maps: Vec<String>,
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "eBPF object {} bytes; programs: {}; maps: {}",
            self.object_bytes,
            self.programs.join(", "),
            self.maps.join(", ")
        )
    }
}

/// Loads the embedded object and all its programs into the kernel (so the
/// verifier has accepted them), reports their names, and unloads everything again.
/// Nothing is attached or pinned. Used by `enforcer status` to show the eBPF side works.
pub fn probe() -> Result<ProbeReport, BpfError> {
    let (ebpf, _logs) = load(None)?;
    let mut programs: Vec<String> = ebpf.programs().map(|(name, _)| name.to_owned()).collect();
    // Internal sections (.rodata constants) are maps to aya but not ours to show.
    let mut maps: Vec<String> = ebpf
        .maps()
        .map(|(name, _)| name.to_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    programs.sort();
    maps.sort();
    Ok(ProbeReport {
        object_bytes: OBJECT.len(),
        programs,
        maps,
    })
}

/// The cgroup2 id of a cgroup2 directory: what `bpf_skb_cgroup_id()` and
/// `bpf_get_current_cgroup_id()` return for its members, and the key of the
/// per-cgroup maps. It is the directory's inode number in the cgroup2 filesystem.
///
/// Fails with [`BpfError::NotCgroup2`] for directories of other filesystems
/// (including cgroup v1 hierarchies), whose inode numbers mean nothing to eBPF.
pub fn cgroup_id(dir: &Path) -> Result<u64, BpfError> {
    open_cgroup2_dir(dir).map(|(_, id)| id)
}

/// Opens `dir`, checks that it is a directory of a cgroup2 filesystem, and returns
/// it with its cgroup2 id.
pub(super) fn open_cgroup2_dir(dir: &Path) -> Result<(File, u64), BpfError> {
    let open_err = |source| BpfError::OpenCgroup {
        path: dir.to_path_buf(),
        source,
    };
    // A read-only fd of the directory is all BPF_LINK_CREATE needs.
    let file = File::open(dir).map_err(open_err)?;
    let fs = fstatfs(&file).map_err(|errno| open_err(errno.into()))?;
    let meta = file.metadata().map_err(open_err)?;
    if fs.filesystem_type() != CGROUP2_SUPER_MAGIC || !meta.is_dir() {
        return Err(BpfError::NotCgroup2 {
            path: dir.to_path_buf(),
        });
    }
    Ok((file, meta.ino()))
}
