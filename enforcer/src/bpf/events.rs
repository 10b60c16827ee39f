//! Records from the `EVENTS` ring buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use enforcer_common::enforce::{action, direction, list, op};
use enforcer_common::{
    CgroupEvent, EVENT_BUDGET_EXHAUSTED, EVENT_CGROUP_REMOVED, EVENT_NET_DENIED, EVENT_OOM_KILL,
    EVENT_RATE_LIMITED, EVENT_SYSCALL, EnforceEvent, OomEvent, RULE_NONE,
};
use serde_json::json;

use super::rules::hook_syscall;
use crate::arch::{Abi, Arch};
use crate::words::{Direction, SyscallAction};

/// Which socket call a network rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOp {
    /// `connect(2)` (TCP, or UDP setting its peer).
    Connect,
    /// `bind(2)`.
    Bind,
    /// UDP `sendto(2)`/`sendmsg(2)` with a destination address.
    Sendmsg,
}

impl NetOp {
    /// `connect`, `bind` or `sendmsg`.
    pub fn name(self) -> &'static str {
        match self {
            NetOp::Connect => "connect",
            NetOp::Bind => "bind",
            NetOp::Sendmsg => "sendmsg",
        }
    }
}

/// Something the kernel programs reported.
///
/// The agent's audit log uses only the accessors ([`kind`](Self::kind),
/// [`cgroup_id`](Self::cgroup_id), [`pid`](Self::pid), [`comm`](Self::comm),
/// [`details`](Self::details)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The OOM killer chose a victim (tracepoint `oom/mark_victim`).
    OomKill {
        /// The victim's process id.
        pid: u32,
        /// cgroup2 id of the task that hit the OOM condition; for a memory-cgroup
        /// OOM a member of the limited group (see [`OomEvent::cgroup_id`]).
        cgroup_id: u64,
        /// The victim's command name (at most 15 characters).
        comm: String,
        /// CLOCK_MONOTONIC nanoseconds.
        ktime_ns: u64,
    },
    /// A connect, bind or UDP sendmsg was refused with EPERM by the group's
    /// address list.
    NetDenied {
        op: NetOp,
        /// The group whose list refused it.
        cgroup_id: u64,
        /// The calling task's cgroup (the group or a descendant).
        task_cgroup_id: u64,
        pid: u32,
        comm: String,
        /// CLOCK_MONOTONIC nanoseconds.
        ktime_ns: u64,
        /// Destination (connect, sendmsg) or local address (bind). An
        /// IPv4-mapped IPv6 address stays IPv6 here.
        addr: SocketAddr,
        /// IP protocol number (6 TCP, 17 UDP).
        proto: u8,
        /// Index of the deny-list rule that matched; `None` when an allow list
        /// refused an address it does not list.
        rule: Option<u32>,
        /// That rule as written, when this process loaded the group's rules.
        rule_text: Option<String>,
    },
    /// A syscall rule acted: `Log` (the call went ahead), `Kill` (SIGKILL sent
    /// before it ran), `Deny` (refused with EPERM by a BPF-LSM hook).
    Syscall {
        action: SyscallAction,
        cgroup_id: u64,
        task_cgroup_id: u64,
        pid: u32,
        comm: String,
        ktime_ns: u64,
        /// The syscall's name (for `Deny`, the first syscall the LSM hook
        /// covers: `accept` also stands for `accept4`, `execve` for `execveat`).
        syscall: String,
        /// Its number (`Log`, `Kill`), in the compat table (i386 on x86_64,
        /// arm32 on aarch64) when `compat`.
        nr: Option<u32>,
        /// Made by a 32-bit task through the compat table.
        compat: bool,
    },
    /// A byte budget ran out: packets are dropped until its window ends. At most
    /// one per group, direction and window.
    BudgetExhausted {
        cgroup_id: u64,
        /// cgroup of the socket whose packet found the budget empty.
        task_cgroup_id: u64,
        ktime_ns: u64,
        direction: Direction,
        /// The budget, bytes per window.
        budget_bytes: u64,
    },
    /// A cgroup2 group was removed (its counters, rules and pins can go).
    CgroupRemoved {
        cgroup_id: u64,
        /// Its level below the cgroup2 root.
        level: u32,
        ktime_ns: u64,
    },
    /// A rate limit dropped packets. At most one per group and direction per second.
    RateLimited {
        cgroup_id: u64,
        task_cgroup_id: u64,
        ktime_ns: u64,
        direction: Direction,
        /// The rate in force, bytes per second.
        bytes_per_sec: u64,
    },
}

