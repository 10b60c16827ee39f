//! The validated-syntax policy model that both config formats produce.
//!
//! It holds what the file *says*, with a source span on everything, so that checks
//! made later against the host (unknown controller, bad value) can still point at
//! `file:line:column`. Host-dependent validation lives in `cgroup::plan`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use syscalls::Sysno;

/// A position in a config file: 1-based line and column (column counts characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A value from the file with the place it was written (for a string, its opening
/// quote; for an array element, that element).
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

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
    /// `metrics_depth = 3`: groups deeper than this are summed into their
    /// ancestor at this depth in the metrics (the policy's groups always
    /// have their own series).
    pub metrics_depth: Option<Spanned<u64>>,
    /// `metrics_max_groups = 500`: at most this many groups besides the
    /// policy's get series.
    pub metrics_max_groups: Option<Spanned<u64>>,
    /// `audit_max_size = "100M"`: the audit log is rotated (`.1` ... `.5`)
    /// when it grows past this size.
    pub audit_max_size: Option<Spanned<u64>>,
}

/// `[agent] on_exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// `"keep"`: leave programs attached and counters pinned, so enforcement and
    /// accounting continue and the next start adopts them (today's behaviour).
    Keep,
    /// `"detach"`: detach the programs and unpin the maps, as `enforcer stop` does.
    Detach,
}

/// A group's `priority`: one knob that sets both the CPU weight and the
/// priority of the group's packets (skb priority).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `"high"`
    High,
    /// `"normal"`
    Normal,
    /// `"low"`
    Low,
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
        match (self.net.addr, self.ports) {
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

/// An IP network: `addr` has no bits set beyond `prefix` (checked by the parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    /// 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in this network. IPv4 and IPv6 never match each other (an
    /// IPv4-mapped IPv6 address `::ffff:a.b.c.d` is IPv6 here).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// No suffix: TCP and UDP.
    Any,
    /// `/tcp`
    Tcp,
    /// `/udp`
    Udp,
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

impl SyscallSpec {
    /// Syscalls that a BPF-LSM hook attached to a cgroup can refuse, so the only
    /// ones allowed with `action = "deny"`.
    pub const LSM_DENIABLE: [&'static str; 9] = [
        "socket",
        "connect",
        "bind",
        "listen",
        "accept",
        "accept4",
        "execve",
        "execveat",
        "setsockopt",
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallAction {
    /// `"log"`: allow the call, record it in the audit log.
    Log,
    /// `"kill"`: kill the calling process (SIGKILL) when the call is made.
    Kill,
    /// `"deny"`: make the call fail with `EPERM` (only for
    /// [`SyscallSpec::LSM_DENIABLE`]).
    Deny,
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

/// Whether a rule fires above or below its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// `above = ...`: metric > threshold.
    Above,
    /// `below = ...`: metric < threshold.
    Below,
}

/// What a `when` rule watches, per group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `egress_bytes`: bytes sent since the agent started counting the group.
    EgressBytes,
    /// `egress_bytes_per_sec`: bytes sent per second over the last interval.
    EgressBytesPerSec,
    /// `ingress_bytes`: bytes received since counting started.
    IngressBytes,
    /// `ingress_bytes_per_sec`
    IngressBytesPerSec,
    /// `egress_packets_per_sec`
    EgressPacketsPerSec,
    /// `ingress_packets_per_sec`
    IngressPacketsPerSec,
    /// `connect_attempts_per_sec`: `connect(2)` calls per second, allowed or not.
    ConnectAttemptsPerSec,
    /// `syscalls_per_sec`: system calls per second (all of them).
    SyscallsPerSec,
    /// `memory_usage_bytes`: the group's current memory use.
    MemoryUsageBytes,
    /// `oom_kills`: OOM kills in the group since counting started.
    OomKills,
    /// `cpu_usage_percent`: CPU time over the last interval; 100 is one full CPU
    /// (a group using two CPUs is at 200).
    CpuUsagePercent,
}

/// The unit of a metric's values and of thresholds for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    /// Written as a size: `"50M"` (binary units), or a plain number of bytes.
    Bytes,
    /// Written as a size per second (`"50M"`, binary) or a rate (`"400Mbit"`,
    /// `"50MB/s"`, as for `egress_rate`).
    BytesPerSec,
    /// A plain non-negative number.
    Count,
    /// A plain non-negative number (events per second).
    PerSec,
    /// A plain non-negative number, `%` optional: `150` or `"150%"`.
    Percent,
}

impl Metric {
    /// Every metric, in the order they are documented and listed in messages.
    pub const ALL: [Metric; 11] = [
        Metric::EgressBytes,
        Metric::EgressBytesPerSec,
        Metric::IngressBytes,
        Metric::IngressBytesPerSec,
        Metric::EgressPacketsPerSec,
        Metric::IngressPacketsPerSec,
        Metric::ConnectAttemptsPerSec,
        Metric::SyscallsPerSec,
        Metric::MemoryUsageBytes,
        Metric::OomKills,
        Metric::CpuUsagePercent,
    ];

    /// The name written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Metric::EgressBytes => "egress_bytes",
            Metric::EgressBytesPerSec => "egress_bytes_per_sec",
            Metric::IngressBytes => "ingress_bytes",
            Metric::IngressBytesPerSec => "ingress_bytes_per_sec",
            Metric::EgressPacketsPerSec => "egress_packets_per_sec",
            Metric::IngressPacketsPerSec => "ingress_packets_per_sec",
            Metric::ConnectAttemptsPerSec => "connect_attempts_per_sec",
            Metric::SyscallsPerSec => "syscalls_per_sec",
            Metric::MemoryUsageBytes => "memory_usage_bytes",
            Metric::OomKills => "oom_kills",
            Metric::CpuUsagePercent => "cpu_usage_percent",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn unit(self) -> MetricUnit {
        match self {
            Metric::EgressBytes | Metric::IngressBytes | Metric::MemoryUsageBytes => {
                MetricUnit::Bytes
            }
            Metric::EgressBytesPerSec | Metric::IngressBytesPerSec => MetricUnit::BytesPerSec,
            Metric::OomKills => MetricUnit::Count,
            Metric::EgressPacketsPerSec
            | Metric::IngressPacketsPerSec
            | Metric::ConnectAttemptsPerSec
            | Metric::SyscallsPerSec => MetricUnit::PerSec,
            Metric::CpuUsagePercent => MetricUnit::Percent,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Traffic direction, seen from the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `egress`: sent by the group.
    Egress,
    /// `ingress`: received by the group.
    Ingress,
}

/// One entry of a rule's `then` list.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `"log"`: write an audit record (and a log line).
    Log,
    /// `"set KEY=VALUE"` (spaces around `=` allowed): write a controller file such
    /// as `cpu.weight`, as a `[group]` setting would; the old value is restored by
    /// `until`. `key` is `CONTROLLER.FILE`; `value` is as written, unparsed.
    SetKey { key: String, value: String },
    /// `"throttle egress RATE"` / `"throttle ingress RATE"`: limit that direction
    /// to `bytes_per_sec` (RATE written as for `egress_rate`); lifted by `until`.
    Throttle { dir: Direction, bytes_per_sec: u64 },
    /// `"freeze"`: freeze the group; thawed by `until`.
    Freeze,
    /// `"kill"`: kill every process in the group (not undone).
    Kill,
}

impl Action {
    /// Whether `until` undoes this action (set, throttle, freeze).
    pub fn is_reversible(&self) -> bool {
        matches!(
            self,
            Action::SetKey { .. } | Action::Throttle { .. } | Action::Freeze
        )
    }
}
