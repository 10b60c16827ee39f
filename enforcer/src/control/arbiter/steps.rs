//! One step of a yield, down or back up: the same mechanism run in two
//! directions. Each direction computes the next [`Held`] from the current
//! one with its resource's rule (`cpu`, `memory`, `io`, `net`), then
//! [`Arbiter::write_held`] writes it, the same way whichever way it went.

use std::time::Instant;

use super::{
    Arbiter, Change, Direction, FileChange, Held, Host, Knob, Phase, Resource, Sample, Setting,
    Value, Yield, cpu, dir_index, io, memory, net, rate_text,
};
use crate::cgroup::GroupPath;

impl Arbiter {
    /// One step down for group `g` on `r`, yielding to `cause`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step_down(
        &mut self,
        now: Instant,
        host: &mut dyn Host,
        g: usize,
        r: Resource,
        cause: usize,
        pressure: f64,
        s: &Sample,
    ) -> Option<Change> {
        let (held, mut files) = match self.yields.get(&(g, r)) {
            Some(y) => (y.held.clone(), y.files.clone()),
            None => match self.first_held(host, g, r) {
                Ok(first) => first,
                Err(change) => return change,
            },
        };
        let before = self.yields.contains_key(&(g, r)).then_some(&held);
        let next = self.lowered(g, before, &held, s)?;
        let mut details = Vec::new();
        let result = self.write_held(host, g, r, before, &next, &mut files, &mut details);
        let steps = self.yields.get(&(g, r)).map_or(0, |y| y.steps) + 1;
        self.yields.insert(
            (g, r),
            Yield {
                steps,
                cause,
                held: next,
                files,
                calm_since: None,
                last_change: now,
            },
        );
        Some(self.stepped(host, g, r, (Phase::Yield, cause, pressure), details, result))
    }

    /// One step back up; the whole way when the next step reaches the
    /// originals.
    pub(super) fn step_up(
        &mut self,
        now: Instant,
        host: &mut dyn Host,
        g: usize,
        r: Resource,
    ) -> Option<Change> {
        let y = self.yields.get(&(g, r))?.clone();
        let Some(next) = self.raised(&y.held) else {
            return Some(self.restore(host, g, r));
        };
        let mut files = y.files.clone();
        let mut details = Vec::new();
        let result = self.write_held(host, g, r, Some(&y.held), &next, &mut files, &mut details);
        if let Some(slot) = self.yields.get_mut(&(g, r)) {
            slot.steps = slot.steps.saturating_sub(1).max(1);
            slot.held = next;
            slot.files = files;
            slot.last_change = now;
        }
        Some(self.stepped(host, g, r, (Phase::Restore, y.cause, 0.0), details, result))
    }

    /// The change a step made, once the shares follow a network yield;
    /// `why` is the phase, the group yielded to and the pressure seen.
    fn stepped(
        &self,
        host: &mut dyn Host,
        g: usize,
        r: Resource,
        (phase, cause, pressure): (Phase, usize, f64),
        details: Vec<String>,
        mut result: Result<(), String>,
    ) -> Change {
        if let Some(dir) = r.direction()
            && let Err(e) = self.apply_shares(host, dir)
        {
            result = result.and(Err(e));
        }
        Change {
            group: self.plan.groups[g].path.as_str().to_string(),
            resource: r,
            phase,
            cause: Some(self.label(cause)),
            pressure,
            detail: details.join(", "),
            result,
        }
    }

    /// What group `g` holds after one step down from `held`; `before` is
    /// `held` when it already yields (else this is its first step, from
    /// what it had). None when its floor allows no step.
    fn lowered(&self, g: usize, before: Option<&Held>, held: &Held, s: &Sample) -> Option<Held> {
        let step = self.plan.step;
        let floors = self.plan.groups[g].floors;
        Some(match *held {
            Held::Cpu {
                max,
                weight,
                original_max,
                original_weight,
            } => {
                let (max, weight) = cpu::step_down(max, s.cpus, floors.cpu, weight, step)?;
                Held::Cpu {
                    max,
                    weight,
                    original_max,
                    original_weight,
                }
            }
            Held::Memory { high, original } => {
                let current = if before.is_some() {
                    Some(high)
                } else {
                    original
                };
                let high =
                    memory::step_down(current, s.memory, floors.memory, self.plan.memory_step)?;
                Held::Memory { high, original }
            }
            Held::Io { weight, original } => Held::Io {
                weight: io::step_down(weight, floors.io_weight, step)?,
                original,
            },
            Held::Net { dir, rate } => {
                let current = before.is_some().then_some(rate);
                let used = s.net_per_sec[dir_index(dir)];
                Held::Net {
                    dir,
                    rate: net::step_down(current, used, floors.rate(dir), step)?,
                }
            }
        })
    }

    /// What a yielding group holds after one step back up from `held`; None
    /// when that step reaches what it had (the whole way back: a restore).
    fn raised(&self, held: &Held) -> Option<Held> {
        let step = self.plan.step;
        Some(match *held {
            Held::Cpu {
                max,
                weight,
                original_max,
                original_weight,
            } => {
                let (max, weight) = cpu::step_up(
                    max,
                    original_max,
                    weight,
                    original_weight,
                    step,
                    self.plan.cpus,
                )?;
                Held::Cpu {
                    max,
                    weight,
                    original_max,
                    original_weight,
                }
            }
            Held::Memory { high, original } => Held::Memory {
                high: memory::step_up(high, original, self.plan.memory_step)?,
                original,
            },
            Held::Io { weight, original } => Held::Io {
                weight: io::step_up(weight, original, step)?,
                original,
            },
            Held::Net { dir, rate } => {
                let ceiling = self.plan.shares(dir).capacity.unwrap_or(u64::MAX);
                Held::Net {
                    dir,
                    rate: net::step_up(rate, ceiling, step)?,
                }
            }
        })
    }

    /// Writes what `next` holds group `g` to, noting each change in
    /// `details` (`file from -> to`, or the yield rate's from -> to, from
    /// `before`'s rate or unlimited).
    #[allow(clippy::too_many_arguments)]
    fn write_held(
        &self,
        host: &mut dyn Host,
        g: usize,
        r: Resource,
        before: Option<&Held>,
        next: &Held,
        files: &mut [FileChange],
        details: &mut Vec<String>,
    ) -> Result<(), String> {
        let path = &self.plan.groups[g].path;
        match *next {
            Held::Cpu { max, weight, .. } => {
                let max = self.write(host, path, Knob::CpuMax, Value::CpuMax(max), files, details);
                let weight = self.write(
                    host,
                    path,
                    Knob::CpuWeight,
                    Value::Weight(weight),
                    files,
                    details,
                );
                max.and(weight)
            }
            Held::Memory { high, .. } => self.write(
                host,
                path,
                Knob::MemoryHigh,
                Value::Bytes(Some(high)),
                files,
                details,
            ),
            Held::Io { weight, .. } => self.write(
                host,
                path,
                Knob::IoWeight,
                Value::Weight(weight),
                files,
                details,
            ),
            Held::Net { dir, rate } => {
                let id = self.ids.get(g).copied().unwrap_or(0);
                let result = host.set_yield_rate(id, dir, Some(rate));
                let from = match before {
                    Some(Held::Net { rate: from, .. }) => rate_text(*from),
                    _ => "unlimited".to_string(),
                };
                details.push(format!("{r} {from} -> {}", rate_text(rate)));
                result
            }
        }
    }

    /// Reads a knob for a first step; says once (as a failed change) when the
    /// group has none here.
    fn original(
        &mut self,
        host: &mut dyn Host,
        g: usize,
        r: Resource,
        knob: Knob,
    ) -> Result<Setting, Option<Change>> {
        let path = self.plan.groups[g].path.clone();
        host.get(&path, knob).map_err(|e| {
            self.warned.insert((g, r)).then(|| Change {
                group: path.as_str().to_string(),
                resource: r,
                phase: Phase::Yield,
                cause: None,
                pressure: 0.0,
                detail: format!("cannot yield {r}"),
                result: Err(e),
            })
        })
    }

    /// What the group holds before its first step on `r`, and the files
    /// that will change (nothing written yet).
    fn first_held(
        &mut self,
        host: &mut dyn Host,
        g: usize,
        r: Resource,
    ) -> Result<(Held, Vec<FileChange>), Option<Change>> {
        let file = |s: &Setting| FileChange {
            path: s.path.clone(),
            original: s.raw.clone(),
            set: s.raw.clone(),
        };
        Ok(match r {
            Resource::Cpu => {
                let max = self.original(host, g, r, Knob::CpuMax)?;
                let weight = self.original(host, g, r, Knob::CpuWeight)?;
                let (Value::CpuMax(m), Value::Weight(w)) = (max.value, weight.value) else {
                    return Err(None);
                };
                (
                    Held::Cpu {
                        max: m,
                        weight: w,
                        original_max: m,
                        original_weight: w,
                    },
                    vec![file(&max), file(&weight)],
                )
            }
            Resource::Memory => {
                let high = self.original(host, g, r, Knob::MemoryHigh)?;
                let Value::Bytes(b) = high.value else {
                    return Err(None);
                };
                (
                    Held::Memory {
                        high: b.unwrap_or(u64::MAX),
                        original: b,
                    },
                    vec![file(&high)],
                )
            }
            Resource::Io => {
                let weight = self.original(host, g, r, Knob::IoWeight)?;
                let Value::Weight(w) = weight.value else {
                    return Err(None);
                };
                (
                    Held::Io {
                        weight: w,
                        original: w,
                    },
                    vec![file(&weight)],
                )
            }
            Resource::Egress | Resource::Ingress => {
                let dir = r.direction().unwrap_or(Direction::Egress);
                (
                    Held::Net {
                        dir,
                        rate: u64::MAX,
                    },
                    Vec::new(),
                )
            }
        })
    }

    /// Writes a knob, noting `file from -> to` and the text read back.
    fn write(
        &self,
        host: &mut dyn Host,
        path: &GroupPath,
        knob: Knob,
        value: Value,
        files: &mut [FileChange],
        details: &mut Vec<String>,
    ) -> Result<(), String> {
        let written = host.set(path, knob, value)?;
        if let Some(f) = files.iter_mut().find(|f| f.path == written.path) {
            let name = f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            details.push(format!("{name} {} -> {}", f.set, written.raw));
            f.set = written.raw;
        }
        Ok(())
    }
}
