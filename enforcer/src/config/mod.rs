//! Policy files: libcgroup's `cgconfig.conf` (read unchanged) and the project's own
//! TOML format both become one [`Policy`], with a [`Span`] on everything so that
//! later checks against the host can still point at `file:line:column`.
//!
//! The TOML format also carries enforcement: `[agent]` settings and, per group,
//! `priority`, `network`, `syscalls` and `when` rules (see `toml_enforce.rs` and the
//! types in [`model`]). cgconfig.conf has none of these.
//!
//! Only syntax is checked here. Whether a controller, key or group path makes sense
//! on this machine is decided by `cgroup::plan`.

pub mod model;

mod cgconfig;
mod error;
mod lexer;
mod load;
mod netrule;
mod perm;
mod position;
#[cfg(test)]
pub(crate) mod proptests;
mod suggest;
mod toml_enforce;
mod toml_policy;
mod units;

pub(crate) use perm::parse_mode;
pub(crate) use units::parse_duration;

pub use cgconfig::parse_cgconfig;
pub use error::ConfigError;
pub use load::{load, parse_policy};
pub use model::{
    Access, AccessList, Action, AgentSpec, Budget, Compare, ControllerSpec, Direction, GroupSpec,
    IpNet, Metric, MetricUnit, NetRule, NetworkSpec, OnExit, Owner, Perm, Policy, Priority, Proto,
    Setting, Span, Spanned, SyscallAction, SyscallSpec, WhenRule,
};
pub use toml_policy::parse_toml;
