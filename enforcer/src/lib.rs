//! enforcer: a cgroup control plane (what libcgroup's tools do, on v1, v2 and
//! hybrid hosts) plus eBPF accounting and enforcement attached to those groups.
//!
//! The binary (`main.rs`) is a thin clap layer over this library.

pub mod agent;
pub mod arch;
pub mod bpf;
pub mod cgroup;
pub mod classify;
pub mod cli;
pub mod collect;
pub mod compat;
pub mod config;
pub mod control;
pub mod counters;
pub mod doctor;
pub mod enforce;
pub mod escape;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod logging;
pub mod plan;
pub mod report;
pub mod top;
pub mod trust;
pub mod units;
pub mod words;
