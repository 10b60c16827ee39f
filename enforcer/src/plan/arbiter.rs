//! The arbiter's part of the plan: its knobs with their defaults, each
//! policy group's priority and floors, and the node's base network shares.
//! Judged here once for `run`, `reload` and the dry runs: floors that do not
//! fit the host or the capacity are refused with the place they are written.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cgroup::{Cgroups, GroupPath};
use crate::config::{Floors, GroupSpec, Policy};

use super::error::PlanError;
use super::shares::base_shares;
use crate::bpf::NetShares;
use crate::words::Span;
use crate::words::{Direction, Priority, Resource};

/// Defaults of `[arbiter]`, as `docs/policy.md` states them.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(250);
pub const DEFAULT_CPU_PRESSURE: f64 = 0.10;
pub const DEFAULT_MEMORY_PRESSURE: f64 = 0.05;
pub const DEFAULT_IO_PRESSURE: f64 = 0.10;
pub const DEFAULT_NETWORK_PRESSURE: f64 = 0.01;
pub const DEFAULT_STEP: f64 = 0.5;
pub const DEFAULT_MEMORY_STEP: f64 = 0.10;
pub const DEFAULT_RESTORE_AFTER: Duration = Duration::from_secs(1);
pub const DEFAULT_PROBE_AFTER: Duration = Duration::from_secs(10);
/// `min_cpu` when the group sets none: a tenth of a CPU, so a yielding group
/// still makes progress (and releases what it holds that a higher group may
/// wait for).
pub const DEFAULT_MIN_CPU: f64 = 0.10;
/// `min_egress` / `min_ingress` when the group sets none, as a share of the
/// capacity.
pub const DEFAULT_MIN_RATE_SHARE: f64 = 0.01;

/// What the arbiter never takes a group below.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupFloors {
    /// Share of one CPU (1.0 is a whole CPU).
    pub cpu: f64,
    /// Bytes of `memory.high` (0: only the working-set rule).
    pub memory: u64,
    /// `io.weight` (1 to 10000).
    pub io_weight: u64,
    /// Bytes per second, per direction ([`Direction`] order: egress, ingress).
    pub rate: [u64; 2],
}

impl GroupFloors {
    pub fn rate(&self, dir: Direction) -> u64 {
        match dir {
            Direction::Egress => self.rate[0],
            Direction::Ingress => self.rate[1],
        }
    }
}

/// One policy group as the arbiter sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArbitratedGroup {
    /// Below the parent, if there is one: the label of its reports.
    pub path: GroupPath,
    pub priority: Priority,
    pub floors: GroupFloors,
    /// Whether the group is a level in the network shares (a leaf of the
    /// policy: a packet is charged once, to its deepest policy group).
    pub shares: bool,
}

/// The arbiter as the agent runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArbiterPlan {
    pub interval: Duration,
    /// What lower groups yield (the network ones only with a capacity).
    pub resources: Vec<Resource>,
    /// Pressure thresholds, as fractions (0.1 for 10%).
    pub cpu_pressure: f64,
    pub memory_pressure: f64,
    pub io_pressure: f64,
    pub network_pressure: f64,
    /// Fractions taken per step.
    pub step: f64,
    pub memory_step: f64,
    pub restore_after: Duration,
    pub probe_after: Duration,
    /// Online CPUs of the host.
    pub cpus: usize,
    /// Every policy group, in policy order.
    pub groups: Vec<ArbitratedGroup>,
    /// The base shares per direction (egress, ingress), which the arbiter
    /// adjusts while groups yield and restores after.
    pub shares: [NetShares; 2],
}

impl ArbiterPlan {
    /// The threshold of `resource`, as a fraction.
    pub fn threshold(&self, resource: Resource) -> f64 {
        match resource {
            Resource::Cpu => self.cpu_pressure,
            Resource::Memory => self.memory_pressure,
            Resource::Io => self.io_pressure,
            Resource::Egress | Resource::Ingress => self.network_pressure,
        }
    }

    pub fn shares(&self, dir: Direction) -> &NetShares {
        match dir {
            Direction::Egress => &self.shares[0],
            Direction::Ingress => &self.shares[1],
        }
    }
}

/// The shares and the arbiter of a policy whose groups (already below the
/// parent) are `paths`. `shares` is what the kernel enforces whether or not
/// the arbiter runs; the arbiter is `None` without an enabled `[arbiter]`.
pub(super) struct Planned {
    pub(super) shares: [NetShares; 2],
    pub(super) arbiter: Option<ArbiterPlan>,
    /// Per group (policy order): its level in the shares, if it has one.
    pub(super) share_levels: Vec<Option<u32>>,
}

