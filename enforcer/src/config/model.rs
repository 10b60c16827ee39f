//! The validated-syntax policy model that both config formats produce.
//!
//! It holds what the file *says*, with a source span on everything, so that checks
//! made later against the host (unknown controller, bad value) can still point at
//! `file:line:column`. Host-dependent validation lives in `plan`.
//!
//! Values the mechanisms act on (addresses, actions, metrics) are the plan's
//! vocabulary types, re-exported here: the file is read straight into them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use syscalls::Sysno;

pub use crate::plan::{
    Access, AccessList, Action, Compare, Direction, IpNet, Metric, MetricUnit, NetRule, OnExit,
    Priority, Proto, Span, Spanned, SyscallAction,
};

/// A whole policy: the groups to create and configure, in file order.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub groups: Vec<GroupSpec>,
    /// Things that were accepted but have no effect (for example a cgconfig.conf
    /// `mount` block: hierarchies are discovered from mountinfo instead).
    pub warnings: Vec<(Span, String)>,
    /// The TOML `[agent]` table; `None` if absent (always for cgconfig.conf).
    pub agent: Option<AgentSpec>,
}

#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The group path exactly as written (`foo`, `web/api`); validated later.
    pub name: String,
    pub span: Span,
    pub perm: Perm,
    /// Controller blocks in file order. A block may be empty: the group is then
    /// created in that controller with no settings, as in cgconfig.conf.
    pub controllers: Vec<ControllerSpec>,
    /// TOML `priority = "high" | "normal" | "low"`; `None` if not written.
    pub priority: Option<Spanned<Priority>>,
    /// TOML `[group."NAME".network]`; `None` if not written.
    pub network: Option<NetworkSpec>,
    /// TOML `[group."NAME".syscalls]`; `None` if not written.
    pub syscalls: Option<SyscallSpec>,
    /// TOML `[[group."NAME".when]]` rules, in file order.
    pub when: Vec<WhenRule>,
}

impl GroupSpec {
    /// A group with nothing set yet: no permissions, controllers or enforcement.
    pub fn new(name: String, span: Span) -> Self {
        Self {
            name,
            span,
            perm: Perm::default(),
            controllers: Vec::new(),
            priority: None,
            network: None,
            syscalls: None,
            when: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ControllerSpec {
    /// Controller name as written (`memory`, `cpu`, `cpuset`, `blkio`, ...).
    pub name: String,
    pub span: Span,
    pub settings: Vec<Setting>,
}

/// One `key = value` line. `value` has quotes removed; units are not yet parsed.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub span: Span,
    pub value_span: Span,
}

/// cgconfig.conf's `perm { task { ... } admin { ... } }`.
#[derive(Debug, Clone, Default)]
pub struct Perm {
    pub task: Option<Owner>,
    pub admin: Option<Owner>,
}

/// User and group names or numeric ids as written, and octal modes.
#[derive(Debug, Clone)]
pub struct Owner {
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub fperm: Option<u32>,
    pub dperm: Option<u32>,
    pub span: Span,
}

// ---------------------------------------------------------------------------
// Enforcement (TOML only). Everything below is syntax-checked and normalised
// (units converted, addresses parsed); nothing has been checked against the host.
//
// Durations are written as strings: a number (decimals allowed) and a unit `ms`,
// `s`, `m`, `h` or `d`, possibly several (`"1m30s"`); `"0"` is zero.
// ---------------------------------------------------------------------------

/// `[agent]`: how `enforcer run` behaves. Every key is optional; `None` means the
/// key was not written, so the built-in default (or a command-line flag) applies.
///
/// ```toml
/// [agent]
/// metrics = "127.0.0.1:9750"
/// interval = "1s"
/// on_exit = "keep"
/// audit_log = "/var/log/enforcer/audit.jsonl"
/// observe = false
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// Where the `[agent]` header (or `agent` key) is.
    pub span: Span,
    /// `metrics = "ADDR:PORT"`: where to serve Prometheus metrics
    /// (`http://ADDR:PORT/metrics`). IPv6 in brackets: `"[::1]:9750"`. Port 0 is
    /// refused.
    pub metrics: Option<Spanned<SocketAddr>>,
    /// `interval = "1s"`: how often counters are read, rules evaluated and the
    /// summary printed. A duration of at least 10ms.
    pub interval: Option<Spanned<Duration>>,
    /// `on_exit = "keep" | "detach"`: what happens to the programs and counters when
    /// the agent stops.
    pub on_exit: Option<Spanned<OnExit>>,
    /// `audit_log = "/var/log/enforcer/audit.jsonl"`: append one JSON line per
    /// event (denials, kills, rule firings). Must be an absolute path.
    pub audit_log: Option<Spanned<PathBuf>>,
    /// `audit_group = "adm"`: the audit log is mode 0640 with this group (the
    /// gid it names); without it 0600, root's alone.
    pub audit_group: Option<Spanned<u32>>,
    /// `observe = true | false`: also account every other group on the host (attach
    /// at the cgroup2 root as well as to the policy's groups). Observing never
    /// denies anything.
    pub observe: Option<Spanned<bool>>,
    /// `parent = "system.slice/enforcer.service"`: create the policy's groups below
    /// this group (a subtree delegated to enforcer, e.g. by systemd's
    /// `Delegate=yes`) instead of at the top of each hierarchy.
    pub parent: Option<Spanned<String>>,
}

/// `[group."NAME".network]`: which addresses the group may connect to or bind,
/// and how fast and how much it may send and receive.
///
/// ```toml
/// [group."web".network]
/// connect_deny   = ["10.0.0.0/8", "[::1]:80", "127.0.0.1:8080/udp"]
/// bind_allow     = ["0.0.0.0/0:8080"]
/// egress_rate    = "10Mbit"
/// ingress_rate   = "100Mbit"
/// egress_budget  = "10G/1d"
/// ingress_budget = "1G/1h"
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpec {
    /// Where the `network` key (or `[group."NAME".network]` header) is.
    pub span: Span,
    /// `connect_allow = [RULE, ...]` or `connect_deny = [RULE, ...]` (at most one of
    /// the two): which destinations `connect(2)` (and UDP `sendmsg`) may reach.
    /// An empty list has no effect and is `None` here (with a warning).
    pub connect: Option<AccessList>,
    /// `bind_allow = [...]` or `bind_deny = [...]` (at most one): which local
    /// addresses and ports `bind(2)` may use. Empty lists as for `connect`.
    pub bind: Option<AccessList>,
    /// `egress_rate = "10Mbit"`: sending rate limit, in **bytes per second**. Written
    /// in bits per second with tc's decimal units (`bit`, `Kbit`, `Mbit`, `Gbit`,
    /// `Tbit`; `Kibit`... are binary) or bytes per second (`B/s`, `KB/s`, `MB/s`,
    /// `GB/s`, `TB/s` decimal; `KiB/s`, `MiB/s`, `GiB/s`, `TiB/s` binary). Decimals
    /// such as `"1.5Mbit"` are allowed; the result is rounded down and must be at
    /// least 1 byte per second.
    pub egress_rate: Option<Spanned<u64>>,
    /// `ingress_rate = "100Mbit"`: receiving rate limit, bytes per second, written
    /// as for `egress_rate`.
    pub ingress_rate: Option<Spanned<u64>>,
    /// `egress_budget = "10G/1d"`: at most this many bytes sent per window.
    pub egress_budget: Option<Budget>,
    /// `ingress_budget = "1G/1h"`: at most this many bytes received per window.
    pub ingress_budget: Option<Budget>,
}

/// `"SIZE/WINDOW"`, such as `"10G/1d"`: at most `bytes` per `window`. `SIZE` uses
/// binary units like memory sizes (`K` = 1024, `M`, `G`, `T`, `P`; `KiB`... also
/// accepted); `WINDOW` is a duration in `s`, `m`, `h` or `d`, the count optional
/// (`"1G/h"` is `"1G/1h"`), at least one second.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Bytes per window, at least 1.
    pub bytes: u64,
    pub window: Duration,
    /// Where the value is.
    pub span: Span,
}

