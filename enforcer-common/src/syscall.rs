//! Syscall counting: key of `SYSCALLS`, the scope switch and the per-CPU cache.

/// Key of the per-CPU hash `SYSCALLS` (value: `u64` count of calls):
/// one entry per (cgroup, ABI, syscall number) that has been seen.
///
/// Layout: 16 bytes, no padding (the kernel hashes all 16 key bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyscallKey {
    /// cgroup2 id of the calling task.
    pub cgroup_id: u64,
    /// Syscall number as passed to `sys_enter` (architecture specific: on x86_64
    /// `getppid` is 110), in the table `abi` names.
    pub nr: u32,
    /// [`syscall_abi::NATIVE`], or [`syscall_abi::COMPAT`] for a call made
    /// through the 32-bit compat table (i386 on x86_64, arm32 on aarch64),
    /// whose numbers are another table's.
    pub abi: u32,
}

/// Values of [`SyscallKey::abi`].
pub mod syscall_abi {
    /// The architecture's own table.
    pub const NATIVE: u32 = 0;
    /// The 32-bit compat table.
    pub const COMPAT: u32 = 1;
}

const _: () = assert!(core::mem::size_of::<SyscallKey>() == 16);

/// The one `SYSCALLS` key number for every call whose number no syscall
/// table has (x86-64's and arm64's end below 512; beyond are ENOSYS, or x32
/// calls): a process calling numbers 500..1.1M made a million keys and
/// filled the map for every group. So a group holds at most 513 keys per
/// ABI (the compat tables, i386's and arm32's, also end below 512; arm32's
/// private calls at 0x0f0000 count here too).
pub const SYSCALL_NR_INVALID: u32 = 512;

/// The key number a call is counted under: itself, or
/// [`SYSCALL_NR_INVALID`].
#[must_use]
pub const fn counted_nr(nr: u32) -> u32 {
    if nr < SYSCALL_NR_INVALID {
        nr
    } else {
        SYSCALL_NR_INVALID
    }
}
const _: () = assert!(core::mem::align_of::<SyscallKey>() == 8);

impl SyscallKey {
    /// The key for `cgroup_id` and native syscall `nr`.
    #[must_use]
    pub const fn new(cgroup_id: u64, nr: u32) -> Self {
        Self::with_abi(cgroup_id, nr, syscall_abi::NATIVE)
    }

    /// The key for `cgroup_id` and syscall `nr` of table `abi`.
    #[must_use]
    pub const fn with_abi(cgroup_id: u64, nr: u32, abi: u32) -> Self {
        Self { cgroup_id, nr, abi }
    }
}

/// Indexes and values of the `SYSCALL_SCOPE` array (`u32` values).
pub mod scope {
    /// Index of the scope switch.
    pub const MODE: u32 = 0;
    /// Index of the generation counter. Userspace increments it after every
    /// change of `SYSCALL_GROUPS` or of the mode, which invalidates the per-CPU
    /// [`ScopeCache`](super::ScopeCache) entries.
    pub const GENERATION: u32 = 1;
    /// Number of entries of the array.
    pub const ENTRIES: u32 = 2;

    /// Mode value: count only cgroups listed in `SYSCALL_GROUPS` (the default:
    /// array entries start at zero).
    pub const GROUPS: u32 = 0;
    /// Mode value: count every cgroup on the host.
    pub const ALL: u32 = 1;
}

/// The one entry of the per-CPU array `SYSCALL_CACHE`: the last scope decision
/// `count_syscalls` made on this CPU, for the task that made it. A task makes
/// many syscalls in a row on one CPU, so most calls are decided by comparing
/// its `pid_tgid` against this entry: no cgroup id helper, no hash lookup.
/// A task moving to another cgroup bumps `CGROUP_MIGRATIONS` (the
/// `cgroup_attach_task` tracepoint program, atomically), a scope change
/// `SYSCALL_SCOPE[GENERATION]` (userspace); either makes the entry stale.
///
/// Layout: 24 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScopeCache {
    /// `bpf_get_current_pid_tgid()` of the task the decision is for.
    pub pid_tgid: u64,
    /// The id that task's calls are counted under: its cgroup2 id, or (in
    /// observe mode, or below a policy group) where its subtree's quota
    /// folds it (`quota`).
    pub cgroup_id: u64,
    /// `SYSCALL_SCOPE[GENERATION]` plus one (so that the all-zero initial
    /// entry never matches), in the low 16 bits, and
    /// `CGROUP_MIGRATIONS` in the high 16 bits (a wrap after 65536
    /// migrations between two syscalls of one task on one CPU is the only way
    /// to be fooled).
    pub stamp: u32,
    /// 1 if that cgroup's syscalls are counted, 0 if not.
    pub counted: u32,
}

const _: () = assert!(core::mem::size_of::<ScopeCache>() == 24);

// SAFETY: `#[repr(C)]`, `Copy`, only integers, no implicit padding (asserted).
#[cfg(feature = "user")]
unsafe impl aya::Pod for SyscallKey {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ScopeCache {}
