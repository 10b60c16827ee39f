//! Whether this kernel can attach BPF-LSM (`lsm_cgroup`) programs at all.
//!
//! Loading one through the verifier does not tell: an `lsm_cgroup` program
//! runs from a BPF trampoline on the LSM hook, and a kernel whose trampolines
//! cannot attach to kernel functions loads the program and refuses only the
//! attach, with ENOTSUPP. arm64 kernels before Linux 6.5 are such kernels
//! (no ftrace direct calls: Debian 12's 6.1 arm64 kernel), so without this
//! a policy with any enforced group would be accepted and then fail when
//! the agent attaches its programs. Tried once per process, by attaching the
//! listen program to a cgroup2 group created for the purpose at the top of
//! the hierarchy and removed at once (the program allows everything there:
//! no group has rules for it).

use std::path::PathBuf;
use std::sync::OnceLock;

use aya::programs::LsmCgroup;

use super::BpfError;
use super::layout::{Hook, enforce_programs};
use super::object::{ensure_loaded, open_cgroup2_dir};

/// `ENOTSUPP` (include/linux/errno.h; not in libc, kernel-internal).
const ENOTSUPP: i32 = 524;

/// Why BPF-LSM programs cannot be attached here (`None` if they can, or if
/// it cannot be told: then the real attach reports).
///
/// One probe per process, and the others wait for its answer: two kernels
/// probing at once (the tests open one per thread) both made the same
/// probe group, and the loser's "cannot be told" was kept, so every later
/// attach on Debian's 6.1 arm64 kernel failed with ENOTSUPP instead of
/// leaving BPF-LSM out.
pub(super) fn attach_refused(ebpf: &mut aya::Ebpf, btf: &mut Option<aya::Btf>) -> Option<String> {
    static REFUSED: OnceLock<Option<String>> = OnceLock::new();
    REFUSED.get_or_init(|| try_attach(ebpf, btf)).clone()
}

fn try_attach(ebpf: &mut aya::Ebpf, btf: &mut Option<aya::Btf>) -> Option<String> {
    let root = cgroup2_mount()?;
    let dir = root.join(format!("enforcer-lsm-probe-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&dir) {
        tracing::debug!(dir = %dir.display(), "cannot create the BPF-LSM attach probe group: {e}");
        return None;
    }
    let attached = (|| -> Result<(), BpfError> {
        let (cgroup, _) = open_cgroup2_dir(&dir)?;
        let spec = enforce_programs(1)
            .find(|p| matches!(p.hook, Hook::LsmCgroup(_)))
            .ok_or(BpfError::ProgramMissing("an lsm_cgroup program"))?;
        ensure_loaded(ebpf, spec, btf)?;
        let program = ebpf
            .program_mut(spec.name)
            .ok_or(BpfError::ProgramMissing(spec.name))?;
        let p: &mut LsmCgroup = program.try_into().map_err(|source| BpfError::ProgramLoad {
            name: spec.name,
            source,
        })?;
        let attach_err = |source| BpfError::LsmAttach {
            program: spec.name,
            target: dir.display().to_string(),
            source,
        };
        let id = p.attach(&cgroup).map_err(attach_err)?;
        p.detach(id).map_err(attach_err)
    })();
    if let Err(e) = std::fs::remove_dir(&dir) {
        tracing::warn!(dir = %dir.display(), "could not remove the BPF-LSM attach probe group: {e}");
    }
    attached.err().map(|e| describe(&e))
}

fn describe(e: &BpfError) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut cause = e.to_string();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.raw_os_error() == Some(ENOTSUPP)
        {
            return "this kernel loads BPF-LSM programs but cannot attach them (ENOTSUPP): its \
                    BPF trampolines cannot attach to kernel functions (arm64 kernels have them \
                    from Linux 6.5, with ftrace direct calls)"
                .into();
        }
        cause = s.to_string();
        source = s.source();
    }
    format!("attaching a BPF-LSM program failed: {cause}")
}

/// The mount point of the cgroup2 hierarchy, if one is mounted.
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split(' ').next()? == "cgroup2")
            .then(|| left.split(' ').nth(4).map(PathBuf::from))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach_error(errno: i32) -> BpfError {
        BpfError::LsmAttach {
            program: "enforce_socket_listen_1",
            target: "/sys/fs/cgroup/x".into(),
            source: aya::programs::ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_link_create",
                io_error: std::io::Error::from_raw_os_error(errno),
            }),
        }
    }

    /// Debian 12's arm64 kernel answers the attach with ENOTSUPP: named
    /// for what it is, with the kernel that has what is missing.
    #[test]
    fn enotsupp_names_the_missing_trampolines() {
        let why = describe(&attach_error(ENOTSUPP));
        assert!(why.contains("cannot attach them (ENOTSUPP)"), "{why}");
        assert!(why.contains("Linux 6.5"), "{why}");
        let other = describe(&attach_error(libc::EPERM));
        assert!(
            other.starts_with("attaching a BPF-LSM program failed: "),
            "{other}"
        );
    }
}
