//! The arbiter's [`Host`] on a real machine: usage and pressure from
//! cgroupfs and the kernel's counters, knobs written through the file this
//! host has for them (cgroup v2 or v1, found by controller as everything
//! else in enforcer is), yields and shares through the [`Kernel`].
//!
//! Values cross this boundary in cgroup v2 units (a `cpu.weight`, an
//! `io.weight`, `cpu.max`), converted for v1 files with the same conversions
//! `set` uses; the files' own text is what gets saved and restored, so a
//! restore is exact whatever the conversion loses.

use std::path::{Path, PathBuf};

use super::cpu::CpuMax;
use super::{Host, Knob, Reading, Setting, Value};
use crate::bpf::Kernel;
use crate::cgroup::keys::{
    blkio_to_io_weight, io_to_bfq_weight, io_to_blkio_weight, shares_to_weight, weight_to_shares,
};
use crate::cgroup::{Cgroups, GroupPath, PsiResource, Version};
use crate::plan::{Direction, NetShares};

/// v1 reports "no limit" as the largest page-aligned signed value.
const V1_UNLIMITED: u64 = 1 << 62;

pub struct CgroupHost<'a> {
    pub cg: &'a Cgroups,
    pub kernel: &'a mut Kernel,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("reading {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {text:?} to {}: {e}", path.display()))
}

/// `default 100` (io.weight, BFQ weights) or `100`.
fn weight_in(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("default "))
        .unwrap_or(text)
        .trim()
        .parse()
        .ok()
}

/// BFQ's weight [1, 1000] onto io.weight's [1, 10000], the inverse of
/// systemd's mapping (1..100 unchanged, 100..1000 onto 100..10000).
fn bfq_to_io_weight(w: u64) -> u64 {
    if w <= 100 {
        w.max(1)
    } else {
        100 + (w.min(1000) - 100) * 9900 / 900
    }
}

impl CgroupHost<'_> {
    /// The group's directory in the hierarchy of `controller`, and its
    /// version; an error naming what is missing when the group is not in
    /// that controller here.
    fn dir_of(&self, group: &GroupPath, controller: &str) -> Result<(PathBuf, Version), String> {
        let (h, _) = self
            .cg
            .locate(controller)
            .map_err(|e| format!("no {controller} controller: {e}"))?;
        if !self.cg.exists(h, group) {
            return Err(format!(
                "{group} is not in the {} hierarchy (create it there: `controllers = \
                 [\"{controller}\"]`)",
                self.cg.hierarchy(h).label()
            ));
        }
        Ok((self.cg.dir(h, group), self.cg.hierarchy(h).version))
    }

    /// The first of `files` the directory has.
    fn first(dir: &Path, files: &[&str]) -> Result<PathBuf, String> {
        files
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("{} has none of {}", dir.display(), files.join(", ")))
    }

    fn io_file(&self, group: &GroupPath) -> Result<(PathBuf, Version), String> {
        let (dir, version) = self.dir_of(group, "io")?;
        let files: &[&str] = match version {
            Version::V2 => &["io.weight", "io.bfq.weight"],
            Version::V1 => &["blkio.weight", "blkio.bfq.weight"],
        };
        Ok((Self::first(&dir, files)?, version))
    }
}

