//! The arbiter: priorities enforced from measured usage and pressure.
//!
//! Every interval it reads each policy group's usage (CPU time, memory,
//! IO bytes, network bytes from the kernel's counters) and pressure (PSI
//! `some` over the interval for CPU, memory and IO; for the network, the
//! share of a level's demand the kernel's shares held back while the node
//! was saturated). Per resource:
//!
//! * **Yield.** When a group is contended (its pressure at or above the
//!   resource's threshold) and a lower-priority group uses the resource,
//!   the lower group yields one step (`cpu.rs`, `memory.rs`, `io.rs`,
//!   `net.rs` say what a step is), every interval the contention lasts,
//!   down to its floors.
//! * **Hold.** While the higher groups' pressure is between half the
//!   threshold and the threshold, nothing moves: that band is the
//!   hysteresis that keeps a yield and a restore from chasing each other.
//! * **Restore.** Once every higher group has been below half the threshold
//!   for `restore_after`: if they are also idle on the resource (work
//!   conservation: nobody needs it), the lower group gets everything back at
//!   once; if they are busy but calm, one step every `probe_after`, taken
//!   again if their pressure returns.
//!
//! The arbiter acts only on the policy's groups (the plan's list is all it
//! knows), never below a floor, never loosens a limit the policy set, never
//! writes `memory.max`. Every change is an audit event ([`Change`]) and is
//! recorded on disk ([`state::Record`]), so a clean stop or a reload
//! ([`Arbiter::undo_all`]) and a restart after a crash ([`state::recover`])
//! put the original values back. The logic runs against the [`Host`] trait,
//! so it is tested without a kernel; [`CgroupHost`] is the real one.

mod cpu;
mod host;
mod io;
mod memory;
mod net;
pub mod pressure;
pub mod state;
mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use cpu::CpuMax;
pub use host::CgroupHost;
pub use state::{Record, recover};

use crate::cgroup::GroupPath;
use crate::plan::{ArbiterPlan, Direction, NetShares, Resource};
use state::{FileChange, GroupRecord, YieldRecord};

/// Cumulative counters of one group at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// PSI `some` totals (µs) of `cpu.pressure`, `memory.pressure` and
    /// `io.pressure`; `None` where the file is missing.
    pub stall_us: [Option<u64>; 3],
    /// CPU time (µs).
    pub cpu_usec: u64,
    /// Memory in use (bytes) and the group's own limit, if any.
    pub memory: u64,
    pub memory_limit: Option<u64>,
    /// Bytes read and written on block devices.
    pub io_bytes: u64,
    /// Bytes sent and received by the group's sockets.
    pub net_bytes: [u64; 2],
}

/// A control file the arbiter turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    /// `cpu.max` (v1: `cpu.cfs_quota_us` with the period it has).
    CpuMax,
    /// `cpu.weight` (v1: `cpu.shares`).
    CpuWeight,
    /// `memory.high` (v1: `memory.soft_limit_in_bytes`).
    MemoryHigh,
    /// `io.weight` (v1: `blkio.weight`; or the BFQ weight).
    IoWeight,
}

/// A knob's value in cgroup v2 units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    CpuMax(CpuMax),
    Weight(u64),
    /// `None`: no limit.
    Bytes(Option<u64>),
}

/// A knob as a file holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub path: PathBuf,
    /// The file's text.
    pub raw: String,
    pub value: Value,
}

