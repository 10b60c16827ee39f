//! Network: a yielding group's rate (the kernel's per-group limiter, the
//! same GCRA as `egress_rate`, held in a slot of its own so it never undoes
//! a `when` throttle) and its level's share of the node's capacity.
//!
//! The kernel does the fast part: a level's assured share and the borrowing
//! of idle capacity are decided per packet (`enforcer-ebpf/src/limits.rs`).
//! What the arbiter adds, when a higher level is still held back (its demand
//! over its assured share while the node is saturated), is to shrink the
//! lower level's assured share and cap the lower group's rate step by step,
//! handing the freed share to the top level, never below the floors
//! (`min_egress`, `min_ingress`).

use crate::plan::{LevelShare, NetShares};

/// The rate one step down for a group sending `usage` bytes/s under `current`
/// (`None`: not capped); `None` when at its floor.
pub(super) fn step_down(current: Option<u64>, usage: f64, floor: u64, step: f64) -> Option<u64> {
    let base = current.map_or(usage, |c| (c as f64).min(usage));
    let next = ((base * (1.0 - step)) as u64).max(floor.max(1));
    if current.is_some_and(|c| next >= c) {
        return None;
    }
    Some(next)
}

/// The rate one step up; `None` when it reaches `ceiling` (lift the cap).
pub(super) fn step_up(current: u64, ceiling: u64, step: f64) -> Option<u64> {
    let next = (current as f64 / (1.0 - step)).ceil() as u64;
    (next < ceiling).then_some(next)
}

/// What a level yields: its steps (the most any of its groups has taken) and
/// the floors of its groups together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LevelYield {
    pub level: u32,
    pub steps: u32,
    pub floors: u64,
}

/// `base` with each yielding level's assured share cut by `step` per step
/// (never below its floors) and what it frees given to the top level.
pub(super) fn adjusted(base: &NetShares, yields: &[LevelYield], step: f64) -> NetShares {
    let mut freed = 0u64;
    let mut levels: Vec<LevelShare> = base
        .levels
        .iter()
        .map(|l| {
            let Some(y) = yields.iter().find(|y| y.level == l.level && y.steps > 0) else {
                return l.clone();
            };
            let factor = (1.0 - step).powi(i32::try_from(y.steps).unwrap_or(i32::MAX));
            let assured = ((l.assured as f64 * factor) as u64)
                .max(y.floors)
                .min(l.assured);
            freed += l.assured - assured;
            LevelShare {
                assured,
                ..l.clone()
            }
        })
        .collect();
    if let Some(top) = levels.iter_mut().max_by_key(|l| l.level) {
        top.assured = top.assured.saturating_add(freed);
    }
    NetShares {
        capacity: base.capacity,
        levels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Priority, base_shares};
    use std::collections::BTreeMap;

    #[test]
    fn rates_step_down_to_the_floor_and_back() {
        assert_eq!(step_down(None, 10_000_000.0, 100_000, 0.5), Some(5_000_000));
        assert_eq!(
            step_down(Some(5_000_000), 9e6, 100_000, 0.5),
            Some(2_500_000)
        );
        assert_eq!(step_down(Some(150_000), 9e6, 100_000, 0.5), Some(100_000));
        assert_eq!(step_down(Some(100_000), 9e6, 100_000, 0.5), None);
        assert_eq!(step_up(2_500_000, 25_000_000, 0.5), Some(5_000_000));
        assert_eq!(step_up(20_000_000, 25_000_000, 0.5), None);
    }

    #[test]
    fn a_yielding_level_hands_its_share_to_the_top() {
        let base = base_shares(
            Some(25_000_000),
            &BTreeMap::from([(Priority::HIGH, 0), (Priority::LOW, 0)]),
        );
        let y = |steps| LevelYield {
            level: 25,
            steps,
            floors: 250_000,
        };
        let s = adjusted(&base, &[y(1)], 0.5);
        assert_eq!(s.level(25).unwrap().assured, 2_500_000);
        assert_eq!(s.level(75).unwrap().assured, 22_500_000);
        let s = adjusted(&base, &[y(10)], 0.5);
        assert_eq!(s.level(25).unwrap().assured, 250_000, "the floors");
        assert_eq!(s.level(75).unwrap().assured, 24_750_000);
        assert_eq!(adjusted(&base, &[y(0)], 0.5), base);
    }
}
