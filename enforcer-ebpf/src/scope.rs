//! What userspace tells the syscall programs about their scope: which
//! generation of syscall rules is in force, how many groups have them, and
//! (x86_64) where the task's compat flag is. Read by `sysenforce.rs` and
//! `compat.rs`, written only by userspace.

use aya_ebpf::{macros::map, maps::Array};
use enforcer_common::enforce::enforce_scope;

/// `[GENERATION, SYSCALL_GROUPS, COMPAT_OFFSET, COMPAT_MASK]`, see
/// `enforce_scope`. Written by userspace.
#[map]
pub(crate) static ENFORCE_SCOPE: Array<u32> = Array::with_max_entries(enforce_scope::ENTRIES, 0);
