//! The table of per-group counters: one row each. README's "Adding a
//! counter" says what else a new one needs (its kernel field and the program
//! that counts it); the invariants every row keeps are tested in `tests.rs`.

use super::{ColumnDef, CounterDef, Family, Unit, counters};

const NET_BYTES: Family = Family {
    name: "enforcer_net_bytes_total",
    help: "Bytes sent or received by sockets of the group",
};
const NET_PACKETS: Family = Family {
    name: "enforcer_net_packets_total",
    help: "Packets sent or received by sockets of the group",
};
const DENIED: Family = Family {
    name: "enforcer_denied_total",
    help: "Operations refused (action=deny) or processes killed (action=kill) by the group's rules, per kernel hook",
};
const DROPPED_PACKETS: Family = Family {
    name: "enforcer_dropped_packets_total",
    help: "Packets dropped by the group's rate limits and budgets",
};
const DROPPED_BYTES: Family = Family {
    name: "enforcer_dropped_bytes_total",
    help: "Bytes dropped by the group's rate limits and budgets",
};

/// The default sort of `top`.
pub const EGRESS: ColumnDef = ColumnDef {
    name: "egress",
    json: "egress_bytes",
    rate_json: Some("egress_rate"),
    header: "EGRESS",
    key: 'e',
    alert: false,
};
const INGRESS: ColumnDef = ColumnDef {
    name: "ingress",
    json: "ingress_bytes",
    rate_json: Some("ingress_rate"),
    header: "INGRESS",
    key: 'i',
    alert: false,
};
const SYSCALLS: ColumnDef = ColumnDef {
    name: "syscalls",
    json: "syscalls",
    rate_json: Some("syscall_rate"),
    header: "SYSCALLS",
    key: 'y',
    alert: false,
};
const DENIED_COLUMN: ColumnDef = ColumnDef {
    name: "denied",
    json: "denied",
    rate_json: None,
    header: "DENIED",
    key: 'd',
    alert: true,
};
const DROPPED_COLUMN: ColumnDef = ColumnDef {
    name: "dropped",
    json: "dropped",
    rate_json: None,
    header: "DROPPED",
    key: 'p',
    alert: true,
};
const LOST_COLUMN: ColumnDef = ColumnDef {
    name: "lost",
    json: "lost",
    rate_json: None,
    header: "LOST",
    key: 'l',
    alert: true,
};

