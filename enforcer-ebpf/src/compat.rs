//! Whether the syscall entering `sys_enter` came through the 32-bit compat
//! table (i386 on x86_64, AArch32 on aarch64), whose numbers are another
//! table's: `count_syscalls` keys it apart, `enforce_syscalls` looks it up
//! in the compat bitmaps. The only per-architecture code of the kernel side
//! (chosen by aya's `bpf_target_arch`, which `enforcer/build.rs` sets from
//! the target the object is embedded in); the syscall number itself is
//! `sys_enter`'s second argument everywhere.

use aya_ebpf::programs::RawTracePointContext;

/// x86_64: `TS_COMPAT` in `current->thread_info.status` (set for the
/// duration of an `int 0x80` or 32-bit `syscall`, also from a 64-bit
/// process), at the offset userspace found in BTF and wrote to
/// `ENFORCE_SCOPE`; no detection until it has.
#[cfg(not(bpf_target_arch = "aarch64"))]
#[inline(always)]
pub(crate) fn in_compat_syscall(_ctx: &RawTracePointContext) -> bool {
    use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
    use enforcer_common::enforce::enforce_scope;

    use crate::scope::ENFORCE_SCOPE;

    let mask = ENFORCE_SCOPE
        .get(enforce_scope::COMPAT_MASK)
        .copied()
        .unwrap_or(0);
    if mask == 0 {
        return false;
    }
    let offset = ENFORCE_SCOPE
        .get(enforce_scope::COMPAT_OFFSET)
        .copied()
        .unwrap_or(0);
    // SAFETY: bpf_get_current_task has no arguments; the read goes through
    // bpf_probe_read_kernel, which fails instead of faulting.
    let status = unsafe {
        let task = bpf_get_current_task() as *const u8;
        bpf_probe_read_kernel(task.wrapping_add(offset as usize).cast::<u32>())
    };
    status.is_ok_and(|s| s & mask != 0)
}

/// aarch64: the caller's saved `pstate` (the first member of `pt_regs` is
/// the uapi `user_pt_regs`) has `PSR_MODE32_BIT` when it trapped from
/// AArch32. Architectural, so unlike a thread flag's number it cannot move
/// between kernel versions.
#[cfg(bpf_target_arch = "aarch64")]
#[inline(always)]
pub(crate) fn in_compat_syscall(ctx: &RawTracePointContext) -> bool {
    use aya_ebpf::{bindings::user_pt_regs, helpers::bpf_probe_read_kernel};

    /// `PSR_MODE32_BIT` (arch/arm64/include/uapi/asm/ptrace.h).
    const PSR_MODE32_BIT: u64 = 0x10;

    // sys_enter's TP_PROTO is (struct pt_regs *regs, long id).
    let regs: *const user_pt_regs = ctx.arg(0);
    // SAFETY: bpf_probe_read_kernel fails instead of faulting on a bad address;
    // the field's address is computed without dereferencing `regs`.
    let pstate = unsafe { bpf_probe_read_kernel(core::ptr::addr_of!((*regs).pstate)) };
    pstate.is_ok_and(|p| p & PSR_MODE32_BIT != 0)
}
