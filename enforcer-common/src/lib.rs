//! Types shared by the kernel programs and userspace. `#[repr(C)]` with explicit
//! padding so both sides agree on every byte.
#![no_std]

/// Egress traffic of one cgroup, as counted by the `count_egress` program into the
/// `NET_EGRESS` per-CPU hash map (key: the cgroup2 id, i.e. the inode number of the
/// cgroup2 directory). Each CPU holds its own copy; userspace sums them.
///
/// Layout: two `u64`s, 16 bytes, 8-byte aligned. No padding is needed: every field is
/// naturally aligned and the size is a multiple of the alignment, so there are no
/// uninitialised bytes the kernel could leak or the two sides could disagree on. Add
/// fields only in pairs of `u64` (or with an explicit `_pad` field) to keep it that way.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounter {
    /// Bytes handed to the network layer on egress: `skb->len` at the cgroup_skb
    /// hook, i.e. the IP packet including IP and transport headers (a 100-byte UDP
    /// payload over IPv4 counts as 128 bytes).
    pub bytes: u64,
    /// Packets seen on egress.
    pub packets: u64,
}

// The eBPF map is created with value_size = size_of::<NetCounter>() and aya checks
// it on the userspace side; pin the layout so a change is a compile error on both.
const _: () = assert!(core::mem::size_of::<NetCounter>() == 16);
const _: () = assert!(core::mem::align_of::<NetCounter>() == 8);

impl NetCounter {
    /// Adds another counter (e.g. another CPU's copy), wrapping instead of
    /// overflowing so the sum can never panic.
    #[must_use]
    pub const fn wrapping_add(self, other: Self) -> Self {
        Self {
            bytes: self.bytes.wrapping_add(other.bytes),
            packets: self.packets.wrapping_add(other.packets),
        }
    }
}

// SAFETY: `NetCounter` is `#[repr(C)]`, `Copy`, contains only `u64`s and has no
// padding (asserted above), so every bit pattern is a valid value and it can be
// copied to and from the kernel byte for byte.
#[cfg(feature = "user")]
unsafe impl aya::Pod for NetCounter {}
