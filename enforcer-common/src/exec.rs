//! Exec classification (cgrules.conf and `[[classify]]`): the record the
//! kernel sends for each exec a rule may concern, the configuration array,
//! and the filter keys.
//!
//! Maps (all in `enforcer-ebpf/src/exec.rs`, none pinned: they live as long
//! as the classifying process):
//!
//! | map | kind | key -> value | written by |
//! |---|---|---|---|
//! | `EXEC_EVENTS` | ring buffer | [`ExecEvent`] records | `classify_exec` |
//! | `EXEC_CONF` | array | [`exec_conf`] index -> `u64` | userspace |
//! | `EXEC_UIDS`, `EXEC_GIDS` | hash | euid / egid -> `u8` | userspace (rules' users and groups) |
//! | `EXEC_NAMES` | hash | [`ExecName`] -> `u8` | userspace (rules' process names) |
//! | `EXEC_STICKY` | hash | tgid -> `u32` flags | userspace (`--sticky`), `classify_fork` (children) |
//! | `EXEC_PENDING` | hash | tgid -> tgid of the reported exec it descends from | `classify_exec`, `classify_fork` (descendants); userspace removes |
//! | `EXEC_STATS` | per-CPU array | [`exec_stats`] index -> `u64` | `classify_exec` |

use crate::TASK_COMM_LEN;

/// Size of `EXEC_EVENTS` in bytes (a power of two, a multiple of the page size):
/// some 3,000 execs between two drains.
pub const EXEC_EVENTS_BYTES: u32 = 1024 * 1024;

/// Bytes of the executed path an [`ExecEvent`] carries, NUL included.
pub const EXEC_PATH_MAX: usize = 256;

/// Capacity of `EXEC_PENDING`: processes reported at exec, and their
/// descendants, not yet placed by userspace.
pub const MAX_PENDING: u32 = 65536;

/// Capacity of `EXEC_UIDS`, `EXEC_GIDS` and `EXEC_NAMES`.
pub const MAX_EXEC_KEYS: u32 = 4096;

/// Capacity of `EXEC_STICKY` (sticky processes and their children).
pub const MAX_STICKY: u32 = 65536;

/// [`ExecEvent::flags`]: the program stopped the process (SIGSTOP) so that it
/// runs nothing of the new program before userspace has placed it; userspace
/// sends SIGCONT when done.
pub const EXEC_HELD: u32 = 1;

/// `EXEC_STICKY` value flag: children forked from now on are sticky too
/// (libcgroup's `CGROUP_DAEMON_UNCHANGE_CHILDREN`).
pub const STICKY_CHILDREN: u32 = 1;

/// [`ExecEvent::flags`]: `path` holds the path the kernel was asked to
/// execute (the `sched_process_exec` record's `filename`), `path_len` bytes.
pub const EXEC_PATH: u32 = 2;

/// One exec of a program that some rule may concern.
///
/// Layout: 312 bytes, 8-byte aligned, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    /// The process (thread group) id.
    pub pid: u32,
    /// Effective uid and gid after the exec (real ones if the kernel's
    /// `cred` layout could not be read from BTF).
    pub uid: u32,
    pub gid: u32,
    /// [`EXEC_HELD`] or 0.
    pub flags: u32,
    /// When the tracepoint fired (CLOCK_MONOTONIC nanoseconds).
    pub ktime_ns: u64,
    /// cgroup2 id the process was in at exec.
    pub cgroup_id: u64,
    /// The new comm (the program's base name, 15 bytes at most).
    pub comm: [u8; TASK_COMM_LEN],
    /// Bytes of `path` before its NUL (with [`EXEC_PATH`]).
    pub path_len: u32,
    pub _pad: u32,
    /// The file name execve was given (`bprm->filename`): the script for a
    /// script, which `/proc/PID/exe` (its interpreter) does not name. Written
    /// by the kernel at exec, so the process cannot change it afterwards, as
    /// it can its argv. Relative names are relative to the cwd at exec.
    pub path: [u8; EXEC_PATH_MAX],
}

