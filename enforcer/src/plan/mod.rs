//! The plan: a policy plus what this host is (its cgroup hierarchies, its
//! kernel's features) becomes one desired state: the cgroupfs writes, each
//! group's kernel rule tables, its closed-loop rules. [`validate`] is the one
//! place where a policy is judged; `run`, `reload`, `reload --config` and
//! `apply --dry-run` all call it, so they always agree. Its errors
//! ([`PlanError`]) carry the policy's span.
//!
//! The mechanism layers (`cgroup/`, `bpf/`) never import the plan: they take
//! the shared words (`crate::words`) and their own input types, which the
//! plan builds (re-exported here for the layers above); decisions that two
//! mechanisms must agree on, such as what `priority` means for the CPU and
//! for packets, are made here once.

pub mod arbiter;
mod cgroups;
mod containers;
mod control;
pub mod diff;
mod error;
mod features;
mod kernel;
mod model;
mod shares;
mod validate;

#[cfg(test)]
mod tests;

pub use crate::bpf::{LevelShare, NetShares};
pub use crate::counters::Metric;
pub use crate::words::{
    Access, AccessList, Action, Compare, Direction, IpNet, MetricUnit, NetRule, OnExit, Priority,
    Proto, Resource, Span, Spanned, SyscallAction,
};
pub use arbiter::{ArbiterPlan, ArbitratedGroup, GroupFloors};
pub use containers::{ContainerSelector, PlannedContainers};
pub use control::ControlRule;
pub use diff::{Diff, InForce};
pub use error::PlanError;
pub use features::check_features;
pub use kernel::{group_rules, group_rules_for, packet_priority};
pub use model::{FeatureNeed, Plan, PlannedGroup, RuleCounts};
pub use shares::base_shares;
pub use validate::{Kernel, parent_of, validate, validate_file, validate_for};
