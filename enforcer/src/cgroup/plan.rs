//! `apply` (cgconfigparser): a whole policy validated against the host first, then
//! carried out, and undone if the kernel refuses something midway.

use std::path::PathBuf;

use serde::Serialize;

use super::create::{Created, Ownership, owner_from_names};
use super::error::CgroupError;
use super::fsio::{read_trim, write};
use super::host::{Cgroups, Targets};
use super::keys;
use super::path::GroupPath;
use super::settings::{PreparedWrite, SetOutcome};
use crate::config::{Owner, Policy, Priority, Span};

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub path: GroupPath,
    pub span: Span,
    pub targets: Targets,
    pub own: Ownership,
    pub writes: Vec<PreparedWrite>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub groups: Vec<GroupPlan>,
    pub warnings: Vec<String>,
}

/// What `apply` did.
#[derive(Debug, Default, Serialize)]
pub struct Applied {
    pub created: Vec<PathBuf>,
    pub writes: Vec<SetOutcome>,
    /// Files of groups that existed before, with the values they had: what
    /// [`Cgroups::undo`] writes back.
    pub overwritten: Vec<(PathBuf, String)>,
}

fn owner(o: &Option<Owner>) -> Result<Option<(nix::unistd::Uid, nix::unistd::Gid)>, CgroupError> {
    match o {
        Some(o) if o.uid.is_some() || o.gid.is_some() => {
            owner_from_names(o.uid.as_deref(), o.gid.as_deref())
                .map(Some)
                .map_err(|e| e.at(&o.span))
        }
        _ => Ok(None),
    }
}

/// cgroup v2 weights (v1 shares by the runc conversion): twice and half the
/// default of 100.
fn priority_weight(p: Priority) -> &'static str {
    match p {
        Priority::High => "200",
        Priority::Normal => "100",
        Priority::Low => "50",
    }
}

/// Errors about the value point at the value; others at the key.
fn at_setting(e: CgroupError, key: &Span, value: &Span) -> CgroupError {
    match e {
        CgroupError::InvalidValue { .. } | CgroupError::OutOfRange { .. } => e.at(value),
        _ => e.at(key),
    }
}