/// `[group."NAME".syscalls]`: system calls the group must not make.
///
/// ```toml
/// [group."web".syscalls]
/// deny   = ["ptrace", "personality"]
/// action = "kill"
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SyscallSpec {
    /// Where the `syscalls` key (or `[group."NAME".syscalls]` header) is.
    pub span: Span,
    /// `deny = ["NAME", ...]`: syscall names as in this architecture's table (the
    /// `syscalls` crate: `ptrace`, `accept4`, ...), each with its element's span,
    /// no name twice. May be empty (then with a warning).
    pub deny: Vec<Spanned<Sysno>>,
    /// `action = "log" | "kill" | "deny"`: what happens when a listed syscall is
    /// made. Required when `deny` is not empty; `Log` if both are absent.
    pub action: Spanned<SyscallAction>,
}

/// One `[[group."NAME".when]]` rule: when `metric` is above (or below) `threshold`
/// for `hold`, run `then`; with `until`, undo the reversible actions once the
/// condition has been false for that long.
///
/// ```toml
/// [[group."web".when]]
/// metric = "egress_bytes_per_sec"
/// above  = "50M"
/// for    = "5s"
/// then   = ["throttle egress 5Mbit", "log"]
/// until  = "30s"
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct WhenRule {
    /// Where the `[[group."NAME".when]]` header (or inline table) is.
    pub span: Span,
    /// `metric = "NAME"`: required; one of [`Metric::ALL`].
    pub metric: Spanned<Metric>,
    /// Which of `above = ...` / `below = ...` was written (exactly one is).
    pub compare: Compare,
    /// The `above`/`below` value in the metric's base unit (bytes, bytes per
    /// second, count, per second or percent; see [`Metric::unit`]). The condition
    /// holds while the value is strictly above (below) it.
    pub threshold: Spanned<f64>,
    /// `for = "5s"`: how long the condition must hold before `then` runs. Default
    /// zero (the first evaluation that sees it); the span is then the rule's.
    pub hold: Spanned<Duration>,
    /// `then = ["ACTION", ...]`: what to do, in order; not empty, no action twice
    /// (two `throttle egress` or two `set` of one key count as twice). A single
    /// action may be written without brackets: `then = "kill"`.
    pub then: Vec<Spanned<Action>>,
    /// `until = "30s"`: optional cool-down: once the condition has been false this
    /// long, undo the reversible actions ([`Action::is_reversible`]).
    pub until: Option<Spanned<Duration>>,
}
