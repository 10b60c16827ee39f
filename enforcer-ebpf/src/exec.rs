//! Exec classification: `classify_exec` (tracepoint `sched/sched_process_exec`)
//! reports the execs a cgrules.conf / `[[classify]]` rule may concern on
//! `EXEC_EVENTS` and marks the process pending in `EXEC_PENDING`;
//! `classify_fork` (tracepoint `task/task_newtask`) makes the children of
//! `--sticky` processes sticky too, and the children of pending processes
//! pending, with the same root: userspace places them with the process they
//! descend from, so a process that forks (and forks again, and leaves its
//! session) before it is placed leaves no descendant behind.
//!
//! Why these hooks: `sched_process_exec` fires once per successful exec,
//! after the new program is mapped and before the process returns to user
//! space, with the new comm and credentials in place; it is a stable trace
//! event (no kprobes here, and BPF trampolines are refused on this host).
//! `task_newtask` fires in the parent for every new task with its clone
//! flags, which tell a new process from a new thread.
//!
//! The program only filters, so that execs no rule can match cost one or
//! two hash lookups and no wakeup of userspace: a rule's user (`EXEC_UIDS`),
//! group (`EXEC_GIDS`) or process name (`EXEC_NAMES`, matched against the
//! new comm and the executable's own base name), or everything
//! (`MATCH_ALL`). Userspace decides the rule. With `HOLD` the reported
//! process is stopped (SIGSTOP, delivered before it returns to user space)
//! until userspace has moved it and continues it.

use aya_ebpf::{
    EbpfContext as _,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_get_current_uid_gid, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str_bytes, bpf_send_signal,
    },
    macros::{map, tracepoint},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use enforcer_common::TASK_COMM_LEN;
use enforcer_common::exec::{
    EXEC_EVENTS_BYTES, EXEC_HELD, EXEC_PATH, ExecEvent, ExecName, MAX_EXEC_KEYS, MAX_PENDING,
    MAX_STICKY, STICKY_CHILDREN, exec_conf, exec_stats, process_exec,
};

#[map]
static EXEC_EVENTS: RingBuf = RingBuf::with_byte_size(EXEC_EVENTS_BYTES, 0);

#[map]
static EXEC_CONF: Array<u64> = Array::with_max_entries(exec_conf::ENTRIES, 0);

#[map]
static EXEC_UIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_EXEC_KEYS, 0);

#[map]
static EXEC_GIDS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_EXEC_KEYS, 0);

#[map]
static EXEC_NAMES: HashMap<ExecName, u8> = HashMap::with_max_entries(MAX_EXEC_KEYS, 0);

#[map]
static EXEC_STICKY: HashMap<u32, u32> = HashMap::with_max_entries(MAX_STICKY, 0);

#[map]
static EXEC_PENDING: HashMap<u32, u32> = HashMap::with_max_entries(MAX_PENDING, 0);

#[map]
static EXEC_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(exec_stats::ENTRIES, 0);

const SIGSTOP: u32 = 19;
/// `CLONE_THREAD`: the new task is a thread of its parent's process.
const CLONE_THREAD: u64 = 0x0001_0000;
/// `task/task_newtask` record: `pid_t pid` at 8, `u64 clone_flags` at 32
/// (`/sys/kernel/tracing/events/task/task_newtask/format`, Linux 6.x).
const NEWTASK_PID: usize = 8;
const NEWTASK_CLONE_FLAGS: usize = 32;

#[inline(always)]
fn conf(i: u32) -> u64 {
    EXEC_CONF.get(i).copied().unwrap_or(0)
}

#[inline(always)]
fn bump(i: u32) {
    if let Some(p) = EXEC_STATS.get_ptr_mut(i) {
        // SAFETY: this CPU's slot; tracepoint programs do not nest on a CPU.
        unsafe { *p = (*p).wrapping_add(1) };
    }
}

