//! `enforce_syscalls`: raw tracepoint `sys_enter`, the `kill` and `log`
//! syscall rules (`deny` is done by the cgroup and BPF-LSM programs of `deny.rs`).
//!
//! It runs for every syscall on the host, so what processes outside groups with
//! syscall rules pay is kept small:
//!
//! 1. one inlined array load: while no group has `kill`/`log` rules
//!    (`ENFORCE_SCOPE[SYSCALL_GROUPS]` is 0) it returns at once;
//! 2. the cgroup id helper and a compare with this CPU's cache of the last
//!    cgroup's rule owners (a task usually makes many syscalls in a row);
//! 3. on a cache miss, one lookup in the `SYSCALL_OWNERS` LRU hash; only the
//!    first syscall of a cgroup after a change of the set of groups with
//!    syscall rules walks the cgroup's ancestors (at most 16 helper calls and
//!    lookups) to find them.
//!
//! Tasks in such groups then pay one `GROUP_RULES` lookup per owner and a bit
//! test. The rules of every ancestor group with syscall rules apply (up to
//! `SYSCALL_OWNERS` nested ones, the deepest); `kill` wins over `log`.
//!
//! `kill` sends SIGKILL to the calling process (`bpf_send_signal`) before the
//! syscall runs. The kernel delivers it when the task returns to user space, so
//! the process never sees the result, and a syscall that would block is
//! interrupted at once; a syscall that completes without blocking still does
//! its work first (an `unlink` unlinks). Use `deny` where a BPF-LSM hook exists
//! to make sure a call has no effect.

use core::arch::asm;

use aya_ebpf::{
    helpers::{bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_send_signal},
    macros::{map, raw_tracepoint},
    maps::{LruHashMap, PerCpuArray},
    programs::RawTracePointContext,
};
use enforcer_common::{
    EVENT_SYSCALL, EnforceCounter, GroupPolicy, SyscallOwnerCache, SyscallOwners,
    enforce::{
        SYSCALL_BITMAP_BITS, SYSCALL_BITMAP_WORDS, SYSCALL_OWNER_SLOTS, SYSCALL_OWNERS as OWNERS,
        action, compat, enforce_scope, policy_flags,
    },
};

use crate::events::{emit, task_event};
use crate::policy::{count, rules};
use crate::scope::ENFORCE_SCOPE;

/// cgroup2 id -> the groups with syscall rules that contain it. A cache,
/// filled by this program; invalid once the generation moves on.
#[map]
static SYSCALL_OWNERS: LruHashMap<u64, SyscallOwners> =
    LruHashMap::with_max_entries(SYSCALL_OWNER_SLOTS, 0);

/// The last cgroup's owners on this CPU.
#[map]
static SYSCALL_OWNER_CACHE: PerCpuArray<SyscallOwnerCache> = PerCpuArray::with_max_entries(1, 0);

/// Ancestor levels examined when resolving a cgroup's owners.
const MAX_WALK: i32 = 16;

const SIGKILL: u32 = 9;

#[raw_tracepoint(tracepoint = "sys_enter")]
fn enforce_syscalls(ctx: RawTracePointContext) -> u32 {
    match ENFORCE_SCOPE.get(enforce_scope::SYSCALL_GROUPS) {
        Some(&n) if n != 0 => {}
        _ => return 0,
    }
    // +1 so that zeroed cache entries never match.
    let generation = ENFORCE_SCOPE
        .get(enforce_scope::GENERATION)
        .map_or(0, |g| g.wrapping_add(1));
    // SAFETY: no arguments; allowed in tracing programs.
    let cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let owners = owners_of(cgroup_id, generation);
    if owners.iter().all(|&o| o == 0) {
        return 0;
    }
    // sys_enter's TP_PROTO is (struct pt_regs *regs, long id).
    let nr: i64 = ctx.arg(1);
    let Ok(nr) = u64::try_from(nr) else {
        return 0;
    };
    let nr = nr & !compat::X32_SYSCALL_BIT;
    if nr >= u64::from(SYSCALL_BITMAP_BITS) {
        return 0;
    }
    let slot = Slot::of(nr);
    // Whether any owner has a rule for this number in either table; only then
    // is it worth finding out which ABI the call came through. The words are
    // or-ed without branching: most calls match no rule, and this is the
    // work every call of a task in such a group pays.
    let mut words = 0u64;
    for owner in owners {
        if let Some(p) = rules(owner) {
            words |= slot.word(&p.kill)
                | slot.word(&p.log)
                | slot.word(&p.kill_compat)
                | slot.word(&p.log_compat);
        }
    }
    if words & slot.bit == 0 {
        return 0;
    }
    let is_compat = crate::compat::in_compat_syscall(&ctx);
    let (mut killer, mut logger) = (0u64, 0u64);
    for owner in owners {
        let Some(policy) = rules(owner) else {
            continue;
        };
        let (kill, log) = bitmaps(policy, is_compat);
        if slot.hit(kill) {
            killer = owner;
            break;
        }
        if logger == 0 && slot.hit(log) {
            logger = owner;
        }
    }
    let (owner, act) = if killer != 0 {
        // SAFETY: no pointer arguments; signals the current process.
        unsafe { bpf_send_signal(SIGKILL) };
        (killer, action::KILL)
    } else if logger != 0 {
        (logger, action::LOG)
    } else {
        return 0;
    };
    count(owner, |c: &mut EnforceCounter| {
        let field = if act == action::KILL {
            &mut c.syscalls_killed
        } else {
            &mut c.syscalls_logged
        };
        *field = field.wrapping_add(1);
    });
    let mut event = task_event(EVENT_SYSCALL, owner, cgroup_id);
    event.action = act;
    event.detail = nr as u32;
    event.rule = u32::from(is_compat);
    emit(&event);
    0
}