counters! {
    /// Bytes sent by sockets of the group (`count_egress`).
    EgressBytes {
        json: ("net", "egress_bytes"), read: |c| c.egress.bytes, unit: Unit::Bytes,
        metric: NET_BYTES, labels: &[("direction", "egress")],
        rate: Some("egress_bytes_per_sec"), when_total: true, column: Some(EGRESS),
    }
    /// Bytes received by sockets of the group (`count_ingress`).
    IngressBytes {
        json: ("net", "ingress_bytes"), read: |c| c.ingress.bytes, unit: Unit::Bytes,
        metric: NET_BYTES, labels: &[("direction", "ingress")],
        rate: Some("ingress_bytes_per_sec"), when_total: true, column: Some(INGRESS),
    }
    EgressPackets {
        json: ("net", "egress_packets"), read: |c| c.egress.packets, unit: Unit::Count,
        metric: NET_PACKETS, labels: &[("direction", "egress")],
        rate: Some("egress_packets_per_sec"), when_total: false, column: None,
    }
    IngressPackets {
        json: ("net", "ingress_packets"), read: |c| c.ingress.packets, unit: Unit::Count,
        metric: NET_PACKETS, labels: &[("direction", "ingress")],
        rate: Some("ingress_packets_per_sec"), when_total: false, column: None,
    }
    /// `connect()` calls, allowed or not (`count_connect4/6`).
    ConnectAttempts {
        json: ("net", "connect_attempts"),
        read: |c| c.sock.connect4.wrapping_add(c.sock.connect6), unit: Unit::Count,
        metric: Family { name: "enforcer_connect_attempts_total", help: "connect() calls made in the group" },
        labels: &[], rate: Some("connect_attempts_per_sec"), when_total: false, column: None,
    }
    BindAttempts {
        json: ("net", "bind_attempts"),
        read: |c| c.sock.bind4.wrapping_add(c.sock.bind6), unit: Unit::Count,
        metric: Family { name: "enforcer_bind_attempts_total", help: "bind() calls made in the group" },
        labels: &[], rate: None, when_total: false, column: None,
    }
    /// Every syscall, for groups in the syscall scope (`count_syscalls`).
    Syscalls {
        json: ("syscalls", "total"),
        read: |c| c.syscalls.values().fold(0, |sum, n| sum.wrapping_add(*n)), unit: Unit::Count,
        metric: Family { name: "enforcer_syscalls_total", help: "System calls entered by processes of the group" },
        labels: &[], rate: Some("syscalls_per_sec"), when_total: false, column: Some(SYSCALLS),
    }
    ConnectDenied {
        json: ("enforcement", "connect_denied"), read: |c| c.enforce.connect_denied, unit: Unit::Count,
        metric: DENIED, labels: &[("hook", "connect"), ("action", "deny")],
        rate: None, when_total: false, column: Some(DENIED_COLUMN),
    }
    BindDenied {
        json: ("enforcement", "bind_denied"), read: |c| c.enforce.bind_denied, unit: Unit::Count,
        metric: DENIED, labels: &[("hook", "bind"), ("action", "deny")],
        rate: None, when_total: false, column: Some(DENIED_COLUMN),
    }
    /// UDP `sendto()`/`sendmsg()` with a destination, refused by the connect list.
    SendmsgDenied {
        json: ("enforcement", "sendmsg_denied"), read: |c| c.enforce.sendmsg_denied, unit: Unit::Count,
        metric: DENIED, labels: &[("hook", "sendmsg"), ("action", "deny")],
        rate: None, when_total: false, column: Some(DENIED_COLUMN),
    }
    /// Refused by a BPF-LSM hook (`action = "deny"`).
    SyscallsDenied {
        json: ("enforcement", "syscalls_denied"), read: |c| c.enforce.syscalls_denied, unit: Unit::Count,
        metric: DENIED, labels: &[("hook", "lsm"), ("action", "deny")],
        rate: None, when_total: false, column: Some(DENIED_COLUMN),
    }
    /// Got their process killed (`action = "kill"`).
    SyscallsKilled {
        json: ("enforcement", "syscalls_killed"), read: |c| c.enforce.syscalls_killed, unit: Unit::Count,
        metric: DENIED, labels: &[("hook", "sys_enter"), ("action", "kill")],
        rate: None, when_total: false, column: Some(DENIED_COLUMN),
    }
    /// Allowed and logged (`action = "log"`).
    SyscallsLogged {
        json: ("enforcement", "syscalls_logged"), read: |c| c.enforce.syscalls_logged, unit: Unit::Count,
        metric: Family {
            name: "enforcer_syscalls_logged_total",
            help: "Syscalls the group's rules logged (action=log); they were allowed",
        },
        labels: &[], rate: None, when_total: false, column: None,
    }
    /// Not in `EgressPackets`, which counts what left.
    EgressDroppedPackets {
        json: ("enforcement", "egress_dropped_packets"), read: |c| c.enforce.egress_dropped.packets,
        unit: Unit::Count, metric: DROPPED_PACKETS, labels: &[("direction", "egress")],
        rate: None, when_total: false, column: Some(DROPPED_COLUMN),
    }
    EgressDroppedBytes {
        json: ("enforcement", "egress_dropped_bytes"), read: |c| c.enforce.egress_dropped.bytes,
        unit: Unit::Bytes, metric: DROPPED_BYTES, labels: &[("direction", "egress")],
        rate: None, when_total: false, column: None,
    }
    IngressDroppedPackets {
        json: ("enforcement", "ingress_dropped_packets"), read: |c| c.enforce.ingress_dropped.packets,
        unit: Unit::Count, metric: DROPPED_PACKETS, labels: &[("direction", "ingress")],
        rate: None, when_total: false, column: Some(DROPPED_COLUMN),
    }
    IngressDroppedBytes {
        json: ("enforcement", "ingress_dropped_bytes"), read: |c| c.enforce.ingress_dropped.bytes,
        unit: Unit::Bytes, metric: DROPPED_BYTES, labels: &[("direction", "ingress")],
        rate: None, when_total: false, column: None,
    }
    /// Outgoing TCP over the group's rate or share that passed with a
    /// congestion notification: it left (it is in `EgressPackets`) and is
    /// not a drop.
    EgressMarkedPackets {
        json: ("enforcement", "egress_marked_packets"), read: |c| c.enforce.egress_marked,
        unit: Unit::Count,
        metric: Family {
            name: "enforcer_marked_packets_total",
            help: "Outgoing TCP packets over the group's rate limit or share passed with a congestion notification (the sender slows down; not dropped)",
        },
        labels: &[("direction", "egress")], rate: None, when_total: false, column: None,
    }
    /// Events (denials, kills, OOM kills...) the kernel could not queue
    /// because the ring buffer was full: they are not in the audit log.
    EventsLost {
        json: ("enforcement", "events_lost"), read: |c| c.enforce.events_lost, unit: Unit::Count,
        metric: Family {
            name: "enforcer_events_lost_total",
            help: "Events of the group the kernel could not queue (ring buffer full): missing from the audit log",
        },
        labels: &[], rate: None, when_total: false, column: Some(LOST_COLUMN),
    }
}
