//! The cgroup control plane: what libcgroup's tools do, on v1, v2 and hybrid hosts.
//!
//! `host` discovers hierarchies; `path` and `keys` validate input without
//! touching anything; the verbs (`create`, `settings`, `procs`, `delete`,
//! `freeze`, `list`, `plan`) act only after all their input is validated.

mod create;
mod delete;
mod error;
mod freeze;
mod fsio;
mod host;
pub mod keys;
pub(crate) mod lcg;
mod list;
mod mounts;
pub(crate) use mounts::unescape as unescape_mount_field;
mod path;
mod plan;
mod procs;
mod settings;
mod stats;

pub use create::{Created, Ownership, owner_from_names, parse_owner};
pub use error::CgroupError;
pub use host::{Cgroups, Targets};
pub use list::Listed;
pub use mounts::{Hierarchy, Layout, Version};
pub use path::{GroupPath, GroupSpec, destination_problem};
pub use plan::{Applied, GroupPlan, Plan};
pub use procs::{Membership, is_version, memberships, parse_proc_cgroup, ps_format, v2_path};
#[cfg(test)]
mod fake_tests;
#[cfg(test)]
mod proptests;

pub use settings::{GroupValues, KeyValue, MemoryStats, PreparedWrite, SetOutcome, memory_stats};
pub use stats::{Psi, PsiResource, parse_cpu_stat_usage, parse_io_stat_bytes, parse_psi};

/// Runs the control plane's input parsers on `text` (for the fuzz targets and
/// property tests), checking what must hold whatever the input.
pub(crate) fn run_value_parsers(text: &str) {
    let mount = std::path::Path::new("/sys/fs/cgroup/memory");
    for candidate in [text, text.split_once(':').map_or(text, |(_, p)| p)] {
        if let Ok(p) = GroupPath::parse(candidate) {
            // Never outside the hierarchy, and printed form reads back the same.
            assert!(p.dir_in(mount).starts_with(mount), "{candidate:?} escapes");
            assert!(
                !p.as_str().split('/').any(|c| c == ".." || c == "."),
                "{candidate:?}"
            );
            assert_eq!(GroupPath::parse(&p.to_string()).ok().as_ref(), Some(&p));
        }
    }
    let _ = GroupSpec::parse(text);
    crate::units::run_all(text);
    // Owners by number only: names would ask the user database each time.
    if text.bytes().all(|b| b.is_ascii_digit() || b == b':') {
        let _ = parse_owner(text);
    }
    let facts = keys::HostFacts {
        online_cpus: vec![0, 1],
        online_mems: vec![0],
        page_size: 4096,
    };
    // `KEY=VALUE` as `set -r` takes it, and the whole text as a value of every
    // key that has a translation of its own.
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    for version in [Version::V1, Version::V2] {
        let _ = keys::translate(key, value, version, &facts);
        for known in keys::TRANSLATED_KEYS {
            if let Ok(t) = keys::translate(known, text, version, &facts) {
                assert!(!t.writes.is_empty() && t.writes.iter().all(|w| !w.file.is_empty()));
            }
        }
    }
    let _ = mounts::parse_mountinfo(text);
    let _ = ps_format(&parse_proc_cgroup(text));
}