/// Where a syscall number sits in a syscall bitmap of [`GroupPolicy`]: a word
/// index that the verifier can see is below [`SYSCALL_BITMAP_WORDS`], and the
/// number's bit in that word.
#[derive(Clone, Copy)]
struct Slot {
    word: usize,
    bit: u64,
}

impl Slot {
    /// The slot of `nr`, which the caller has checked is below
    /// [`SYSCALL_BITMAP_BITS`].
    ///
    /// The word index is masked although it is in range: the compiler may
    /// copy `nr` to the stack before the caller's range check and compute the
    /// index from that copy, and Linux 6.1's verifier does not carry a bound
    /// checked on a register over to a stack copy of it made earlier (6.12
    /// does), so it would see an unbounded offset into the 408-byte
    /// `GROUP_RULES` value and refuse the program ("unbounded memory access").
    /// A mask bounds the index itself, wherever it is kept. [`opaque`] hides
    /// the caller's check from LLVM, which would otherwise drop the mask as
    /// redundant; the mask in turn lets LLVM drop `get`'s bounds check.
    #[inline(always)]
    fn of(nr: u64) -> Self {
        let nr = opaque(nr);
        Self {
            word: (nr / 64) as usize & (SYSCALL_BITMAP_WORDS - 1),
            bit: 1u64 << (nr % 64),
        }
    }

    /// The word of `map` that holds the number's bit.
    #[inline(always)]
    fn word(self, map: &[u64; SYSCALL_BITMAP_WORDS]) -> u64 {
        map.get(self.word).copied().unwrap_or(0)
    }

    /// Whether the number's bit is set in `map`.
    #[inline(always)]
    fn hit(self, map: &[u64; SYSCALL_BITMAP_WORDS]) -> bool {
        self.word(map) & self.bit != 0
    }
}

/// `v`, unchanged, as a value the compiler knows nothing about (no
/// instruction is emitted for it).
#[inline(always)]
fn opaque(v: u64) -> u64 {
    let mut v = v;
    // SAFETY: an empty template: no instruction, no memory or stack access.
    unsafe { asm!("/* {v} */", v = inout(reg) v, options(pure, nomem, nostack, preserves_flags)) };
    v
}

#[inline(always)]
fn bitmaps(
    policy: &GroupPolicy,
    is_compat: bool,
) -> (&[u64; SYSCALL_BITMAP_WORDS], &[u64; SYSCALL_BITMAP_WORDS]) {
    if is_compat {
        (&policy.kill_compat, &policy.log_compat)
    } else {
        (&policy.kill, &policy.log)
    }
}

/// The groups with syscall rules containing `cgroup_id`, from this CPU's
/// cache, the LRU cache, or by walking the ancestors.
#[inline(always)]
fn owners_of(cgroup_id: u64, generation: u32) -> [u64; OWNERS] {
    let cache = SYSCALL_OWNER_CACHE.get_ptr_mut(0);
    if let Some(cache) = cache {
        // SAFETY: this CPU's slot, valid for the run; raw tracepoint programs
        // do not nest on one CPU.
        let c = unsafe { &*cache };
        if c.cgroup_id == cgroup_id && c.owners.generation == generation {
            return c.owners.owners;
        }
    }
    // SAFETY: the LRU value is only read, and copied at once.
    let owners = match unsafe { SYSCALL_OWNERS.get(cgroup_id) } {
        Some(v) if v.generation == generation => *v,
        _ => {
            let v = SyscallOwners {
                generation,
                _pad: 0,
                owners: walk(),
            };
            let _ = SYSCALL_OWNERS.insert(cgroup_id, v, 0);
            v
        }
    };
    if let Some(cache) = cache {
        // SAFETY: as above.
        unsafe {
            *cache = SyscallOwnerCache { cgroup_id, owners };
        }
    }
    owners.owners
}

/// The current task's ancestors (and itself) that have syscall rules, the
/// deepest `OWNERS` of them, in no particular order.
#[inline(always)]
fn walk() -> [u64; OWNERS] {
    let mut found = [0u64; OWNERS];
    let mut n = 0usize;
    for level in 1..=MAX_WALK {
        // SAFETY: no pointer arguments.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        if id == 0 {
            break;
        }
        if rules(id).is_some_and(|p| p.flags & policy_flags::SYSCALLS != 0) {
            if let Some(slot) = found.get_mut(n % OWNERS) {
                *slot = id;
            }
            n = n.wrapping_add(1);
        }
    }
    found
}
