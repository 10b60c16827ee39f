//! Pressure stall information (PSI), as the arbiter uses it (the files are
//! read by `crate::cgroup`'s [`Psi`](crate::cgroup::Psi) reader).
//!
//! `avg10` is a 10 s average, too slow to act on within a second and to see
//! a contention end; `total` (microseconds stalled since the group was made)
//! is exact, so the arbiter takes the share of each interval spent stalled
//! from two totals ([`stalled_share`]), and reports `avg10` alongside.

use std::time::Duration;

/// The share of `elapsed` stalled, from the totals at its start and end (0
/// to 1; 0 when the counter went back, as for a group made again).
pub fn stalled_share(before: u64, after: u64, elapsed: Duration) -> f64 {
    let us = elapsed.as_secs_f64() * 1e6;
    if us <= 0.0 {
        return 0.0;
    }
    (after.saturating_sub(before) as f64 / us).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_an_interval() {
        let quarter = Duration::from_millis(250);
        assert_eq!(stalled_share(1_000, 126_000, quarter), 0.5);
        assert_eq!(
            stalled_share(5, 1, quarter),
            0.0,
            "a counter that went back"
        );
        assert_eq!(stalled_share(0, 10_000_000, quarter), 1.0, "capped");
        assert_eq!(stalled_share(0, 10, Duration::ZERO), 0.0);
    }
}
