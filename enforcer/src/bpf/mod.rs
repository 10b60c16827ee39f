//! The eBPF side of enforcer, as seen from userspace.
//!
//! The kernel programs live in the `enforcer-ebpf` crate. `enforcer/build.rs` compiles
//! them with aya-build and this module embeds the resulting object, so the binary is
//! self-contained: [`EgressCounter::load`] needs no files at run time.
//!
//! * [`EgressCounter`]: per-cgroup egress bytes/packets (`count_egress` +
//!   `NET_EGRESS`), attached to cgroup2 directories.
//! * [`probe`]: load everything once and report what the object contains, for
//!   `enforcer status`.
//! * [`cgroup_id`]: the id the kernel programs key their maps by.

mod egress;
mod error;
mod object;

pub use egress::EgressCounter;
pub use error::BpfError;
pub use object::{ProbeReport, cgroup_id, probe};
