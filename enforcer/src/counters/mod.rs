//! Every per-group counter, declared once in `table.rs`: its key in
//! `stats --json`, its Prometheus family and labels, its column in `stats` and
//! `top`, its rate, its `when` names and how it is read from a kernel
//! [`Snapshot`](crate::bpf::Snapshot). The collector, the JSON, the metrics,
//! both tables, the rollup and the `when` engine iterate over [`COUNTERS`] or
//! look a [`Counter`] up in it, so a counter reaches all of them or none.
//!
//! Not counters, so not in the table: the calls per syscall name (a keyed
//! map with its own metric family) and what cgroupfs reports (memory, OOM
//! kills, CPU time).

mod table;
mod values;
mod when;

#[cfg(test)]
mod tests;

pub use table::{COUNTERS, Counter, EGRESS};
pub use values::{Counts, PerSec};
pub use when::Metric;

use crate::bpf::GroupCounters;

/// What a counter's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    /// Packets, calls, events.
    Count,
}

/// A Prometheus metric family; the counters that share one differ in their
/// labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// As exposed: base unit and `_total` included (`enforcer_net_bytes_total`).
    pub name: &'static str,
    pub help: &'static str,
}

/// A column of `stats` and `top`: the sum of the counters that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    /// `top --sort` takes it.
    pub name: &'static str,
    pub header: &'static str,
    /// Its total's key in `top --json` (kept from before the table, so
    /// scripts reading `egress_bytes` keep working).
    pub json: &'static str,
    /// Its rate's key in `top --json`: set exactly when some counter in it
    /// has a rate (a test checks).
    pub rate_json: Option<&'static str>,
    /// The key that sorts `top` by it.
    pub key: char,
    /// Shown in red when not zero: something was refused or lost. Such
    /// columns come after memory and CPU in `top`, where DENIED and DROPPED
    /// always were, so the number keys of the others stay.
    pub alert: bool,
}

/// One row of the table.
#[derive(Debug)]
pub struct CounterDef {
    pub counter: Counter,
    /// Section and key in `stats --json` (`("net", "egress_bytes")`); the key
    /// is also its `when` name when `when_total` is set.
    pub json: (&'static str, &'static str),
    /// Its value in a kernel snapshot.
    pub read: fn(&GroupCounters) -> u64,
    pub unit: Unit,
    pub metric: Family,
    /// Labels besides `group` that tell it apart within its family.
    pub labels: &'static [(&'static str, &'static str)],
    /// Its per-second rate's name (in `rates` of `stats --json`, and a
    /// `when` metric), for the counters worth a rate.
    pub rate: Option<&'static str>,
    /// Whether a `when` rule can watch its total.
    pub when_total: bool,
    pub column: Option<ColumnDef>,
}

/// Declares the [`Counter`] enum and [`COUNTERS`] from one list of rows, in
/// one order: a row's variant is its index in the table.
macro_rules! counters {
    ($( $(#[$doc:meta])* $variant:ident { $($field:ident : $value:expr),* $(,)? } )*) => {
        /// A per-group counter; [`Counter::def`] says everything about it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Counter {
            $( $(#[$doc])* $variant, )*
        }

        /// Every counter, in [`Counter`] order: the order of JSON keys,
        /// metric families, columns and `when` metrics.
        pub const COUNTERS: &[CounterDef] = &[
            $( CounterDef { counter: Counter::$variant, $($field: $value),* }, )*
        ];
    };
}
use counters;

impl Counter {
    /// How many counters there are.
    pub const COUNT: usize = COUNTERS.len();

    pub fn def(self) -> &'static CounterDef {
        &COUNTERS[self as usize]
    }

    pub fn all() -> impl Iterator<Item = Counter> {
        COUNTERS.iter().map(|d| d.counter)
    }
}

/// The `stats --json` sections counters are in, in table order.
pub fn sections() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for d in COUNTERS {
        if !out.contains(&d.json.0) {
            out.push(d.json.0);
        }
    }
    out
}

/// The columns of `stats` and `top`, in table order.
pub fn columns() -> Vec<ColumnDef> {
    let mut out: Vec<ColumnDef> = Vec::new();
    for c in COUNTERS.iter().filter_map(|d| d.column) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

impl ColumnDef {
    fn members(self) -> impl Iterator<Item = &'static CounterDef> {
        COUNTERS.iter().filter(move |d| d.column == Some(self))
    }

    /// Bytes if its counters are (they agree: a test checks).
    pub fn unit(self) -> Unit {
        self.members().next().map_or(Unit::Count, |d| d.unit)
    }

    /// Whether it shows a rate: some counter in it has one.
    pub fn has_rate(self) -> bool {
        self.members().any(|d| d.rate.is_some())
    }

    pub fn total(self, counts: &Counts) -> u64 {
        self.members()
            .fold(0u64, |sum, d| sum.saturating_add(counts[d.counter]))
    }

    /// The sum of its counters' rates; None when it has no rate.
    pub fn rate(self, rates: &PerSec) -> Option<f64> {
        self.has_rate().then(|| {
            self.members()
                .filter(|d| d.rate.is_some())
                .map(|d| rates[d.counter])
                .sum()
        })
    }
}
