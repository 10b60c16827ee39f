//! Controller keys in either spelling, translated to the files this host has.
//!
//! Users write v1 names (`memory.limit_in_bytes`, `cpu.shares`) or v2 names
//! (`memory.max`, `cpu.weight`); the host decides which file gets written. Value
//! conversions keep the defaults of both versions equal (a `cpu.weight` of 100
//! is 1024 `cpu.shares`, as the kernel, systemd and libcgroup have it), so a
//! weight means the same next to the groups nobody set, on either version.

use super::error::CgroupError;
use super::mounts::Version;
use crate::units::{Size, format_list, parse_limit, parse_list};

/// Host facts a value check needs; read once from the live cgroupfs (or a fake).
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub online_cpus: Vec<u32>,
    pub online_mems: Vec<u32>,
    pub page_size: u64,
}

/// What a key means, whichever way it is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MemLimit,
    MemSoft,
    /// A size with a file in only some versions (`memory.high` is v2 only).
    Size {
        v1: Option<&'static str>,
        v2: Option<&'static str>,
    },
    CpuWeight,
    CpuQuota,
    CpuPeriod,
    CpuMax,
    CpusetCpus,
    CpusetMems,
    PidsMax,
    IoWeight,
    /// BFQ's own weight file, [1, 1000].
    BfqWeight,
    Raw,
}

fn kind_of(key: &str) -> Kind {
    match key {
        "memory.limit_in_bytes" | "memory.max" => Kind::MemLimit,
        "memory.soft_limit_in_bytes" | "memory.low" => Kind::MemSoft,
        "memory.high" => Kind::Size {
            v1: None,
            v2: Some("memory.high"),
        },
        "memory.min" => Kind::Size {
            v1: None,
            v2: Some("memory.min"),
        },
        "memory.swap.max" => Kind::Size {
            v1: None,
            v2: Some("memory.swap.max"),
        },
        "memory.memsw.limit_in_bytes" => Kind::Size {
            v1: Some("memory.memsw.limit_in_bytes"),
            v2: None,
        },
        "memory.kmem.limit_in_bytes" => Kind::Size {
            v1: Some("memory.kmem.limit_in_bytes"),
            v2: None,
        },
        "cpu.shares" | "cpu.weight" => Kind::CpuWeight,
        "cpu.cfs_quota_us" => Kind::CpuQuota,
        "cpu.cfs_period_us" => Kind::CpuPeriod,
        "cpu.max" => Kind::CpuMax,
        "cpuset.cpus" => Kind::CpusetCpus,
        "cpuset.mems" => Kind::CpusetMems,
        "pids.max" => Kind::PidsMax,
        "blkio.weight" | "io.weight" => Kind::IoWeight,
        "blkio.bfq.weight" | "io.bfq.weight" => Kind::BfqWeight,
        _ => Kind::Raw,
    }
}

/// Every key with a translation of its own (the others pass through as files).
pub const TRANSLATED_KEYS: &[&str] = &[
    "memory.limit_in_bytes",
    "memory.max",
    "memory.soft_limit_in_bytes",
    "memory.low",
    "memory.high",
    "memory.min",
    "memory.swap.max",
    "memory.memsw.limit_in_bytes",
    "memory.kmem.limit_in_bytes",
    "cpu.shares",
    "cpu.weight",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.max",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "blkio.weight",
    "io.weight",
    "blkio.bfq.weight",
    "io.bfq.weight",
];

/// Files that are not settings: processes move with `exec`/`classify`, controllers
/// are enabled by `create`, freezing has its own verb.
const NOT_SETTINGS: &[(&str, &str)] = &[
    (
        "cgroup.procs",
        "use `enforcer classify` or `enforcer exec` to move processes",
    ),
    (
        "tasks",
        "use `enforcer classify` or `enforcer exec` to move processes",
    ),
    (
        "cgroup.threads",
        "use `enforcer classify` to move processes",
    ),
    (
        "cgroup.subtree_control",
        "controllers are enabled by `enforcer create -g CONTROLLERS:PATH`",
    ),
    ("cgroup.freeze", "use `enforcer freeze` / `enforcer thaw`"),
    ("freezer.state", "use `enforcer freeze` / `enforcer thaw`"),
    ("cgroup.kill", "use `enforcer kill`"),
    ("release_agent", "enforcer does not set release agents"),
];

