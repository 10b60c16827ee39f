//! Network traffic counters.

/// Traffic of one cgroup in one direction, as counted by `count_egress` into
/// `NET_EGRESS` and by `count_ingress` into `NET_INGRESS` (per-CPU hash maps keyed
/// by the cgroup2 id of the socket's cgroup). Each CPU holds its own copy;
/// userspace sums them.
///
/// Layout: two `u64`s, 16 bytes, 8-byte aligned, no padding. Add fields only in
/// pairs of `u64` (or with an explicit `_pad` field) to keep it that way.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetCounter {
    /// `skb->len` at the cgroup_skb hook: the IP packet including IP and transport
    /// headers (a 100-byte UDP payload counts as 128 bytes over IPv4, 148 over
    /// IPv6). A GSO/TSO packet counts once, with its full length.
    pub bytes: u64,
    /// Packets (skbs) seen at the hook.
    pub packets: u64,
}

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

// SAFETY: `#[repr(C)]`, `Copy`, only `u64`s and no padding (asserted above), so
// every bit pattern is a valid value and it can be copied byte for byte.
#[cfg(feature = "user")]
unsafe impl aya::Pod for NetCounter {}