/// Reads a kernel value at `base + off`; None if `off` is unknown (0) or the
/// read fails.
#[inline(always)]
fn read_at<T: Copy>(base: u64, off: u64) -> Option<T> {
    if base == 0 || off == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel fails instead of faulting on a bad address.
    unsafe { bpf_probe_read_kernel((base.wrapping_add(off)) as *const T) }.ok()
}

/// The effective uid and gid from `current->cred` at BTF-given offsets, or
/// the real ones from the helper.
#[inline(always)]
fn ids(task: u64) -> (u32, u32) {
    let cred: Option<u64> = read_at(task, conf(exec_conf::OFF_TASK_CRED));
    if let Some(cred) = cred {
        let euid: Option<u32> = read_at(cred, conf(exec_conf::OFF_CRED_EUID));
        let egid: Option<u32> = read_at(cred, conf(exec_conf::OFF_CRED_EGID));
        if let (Some(u), Some(g)) = (euid, egid) {
            return (u, g);
        }
    }
    let ug = bpf_get_current_uid_gid();
    (ug as u32, (ug >> 32) as u32)
}

/// The executable's base name (`current->mm->exe_file->f_path.dentry->d_name`),
/// which differs from the comm for a program run through a symlink.
#[inline(always)]
fn exe_name(task: u64) -> Option<ExecName> {
    let mm: u64 = read_at(task, conf(exec_conf::OFF_TASK_MM))?;
    let file: u64 = read_at(mm, conf(exec_conf::OFF_MM_EXE))?;
    let dentry: u64 = read_at(file, conf(exec_conf::OFF_FILE_DENTRY))?;
    let name: u64 = read_at(dentry, conf(exec_conf::OFF_DENTRY_NAME))?;
    let mut out = ExecName::default();
    // Leave the last byte NUL: 15 bytes at most, as a comm.
    let (buf, _) = out.name.split_at_mut(TASK_COMM_LEN - 1);
    // SAFETY: reads at most buf.len() bytes and fails instead of faulting.
    unsafe { bpf_probe_read_kernel_str_bytes(name as *const u8, buf) }.ok()?;
    Some(out)
}

#[inline(always)]
fn wanted(uid: u32, gid: u32, comm: &[u8; TASK_COMM_LEN], task: u64) -> bool {
    if conf(exec_conf::MATCH_ALL) != 0 {
        return true;
    }
    // SAFETY: the values are only tested for presence.
    if unsafe { EXEC_UIDS.get(uid).is_some() || EXEC_GIDS.get(gid).is_some() } {
        return true;
    }
    let key = ExecName { name: *comm };
    // SAFETY: as above.
    if unsafe { EXEC_NAMES.get(key).is_some() } {
        return true;
    }
    match exe_name(task) {
        // SAFETY: as above.
        Some(exe) if exe != key => unsafe { EXEC_NAMES.get(exe).is_some() },
        _ => false,
    }
}

/// The record's `filename` into `path`; its length without the NUL, or
/// None if the layout is unknown or the name did not fit.
#[inline(always)]
fn exec_path(
    ctx: &TracePointContext,
    path: &mut [u8; enforcer_common::exec::EXEC_PATH_MAX],
) -> Option<u32> {
    if conf(exec_conf::PATH_OK) == 0 {
        return None;
    }
    // SAFETY: an offset inside the record (checked against tracefs by
    // userspace); read_at uses bpf_probe_read_kernel, which fails instead of
    // faulting.
    let loc: u32 = unsafe { ctx.read_at(process_exec::FILENAME_OFFSET) }.ok()?;
    let at = (ctx.as_ptr() as u64).wrapping_add(u64::from(loc & 0xffff));
    // SAFETY: reads at most path.len() bytes and fails instead of faulting.
    let read = unsafe { bpf_probe_read_kernel_str_bytes(at as *const u8, path) }.ok()?;
    let len = read.len();
    // A name that filled the buffer may have been cut.
    if len >= path.len().wrapping_sub(1) {
        return None;
    }
    Some(len as u32)
}

