//! The project's own TOML policy format, read into the same model as
//! cgconfig.conf.
//!
//! ```toml
//! [group."foo"]
//! controllers = ["cpuset"]          # create the group in these even without settings
//! "cpu.shares" = 100                # CONTROLLER.FILE = value
//!
//! [group."foo".perm]
//! task  = { uid = "root", gid = "root", fperm = "660" }
//! ```
//!
//! `file.rs` is the file's shape (serde types, from which the JSON Schema and
//! `docs/policy.md` are generated); `read.rs` parses and translates toml's
//! errors; `group.rs`, `enforce.rs` and `arbiter.rs` turn the typed tables into the model,
//! judging each value with its grammar.

mod arbiter;
mod classify;
mod container;
mod enforce;
mod file;
mod group;
mod print;
mod raw;
mod read;
pub(super) mod reference;
mod schema;

pub(crate) use enforce::parse_action;
pub use print::to_toml;
pub use read::parse_toml;
#[cfg(test)]
mod tests;