/// What the arbiter reads and writes. Errors are messages for the audit log.
pub trait Host {
    /// The group's counters now (zeros for what cannot be read).
    fn read(&mut self, group: &GroupPath, cgroup_id: u64) -> Reading;
    /// Bytes the shares held back at `level` in `dir` so far.
    fn share_drops(&mut self, dir: Direction, level: u32) -> u64;
    /// A knob of the group; an error when the group has no such file here
    /// (it is not in that controller).
    fn get(&mut self, group: &GroupPath, knob: Knob) -> Result<Setting, String>;
    /// Writes a knob; returns it as the file holds it afterwards.
    fn set(&mut self, group: &GroupPath, knob: Knob, value: Value) -> Result<Setting, String>;
    fn read_file(&mut self, path: &Path) -> Result<String, String>;
    fn write_file(&mut self, path: &Path, text: &str) -> Result<(), String>;
    /// Holds the group to `rate` bytes/s in `dir` (`None`: lifts it).
    fn set_yield_rate(
        &mut self,
        cgroup_id: u64,
        dir: Direction,
        rate: Option<u64>,
    ) -> Result<(), String>;
    fn set_shares(&mut self, dir: Direction, shares: &NetShares) -> Result<(), String>;
}

/// Whether a change gives up or gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Yield,
    Restore,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Yield => "yield",
            Phase::Restore => "restore",
        }
    }
}

/// One thing the arbiter did, for the audit log, the log and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub group: String,
    pub resource: Resource,
    pub phase: Phase,
    /// The group yielded to, and its pressure when the step was taken.
    pub cause: Option<String>,
    pub pressure: f64,
    /// What changed, from what to what (`cpu.max max 100000 -> 100000
    /// 100000, cpu.weight 50 -> 25`), or why a restore left a file alone.
    pub detail: String,
    pub result: Result<(), String>,
}

/// What the arbiter holds a group to on one resource, and where it started.
#[derive(Debug, Clone, PartialEq)]
enum Held {
    Cpu {
        max: CpuMax,
        weight: u64,
        original_max: CpuMax,
        original_weight: u64,
    },
    Memory {
        high: u64,
        original: Option<u64>,
    },
    Io {
        weight: u64,
        original: u64,
    },
    Net {
        dir: Direction,
        rate: u64,
    },
}

/// One group yielding one resource.
#[derive(Debug, Clone)]
struct Yield {
    steps: u32,
    /// Index of the group yielded to.
    cause: usize,
    held: Held,
    files: Vec<FileChange>,
    calm_since: Option<Instant>,
    last_change: Instant,
}

/// Derived from two readings: one interval of one group.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// Stalled share of the interval: cpu, memory, io.
    stall: [f64; 3],
    /// CPUs used.
    cpus: f64,
    memory: u64,
    memory_limit: Option<u64>,
    io_per_sec: f64,
    net_per_sec: [f64; 2],
    /// Share of its level's network demand held back, per direction.
    held_back: [f64; 2],
}

/// What the metrics show of the arbiter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// (group, resource, steps, yielded to) of every yield in force.
    pub yields: Vec<(String, &'static str, u32, String)>,
    /// Changes made (yields and restores), since the agent started.
    pub changes: u64,
    /// CPU time the arbiter's ticks took (seconds).
    pub cpu_seconds: f64,
}

/// A group that is "busy" on a resource needs it: at least this many CPUs...
const BUSY_CPUS: f64 = 0.05;
/// ...or this share of the capacity...
const BUSY_NET: f64 = 0.01;
/// ...or (memory, IO) this share of the threshold in pressure.
const BUSY_PRESSURE: f64 = 0.1;
/// A group "uses" the CPU from this many CPUs, and a capacity from
/// [`BUSY_NET`] of it: less is not worth a step.
const USES_CPUS: f64 = 0.01;
/// A group's memory pressure is its own doing when it is this close to its
/// own `memory.max`: others yielding would not relieve it.
const OWN_LIMIT: f64 = 0.9;

/// Bytes held back so far per (direction index, level).
type Drops = BTreeMap<(usize, u32), u64>;

/// What one interval's readings were.
struct Taken {
    at: Instant,
    readings: Vec<Reading>,
    drops: Drops,
}

