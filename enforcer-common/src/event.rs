//! Records sent to userspace on the `EVENTS` ring buffer.

/// Length of a task's `comm` in the kernel (`TASK_COMM_LEN`), including the NUL.
pub const TASK_COMM_LEN: usize = 16;

/// [`OomEvent::kind`] of an OOM kill.
pub const EVENT_OOM_KILL: u32 = 1;

/// One OOM kill, written by `oom_kill` (tracepoint `oom/mark_victim`).
///
/// Layout: 40 bytes, 8-byte aligned, no padding (`kind` and `pid` fill the first
/// eight bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomEvent {
    /// [`EVENT_OOM_KILL`]. Leading `u32` so later event kinds can share the ring
    /// buffer: userspace dispatches on it.
    pub kind: u32,
    /// The victim's pid, from the tracepoint record (`task->pid` of the task
    /// the OOM killer chose: the process's main thread unless it had exited).
    pub pid: u32,
    /// cgroup2 id of the task that ran into the OOM condition (the current task
    /// when the tracepoint fires), not read from the victim: without CO-RE the
    /// victim's cgroup is out of reach. For a memory-cgroup OOM the current task
    /// is the one whose allocation failed, which is in the same group as the
    /// victim unless the group has several processes and another one was chosen
    /// (the victim is then still in the limited group, possibly a sibling
    /// cgroup2 directory under the same limit). For a global OOM it can be any
    /// group.
    pub cgroup_id: u64,
    /// The victim's `comm`, NUL-terminated unless all 16 bytes are used (the
    /// kernel truncates to 15 characters, so it always is in practice).
    pub comm: [u8; TASK_COMM_LEN],
    /// When the tracepoint fired (CLOCK_MONOTONIC nanoseconds). With kind, pid
    /// and cgroup it identifies the event, so an agent killed between writing
    /// its audit line and releasing it from the ring buffer does not write it
    /// twice after a restart.
    pub ktime_ns: u64,
}

const _: () = assert!(core::mem::size_of::<OomEvent>() == 40);
const _: () = assert!(core::mem::align_of::<OomEvent>() == 8);

/// Field offsets of the `oom/mark_victim` tracepoint record, from
/// `/sys/kernel/tracing/events/oom/mark_victim/format` on Linux 6.18:
///
/// ```text
/// field:int pid;                  offset:8;  size:4; signed:1;
/// field:__data_loc char[] comm;   offset:12; size:4; signed:0;
/// ```
///
/// (the first 8 bytes are the common fields). The kernel program hard-codes
/// these; userspace checks the running kernel's format file against them before
/// attaching and refuses to attach if they differ.
pub mod mark_victim {
    /// Offset of `int pid`.
    pub const PID_OFFSET: usize = 8;
    /// Offset of `__data_loc char[] comm`: a `u32` whose low 16 bits are the
    /// offset of the string from the start of the record, high 16 bits its length.
    pub const COMM_LOC_OFFSET: usize = 12;
}

// SAFETY: `#[repr(C)]`, `Copy`, only integers and a byte array, no padding.
#[cfg(feature = "user")]
unsafe impl aya::Pod for OomEvent {}

/// [`CgroupEvent::kind`] of a removed cgroup2 group.
pub const EVENT_CGROUP_REMOVED: u32 = 16;

/// A cgroup2 group was removed (tracepoint `cgroup/cgroup_rmdir`, cgroup2
/// hierarchy only): the agent forgets its counters, rules and index entry at
/// once, instead of noticing at a later walk of the tree.
///
/// Layout: 24 bytes, 8-byte aligned, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupEvent {
    /// [`EVENT_CGROUP_REMOVED`].
    pub kind: u32,
    /// The group's level (the root is 0).
    pub level: u32,
    /// Its cgroup2 id.
    pub cgroup_id: u64,
    /// When (CLOCK_MONOTONIC nanoseconds).
    pub ktime_ns: u64,
}

const _: () = assert!(core::mem::size_of::<CgroupEvent>() == 24);

/// Field offsets of the `cgroup/cgroup_rmdir` record, from
/// `/sys/kernel/tracing/events/cgroup/cgroup_rmdir/format` (Linux 5.5+: the id
/// became a u64):
///
/// ```text
/// field:int root;   offset:8;  size:4; signed:1;
/// field:int level;  offset:12; size:4; signed:1;
/// field:u64 id;     offset:16; size:8; signed:0;
/// ```
///
/// Userspace checks the running kernel's format against these before attaching.
pub mod cgroup_rmdir {
    pub const ROOT_OFFSET: usize = 8;
    pub const LEVEL_OFFSET: usize = 12;
    pub const ID_OFFSET: usize = 16;
    /// `root` of the cgroup2 hierarchy (`cgrp_dfl_root`'s hierarchy id).
    pub const DFL_ROOT: i32 = 0;
}

// SAFETY: `#[repr(C)]`, `Copy`, only integers, no implicit padding (asserted).
#[cfg(feature = "user")]
unsafe impl aya::Pod for CgroupEvent {}
