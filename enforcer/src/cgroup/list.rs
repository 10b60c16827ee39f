//! `list` (lscgroup): every group in every hierarchy, or below given groups.

use serde::Serialize;

use super::error::CgroupError;
use super::fsio::subdirs;
use super::host::Cgroups;
use super::path::{GroupPath, GroupSpec};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Listed {
    pub controllers: String,
    pub path: String,
}

impl Cgroups {
    /// Walk the hierarchies (all, or those of `filter`'s controllers starting at
    /// its path). Read-only: listing groups enforcer did not create is fine.
    pub fn list(&self, filter: &[GroupSpec]) -> Result<Vec<Listed>, CgroupError> {
        let mut starts: Vec<(usize, GroupPath)> = Vec::new();
        if filter.is_empty() {
            for h in 0..self.hierarchies().len() {
                starts.push((h, GroupPath::parse("/")?));
            }
        } else {
            for spec in filter {
                for h in self.targets(&spec.controllers)?.hiers {
                    if self.exists(h, &spec.path) {
                        starts.push((h, spec.path.clone()));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (h, start) in starts {
            let label = self.hierarchy(h).label();
            let mut stack = vec![start];
            while let Some(p) = stack.pop() {
                out.push(Listed {
                    controllers: label.clone(),
                    path: p.to_string(),
                });
                let mut kids = subdirs(&self.dir(h, &p)).unwrap_or_default();
                kids.reverse();
                for k in kids {
                    // Not validated: other tools' names (systemd's `\x2d`) are listed too.
                    stack.push(p.join(&k));
                }
            }
        }
        Ok(out)
    }
}
