//! The shape of `enforcer stats --json`, driven by the counter table: each
//! counter under its section (`net`, `syscalls`, `enforcement`), each rate
//! under `rates`, so a new counter is in the output without a change here.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{GroupReport, Rates};
use crate::counters::{COUNTERS, sections};

/// The section that also holds the calls per syscall name.
const SYSCALLS: &str = "syscalls";

/// One section's counters, in table order.
struct Section<'a> {
    name: &'static str,
    report: &'a GroupReport,
}

impl Serialize for Section<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (d, v) in self.report.counts.iter() {
            if d.json.0 == self.name {
                m.serialize_entry(d.json.1, &v)?;
            }
        }
        if self.name == SYSCALLS {
            m.serialize_entry("by_name", &self.report.syscalls_by_name)?;
        }
        m.end()
    }
}

impl Serialize for GroupReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("group", &self.group)?;
        m.serialize_entry("cgroup_id", &self.cgroup_id)?;
        for name in sections() {
            m.serialize_entry(name, &Section { name, report: self })?;
        }
        m.serialize_entry("memory", &self.memory)?;
        m.serialize_entry("cpu", &self.cpu)?;
        if let Some(r) = &self.rates {
            m.serialize_entry("rates", r)?;
        }
        if !self.workload.is_empty() {
            m.serialize_entry("workload", &self.workload)?;
        }
        if !self.limits.is_empty() {
            m.serialize_entry("limits", &self.limits)?;
        }
        m.end()
    }
}

impl Serialize for Rates {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for d in COUNTERS {
            if let Some(name) = d.rate {
                m.serialize_entry(name, &self.per_sec[d.counter])?;
            }
        }
        m.serialize_entry("cpu_percent", &self.cpu_percent)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{Counter, Counts, PerSec};

    /// Every counter set to its index + 1, every rate to its index + 0.5.
    fn report() -> GroupReport {
        let mut r = GroupReport::empty("web");
        let mut rates = PerSec::default();
        let mut counts = Counts::default();
        for (i, c) in Counter::all().enumerate() {
            counts[c] = i as u64 + 1;
            rates[c] = i as f64 + 0.5;
        }
        r.counts = counts;
        r.syscalls_by_name = [("read".to_string(), 3)].into();
        r.rates = Some(Rates {
            per_sec: rates,
            cpu_percent: 12.5,
        });
        r
    }

    #[test]
    fn every_counter_is_at_its_section_and_key() {
        let v = serde_json::to_value(report()).unwrap();
        for (i, d) in COUNTERS.iter().enumerate() {
            let (section, key) = d.json;
            assert_eq!(v[section][key], i as u64 + 1, "{section}.{key}: {v}");
            if let Some(rate) = d.rate {
                assert_eq!(v["rates"][rate], i as f64 + 0.5, "rates.{rate}");
            }
        }
        // The paths scripts and tests read.
        for path in [
            "/net/egress_bytes",
            "/net/ingress_packets",
            "/net/connect_attempts",
            "/syscalls/total",
            "/enforcement/connect_denied",
            "/enforcement/egress_dropped_bytes",
            "/enforcement/events_lost",
            "/rates/egress_bytes_per_sec",
            "/rates/syscalls_per_sec",
            "/memory/oom_kills",
            "/cpu/usage_usec",
        ] {
            assert!(v.pointer(path).is_some(), "{path} missing: {v}");
        }
        assert_eq!(v["syscalls"]["by_name"]["read"], 3);
        assert_eq!(v["rates"]["cpu_percent"], 12.5);
        assert!(v.get("workload").is_none() && v.get("limits").is_none());
        let first = GroupReport::empty("web");
        assert!(serde_json::to_value(first).unwrap()["rates"].is_null());
    }
}