/// The controller a key belongs to, as (v1 name, v2 name). Files that are not
/// settings are refused here, with the verb to use instead.
pub fn controller_names(key: &str) -> Result<(String, String), CgroupError> {
    if let Some((_, hint)) = NOT_SETTINGS.iter().find(|(k, _)| *k == key) {
        return Err(CgroupError::UnknownKey {
            key: key.to_string(),
            hint: (*hint).to_string(),
        });
    }
    let prefix = key
        .split_once('.')
        .map(|(p, _)| p)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| CgroupError::UnknownKey {
            key: key.to_string(),
            hint: "keys look like CONTROLLER.FILE, for example memory.limit_in_bytes or memory.max"
                .into(),
        })?;
    Ok(match prefix {
        "blkio" | "io" => ("blkio".into(), "io".into()),
        "cpuacct" => ("cpuacct".into(), "cpu".into()),
        p => (p.to_string(), p.to_string()),
    })
}

/// What to write into one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteValue {
    Literal(String),
    /// v2 `cpu.max` with a new period but the quota it already has: read at write
    /// time, since only the kernel knows the current quota.
    CpuMaxPeriod(u64),
}

impl std::fmt::Display for WriteValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteValue::Literal(s) => f.write_str(s),
            WriteValue::CpuMaxPeriod(p) => write!(f, "<current quota> {p}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite {
    pub file: String,
    pub value: WriteValue,
    /// Files to write instead, in order, when the group has no `file`: which
    /// one a kernel has depends on its build (CFQ's `blkio.weight` is gone
    /// since Linux 5.0, leaving BFQ's `blkio.bfq.weight`). Each carries the
    /// value converted to its own range.
    pub alternatives: Vec<(String, WriteValue)>,
}

/// A key and value turned into the writes this host needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub writes: Vec<FileWrite>,
    pub warnings: Vec<String>,
    /// The key is not one we know: passed through, so the caller must check the
    /// file exists.
    pub raw: bool,
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn int_in(key: &str, value: &str, lo: i64, hi: i64) -> Result<i64, CgroupError> {
    let n: i64 = value.trim().parse().map_err(|_| {
        invalid(
            key,
            value,
            format!("expected a whole number from {lo} to {hi}"),
        )
    })?;
    if n < lo || n > hi {
        return Err(invalid(key, value, format!("must be from {lo} to {hi}")));
    }
    Ok(n)
}

/// cpu.shares [2, 262144] -> cpu.weight [1, 10000] by the kernel's own
/// equivalence (`sched_weight_to_cgroup`: a weight of 100 is the scheduler
/// weight 1024, which is what 1024 shares are), as systemd and libcgroup's
/// tables map them. The defaults meet: 1024 shares is weight 100, so a group
/// given a weight below 100 stays below the groups nobody set. (runc's
/// mapping, used here before, made weight 100 into 2597 shares, and a
/// `low` group outweighed every default one on v1.)
pub fn shares_to_weight(shares: u64) -> u64 {
    ((shares * 100 + 512) / 1024).clamp(1, 10_000)
}

/// The inverse of [`shares_to_weight`] (`sched_weight_from_cgroup`).
pub fn weight_to_shares(weight: u64) -> u64 {
    ((weight * 1024 + 50) / 100).clamp(2, 262_144)
}

/// runc: blkio.weight [10, 1000] -> io.weight [1, 10000].
pub fn blkio_to_io_weight(w: u64) -> u64 {
    1 + (w.saturating_sub(10) * 9999) / 990
}

pub fn io_to_blkio_weight(w: u64) -> u64 {
    10 + (w.saturating_sub(1) * 990) / 9999
}

/// systemd's `BFQ_WEIGHT()`: io.weight [1, 10000] onto BFQ's [1, 1000], keeping
/// the default of 100 where it is (1..100 unchanged, 100..10000 onto 100..1000).
/// A `blkio.weight` needs no conversion: CFQ and BFQ weights share a scale
/// (runc writes the same number to either file).
pub fn io_to_bfq_weight(w: u64) -> u64 {
    if w <= 100 {
        w.max(1)
    } else {
        100 + (w.min(10_000) - 100) * 900 / 9900
    }
}

fn lit(file: &str, value: impl Into<String>) -> FileWrite {
    FileWrite {
        file: file.to_string(),
        value: WriteValue::Literal(value.into()),
        alternatives: Vec::new(),
    }
}

