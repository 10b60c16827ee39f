//! Typed readers of the usage files the kernel keeps per group: CPU time
//! (`cpu.stat`, or v1's `cpuacct.usage`), bytes read and written
//! (`io.stat`, or v1's `blkio.throttle.io_service_bytes_recursive`) and
//! pressure stall information. The collector and the arbiter read through
//! these, so each file is parsed in one place, on every layout.
//!
//! PSI: every cgroup2 group has `cpu.pressure`, `memory.pressure` and
//! `io.pressure` (on a hybrid host too, in the cgroup2 mirror), whatever
//! controllers are enabled:
//!
//! ```text
//! some avg10=1.23 avg60=0.40 avg300=0.10 total=123456
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! ```

use std::path::Path;

use super::{Cgroups, GroupPath, Version};

/// One PSI file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Psi {
    /// Share of the last 10 s some task of the group was stalled (0 to 1).
    pub some_avg10: f64,
    /// Microseconds some task was stalled, since the group was made.
    pub some_total: u64,
    /// As `some_*`, for time every task was stalled (absent for the CPU of
    /// some kernels: then 0).
    pub full_avg10: f64,
    pub full_total: u64,
}

/// Parses a PSI file's text; `None` if it has no `some` line.
pub fn parse_psi(text: &str) -> Option<Psi> {
    let mut psi = Psi::default();
    let mut some = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let kind = words.next();
        let (mut avg10, mut total) = (None, None);
        for word in words {
            if let Some(v) = word.strip_prefix("avg10=") {
                avg10 = v.parse::<f64>().ok();
            } else if let Some(v) = word.strip_prefix("total=") {
                total = v.parse::<u64>().ok();
            }
        }
        match (kind, avg10, total) {
            (Some("some"), Some(a), Some(t)) => {
                psi.some_avg10 = a / 100.0;
                psi.some_total = t;
                some = true;
            }
            (Some("full"), Some(a), Some(t)) => {
                psi.full_avg10 = a / 100.0;
                psi.full_total = t;
            }
            _ => {}
        }
    }
    some.then_some(psi)
}

/// What a PSI file is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsiResource {
    Cpu,
    Memory,
    Io,
}

impl PsiResource {
    fn file(self) -> &'static str {
        match self {
            PsiResource::Cpu => "cpu.pressure",
            PsiResource::Memory => "memory.pressure",
            PsiResource::Io => "io.pressure",
        }
    }
}

/// `usage_usec` of a cgroup2 `cpu.stat`.
pub fn parse_cpu_stat_usage(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix("usage_usec ")
            .and_then(|v| v.trim().parse().ok())
    })
}

/// Sum of `rbytes=` and `wbytes=` over the devices of a cgroup2 `io.stat`.
pub fn parse_io_stat_bytes(text: &str) -> u64 {
    text.split_whitespace()
        .filter_map(|w| {
            w.strip_prefix("rbytes=")
                .or_else(|| w.strip_prefix("wbytes="))
        })
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// The `Total` line of v1's `blkio.throttle.io_service_bytes_recursive`.
fn parse_blkio_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("Total ").and_then(|v| v.trim().parse().ok()))
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl Cgroups {
    /// CPU time the group used, in microseconds: cgroup2's `cpu.stat`
    /// (present in every cgroup2 group, controller or not), else v1's
    /// `cpuacct.usage` (nanoseconds). `None` when neither can be read.
    pub fn cpu_usage_usec(&self, group: &GroupPath) -> Option<u64> {
        if let Some(v2) = self.v2()
            && let Some(us) =
                read(&self.dir(v2, group).join("cpu.stat")).and_then(|t| parse_cpu_stat_usage(&t))
        {
            return Some(us);
        }
        let (h, _) = self.locate("cpuacct").ok()?;
        if self.hierarchy(h).version != Version::V1 {
            return None;
        }
        let ns: u64 = read(&self.dir(h, group).join("cpuacct.usage"))?
            .trim()
            .parse()
            .ok()?;
        Some(ns / 1000)
    }

    /// Bytes the group read and wrote on block devices: cgroup2's `io.stat`,
    /// else (nothing there) v1's blkio throttle total. 0 when neither says.
    pub fn io_bytes(&self, group: &GroupPath) -> u64 {
        if let Some(v2) = self.v2() {
            let bytes = read(&self.dir(v2, group).join("io.stat"))
                .map(|t| parse_io_stat_bytes(&t))
                .unwrap_or(0);
            if bytes != 0 {
                return bytes;
            }
        }
        let Ok((h, _)) = self.locate("io") else {
            return 0;
        };
        if self.hierarchy(h).version != Version::V1 || !self.exists(h, group) {
            return 0;
        }
        read(
            &self
                .dir(h, group)
                .join("blkio.throttle.io_service_bytes_recursive"),
        )
        .and_then(|t| parse_blkio_total(&t))
        .unwrap_or(0)
    }

    /// The group's PSI for `resource`, from its cgroup2 directory; `None`
    /// without cgroup2 or the file (a kernel without PSI).
    pub fn pressure(&self, group: &GroupPath, resource: PsiResource) -> Option<Psi> {
        let v2 = self.v2()?;
        read(&self.dir(v2, group).join(resource.file())).and_then(|t| parse_psi(&t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_some_and_full() {
        let text = "some avg10=12.50 avg60=3.00 avg300=1.00 total=2500000\n\
                    full avg10=1.00 avg60=0.00 avg300=0.00 total=100\n";
        let psi = parse_psi(text).unwrap();
        assert_eq!(psi.some_avg10, 0.125);
        assert_eq!(psi.some_total, 2_500_000);
        assert_eq!((psi.full_avg10, psi.full_total), (0.01, 100));
        // cpu.pressure of older kernels has no `full` line.
        let cpu = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n").unwrap();
        assert_eq!((cpu.some_total, cpu.full_total), (7, 0));
        assert_eq!(parse_psi(""), None);
        assert_eq!(parse_psi("garbage\n"), None);
    }

    #[test]
    fn cpu_and_io_files() {
        assert_eq!(
            parse_cpu_stat_usage("usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n"),
            Some(1234)
        );
        assert_eq!(parse_cpu_stat_usage("user_usec 1\n"), None);
        assert_eq!(
            parse_io_stat_bytes("8:0 rbytes=100 wbytes=20 rios=1 wios=1\n8:16 rbytes=5 wbytes=0"),
            125
        );
        assert_eq!(parse_io_stat_bytes(""), 0);
        assert_eq!(
            parse_blkio_total("8:0 Read 10\n8:0 Write 5\n8:0 Total 15\nTotal 15\n"),
            Some(15)
        );
    }
}
