//! Rule-based classification of new processes: libcgroup's cgrules.conf (and
//! the same rules as `[[classify]]` in the TOML policy), applied when a
//! process executes a program.
//!
//! * `rules`: the cgrules.conf reader, matching and placing (libcgroup's
//!   semantics, shared with `cgexec`/`cgclassify` without `-g`).
//! * `procfs`: the facts a rule matches (effective ids, process name).
//! * `sticky`: the `/var/run/cgred.socket` protocol of `--sticky`.
//! * `engine`: the loop that takes exec events from the kernel
//!   (`bpf::exec`), matches and moves; run by the agent and by
//!   `cgrulesengd`.

pub mod agent;
pub mod engine;
pub mod procfs;
pub mod rules;
pub mod sticky;
