//! IO: a yielding group's `io.weight` (v1: `blkio.weight`, or the BFQ
//! weight where that is what the kernel has). A weight only divides the
//! device between groups that use it at the same time, so it costs the
//! yielding group nothing while the higher group is idle; each step takes
//! `step` of it, never below `min_io_weight`.

/// The weight one step down; `None` when at the floor.
pub(super) fn step_down(current: u64, floor: u64, step: f64) -> Option<u64> {
    let next = ((current as f64 * (1.0 - step)) as u64).max(floor.max(1));
    (next < current).then_some(next)
}

/// The weight one step up towards `original`; `None` when that reaches it.
pub(super) fn step_up(current: u64, original: u64, step: f64) -> Option<u64> {
    let next = (current as f64 / (1.0 - step)).ceil() as u64;
    (next < original).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_step_between_the_floor_and_the_original() {
        assert_eq!(step_down(100, 1, 0.5), Some(50));
        assert_eq!(step_down(100, 80, 0.5), Some(80));
        assert_eq!(step_down(80, 80, 0.5), None);
        assert_eq!(step_down(1, 1, 0.5), None);
        assert_eq!(step_up(25, 100, 0.5), Some(50));
        assert_eq!(step_up(50, 100, 0.5), None);
    }
}
