//! Finding cgroup hierarchies in /proc/self/mountinfo.
//!
//! Nothing here assumes `/sys/fs/cgroup`: pure v1, pure v2 and hybrid hosts
//! (v1 controllers plus a cgroup2 mount with few or no controllers) are all told
//! apart by what is actually mounted.

use std::path::{Path, PathBuf};

use super::error::CgroupError;

/// v1 controller names we recognise in a cgroup mount's super options. Other
/// options (`rw`, `xattr`, `clone_children`, `release_agent=...`) are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    pub mount_point: PathBuf,
    /// v1: controllers bound to this hierarchy (`cpu`, `cpuacct`), or the hierarchy
    /// name for a named one (`name=systemd`). v2: controllers the root offers
    /// (`cgroup.controllers`), possibly none.
    pub controllers: Vec<String>,
}

impl Hierarchy {
    /// How libcgroup's tools name this hierarchy in `lscgroup` output.
    pub fn label(&self) -> String {
        match self.version {
            Version::V1 => self.controllers.join(","),
            // Also accepted as a `-g` controller name: "the cgroup2 tree itself".
            Version::V2 => "cgroup2".to_string(),
        }
    }

    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// Only cgroup2, which holds the controllers.
    V2,
    /// v1 controllers plus a cgroup2 mount (this is where eBPF sees groups).
    Hybrid,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::V1 => "cgroup v1",
            Layout::V2 => "cgroup v2 (unified)",
            Layout::Hybrid => "hybrid (cgroup v1 controllers + cgroup2)",
        })
    }
}

/// A cgroup mount as found in mountinfo, before reading anything from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMount {
    pub(crate) version: Version,
    pub(crate) mount_point: PathBuf,
    pub(crate) v1_controllers: Vec<String>,
}

/// Undo the octal escapes of mountinfo and `/proc/self/mounts` (`\040` for
/// a space and so on).
pub(crate) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match octal {
            Some(v) => {
                out.push(v);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text into the cgroup mounts it lists, first mount of each
/// hierarchy only (bind mounts of the same controllers are skipped).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut mounts: Vec<CgroupMount> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(mount_point), Some(fstype)) = (pre.get(4), post.first()) else {
            continue;
        };
        let version = match *fstype {
            "cgroup" => Version::V1,
            "cgroup2" => Version::V2,
            _ => continue,
        };
        let v1_controllers: Vec<String> = if version == Version::V1 {
            post.get(2)
                .map(|opts| {
                    opts.split(',')
                        .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let m = CgroupMount {
            version,
            mount_point: PathBuf::from(unescape(mount_point)),
            v1_controllers,
        };
        let dup = mounts.iter().any(|o| {
            o.version == m.version
                && (m.version == Version::V2 || o.v1_controllers == m.v1_controllers)
        });
        if !dup && (m.version == Version::V2 || !m.v1_controllers.is_empty()) {
            mounts.push(m);
        }
    }
    mounts
}

/// Read the mounts' own files (cgroup2's `cgroup.controllers`) into hierarchies.
pub(crate) fn hierarchies_from(mounts: Vec<CgroupMount>) -> Result<Vec<Hierarchy>, CgroupError> {
    let mut out = Vec::with_capacity(mounts.len());
    for m in mounts {
        let controllers = match m.version {
            Version::V1 => m.v1_controllers,
            Version::V2 => read_v2_controllers(&m.mount_point)?,
        };
        out.push(Hierarchy {
            version: m.version,
            mount_point: m.mount_point,
            controllers,
        });
    }
    if out.is_empty() {
        return Err(CgroupError::NoHierarchies);
    }
    Ok(out)
}

fn read_v2_controllers(root: &Path) -> Result<Vec<String>, CgroupError> {
    let p = root.join("cgroup.controllers");
    let text = std::fs::read_to_string(&p).map_err(|e| CgroupError::io("read", &p, e))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

pub(crate) fn layout_of(hiers: &[Hierarchy]) -> Layout {
    let v1 = hiers.iter().any(|h| h.version == Version::V1);
    let v2 = hiers.iter().any(|h| h.version == Version::V2);
    match (v1, v2) {
        (true, true) => Layout::Hybrid,
        (true, false) => Layout::V1,
        _ => Layout::V2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:32 / /mnt/mem\\040copy rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn hybrid_mountinfo() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(m[0].v1_controllers, vec!["cpu"]);
        assert_eq!(m[2].v1_controllers, vec!["name=systemd"]);
        assert_eq!(m[3].version, Version::V2);
        assert_eq!(m[3].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn co_mounted_v1_controllers_and_escapes() {
        let text = "1 0 0:1 / /cg/cpu\\040x rw - cgroup cgroup rw,cpu,cpuacct,clone_children\n";
        let m = parse_mountinfo(text);
        assert_eq!(m[0].v1_controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[0].mount_point, PathBuf::from("/cg/cpu x"));
    }

    #[test]
    fn optional_fields_before_separator() {
        let text = "29 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup"));
    }
}
