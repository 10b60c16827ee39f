//! The address syntax of `connect_*` and `bind_*` lists: `CIDR[:PORTS][/tcp|/udp]`.
//! See [`NetRule`](super::model::NetRule) for the grammar.

use std::net::IpAddr;

use super::model::{IpNet, Proto};

/// A parsed rule without its span.
pub(crate) type RuleParts = (IpNet, Option<(u16, u16)>, Proto);

const FORMS: &str = "write `CIDR`, `CIDR:PORT` or `CIDR:LO-HI`, optionally followed by `/tcp` or \
                     `/udp`, such as `10.0.0.0/8`, `127.0.0.1:8080/udp`, `::1/128:9000-9100` \
                     or `[::1]:80`";

/// Parses one list entry, or says what is wrong with it and what to write.
pub(crate) fn parse_net_rule(text: &str) -> Result<RuleParts, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(format!("empty address: {FORMS}"));
    }
    if trimmed.contains(char::is_whitespace) {
        return Err(format!("`{text}` contains a space: {FORMS}"));
    }
    let (body, proto) = split_proto(trimmed)?;
    let (net, ports) = if let Some(inner) = body.strip_prefix('[') {
        let Some((inside, after)) = inner.split_once(']') else {
            return Err(format!(
                "`{text}` has no closing `]`: write `[ADDRESS]:PORT`, such as `[::1]:80`"
            ));
        };
        let ports = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(ports) => Some(ports),
                None => {
                    return Err(format!(
                        "`{text}`: after `]` write `:PORT` or `:LO-HI`, such as `[::1]:80`"
                    ));
                }
            },
        };
        let (addr, prefix) = inside
            .split_once('/')
            .map_or((inside, None), |(a, p)| (a, Some(p)));
        (network(addr, prefix, text)?, ports)
    } else if let Some((addr, rest)) = body.split_once('/') {
        // The prefix has no `:`, so the first `:` after the `/` starts the ports.
        let (prefix, ports) = rest
            .split_once(':')
            .map_or((rest, None), |(p, q)| (p, Some(q)));
        (network(addr, Some(prefix), text)?, ports)
    } else {
        match body.split_once(':') {
            // `a.b.c.d:PORT`; two or more `:` is an IPv6 address without a port.
            Some((addr, ports)) if !ports.contains(':') => {
                if addr.parse::<IpAddr>().is_err() && ports.parse::<IpAddr>().is_err() {
                    // Neither half is an address: describe the whole.
                    return Err(not_an_address(addr, text));
                }
                (network(addr, None, text)?, Some(ports))
            }
            _ => (network(body, None, text)?, None),
        }
    };
    let ports = ports.map(|ports| port_range(ports, text)).transpose()?;
    Ok((net, ports, proto))
}

/// Strips a `/tcp` or `/udp` suffix.
fn split_proto(text: &str) -> Result<(&str, Proto), String> {
    let Some((body, last)) = text.rsplit_once('/') else {
        return Ok((text, Proto::Any));
    };
    let proto = match last.to_ascii_lowercase().as_str() {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        // A prefix length, or a prefix followed by ports.
        _ if last.starts_with(|c: char| c.is_ascii_digit()) => return Ok((text, Proto::Any)),
        _ if last.chars().all(|c| c.is_ascii_alphabetic()) && !last.is_empty() => {
            return Err(format!(
                "`{text}`: unknown protocol `{last}`: write `/tcp` or `/udp`, or leave it off \
                 for both"
            ));
        }
        _ => return Ok((text, Proto::Any)),
    };
    Ok((body, proto))
}

fn not_an_address(addr: &str, text: &str) -> String {
    // Say where the address is only when it is not the whole rule: a message
    // names each thing once.
    let what = if addr == text.trim() {
        format!("`{addr}`")
    } else {
        format!("`{addr}` in `{text}`")
    };
    format!("{what} is not an IP address (host names are not resolved): {FORMS}")
}

/// `addr` with an optional prefix length; checks the length and the host bits.
fn network(addr: &str, prefix: Option<&str>, text: &str) -> Result<IpNet, String> {
    let addr: IpAddr = addr.parse().map_err(|_| {
        if addr.contains(':') && !text.trim_start().starts_with('[') {
            format!(
                "`{text}` is not an IP address: for an IPv6 address with a port, write it in \
                 brackets, such as `[::1]:80`, or after a prefix, such as `::1/128:80`"
            )
        } else {
            not_an_address(addr, text)
        }
    })?;
    let (family, bits) = match addr {
        IpAddr::V4(_) => ("IPv4", 32u8),
        IpAddr::V6(_) => ("IPv6", 128u8),
    };
    let prefix = match prefix {
        None => bits,
        Some(prefix) => {
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "`{text}`: `/{prefix}` is not a prefix length: write a number from 0 to \
                     {bits}, such as `{addr}/{bits}`"
                ));
            }
            match prefix.parse::<u8>() {
                Ok(n) if n <= bits => n,
                _ => {
                    return Err(format!(
                        "`{text}`: prefix `/{prefix}` is too long for an {family} address: use \
                         /0 to /{bits}"
                    ));
                }
            }
        }
    };
    let masked = mask(addr, prefix);
    if masked != addr {
        return Err(format!(
            "`{text}` has host bits set beyond /{prefix}: write the network `{masked}/{prefix}`, \
             or `{addr}/{bits}` for the single address"
        ));
    }
    IpNet::new(addr, prefix).map_err(|_| format!("`{text}`: prefix `/{prefix}` is too long"))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    }
}

