//! `oom_kill`: tracepoint `oom/mark_victim`, one [`OomEvent`] per OOM kill on
//! the `EVENTS` ring buffer.
//!
//! Why this tracepoint: it fires once per victim the OOM killer picks (global or
//! memory cgroup OOM), with the victim's pid and comm in the record, and it is a
//! stable trace event (no kprobes on this kernel). Its record layout is read
//! from tracefs by userspace, which checks it against the offsets hard-coded
//! here (`enforcer_common::mark_victim`) before attaching.
//!
//! The cgroup is `bpf_get_current_cgroup_id()`: the task running the OOM killer,
//! not the victim (reading the victim's cgroup from its task_struct needs CO-RE
//! field offsets). For a memory-cgroup OOM the current task is the one whose
//! charge failed, a member of the limited group (see `OomEvent::cgroup_id`).

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_get_current_cgroup_id, bpf_ktime_get_ns, bpf_probe_read_kernel_str_bytes},
    macros::tracepoint,
    programs::TracePointContext,
};
use enforcer_common::{EVENT_OOM_KILL, EnforceCounter, OomEvent, TASK_COMM_LEN, mark_victim};

use crate::events::EVENTS;
use crate::policy::count;

#[tracepoint(category = "oom", name = "mark_victim")]
fn oom_kill(ctx: TracePointContext) -> u32 {
    // SAFETY: the offsets are inside the mark_victim record (checked against
    // the tracefs format by userspace before attaching); read_at uses
    // bpf_probe_read_kernel, which fails instead of faulting.
    let pid: i32 = unsafe { ctx.read_at(mark_victim::PID_OFFSET) }.unwrap_or(0);
    // SAFETY: as above.
    let loc: u32 = unsafe { ctx.read_at(mark_victim::COMM_LOC_OFFSET) }.unwrap_or(0);
    let mut comm = [0u8; TASK_COMM_LEN];
    // __data_loc: low 16 bits are the string's offset in the record.
    let offset = (loc & 0xffff) as usize;
    if offset != 0 {
        let src = ctx.as_ptr().cast::<u8>().wrapping_add(offset);
        // SAFETY: bpf_probe_read_kernel_str reads at most comm.len() bytes and
        // fails (zero-filling `comm`) instead of faulting on a bad address.
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(src, &mut comm) };
    }
    let event = OomEvent {
        kind: EVENT_OOM_KILL,
        pid: pid as u32,
        // SAFETY: no arguments; allowed in tracing programs.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm,
        // SAFETY: no arguments; allowed in every program type.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
    };
    if let Some(mut entry) = EVENTS.reserve::<OomEvent>(0) {
        entry.write(event);
        entry.submit(0);
    } else {
        // Ring buffer full (nobody drains it): counted, so the loss is
        // reported instead of silent.
        count(event.cgroup_id, |c: &mut EnforceCounter| {
            c.events_lost = c.events_lost.wrapping_add(1);
        });
    }
    0
}
