//! libcgroup's own v1 <-> v2 setting conversions (`abstraction-map.c`,
//! `abstraction-cpu.c`, `abstraction-cpuset.c` of libcgroup 3.2), used by
//! `cgxget` and `cgxset` only.
//!
//! They differ from the conversions of enforcer's native verbs on purpose:
//! libcgroup scales `cpu.shares` to `cpu.weight` around the defaults
//! (`weight = shares * 100 / 1024`, so 1024 -> 100 and 512 -> 50), while the
//! native verbs use runc's and systemd's mapping of the whole ranges
//! (`weight = 1 + (shares - 2) * 9999 / 262142`, so 1024 -> 39). A script
//! written against `cgxset` gets libcgroup's numbers; `enforcer set` keeps
//! the container runtimes' ones.

use crate::cgroup::lcg::fs::read_value_lines;
use crate::cgroup::lcg::model::{Controller, Value};
use crate::cgroup::lcg::table::CGRP_PSEUDO;
use crate::cgroup::lcg::{CgVersion, Ecg, Group, LcgError, Table};

/// One row of a conversion table.
struct Row {
    from: &'static str,
    to: &'static str,
    how: How,
}

#[derive(Clone, Copy)]
enum How {
    /// Scale an integer from the input default to the output default.
    Int {
        from_default: i64,
        to_default: i64,
    },
    QuotaToMax,
    PeriodToMax,
    MaxToQuota,
    MaxToPeriod,
    /// Same value under another name.
    Name,
    CpusetToPartition,
    PartitionToExclusive,
    Unmappable,
}

const fn row(from: &'static str, to: &'static str, how: How) -> Row {
    Row { from, to, how }
}

const V1_TO_V2: &[Row] = &[
    row(
        "cpu.shares",
        "cpu.weight",
        How::Int {
            from_default: 1024,
            to_default: 100,
        },
    ),
    row("cpu.cfs_quota_us", "cpu.max", How::QuotaToMax),
    row("cpu.cfs_period_us", "cpu.max", How::PeriodToMax),
    row("cpu.stat", "cpu.stat", How::Unmappable),
    row("cpuset.effective_cpus", "cpuset.cpus.effective", How::Name),
    row("cpuset.effective_mems", "cpuset.mems.effective", How::Name),
    row("cpuset.cpus", "cpuset.cpus", How::Name),
    row("cpuset.mems", "cpuset.mems", How::Name),
    row(
        "cpuset.cpu_exclusive",
        "cpuset.cpus.partition",
        How::CpusetToPartition,
    ),
    row("cpuset.mem_exclusive", "", How::Unmappable),
    row("cpuset.mem_hardwall", "", How::Unmappable),
    row("cpuset.memory_migrate", "", How::Unmappable),
    row("cpuset.memory_pressure", "", How::Unmappable),
    row("cpuset.mem_pressure_enabled", "", How::Unmappable),
    row("cpuset.memory_spread_page", "", How::Unmappable),
    row("cpuset.memory_spread_slab", "", How::Unmappable),
    row("cpuset.sched_load_balance", "", How::Unmappable),
    row("cpuset.sched_relax_domain_level", "", How::Unmappable),
];

const V2_TO_V1: &[Row] = &[
    row(
        "cpu.weight",
        "cpu.shares",
        How::Int {
            from_default: 100,
            to_default: 1024,
        },
    ),
    row("cpu.max", "cpu.cfs_quota_us", How::MaxToQuota),
    row("cpu.max", "cpu.cfs_period_us", How::MaxToPeriod),
    row("cpu.stat", "cpu.stat", How::Unmappable),
    row("cpuset.cpus.effective", "cpuset.effective_cpus", How::Name),
    row("cpuset.mems.effective", "cpuset.effective_mems", How::Name),
    row("cpuset.cpus", "cpuset.cpus", How::Name),
    row("cpuset.mems", "cpuset.mems", How::Name),
    row(
        "cpuset.cpus.partition",
        "cpuset.cpu_exclusive",
        How::PartitionToExclusive,
    ),
];

/// libcgroup's `cpu.shares` -> `cpu.weight` (and back): scaled around the
/// defaults with C's truncating integer arithmetic.
pub(crate) fn scale(value: i64, from_default: i64, to_default: i64) -> i64 {
    value.wrapping_mul(to_default) / from_default
}

/// `cgroup_strtol` for the integer conversions: a number must start the text.
fn strtol(s: &str) -> Result<i64, LcgError> {
    let t = s.trim_start();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().map_err(|_| LcgError::new(Ecg::Fail))
}

/// The first line of `cpu.max` of the group on disk, split in two.
fn cpu_max(table: &Table, group: &str) -> Result<(String, Option<String>), LcgError> {
    let (line, _) = read_value_lines(table, group, "cpu", "cpu.max")?;
    let mut it = line.split(' ').filter(|t| !t.is_empty());
    let quota = it.next().unwrap_or("").to_string();
    Ok((quota, it.next().map(str::to_string)))
}

