//! The node's network shares on [`Kernel`]: the capacity and each priority
//! level's share per direction (`NET_SHARE_CONF`), what the shares held back
//! (`NET_SHARE_STATE`), and a group's traffic for the arbiter.
//!
//! The `enforce_egress_L` / `enforce_ingress_L` programs enforce them per
//! packet (`enforcer-ebpf/src/limits.rs`); userspace only moves the numbers.
//! A rewrite of a slot's configuration leaves its GCRA state alone (the two
//! live in separate arrays), so adjusting a share never hands out a fresh
//! burst.

use aya::maps::{Array, MapData, PerCpuHashMap};
use enforcer_common::{NetCounter, SHARE_LEVELS, ShareConf, ShareState, share_slot};

use super::BpfError;
use super::kernel::{Kernel, is_absent};
use super::layout::{NET_EGRESS, NET_INGRESS, NET_SHARE_CONF, NET_SHARE_STATE};
use super::rules::{RATE_BURST, RATE_BURST_BYTES, dir_index};
use crate::words::Direction;

/// One direction's shares: what [`Kernel::set_shares`] takes (the plan
/// computes them, the arbiter moves them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetShares {
    /// Bytes per second; `None`: no capacity, no shares (every packet passes).
    pub capacity: Option<u64>,
    /// The levels in use, lowest first.
    pub levels: Vec<LevelShare>,
}

/// A priority level's part of the capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelShare {
    /// The priority level (1 to 100).
    pub level: u32,
    /// Bytes per second assured to the level's groups together.
    pub assured: u64,
    /// The share of the node's backlog room within which the level may
    /// borrow beyond `assured`, 0 to 1.
    pub borrow: f64,
}

impl NetShares {
    /// The share of `level`, if it is in use.
    pub fn level(&self, level: u32) -> Option<&LevelShare> {
        self.levels.iter().find(|l| l.level == level)
    }
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> BpfError {
    move |source| BpfError::Map { map, source }
}

/// GCRA parameters of a rate: ns per byte (16.16 fixed point, capped as the
/// per-group limiter's) and the burst, the larger of [`RATE_BURST`] and
/// [`RATE_BURST_BYTES`] at that rate.
fn gcra(rate: u64) -> (u64, u64) {
    if rate == 0 {
        return (0, 0);
    }
    let q16 = u64::try_from((1_000_000_000u128 << 16) / u128::from(rate))
        .unwrap_or(u64::MAX)
        .clamp(1, 1 << 43);
    let burst = u64::try_from(RATE_BURST.as_nanos())
        .unwrap_or(u64::MAX)
        .max(
            u64::try_from((u128::from(RATE_BURST_BYTES) * u128::from(q16)) >> 16)
                .unwrap_or(u64::MAX),
        );
    (q16, burst)
}

/// The `NET_SHARE_CONF` slots of one direction for `shares`: the node first,
/// then every level (levels not listed get nothing: they cannot borrow).
pub(super) fn share_confs(shares: &NetShares) -> Vec<(u32, ShareConf)> {
    let (node_q16, node_burst) = gcra(shares.capacity.unwrap_or(0));
    let mut out = vec![(
        0,
        ShareConf {
            ns_per_byte_q16: node_q16,
            burst_ns: node_burst,
            borrow_ns: 0,
            rate: shares.capacity.unwrap_or(0),
        },
    )];
    for level in 1..=SHARE_LEVELS {
        let conf = shares
            .levels
            .iter()
            .find(|l| l.level == level)
            .map(|l| {
                let (q16, burst) = gcra(l.assured);
                ShareConf {
                    ns_per_byte_q16: q16,
                    burst_ns: burst,
                    // The backlog room to borrow, as the level's part of the
                    // node's burst.
                    borrow_ns: (node_burst as f64 * l.borrow.clamp(0.0, 1.0)) as u64,
                    rate: l.assured,
                }
            })
            .unwrap_or_default();
        out.push((level, conf));
    }
    out
}

impl Kernel {
    fn share_conf(&mut self) -> Result<Array<&mut MapData, ShareConf>, BpfError> {
        let map = self
            .ebpf
            .map_mut(NET_SHARE_CONF)
            .ok_or(BpfError::MapMissing(NET_SHARE_CONF))?;
        Array::try_from(map).map_err(map_err(NET_SHARE_CONF))
    }

