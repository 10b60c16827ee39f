//! Developer tasks: `cargo xtask setup | build | build-and-run | test | bench`.
//!
//! Every task that needs the eBPF toolchain calls `setup` first, so a fresh machine
//! needs nothing installed by hand.

mod bench;
#[cfg(test)]
mod claims;
mod cross;
mod dist;
mod fuzz;
#[cfg(test)]
mod house;
#[cfg(test)]
mod readme_tests;
mod run;
mod setup;
mod sweep;
mod vmtest;
mod watchdog;
mod workspace;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "enforcer developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building the eBPF side needs (idempotent).
    Setup,
    /// Build the workspace (userspace binary with the eBPF object embedded).
    Build {
        #[arg(long)]
        release: bool,
        /// Build for another architecture (installs its Rust standard
        /// library and Debian's cross linker); target/TRIPLE/PROFILE/enforcer.
        #[arg(long, value_enum)]
        target: Option<cross::Target>,
    },
    /// Build, then run `enforcer ARGS` as root (the main job).
    BuildAndRun {
        #[arg(long)]
        release: bool,
        /// Arguments passed to enforcer.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Setup, then run unit and end-to-end tests against the real kernel.
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Fuzz a policy reader for N seconds (cargo-fuzz on nightly); lists the
    /// targets when none is given.
    Fuzz {
        #[arg(conflicts_with = "all")]
        target: Option<String>,
        /// Every target in turn, `--secs` each (what CI runs).
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// Extra libFuzzer arguments (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Run a benchmark and print its table (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// A benchmark's worker process (started inside a group by the benchmark).
    #[command(hide = true)]
    BenchWorker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the end-to-end tests in QEMU on other kernels and cgroup layouts.
    Vmtest(vmtest::Args),
    /// Release build with man pages, shell completions, the systemd unit and
    /// the Kubernetes manifests, in target/dist/enforcer-VERSION/ (with
    /// --target, target/dist/enforcer-VERSION-ARCH/).
    Dist {
        #[arg(long, value_enum)]
        target: Option<cross::Target>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Setup => setup::run(),
        Task::Build { release, target } => {
            setup::run()?;
            run::build_for(target, release)
        }
        Task::BuildAndRun { release, args } => {
            setup::run()?;
            run::build(release)?;
            run::run_enforcer(release, &args)
        }
        Task::Test { args } => {
            setup::run()?;
            run::test(&args)
        }
        Task::Fuzz {
            target,
            all,
            secs,
            args,
        } => {
            if all {
                fuzz::run_all(secs, &args)
            } else {
                fuzz::run(target.as_deref(), secs, &args)
            }
        }
        Task::Bench { which } => {
            setup::run()?;
            run::build(true)?;
            bench::run(which)
        }
        Task::BenchWorker { args } => bench::worker(&args),
        Task::Vmtest(args) => vmtest::run(args),
        Task::Dist { target } => {
            setup::run()?;
            // The host binary writes the man pages and completions (the
            // same for every architecture).
            run::build(true)?;
            if target.is_some() {
                run::build_for(target, true)?;
            }
            dist::run(target).map(|_| ())
        }
    }
}
