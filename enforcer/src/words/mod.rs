//! The ground floor: the vocabulary every layer shares (directions,
//! protocols, address lists, where a value was written, what a rule does and
//! watches). It imports nothing of the project, so the mechanisms (`cgroup/`,
//! `bpf/`), the policy reader (`config/`), the plan and the control loops
//! can all use it without importing one another. What a `when` rule watches
//! (`Metric`) is declared with the counters, in `counters/`.

mod net;
mod span;
mod vocab;

pub use net::{Access, AccessList, IpNet, NetRule, Proto};
pub use span::{Span, Spanned};
pub use vocab::{
    Action, Compare, Direction, MetricUnit, OnExit, Priority, Resource, SyscallAction,
};