/// `lit(file, value)`, or else `alt_file` with `alt_value` if the group lacks `file`.
fn lit_or(file: &str, value: String, alt_file: &str, alt_value: String) -> FileWrite {
    FileWrite {
        alternatives: vec![(alt_file.to_string(), WriteValue::Literal(alt_value))],
        ..lit(file, value)
    }
}

/// A weight as the io files take it: `N` or `default N`.
fn weight_number(value: &str) -> &str {
    let v = value.trim();
    v.strip_prefix("default").map(str::trim).unwrap_or(v)
}

fn size_value(key: &str, value: &str, version: Version) -> Result<(Size, String), CgroupError> {
    let size = parse_limit(value).map_err(|r| invalid(key, value, r))?;
    let text = match (size, version) {
        (Size::Max, Version::V1) => "-1".to_string(),
        (Size::Max, Version::V2) => "max".to_string(),
        (Size::Bytes(b), _) => b.to_string(),
    };
    Ok((size, text))
}

fn no_equivalent(key: &str, version: Version) -> CgroupError {
    let (have, other) = match version {
        Version::V1 => ("cgroup v1", "v2"),
        Version::V2 => ("cgroup v2", "v1"),
    };
    CgroupError::UnknownKey {
        key: key.to_string(),
        hint: format!(
            "it is a cgroup {other} setting with no equivalent on this host's {have} hierarchy"
        ),
    }
}

fn quota_value(key: &str, value: &str) -> Result<Option<u64>, CgroupError> {
    let v = value.trim();
    if v == "max" || v == "-1" {
        return Ok(None);
    }
    int_in(key, value, 1000, i64::MAX).map(|n| Some(n as u64))
}

fn cpuset_value(
    key: &str,
    value: &str,
    online: &[u32],
    what: &'static str,
) -> Result<String, CgroupError> {
    let wanted = parse_list(value).map_err(|r| invalid(key, value, r))?;
    let missing: Vec<u32> = wanted
        .iter()
        .copied()
        .filter(|c| !online.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(CgroupError::OutOfRange {
            key: key.to_string(),
            value: value.to_string(),
            what,
            missing: format_list(&missing),
            online: format_list(online),
        });
    }
    Ok(format_list(&wanted))
}

/// Translate `key=value` for a controller living in a hierarchy of `version`.
pub fn translate(
    key: &str,
    value: &str,
    version: Version,
    facts: &HostFacts,
) -> Result<Translation, CgroupError> {
    controller_names(key)?;
    let v1 = version == Version::V1;
    let mut warnings = Vec::new();
    let writes = match kind_of(key) {
        Kind::MemLimit => mem_limit(key, value, version, facts.page_size, &mut warnings)?,
        Kind::MemSoft => {
            let (_, text) = size_value(key, value, version)?;
            vec![lit(
                if v1 {
                    "memory.soft_limit_in_bytes"
                } else {
                    "memory.low"
                },
                text,
            )]
        }
        Kind::Size { v1: f1, v2: f2 } => {
            let file = if v1 { f1 } else { f2 }.ok_or_else(|| no_equivalent(key, version))?;
            let (_, text) = size_value(key, value, version)?;
            vec![lit(file, text)]
        }
        Kind::CpuWeight => cpu_weight(key, value, v1)?,
        Kind::CpuQuota => {
            let q = quota_value(key, value)?;
            if v1 {
                vec![lit(
                    "cpu.cfs_quota_us",
                    q.map_or("-1".into(), |q| q.to_string()),
                )]
            } else {
                // cpu.max takes the quota alone and keeps its period.
                vec![lit("cpu.max", q.map_or("max".into(), |q| q.to_string()))]
            }
        }
        Kind::CpuPeriod => {
            let p = int_in(key, value, 1000, 1_000_000)? as u64;
            if v1 {
                vec![lit("cpu.cfs_period_us", p.to_string())]
            } else {
                vec![FileWrite {
                    value: WriteValue::CpuMaxPeriod(p),
                    ..lit("cpu.max", "")
                }]
            }
        }
        Kind::CpuMax => cpu_max(key, value, v1)?,
        Kind::CpusetCpus => vec![lit(
            "cpuset.cpus",
            cpuset_value(key, value, &facts.online_cpus, "CPU")?,
        )],
        Kind::CpusetMems => vec![lit(
            "cpuset.mems",
            cpuset_value(key, value, &facts.online_mems, "memory node")?,
        )],
        Kind::PidsMax => {
            let v = value.trim();
            let text = if v == "max" || v == "-1" {
                "max".to_string()
            } else {
                int_in(key, value, 0, i64::from(i32::MAX))?.to_string()
            };
            vec![lit("pids.max", text)]
        }
        Kind::IoWeight => io_weight(key, value, v1)?,
        Kind::BfqWeight => {
            let w = int_in(key, weight_number(value), 1, 1000)?;
            if v1 {
                vec![lit("blkio.bfq.weight", w.to_string())]
            } else {
                vec![lit("io.bfq.weight", format!("default {w}"))]
            }
        }
        Kind::Raw => {
            return Ok(Translation {
                writes: vec![lit(key, value.trim())],
                warnings,
                raw: true,
            });
        }
    };
    Ok(Translation {
        writes,
        warnings,
        raw: false,
    })
}

