//! Memory: a yielding group's `memory.high` (cgroup v1 has none; there the
//! soft limit, `memory.soft_limit_in_bytes`, which the kernel reclaims
//! towards under memory pressure).
//!
//! Never `memory.max`: going over `memory.high` makes the kernel reclaim and
//! throttle the group, never OOM-kill it, so the arbiter cannot cause an OOM
//! kill. Each step puts the limit at the group's working set (its usage now)
//! minus `memory_step` of it, so a step asks the kernel to reclaim at most
//! that much at once; never below the group's floor (`min_memory`) and never
//! above a limit the policy set.

/// Page size the kernel rounds memory limits to.
const PAGE: u64 = 4096;

/// The limit one step down for a group using `usage` bytes under `current`
/// (`None`: no limit); `None` when that would not lower it.
pub(super) fn step_down(current: Option<u64>, usage: u64, floor: u64, step: f64) -> Option<u64> {
    let target = ((usage as f64 * (1.0 - step)) as u64).max(floor) / PAGE * PAGE;
    if target == 0 || current.is_some_and(|c| target >= c) {
        return None;
    }
    Some(target)
}

/// The limit one step back up from `current` towards `original`; `None` when
/// that reaches it (restore the original as it was written).
pub(super) fn step_up(current: u64, original: Option<u64>, step: f64) -> Option<u64> {
    let target = ((current as f64 / (1.0 - step)) as u64).div_ceil(PAGE) * PAGE;
    // Without a limit before, any step up is still a limit: go all the way.
    original.filter(|&o| target < o).map(|_| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    #[test]
    fn a_step_is_the_working_set_minus_a_tenth() {
        assert_eq!(step_down(None, 100 * M, 0, 0.1), Some(92_160 * 1024));
        // Not below the floor; not above what is set.
        assert_eq!(step_down(None, 100 * M, 95 * M, 0.1), Some(95 * M));
        assert_eq!(step_down(Some(80 * M), 100 * M, 0, 0.1), None);
        assert_eq!(step_down(None, 0, 0, 0.1), None, "nothing to yield");
    }

    #[test]
    fn steps_back_up_until_the_original() {
        assert_eq!(step_up(90 * M, Some(200 * M), 0.1), Some(100 * M));
        assert_eq!(step_up(190 * M, Some(200 * M), 0.1), None);
        // No limit before: one step up is the whole way back.
        assert_eq!(step_up(90 * M, None, 0.1), None);
    }
}