/// `PORT` or `LO-HI`, 1-65535, `LO <= HI`.
fn port_range(ports: &str, text: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
    let lo = port(lo, text)?;
    let hi = port(hi, text)?;
    if lo > hi {
        return Err(format!(
            "`{text}`: port range `{ports}` is backwards: write the lower port first, `{hi}-{lo}`"
        ));
    }
    Ok((lo, hi))
}

fn port(port: &str, text: &str) -> Result<u16, String> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{text}`: `{port}` is not a port: write a number from 1 to 65535, or `LO-HI` for a \
             range"
        ));
    }
    match port.parse::<u16>() {
        Ok(0) => Err(format!(
            "`{text}`: port 0 is not a real port: write a port from 1 to 65535, or leave the \
             port off to match every port"
        )),
        Ok(port) => Ok(port),
        Err(_) => Err(format!(
            "`{text}`: port {port} is too large: ports go from 1 to 65535"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
        IpNet::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix).unwrap()
    }

    fn v6(text: &str, prefix: u8) -> IpNet {
        IpNet::new(IpAddr::V6(text.parse::<Ipv6Addr>().unwrap()), prefix).unwrap()
    }

    #[test]
    fn accepted_forms() {
        use Proto::*;
        #[rustfmt::skip]
        let cases: Vec<(&str, RuleParts)> = vec![
            ("10.0.0.0/8", (v4(10, 0, 0, 0, 8), None, Any)),
            ("127.0.0.1", (v4(127, 0, 0, 1, 32), None, Any)),
            ("127.0.0.2/32:9", (v4(127, 0, 0, 2, 32), Some((9, 9)), Any)),
            ("127.0.0.1:8080/udp", (v4(127, 0, 0, 1, 32), Some((8080, 8080)), Udp)),
            ("0.0.0.0/0:1-1023", (v4(0, 0, 0, 0, 0), Some((1, 1023)), Any)),
            ("0.0.0.0/0", (v4(0, 0, 0, 0, 0), None, Any)),
            ("192.168.1.0/24/tcp", (v4(192, 168, 1, 0, 24), None, Tcp)),
            ("10.1.2.3:65535/TCP", (v4(10, 1, 2, 3, 32), Some((65535, 65535)), Tcp)),
            ("::1", (v6("::1", 128), None, Any)),
            ("::/0", (v6("::", 0), None, Any)),
            ("::1/128:9000-9100", (v6("::1", 128), Some((9000, 9100)), Any)),
            ("fd00::/8:53/udp", (v6("fd00::", 8), Some((53, 53)), Udp)),
            ("[::1]:80", (v6("::1", 128), Some((80, 80)), Any)),
            ("[::1/128]:80", (v6("::1", 128), Some((80, 80)), Any)),
            ("[fd00::/8]:1-2/tcp", (v6("fd00::", 8), Some((1, 2)), Tcp)),
            ("[2001:db8::1]", (v6("2001:db8::1", 128), None, Any)),
            ("::1/udp", (v6("::1", 128), None, Udp)),
            ("[::ffff:10.0.0.1]:80", (v6("::ffff:10.0.0.1", 128), Some((80, 80)), Any)),
            (" 10.0.0.0/8 ", (v4(10, 0, 0, 0, 8), None, Any)),
        ];
        for (text, parts) in cases {
            assert_eq!(parse_net_rule(text), Ok(parts), "{text}");
        }
    }

    #[test]
    fn rejections() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("10.0.0.1/8", "`10.0.0.1/8` has host bits set beyond /8: write the network `10.0.0.0/8`, or `10.0.0.1/32` for the single address"),
            ("fd00::1/8", "write the network `fd00::/8`, or `fd00::1/128`"),
            ("10.0.0.0/33", "prefix `/33` is too long for an IPv4 address: use /0 to /32"),
            ("::/129", "prefix `/129` is too long for an IPv6 address: use /0 to /128"),
            ("::/300", "prefix `/300` is too long"),
            ("10.0.0.0/x8", "`/x8` is not a prefix length"),
            ("10.0.0.0/", "`/` is not a prefix length"),
            ("10.0.0.1:0", "port 0 is not a real port"),
            ("10.0.0.1:70000", "port 70000 is too large"),
            ("10.0.0.1:9100-9000", "port range `9100-9000` is backwards: write the lower port first, `9000-9100`"),
            ("10.0.0.1:http", "`http` is not a port"),
            ("10.0.0.1:80-", "`` is not a port"),
            ("10.0.0.1:80/icmp", "unknown protocol `icmp`: write `/tcp` or `/udp`"),
            ("example.com", "`example.com` is not an IP address (host names are not resolved)"),
            ("example.com:80", "`example.com` in `example.com:80` is not an IP address"),
            ("10.0.0.256", "is not an IP address"),
            ("::1:80:x", "for an IPv6 address with a port, write it in brackets"),
            ("[::1", "has no closing `]`"),
            ("[::1]80", "after `]` write `:PORT`"),
            ("[::1]:0", "port 0"),
            ("", "empty address"),
            ("10.0.0.0 /8", "contains a space"),
        ];
        for (text, fragment) in cases {
            let message = parse_net_rule(text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }
}