/// `memory.limit_in_bytes` or `memory.max`, warned about below one page.
fn mem_limit(
    key: &str,
    value: &str,
    version: Version,
    page_size: u64,
    warnings: &mut Vec<String>,
) -> Result<Vec<FileWrite>, CgroupError> {
    let (size, text) = size_value(key, value, version)?;
    if let Size::Bytes(b) = size
        && b < page_size
    {
        warnings.push(format!(
            "{key}={value} is below one page ({page_size} bytes): the kernel rounds it down to 0 \
                 and every allocation in the group will be OOM-killed"
        ));
    }
    let file = if version == Version::V1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    Ok(vec![lit(file, text)])
}

/// `cpu.shares` or `cpu.weight`, either converted to the other.
fn cpu_weight(key: &str, value: &str, v1: bool) -> Result<Vec<FileWrite>, CgroupError> {
    let (shares, weight) = if key == "cpu.shares" {
        let s = int_in(key, value, 2, 262_144)? as u64;
        (s, shares_to_weight(s))
    } else {
        let w = int_in(key, value, 1, 10_000)? as u64;
        (weight_to_shares(w), w)
    };
    Ok(if v1 {
        vec![lit("cpu.shares", shares.to_string())]
    } else {
        vec![lit("cpu.weight", weight.to_string())]
    })
}

/// `cpu.max` (QUOTA [PERIOD]): v1's quota and period files, or cpu.max.
fn cpu_max(key: &str, value: &str, v1: bool) -> Result<Vec<FileWrite>, CgroupError> {
    let mut parts = value.split_whitespace();
    let quota = parts.next().ok_or_else(|| {
        invalid(
            key,
            value,
            "expected QUOTA [PERIOD], for example `50000 100000` or `max`",
        )
    })?;
    let q = quota_value(key, quota)?;
    let period = parts
        .next()
        .map(|p| int_in(key, p, 1000, 1_000_000).map(|p| p as u64))
        .transpose()?;
    if parts.next().is_some() {
        return Err(invalid(key, value, "expected QUOTA [PERIOD]"));
    }
    let qtext = |max: &str| q.map_or(max.to_string(), |q| q.to_string());
    Ok(if v1 {
        let mut w = Vec::new();
        if let Some(p) = period {
            w.push(lit("cpu.cfs_period_us", p.to_string()));
        }
        w.push(lit("cpu.cfs_quota_us", qtext("-1")));
        w
    } else {
        let text = match period {
            Some(p) => format!("{} {p}", qtext("max")),
            None => qtext("max"),
        };
        vec![lit("cpu.max", text)]
    })
}

/// `blkio.weight` or `io.weight`, converted to the other and to BFQ's
/// weight, which a group has instead when BFQ schedules its disks.
fn io_weight(key: &str, value: &str, v1: bool) -> Result<Vec<FileWrite>, CgroupError> {
    // (CFQ blkio.weight, io.weight, BFQ weight)
    let (blkio, io, bfq) = if key == "blkio.weight" {
        let w = int_in(key, value.trim(), 10, 1000)? as u64;
        (w, blkio_to_io_weight(w), w)
    } else {
        let w = int_in(key, weight_number(value), 1, 10_000)? as u64;
        (io_to_blkio_weight(w), w, io_to_bfq_weight(w))
    };
    Ok(if v1 {
        vec![lit_or(
            "blkio.weight",
            blkio.to_string(),
            "blkio.bfq.weight",
            bfq.to_string(),
        )]
    } else {
        vec![lit_or(
            "io.weight",
            format!("default {io}"),
            "io.bfq.weight",
            format!("default {bfq}"),
        )]
    })
}

