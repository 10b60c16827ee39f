//! Errors of the eBPF side. Each message says what failed and what to do about it;
//! the underlying aya/io error (with the verifier log, if any) is the `source`.

use std::io;
use std::path::PathBuf;

/// An error loading, attaching, pinning or reading enforcer's eBPF programs and maps.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// The binary was built with `AYA_BUILD_SKIP=1`, so it embeds no eBPF object.
    #[error(
        "this enforcer binary contains no eBPF object (it was built with AYA_BUILD_SKIP); \
         rebuild it without AYA_BUILD_SKIP, after `cargo xtask setup`"
    )]
    ObjectMissing,

    /// The kernel refused to create the maps, a pinned map could not be opened, or
    /// the object could not be parsed.
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
         any, follows); this is a bug in enforcer-ebpf or the kernel lacks the hook"
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
        "attaching eBPF program `{program}` to {target} failed; check that you are \
         root and that the kernel has CONFIG_CGROUP_BPF (cgroup hooks) or \
         CONFIG_BPF_EVENTS (tracepoints)"
    )]
    Attach {
        /// The program's name.
        program: &'static str,
        /// The cgroup2 directory or tracepoint.
        target: String,
        /// aya's error.
        #[source]
        source: aya::programs::ProgramError,
    },

    /// A new link could not be turned into a pinnable fd link (only links made
    /// with `bpf_link_create` can be pinned; kernels before 5.7 lack it for cgroups).
    #[error(
        "the link of eBPF program `{program}` cannot be pinned; enforcer needs \
         bpf_link support (Linux 5.7 or newer) so attachments survive restarts"
    )]
    Unpinnable {
        /// The program's name.
        program: &'static str,
        /// aya's error.
        #[source]
        source: aya::programs::links::LinkError,
    },

    /// An `lsm_cgroup` program could not be attached: the BPF LSM is not active.
    #[error(
        "attaching the BPF-LSM program `{program}` to {target} failed; syscall `deny` \
         rules need a kernel with CONFIG_BPF_LSM and `bpf` in the active LSMs (boot with \
         lsm=...,bpf; check /sys/kernel/security/lsm), Linux 6.0 or newer (arm64: 6.5)"
    )]
    LsmAttach {
        /// The program's name.
        program: &'static str,
        /// The cgroup2 directory.
        target: String,
        /// aya's error.
        #[source]
        source: aya::programs::ProgramError,
    },

    /// The kernel's BTF, needed to load BPF-LSM programs, could not be read.
    #[error(
        "reading the kernel's BTF (/sys/kernel/btf/vmlinux) failed; enforcement needs a \
         kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    KernelBtf(#[source] aya::BtfError),

    /// The group is too deep (or is the root) for the enforcement programs.
    #[error(
        "{path} is at cgroup level {level}; enforcement programs attach to groups at levels \
         1 to {max} below the cgroup2 root (never to the root itself)"
    )]
    EnforceLevel {
        /// The directory given.
        path: PathBuf,
        /// Its level (0 is the cgroup2 root).
        level: u32,
        /// The deepest level supported.
        max: u32,
    },

    /// A group's rules do not fit the kernel maps.
    #[error("the rules of cgroup {cgroup_id} cannot be enforced: {detail}")]
    Rules {
        /// The group's cgroup2 id.
        cgroup_id: u64,
        /// What does not fit, and what to change.
        detail: String,
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

    /// The pin directory is not on a BPF filesystem.
    #[error(
        "{path} is not on a BPF filesystem (bpffs), so maps and links cannot be pinned \
         there; mount it with `mount -t bpf bpf /sys/fs/bpf` or choose a directory under \
         a bpffs mount"
    )]
    NotBpffs {
        /// The pin directory.
        path: PathBuf,
    },

    /// Something in or above the pin directory could be changed by a user other
    /// than root, who could then remove pins and with them enforcement.
    #[error(
        "refusing to use {path}: {why} (owner {owner}, mode {mode:04o}); enforcer's \
         pins must be root's alone, or another user could remove them and switch \
         enforcement off. Check what it is, remove it (as root), make bpffs \
         root-only (`mount -o remount,mode=0700 /sys/fs/bpf`, as systemd mounts it), \
         then start again"
    )]
    UntrustedPin {
        /// The offending file or directory.
        path: PathBuf,
        /// Its owner's uid and name.
        uid: u32,
        owner: String,
        /// Its permission bits.
        mode: u32,
        /// What is wrong with it.
        why: String,
    },

    /// Creating, listing or removing something in the pin directory failed.
    #[error("{op} {path} failed; check that you are root and bpffs is mounted read-write")]
    PinDir {
        /// What was being done ("creating", "removing", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The io error.
        #[source]
        source: io::Error,
    },

    /// Pinning a new link failed.
    #[error("pinning the link of `{program}` at {path} failed")]
    PinLink {
        /// The program's name.
        program: &'static str,
        /// The pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: aya::pin::PinError,
    },

    /// A pinned link could not be opened or examined.
    #[error("opening the pinned link {path} failed; remove it (`enforcer stop`) and retry")]
    PinnedLink {
        /// The pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: aya::programs::links::LinkError,
    },

    /// A map pinned by an earlier run has another layout than this build's.
    #[error(
        "the map pinned at {path} does not match this enforcer build ({detail}); it was \
         pinned by a different version. Run `enforcer stop` to unpin the old maps and \
         links (their counts are lost), then start again"
    )]
    PinnedMapMismatch {
        /// The pin path.
        path: PathBuf,
        /// What differs.
        detail: String,
    },

    /// A pinned map could not be opened (for `enforcer stats`).
    #[error("opening the pinned map {path} failed")]
    PinnedMap {
        /// The pin path.
        path: PathBuf,
        /// aya's error.
        #[source]
        source: aya::maps::MapError,
    },

    /// Nothing is pinned: the agent has not been started (or was stopped).
    #[error(
        "no enforcer counters are pinned under {pin_dir} ({missing} is missing); start \
         the agent with `enforcer run` first"
    )]
    NotRunning {
        /// The pin directory that was searched.
        pin_dir: PathBuf,
        /// The first missing pin.
        missing: PathBuf,
    },

    /// tracefs is not available, so tracepoints cannot be attached.
    #[error(
        "tracefs is needed to attach the `{tracepoint}` tracepoint but is not mounted and \
         could not be mounted at /sys/kernel/tracing; mount it with \
         `mount -t tracefs tracefs /sys/kernel/tracing`"
    )]
    Tracefs {
        /// The tracepoint that needed it.
        tracepoint: &'static str,
        /// The mount error.
        #[source]
        source: io::Error,
    },

    /// The tracepoint record differs from the layout the kernel program assumes.
    #[error(
        "the running kernel's {tracepoint} tracepoint has another record layout than \
         enforcer-ebpf assumes ({detail}, see {format}); OOM events are unavailable on \
         this kernel until enforcer-common's offsets are updated"
    )]
    TracepointLayout {
        /// The tracepoint.
        tracepoint: &'static str,
        /// The format file read.
        format: PathBuf,
        /// What differs.
        detail: String,
    },
}