fn capacities(policy: &Policy) -> [Option<(u64, Span)>; 2] {
    let agent = policy.agent.as_ref();
    [
        agent
            .and_then(|a| a.egress_capacity.as_ref())
            .map(|c| (c.value, c.span.clone())),
        agent
            .and_then(|a| a.ingress_capacity.as_ref())
            .map(|c| (c.value, c.span.clone())),
    ]
}

/// Whether another policy group lies below `path`.
fn has_policy_child(path: &GroupPath, all: &[GroupPath]) -> bool {
    let prefix = format!("{}/", path.as_str());
    all.iter().any(|p| p.as_str().starts_with(&prefix))
}

fn floor_rate(floor: &Option<crate::config::Spanned<u64>>, capacity: Option<u64>) -> u64 {
    match (floor, capacity) {
        (Some(f), _) => f.value,
        (None, Some(c)) => ((c as f64) * DEFAULT_MIN_RATE_SHARE).max(1.0) as u64,
        (None, None) => 1,
    }
}

fn group_floors(f: &Floors, caps: [Option<u64>; 2]) -> GroupFloors {
    GroupFloors {
        cpu: f.cpu.as_ref().map_or(DEFAULT_MIN_CPU, |c| c.value / 100.0),
        memory: f.memory.as_ref().map_or(0, |m| m.value),
        io_weight: f.io_weight.as_ref().map_or(1, |w| w.value),
        rate: [
            floor_rate(&f.egress, caps[0]),
            floor_rate(&f.ingress, caps[1]),
        ],
    }
}

