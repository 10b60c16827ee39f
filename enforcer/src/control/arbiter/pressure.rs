//! Pressure stall information (PSI): every cgroup2 group has `cpu.pressure`,
//! `memory.pressure` and `io.pressure` (on a hybrid host too, in the mirror
//! the agent keeps its processes in), whatever controllers are enabled.
//!
//! ```text
//! some avg10=1.23 avg60=0.40 avg300=0.10 total=123456
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! ```
//!
//! `avg10` is a 10 s average, too slow to act on within a second and to see
//! a contention end; `total` (microseconds stalled since the group was made)
//! is exact, so the arbiter takes the share of each interval spent stalled
//! from two totals ([`stalled_share`]), and reports `avg10` alongside.

use std::time::Duration;

/// One PSI file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Psi {
    /// Share of the last 10 s some task of the group was stalled (0 to 1).
    pub some_avg10: f64,
    /// Microseconds some task was stalled, since the group was made.
    pub some_total: u64,
    /// As `some_*`, for time every task was stalled (absent for the CPU of
    /// some kernels: then 0).
    pub full_avg10: f64,
    pub full_total: u64,
}

/// Parses a PSI file's text; `None` if it has no `some` line.
pub fn parse(text: &str) -> Option<Psi> {
    let mut psi = Psi::default();
    let mut some = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next();
        let (mut avg10, mut total) = (None, None);
        for word in words {
            if let Some(v) = word.strip_prefix("avg10=") {
                avg10 = v.parse::<f64>().ok();
            } else if let Some(v) = word.strip_prefix("total=") {
                total = v.parse::<u64>().ok();
            }
        }
        match (kind, avg10, total) {
            (Some("some"), Some(a), Some(t)) => {
                psi.some_avg10 = a / 100.0;
                psi.some_total = t;
                some = true;
            }
            (Some("full"), Some(a), Some(t)) => {
                psi.full_avg10 = a / 100.0;
                psi.full_total = t;
            }
            _ => {}
        }
    }
    some.then_some(psi)
}

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
    fn reads_some_and_full() {
        let text = "some avg10=12.50 avg60=3.00 avg300=1.00 total=2500000\n\
                    full avg10=1.00 avg60=0.00 avg300=0.00 total=100\n";
        let psi = parse(text).unwrap();
        assert_eq!(psi.some_avg10, 0.125);
        assert_eq!(psi.some_total, 2_500_000);
        assert_eq!((psi.full_avg10, psi.full_total), (0.01, 100));
        // cpu.pressure of older kernels has no `full` line.
        let cpu = parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert_eq!((cpu.some_total, cpu.full_total), (7, 0));
        assert_eq!(parse(""), None);
        assert_eq!(parse("garbage\n"), None);
    }

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
