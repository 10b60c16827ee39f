//! `apply` (cgconfigparser): a plan of groups and their writes (made and
//! validated against the host by the plan) carried out, and undone if the
//! kernel refuses something midway.

use std::path::PathBuf;

use serde::Serialize;

use super::create::{Created, Ownership};
use super::error::CgroupError;
use super::fsio::{read_trim, write};
use super::host::{Cgroups, Targets};
use super::path::GroupPath;
use super::settings::{PreparedWrite, SetOutcome};

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub path: GroupPath,
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

impl Cgroups {
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
}
