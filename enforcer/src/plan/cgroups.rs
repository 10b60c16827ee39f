//! The cgroupfs part of the plan: each policy group's hierarchies, owners and
//! file writes, every key and value checked against this host.

use crate::cgroup::{CgroupError, Cgroups, GroupPath, GroupPlan, Ownership, owner_from_names};
use crate::config::{GroupSpec, Owner, Policy};

use super::error::PlanError;
use super::kernel::cpu_weight;

fn owner(o: &Option<Owner>) -> Result<Option<(nix::unistd::Uid, nix::unistd::Gid)>, PlanError> {
    match o {
        Some(o) if o.uid.is_some() || o.gid.is_some() => {
            owner_from_names(o.uid.as_deref(), o.gid.as_deref())
                .map(Some)
                .map_err(|e| PlanError::host(&o.span, e))
        }
        _ => Ok(None),
    }
}

/// Errors about the value point at the value; others at the key.
fn at_setting(e: CgroupError, key: &super::Span, value: &super::Span) -> PlanError {
    match e {
        CgroupError::InvalidValue { .. } | CgroupError::OutOfRange { .. } => {
            PlanError::host(value, e)
        }
        _ => PlanError::host(key, e),
    }
}

/// The group's path as a cgroup path, refusing the root.
pub(super) fn group_path(g: &GroupSpec) -> Result<GroupPath, PlanError> {
    let path = GroupPath::parse(&g.name).map_err(|e| PlanError::host(&g.span, e))?;
    if path.is_root() {
        return Err(PlanError::host(
            &g.span,
            CgroupError::RootForbidden {
                action: "configured by apply",
            },
        ));
    }
    Ok(path)
}

/// Every group's cgroupfs part, in policy order. Touches nothing.
pub(super) fn plan(cg: &Cgroups, policy: &Policy) -> Result<crate::cgroup::Plan, PlanError> {
    let mut plan = crate::cgroup::Plan::default();
    for (span, w) in &policy.warnings {
        plan.warnings.push(format!("{span}: {w}"));
    }
    for g in &policy.groups {
        plan.groups.push(group(cg, g, &mut plan.warnings)?);
    }
    Ok(plan)
}

fn group(cg: &Cgroups, g: &GroupSpec, warnings: &mut Vec<String>) -> Result<GroupPlan, PlanError> {
    let path = group_path(g)?;
    let mut names = Vec::new();
    let mut writes = Vec::new();
    for c in &g.controllers {
        cg.locate(&c.name)
            .map_err(|e| PlanError::host(&c.span, e))?;
        names.push(c.name.clone());
        for s in &c.settings {
            let (v1, v2) = crate::cgroup::keys::controller_names(&s.key)
                .map_err(|e| PlanError::host(&s.span, e))?;
            if c.name != v1 && c.name != v2 {
                return Err(PlanError::host(
                    &s.span,
                    CgroupError::UnknownKey {
                        key: s.key.clone(),
                        hint: format!(
                            "it belongs to the {v1} controller, not the {} block it is in",
                            c.name
                        ),
                    },
                ));
            }
            let mut warns = Vec::new();
            writes.extend(
                cg.prepare_setting(&path, &s.key, &s.value, false, &mut warns)
                    .map_err(|e| at_setting(e, &s.span, &s.value_span))?,
            );
            warnings.extend(warns.into_iter().map(|w| format!("{}: {w}", s.span)));
        }
    }
    // `priority` is a cpu weight unless the group sets one itself.
    if let Some(pr) = &g.priority {
        let explicit = writes
            .iter()
            .any(|w| matches!(w.key.as_str(), "cpu.weight" | "cpu.shares"));
        if !explicit {
            let mut warns = Vec::new();
            writes.extend(
                cg.prepare_setting(
                    &path,
                    "cpu.weight",
                    &cpu_weight(pr.value),
                    false,
                    &mut warns,
                )
                .map_err(|e| PlanError::host(&pr.span, e))?,
            );
            if !names.iter().any(|n| n == "cpu") {
                names.push("cpu".into());
            }
        }
    }
    // eBPF knows a group by its cgroup2 id: one that names no controller
    // (no settings, or rules only) still needs its cgroup2 directory. A
    // hybrid host's mirror gives it one; a pure v2 host needs `cgroup2`.
    if names.is_empty() && cg.v2().is_some() {
        names.push("cgroup2".into());
    }
    let targets = cg
        .targets(&names)
        .map_err(|e| PlanError::host(&g.span, e))?;
    let own = Ownership {
        task: owner(&g.perm.task)?,
        admin: owner(&g.perm.admin)?,
        fperm: g.perm.admin.as_ref().and_then(|a| a.fperm),
        dperm: g.perm.admin.as_ref().and_then(|a| a.dperm),
        tperm: g.perm.task.as_ref().and_then(|t| t.fperm),
    };
    Ok(GroupPlan {
        path,
        targets,
        own,
        writes,
    })
}