impl Default for ExecEvent {
    fn default() -> Self {
        Self {
            pid: 0,
            uid: 0,
            gid: 0,
            flags: 0,
            ktime_ns: 0,
            cgroup_id: 0,
            comm: [0; TASK_COMM_LEN],
            path_len: 0,
            _pad: 0,
            path: [0; EXEC_PATH_MAX],
        }
    }
}

impl ExecEvent {
    /// The executed path, when the kernel's record had one that fit.
    #[must_use]
    pub fn path(&self) -> Option<&[u8]> {
        if self.flags & EXEC_PATH == 0 {
            return None;
        }
        self.path.get(..self.path_len as usize)
    }
}

const _: () = assert!(core::mem::size_of::<ExecEvent>() == 312);
const _: () = assert!(core::mem::align_of::<ExecEvent>() == 8);

/// Key of `EXEC_NAMES`: a base name cut to 15 bytes and NUL-padded, as the
/// kernel keeps a task's comm.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExecName {
    pub name: [u8; TASK_COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<ExecName>() == 16);

impl ExecName {
    /// The key for a process name (a path's base name, cut to 15 bytes).
    #[must_use]
    pub fn from_name(name: &[u8]) -> Self {
        let base = match name.iter().rposition(|&b| b == b'/') {
            Some(i) => name.get(i + 1..).unwrap_or(&[]),
            None => name,
        };
        let mut out = [0u8; TASK_COMM_LEN];
        for (o, b) in out.iter_mut().zip(base.iter().take(TASK_COMM_LEN - 1)) {
            *o = *b;
        }
        Self { name: out }
    }
}

/// Indexes of `EXEC_CONF` (`u64` values).
pub mod exec_conf {
    /// Non-zero: the program reports execs at all.
    pub const ENABLED: u32 = 0;
    /// Non-zero: report every exec (a rule for every user and program).
    pub const MATCH_ALL: u32 = 1;
    /// Non-zero: stop a reported process until userspace has placed it.
    pub const HOLD: u32 = 2;
    /// Byte offsets in the running kernel (from BTF), 0 when unknown:
    /// `task_struct.cred`, `cred.euid`, `cred.egid`.
    pub const OFF_TASK_CRED: u32 = 3;
    pub const OFF_CRED_EUID: u32 = 4;
    pub const OFF_CRED_EGID: u32 = 5;
    /// The executable's base name: `task_struct.mm`, `mm_struct.exe_file`,
    /// `file.f_path` + `path.dentry`, `dentry.d_name` + `qstr.name`.
    pub const OFF_TASK_MM: u32 = 6;
    pub const OFF_MM_EXE: u32 = 7;
    pub const OFF_FILE_DENTRY: u32 = 8;
    pub const OFF_DENTRY_NAME: u32 = 9;
    /// Non-zero: the `sched_process_exec` record has the layout the program
    /// reads `filename` from (checked against tracefs by userspace).
    pub const PATH_OK: u32 = 10;
    /// Entries in the array.
    pub const ENTRIES: u32 = 16;
}

/// Indexes of `EXEC_STATS` (per-CPU `u64` counters).
pub mod exec_stats {
    /// Execs the program saw while enabled.
    pub const SEEN: u32 = 0;
    /// Execs reported on the ring buffer.
    pub const REPORTED: u32 = 1;
    /// Execs that should have been reported but the ring buffer was full.
    pub const LOST: u32 = 2;
    /// Execs skipped because the process is sticky.
    pub const STICKY: u32 = 3;
    /// New processes of a pending one that `EXEC_PENDING` had no room for
    /// (they are not followed to their ancestor's group).
    pub const PENDING_LOST: u32 = 4;
    pub const ENTRIES: u32 = 5;
}

// SAFETY: `#[repr(C)]`, `Copy`, integers and byte arrays only, no padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExecEvent {}
// SAFETY: as above.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ExecName {}

/// The `sched/sched_process_exec` record as `classify_exec` reads it
/// (`/sys/kernel/tracing/events/sched/sched_process_exec/format`, Linux 5.x
/// and 6.x): `__data_loc char[] filename` at 8, 4 bytes (the low 16 bits the
/// string's offset in the record, the high 16 its length with the NUL).
pub mod process_exec {
    pub const FILENAME_OFFSET: usize = 8;
}
