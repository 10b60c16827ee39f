//! The eBPF side of enforcer, as seen from userspace.
//!
//! The kernel programs live in the `enforcer-ebpf` crate. `enforcer/build.rs`
//! compiles them with aya-build and this module embeds the resulting object, so
//! the binary is self-contained.
//!
//! * [`Kernel`]: the object loaded with its maps pinned under a pin directory
//!   ([`DEFAULT_PIN_DIR`]); attaches the per-group counting programs
//!   ([`Kernel::count_at`]: at the topmost of the wanted cgroups only, so
//!   nothing is counted twice) and the host-wide ones ([`Kernel::attach_tracing`]),
//!   reads counters ([`Kernel::snapshot`]) and events ([`Kernel::drain_events`]).
//!   Links are pinned too, so everything keeps counting across agent restarts.
//! * Enforcement, also on [`Kernel`]: [`Kernel::attach_enforcement`] attaches the
//!   `enforce_*` programs to a policy group only, [`Kernel::set_group_rules`]
//!   loads a group's [`GroupRules`] (address lists, rate limits, budgets,
//!   syscall rules; replaced atomically), [`Kernel::clear_group_rules`],
//!   [`Kernel::set_rate`] (the closed loop's throttle),
//!   [`Kernel::set_yield_rate`] and [`Kernel::set_shares`] (the arbiter's
//!   yields and the node's network shares). Pinned like the
//!   counting side: a killed agent leaves its rules enforced.
//! * [`snapshot_pinned`]: counters from the pins, from another process.
//! * [`unpin_all`]: detach and unpin everything (`enforcer stop`).
//! * [`probe`]: load everything once, unpinned, and report what the object
//!   contains, for `enforcer status`.
//! * [`cgroup_id`]: the id the kernel programs key their maps by.
//!
//! Map and program names, and the pin directory layout, are in `layout.rs`; the
//! shared key/value types in `enforcer-common` (re-exported here).

mod batch;
#[cfg(feature = "bench")]
pub mod bench;
mod btf;
mod budget;
mod counting;
mod enforcement;
mod error;
mod events;
pub mod exec;
mod features;
mod held;
mod kernel;
mod layout;
mod lsm_attach;
mod object;
mod pins;
mod quota;
mod rawlink;
mod rules;
mod shares;
mod snapshot;
mod tracefs;
mod trust;

use std::path::Path;

pub use budget::{BudgetReport, LimitReport};
pub use counting::{CountingLinks, attach_points};
pub use enforcer_common::{ENFORCE_MAX_LEVEL, NetCounter, OomEvent, SockCounter, SyscallKey};
pub use error::BpfError;
pub use events::{Event, NetOp};
pub use features::{Feature, FeatureReport, FeatureStatus, Refusal, features, probe_features};
pub use held::Restored;
pub use kernel::{Kernel, SyscallScope};
pub use layout::{Capacity, DEFAULT_PIN_DIR};
pub use object::{ProbeReport, cgroup_id, probe};
pub use quota::QuotaReport;
pub use rules::{
    DENY_HOOKS, GroupRules, Limits, RATE_BURST, RATE_BURST_BYTES, SyscallRules, deny_hook,
};
pub use shares::{LevelShare, NetShares};
pub use snapshot::{GroupCounters, MapFill, Snapshot};

/// Traffic direction of [`Kernel::set_rate`] (the policy model's type).
pub use crate::words::Direction;

/// Reads the counters from the maps pinned under `pin_dir/maps` without loading
/// anything (for `enforcer stats` while the agent runs in another process, or
/// after it stopped without `enforcer stop`). Fails with
/// [`BpfError::NotRunning`] if nothing is pinned there.
pub fn snapshot_pinned(pin_dir: &Path) -> Result<Snapshot, BpfError> {
    snapshot::read_pinned(pin_dir)
}

/// Checks `pin_dir` as [`Kernel::open`] will, without creating or loading
/// anything: the bpffs directories above it root's (sticky if others may
/// write them), and, if it exists already, it on bpffs and everything in it
/// root's alone. The agent runs this before it changes anything, so a
/// refused pin directory fails the start with the host untouched.
pub fn check_pin_dir(pin_dir: &Path) -> Result<(), BpfError> {
    trust::check_ancestors(pin_dir)?;
    if std::fs::symlink_metadata(pin_dir).is_ok() {
        pins::check_bpffs(pin_dir)?;
        trust::check_tree(pin_dir)?;
    }
    Ok(())
}

/// Each rate-limited or budgeted group's limits (cgroup id -> per
/// direction), read from the maps pinned under `pin_dir`.
pub fn limits_pinned(
    pin_dir: &Path,
) -> Result<std::collections::BTreeMap<u64, Vec<LimitReport>>, BpfError> {
    budget::read_pinned(pin_dir)
}

/// Detaches and unpins everything under `pin_dir`: the links (which detaches
/// the programs, as nothing else holds them) and the maps (freed once no program
/// uses them). What `enforcer stop` does. Only our own pins are touched:
/// `maps/<one of our map names>`, `links/<cgroup id or global>/<one of our
/// program names>`, then those directories if empty; `pin_dir` itself stays
/// (empty, root's, mode 0700), so no other user can take its name on a
/// world-writable bpffs before the next start. Returns how many pins were
/// removed; 0 if `pin_dir` does not exist.
pub fn unpin_all(pin_dir: &Path) -> Result<usize, BpfError> {
    pins::unpin_all(pin_dir)
}
