//! Validated group paths.
//!
//! A group path names a cgroup relative to each hierarchy's root. It is checked
//! once, here, so nothing later can be tricked into writing outside the tree.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::CgroupError;

/// Longest component most filesystems, cgroupfs included, accept.
const MAX_COMPONENT: usize = 255;

/// Prefixes of the kernel's control file names: every controller it knows
/// (v1 and v2), `cgroup.` for the core files, `irq.` for cgroup2's
/// `irq.pressure`, and `debug.` for the debug controller. A group directory
/// called `memory.limit_in_bytes` would sit among the control files of its
/// parent and, in the cgroup2 tree, be taken for one.
const CONTROL_PREFIXES: &[&str] = &[
    "cgroup",
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "io",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "dmem",
    "debug",
    "irq",
];

/// cgroup v1's control files without a controller prefix.
const BARE_CONTROL_FILES: &[&str] = &["tasks", "notify_on_release", "release_agent"];

/// Why a path component cannot be a group name because it is spelled like a
/// control file, if it is.
fn control_file_clash(comp: &str) -> Option<String> {
    if BARE_CONTROL_FILES.contains(&comp) {
        return Some(format!(
            "component {comp:?} is the name of a cgroup v1 control file; rename the group, \
             for example to \"{comp}-group\""
        ));
    }
    let (prefix, rest) = comp.split_once('.')?;
    CONTROL_PREFIXES.contains(&prefix).then(|| {
        format!(
            "component {comp:?} is spelled like a control file of the {prefix} controller \
             (`{prefix}.*` names belong to the kernel's files); rename the group, for example \
             to \"{prefix}_{rest}\""
        )
    })
}

/// A relative cgroup path such as `web/api`; the empty path is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupPath(String);

impl GroupPath {
    /// Parse a path as a user writes it: `foo`, `/foo`, `web/api/`. A leading `/`
    /// means "from the hierarchy root", as in libcgroup, not the filesystem root.
    pub fn parse(input: &str) -> Result<Self, CgroupError> {
        let bad = |reason: &str| CgroupError::InvalidPath {
            path: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim_start_matches('/').trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(GroupPath(String::new()));
        }
        for comp in trimmed.split('/') {
            if comp.is_empty() {
                return Err(bad("it has an empty component (`//`)"));
            }
            if comp == "." || comp == ".." {
                return Err(bad(
                    "`.` and `..` components are not allowed; name the group from the hierarchy root",
                ));
            }
            if comp.len() > MAX_COMPONENT {
                return Err(bad("a component is longer than 255 bytes"));
            }
            if let Some(c) = comp
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            {
                return Err(bad(&format!(
                    "it contains {c:?}; group names may use only letters, digits, `.`, `_` and `-`"
                )));
            }
            if let Some(why) = control_file_clash(comp) {
                return Err(bad(&why));
            }
        }
        Ok(GroupPath(trimmed.to_string()))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Relative form (`web/api`), empty for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory of this group under a hierarchy mounted at `mount`.
    pub fn dir_in(&self, mount: &Path) -> PathBuf {
        if self.is_root() {
            mount.to_path_buf()
        } else {
            mount.join(&self.0)
        }
    }

    pub fn parent(&self) -> Option<GroupPath> {
        if self.is_root() {
            return None;
        }
        Some(GroupPath(
            self.0
                .rsplit_once('/')
                .map(|(p, _)| p.to_string())
                .unwrap_or_default(),
        ))
    }

    /// Ancestors from the root down to, but not including, this group.
    pub fn ancestors(&self) -> Vec<GroupPath> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    pub fn join(&self, child: &str) -> GroupPath {
        if self.is_root() {
            GroupPath(child.to_string())
        } else {
            GroupPath(format!("{}/{child}", self.0))
        }
    }
}

impl fmt::Display for GroupPath {
    /// Absolute form, as libcgroup prints it: `/web/api`, `/` for the root.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

/// `CONTROLLERS:PATH` as libcgroup's `-g` takes it (`memory,cpu:foo`, `*:foo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub controllers: Vec<String>,
    pub path: GroupPath,
}

impl GroupSpec {
    pub fn parse(input: &str) -> Result<Self, CgroupError> {
        let (ctrls, path) = input
            .split_once(':')
            .ok_or_else(|| CgroupError::InvalidSpec {
                spec: input.to_string(),
                reason: "expected CONTROLLERS:PATH, for example memory,cpu:foo".into(),
            })?;
        let controllers: Vec<String> = ctrls
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if controllers.is_empty() {
            return Err(CgroupError::InvalidSpec {
                spec: input.to_string(),
                reason: "no controller before `:`; name at least one, or `*` for all".into(),
            });
        }
        Ok(GroupSpec {
            controllers,
            path: GroupPath::parse(path)?,
        })
    }
}

/// Why a destination (as written, or expanded) cannot be used: a `.` or
/// `..` component (or a NUL) would name a group outside the rule's subtree
/// or a directory outside cgroupfs. Components are otherwise free: `%p`
/// expands to a path, whose slashes make nested groups, as in libcgroup.
pub fn destination_problem(dest: &str) -> Option<&'static str> {
    if dest.contains('\0') {
        return Some("a NUL byte");
    }
    dest.split('/')
        .any(|c| c == "." || c == "..")
        .then_some("a `.` or `..` component")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_libcgroup_spellings() {
        assert_eq!(GroupPath::parse("/foo/").unwrap().as_str(), "foo");
        assert_eq!(
            GroupPath::parse("a/b.c_d-e").unwrap().to_string(),
            "/a/b.c_d-e"
        );
        assert!(GroupPath::parse("/").unwrap().is_root());
    }

