//! cgroup2 id -> group path, by walking the cgroup2 tree.
//!
//! A cgroup2 id is the inode number of the group's directory. Walking the tree is
//! cheap next to a collection interval, and is done again only when a map holds an
//! id the index has not seen, so groups created after the last walk are found and
//! groups deleted since are noticed (their ids no longer appear).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The label of a group: its path below the cgroup2 root without the leading
/// slash (`web/api`), or `/` for the root itself; bytes of a name that are
/// not UTF-8 as `\xNN` ([`crate::escape::name`]).
pub type GroupLabel = String;

#[derive(Debug, Clone)]
pub struct CgroupIndex {
    root: PathBuf,
    by_id: HashMap<u64, GroupLabel>,
}

impl CgroupIndex {
    pub fn new(cgroup2_root: &Path) -> Self {
        let mut idx = CgroupIndex {
            root: cgroup2_root.to_path_buf(),
            by_id: HashMap::new(),
        };
        idx.refresh();
        idx
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walk the tree again.
    pub fn refresh(&mut self) {
        self.by_id.clear();
        let mut stack = vec![(self.root.clone(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let label = if rel.is_empty() {
                "/".to_string()
            } else {
                rel.clone()
            };
            self.by_id.insert(meta.ino(), label);
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    let name = crate::escape::name(&e.file_name()).into_owned();
                    let child = if rel.is_empty() {
                        name
                    } else {
                        format!("{rel}/{name}")
                    };
                    stack.push((e.path(), child));
                }
            }
        }
    }

    /// Every group known at the last walk: `(cgroup id, label)`.
    pub fn all(&self) -> impl Iterator<Item = (u64, &str)> {
        self.by_id.iter().map(|(id, l)| (*id, l.as_str()))
    }

    /// Forgets a removed group.
    pub fn remove(&mut self, id: u64) {
        self.by_id.remove(&id);
    }

    pub fn label(&self, id: u64) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// Labels for `ids`, walking the tree once more if any is unknown. Returns
    /// the ids still unknown afterwards: their groups were deleted.
    pub fn resolve(&mut self, ids: impl IntoIterator<Item = u64> + Clone) -> Vec<u64> {
        if ids
            .clone()
            .into_iter()
            .any(|id| !self.by_id.contains_key(&id))
        {
            self.refresh();
        }
        ids.into_iter()
            .filter(|id| !self.by_id.contains_key(id))
            .collect()
    }

    /// The id of a group label, if it exists now.
    pub fn id_of(&self, label: &str) -> Option<u64> {
        let want = label.trim_matches('/');
        let want = if want.is_empty() { "/" } else { want };
        self.by_id
            .iter()
            .find(|(_, l)| l.as_str() == want)
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_and_notices_deleted_groups() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("web/api")).unwrap();
        let mut idx = CgroupIndex::new(tmp.path());
        let api = std::fs::metadata(tmp.path().join("web/api")).unwrap().ino();
        assert_eq!(idx.label(api), Some("web/api"));
        assert_eq!(idx.id_of("/web/api"), Some(api));
        let root = std::fs::metadata(tmp.path()).unwrap().ino();
        assert_eq!(idx.label(root), Some("/"));
        std::fs::create_dir(tmp.path().join("new")).unwrap();
        let new = std::fs::metadata(tmp.path().join("new")).unwrap().ino();
        assert_eq!(idx.resolve([new]), Vec::<u64>::new());
        assert_eq!(idx.label(new), Some("new"));
        std::fs::remove_dir(tmp.path().join("web/api")).unwrap();
        assert_eq!(idx.resolve([api, 999_999_999]).len(), 2);
    }
}
