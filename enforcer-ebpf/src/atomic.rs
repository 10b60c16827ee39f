//! Atomic read-modify-write on map values shared by all CPUs.
//!
//! The bpfel target has no atomic compare-and-swap in `core` (`atomic-cas` is
//! false in its target spec) and LLVM refuses to use the value returned by an
//! atomic add unless the CPU is v3, which bpf-linker does not select. The BPF
//! instructions themselves (`BPF_ATOMIC` with `BPF_FETCH`, `BPF_CMPXCHG`, Linux
//! 5.12+) assemble fine from inline assembly, so these wrappers emit them
//! directly. Plain aligned 8-byte loads and stores are single instructions and
//! atomic on their own.
//!
//! The host stub build (see `main.rs`) gets the same operations from
//! `core::sync::atomic` instead; it never runs them.

#[cfg(target_arch = "bpf")]
use core::arch::asm;
#[cfg(not(target_arch = "bpf"))]
use core::sync::atomic::{AtomicU64, Ordering};

/// Atomically adds `val` to `*ptr` and returns the previous value.
///
/// # Safety
///
/// `ptr` must be an 8-byte aligned pointer into a map value (the verifier
/// refuses anything else).
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub(crate) unsafe fn fetch_add(ptr: *mut u64, val: u64) -> u64 {
    let mut v = val;
    // SAFETY: the caller passes a valid, aligned map value pointer.
    unsafe {
        asm!(
            "{v} = atomic_fetch_add((u64 *)({p} + 0), {v})",
            p = in(reg) ptr,
            v = inout(reg) v,
            options(nostack),
        );
    }
    v
}

/// Host stub of [`fetch_add`].
///
/// # Safety
///
/// `ptr` must be valid and 8-byte aligned.
#[cfg(not(target_arch = "bpf"))]
#[inline(always)]
pub(crate) unsafe fn fetch_add(ptr: *mut u64, val: u64) -> u64 {
    // SAFETY: the caller passes a valid, aligned pointer.
    unsafe { AtomicU64::from_ptr(ptr) }.fetch_add(val, Ordering::SeqCst)
}

/// Atomically replaces `*ptr` with `new` if it equals `expected`; returns the
/// value found (equal to `expected` exactly when the swap happened).
///
/// # Safety
///
/// As for [`fetch_add`].
#[cfg(target_arch = "bpf")]
#[inline(always)]
pub(crate) unsafe fn cmpxchg(ptr: *mut u64, expected: u64, new: u64) -> u64 {
    let mut r0 = expected;
    // SAFETY: as above; BPF_CMPXCHG compares with and returns into r0.
    unsafe {
        asm!(
            "r0 = cmpxchg_64({p} + 0, r0, {n})",
            p = in(reg) ptr,
            n = in(reg) new,
            inout("r0") r0,
            options(nostack),
        );
    }
    r0
}

/// Host stub of [`cmpxchg`].
///
/// # Safety
///
/// As for the host [`fetch_add`].
#[cfg(not(target_arch = "bpf"))]
#[inline(always)]
pub(crate) unsafe fn cmpxchg(ptr: *mut u64, expected: u64, new: u64) -> u64 {
    // SAFETY: the caller passes a valid, aligned pointer.
    match unsafe { AtomicU64::from_ptr(ptr) }.compare_exchange(
        expected,
        new,
        Ordering::SeqCst,
        Ordering::SeqCst,
    ) {
        Ok(found) | Err(found) => found,
    }
}

/// One 8-byte load that the compiler may neither split, merge nor cache.
///
/// # Safety
///
/// As for [`fetch_add`].
#[inline(always)]
pub(crate) unsafe fn load(ptr: *const u64) -> u64 {
    // SAFETY: as above.
    unsafe { ptr.read_volatile() }
}

/// One 8-byte store.
///
/// # Safety
///
/// As for [`fetch_add`].
#[inline(always)]
pub(crate) unsafe fn store(ptr: *mut u64, val: u64) {
    // SAFETY: as above.
    unsafe { ptr.write_volatile(val) }
}