    /// Writes the node's capacity and every level's share in `dir`. With no
    /// capacity the programs pass every packet of the direction (the levels'
    /// slots are cleared too).
    pub fn set_shares(&mut self, dir: Direction, shares: &NetShares) -> Result<(), BpfError> {
        let d = dir_index(dir) as u32;
        let confs = share_confs(shares);
        let mut array = self.share_conf()?;
        // Levels first and the node last: a capacity appears only once its
        // levels are in place (and, when one goes, the node stops first).
        let (node, levels) = confs
            .split_first()
            .ok_or(BpfError::MapMissing(NET_SHARE_CONF))?;
        if shares.capacity.is_none() {
            array
                .set(share_slot(d, 0), node.1, 0)
                .map_err(map_err(NET_SHARE_CONF))?;
        }
        for (level, conf) in levels {
            array
                .set(share_slot(d, *level), conf, 0)
                .map_err(map_err(NET_SHARE_CONF))?;
        }
        if shares.capacity.is_some() {
            array
                .set(share_slot(d, 0), node.1, 0)
                .map_err(map_err(NET_SHARE_CONF))?;
        }
        Ok(())
    }

    /// The shares in force in `dir`, as the kernel holds them (capacity and
    /// assured rates; the borrow room is not read back).
    pub fn shares(&self, dir: Direction) -> Result<NetShares, BpfError> {
        let d = dir_index(dir) as u32;
        let map = self
            .ebpf
            .map(NET_SHARE_CONF)
            .ok_or(BpfError::MapMissing(NET_SHARE_CONF))?;
        let array: Array<&MapData, ShareConf> =
            Array::try_from(map).map_err(map_err(NET_SHARE_CONF))?;
        let node = array
            .get(&share_slot(d, 0), 0)
            .map_err(map_err(NET_SHARE_CONF))?;
        let mut shares = NetShares {
            capacity: Some(node.rate).filter(|&r| r > 0),
            levels: Vec::new(),
        };
        for level in 1..=SHARE_LEVELS {
            let conf = array
                .get(&share_slot(d, level), 0)
                .map_err(map_err(NET_SHARE_CONF))?;
            if conf.rate > 0 || conf.borrow_ns > 0 {
                shares.levels.push(LevelShare {
                    level,
                    assured: conf.rate,
                    borrow: 0.0,
                });
            }
        }
        Ok(shares)
    }

    /// What the shares held back so far at `level` in `dir`: (bytes,
    /// packets), counted since the maps were created.
    pub fn share_drops(&self, dir: Direction, level: u32) -> Result<(u64, u64), BpfError> {
        let map = self
            .ebpf
            .map(NET_SHARE_STATE)
            .ok_or(BpfError::MapMissing(NET_SHARE_STATE))?;
        let array: Array<&MapData, ShareState> =
            Array::try_from(map).map_err(map_err(NET_SHARE_STATE))?;
        let st = array
            .get(&share_slot(dir_index(dir) as u32, level), 0)
            .map_err(map_err(NET_SHARE_STATE))?;
        Ok((st.dropped_bytes, st.dropped_packets))
    }

    /// Bytes the group's own sockets sent and received so far (its counting
    /// programs' totals over all CPUs; 0 before its first packet).
    pub fn net_bytes(&self, cgroup_id: u64) -> Result<(u64, u64), BpfError> {
        let mut out = [0u64; 2];
        for (slot, name) in out.iter_mut().zip([NET_EGRESS, NET_INGRESS]) {
            let map = self.ebpf.map(name).ok_or(BpfError::MapMissing(name))?;
            let per_cpu: PerCpuHashMap<&MapData, u64, NetCounter> =
                PerCpuHashMap::try_from(map).map_err(map_err(name))?;
            *slot = match per_cpu.get(&cgroup_id, 0) {
                Ok(values) => values.iter().map(|c| c.bytes).sum(),
                Err(e) if is_absent(&e) => 0,
                Err(source) => return Err(BpfError::Map { map: name, source }),
            };
        }
        Ok((out[0], out[1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_become_slots() {
        let shares = NetShares {
            capacity: Some(25_000_000),
            levels: vec![
                LevelShare {
                    level: 75,
                    assured: 20_000_000,
                    borrow: 1.0,
                },
                LevelShare {
                    level: 25,
                    assured: 5_000_000,
                    borrow: 1.0 / 3.0,
                },
            ],
        };
        let confs = share_confs(&shares);
        assert_eq!(confs.len(), 1 + SHARE_LEVELS as usize);
        let (node_level, node) = confs[0];
        assert_eq!(node_level, 0);
        // 25 MB/s: 40 ns per byte; the burst is 20 ms (192 KiB is less).
        assert_eq!(node.ns_per_byte_q16, 40 << 16);
        assert_eq!(node.burst_ns, 20_000_000);
        let high = confs[75].1;
        assert_eq!(high.ns_per_byte_q16, 50 << 16);
        assert_eq!(high.borrow_ns, 20_000_000);
        let low = confs[25].1;
        assert_eq!(low.rate, 5_000_000);
        assert_eq!(low.borrow_ns, 6_666_666);
        // A level not in use gets nothing, not even the room to borrow.
        assert_eq!(confs[50].1, ShareConf::default());
        // No capacity: the node slot is zero, so every packet passes.
        let none = share_confs(&NetShares::default());
        assert_eq!(none[0].1.ns_per_byte_q16, 0);
    }
}