#[tracepoint(category = "sched", name = "sched_process_exec")]
fn classify_exec(ctx: TracePointContext) -> u32 {
    if conf(exec_conf::ENABLED) == 0 {
        return 0;
    }
    bump(exec_stats::SEEN);
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only tested for presence.
    if unsafe { EXEC_STICKY.get(tgid).is_some() } {
        bump(exec_stats::STICKY);
        return 0;
    }
    // SAFETY: no arguments; allowed in tracing programs.
    let task = unsafe { bpf_get_current_task() };
    let (uid, gid) = ids(task);
    let comm = bpf_get_current_comm().unwrap_or_default();
    if !wanted(uid, gid, &comm, task) {
        return 0;
    }
    let Some(mut entry) = EXEC_EVENTS.reserve::<ExecEvent>(0) else {
        // Never hold a process nobody will hear of.
        bump(exec_stats::LOST);
        return 0;
    };
    // The process is its own root from now on (also when it was a pending
    // descendant of another: this exec is placed by its own rule), and what
    // it forks until userspace has placed it follows it.
    if EXEC_PENDING.insert(tgid, tgid, 0).is_err() {
        bump(exec_stats::PENDING_LOST);
    }
    let mut flags = 0;
    if conf(exec_conf::HOLD) != 0 {
        // SAFETY: signals the current process; the stop takes effect on the
        // way back to user space, before the new program's first instruction.
        if unsafe { bpf_send_signal(SIGSTOP) } == 0 {
            flags = EXEC_HELD;
        }
    }
    let event = entry.as_mut_ptr();
    // SAFETY: `event` points at the reserved record, ExecEvent-sized and
    // aligned, ours until submitted; every field is written below.
    unsafe {
        let path_len = match exec_path(&ctx, &mut (*event).path) {
            Some(n) => {
                flags |= EXEC_PATH;
                n
            }
            None => 0,
        };
        (*event).pid = tgid;
        (*event).uid = uid;
        (*event).gid = gid;
        (*event).flags = flags;
        // SAFETY: no arguments; allowed in every program type.
        (*event).ktime_ns = bpf_ktime_get_ns();
        // SAFETY: no arguments; allowed in tracing programs.
        (*event).cgroup_id = bpf_get_current_cgroup_id();
        (*event).comm = comm;
        (*event).path_len = path_len;
        (*event)._pad = 0;
    }
    entry.submit(0);
    bump(exec_stats::REPORTED);
    0
}

#[tracepoint(category = "task", name = "task_newtask")]
fn classify_fork(ctx: TracePointContext) -> u32 {
    let parent = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only the values are copied.
    let sticky = (unsafe { EXEC_STICKY.get(parent) }).copied();
    // SAFETY: as above.
    let root = (unsafe { EXEC_PENDING.get(parent) }).copied();
    let sticky = sticky.filter(|f| f & STICKY_CHILDREN != 0);
    if sticky.is_none() && root.is_none() {
        return 0;
    }
    // SAFETY: offsets inside the task_newtask record (see the constants);
    // read_at of the context fails instead of faulting.
    let clone_flags: u64 = unsafe { ctx.read_at(NEWTASK_CLONE_FLAGS) }.unwrap_or(CLONE_THREAD);
    if clone_flags & CLONE_THREAD != 0 {
        return 0;
    }
    // SAFETY: as above.
    let Ok(child) = (unsafe { ctx.read_at::<i32>(NEWTASK_PID) }) else {
        return 0;
    };
    let child = child as u32;
    if let Some(flags) = sticky {
        let _ = EXEC_STICKY.insert(child, flags, 0);
    }
    if let Some(root) = root
        && EXEC_PENDING.insert(child, root, 0).is_err()
    {
        bump(exec_stats::PENDING_LOST);
    }
    0
}
