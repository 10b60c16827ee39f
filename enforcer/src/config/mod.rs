//! Policy files: libcgroup's `cgconfig.conf` (read unchanged) and the project's own
//! TOML format both become one [`Policy`], with a [`Span`] on everything so that
//! later checks against the host can still point at `file:line:column`.
//!
//! The TOML format also carries enforcement: `[agent]` settings and, per group,
//! `priority`, `network`, `syscalls` and `when` rules (see `toml_enforce.rs` and the
//! types in [`model`]). cgconfig.conf has none of these. The TOML file's shape
//! is typed (`toml_policy/file.rs`), and its JSON Schema and `docs/policy.md`
//! are generated from it.
//!
//! Only syntax is checked here. Whether a controller, key or group path makes sense
//! on this machine is decided by `cgroup::plan`.

pub mod model;

mod cgconfig;
mod classify;
mod container;
mod error;
mod lexer;
mod load;
mod netrule;
mod perm;
mod position;
#[cfg(test)]
pub(crate) mod proptests;
mod suggest;
mod threshold;
mod toml_policy;

pub(crate) use perm::parse_mode;
pub(crate) use suggest::one_of;

pub use cgconfig::parse_cgconfig;
pub use classify::ClassifyRule;
pub use container::{ContainerRule, RUNTIMES};
pub use error::{ConfigError, check_located};
pub use load::{load, parse_policy};
pub use model::{
    Access, AccessList, Action, AgentSpec, ArbiterSpec, Budget, Compare, ControllerSpec, Direction,
    Floors, GroupSpec, IpNet, Metric, MetricUnit, NetRule, NetworkSpec, OnExit, Owner, Perm,
    Policy, Priority, Proto, Resource, Setting, Span, Spanned, SyscallAction, SyscallSpec,
    WhenRule,
};
pub use toml_policy::reference::{policy_reference, policy_schema, policy_schema_text};
pub use toml_policy::{parse_toml, to_toml};

/// Runs every value parser of the policy formats on `text` (for the fuzz targets
/// and property tests): none may panic, and each error must say something.
pub(crate) fn run_value_parsers(text: &str) {
    let said = |r: Result<(), String>| {
        if let Err(message) = r {
            assert!(!message.is_empty(), "an empty message for {text:?}");
        }
    };
    crate::units::run_all(text);
    for unit in [
        MetricUnit::Bytes,
        MetricUnit::BytesPerSec,
        MetricUnit::Count,
        MetricUnit::PerSec,
        MetricUnit::Percent,
    ] {
        said(threshold::parse_threshold(unit, text).map(drop));
    }
    said(netrule::parse_net_rule(text).map(drop));
    said(perm::parse_mode(text).map(drop));
    said(toml_policy::parse_action(text).map(drop));
}
