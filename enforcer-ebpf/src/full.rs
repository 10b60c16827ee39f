//! What could not be counted: per map, the events that found it full. Every
//! counting path notes here, so it imports nothing of theirs.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use enforcer_common::full;

/// Per map (`enforcer_common::full`): events that found the map full and went
/// uncounted. Read by userspace, never reset.
#[map]
static MAP_FULL: PerCpuArray<u64> = PerCpuArray::with_max_entries(full::ENTRIES, 0);

/// Notes that a map (`full::*` index) was full.
#[inline(always)]
pub(crate) fn note_full(which: u32) {
    if let Some(n) = MAP_FULL.get_ptr_mut(which) {
        // SAFETY: this CPU's slot of a per-CPU array, valid for this run.
        unsafe { *n = (*n).wrapping_add(1) };
    }
}
