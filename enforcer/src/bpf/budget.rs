//! Reading each group's network limits back from the kernel: the rate in
//! force and how much of a byte budget is left in the current window (for
//! `top`'s detail view and the `enforcer_budget_*` metrics).

use std::collections::BTreeMap;
use std::path::Path;

use aya::maps::{HashMap, Map, MapData};
use enforcer_common::{GroupPolicy, LimitKey, LimitState};
use serde::Serialize;

use super::BpfError;
use super::layout::{GROUP_RULES, NET_LIMIT_STATE, PINNED_MAPS};
use super::pins::open_pinned_map;

/// One direction's limits of a group, as the kernel holds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LimitReport {
    /// `egress` or `ingress`.
    pub direction: &'static str,
    /// The rate in force (the rule's, or a closed-loop throttle's if lower);
    /// None without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_bytes_per_sec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetReport>,
}

/// A byte budget and the current window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BudgetReport {
    pub bytes: u64,
    pub window_secs: f64,
    /// Charged in the current window (0 once the window has ended).
    pub used_bytes: u64,
    pub remaining_bytes: u64,
}

/// CLOCK_MONOTONIC in ns: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the kernel to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

fn reports(policy: &GroupPolicy, states: [Option<LimitState>; 2], now: u64) -> Vec<LimitReport> {
    let mut out = Vec::new();
    for (i, name) in ["egress", "ingress"].into_iter().enumerate() {
        let conf = &policy.limits[i];
        if conf.rate == 0 && conf.budget_bytes == 0 {
            continue;
        }
        let budget = (conf.budget_bytes > 0).then(|| {
            let used = states[i]
                .filter(|s| {
                    s.window_start > 0 && now < s.window_start.saturating_add(conf.window_ns)
                })
                .map_or(0, |s| s.window_used);
            BudgetReport {
                bytes: conf.budget_bytes,
                window_secs: conf.window_ns as f64 / 1e9,
                used_bytes: used,
                remaining_bytes: conf.budget_bytes.saturating_sub(used),
            }
        });
        out.push(LimitReport {
            direction: name,
            rate_bytes_per_sec: (conf.rate > 0).then_some(conf.rate),
            budget,
        });
    }
    out
}

/// Every group with a rate limit or budget: cgroup id -> its limits, and the
/// number of entries of `GROUP_RULES`.
pub(super) fn read(rules: &Map, state: &Map) -> Result<BTreeMap<u64, Vec<LimitReport>>, BpfError> {
    let rules: HashMap<&MapData, u64, GroupPolicy> =
        HashMap::try_from(rules).map_err(|source| BpfError::Map {
            map: GROUP_RULES,
            source,
        })?;
    let state: HashMap<&MapData, LimitKey, LimitState> =
        HashMap::try_from(state).map_err(|source| BpfError::Map {
            map: NET_LIMIT_STATE,
            source,
        })?;
    let now = monotonic_ns();
    let mut out = BTreeMap::new();
    for entry in rules.iter() {
        let Ok((id, policy)) = entry else { continue };
        let st = |dir: u32| state.get(&LimitKey::new(id, dir), 0).ok();
        let r = reports(&policy, [st(0), st(1)], now);
        if !r.is_empty() {
            out.insert(id, r);
        }
    }
    Ok(out)
}

impl super::Kernel {
    /// Each rate-limited or budgeted group's limits (cgroup id -> per direction).
    pub fn limits(&self) -> Result<BTreeMap<u64, Vec<LimitReport>>, BpfError> {
        let get = |name: &'static str| self.ebpf.map(name).ok_or(BpfError::MapMissing(name));
        read(get(GROUP_RULES)?, get(NET_LIMIT_STATE)?)
    }
}

/// [`read`] from the maps pinned under `pin_dir`.
pub(super) fn read_pinned(pin_dir: &Path) -> Result<BTreeMap<u64, Vec<LimitReport>>, BpfError> {
    let open = |name: &'static str| -> Result<Map, BpfError> {
        let spec = PINNED_MAPS
            .iter()
            .find(|s| s.name == name)
            .ok_or(BpfError::MapMissing(name))?;
        Map::from_map_data(open_pinned_map(pin_dir, spec)?)
            .map_err(|source| BpfError::Map { map: name, source })
    };
    read(&open(GROUP_RULES)?, &open(NET_LIMIT_STATE)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_left_in_the_current_window_only() {
        let mut p = GroupPolicy::default();
        p.limits[0] = super::super::rules::limit_conf(
            Some(1000),
            super::super::rules::Caps::default(),
            Some((10_000, std::time::Duration::from_secs(60))),
        );
        let st = LimitState {
            window_start: 1_000,
            window_used: 2_500,
            ..Default::default()
        };
        let r = reports(&p, [Some(st), None], 2_000);
        assert_eq!(r.len(), 1, "ingress has no limits");
        assert_eq!(r[0].rate_bytes_per_sec, Some(1000));
        let b = r[0].budget.as_ref().unwrap();
        assert_eq!((b.used_bytes, b.remaining_bytes), (2_500, 7_500));
        assert_eq!(b.window_secs, 60.0);
        // The window is over: the whole budget is there again.
        let r = reports(&p, [Some(st), None], 1_000 + 61_000_000_000);
        assert_eq!(r[0].budget.as_ref().unwrap().remaining_bytes, 10_000);
    }
}
