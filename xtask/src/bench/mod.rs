//! Benchmarks. Each compares variants in one run, interleaved, and prints medians,
//! spreads and ratios; results go into BENCHMARKS.md with the command that made them.

mod accounting;
mod classify;
mod control_plane;
mod enforcement;
mod parse;
mod priority;
mod scale;
mod support;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Clone)]
pub(crate) enum Which {
    /// Create, configure and delete N groups (memory + cpu limits):
    /// `enforcer apply` + `enforcer delete` vs a cgcreate + cgset + cgdelete loop.
    ControlPlane {
        /// Groups per run.
        #[arg(long, default_value_t = 1000)]
        groups: usize,
        /// Runs per variant (interleaved).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// What eBPF accounting costs: the syscall path (getppid) against an empty
    /// program and bpftrace, program cost from kernel BPF stats, 64-byte UDP send
    /// rate against an nftables counter rule, and reading 1k/10k groups' counters.
    Accounting {
        /// Interleaved runs per variant.
        #[arg(long, default_value_t = 9)]
        runs: usize,
        /// getppid() calls per timed run.
        #[arg(long, default_value_t = 2_000_000)]
        calls: u64,
        /// Seconds per UDP send run.
        #[arg(long, default_value_t = 2.0)]
        udp_secs: f64,
    },
    /// Exec to classified: enforcer's cgrulesengd (with and without --hold)
    /// against Debian's on the same rules, p50/p99 over N execs, and the cost
    /// per exec of processes no rule matches.
    Classify {
        /// Execs per run and variant.
        #[arg(long, default_value_t = 1000)]
        execs: usize,
        /// Interleaved runs.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// What enforcement costs: connect() latency with 0/10/10,000 non-matching deny
    /// rules against nftables, and per-packet program cost with a rate limit and budget.
    Enforcement {
        /// Interleaved runs per variant.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// What priorities do for a high-priority group while a low-priority one
    /// saturates the host (CPU hogs; bulk TCP over loopback): nothing
    /// attached, static priority, the arbiter; time to yield, work
    /// conservation, the arbiter's own CPU.
    Priority {
        /// Interleaved runs per variant.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// What the high group's fixed CPU work takes alone, about.
        #[arg(long, default_value_t = 3.0)]
        work_secs: f64,
        /// Seconds of request/response per network run.
        #[arg(long, default_value_t = 5.0)]
        net_secs: f64,
    },
    /// The agent at node scale: its CPU, RSS, scrape and SIGTERM time over
    /// N groups below a policy group (a delegated subtree) and observing the
    /// whole host, optionally with the maps full and against another build.
    Scale {
        /// Group counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "2000,30000,65000")]
        groups: Vec<usize>,
        /// Seconds of steady state measured per case.
        #[arg(long, default_value_t = 20.0)]
        secs: f64,
        /// Also observe this many groups (more than the maps hold: 65,536).
        #[arg(long)]
        full: Option<usize>,
        /// Another enforcer binary to compare with (such as a build of main).
        #[arg(long)]
        baseline: Option<std::path::PathBuf>,
    },
    /// How reading and validating a policy scales: `enforcer apply --dry-run` of
    /// N groups as cgconfig.conf and as TOML, optionally against an older build.
    Parse {
        /// Group counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        groups: Vec<usize>,
        /// Interleaved runs per variant.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Another enforcer binary to compare with (such as a build of main).
        #[arg(long)]
        baseline: Option<std::path::PathBuf>,
    },
}

pub(crate) fn run(which: Which) -> Result<()> {
    match which {
        Which::ControlPlane { groups, runs } => control_plane::run(groups, runs),
        Which::Enforcement { runs } => enforcement::run(runs),
        Which::Parse {
            groups,
            runs,
            baseline,
        } => parse::run(parse::Options {
            sizes: groups,
            runs,
            baseline,
        }),
        Which::Classify { execs, runs } => classify::run(execs, runs),
        Which::Scale {
            groups,
            secs,
            full,
            baseline,
        } => scale::run(scale::Options {
            sizes: groups,
            secs,
            full,
            baseline,
        }),
        Which::Priority {
            runs,
            work_secs,
            net_secs,
        } => priority::run(priority::Options {
            runs,
            work_secs,
            net_secs,
        }),
        Which::Accounting {
            runs,
            calls,
            udp_secs,
        } => accounting::run(accounting::Options {
            runs,
            calls,
            udp_secs,
        }),
    }
}

/// Median of a sample (sorts it).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `xtask bench-worker ARGS`: a benchmark's process inside a group.
pub(crate) fn worker(args: &[String]) -> Result<()> {
    if args.first().is_some_and(|a| a == "hop") {
        return scale::hop(args);
    }
    priority::worker(args)
}
