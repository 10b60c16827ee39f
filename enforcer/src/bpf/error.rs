//! Errors of the eBPF side. Each message says what failed and what to do about it;
//! the underlying aya/io error (with the verifier log, if any) is the `source`.

use std::io;
use std::path::PathBuf;

/// An error loading, attaching or reading enforcer's eBPF programs and maps.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// The binary was built with `AYA_BUILD_SKIP=1`, so it embeds no eBPF object.
    #[error(
        "this enforcer binary contains no eBPF object (it was built with AYA_BUILD_SKIP); \
         rebuild it without AYA_BUILD_SKIP, after `cargo xtask setup`"
    )]
    ObjectMissing,

    /// The kernel refused to create the maps or the object could not be parsed.
    #[error(
        "loading the embedded eBPF object failed; run enforcer as root (it needs \
         CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON) on a kernel with CONFIG_BPF_SYSCALL \
         and CONFIG_CGROUP_BPF"
    )]
    Load(#[source] aya::EbpfError),

    /// A program the userspace code expects is not in the object.
    #[error(
        "the embedded eBPF object has no program named `{0}`; enforcer and \
         enforcer-ebpf are out of sync, rebuild with `cargo xtask build`"
    )]
    ProgramMissing(&'static str),

    /// A map the userspace code expects is not in the object.
    #[error(
        "the embedded eBPF object has no map named `{0}`; enforcer and \
         enforcer-ebpf are out of sync, rebuild with `cargo xtask build`"
    )]
    MapMissing(&'static str),

    /// The program has the wrong type or the verifier rejected it.
    #[error(
        "loading eBPF program `{name}` into the kernel failed (the verifier log, if \
         any, follows); this is a bug in enforcer-ebpf or a kernel without \
         cgroup_skb support"
    )]
    ProgramLoad {
        /// The program's name in the object.
        name: &'static str,
        /// aya's error, carrying the verifier log.
        #[source]
        source: aya::programs::ProgramError,
    },

    /// The cgroup directory could not be opened or examined.
    #[error("cannot open cgroup directory {path}: check that it exists and you are root")]
    OpenCgroup {
        /// The directory given.
        path: PathBuf,
        /// The io error.
        #[source]
        source: io::Error,
    },

    /// The directory is not in a cgroup2 hierarchy (e.g. a cgroup v1 controller
    /// directory), so it has no cgroup2 id and eBPF programs cannot attach to it.
    #[error(
        "{path} is not a cgroup2 directory; eBPF accounting needs the group to exist \
         in the cgroup2 (unified) hierarchy, see the cgroup2 entry in /proc/self/mountinfo"
    )]
    NotCgroup2 {
        /// The directory given.
        path: PathBuf,
    },

    /// `bpf_link_create` (or `BPF_PROG_ATTACH` on old kernels) failed.
    #[error(
        "attaching eBPF program `{program}` to cgroup {path} failed; check that you \
         are root and that the kernel has CONFIG_CGROUP_BPF"
    )]
    Attach {
        /// The program's name.
        program: &'static str,
        /// The cgroup2 directory.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: aya::programs::ProgramError,
    },

    /// Reading or updating a map failed.
    #[error("accessing eBPF map `{map}` failed; this is a bug, please report it")]
    Map {
        /// The map's name.
        map: &'static str,
        /// aya's error.
        #[source]
        source: aya::maps::MapError,
    },

    /// The object has aya-log's `AYA_LOGS` map but the logger could not start.
    #[error("starting the eBPF logger (aya-log) failed; rebuild enforcer-ebpf or drop its logging")]
    Logger(#[source] aya_log::Error),
}