impl Cgroups {
    /// Validate a policy completely against this host. Touches nothing.
    pub fn plan(&self, policy: &Policy) -> Result<Plan, CgroupError> {
        let mut plan = Plan::default();
        for (span, w) in &policy.warnings {
            plan.warnings.push(format!("{span}: {w}"));
        }
        for g in &policy.groups {
            let path = GroupPath::parse(&g.name).map_err(|e| e.at(&g.span))?;
            if path.is_root() {
                return Err(CgroupError::RootForbidden {
                    action: "configured by apply",
                }
                .at(&g.span));
            }
            let mut names = Vec::new();
            let mut writes = Vec::new();
            for c in &g.controllers {
                self.locate(&c.name).map_err(|e| e.at(&c.span))?;
                names.push(c.name.clone());
                for s in &c.settings {
                    let (v1, v2) = keys::controller_names(&s.key).map_err(|e| e.at(&s.span))?;
                    if c.name != v1 && c.name != v2 {
                        return Err(CgroupError::UnknownKey {
                            key: s.key.clone(),
                            hint: format!(
                                "it belongs to the {v1} controller, not the {} block it is in",
                                c.name
                            ),
                        }
                        .at(&s.span));
                    }
                    let mut warns = Vec::new();
                    writes.extend(
                        self.prepare_setting(&path, &s.key, &s.value, false, &mut warns)
                            .map_err(|e| at_setting(e, &s.span, &s.value_span))?,
                    );
                    plan.warnings
                        .extend(warns.into_iter().map(|w| format!("{}: {w}", s.span)));
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
                        self.prepare_setting(
                            &path,
                            "cpu.weight",
                            priority_weight(pr.value),
                            false,
                            &mut warns,
                        )
                        .map_err(|e| e.at(&pr.span))?,
                    );
                    if !names.iter().any(|n| n == "cpu") {
                        names.push("cpu".into());
                    }
                }
            }
            let targets = self.targets(&names).map_err(|e| e.at(&g.span))?;
            let own = Ownership {
                task: owner(&g.perm.task)?,
                admin: owner(&g.perm.admin)?,
                fperm: g.perm.admin.as_ref().and_then(|a| a.fperm),
                dperm: g.perm.admin.as_ref().and_then(|a| a.dperm),
                tperm: g.perm.task.as_ref().and_then(|t| t.fperm),
            };
            plan.groups.push(GroupPlan {
                path,
                span: g.span.clone(),
                targets,
                own,
                writes,
            });
        }
        Ok(plan)
    }

    /// Carry out a plan. On failure, groups this call created are removed and
    /// values it overwrote in groups that already existed are restored.
    pub fn apply(&self, plan: &Plan) -> Result<Applied, CgroupError> {
        let mut created = Created::default();
        let mut overwritten: Vec<(PathBuf, String)> = Vec::new();
        let mut applied = Applied::default();
        let result = (|| -> Result<(), CgroupError> {
            for g in &plan.groups {
                self.create_in(&g.targets, &g.path, &g.own, &mut created)?;
                for w in &g.writes {
                    let dir = self.dir(w.hier, &g.path);
                    if !created.dirs.contains(&dir) {
                        let file = dir.join(&w.file);
                        overwritten.push((file.clone(), read_trim(&file)?));
                    }
                    applied.writes.push(self.run_write(&g.path, w)?);
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                applied.created = created.dirs;
                applied.overwritten = overwritten;
                Ok(applied)
            }
            Err(e) => {
                let mut restored = 0;
                for (file, old) in overwritten.iter().rev() {
                    if write(file, old).is_ok() {
                        restored += 1;
                    }
                }
                let removed = created.rollback();
                Err(CgroupError::RolledBack {
                    source: Box::new(e),
                    rolled_back: format!(
                        "removed {} group director{} created by this run, restored {restored} value{}",
                        removed.len(),
                        if removed.len() == 1 { "y" } else { "ies" },
                        if restored == 1 { "" } else { "s" }
                    ),
                })
            }
        }
    }

    /// Undoes a successful [`apply`](Self::apply) (when a later step of an
    /// all-or-nothing start fails): restores overwritten values, newest first,
    /// then removes the directories it created. Best effort; returns what it
    /// could not undo.
    pub fn undo(&self, applied: &Applied) -> Vec<String> {
        let mut failed = Vec::new();
        for (file, old) in applied.overwritten.iter().rev() {
            if let Err(e) = write(file, old) {
                failed.push(format!("restoring {}: {e}", file.display()));
            }
        }
        let mut created = Created {
            dirs: applied.created.clone(),
        };
        let removed = created.rollback();
        for d in &applied.created {
            if !removed.contains(d) {
                failed.push(format!("removing {}", d.display()));
            }
        }
        failed
    }

    /// Human-readable plan for `apply --dry-run`.
    pub fn describe(&self, plan: &Plan) -> String {
        let mut out = String::new();
        for g in &plan.groups {
            let hs: Vec<String> = g
                .targets
                .hiers
                .iter()
                .map(|&h| {
                    let label = self.hierarchy(h).label();
                    // Not merely a mirror where it holds a controller to enable.
                    if Some(h) == self.mirror() && g.targets.v2_enable.is_empty() {
                        format!("{label} (mirror for eBPF)")
                    } else {
                        label
                    }
                })
                .collect();
            let verb = if g.targets.hiers.iter().all(|&h| self.exists(h, &g.path)) {
                "configure"
            } else {
                "create"
            };
            out.push_str(&format!(
                "{verb} {} in {}  [{}]\n",
                g.path,
                hs.join("; "),
                g.span
            ));
            if !g.targets.v2_enable.is_empty() {
                out.push_str(&format!(
                    "  enable {} in the parents' cgroup.subtree_control\n",
                    g.targets.v2_enable.join(" ")
                ));
            }
            for w in &g.writes {
                let or: String = w
                    .alternatives
                    .iter()
                    .map(|(f, v)| format!(" (or {f} = {v}, whichever the group has)"))
                    .collect();
                out.push_str(&format!(
                    "  {} = {}  ->  {}:{} = {}{or}\n",
                    w.key,
                    w.value,
                    self.hierarchy(w.hier).label(),
                    w.file,
                    w.write
                ));
            }
        }
        out
    }
}
