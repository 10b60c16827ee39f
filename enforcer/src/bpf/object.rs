//! The embedded eBPF object: loading it (optionally with pinned maps),
//! describing it, and cgroup ids.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use aya::programs::{
    CgroupSkb, CgroupSock, CgroupSockAddr, CgroupSockopt, LsmCgroup, RawTracePoint, TracePoint,
};
use aya::{Btf, Ebpf, EbpfLoader};
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, fstatfs};

use super::BpfError;
use super::layout::{
    Capacity, ENFORCE_SYSCALLS, EXEC_PROGRAMS, Hook, PINNED_MAPS, ProgramSpec, counting_programs,
    enforce_programs, map_pin,
};

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

/// Loads the embedded object, creating its maps. No program is loaded into
/// the kernel yet: each is loaded (through the verifier) when first attached
/// ([`ensure_loaded`]), so a program one kernel refuses costs only the
/// feature that needs it.
///
/// With `pin_dir`, each map of [`PINNED_MAPS`] is opened from
/// `<pin_dir>/maps/<NAME>` if pinned there (the caller has checked its layout)
/// and otherwise created and pinned there. Without it nothing is pinned.
pub(super) fn load(pin_dir: Option<&Path>) -> Result<(Ebpf, Option<LogReader>), BpfError> {
    load_with(pin_dir, &Capacity::default())
}

/// [`load`] with maps sized by `capacity` (maps already pinned keep theirs).
pub(super) fn load_with(
    pin_dir: Option<&Path>,
    capacity: &Capacity,
) -> Result<(Ebpf, Option<LogReader>), BpfError> {
    if OBJECT.is_empty() {
        return Err(BpfError::ObjectMissing);
    }
    let mut loader = EbpfLoader::new();
    for spec in &PINNED_MAPS {
        loader.map_max_entries(spec.name, capacity.entries_of(spec));
    }
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
    Ok((ebpf, logs))
}

/// The running kernel's BTF (`/sys/kernel/btf/vmlinux`), which loading a
/// BPF-LSM program needs (the hook is found by name in it).
pub(super) fn kernel_btf() -> Result<Btf, BpfError> {
    Btf::from_sys_fs().map_err(BpfError::KernelBtf)
}

/// Loads `spec` into the kernel unless it is loaded already. LSM programs
/// need `btf` (loaded on first use into `*btf`).
pub(super) fn ensure_loaded(
    ebpf: &mut Ebpf,
    spec: ProgramSpec,
    btf: &mut Option<Btf>,
) -> Result<(), BpfError> {
    let program = ebpf
        .program_mut(spec.name)
        .ok_or(BpfError::ProgramMissing(spec.name))?;
    if program.fd().is_ok() {
        return Ok(());
    }
    if matches!(spec.hook, Hook::LsmCgroup(_)) && btf.is_none() {
        *btf = Some(kernel_btf()?);
    }
    load_program(ebpf, spec, btf.as_ref())
}

fn load_program(ebpf: &mut Ebpf, spec: ProgramSpec, btf: Option<&Btf>) -> Result<(), BpfError> {
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
        Hook::LsmCgroup(hook) => {
            let p: &mut LsmCgroup = program.try_into().map_err(err)?;
            let btf = btf.ok_or(BpfError::ProgramMissing(name))?;
            p.load(hook, btf).map_err(err)
        }
        Hook::Sock => {
            let p: &mut CgroupSock = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
        Hook::Sockopt => {
            let p: &mut CgroupSockopt = program.try_into().map_err(err)?;
            p.load().map_err(err)
        }
    }
}

/// What the embedded eBPF object contains, after loading it into the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Size of the embedded ELF object in bytes.
    pub object_bytes: usize,
    /// Names of the programs loaded (sorted): all of them passed the verifier.
    /// Of the enforcement programs, which exist once per cgroup level, only the
    /// level-1 copies are loaded (the others differ in one constant).
    pub programs: Vec<String>,
    /// BPF-LSM programs the kernel refused to load, with the reason (sorted):
    /// syscall `deny` rules for `listen`, `accept` and `execve` are then not
    /// available on this host.
    pub unavailable: Vec<String>,
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
        )?;
        if !self.unavailable.is_empty() {
            write!(f, "; not loadable here: {}", self.unavailable.join(", "))?;
        }
        Ok(())
    }
}

