//! The node's network shares: with `[agent] egress_capacity` (or
//! `ingress_capacity`) each priority level in use is assured part of the
//! capacity and may borrow what the other levels leave idle, as the classes
//! of an HTB qdisc do; the `enforce_egress` / `enforce_ingress` programs
//! enforce it per packet, and the arbiter moves the numbers.
//!
//! What a level is assured: the floors of its groups (`min_egress`), plus
//! the rest of the capacity in proportion to its weight
//! ([`Priority::weight`]: `high` gets four times what `low` gets). The
//! assured rates add up to the capacity, so assured traffic alone never
//! oversubscribes the node. How far a level may borrow: its level over the
//! top level in use, as a share of the node's backlog room, so that when
//! several levels borrow at once the higher ones keep getting through.

use std::collections::BTreeMap;

use crate::bpf::{LevelShare, NetShares};
use crate::words::Priority;

/// The shares of `capacity` among the levels in use, each with the sum of
/// its groups' floors (bytes per second). The floors must fit the capacity
/// (the plan checks it); if they do not, the rest is empty and each level
/// gets its floors.
pub fn base_shares(capacity: Option<u64>, floors: &BTreeMap<Priority, u64>) -> NetShares {
    let Some(capacity) = capacity else {
        return NetShares::default();
    };
    let floor_sum: u64 = floors.values().sum();
    let rest = capacity.saturating_sub(floor_sum);
    let weights: u64 = floors.keys().map(|p| p.weight()).sum::<u64>().max(1);
    let top = floors
        .keys()
        .next_back()
        .map_or(1.0, |p| f64::from(p.level()));
    let mut levels: Vec<LevelShare> = floors
        .iter()
        .map(|(p, floor)| LevelShare {
            level: u32::from(p.level()),
            assured: floor
                + u64::try_from(u128::from(rest) * u128::from(p.weight()) / u128::from(weights))
                    .unwrap_or(u64::MAX),
            borrow: f64::from(p.level()) / top,
        })
        .collect();
    // What rounding down left over goes to the top level.
    let given: u64 = levels.iter().map(|l| l.assured).sum();
    if let Some(top) = levels.last_mut() {
        top.assured += capacity.saturating_sub(given);
    }
    NetShares {
        capacity: Some(capacity),
        levels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_split_the_rest_after_the_floors() {
        // 200 Mbit: high (weight 200) and low (50) get 80% and 20%.
        let levels = BTreeMap::from([(Priority::HIGH, 0), (Priority::LOW, 0)]);
        let s = base_shares(Some(25_000_000), &levels);
        let high = s.level(75).unwrap();
        let low = s.level(25).unwrap();
        assert_eq!((high.assured, low.assured), (20_000_000, 5_000_000));
        assert_eq!((high.borrow, low.borrow), (1.0, 1.0 / 3.0));
        // A floor is assured on top of the weighted rest.
        let levels = BTreeMap::from([(Priority::HIGH, 0), (Priority::LOW, 5_000_000)]);
        let s = base_shares(Some(25_000_000), &levels);
        assert_eq!(s.level(75).unwrap().assured, 16_000_000);
        assert_eq!(s.level(25).unwrap().assured, 9_000_000);
        let total: u64 = s.levels.iter().map(|l| l.assured).sum();
        assert_eq!(total, 25_000_000);
        // No capacity: no shares.
        assert_eq!(base_shares(None, &levels), NetShares::default());
    }
}
