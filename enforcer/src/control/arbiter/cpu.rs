//! CPU: a yielding group's `cpu.max` quota and `cpu.weight`.
//!
//! The weight only matters while both groups want the CPU, and a low weight
//! still leaves a hog a share per scheduling period; the quota is what frees
//! CPUs for the higher group. Each step takes `step` off what the group
//! uses now (its measured CPU time over the last interval, or its quota if
//! that is lower), never below its floor (`min_cpu`) and never above a quota
//! the policy gave it; the weight loses `step` too, down to 1.

/// A `cpu.max`: the quota (µs per period, `None`: no limit) and the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMax {
    pub quota: Option<u64>,
    pub period: u64,
}

/// The kernel's smallest quota (µs).
const MIN_QUOTA: u64 = 1000;

impl CpuMax {
    /// The limit as a share of one CPU (`None`: none).
    pub fn cpus(self) -> Option<f64> {
        self.quota.map(|q| q as f64 / self.period.max(1) as f64)
    }

    /// cgroup2's text: `max 100000`, `50000 100000`.
    pub fn to_v2(self) -> String {
        match self.quota {
            Some(q) => format!("{q} {}", self.period),
            None => format!("max {}", self.period),
        }
    }

    pub fn parse_v2(text: &str) -> Option<CpuMax> {
        let mut words = text.split_whitespace();
        let quota = match words.next()? {
            "max" => None,
            q => Some(q.parse().ok()?),
        };
        let period = words.next().map_or(Some(100_000), |p| p.parse().ok())?;
        Some(CpuMax { quota, period })
    }
}

/// One step down from `cur` for a group using `usage` CPUs, with floor
/// `floor` CPUs and weight `weight`; `None` when it is at its floor already.
pub(super) fn step_down(
    cur: CpuMax,
    usage: f64,
    floor: f64,
    weight: u64,
    step: f64,
) -> Option<(CpuMax, u64)> {
    let period = cur.period.max(1);
    let used = (usage.max(0.0) * period as f64) as u64;
    // Never loosen what is there: a quota the policy (or an earlier step)
    // set stays the upper bound.
    let base = cur.quota.map_or(used, |q| q.min(used));
    let floor_us = ((floor * period as f64) as u64).max(MIN_QUOTA);
    let quota = ((base as f64 * (1.0 - step)) as u64).max(floor_us);
    if cur.quota.is_some_and(|q| quota >= q) {
        return None;
    }
    let weight = ((weight as f64 * (1.0 - step)) as u64).max(1);
    Some((
        CpuMax {
            quota: Some(quota),
            period,
        },
        weight,
    ))
}

/// One step back up from `cur` towards `original` (and the weight towards
/// `original_weight`) on a host of `cpus` CPUs; `None` when that reaches the
/// originals (restore them as they were written). Without a quota before,
/// the way back ends where a quota would stop mattering: all the CPUs.
pub(super) fn step_up(
    cur: CpuMax,
    original: CpuMax,
    weight: u64,
    original_weight: u64,
    step: f64,
    cpus: usize,
) -> Option<(CpuMax, u64)> {
    let grow = |v: u64| (v as f64 / (1.0 - step)).ceil() as u64;
    let quota = cur.quota.map(grow)?;
    let ceiling = original
        .quota
        .unwrap_or(cur.period.saturating_mul(cpus as u64));
    if quota >= ceiling || cur.period != original.period {
        return None;
    }
    Some((
        CpuMax {
            quota: Some(quota),
            period: cur.period,
        },
        grow(weight).min(original_weight),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 100_000;

    fn max(quota: Option<u64>) -> CpuMax {
        CpuMax { quota, period: P }
    }

    #[test]
    fn text_both_ways() {
        assert_eq!(CpuMax::parse_v2("max 100000"), Some(max(None)));
        assert_eq!(CpuMax::parse_v2("50000 100000"), Some(max(Some(50_000))));
        assert_eq!(CpuMax::parse_v2("max"), Some(max(None)));
        assert_eq!(CpuMax::parse_v2("x 1"), None);
        assert_eq!(max(Some(25_000)).to_v2(), "25000 100000");
        assert_eq!(max(None).to_v2(), "max 100000");
        assert_eq!(max(Some(50_000)).cpus(), Some(0.5));
    }

    #[test]
    fn steps_down_from_use_to_the_floor() {
        // Two hogs use two CPUs: a step leaves one, then half, ... down to
        // the floor of a tenth, then no further.
        let (q, w) = step_down(max(None), 2.0, 0.1, 50, 0.5).unwrap();
        assert_eq!((q, w), (max(Some(100_000)), 25));
        let (q, w) = step_down(q, 1.0, 0.1, w, 0.5).unwrap();
        assert_eq!((q, w), (max(Some(50_000)), 12));
        let (q, _) = step_down(q, 0.5, 0.1, w, 0.5).unwrap();
        let (q, _) = step_down(q, 0.25, 0.1, w, 0.5).unwrap();
        assert_eq!(q, max(Some(12_500)));
        let (q, _) = step_down(q, 0.125, 0.1, w, 0.5).unwrap();
        assert_eq!(q, max(Some(10_000)), "the floor");
        assert_eq!(step_down(q, 0.1, 0.1, w, 0.5), None, "at the floor");
        // A quota the policy set is never raised by a step.
        let (q, _) = step_down(max(Some(30_000)), 2.0, 0.1, 100, 0.5).unwrap();
        assert_eq!(q, max(Some(15_000)));
        // The weight stops at 1.
        assert_eq!(step_down(max(None), 1.0, 0.1, 1, 0.5).unwrap().1, 1);
    }

    #[test]
    fn steps_up_to_the_original() {
        let up = |cur, original| step_up(max(cur), max(original), 12, 50, 0.5, 2);
        assert_eq!(up(Some(25_000), None), Some((max(Some(50_000)), 24)));
        assert_eq!(up(Some(100_000), None), None, "two CPUs: no quota matters");
        assert_eq!(up(Some(25_000), Some(40_000)), None);
        assert_eq!(up(None, None), None);
    }
}