    #[test]
    fn rejects_escapes() {
        for bad in [
            "../etc", "a/../b", "a//b", "a/./b", "sp ace", "a\0b", "x;y", "ü",
        ] {
            assert!(GroupPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(GroupPath::parse(&"x".repeat(256)).is_err());
        assert!(GroupPath::parse(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn rejects_names_of_control_files() {
        for bad in [
            "memory.limit_in_bytes",
            "memory.anything",
            "web/cpu.shares",
            "cpuacct.usage",
            "cpuset.cpus/x",
            "devices.allow",
            "freezer.state",
            "net_cls.classid",
            "net_prio.ifpriomap",
            "blkio.weight",
            "io.max",
            "perf_event.x",
            "hugetlb.2MB.limit_in_bytes",
            "pids.max",
            "rdma.max",
            "misc.max",
            "cgroup.procs",
            "cgroup.anything",
            "a/tasks",
            "notify_on_release",
            "release_agent",
        ] {
            let err = GroupPath::parse(bad).expect_err(bad).to_string();
            assert!(
                err.contains("control file") && err.contains("rename"),
                "{bad:?}: {err}"
            );
        }
        // Only a whole `CONTROLLER.` prefix collides; similar names are fine.
        for good in [
            "memory",
            "memoryx.y",
            "mymemory.x",
            "cpu",
            "cpu_shares",
            "web.slice",
            "tasks2",
            "x/cgroupy.z",
            "system.slice/enforcer.service",
        ] {
            assert!(GroupPath::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn ancestors_and_parent() {
        let p = GroupPath::parse("a/b/c").unwrap();
        let names: Vec<String> = p.ancestors().iter().map(|a| a.to_string()).collect();
        assert_eq!(names, vec!["/", "/a", "/a/b"]);
        assert_eq!(p.parent().unwrap().as_str(), "a/b");
    }

    #[test]
    fn group_spec() {
        let g = GroupSpec::parse("memory,cpu:foo").unwrap();
        assert_eq!(g.controllers, vec!["memory", "cpu"]);
        assert_eq!(g.path.as_str(), "foo");
        assert!(GroupSpec::parse("foo").is_err());
        assert!(GroupSpec::parse(":foo").is_err());
    }
}
