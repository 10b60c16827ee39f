//! Two host-wide cgroup tracepoints the counting needs.
//!
//! - `cgroup_migrated` (`cgroup/cgroup_attach_task`): a task moved to another
//!   cgroup, so every CPU's cached "this task is (not) counted" decision in
//!   `count_syscalls` may be wrong: bump the migration count they are stamped
//!   with. Migrations are rare next to syscalls.
//! - `cgroup_removed` (`cgroup/cgroup_rmdir`): a cgroup2 group went away; tell
//!   the agent at once (a record on `EVENTS`), so its counters, rules, index
//!   entry and metric series go within an interval, without waiting for a
//!   walk of the tree.

use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{map, tracepoint},
    maps::Array,
    programs::TracePointContext,
};
use enforcer_common::{CgroupEvent, EVENT_CGROUP_REMOVED, cgroup_rmdir};

use crate::atomic::fetch_add;
use crate::events::EVENTS;

/// Task migrations between cgroups, host-wide (one entry, atomic adds).
#[map]
pub(crate) static CGROUP_MIGRATIONS: Array<u64> = Array::with_max_entries(1, 0);

#[tracepoint(category = "cgroup", name = "cgroup_attach_task")]
fn cgroup_migrated(_ctx: TracePointContext) -> u32 {
    if let Some(n) = CGROUP_MIGRATIONS.get_ptr_mut(0) {
        // SAFETY: an aligned u64 map value of this array, valid for this run.
        unsafe { fetch_add(n, 1) };
    }
    0
}

#[tracepoint(category = "cgroup", name = "cgroup_rmdir")]
fn cgroup_removed(ctx: TracePointContext) -> u32 {
    // SAFETY: the offsets are inside the cgroup_rmdir record (checked against
    // the tracefs format by userspace before attaching); read_at uses
    // bpf_probe_read_kernel, which fails instead of faulting.
    let root: i32 = unsafe { ctx.read_at(cgroup_rmdir::ROOT_OFFSET) }.unwrap_or(-1);
    if root != cgroup_rmdir::DFL_ROOT {
        return 0;
    }
    // SAFETY: as above.
    let level: i32 = unsafe { ctx.read_at(cgroup_rmdir::LEVEL_OFFSET) }.unwrap_or(0);
    // SAFETY: as above.
    let cgroup_id: u64 = unsafe { ctx.read_at(cgroup_rmdir::ID_OFFSET) }.unwrap_or(0);
    if cgroup_id == 0 {
        return 0;
    }
    let event = CgroupEvent {
        kind: EVENT_CGROUP_REMOVED,
        level: level as u32,
        cgroup_id,
        // SAFETY: no arguments; allowed in every program type.
        ktime_ns: unsafe { bpf_ktime_get_ns() },
    };
    if let Some(mut entry) = EVENTS.reserve::<CgroupEvent>(0) {
        entry.write(event);
        entry.submit(0);
    }
    // Ring buffer full: the agent notices the group is gone at its next walk
    // of the tree (an id it cannot place), as before this event existed.
    0
}
