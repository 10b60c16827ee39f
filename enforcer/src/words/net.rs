//! Address lists for the `connect` and `bind` hooks, as the kernel rule tables
//! take them.

use std::fmt;
use std::net::IpAddr;

use super::span::Span;

/// One hook's address list: an allow list (everything not listed is denied) or a
/// deny list (everything not listed is allowed).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessList {
    pub mode: Access,
    /// Never empty.
    pub rules: Vec<NetRule>,
    /// Where the key (`connect_deny`, ...) is.
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `*_allow`: only the listed addresses are allowed.
    Allow,
    /// `*_deny`: the listed addresses are denied.
    Deny,
}

/// One entry of a connect/bind list: `CIDR[:PORTS][/tcp|/udp]`.
///
/// - `CIDR` is an IPv4 or IPv6 address with an optional `/PREFIX` (without it, the
///   single host): `10.0.0.0/8`, `127.0.0.1`, `::1/128`, `fd00::/8`. Host bits
///   beyond the prefix must be zero.
/// - `PORTS` is `PORT` or `LO-HI` (inclusive, 1-65535): `:80`, `:9000-9100`. For
///   IPv6 write it after a prefix (`::1/128:9000-9100`) or use brackets
///   (`[::1]:80`, `[fd00::/8]:80`); a bare `::1:80` is the address `::1:80`.
/// - `/tcp` or `/udp` at the end limits the rule to that protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct NetRule {
    pub net: IpNet,
    /// Inclusive port range; `None` means every port.
    pub ports: Option<(u16, u16)>,
    pub proto: Proto,
    /// Where the array element is.
    pub span: Span,
}

impl fmt::Display for NetRule {
    /// The canonical spelling, which parses back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.net.addr(), self.ports) {
            (IpAddr::V6(_), Some(_)) => write!(f, "[{}]", self.net)?,
            _ => write!(f, "{}", self.net)?,
        }
        match self.ports {
            Some((lo, hi)) if lo == hi => write!(f, ":{lo}")?,
            Some((lo, hi)) => write!(f, ":{lo}-{hi}")?,
            None => {}
        }
        match self.proto {
            Proto::Any => Ok(()),
            Proto::Tcp => f.write_str("/tcp"),
            Proto::Udp => f.write_str("/udp"),
        }
    }
}

/// An IP network (the `ipnet` crate's): the parser refuses host bits beyond
/// the prefix, so `addr()` is always the network address.
pub use ipnet::IpNet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// No suffix: TCP and UDP.
    Any,
    /// `/tcp`
    Tcp,
    /// `/udp`
    Udp,
}
