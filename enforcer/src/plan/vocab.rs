//! The words the policy and the mechanisms share: what a rule does, what it
//! watches, which way traffic goes. They live in the plan so that the
//! mechanism layers (`cgroup/`, `bpf/`, `enforce/`) never import the policy
//! file's model; the policy reader parses its text into these.

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

/// What happens when a group makes a syscall its `syscalls.deny` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallAction {
    /// `"log"`: allow the call, record it in the audit log.
    Log,
    /// `"kill"`: kill the calling process (SIGKILL) when the call is made.
    Kill,
    /// `"deny"`: make the call fail with `EPERM` (only for the syscalls of
    /// [`crate::bpf::DENY_HOOKS`]).
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

/// What a `when` rule watches: declared with the counters it reads.
pub use crate::counters::Metric;

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