/// Checks the floors against this host and the capacities, and plans the
/// shares and the arbiter.
pub(super) fn plan(
    cg: &Cgroups,
    policy: &Policy,
    paths: &[GroupPath],
    warnings: &mut Vec<String>,
) -> Result<Planned, PlanError> {
    let caps = capacities(policy);
    let cap_values = [caps[0].as_ref().map(|c| c.0), caps[1].as_ref().map(|c| c.0)];
    let cpus = cg.facts().online_cpus.len().max(1);
    let arbiter_on = policy
        .arbiter
        .as_ref()
        .is_some_and(|a| a.enabled.as_ref().is_none_or(|e| e.value));
    let mut share_levels = Vec::with_capacity(paths.len());
    // Per direction: the explicit floors of each level, for the base shares.
    let mut level_floors: [BTreeMap<Priority, u64>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for (g, path) in policy.groups.iter().zip(paths) {
        check_floors(g, cpus, arbiter_on, &caps, warnings)?;
        let leaf = !has_policy_child(path, paths);
        let any_capacity = cap_values.iter().any(Option::is_some);
        let level = priority_of(g);
        share_levels.push((leaf && any_capacity).then_some(u32::from(level.level())));
        if leaf {
            for (d, floor) in [&g.floors.egress, &g.floors.ingress]
                .into_iter()
                .enumerate()
            {
                if cap_values[d].is_some() {
                    *level_floors[d].entry(level).or_default() +=
                        floor.as_ref().map_or(0, |f| f.value);
                }
            }
        }
    }
    floors_fit(policy, &caps, &level_floors)?;
    let shares = [
        base_shares(cap_values[0], &level_floors[0]),
        base_shares(cap_values[1], &level_floors[1]),
    ];
    let arbiter = match &policy.arbiter {
        Some(spec) if arbiter_on => {
            let resources = arbiter_resources(spec, &caps)?;
            let levels: std::collections::BTreeSet<Priority> =
                policy.groups.iter().map(priority_of).collect();
            if levels.len() < 2 {
                warnings.push(format!(
                    "{}: every group has the same priority, so no group ever yields to another: \
                     give them different `priority` levels",
                    spec.span
                ));
            }
            let pct = |v: &Option<crate::config::Spanned<f64>>, default: f64| {
                v.as_ref().map_or(default, |v| v.value / 100.0)
            };
            let dur = |v: &Option<crate::config::Spanned<Duration>>, default| {
                v.as_ref().map_or(default, |v| v.value)
            };
            Some(ArbiterPlan {
                interval: dur(&spec.interval, DEFAULT_INTERVAL),
                resources,
                cpu_pressure: pct(&spec.cpu_pressure, DEFAULT_CPU_PRESSURE),
                memory_pressure: pct(&spec.memory_pressure, DEFAULT_MEMORY_PRESSURE),
                io_pressure: pct(&spec.io_pressure, DEFAULT_IO_PRESSURE),
                network_pressure: pct(&spec.network_pressure, DEFAULT_NETWORK_PRESSURE),
                step: pct(&spec.step, DEFAULT_STEP),
                memory_step: pct(&spec.memory_step, DEFAULT_MEMORY_STEP),
                restore_after: dur(&spec.restore_after, DEFAULT_RESTORE_AFTER),
                probe_after: dur(&spec.probe_after, DEFAULT_PROBE_AFTER),
                cpus,
                groups: policy
                    .groups
                    .iter()
                    .zip(paths)
                    .zip(&share_levels)
                    .map(|((g, path), level)| ArbitratedGroup {
                        path: path.clone(),
                        priority: priority_of(g),
                        floors: group_floors(&g.floors, cap_values),
                        shares: level.is_some(),
                    })
                    .collect(),
                shares: shares.clone(),
            })
        }
        _ => None,
    };
    Ok(Planned {
        shares,
        arbiter,
        share_levels,
    })
}

/// Per direction with a capacity: the leaf groups' floors must fit in it;
/// the error points at the last floor written.
fn floors_fit(
    policy: &Policy,
    caps: &[Option<(u64, Span)>; 2],
    level_floors: &[BTreeMap<Priority, u64>; 2],
) -> Result<(), PlanError> {
    for (d, key) in ["min_egress", "min_ingress"].into_iter().enumerate() {
        let Some((capacity, cap_span)) = &caps[d] else {
            continue;
        };
        let total: u64 = level_floors[d].values().sum();
        if total > *capacity {
            let span = policy
                .groups
                .iter()
                .rev()
                .find_map(|g| {
                    if d == 0 {
                        g.floors.egress.as_ref()
                    } else {
                        g.floors.ingress.as_ref()
                    }
                })
                .map_or(cap_span.clone(), |f| f.span.clone());
            return Err(PlanError::Rule {
                span,
                message: format!(
                    "the groups' `{key}` floors add up to {total} bytes/s, more than the node's \
                     capacity of {capacity} bytes/s (at {cap_span}): lower the floors or raise \
                     the capacity"
                ),
            });
        }
    }
    Ok(())
}

/// The resources the arbiter shares: those listed (each network one needs
/// its capacity), or every resource the node can share.
fn arbiter_resources(
    spec: &crate::config::ArbiterSpec,
    caps: &[Option<(u64, Span)>; 2],
) -> Result<Vec<Resource>, PlanError> {
    Ok(match &spec.resources {
        Some(list) => {
            for r in &list.value {
                let needs = match r {
                    Resource::Egress => Some(("egress", 0)),
                    Resource::Ingress => Some(("ingress", 1)),
                    _ => None,
                };
                if let Some((name, d)) = needs
                    && caps[d].is_none()
                {
                    return Err(PlanError::Rule {
                        span: list.span.clone(),
                        message: format!(
                            "`resources` lists `{name}`, but the node has no \
                             `{name}_capacity`: the arbiter shares a capacity it knows; \
                             set `[agent] {name}_capacity` (such as `\"1Gbit\"`) or \
                             remove `{name}`"
                        ),
                    });
                }
            }
            list.value.clone()
        }
        None => Resource::ALL
            .into_iter()
            .filter(|r| match r {
                Resource::Egress => caps[0].is_some(),
                Resource::Ingress => caps[1].is_some(),
                _ => true,
            })
            .collect(),
    })
}

/// A group's priority; `normal` when it sets none.
pub(super) fn priority_of(g: &GroupSpec) -> Priority {
    g.priority.as_ref().map_or(Priority::NORMAL, |p| p.value)
}

fn check_floors(
    g: &GroupSpec,
    cpus: usize,
    arbiter_on: bool,
    caps: &[Option<(u64, Span)>; 2],
    warnings: &mut Vec<String>,
) -> Result<(), PlanError> {
    let f = &g.floors;
    if let Some(c) = &f.cpu
        && c.value > 100.0 * cpus as f64
    {
        return Err(PlanError::Rule {
            span: c.span.clone(),
            message: format!(
                "`min_cpu = \"{}%\"` is more than this host's {cpus} CPUs ({}%): write at most \
                 that",
                c.value,
                100 * cpus
            ),
        });
    }
    if !arbiter_on {
        let spans = [
            ("min_cpu", f.cpu.as_ref().map(|v| &v.span)),
            ("min_memory", f.memory.as_ref().map(|v| &v.span)),
            ("min_io_weight", f.io_weight.as_ref().map(|v| &v.span)),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                warnings.push(format!(
                    "{span}: `{key}` has no effect without the arbiter: add an `[arbiter]` table \
                     (or remove `{key}`)"
                ));
            }
        }
    }
    for (d, (key, floor)) in [("min_egress", &f.egress), ("min_ingress", &f.ingress)]
        .into_iter()
        .enumerate()
    {
        if let Some(floor) = floor
            && caps[d].is_none()
        {
            let cap = if d == 0 {
                "egress_capacity"
            } else {
                "ingress_capacity"
            };
            warnings.push(format!(
                "{}: `{key}` has no effect without `[agent] {cap}`: the floor is a share of the \
                 node's capacity; set the capacity (or remove `{key}`)",
                floor.span
            ));
        }
    }
    Ok(())
}