impl Host for CgroupHost<'_> {
    fn read(&mut self, group: &GroupPath, cgroup_id: u64) -> Reading {
        let mut r = Reading::default();
        for (slot, resource) in
            r.stall_us
                .iter_mut()
                .zip([PsiResource::Cpu, PsiResource::Memory, PsiResource::Io])
        {
            *slot = self.cg.pressure(group, resource).map(|p| p.some_total);
        }
        // Measured on cgroup2 only, as its pressure is.
        if self.cg.v2().is_some() {
            r.cpu_usec = self.cg.cpu_usage_usec(group).unwrap_or(0);
        }
        r.io_bytes = self.cg.io_bytes(group);
        if let Some(m) = self.cg.memory_of(group) {
            r.memory = m.usage_bytes;
            r.memory_limit = m.limit_bytes;
        }
        if let Ok((e, i)) = self.kernel.net_bytes(cgroup_id) {
            r.net_bytes = [e, i];
        }
        r
    }

    fn share_drops(&mut self, dir: Direction, level: u32) -> u64 {
        self.kernel
            .share_drops(dir, level)
            .map_or(0, |(bytes, _)| bytes)
    }

    fn get(&mut self, group: &GroupPath, knob: Knob) -> Result<Setting, String> {
        match knob {
            Knob::CpuMax => {
                let (dir, version) = self.dir_of(group, "cpu")?;
                match version {
                    Version::V2 => {
                        let path = dir.join("cpu.max");
                        let raw = read(&path)?;
                        let max = CpuMax::parse_v2(&raw)
                            .ok_or_else(|| format!("{} holds {raw:?}", path.display()))?;
                        Ok(Setting {
                            path,
                            raw,
                            value: Value::CpuMax(max),
                        })
                    }
                    Version::V1 => {
                        let path = dir.join("cpu.cfs_quota_us");
                        let raw = read(&path)?;
                        let period = read(&dir.join("cpu.cfs_period_us"))?
                            .parse()
                            .map_err(|e| format!("cpu.cfs_period_us of {group}: {e}"))?;
                        let quota = match raw.parse::<i64>() {
                            Ok(q) if q < 0 => None,
                            Ok(q) => Some(q as u64),
                            Err(e) => return Err(format!("{} holds {raw:?}: {e}", path.display())),
                        };
                        Ok(Setting {
                            path,
                            raw,
                            value: Value::CpuMax(CpuMax { quota, period }),
                        })
                    }
                }
            }
            Knob::CpuWeight => {
                let (dir, version) = self.dir_of(group, "cpu")?;
                let (path, to_v2): (PathBuf, fn(u64) -> u64) = match version {
                    Version::V2 => (dir.join("cpu.weight"), |w| w),
                    Version::V1 => (dir.join("cpu.shares"), shares_to_weight),
                };
                let raw = read(&path)?;
                let n: u64 = raw
                    .parse()
                    .map_err(|e| format!("{} holds {raw:?}: {e}", path.display()))?;
                Ok(Setting {
                    path,
                    raw,
                    value: Value::Weight(to_v2(n)),
                })
            }
            Knob::MemoryHigh => {
                let (dir, version) = self.dir_of(group, "memory")?;
                let path = match version {
                    Version::V2 => dir.join("memory.high"),
                    Version::V1 => dir.join("memory.soft_limit_in_bytes"),
                };
                let raw = read(&path)?;
                let bytes = match raw.as_str() {
                    "max" => None,
                    n => Some(
                        n.parse::<u64>()
                            .map_err(|e| format!("{} holds {raw:?}: {e}", path.display()))?,
                    )
                    .filter(|&b| b < V1_UNLIMITED),
                };
                Ok(Setting {
                    path,
                    raw,
                    value: Value::Bytes(bytes),
                })
            }
            Knob::IoWeight => {
                let (path, _) = self.io_file(group)?;
                let raw = read(&path)?;
                let w =
                    weight_in(&raw).ok_or_else(|| format!("{} holds {raw:?}", path.display()))?;
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let v2 = match name {
                    "io.weight" => w,
                    "blkio.weight" => blkio_to_io_weight(w),
                    _ => bfq_to_io_weight(w),
                };
                Ok(Setting {
                    path,
                    raw,
                    value: Value::Weight(v2),
                })
            }
        }
    }

    fn set(&mut self, group: &GroupPath, knob: Knob, value: Value) -> Result<Setting, String> {
        let current = self.get(group, knob)?;
        let path = current.path.clone();
        let text = match (knob, value) {
            (Knob::CpuMax, Value::CpuMax(max)) => {
                if path.ends_with("cpu.max") {
                    max.to_v2()
                } else {
                    max.quota.map_or("-1".to_string(), |q| q.to_string())
                }
            }
            (Knob::CpuWeight, Value::Weight(w)) => {
                if path.ends_with("cpu.shares") {
                    weight_to_shares(w).to_string()
                } else {
                    w.clamp(1, 10_000).to_string()
                }
            }
            (Knob::MemoryHigh, Value::Bytes(b)) => match (b, path.ends_with("memory.high")) {
                (Some(b), _) => b.to_string(),
                (None, true) => "max".to_string(),
                (None, false) => "-1".to_string(),
            },
            (Knob::IoWeight, Value::Weight(w)) => {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                match name {
                    "io.weight" => format!("default {}", w.clamp(1, 10_000)),
                    "blkio.weight" => io_to_blkio_weight(w).to_string(),
                    "io.bfq.weight" => format!("default {}", io_to_bfq_weight(w)),
                    _ => io_to_bfq_weight(w).to_string(),
                }
            }
            (knob, value) => return Err(format!("{value:?} is no value for {knob:?}")),
        };
        write(&path, &text)?;
        self.get(group, knob)
    }

    fn read_file(&mut self, path: &Path) -> Result<String, String> {
        read(path)
    }

    fn write_file(&mut self, path: &Path, text: &str) -> Result<(), String> {
        write(path, text)
    }

    fn set_yield_rate(
        &mut self,
        cgroup_id: u64,
        dir: Direction,
        rate: Option<u64>,
    ) -> Result<(), String> {
        self.kernel
            .set_yield_rate(cgroup_id, dir, rate)
            .map_err(|e| e.to_string())
    }

    fn set_shares(&mut self, dir: Direction, shares: &NetShares) -> Result<(), String> {
        self.kernel
            .set_shares(dir, shares)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_formats() {
        assert_eq!(weight_in("default 100\n8:0 50"), Some(100));
        assert_eq!(weight_in("500"), Some(500));
        assert_eq!(weight_in("x"), None);
        assert_eq!(bfq_to_io_weight(100), 100);
        assert_eq!(bfq_to_io_weight(1000), 10_000);
        assert_eq!(io_to_bfq_weight(bfq_to_io_weight(550)), 550);
    }
}
