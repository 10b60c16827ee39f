//! The `EVENTS` ring buffer, shared by `oom_kill` and the enforcement programs.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::map,
    maps::RingBuf,
};
use enforcer_common::{EVENTS_BYTES, EnforceCounter, EnforceEvent};

use crate::policy::count;

/// Event records for userspace.
#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_BYTES, 0);

/// A record of `kind` for a decision of `owner`'s rules about the current
/// task (in cgroup `task_cgroup_id`): pid, comm and time filled in.
#[inline(always)]
pub(crate) fn task_event(kind: u32, owner: u64, task_cgroup_id: u64) -> EnforceEvent {
    EnforceEvent {
        kind,
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        cgroup_id: owner,
        comm: bpf_get_current_comm().unwrap_or_default(),
        // SAFETY: no arguments; allowed in every program type.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
        task_cgroup_id,
        ..EnforceEvent::default()
    }
}

/// Puts `event` on the ring buffer; if it is full, counts the loss in the
/// owner's `events_lost` instead.
#[inline(always)]
pub(crate) fn emit(event: &EnforceEvent) {
    if let Some(mut entry) = EVENTS.reserve::<EnforceEvent>(0) {
        entry.write(*event);
        entry.submit(0);
    } else {
        count(event.cgroup_id, |c: &mut EnforceCounter| {
            c.events_lost = c.events_lost.wrapping_add(1);
        });
    }
}
