//! Benchmarks. Each compares variants in one run, interleaved, and prints medians,
//! spreads and ratios; results go into BENCHMARKS.md with the command that made them.

mod control_plane;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Clone, Copy)]
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
}

pub(crate) fn run(which: Which) -> Result<()> {
    match which {
        Which::ControlPlane { groups, runs } => control_plane::run(groups, runs),
    }
}

/// Median of a sample (sorts it).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