fn add(
    out: &mut Controller,
    name: &str,
    value: Option<&str>,
    prev: Option<&str>,
) -> Result<(), LcgError> {
    out.add_value(name, value)?;
    if let (Some(p), Some(v)) = (prev, out.values.last_mut()) {
        v.prev_name = Some(p.to_string());
    }
    Ok(())
}

fn apply(
    how: How,
    table: &Table,
    group: &str,
    out: &mut Controller,
    input: &Value,
    to: &str,
) -> Result<(), LcgError> {
    let v = input.value.as_str();
    match how {
        How::Unmappable => Err(LcgError::new(Ecg::NoVersionConvert)),
        How::Name => add(out, to, Some(v), None),
        How::Int {
            from_default,
            to_default,
        } => {
            if v.is_empty() {
                return add(out, to, None, None);
            }
            let n = scale(strtol(v)?, from_default, to_default);
            add(out, to, Some(&n.to_string()), None)
        }
        How::QuotaToMax | How::PeriodToMax => {
            let quota_side = matches!(how, How::QuotaToMax);
            let prev = if quota_side {
                "cpu.cfs_quota_us"
            } else {
                "cpu.cfs_period_us"
            };
            if v.is_empty() {
                return add(out, to, None, Some(prev));
            }
            let (quota, period) = cpu_max(table, group)?;
            let given = if v == "-1" { "max" } else { v };
            let line = if quota_side {
                format!("{given} {}", period.unwrap_or_else(|| "(null)".into()))
            } else {
                format!("{quota} {given}")
            };
            add(out, to, Some(&line), Some(prev))
        }
        How::MaxToQuota => {
            if v.is_empty() {
                return add(out, to, None, None);
            }
            let first = v.split(' ').find(|t| !t.is_empty()).unwrap_or("");
            add(
                out,
                to,
                Some(if first == "max" { "-1" } else { first }),
                None,
            )
        }
        How::MaxToPeriod => {
            if v.is_empty() {
                return add(out, to, None, None);
            }
            let second = v.split(' ').filter(|t| !t.is_empty()).nth(1);
            add(out, to, second, None)
        }
        How::CpusetToPartition => add(
            out,
            to,
            Some(if v == "1" { "root" } else { "member" }),
            None,
        ),
        How::PartitionToExclusive => add(out, to, Some(if v == "root" { "1" } else { "0" }), None),
    }
}

/// `cgroup_convert_cpu_nto1`: quota and period together become one `cpu.max`.
fn cpu_nto1(out: &mut Controller, input: &mut Controller) -> Result<(), LcgError> {
    let quota = input.value("cpu.cfs_quota_us").map(|v| v.value.clone());
    let period = input.value("cpu.cfs_period_us").map(|v| v.value.clone());
    if let (Some(q), Some(p)) = (quota, period) {
        let q = if q == "-1" { "max".to_string() } else { q };
        out.add_value("cpu.max", Some(&format!("{q} {p}")))?;
        input
            .values
            .retain(|v| v.name != "cpu.cfs_quota_us" && v.name != "cpu.cfs_period_us");
    }
    Ok(())
}

/// `convert_controller`: Ok(true) when some setting was unmappable.
fn convert_controller(
    table: &Table,
    group: &str,
    out: &mut Controller,
    input: &Controller,
) -> Result<bool, LcgError> {
    if input.version == out.version {
        for v in &input.values {
            let mut c = v.clone();
            c.dirty = true;
            out.values.push(c);
        }
        return Ok(false);
    }
    let mut input = input.clone();
    if input.name == "cpu" {
        cpu_nto1(out, &mut input)?;
    }
    let rows = match out.version {
        CgVersion::V1 => V2_TO_V1,
        CgVersion::V2 => V1_TO_V2,
    };
    let mut unmappable = false;
    for v in &input.values {
        let mut r: Result<(), LcgError> = Err(LcgError::new(Ecg::Inval));
        for row in rows {
            if row.from == v.name && v.prev_name.as_deref().is_none_or(|p| p == row.to) {
                r = apply(row.how, table, group, out, v, row.to);
                if r.is_err() {
                    break;
                }
            }
        }
        match r {
            Err(e) if e.code == Ecg::NoVersionConvert => unmappable = true,
            Err(e) => return Err(e),
            Ok(()) => {}
        }
    }
    Ok(unmappable)
}

