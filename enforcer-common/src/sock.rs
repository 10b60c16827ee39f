//! Socket address hook counters.

/// Socket calls of one cgroup that reached a cgroup `sock_addr` hook, counted by
/// `count_connect4`, `count_connect6`, `count_bind4` and `count_bind6` into the
/// per-CPU hash `SOCK_ATTEMPTS`, keyed by the calling task's cgroup2 id.
///
/// Attempts, not successes: the hooks run before the kernel does the work, so a
/// `connect()` that then fails (refused, unreachable) is counted too. A UDP
/// `connect()` (which sends nothing) counts like a TCP one. Implicit binds
/// (autobind on `connect`/`sendto`) do not reach the bind hooks and are not counted.
///
/// Layout: four `u64`s, 32 bytes, no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockCounter {
    /// `connect()` on IPv4 sockets (TCP, UDP, ICMP).
    pub connect4: u64,
    /// `connect()` on IPv6 sockets.
    pub connect6: u64,
    /// Explicit `bind()` on IPv4 sockets.
    pub bind4: u64,
    /// Explicit `bind()` on IPv6 sockets.
    pub bind6: u64,
}

const _: () = assert!(core::mem::size_of::<SockCounter>() == 32);
const _: () = assert!(core::mem::align_of::<SockCounter>() == 8);

impl SockCounter {
    /// Field-wise wrapping sum (e.g. of two CPUs' copies).
    #[must_use]
    pub const fn wrapping_add(self, other: Self) -> Self {
        Self {
            connect4: self.connect4.wrapping_add(other.connect4),
            connect6: self.connect6.wrapping_add(other.connect6),
            bind4: self.bind4.wrapping_add(other.bind4),
            bind6: self.bind6.wrapping_add(other.bind6),
        }
    }
}

// SAFETY: `#[repr(C)]`, `Copy`, only `u64`s and no padding (asserted above).
#[cfg(feature = "user")]
unsafe impl aya::Pod for SockCounter {}
