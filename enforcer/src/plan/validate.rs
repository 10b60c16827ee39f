//! [`validate`]: the one judgement of a policy, shared by `run`, `reload`,
//! `reload --config` and `apply --dry-run`.

use std::path::Path;

use crate::arch::Arch;
use crate::bpf::FeatureReport;
use crate::cgroup::{Cgroups, GroupPath};
use crate::config::Policy;

use super::control::{ControlRule, control_rules};
use super::error::PlanError;
use super::features::{check_features, feature_needs, label_of};
use super::kernel::group_rules_for;
use super::model::{Plan, PlannedGroup, RuleCounts};

/// Whether (and how) to check that this kernel runs what the policy needs.
/// Probing loads every program through the verifier, which needs root and
/// BPF; a dry run without them says that it skipped this step.
#[derive(Clone, Copy)]
pub enum Kernel<'a> {
    /// Probe this kernel (once per process).
    Probe,
    /// Judge against a report already made (tests, a fake kernel).
    Report(&'a FeatureReport),
    /// Do not check kernel features.
    Unchecked,
}

/// The delegated subtree the policy's groups go below: `cli` (`--parent`),
/// else the policy's `[agent] parent`. None for the top of each hierarchy.
pub fn parent_of(cli: Option<&str>, policy: &Policy) -> Result<Option<GroupPath>, PlanError> {
    let spanned = policy.agent.as_ref().and_then(|a| a.parent.as_ref());
    let Some(text) = cli.or(spanned.map(|p| p.value.as_str())) else {
        return Ok(None);
    };
    let path = match (GroupPath::parse(text), spanned) {
        (Ok(p), _) => p,
        (Err(e), Some(sp)) if cli.is_none() => return Err(PlanError::host(&sp.span, e)),
        (Err(e), _) => return Err(PlanError::Parent(Box::new(e))),
    };
    Ok((!path.is_root()).then_some(path))
}

/// Reads `file` and [`validate`]s it.
pub fn validate_file(
    cg: &Cgroups,
    file: &Path,
    parent: Option<&str>,
    kernel: Kernel<'_>,
) -> Result<Plan, PlanError> {
    validate(cg, crate::config::load(file)?, parent, kernel)
}

/// Judges a policy completely, against this host's hierarchies, its
/// architecture's syscall table and (unless [`Kernel::Unchecked`]) its
/// kernel, and returns what carrying it out means. Changes nothing. Group
/// names are placed below the parent, if there is one.
pub fn validate(
    cg: &Cgroups,
    policy: Policy,
    parent: Option<&str>,
    kernel: Kernel<'_>,
) -> Result<Plan, PlanError> {
    validate_for(cg, policy, parent, kernel, Arch::host())
}

/// [`validate`] for nodes of architecture `arch` (syscall names and numbers
/// are that architecture's), with this host's hierarchies: checking a fleet
/// policy for arm64 nodes from an x86_64 machine.
pub fn validate_for(
    cg: &Cgroups,
    mut policy: Policy,
    parent: Option<&str>,
    kernel: Kernel<'_>,
    arch: Arch,
) -> Result<Plan, PlanError> {
    let parent = parent_of(parent, &policy)?;
    if let Some(parent) = &parent {
        for g in &mut policy.groups {
            g.name = format!("{}/{}", parent.as_str(), g.name.trim_start_matches('/'));
        }
    }
    let cgroups = super::cgroups::plan(cg, &policy)?;
    let mut warnings = cgroups.warnings.clone();
    let paths: Vec<GroupPath> = cgroups.groups.iter().map(|g| g.path.clone()).collect();
    let arbiter = super::arbiter::plan(cg, &policy, &paths, &mut warnings)?;
    let mut groups = Vec::with_capacity(policy.groups.len());
    for ((spec, cgroup), level) in policy
        .groups
        .iter()
        .zip(&cgroups.groups)
        .zip(&arbiter.share_levels)
    {
        let control = control_rules(cg, &cgroup.path, spec, &mut warnings)?;
        let mut rules = group_rules_for(spec, arch)?;
        super::kernel::partial_deny_warnings(spec, &mut warnings);
        rules.share_level = *level;
        let throttles = control.iter().any(ControlRule::throttles);
        groups.push(PlannedGroup {
            path: cgroup.path.clone(),
            span: spec.span.clone(),
            label: label_of(spec, &cgroup.path),
            needs: feature_needs(spec, &rules, throttles),
            rules,
            throttles,
            control,
            priority: super::arbiter::priority_of(spec),
        });
    }
    let containers = policy
        .containers
        .iter()
        .map(super::containers::plan)
        .collect::<Result<Vec<_>, _>>()?;
    let report = match kernel {
        Kernel::Probe => Some(crate::bpf::features().map_err(|e| PlanError::Probe(Box::new(e)))?),
        Kernel::Report(report) => Some(report),
        Kernel::Unchecked => None,
    };
    if let Some(report) = report {
        check_features(&groups, report)?;
        // A container rule needs what a group with the same rules would.
        let as_groups: Vec<PlannedGroup> = containers
            .iter()
            .zip(&policy.containers)
            .map(|(c, rule)| PlannedGroup {
                path: GroupPath::default(),
                span: c.span.clone(),
                label: label_of(&rule.rules, &GroupPath::default()),
                needs: feature_needs(&rule.rules, &c.rules, false),
                rules: c.rules.clone(),
                control: Vec::new(),
                throttles: false,
                priority: super::Priority::NORMAL,
            })
            .collect();
        check_features(&as_groups, report)?;
    }
    let plan = Plan {
        cgroups,
        groups,
        warnings,
        kernel_checked: report.is_some(),
        shares: arbiter.shares,
        arbiter: arbiter.arbiter,
        containers,
        rule_counts: rule_counts(&policy),
        syscall_names: syscall_names(&policy),
        agent: policy.agent,
        parent,
        classify: policy.classify,
    };
    Ok(plan)
}

/// What `enforcer_rules_loaded` counts for a policy.
fn rule_counts(policy: &Policy) -> RuleCounts {
    let mut r = RuleCounts::default();
    for g in &policy.groups {
        if g.network.is_some() {
            r.network += 1;
        }
        r.syscall += g.syscalls.as_ref().map_or(0, |s| s.deny.len() as u64);
        r.when += g.when.len() as u64;
    }
    r
}

/// The policy's syscall names (label values of `enforcer_syscall_calls_total`).
fn syscall_names(policy: &Policy) -> Vec<String> {
    policy
        .groups
        .iter()
        .filter_map(|g| g.syscalls.as_ref())
        .flat_map(|s| s.deny.iter().map(|d| d.value.name().to_string()))
        .collect()
}