/// `cgroup_convert_cgroup`: `out_version` None means each controller's
/// version on this host; `in_version` overrides the input's versions.
fn convert_group(
    table: &Table,
    input: &Group,
    in_version: Option<CgVersion>,
    out_version: Option<CgVersion>,
) -> (Group, Result<(), LcgError>) {
    let mut out = Group::new(&input.name);
    let mut unmappable = false;
    for c in &input.controllers {
        let mut cin = c.clone();
        if let Some(v) = in_version {
            cin.version = v;
        }
        let version = if c.name == CGRP_PSEUDO {
            CgVersion::V2
        } else if let Some(v) = out_version {
            v
        } else {
            match table.get(&c.name) {
                Some(e) => e.version,
                None => return (out, Err(LcgError::new(Ecg::NotExist))),
            }
        };
        if out.add_controller(table, &c.name).is_none() {
            return (out, Err(LcgError::new(Ecg::Fail)));
        }
        let Some(mut cout) = out.controllers.pop() else {
            return (out, Err(LcgError::new(Ecg::Fail)));
        };
        cout.version = version;
        match convert_controller(table, &input.name, &mut cout, &cin) {
            Ok(false) => out.controllers.push(cout),
            Ok(true) => {
                unmappable = true;
                if !cout.values.is_empty() {
                    out.controllers.push(cout);
                }
            }
            Err(e) => {
                out.controllers.push(cout);
                return (out, Err(e));
            }
        }
    }
    let r = if unmappable {
        Err(LcgError::new(Ecg::NoVersionConvert))
    } else {
        Ok(())
    };
    (out, r)
}

/// The request in `version` (None: as the host has it) turned into the
/// host's settings. The groups come back even when some setting was
/// unmappable (ECGNOVERSIONCONVERT), without that setting.
pub(crate) fn to_disk(
    table: &Table,
    list: &[Group],
    version: Option<CgVersion>,
) -> (Vec<Group>, Result<(), LcgError>) {
    let mut out = Vec::new();
    for g in list {
        let (c, r) = convert_group(table, g, version, None);
        out.push(c);
        // libcgroup stops at the first group with an error, unmappable or not.
        if let Err(e) = r {
            return (out, Err(e));
        }
    }
    (out, Ok(()))
}

/// Values read from the host turned back into `version`.
pub(crate) fn from_disk(
    table: &Table,
    list: &[Group],
    version: Option<CgVersion>,
) -> Result<Vec<Group>, LcgError> {
    let mut out = Vec::new();
    for g in list {
        let (c, r) = convert_group(table, g, None, version);
        r?;
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_weight_scale_around_the_defaults() {
        assert_eq!(scale(1024, 1024, 100), 100);
        assert_eq!(scale(512, 1024, 100), 50);
        assert_eq!(scale(2, 1024, 100), 0);
        assert_eq!(scale(262_144, 1024, 100), 25_600);
        assert_eq!(scale(100, 100, 1024), 1024);
        assert_eq!(scale(1, 100, 1024), 10);
        assert_eq!(scale(10_000, 100, 1024), 102_400);
        // The native mapping is the same equivalence.
        assert_eq!(crate::cgroup::keys::shares_to_weight(1024), 100);
        assert_eq!(crate::cgroup::keys::weight_to_shares(50), 512);
    }

    fn ctl(name: &str, version: CgVersion, values: &[(&str, &str)]) -> Controller {
        Controller {
            name: name.into(),
            version,
            values: values
                .iter()
                .map(|(n, v)| Value {
                    name: n.to_string(),
                    value: v.to_string(),
                    ..Value::default()
                })
                .collect(),
        }
    }

    #[test]
    fn cpu_max_splits_and_joins() {
        let table = Table::default();
        let input = ctl(
            "cpu",
            CgVersion::V2,
            &[("cpu.max", "max 100000"), ("cpu.weight", "50")],
        );
        let mut out = ctl("cpu", CgVersion::V1, &[]);
        assert!(!convert_controller(&table, "g", &mut out, &input).unwrap());
        let got: Vec<(&str, &str)> = out
            .values
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("cpu.cfs_quota_us", "-1"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.shares", "512")
            ]
        );
        let input = ctl(
            "cpu",
            CgVersion::V1,
            &[("cpu.cfs_quota_us", "-1"), ("cpu.cfs_period_us", "50000")],
        );
        let mut out = ctl("cpu", CgVersion::V2, &[]);
        convert_controller(&table, "g", &mut out, &input).unwrap();
        assert_eq!(out.values[0].value, "max 50000");
    }

    #[test]
    fn unknown_settings_fail_and_unmappable_ones_are_reported() {
        let table = Table::default();
        let input = ctl("memory", CgVersion::V1, &[("memory.limit_in_bytes", "1")]);
        let mut out = ctl("memory", CgVersion::V2, &[]);
        assert_eq!(
            convert_controller(&table, "g", &mut out, &input)
                .unwrap_err()
                .code,
            Ecg::Inval
        );
        let input = ctl(
            "cpuset",
            CgVersion::V1,
            &[("cpuset.mem_hardwall", "1"), ("cpuset.cpus", "0")],
        );
        let mut out = ctl("cpuset", CgVersion::V2, &[]);
        assert!(convert_controller(&table, "g", &mut out, &input).unwrap());
        assert_eq!(out.values.len(), 1);
        let input = ctl("cpuset", CgVersion::V1, &[("cpuset.cpu_exclusive", "1")]);
        let mut out = ctl("cpuset", CgVersion::V2, &[]);
        convert_controller(&table, "g", &mut out, &input).unwrap();
        assert_eq!(out.values[0].value, "root");
    }
}
