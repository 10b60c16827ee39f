//! The cgroup control plane: what libcgroup's tools do, on v1, v2 and hybrid hosts.
//!
//! `host` discovers hierarchies; `path`, `keys` and `units` validate input without
//! touching anything; the verbs (`create`, `settings`, `procs`, `delete`,
//! `freeze`, `list`, `plan`) act only after all their input is validated.

mod create;
mod delete;
mod error;
mod freeze;
mod fsio;
mod host;
pub mod keys;
mod list;
mod mounts;
mod path;
mod plan;
mod procs;
mod settings;
pub mod units;

pub use create::{Created, Ownership, parse_owner};
pub use error::CgroupError;
pub use host::{Cgroups, Targets};
pub use list::Listed;
pub use mounts::{Hierarchy, Layout, Version};
pub use path::{GroupPath, GroupSpec};
pub use plan::{Applied, GroupPlan, Plan};
pub use procs::{Membership, is_version, memberships, parse_proc_cgroup, ps_format, v2_path};
#[cfg(test)]
mod fake_tests;
#[cfg(test)]
mod proptests;

pub use settings::{GroupValues, KeyValue, MemoryStats, PreparedWrite, SetOutcome, memory_stats};