impl Event {
    /// Short machine name of the event kind, for logs and metrics:
    /// `oom_kill`, `connect_denied`, `bind_denied`, `sendmsg_denied`,
    /// `syscall_logged`, `syscall_killed`, `syscall_denied`,
    /// `budget_exhausted`, `rate_limited`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::OomKill { .. } => "oom_kill",
            Event::NetDenied { op, .. } => match op {
                NetOp::Connect => "connect_denied",
                NetOp::Bind => "bind_denied",
                NetOp::Sendmsg => "sendmsg_denied",
            },
            Event::Syscall { action, .. } => match action {
                SyscallAction::Log => "syscall_logged",
                SyscallAction::Kill => "syscall_killed",
                SyscallAction::Deny => "syscall_denied",
            },
            Event::BudgetExhausted { .. } => "budget_exhausted",
            Event::RateLimited { .. } => "rate_limited",
            Event::CgroupRemoved { .. } => "cgroup_removed",
        }
    }

    /// The cgroup2 id the event is charged to: for enforcement events the
    /// group whose rule decided (which the agent knows by its policy path).
    pub fn cgroup_id(&self) -> u64 {
        match self {
            Event::OomKill { cgroup_id, .. }
            | Event::NetDenied { cgroup_id, .. }
            | Event::Syscall { cgroup_id, .. }
            | Event::BudgetExhausted { cgroup_id, .. }
            | Event::RateLimited { cgroup_id, .. }
            | Event::CgroupRemoved { cgroup_id, .. } => *cgroup_id,
        }
    }

    /// The process id, 0 for packet events (they are not a task's doing).
    pub fn pid(&self) -> u32 {
        match self {
            Event::OomKill { pid, .. }
            | Event::NetDenied { pid, .. }
            | Event::Syscall { pid, .. } => *pid,
            Event::BudgetExhausted { .. }
            | Event::RateLimited { .. }
            | Event::CgroupRemoved { .. } => 0,
        }
    }

    /// The process's command name, empty for packet events.
    pub fn comm(&self) -> &str {
        match self {
            Event::OomKill { comm, .. }
            | Event::NetDenied { comm, .. }
            | Event::Syscall { comm, .. } => comm,
            Event::BudgetExhausted { .. }
            | Event::RateLimited { .. }
            | Event::CgroupRemoved { .. } => "",
        }
    }

    /// When the kernel decided (CLOCK_MONOTONIC nanoseconds).
    pub fn ktime_ns(&self) -> u64 {
        match self {
            Event::OomKill { ktime_ns, .. }
            | Event::NetDenied { ktime_ns, .. }
            | Event::Syscall { ktime_ns, .. }
            | Event::BudgetExhausted { ktime_ns, .. }
            | Event::RateLimited { ktime_ns, .. }
            | Event::CgroupRemoved { ktime_ns, .. } => *ktime_ns,
        }
    }

    /// Kind-specific details for the audit log (rule, action, address...), as
    /// JSON; `null` when the kind has none.
    pub fn details(&self) -> serde_json::Value {
        match self {
            Event::OomKill { ktime_ns, .. } => json!({ "ktime_ns": ktime_ns }),
            Event::CgroupRemoved {
                level, ktime_ns, ..
            } => json!({ "level": level, "ktime_ns": ktime_ns }),
            Event::NetDenied {
                op,
                task_cgroup_id,
                ktime_ns,
                addr,
                proto,
                rule,
                rule_text,
                ..
            } => json!({
                "action": "deny",
                "op": op.name(),
                "address": addr.to_string(),
                "ip": addr.ip().to_string(),
                "port": addr.port(),
                "protocol": proto_name(*proto),
                "rule_index": rule,
                "rule": rule_text,
                "reason": if rule.is_some() { "listed in a deny list" } else { "not in the allow list" },
                "task_cgroup_id": task_cgroup_id,
                "ktime_ns": ktime_ns,
            }),
            Event::Syscall {
                action,
                task_cgroup_id,
                ktime_ns,
                syscall,
                nr,
                compat,
                ..
            } => json!({
                "action": match action {
                    SyscallAction::Log => "log",
                    SyscallAction::Kill => "kill",
                    SyscallAction::Deny => "deny",
                },
                "syscall": syscall,
                "nr": nr,
                "abi": Arch::host().abi_name(if *compat { Abi::Compat } else { Abi::Native }),
                "rule": format!("syscalls.deny {syscall}"),
                "task_cgroup_id": task_cgroup_id,
                "ktime_ns": ktime_ns,
            }),
            Event::BudgetExhausted {
                task_cgroup_id,
                ktime_ns,
                direction,
                budget_bytes,
                ..
            } => json!({
                "action": "drop",
                "direction": dir_str(*direction),
                "rule": format!("{}_budget", dir_str(*direction)),
                "budget_bytes": budget_bytes,
                "task_cgroup_id": task_cgroup_id,
                "ktime_ns": ktime_ns,
            }),
            Event::RateLimited {
                task_cgroup_id,
                ktime_ns,
                direction,
                bytes_per_sec,
                ..
            } => json!({
                "action": "drop",
                "direction": dir_str(*direction),
                "rule": format!("{}_rate", dir_str(*direction)),
                "bytes_per_sec": bytes_per_sec,
                "task_cgroup_id": task_cgroup_id,
                "ktime_ns": ktime_ns,
            }),
        }
    }
}

