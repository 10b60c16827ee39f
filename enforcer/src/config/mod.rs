//! Policy files: libcgroup's `cgconfig.conf` (read unchanged) and the project's own
//! TOML format both become one [`Policy`], with a [`Span`] on everything so that
//! later checks against the host can still point at `file:line:column`.
//!
//! Only syntax is checked here. Whether a controller, key or group path makes sense
//! on this machine is decided by `cgroup::plan`.

pub mod model;

mod cgconfig;
mod error;
mod lexer;
mod load;
mod perm;
mod position;
mod toml_policy;

pub use cgconfig::parse_cgconfig;
pub use error::ConfigError;
pub use load::load;
pub use model::{ControllerSpec, GroupSpec, Owner, Perm, Policy, Setting, Span};
pub use toml_policy::parse_toml;
