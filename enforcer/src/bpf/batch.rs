//! Reading whole per-CPU hash maps with `BPF_MAP_LOOKUP_BATCH` (Linux 5.6+):
//! up to `BATCH` entries per system call instead of two calls per entry, which is
//! what aya 0.14's iterator does. Collection time is dominated by system calls.

use std::io;
use std::os::fd::RawFd;

use aya::Pod;

use super::BpfError;
use super::layout::NET_EGRESS;

/// A failed map system call as a [`BpfError`].
pub(super) fn syscall_err(map: &'static str, call: &'static str, io_error: io::Error) -> BpfError {
    BpfError::Map {
        map,
        source: aya::maps::MapError::SyscallError(aya::sys::SyscallError { call, io_error }),
    }
}

/// Possible CPUs: the number of slots of a per-CPU map value.
pub(super) fn cpus() -> Result<usize, BpfError> {
    aya::util::nr_cpus().map_err(|(_, e)| syscall_err(NET_EGRESS, "nr_cpus", e))
}

/// `union bpf_attr` as used by the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
pub(super) const BATCH: usize = 4096;

/// Calls `f(key, per-CPU values)` for every entry of the pinned per-CPU hash
/// `name`, `BATCH` entries per `BPF_MAP_LOOKUP_BATCH` call.
/// Calls `f(key, per-CPU values)` for every entry of the per-CPU hash map `fd`,
/// `BATCH` entries per call. An error of `EINVAL`/`ENOTSUP` means the kernel
/// has no batch lookup for this map; callers fall back to iterating.
pub(super) fn lookup_batch<K: Pod, V: Pod>(
    fd: RawFd,
    cpus: usize,
    mut f: impl FnMut(K, &[V]),
) -> io::Result<()> {
    // The kernel pads each CPU's value to 8 bytes; all our values are multiples.
    if !size_of::<V>().is_multiple_of(8) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: `Pod` types are plain integers and arrays; all-zero is valid.
    let zero_key: K = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let zero_value: V = unsafe { std::mem::zeroed() };
    let mut keys = vec![zero_key; BATCH];
    let mut values = vec![zero_value; BATCH * cpus];
    // Batch tokens: a u32 bucket index for hash maps; 8 bytes to spare.
    let mut in_batch = 0u64;
    let mut out_batch = 0u64;
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                (&raw const in_batch) as u64
            },
            out_batch: (&raw mut out_batch) as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: BATCH as u32,
            map_fd: fd as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: `attr` points at buffers for `count` keys and `count * cpus`
        // values of the map's sizes and at two 8-byte tokens, all alive for the
        // call; the kernel writes at most that much and updates `count`.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &raw mut attr,
                size_of::<BatchAttr>(),
            )
        };
        let done = if ret < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            true
        } else {
            false
        };
        let n = (attr.count as usize).min(BATCH);
        for (i, key) in keys.iter().take(n).enumerate() {
            f(*key, &values[i * cpus..(i + 1) * cpus]);
        }
        if done {
            return Ok(());
        }
        in_batch = out_batch;
        first = false;
    }
}
