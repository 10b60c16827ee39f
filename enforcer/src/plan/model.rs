//! What the plan is: one policy group as the mechanisms will carry it out,
//! and the desired state of the host. [`validate`](super::validate) makes
//! it; the diff, the agent and `apply` read it.

use crate::bpf::{Feature, GroupRules};
use crate::cgroup::GroupPath;
use crate::words::Span;

use super::control::ControlRule;

/// One policy group as the mechanisms will carry it out.
#[derive(Debug, Clone)]
pub struct PlannedGroup {
    /// Below the parent, if there is one.
    pub path: GroupPath,
    /// Where the group is written in the policy.
    pub span: Span,
    /// Its kernel rule tables.
    pub rules: GroupRules,
    /// Its closed-loop rules.
    pub control: Vec<ControlRule>,
    /// A closed-loop rule can throttle it: the enforcing programs are needed
    /// even without rules of its own.
    pub throttles: bool,
    /// Its priority (`normal` when the policy sets none).
    pub priority: super::Priority,
    /// How a refusal names it (`group "web"`, or a container rule's name).
    pub label: String,
    /// What its rules need of the kernel, with where each rule is written.
    pub needs: Vec<FeatureNeed>,
}

/// A kernel feature a group's rule needs, and where that rule is written
/// (for the refusal's `file:line:column`).
#[derive(Debug, Clone)]
pub struct FeatureNeed {
    pub feature: Feature,
    /// The rule, as a refusal names it (`syscalls.deny "listen"`).
    pub rule: String,
    pub span: Span,
}

/// The desired state of the host for one policy.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Groups to create and the files to write (same order as `groups`).
    pub cgroups: crate::cgroup::Plan,
    pub groups: Vec<PlannedGroup>,
    /// Accepted but worth saying (`file:line:column: ...`).
    pub warnings: Vec<String>,
    /// Whether kernel features were checked ([`Kernel::Unchecked`] skips it).
    pub kernel_checked: bool,
    /// The node's network shares per direction (egress, ingress), as the
    /// kernel enforces them with no group yielding.
    pub shares: [crate::bpf::NetShares; 2],
    /// The arbiter, when the policy enables it.
    pub arbiter: Option<super::ArbiterPlan>,
    /// `[[container]]` rules, in policy order (the first that matches wins).
    pub containers: Vec<super::PlannedContainers>,
    /// The policy's `[agent]` table as written: the agent's settings where
    /// its command line sets none.
    pub agent: Option<crate::config::AgentSpec>,
    /// The delegated subtree the groups were placed below (`--parent`, else
    /// `[agent] parent`), if any.
    pub parent: Option<crate::cgroup::GroupPath>,
    /// `[[classify]]` rules, in policy order.
    pub classify: Vec<crate::config::ClassifyRule>,
    /// The syscalls the policy's deny lists name (a label value each in the
    /// metrics).
    pub syscall_names: Vec<String>,
    /// Rules of the policy, per kind.
    pub rule_counts: RuleCounts,
}

/// How many rules of each kind a policy has (`enforcer_rules_loaded`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleCounts {
    /// Groups with network address lists, rates or budgets.
    pub network: u64,
    /// Syscall deny entries.
    pub syscall: u64,
    /// Closed-loop `when` rules.
    pub when: u64,
}