/// Loads the embedded object and its programs into the kernel (so the
/// verifier has accepted them), reports their names, and unloads everything again.
/// Nothing is attached or pinned. Used by `enforcer status` to show the eBPF side works.
pub fn probe() -> Result<ProbeReport, BpfError> {
    let (mut ebpf, _logs) = load(None)?;
    let mut btf = None;
    let mut programs = Vec::new();
    let mut unavailable = Vec::new();
    for spec in counting_programs()
        .chain([ENFORCE_SYSCALLS])
        .chain(enforce_programs(1))
        .chain(EXEC_PROGRAMS)
    {
        match ensure_loaded(&mut ebpf, spec, &mut btf) {
            Ok(()) => programs.push(spec.name.to_owned()),
            Err(e) if matches!(spec.hook, Hook::LsmCgroup(_)) => {
                unavailable.push(format!("{} ({})", spec.name, lsm_refusal(&e)));
            }
            Err(e) => return Err(e),
        }
    }
    unavailable.sort();
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
        unavailable,
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

/// Why the kernel refused a BPF-LSM program, in a few words.
pub(super) fn lsm_refusal(error: &BpfError) -> String {
    use std::error::Error as _;
    let mut cause = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    format!("the kernel refused to load a BPF-LSM program: {cause}")
}

/// The cgroup level of a cgroup2 directory: 0 for the hierarchy's root, 1 for
/// its children, ... (what `bpf_get_current_ancestor_cgroup_id` numbers).
///
/// Counted from the directory up to the top of its cgroup2 mount, plus the
/// depth of that mount's root in the hierarchy (the `root` field of
/// `/proc/self/mountinfo`, for a mount of a subtree). Inside a cgroup namespace
/// whose root is not the hierarchy's root, the kernel's levels are deeper than
/// what can be seen from here; enforcement is not supported there.
pub(super) fn cgroup_level(dir: &Path) -> Result<u32, BpfError> {
    let open_err = |source| BpfError::OpenCgroup {
        path: dir.to_path_buf(),
        source,
    };
    let canonical = std::fs::canonicalize(dir).map_err(open_err)?;
    let is_cgroup2 = |p: &Path| {
        nix::sys::statfs::statfs(p).is_ok_and(|fs| fs.filesystem_type() == CGROUP2_SUPER_MAGIC)
    };
    if !is_cgroup2(&canonical) {
        return Err(BpfError::NotCgroup2 {
            path: dir.to_path_buf(),
        });
    }
    let mut level = 0u32;
    let mut top = canonical.as_path();
    while let Some(parent) = top.parent() {
        if !is_cgroup2(parent) {
            break;
        }
        level += 1;
        top = parent;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").map_err(open_err)?;
    Ok(level + mount_root_depth(&mountinfo, top))
}

/// Depth of the hierarchy path mounted at `mount_point` by the last cgroup2
/// mount there (0 if none is found or it mounts the root).
fn mount_root_depth(mountinfo: &str, mount_point: &Path) -> u32 {
    let unescape = |s: &str| {
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\134", "\\")
    };
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let fstype = right.split(' ').next()?;
            let root = unescape(fields.get(3)?);
            (fstype == "cgroup2" && Path::new(&unescape(fields.get(4)?)) == mount_point)
                .then_some(root)
        })
        .next_back()
        .map_or(0, |root| {
            Path::new(&root)
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
                .count() as u32
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_roots() {
        let info = "29 23 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n\
                    40 23 0:26 /a/b /mnt/sub\\040tree rw - cgroup2 cgroup2 rw\n\
                    41 23 0:27 /x /mnt/other rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_root_depth(info, Path::new("/sys/fs/cgroup/unified")),
            0
        );
        assert_eq!(mount_root_depth(info, Path::new("/mnt/sub tree")), 2);
        assert_eq!(mount_root_depth(info, Path::new("/mnt/other")), 0);
    }
}