/// The files that may hold `key` on a hierarchy of `version` (for `get -r`), in
/// the order `set` prefers them: the first one the group has is the one `set`
/// writes.
pub fn read_files_for(key: &str, version: Version) -> Vec<&str> {
    match (kind_of(key), version) {
        (Kind::IoWeight | Kind::BfqWeight, Version::V1) => {
            if key.ends_with("bfq.weight") {
                vec!["blkio.bfq.weight"]
            } else {
                vec!["blkio.weight", "blkio.bfq.weight"]
            }
        }
        (Kind::IoWeight | Kind::BfqWeight, Version::V2) => {
            if key.ends_with("bfq.weight") {
                vec!["io.bfq.weight"]
            } else {
                vec!["io.weight", "io.bfq.weight"]
            }
        }
        _ => vec![read_file_for(key, version)],
    }
}

/// The file to read for `key` on a hierarchy of `version`.
pub fn read_file_for(key: &str, version: Version) -> &str {
    let v1 = version == Version::V1;
    match (key, v1) {
        ("memory.max", true) => "memory.limit_in_bytes",
        ("memory.limit_in_bytes", false) => "memory.max",
        ("memory.low", true) => "memory.soft_limit_in_bytes",
        ("memory.soft_limit_in_bytes", false) => "memory.low",
        ("cpu.weight", true) => "cpu.shares",
        ("cpu.shares", false) => "cpu.weight",
        ("cpu.max", true) => "cpu.cfs_quota_us",
        ("cpu.cfs_quota_us" | "cpu.cfs_period_us", false) => "cpu.max",
        ("io.weight", true) => "blkio.weight",
        ("blkio.weight", false) => "io.weight",
        ("io.bfq.weight", true) => "blkio.bfq.weight",
        ("blkio.bfq.weight", false) => "io.bfq.weight",
        ("memory.usage_in_bytes", false) => "memory.current",
        ("memory.current", true) => "memory.usage_in_bytes",
        ("memory.max_usage_in_bytes", false) => "memory.peak",
        ("memory.peak", true) => "memory.max_usage_in_bytes",
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts {
            online_cpus: vec![0, 1],
            online_mems: vec![0],
            page_size: 4096,
        }
    }

    fn writes(key: &str, value: &str, v: Version) -> Vec<(String, String)> {
        translate(key, value, v, &facts())
            .unwrap()
            .writes
            .into_iter()
            .map(|w| (w.file, w.value.to_string()))
            .collect()
    }

    fn one(file: &str, value: &str) -> Vec<(String, String)> {
        vec![(file.to_string(), value.to_string())]
    }

    #[test]
    fn memory_both_ways() {
        assert_eq!(
            writes("memory.limit_in_bytes", "50M", Version::V2),
            one("memory.max", "52428800")
        );
        assert_eq!(
            writes("memory.max", "max", Version::V1),
            one("memory.limit_in_bytes", "-1")
        );
        assert_eq!(
            writes("memory.limit_in_bytes", "-1", Version::V2),
            one("memory.max", "max")
        );
        assert_eq!(
            writes("memory.soft_limit_in_bytes", "1G", Version::V2),
            one("memory.low", "1073741824")
        );
        assert_eq!(
            writes("memory.low", "4096", Version::V1),
            one("memory.soft_limit_in_bytes", "4096")
        );
        assert!(matches!(
            translate("memory.high", "1G", Version::V1, &facts()),
            Err(CgroupError::UnknownKey { .. })
        ));
    }

    #[test]
    fn tiny_memory_limit_warns() {
        let t = translate("memory.limit_in_bytes", "500", Version::V1, &facts()).unwrap();
        assert_eq!(t.warnings.len(), 1);
        assert!(t.warnings[0].contains("OOM-killed"), "{:?}", t.warnings);
    }

    #[test]
    fn cpu_weight_conversion_is_the_kernels() {
        // The defaults meet, and the ratios are kept.
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(50), 512);
        assert_eq!(weight_to_shares(200), 2048);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(weight_to_shares(1), 10);
        assert_eq!(weight_to_shares(10_000), 102_400);
        assert_eq!(
            writes("cpu.shares", "100", Version::V2),
            one("cpu.weight", "10")
        );
        assert_eq!(
            writes("cpu.weight", "100", Version::V1),
            one("cpu.shares", "1024")
        );
        for w in [1, 26, 50, 77, 100, 200, 400, 10_000] {
            let back = shares_to_weight(weight_to_shares(w));
            assert!(back.abs_diff(w) <= 1, "{w} -> {back}");
        }
    }

    #[test]
    fn cfs_quota_and_period() {
        assert_eq!(
            writes("cpu.cfs_quota_us", "50000", Version::V2),
            one("cpu.max", "50000")
        );
        assert_eq!(
            writes("cpu.cfs_quota_us", "-1", Version::V2),
            one("cpu.max", "max")
        );
        assert_eq!(
            writes("cpu.cfs_period_us", "100000", Version::V2),
            one("cpu.max", "<current quota> 100000")
        );
        assert_eq!(
            writes("cpu.max", "50000 100000", Version::V1),
            vec![
                ("cpu.cfs_period_us".to_string(), "100000".to_string()),
                ("cpu.cfs_quota_us".to_string(), "50000".to_string())
            ]
        );
        assert_eq!(
            writes("cpu.max", "max", Version::V1),
            one("cpu.cfs_quota_us", "-1")
        );
        assert_eq!(
            writes("cpu.max", "max 20000", Version::V2),
            one("cpu.max", "max 20000")
        );
        assert!(translate("cpu.max", "1 2 3", Version::V2, &facts()).is_err());
        assert!(translate("cpu.cfs_quota_us", "10", Version::V1, &facts()).is_err());
    }

    #[test]
    fn cpuset_names_online_cpus() {
        let err = translate("cpuset.cpus", "0-5", Version::V1, &facts()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("2-5") && msg.contains("online CPUs are 0-1"),
            "{msg}"
        );
        assert_eq!(
            writes("cpuset.cpus", "1,0", Version::V2),
            one("cpuset.cpus", "0-1")
        );
        assert!(translate("cpuset.mems", "1", Version::V1, &facts()).is_err());
    }

    #[test]
    fn translated_keys_are_the_ones_with_a_kind() {
        for key in TRANSLATED_KEYS {
            assert_ne!(kind_of(key), Kind::Raw, "{key}");
        }
    }

    #[test]
    fn io_weight_offers_bfq_with_its_own_range() {
        let t = translate("io.weight", "500", Version::V1, &facts()).unwrap();
        assert_eq!(
            t.writes[0].alternatives,
            vec![(
                "blkio.bfq.weight".to_string(),
                WriteValue::Literal("136".into())
            )]
        );
        let t = translate("blkio.weight", "300", Version::V2, &facts()).unwrap();
        assert_eq!(
            t.writes[0].alternatives,
            vec![(
                "io.bfq.weight".to_string(),
                WriteValue::Literal("default 300".into())
            )]
        );
        assert_eq!(io_to_bfq_weight(1), 1);
        assert_eq!(io_to_bfq_weight(100), 100);
        assert_eq!(io_to_bfq_weight(10_000), 1000);
        for w in 1..=10_000 {
            assert!((1..=1000).contains(&io_to_bfq_weight(w)), "{w}");
        }
        assert_eq!(
            writes("io.bfq.weight", "default 7", Version::V1),
            one("blkio.bfq.weight", "7")
        );
        assert!(translate("blkio.bfq.weight", "1001", Version::V1, &facts()).is_err());
        assert_eq!(
            read_files_for("io.weight", Version::V1),
            vec!["blkio.weight", "blkio.bfq.weight"]
        );
    }

    #[test]
    fn io_and_pids() {
        assert_eq!(
            writes("blkio.weight", "500", Version::V2),
            one("io.weight", "default 4950")
        );
        assert_eq!(
            writes("io.weight", "default 100", Version::V1),
            one("blkio.weight", "19")
        );
        assert_eq!(
            writes("pids.max", "-1", Version::V2),
            one("pids.max", "max")
        );
        assert!(translate("pids.max", "-5", Version::V2, &facts()).is_err());
        assert_eq!(
            controller_names("blkio.weight").unwrap(),
            ("blkio".into(), "io".into())
        );
    }

    #[test]
    fn raw_and_forbidden_keys() {
        let t = translate("memory.swappiness", "10", Version::V1, &facts()).unwrap();
        assert!(t.raw);
        assert!(translate("cgroup.procs", "1", Version::V2, &facts()).is_err());
        assert!(translate("nodot", "1", Version::V2, &facts()).is_err());
        assert_eq!(
            read_file_for("memory.max", Version::V1),
            "memory.limit_in_bytes"
        );
        assert_eq!(read_file_for("cpu.shares", Version::V2), "cpu.weight");
    }
}
