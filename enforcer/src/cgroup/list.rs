//! `list` (lscgroup): every group in every hierarchy, or below given groups.

use serde::Serialize;

use super::error::CgroupError;
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
            // Walked as directories, not group paths: other tools' names
            // (systemd's `\x2d`, a runtime's, a delegated user's, even bytes
            // that are not UTF-8) are listed too, as labels
            // ([`crate::escape::name`]).
            let mut stack = vec![(self.dir(h, &start), start.to_string())];
            while let Some((dir, path)) = stack.pop() {
                let mut kids = child_dirs(&dir);
                kids.sort();
                for k in kids.into_iter().rev() {
                    let name = crate::escape::name(&k);
                    let child = if path == "/" {
                        format!("/{name}")
                    } else {
                        format!("{path}/{name}")
                    };
                    stack.push((dir.join(&k), child));
                }
                out.push(Listed {
                    controllers: label.clone(),
                    path,
                });
            }
        }
        Ok(out)
    }
}

/// The names of the directories in `dir` (none if it cannot be read: a group
/// removed while listed).
fn child_dirs(dir: &std::path::Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default()
}
