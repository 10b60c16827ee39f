//! enforcer: a cgroup control plane (what libcgroup's tools do, on v1, v2 and
//! hybrid hosts) plus eBPF accounting and enforcement attached to those groups.
//!
//! The binary (`main.rs`) is a thin clap layer over this library.

pub mod agent;
pub mod bpf;
pub mod cgroup;
pub mod cli;
pub mod collect;
pub mod config;
pub mod control;
pub mod enforce;
#[doc(hidden)]
pub mod fuzzing;
pub mod plan;
pub mod report;
pub mod units;
