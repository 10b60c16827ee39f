//! What a `when` rule can watch: the totals and rates the counter table
//! offers, then the few values cgroupfs reports. [`Metric::ALL`] is the one
//! list the policy reader, its messages, the engine and the docs take.

use std::fmt;

use super::{COUNTERS, Counter, Unit};
use crate::words::MetricUnit;

/// What a `when` rule watches, per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// A counter's total since counting began, named by its JSON key
    /// (`egress_bytes`); only those with `when_total`.
    Total(Counter),
    /// A counter's rate per second over the last interval, named by its
    /// rate (`egress_bytes_per_sec`); only those with a rate.
    Rate(Counter),
    /// `memory_usage_bytes`: the group's current memory use.
    MemoryUsageBytes,
    /// `oom_kills`: OOM kills in the group since counting started.
    OomKills,
    /// `cpu_usage_percent`: CPU time over the last interval; 100 is one full
    /// CPU (a group using two CPUs is at 200).
    CpuUsagePercent,
}

/// The metrics cgroupfs reports, listed after the counters'.
const CGROUPFS: [Metric; 3] = [
    Metric::MemoryUsageBytes,
    Metric::OomKills,
    Metric::CpuUsagePercent,
];

const fn count() -> usize {
    let mut n = CGROUPFS.len();
    let mut i = 0;
    while i < COUNTERS.len() {
        n += COUNTERS[i].when_total as usize + COUNTERS[i].rate.is_some() as usize;
        i += 1;
    }
    n
}

/// Per counter in table order its total, then its rate; then [`CGROUPFS`].
const fn all() -> [Metric; count()] {
    let mut out = [Metric::OomKills; count()];
    let mut k = 0;
    let mut i = 0;
    while i < COUNTERS.len() {
        let d = &COUNTERS[i];
        if d.when_total {
            out[k] = Metric::Total(d.counter);
            k += 1;
        }
        if d.rate.is_some() {
            out[k] = Metric::Rate(d.counter);
            k += 1;
        }
        i += 1;
    }
    let mut j = 0;
    while j < CGROUPFS.len() {
        out[k] = CGROUPFS[j];
        k += 1;
        j += 1;
    }
    out
}

impl Metric {
    /// Every metric, in the order they are documented and listed in messages.
    pub const ALL: [Metric; count()] = all();

    /// The name written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Total(c) => c.def().json.1,
            // Only counters with a rate make a `Rate` in ALL; the others'
            // fall back to their total's name rather than to nothing.
            Metric::Rate(c) => c.def().rate.unwrap_or(c.def().json.1),
            Metric::MemoryUsageBytes => "memory_usage_bytes",
            Metric::OomKills => "oom_kills",
            Metric::CpuUsagePercent => "cpu_usage_percent",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn unit(self) -> MetricUnit {
        match self {
            Metric::Total(c) => match c.def().unit {
                Unit::Bytes => MetricUnit::Bytes,
                Unit::Count => MetricUnit::Count,
            },
            Metric::Rate(c) => match c.def().unit {
                Unit::Bytes => MetricUnit::BytesPerSec,
                Unit::Count => MetricUnit::PerSec,
            },
            Metric::MemoryUsageBytes => MetricUnit::Bytes,
            Metric::OomKills => MetricUnit::Count,
            Metric::CpuUsagePercent => MetricUnit::Percent,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