fn dir_str(d: Direction) -> &'static str {
    match d {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    }
}

fn proto_name(proto: u8) -> String {
    match i32::from(proto) {
        libc::IPPROTO_TCP => "tcp".into(),
        libc::IPPROTO_UDP => "udp".into(),
        libc::IPPROTO_ICMP => "icmp".into(),
        libc::IPPROTO_ICMPV6 => "icmpv6".into(),
        other => other.to_string(),
    }
}

fn comm_str(comm: &[u8]) -> String {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    crate::escape::bytes(comm.get(..len).unwrap_or_default()).into_owned()
}

/// Reads a `T` from the start of `bytes`, if long enough.
fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: `bytes` holds at least size_of::<T>() bytes (checked above); the
    // record types are plain old data (every bit pattern valid), and
    // read_unaligned does not require the record to be aligned.
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// Decodes one ring buffer record; `None` for unknown kinds or short records.
/// `rule_text` of network denials is left empty (the kernel does not know it).
pub(super) fn parse(bytes: &[u8]) -> Option<Event> {
    let kind: u32 = read(bytes)?;
    match kind {
        EVENT_CGROUP_REMOVED => {
            let raw: CgroupEvent = read(bytes)?;
            Some(Event::CgroupRemoved {
                cgroup_id: raw.cgroup_id,
                level: raw.level,
                ktime_ns: raw.ktime_ns,
            })
        }
        EVENT_OOM_KILL => {
            let raw: OomEvent = read(bytes)?;
            Some(Event::OomKill {
                pid: raw.pid,
                cgroup_id: raw.cgroup_id,
                comm: comm_str(&raw.comm),
                ktime_ns: raw.ktime_ns,
            })
        }
        EVENT_NET_DENIED => {
            let raw: EnforceEvent = read(bytes)?;
            let ip = if raw.family == list::V4 {
                let mut v4 = [0u8; 4];
                v4.copy_from_slice(raw.addr.get(..4)?);
                IpAddr::V4(Ipv4Addr::from(v4))
            } else {
                IpAddr::V6(Ipv6Addr::from(raw.addr))
            };
            Some(Event::NetDenied {
                op: match raw.detail {
                    op::BIND4 | op::BIND6 => NetOp::Bind,
                    op::SENDMSG4 | op::SENDMSG6 => NetOp::Sendmsg,
                    _ => NetOp::Connect,
                },
                cgroup_id: raw.cgroup_id,
                task_cgroup_id: raw.task_cgroup_id,
                pid: raw.pid,
                comm: comm_str(&raw.comm),
                ktime_ns: raw.ktime_ns,
                addr: SocketAddr::new(ip, raw.port),
                proto: raw.proto,
                rule: (raw.rule != RULE_NONE).then_some(raw.rule),
                rule_text: None,
            })
        }
        EVENT_SYSCALL => {
            let raw: EnforceEvent = read(bytes)?;
            let compat = raw.rule != 0;
            let (act, syscall, nr) = match raw.action {
                action::DENY => (
                    SyscallAction::Deny,
                    hook_syscall(raw.detail).to_string(),
                    None,
                ),
                a => {
                    let abi = if compat { Abi::Compat } else { Abi::Native };
                    let name = Arch::host().name_in(abi, raw.detail).map(str::to_string);
                    (
                        if a == action::KILL {
                            SyscallAction::Kill
                        } else {
                            SyscallAction::Log
                        },
                        name.unwrap_or_else(|| format!("syscall {}", raw.detail)),
                        Some(raw.detail),
                    )
                }
            };
            Some(Event::Syscall {
                action: act,
                cgroup_id: raw.cgroup_id,
                task_cgroup_id: raw.task_cgroup_id,
                pid: raw.pid,
                comm: comm_str(&raw.comm),
                ktime_ns: raw.ktime_ns,
                syscall,
                nr,
                compat,
            })
        }
        EVENT_BUDGET_EXHAUSTED | EVENT_RATE_LIMITED => {
            let raw: EnforceEvent = read(bytes)?;
            let direction = if raw.detail == direction::INGRESS {
                Direction::Ingress
            } else {
                Direction::Egress
            };
            Some(if kind == EVENT_BUDGET_EXHAUSTED {
                Event::BudgetExhausted {
                    cgroup_id: raw.cgroup_id,
                    task_cgroup_id: raw.task_cgroup_id,
                    ktime_ns: raw.ktime_ns,
                    direction,
                    budget_bytes: raw.value,
                }
            } else {
                Event::RateLimited {
                    cgroup_id: raw.cgroup_id,
                    task_cgroup_id: raw.task_cgroup_id,
                    ktime_ns: raw.ktime_ns,
                    direction,
                    bytes_per_sec: raw.value,
                }
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use enforcer_common::enforce::hook;

    use super::*;

    fn bytes_of<T>(record: &T) -> Vec<u8> {
        // SAFETY: the record types are repr(C) plain old data without padding.
        unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(record).cast::<u8>(), size_of::<T>())
        }
        .to_vec()
    }

    #[test]
    fn decodes_an_oom_record() {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"stress");
        let raw = OomEvent {
            kind: EVENT_OOM_KILL,
            pid: 42,
            cgroup_id: 7,
            comm,
            ktime_ns: 99,
        };
        let event = parse(&bytes_of(&raw)).expect("decoded");
        assert_eq!(
            event,
            Event::OomKill {
                pid: 42,
                cgroup_id: 7,
                comm: "stress".into(),
                ktime_ns: 99,
            }
        );
        assert_eq!(
            (event.kind(), event.pid(), event.comm(), event.cgroup_id()),
            ("oom_kill", 42, "stress", 7)
        );
        assert_eq!(event.details()["ktime_ns"], 99);
    }

    #[test]
    fn full_comm_and_unknown_kinds() {
        let raw = OomEvent {
            kind: EVENT_OOM_KILL,
            pid: 1,
            cgroup_id: 2,
            comm: *b"0123456789abcdef",
            ktime_ns: 1,
        };
        let Some(Event::OomKill { comm, .. }) = parse(&bytes_of(&raw)) else {
            panic!("not decoded");
        };
        assert_eq!(comm, "0123456789abcdef");
        assert_eq!(parse(&bytes_of(&OomEvent { kind: 99, ..raw })), None);
        assert_eq!(parse(&[0u8; 8]), None);
        // An enforcement kind needs the longer record.
        assert_eq!(
            parse(&bytes_of(&OomEvent {
                kind: EVENT_SYSCALL,
                ..raw
            })),
            None
        );
    }

    #[test]
    fn decodes_a_denied_connect() {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[127, 0, 0, 2]);
        let raw = EnforceEvent {
            kind: EVENT_NET_DENIED,
            pid: 10,
            cgroup_id: 3,
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
            ktime_ns: 5,
            task_cgroup_id: 4,
            action: action::DENY,
            detail: op::CONNECT4,
            rule: 1,
            port: 8080,
            proto: 6,
            family: list::V4,
            addr,
            value: 0,
        };
        let e = parse(&bytes_of(&raw)).expect("decoded");
        assert_eq!(e.kind(), "connect_denied");
        assert_eq!((e.cgroup_id(), e.pid(), e.comm()), (3, 10, "curl"));
        let d = e.details();
        assert_eq!(d["address"], "127.0.0.2:8080");
        assert_eq!(d["protocol"], "tcp");
        assert_eq!(d["rule_index"], 1);
        let allow = EnforceEvent {
            rule: RULE_NONE,
            detail: op::SENDMSG6,
            family: list::V6,
            addr: Ipv6Addr::LOCALHOST.octets(),
            ..raw
        };
        let e = parse(&bytes_of(&allow)).expect("decoded");
        assert_eq!(e.kind(), "sendmsg_denied");
        assert_eq!(e.details()["address"], "[::1]:8080");
        assert_eq!(e.details()["reason"], "not in the allow list");
    }

    #[test]
    fn decodes_syscall_and_limit_records() {
        let base = EnforceEvent {
            kind: EVENT_SYSCALL,
            pid: 1,
            cgroup_id: 2,
            action: action::KILL,
            detail: Arch::host().number("ptrace").expect("ptrace"),
            ..EnforceEvent::default()
        };
        let e = parse(&bytes_of(&base)).expect("decoded");
        assert_eq!(e.kind(), "syscall_killed");
        assert_eq!(e.details()["syscall"], "ptrace");
        // ptrace is 26 in both the i386 and the arm32 table.
        let compat = EnforceEvent {
            action: action::LOG,
            detail: 26,
            rule: 1,
            ..base
        };
        let e = parse(&bytes_of(&compat)).expect("decoded");
        assert_eq!(e.kind(), "syscall_logged");
        assert_eq!(
            (e.details()["syscall"].as_str(), e.details()["abi"].as_str()),
            (Some("ptrace"), Some(Arch::host().compat_name()))
        );
        let deny = EnforceEvent {
            action: action::DENY,
            detail: hook::BPRM_CHECK,
            ..base
        };
        let e = parse(&bytes_of(&deny)).expect("decoded");
        assert_eq!(
            (e.kind(), e.details()["syscall"].as_str()),
            ("syscall_denied", Some("execve"))
        );
        let budget = EnforceEvent {
            kind: EVENT_BUDGET_EXHAUSTED,
            action: action::DROP,
            detail: direction::INGRESS,
            value: 100,
            ..EnforceEvent::default()
        };
        let e = parse(&bytes_of(&budget)).expect("decoded");
        assert_eq!((e.kind(), e.pid(), e.comm()), ("budget_exhausted", 0, ""));
        assert_eq!(e.details()["direction"], "ingress");
        let rate = EnforceEvent {
            kind: EVENT_RATE_LIMITED,
            ..budget
        };
        assert_eq!(
            parse(&bytes_of(&rate)).expect("decoded").kind(),
            "rate_limited"
        );
    }
}
