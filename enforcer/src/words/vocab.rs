//! The words the policy and the mechanisms share: what a rule does, what it
//! watches, which way traffic goes. The policy reader parses its text into
//! these, the plan decides with them, and the mechanisms take them.

use std::fmt;

/// `[agent] on_exit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// `"keep"`: leave programs attached and counters pinned, so enforcement and
    /// accounting continue and the next start adopts them (today's behaviour).
    Keep,
    /// `"detach"`: detach the programs and unpin the maps, as `enforcer stop` does.
    Detach,
}

/// A group's `priority`: a level on a scale from 1 (lowest) to 100
/// (highest); `"low"`, `"normal"` and `"high"` are 25, 50 and 75. It orders
/// the groups for the arbiter (a group yields only to higher levels), gives
/// the CPU weight ([`Priority::weight`]), the group's level in the node's
/// network shares, and the priority of its packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// `"low"`.
    pub const LOW: Priority = Priority(25);
    /// `"normal"`, also the level of a group without a `priority`.
    pub const NORMAL: Priority = Priority(50);
    /// `"high"`.
    pub const HIGH: Priority = Priority(75);
    /// The lowest level.
    pub const MIN: u8 = 1;
    /// The highest level.
    pub const MAX: u8 = 100;
    /// The names and their levels, in the order messages list them.
    pub const NAMES: [(&'static str, Priority); 3] = [
        ("high", Priority::HIGH),
        ("normal", Priority::NORMAL),
        ("low", Priority::LOW),
    ];

    /// The level, if it is on the scale (1 to 100).
    pub fn new(level: u8) -> Option<Priority> {
        (Self::MIN..=Self::MAX)
            .contains(&level)
            .then_some(Priority(level))
    }

    pub fn level(self) -> u8 {
        self.0
    }

    /// `high`, `normal` or `low` for those levels.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(_, p)| *p == self)
            .map(|(name, _)| *name)
    }

    /// The cgroup v2 CPU weight of the level: 100 at `normal`, doubling every
    /// 25 levels (`high` 200, `low` 50, 100 gives 400, 1 gives 26), as nice
    /// levels scale weights geometrically: each step up the scale is the same
    /// ratio.
    pub fn weight(self) -> u64 {
        let exponent = (f64::from(self.0) - 50.0) / 25.0;
        (100.0 * exponent.exp2()).round() as u64
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// What the arbiter makes lower-priority groups yield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// `"cpu"`: `cpu.weight` and the `cpu.max` quota.
    Cpu,
    /// `"memory"`: `memory.high` (v1: `memory.soft_limit_in_bytes`).
    Memory,
    /// `"io"`: `io.weight` (v1: `blkio.weight`, or the BFQ weight).
    Io,
    /// `"egress"`: the group's sending rate and its level's share.
    Egress,
    /// `"ingress"`: the group's receiving rate and its level's share.
    Ingress,
}

impl Resource {
    /// Every resource, in the order they are documented.
    pub const ALL: [Resource; 5] = [
        Resource::Cpu,
        Resource::Memory,
        Resource::Io,
        Resource::Egress,
        Resource::Ingress,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Io => "io",
            Resource::Egress => "egress",
            Resource::Ingress => "ingress",
        }
    }

    pub fn from_name(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The network direction of `egress` and `ingress`.
    pub fn direction(self) -> Option<Direction> {
        match self {
            Resource::Egress => Some(Direction::Egress),
            Resource::Ingress => Some(Direction::Ingress),
            _ => None,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What happens when a group makes a syscall its `syscalls.deny` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallAction {
    /// `"log"`: allow the call, record it in the audit log.
    Log,
    /// `"kill"`: kill the calling process (SIGKILL) when the call is made.
    Kill,
    /// `"deny"`: make the call fail with `EPERM` (only for the syscalls of
    /// `DENY_HOOKS` in `bpf/`).
    Deny,
}

/// Whether a rule fires above or below its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// `above = ...`: metric > threshold.
    Above,
    /// `below = ...`: metric < threshold.
    Below,
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
