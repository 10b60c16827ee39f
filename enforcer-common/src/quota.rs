//! Per-subtree quotas of the counting maps: what one group's subtree (a
//! delegated user's, say) can put in `NET_EGRESS`, `NET_INGRESS`,
//! `SOCK_ATTEMPTS` and `SYSCALLS`.
//!
//! The counting programs charge each packet or call to the cgroup it comes
//! from, so every descendant of an attached group gets entries of its own.
//! A user with a delegated subtree once made 70,000 groups with a socket
//! each and filled `NET_EGRESS`: the policy's own groups' traffic went
//! uncounted and the agent, reading 70,000 groups a second, stopped
//! answering. Now:
//!
//! - **Owners** (`COUNT_OWNERS`, written by userspace) are the groups the
//!   agent answers for: the policy's groups, or the root in observe mode.
//!   An owner always counts as itself, and userspace puts its entries in
//!   the maps before anything else can fill them: it is never starved.
//! - A group below an owner counts as itself once **admitted**
//!   (`COUNT_ADMITTED`: group -> owner), which happens on its first event
//!   while the owner's quota has room: `COUNT_TAKEN[owner]` (kernel, atomic
//!   adds) below `COUNT_OWNERS[owner]` (the allowance userspace sets to
//!   taken + quota - groups admitted now, so deleted groups free their
//!   places).
//! - Beyond its owner's quota (or when a map is full) a group is **folded**:
//!   its events are charged to its deepest ancestor that counts as itself
//!   (its owner at worst), remembered in the LRU cache `COUNT_FOLDED`, and
//!   counted per owner in `COUNT_FOLDS`, which userspace reports. Nothing
//!   goes uncounted; what is lost is the detail below the fold.
//!
//! A quota counts groups, not map entries, so it stays meaningful if the
//! counters move to arrays indexed by a group's slot (an admission would
//! then hand out the slot).
//!
//! | map | kind | key -> value | written by |
//! |---|---|---|---|
//! | `COUNT_OWNERS` | hash | owner cgroup2 id -> allowance (`u64`) | userspace |
//! | `COUNT_TAKEN` | hash | owner cgroup2 id -> admissions taken (`u64`) | counting programs (atomic), created by userspace |
//! | `COUNT_ADMITTED` | hash | cgroup2 id -> its owner's id | counting programs; userspace removes |
//! | `COUNT_FOLDED` | LRU hash | cgroup2 id -> id it is charged to | counting programs; userspace clears |
//! | `COUNT_FOLDS` | per-CPU hash | owner cgroup2 id -> events folded (`u64`) | counting programs |

/// Ancestor levels the programs look through for a group's owner (the root
/// is level 0). An owner deeper than this still counts as itself; its
/// descendants then count as themselves without a quota, as before quotas.
pub const MAX_OWNER_LEVEL: i32 = 16;

/// Default quota: descendants of each owner with counters of their own.
pub const DEFAULT_SUBGROUPS: u32 = 4096;

/// Capacity of `COUNT_FOLDED` (a cache: an evicted group is looked up again).
pub const MAX_FOLDED: u32 = 16384;

/// Capacity of `COUNT_OWNERS`, `COUNT_TAKEN` and `COUNT_FOLDS`.
pub const MAX_OWNERS: u32 = 4096;
