//! The validated-syntax policy model that both config formats produce.
//!
//! It holds what the file *says*, with a source span on everything, so that checks
//! made later against the host (unknown controller, bad value) can still point at
//! `file:line:column`. Host-dependent validation lives in `plan`.
//!
//! Values the mechanisms act on (addresses, actions, metrics) are the shared
//! words (`crate::words`) and the counters' metrics, re-exported here: the
//! file is read straight into them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::arch::SyscallName;

pub use crate::counters::Metric;
pub use crate::words::{
    Access, AccessList, Action, Compare, Direction, IpNet, MetricUnit, NetRule, OnExit, Priority,
    Proto, Resource, Span, Spanned, SyscallAction,
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
    /// The TOML `[arbiter]` table; `None` if absent (the arbiter is off).
    pub arbiter: Option<ArbiterSpec>,
    /// The TOML `[[classify]]` rules, in file order (see `config/classify.rs`).
    pub classify: Vec<super::ClassifyRule>,
    /// The TOML `[[container]]` rules, in file order (see `config/container.rs`).
    pub containers: Vec<super::ContainerRule>,
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
    /// TOML `priority = "high" | "normal" | "low"` or a level 1 to 100;
    /// `None` if not written (the group is then `normal`).
    pub priority: Option<Spanned<Priority>>,
    /// TOML `min_cpu`, `min_memory`, ...: what the arbiter never takes below.
    pub floors: Floors,
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
            floors: Floors::default(),
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
// Enforcement (TOML only), syntax-checked and normalised (units converted,
// addresses parsed); nothing has been checked against the host yet. What each
// key means and how it is written is documented once, on the file's typed
// tables (`toml_policy/file.rs`, rendered into docs/policy.md); these are the
// values read from them, each with where it was written. `None`: not written.
// ---------------------------------------------------------------------------

/// `[agent]`: how `enforcer run` behaves; command-line flags override it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// Where the `[agent]` header is.
    pub span: Span,
    pub metrics: Option<Spanned<SocketAddr>>,
    /// At least 10ms.
    pub interval: Option<Spanned<Duration>>,
    pub on_exit: Option<Spanned<OnExit>>,
    /// Absolute.
    pub audit_log: Option<Spanned<PathBuf>>,
    /// The gid `audit_group` names.
    pub audit_group: Option<Spanned<u32>>,
    pub observe: Option<Spanned<bool>>,
    pub parent: Option<Spanned<String>>,
    /// Bytes per second the node can send, shared by priority.
    pub egress_capacity: Option<Spanned<u64>>,
    /// Bytes per second the node can receive, shared by priority.
    pub ingress_capacity: Option<Spanned<u64>>,
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

/// A group's floors: the arbiter never takes it below them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Floors {
    /// `min_cpu`, percent of one CPU, above 0.
    pub cpu: Option<Spanned<f64>>,
    /// `min_memory`, bytes.
    pub memory: Option<Spanned<u64>>,
    /// `min_io_weight`, 1 to 10000.
    pub io_weight: Option<Spanned<u64>>,
    /// `min_egress`, bytes per second.
    pub egress: Option<Spanned<u64>>,
    /// `min_ingress`, bytes per second.
    pub ingress: Option<Spanned<u64>>,
}

impl Floors {
    pub fn is_empty(&self) -> bool {
        *self == Floors::default()
    }
}

/// `[arbiter]`: when and how far lower-priority groups yield. Percentages
/// are as written (`10` for 10%).
#[derive(Debug, Clone, PartialEq)]
pub struct ArbiterSpec {
    /// Where the `[arbiter]` header is.
    pub span: Span,
    pub enabled: Option<Spanned<bool>>,
    /// At least 10ms.
    pub interval: Option<Spanned<Duration>>,
    /// No resource twice, not empty.
    pub resources: Option<Spanned<Vec<Resource>>>,
    /// Percent, above 0 and at most 100.
    pub cpu_pressure: Option<Spanned<f64>>,
    pub memory_pressure: Option<Spanned<f64>>,
    pub io_pressure: Option<Spanned<f64>>,
    pub network_pressure: Option<Spanned<f64>>,
    /// Percent, above 0 and below 100.
    pub step: Option<Spanned<f64>>,
    pub memory_step: Option<Spanned<f64>>,
    pub restore_after: Option<Spanned<Duration>>,
    pub probe_after: Option<Spanned<Duration>>,
}

/// `[group."NAME".network]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpec {
    /// Where the table is named.
    pub span: Span,
    /// `connect_allow` or `connect_deny` (at most one; an empty list is `None`,
    /// with a warning).
    pub connect: Option<AccessList>,
    /// `bind_allow` or `bind_deny`, as `connect`.
    pub bind: Option<AccessList>,
    /// Bytes per second, at least 1.
    pub egress_rate: Option<Spanned<u64>>,
    pub ingress_rate: Option<Spanned<u64>>,
    pub egress_budget: Option<Budget>,
    pub ingress_budget: Option<Budget>,
}

/// At most `bytes` (at least 1) per `window` (at least a second).
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub bytes: u64,
    pub window: Duration,
    /// Where the value is.
    pub span: Span,
}

/// `[group."NAME".syscalls]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyscallSpec {
    /// Where the table is named.
    pub span: Span,
    /// No name twice; may be empty (then with a warning). Each name exists
    /// on some architecture; whether on the node's is the plan's check.
    pub deny: Vec<Spanned<SyscallName>>,
    /// `Log` if neither `deny` nor `action` is written.
    pub action: Spanned<SyscallAction>,
}

/// One `[[group."NAME".when]]` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct WhenRule {
    /// Where the rule's header (or inline table) is.
    pub span: Span,
    pub metric: Spanned<Metric>,
    /// Which of `above` / `below` was written (exactly one is).
    pub compare: Compare,
    /// In the metric's base unit ([`Metric::unit`]).
    pub threshold: Spanned<f64>,
    /// `for`; zero if not written (the span is then the rule's).
    pub hold: Spanned<Duration>,
    /// Not empty; no action twice (two `set` of one key count as twice).
    pub then: Vec<Spanned<Action>>,
    pub until: Option<Spanned<Duration>>,
}