pub struct Arbiter {
    plan: ArbiterPlan,
    /// cgroup2 id of each plan group.
    ids: Vec<u64>,
    prev: Option<Taken>,
    yields: BTreeMap<(usize, Resource), Yield>,
    /// When each group was last busy on each resource.
    busy: BTreeMap<(usize, Resource), Instant>,
    /// (group, resource) pairs whose knob is missing, said once.
    warned: BTreeSet<(usize, Resource)>,
    record: Option<PathBuf>,
    changes: u64,
    cpu: Duration,
}

fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

fn stall_index(r: Resource) -> Option<usize> {
    match r {
        Resource::Cpu => Some(0),
        Resource::Memory => Some(1),
        Resource::Io => Some(2),
        Resource::Egress | Resource::Ingress => None,
    }
}

/// `20Mbit`, `1.5Gbit`: a rate as tc writes it.
pub fn rate_text(bytes_per_sec: u64) -> String {
    let bits = bytes_per_sec as f64 * 8.0;
    for (unit, scale) in [("Gbit", 1e9), ("Mbit", 1e6), ("Kbit", 1e3)] {
        if bits >= scale {
            let v = bits / scale;
            return if (v - v.round()).abs() < 0.05 {
                format!("{}{unit}", v.round())
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    format!("{bits}bit")
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

impl Arbiter {
    /// An arbiter for `plan`, whose groups have the cgroup2 ids `ids` (same
    /// order), recording what it changes at `record` (none in tests).
    pub fn new(plan: ArbiterPlan, ids: Vec<u64>, record: Option<PathBuf>) -> Self {
        Arbiter {
            plan,
            ids,
            prev: None,
            yields: BTreeMap::new(),
            busy: BTreeMap::new(),
            warned: BTreeSet::new(),
            record,
            changes: 0,
            cpu: Duration::ZERO,
        }
    }

    pub fn plan(&self) -> &ArbiterPlan {
        &self.plan
    }

    pub fn interval(&self) -> Duration {
        self.plan.interval
    }

    fn label(&self, g: usize) -> String {
        self.plan
            .groups
            .get(g)
            .map_or_else(String::new, |g| g.path.as_str().to_string())
    }

    /// The network directions the arbiter manages.
    fn net_dirs(&self) -> Vec<Direction> {
        self.plan
            .resources
            .iter()
            .filter_map(|r| r.direction())
            .filter(|d| self.plan.shares(*d).capacity.is_some())
            .collect()
    }

    fn read_all(&self, host: &mut dyn Host) -> (Vec<Reading>, Drops) {
        let readings = self
            .plan
            .groups
            .iter()
            .zip(&self.ids)
            .map(|(g, id)| host.read(&g.path, *id))
            .collect();
        let mut drops = BTreeMap::new();
        for dir in self.net_dirs() {
            for l in &self.plan.shares(dir).levels {
                drops.insert((dir_index(dir), l.level), host.share_drops(dir, l.level));
            }
        }
        (readings, drops)
    }

    fn samples(
        &self,
        elapsed: Duration,
        before: &[Reading],
        after: &[Reading],
        drops: (&Drops, &Drops),
    ) -> Vec<Sample> {
        let secs = elapsed.as_secs_f64().max(1e-3);
        let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
        let mut samples: Vec<Sample> = before
            .iter()
            .zip(after)
            .map(|(a, b)| {
                let mut s = Sample {
                    cpus: per_sec(a.cpu_usec, b.cpu_usec) / 1e6,
                    memory: b.memory,
                    memory_limit: b.memory_limit,
                    io_per_sec: per_sec(a.io_bytes, b.io_bytes),
                    net_per_sec: [
                        per_sec(a.net_bytes[0], b.net_bytes[0]),
                        per_sec(a.net_bytes[1], b.net_bytes[1]),
                    ],
                    ..Sample::default()
                };
                for i in 0..3 {
                    if let (Some(x), Some(y)) = (a.stall_us[i], b.stall_us[i]) {
                        s.stall[i] = pressure::stalled_share(x, y, elapsed);
                    }
                }
                s
            })
            .collect();
        // A level's held-back share: what its shares dropped over what its
        // groups sent plus that.
        for ((d, level), after_drops) in drops.1 {
            let dropped = per_sec(
                drops.0.get(&(*d, *level)).copied().unwrap_or(0),
                *after_drops,
            );
            let members: Vec<usize> = self
                .plan
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.shares && u32::from(g.priority.level()) == *level)
                .map(|(i, _)| i)
                .collect();
            let sent: f64 = members
                .iter()
                .filter_map(|&i| samples.get(i))
                .map(|s| s.net_per_sec[*d])
                .sum();
            let share = if dropped > 0.0 {
                dropped / (sent + dropped)
            } else {
                0.0
            };
            for i in members {
                if let Some(s) = samples.get_mut(i) {
                    s.held_back[*d] = share;
                }
            }
        }
        samples
    }

    fn pressure(&self, s: &Sample, r: Resource) -> f64 {
        match (stall_index(r), r.direction()) {
            (Some(i), _) => s.stall[i],
            (None, Some(d)) => s.held_back[dir_index(d)],
            (None, None) => 0.0,
        }
    }

    fn capacity(&self, r: Resource) -> f64 {
        r.direction()
            .and_then(|d| self.plan.shares(d).capacity)
            .unwrap_or(0) as f64
    }

    /// Whether the group needs the resource now (for work conservation).
    fn busy(&self, s: &Sample, r: Resource) -> bool {
        match r {
            Resource::Cpu => s.cpus >= BUSY_CPUS,
            Resource::Memory | Resource::Io => {
                self.pressure(s, r) >= self.plan.threshold(r) * BUSY_PRESSURE
            }
            Resource::Egress | Resource::Ingress => {
                let d = r.direction().map_or(0, dir_index);
                s.net_per_sec[d] >= self.capacity(r) * BUSY_NET
            }
        }
    }

    /// Whether the group uses enough of the resource for a step to matter.
    fn uses(&self, s: &Sample, r: Resource) -> bool {
        match r {
            Resource::Cpu => s.cpus >= USES_CPUS,
            Resource::Memory => s.memory > 0,
            Resource::Io => s.io_per_sec > 0.0 || s.stall[2] > 0.0,
            Resource::Egress | Resource::Ingress => self.busy(s, r),
        }
    }

    /// Whether the group is contended on the resource (and others yielding
    /// could relieve it).
    fn contended(&self, s: &Sample, r: Resource) -> bool {
        if r == Resource::Memory
            && s.memory_limit
                .is_some_and(|l| s.memory as f64 >= l as f64 * OWN_LIMIT)
        {
            return false;
        }
        self.pressure(s, r) >= self.plan.threshold(r)
    }

    /// One interval: read, decide, act. Returns what changed.
    pub fn tick(&mut self, now: Instant, host: &mut dyn Host) -> Vec<Change> {
        let started = thread_cpu();
        let out = self.decide(now, host);
        self.cpu += thread_cpu().saturating_sub(started);
        out
    }

    fn decide(&mut self, now: Instant, host: &mut dyn Host) -> Vec<Change> {
        let (readings, drops) = self.read_all(host);
        let taken = Taken {
            at: now,
            readings,
            drops,
        };
        let Some(before) = self.prev.replace(taken) else {
            return Vec::new();
        };
        let Some(after) = self.prev.as_ref() else {
            return Vec::new();
        };
        let samples = self.samples(
            now.saturating_duration_since(before.at),
            &before.readings,
            &after.readings,
            (&before.drops, &after.drops),
        );
        let mut out = Vec::new();
        let resources = self.plan.resources.clone();
        for r in resources {
            if r.direction()
                .is_some_and(|d| self.plan.shares(d).capacity.is_none())
            {
                continue;
            }
            for (g, s) in samples.iter().enumerate() {
                if self.busy(s, r) {
                    self.busy.insert((g, r), now);
                }
            }
            for low in 0..self.plan.groups.len() {
                self.arbitrate(now, host, &samples, low, r, &mut out);
            }
        }
        if !out.is_empty() {
            self.changes += out.len() as u64;
            self.save();
        }
        out
    }

    /// Decides for one group and resource.
    fn arbitrate(
        &mut self,
        now: Instant,
        host: &mut dyn Host,
        samples: &[Sample],
        low: usize,
        r: Resource,
        out: &mut Vec<Change>,
    ) {
        let Some(me) = self.plan.groups.get(low) else {
            return;
        };
        if r.direction().is_some() && !me.shares {
            return;
        }
        let higher: Vec<usize> = self
            .plan
            .groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.priority > me.priority)
            .map(|(i, _)| i)
            .collect();
        if higher.is_empty() {
            return;
        }
        let Some(mine) = samples.get(low) else {
            return;
        };
        // The highest contended group above, the most pressed among equals.
        let cause = higher
            .iter()
            .copied()
            .filter(|&h| samples.get(h).is_some_and(|s| self.contended(s, r)))
            .max_by(|&a, &b| {
                let (ga, gb) = (&self.plan.groups[a], &self.plan.groups[b]);
                ga.priority.cmp(&gb.priority).then(
                    self.pressure(&samples[a], r)
                        .total_cmp(&self.pressure(&samples[b], r)),
                )
            });
        if let Some(h) = cause {
            let pressure = self.pressure(&samples[h], r);
            if let Some(y) = self.yields.get_mut(&(low, r)) {
                y.calm_since = None;
                y.cause = h;
            }
            if self.uses(mine, r)
                && let Some(c) = self.step_down(now, host, low, r, h, pressure, mine)
            {
                out.push(c);
            }
            return;
        }
        let threshold = self.plan.threshold(r);
        let calm = higher.iter().all(|&h| {
            samples
                .get(h)
                .is_none_or(|s| self.pressure(s, r) < threshold / 2.0)
        });
        let idle = higher.iter().all(|&h| {
            self.busy
                .get(&(h, r))
                .is_none_or(|t| now.saturating_duration_since(*t) >= self.plan.restore_after)
        });
        let (restore_after, probe_after) = (self.plan.restore_after, self.plan.probe_after);
        let Some(y) = self.yields.get_mut(&(low, r)) else {
            return;
        };
        if !calm {
            y.calm_since = None;
            return;
        }
        let since = *y.calm_since.get_or_insert(now);
        if now.saturating_duration_since(since) < restore_after {
            return;
        }
        if idle {
            out.push(self.restore(host, low, r));
        } else if now.saturating_duration_since(y.last_change) >= probe_after
            && let Some(c) = self.step_up(now, host, low, r)
        {
            out.push(c);
        }
    }

    /// Gives everything back: each file that still holds what the arbiter
    /// wrote gets its original text; a yield rate is lifted.
    fn restore(&mut self, host: &mut dyn Host, g: usize, r: Resource) -> Change {
        let label = self.label(g);
        let Some(y) = self.yields.remove(&(g, r)) else {
            return Change {
                group: label,
                resource: r,
                phase: Phase::Restore,
                cause: None,
                pressure: 0.0,
                detail: "nothing to restore".into(),
                result: Ok(()),
            };
        };
        let mut details = Vec::new();
        let mut result = Ok(());
        for f in &y.files {
            if f.set == f.original {
                continue;
            }
            let (line, ok) = state::put_back(host, &label, f);
            let line = line
                .strip_prefix(&format!("{label}: "))
                .unwrap_or(&line)
                .to_string();
            if !ok {
                result = Err(line.clone());
            }
            details.push(line);
        }
        if let Held::Net { dir, rate } = y.held {
            let id = self.ids.get(g).copied().unwrap_or(0);
            if let Err(e) = host.set_yield_rate(id, dir, None) {
                result = Err(e);
            }
            details.push(format!("{r} {} -> unlimited", rate_text(rate)));
            if let Err(e) = self.apply_shares(host, dir) {
                result = result.and(Err(e));
            }
        }
        Change {
            group: label,
            resource: r,
            phase: Phase::Restore,
            cause: Some(self.label(y.cause)),
            pressure: 0.0,
            detail: details.join(", "),
            result,
        }
    }

    /// Writes `dir`'s shares as the yields in force make them.
    fn apply_shares(&self, host: &mut dyn Host, dir: Direction) -> Result<(), String> {
        let base = self.plan.shares(dir);
        if base.capacity.is_none() {
            return Ok(());
        }
        let r = if dir == Direction::Egress {
            Resource::Egress
        } else {
            Resource::Ingress
        };
        let mut levels: BTreeMap<u32, net::LevelYield> = BTreeMap::new();
        for (i, g) in self.plan.groups.iter().enumerate() {
            if !g.shares {
                continue;
            }
            let level = u32::from(g.priority.level());
            let entry = levels.entry(level).or_insert(net::LevelYield {
                level,
                steps: 0,
                floors: 0,
            });
            entry.floors += g.floors.rate(dir);
            if let Some(y) = self.yields.get(&(i, r)) {
                entry.steps = entry.steps.max(y.steps);
            }
        }
        let yields: Vec<net::LevelYield> = levels.into_values().collect();
        host.set_shares(dir, &net::adjusted(base, &yields, self.plan.step))
    }

    /// Gives everything back (a clean stop, a reload): every yield restored,
    /// the shares as the policy made them, the record removed.
    pub fn undo_all(&mut self, host: &mut dyn Host) -> Vec<Change> {
        let keys: Vec<(usize, Resource)> = self.yields.keys().copied().collect();
        let out: Vec<Change> = keys
            .into_iter()
            .map(|(g, r)| self.restore(host, g, r))
            .collect();
        for dir in self.net_dirs() {
            if let Err(e) = host.set_shares(dir, self.plan.shares(dir)) {
                tracing::warn!("restoring the {dir:?} shares: {e}");
            }
        }
        self.save();
        out
    }

    /// What is yielded now, as the record on disk says it.
    pub fn record(&self) -> Record {
        let mut record = Record::default();
        for ((g, r), y) in &self.yields {
            let group = record
                .groups
                .entry(self.label(*g))
                .or_insert_with(|| GroupRecord {
                    cgroup_id: self.ids.get(*g).copied().unwrap_or(0),
                    yields: BTreeMap::new(),
                });
            let (now, rate) = match &y.held {
                Held::Cpu { max, weight, .. } => (
                    match max.cpus() {
                        Some(c) => format!("cpu.max {:.0}%, cpu.weight {weight}", c * 100.0),
                        None => format!("cpu.weight {weight}"),
                    },
                    None,
                ),
                Held::Memory { high, .. } => (
                    format!("memory.high {}", crate::units::human_bytes(*high)),
                    None,
                ),
                Held::Io { weight, .. } => (format!("io.weight {weight}"), None),
                Held::Net { rate, .. } => (format!("{r} {}", rate_text(*rate)), Some(*rate)),
            };
            group.yields.insert(
                r.name().to_string(),
                YieldRecord {
                    to: self.label(y.cause),
                    steps: y.steps,
                    now,
                    files: y.files.clone(),
                    rate,
                },
            );
        }
        record
    }

    fn save(&self) {
        if let Some(path) = &self.record
            && let Err(e) = self.record().save(path)
        {
            tracing::warn!(file = %path.display(), "could not record what the arbiter changed: {e}");
        }
    }

    pub fn status(&self) -> Status {
        Status {
            yields: self
                .yields
                .iter()
                .map(|((g, r), y)| (self.label(*g), r.name(), y.steps, self.label(y.cause)))
                .collect(),
            changes: self.changes,
            cpu_seconds: self.cpu.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests;
