//! Container names, where a runtime writes them down: a group's path says
//! the runtime and the container id (`workload.rs`), not the name a person
//! gave it. Read, never asked of a daemon:
//!
//! - containers/storage's `containers.json` (podman, buildah and CRI-O keep
//!   every container there: `[{"id": ..., "names": [...]}, ...]`), under
//!   `/var/lib/containers/storage` (and the volatile copy under
//!   `/run/containers/storage`), re-read only when it changes;
//! - docker's `/var/lib/docker/containers/<id>/config.v2.json` (`"Name":
//!   "/web"`), once per container.
//!
//! A name is someone else's data: shown escaped like every name
//! ([`crate::escape`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where containers/storage keeps its container list by default.
const STORAGE_LISTS: [&str; 3] = [
    "/var/lib/containers/storage/overlay-containers/containers.json",
    "/var/lib/containers/storage/overlay-containers/volatile-containers.json",
    "/run/containers/storage/overlay-containers/volatile-containers.json",
];

const DOCKER_CONTAINERS: &str = "/var/lib/docker/containers";

/// A cache of container id -> name.
#[derive(Debug)]
pub struct ContainerNames {
    lists: Vec<(PathBuf, Option<SystemTime>)>,
    docker: PathBuf,
    from_lists: HashMap<String, String>,
    /// Docker names looked up (None: it has none).
    from_docker: HashMap<String, Option<String>>,
}

impl Default for ContainerNames {
    fn default() -> Self {
        Self::at(
            STORAGE_LISTS.iter().map(PathBuf::from),
            Path::new(DOCKER_CONTAINERS),
        )
    }
}

#[derive(serde::Deserialize)]
struct StoredContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(rename = "Name", default)]
    name: String,
}

impl ContainerNames {
    /// Names from these containers/storage lists and this docker directory.
    pub fn at(lists: impl IntoIterator<Item = PathBuf>, docker: &Path) -> Self {
        ContainerNames {
            lists: lists.into_iter().map(|p| (p, None)).collect(),
            docker: docker.to_path_buf(),
            from_lists: HashMap::new(),
            from_docker: HashMap::new(),
        }
    }

    /// Reads the lists again if any changed since the last look (one `stat`
    /// each otherwise). Call once per collection.
    pub fn refresh(&mut self) {
        let mut changed = false;
        for (path, seen) in &mut self.lists {
            let now = std::fs::metadata(&*path).and_then(|m| m.modified()).ok();
            if now != *seen {
                *seen = now;
                changed = true;
            }
        }
        if !changed {
            return;
        }
        self.from_lists.clear();
        for (path, _) in &self.lists {
            let Ok(text) = std::fs::read(path) else {
                continue;
            };
            let Ok(list) = serde_json::from_slice::<Vec<StoredContainer>>(&text) else {
                tracing::debug!(file = %path.display(), "not a containers/storage list");
                continue;
            };
            for c in list {
                if let Some(name) = c.names.into_iter().next() {
                    self.from_lists.insert(c.id, name);
                }
            }
        }
    }

    /// The name of container `id` of `runtime`, if its runtime wrote one.
    pub fn name(&mut self, runtime: Option<&str>, id: &str) -> Option<String> {
        if let Some(n) = self.from_lists.get(id) {
            return Some(n.clone());
        }
        if runtime != Some("docker") {
            return None;
        }
        if let Some(known) = self.from_docker.get(id) {
            return known.clone();
        }
        let name = std::fs::read(self.docker.join(id).join("config.v2.json"))
            .ok()
            .and_then(|t| serde_json::from_slice::<DockerConfig>(&t).ok())
            .map(|c| c.name.trim_start_matches('/').to_string())
            .filter(|n| !n.is_empty());
        self.from_docker.insert(id.to_string(), name.clone());
        name
    }

    /// Forgets docker lookups of containers no longer seen.
    pub fn retain(&mut self, ids: &std::collections::HashSet<&str>) {
        self.from_docker.retain(|id, _| ids.contains(id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn names_from_storage_and_docker() {
        let tmp = tempfile::tempdir().unwrap();
        let list = tmp.path().join("containers.json");
        std::fs::write(
            &list,
            format!(r#"[{{"id":"{ID}","names":["web-1"],"image":"x","flags":{{}}}}]"#),
        )
        .unwrap();
        let docker = tmp.path().join("docker");
        let other = "f".repeat(64);
        std::fs::create_dir_all(docker.join(&other)).unwrap();
        std::fs::write(
            docker.join(&other).join("config.v2.json"),
            r#"{"ID":"x","Name":"/db"}"#,
        )
        .unwrap();
        let mut n = ContainerNames::at([list.clone(), tmp.path().join("missing.json")], &docker);
        n.refresh();
        assert_eq!(n.name(Some("podman"), ID).as_deref(), Some("web-1"));
        assert_eq!(n.name(Some("docker"), &other).as_deref(), Some("db"));
        assert_eq!(n.name(Some("podman"), &other), None);
        // Rewritten: read again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&list, format!(r#"[{{"id":"{ID}","names":["web-2"]}}]"#)).unwrap();
        n.refresh();
        assert_eq!(n.name(Some("podman"), ID).as_deref(), Some("web-2"));
    }
}
