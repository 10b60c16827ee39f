//! Whether this kernel can run what each group's rules need: a policy that
//! needs a program the kernel refuses is refused before anything changes,
//! naming the group, the rule, its line and the kernel's reason.

use crate::bpf::{Feature, FeatureReport, GroupRules};
use crate::cgroup::GroupPath;
use crate::config::GroupSpec;

use super::error::PlanError;
use super::model::{FeatureNeed, PlannedGroup};
use crate::words::Span;

/// Where in the policy the rule that needs a feature is written.
fn rule_span(spec: &GroupSpec, rule: &str) -> Span {
    if let Some(name) = rule
        .strip_prefix("syscalls.deny \"")
        .and_then(|r| r.split('"').next())
    {
        spec.syscalls.as_ref().and_then(|s| {
            s.deny
                .iter()
                .find(|d| d.value.name() == name)
                .map(|d| d.span.clone())
        })
    } else if rule.starts_with("network.") {
        spec.network.as_ref().map(|n| n.span.clone())
    } else if rule == "priority" {
        spec.priority.as_ref().map(|p| p.span.clone())
    } else if rule.starts_with("when") {
        spec.when
            .iter()
            .find(|w| {
                w.then
                    .iter()
                    .any(|a| matches!(a.value, super::Action::Throttle { .. }))
            })
            .map(|w| w.span.clone())
    } else {
        None
    }
    .unwrap_or_else(|| spec.span.clone())
}

/// What the group's rules need of the kernel, each with the rule that needs
/// it and where that rule is written: worked out once, when the plan is
/// made, so a check against a kernel's report needs the plan alone.
pub(super) fn feature_needs(
    spec: &GroupSpec,
    rules: &GroupRules,
    throttles: bool,
) -> Vec<FeatureNeed> {
    let mut needs = vec![(Feature::Accounting, "the group itself".to_string())];
    needs.extend(Feature::needed_by(rules, throttles));
    needs
        .into_iter()
        .map(|(feature, rule)| FeatureNeed {
            feature,
            span: rule_span(spec, &rule),
            rule,
        })
        .collect()
}

/// How a refusal names the group: a container rule by its own name.
pub(super) fn label_of(spec: &GroupSpec, path: &GroupPath) -> String {
    if spec.name.starts_with("container[") {
        spec.name.clone()
    } else {
        format!("group {:?}", path.as_str())
    }
}

/// Refuses the first group (in plan order) whose rules need a feature that
/// `report` says this kernel refused.
pub fn check_features(groups: &[PlannedGroup], report: &FeatureReport) -> Result<(), PlanError> {
    for planned in groups {
        for need in &planned.needs {
            let feature = need.feature;
            let Some(refusal) = report.refusal(feature) else {
                continue;
            };
            let remedy = match feature {
                Feature::LsmDeny => {
                    "use action = \"kill\" or \"log\" for listen, accept and execve, or run \
                     on a kernel that loads BPF-LSM programs (`bpf` among the active LSMs, \
                     e.g. lsm=...,bpf on the kernel command line)"
                }
                _ => {
                    "remove the rule, or run on a kernel that loads this program (`enforcer \
                     status` lists what this one refuses)"
                }
            };
            return Err(PlanError::Unenforceable {
                span: need.span.clone(),
                message: format!(
                    "{}: {} needs {feature} ({}), which this kernel ({}) cannot \
                     do: {refusal}; {remedy}",
                    planned.label,
                    need.rule,
                    feature.describe(),
                    report.kernel,
                ),
            });
        }
    }
    Ok(())
}
