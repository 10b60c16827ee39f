//! The plan: a policy plus what this host is (its cgroup hierarchies, its
//! kernel's features) becomes one desired state: the cgroupfs writes, each
//! group's kernel rule tables, its closed-loop rules. [`validate`] is the one
//! place where a policy is judged; `run`, `reload`, `reload --config` and
//! `apply --dry-run` all call it, so they always agree. Its errors
//! ([`PlanError`]) carry the policy's span.
//!
//! The mechanism layers (`cgroup/`, `bpf/`, `enforce/`) take plan types only
//! (the vocabulary in [`vocab`] and [`net`], the plan itself); decisions that
//! two mechanisms must agree on, such as what `priority` means for the CPU and
//! for packets, are made here once.

pub mod arbiter;
mod cgroups;
mod containers;
mod control;
pub mod diff;
mod error;
mod features;
mod kernel;
mod net;
mod shares;
mod span;
mod validate;
mod vocab;

#[cfg(test)]
mod tests;

pub use arbiter::{ArbiterPlan, ArbitratedGroup, GroupFloors};
pub use containers::{ContainerSelector, PlannedContainers};
pub use control::ControlRule;
pub use diff::{Diff, InForce};
pub use error::PlanError;
pub use features::check_features;
pub use kernel::{group_rules, group_rules_for, packet_priority};
pub use net::{Access, AccessList, IpNet, NetRule, Proto};
pub use shares::{LevelShare, NetShares, base_shares};
pub use span::{Span, Spanned};
pub use validate::{Kernel, Plan, PlannedGroup, parent_of, validate, validate_file, validate_for};
pub use vocab::{
    Action, Compare, Direction, Metric, MetricUnit, OnExit, Priority, Resource, SyscallAction,
};
