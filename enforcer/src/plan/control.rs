//! The closed-loop part of the plan: a group's `[[when]]` rules as the engine
//! runs them, with every action checked against the host now, not when the
//! rule first fires: `set memory.max=10XB` or `set nosuch.key=5` is refused at
//! load, exactly as the same `[group]` setting would be.

use std::time::Duration;

use crate::cgroup::{Cgroups, GroupPath};
use crate::config::GroupSpec;

use super::error::PlanError;
use crate::counters::Metric;
use crate::words::{Action, Compare};

/// One closed-loop rule: when `metric` is above (below) `threshold` for `hold`,
/// run `then`; with `until`, undo the reversible actions once the condition
/// has been false that long.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRule {
    /// Where the rule is written (`file:line:column`), for messages; not part
    /// of what the rule is.
    pub origin: String,
    pub metric: Metric,
    pub compare: Compare,
    /// In the metric's base unit (see [`Metric::unit`]).
    pub threshold: f64,
    pub hold: Duration,
    /// Not empty; no action twice.
    pub then: Vec<Action>,
    pub until: Option<Duration>,
}

impl ControlRule {
    /// Two rules are the same rule if everything but their place in the file
    /// is (a reload keeps such a rule's state).
    pub fn same_as(&self, other: &ControlRule) -> bool {
        ControlRule {
            origin: String::new(),
            ..self.clone()
        } == ControlRule {
            origin: String::new(),
            ..other.clone()
        }
    }

    /// Whether a firing can throttle the group, which needs the enforcing
    /// programs attached even when the group has no network rules.
    pub fn throttles(&self) -> bool {
        self.then
            .iter()
            .any(|a| matches!(a, Action::Throttle { .. }))
    }
}

/// The rules of group `g` (at `path` on this host), each `set` action
/// validated as a `[group]` setting of that key would be.
pub(super) fn control_rules(
    cg: &Cgroups,
    path: &GroupPath,
    g: &GroupSpec,
    warnings: &mut Vec<String>,
) -> Result<Vec<ControlRule>, PlanError> {
    g.when
        .iter()
        .map(|w| {
            for action in &w.then {
                if let Action::SetKey { key, value } = &action.value {
                    let mut warns = Vec::new();
                    cg.prepare_setting(path, key, value, false, &mut warns)
                        .map_err(|e| PlanError::host(&action.span, e))?;
                    warnings.extend(warns.into_iter().map(|m| format!("{}: {m}", action.span)));
                }
            }
            Ok(ControlRule {
                origin: w.span.to_string(),
                metric: w.metric.value,
                compare: w.compare,
                threshold: w.threshold.value,
                hold: w.hold.value,
                then: w.then.iter().map(|a| a.value.clone()).collect(),
                until: w.until.as_ref().map(|u| u.value),
            })
        })
        .collect()
}
