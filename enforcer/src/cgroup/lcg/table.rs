//! libcgroup's view of the host: the controller/mount table `cgroup_init()`
//! builds from `/proc/cgroups` and `/proc/self/mounts`.
//!
//! Every tool's output order comes from this table (lscgroup walks it,
//! cgsnapshot groups it by mount point, cgget `-a` fills it), so it is built
//! the way libcgroup 3.x builds it rather than from enforcer's own hierarchy
//! list: v1 controllers in `/proc/cgroups` order per mount, named hierarchies
//! after them, cgroup2 controllers from `cgroup.controllers` followed by the
//! `cgroup` pseudo-controller, and a cgroup2 mount without controllers (the
//! hybrid layout's `unified`) left out of the table but remembered for the
//! setup mode. `name=systemd` is opaque, as in the distributions' builds
//! (`--enable-opaque-hierarchy=name=systemd`).

use std::path::{Path, PathBuf};

/// The hierarchy libcgroup is built to ignore (Debian, Fedora, SUSE builds).
const OPAQUE_HIERARCHY: &str = "name=systemd";

/// The cgroup2 pseudo-controller for `cgroup.*` files.
pub(crate) const CGRP_PSEUDO: &str = "cgroup";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CgVersion {
    V1,
    V2,
}

/// One controller (or named hierarchy) and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) version: CgVersion,
    /// Further mounts of the same hierarchy (`lssubsys -M`).
    pub(crate) more: Vec<PathBuf>,
}

/// A line of `/proc/cgroups`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcCgroup {
    pub(crate) name: String,
    pub(crate) hierarchy: i32,
    pub(crate) num_cgroups: i32,
    pub(crate) enabled: i32,
}

/// `cg_setup_mode_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetupMode {
    Legacy,
    Hybrid,
    Unified,
    Unknown,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub(crate) entries: Vec<Entry>,
    /// The last cgroup2 mount seen (`cg_cgroup_v2_mount_path`).
    pub(crate) v2_mount: Option<PathBuf>,
    /// cgroup2 mounts without controllers (`cg_cgroup_v2_empty_mount_paths`).
    pub(crate) v2_empty: Vec<PathBuf>,
    pub(crate) proc_cgroups: Vec<ProcCgroup>,
}

/// Parse `/proc/cgroups` (`#subsys_name hierarchy num_cgroups enabled`).
pub(crate) fn parse_proc_cgroups(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(ProcCgroup {
                name: f.next()?.to_string(),
                hierarchy: f.next()?.parse().ok()?,
                num_cgroups: f.next()?.parse().ok()?,
                enabled: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

impl Table {
    /// The table of this host, or `ECGROUPNOTMOUNTED` when nothing is mounted.
    pub(crate) fn discover() -> Table {
        let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        Table::build(&cgroups, &mounts, |dir| {
            std::fs::read_to_string(dir.join("cgroup.controllers")).ok()
        })
    }

    /// Build from the two files' text; `controllers` reads a cgroup2 mount's
    /// `cgroup.controllers` (None if unreadable).
    pub(crate) fn build(
        proc_cgroups: &str,
        mounts: &str,
        controllers: impl Fn(&Path) -> Option<String>,
    ) -> Table {
        let mut t = Table {
            proc_cgroups: parse_proc_cgroups(proc_cgroups),
            ..Table::default()
        };
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(dir), Some(kind), Some(opts)) = (f.get(1), f.get(2), f.get(3)) else {
                continue;
            };
            let dir = PathBuf::from(crate::cgroup::unescape_mount_field(dir));
            match *kind {
                "cgroup" => t.add_v1(&dir, opts),
                "cgroup2" => t.add_v2(&dir, controllers(&dir)),
                _ => {}
            }
        }
        t
    }

    fn add(&mut self, name: &str, dir: &Path, version: CgVersion) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.name == name) {
            e.more.push(dir.to_path_buf());
            return;
        }
        self.entries.push(Entry {
            name: name.to_string(),
            path: dir.to_path_buf(),
            version,
            more: Vec::new(),
        });
    }

    fn add_v1(&mut self, dir: &Path, opts: &str) {
        let options: Vec<&str> = opts.split(',').collect();
        let names: Vec<String> = self.proc_cgroups.iter().map(|c| c.name.clone()).collect();
        for c in names {
            if options.contains(&c.as_str()) {
                self.add(&c, dir, CgVersion::V1);
            }
        }
        if let Some(named) = options.iter().find(|o| o.starts_with("name="))
            && *named != OPAQUE_HIERARCHY
        {
            self.add(named, dir, CgVersion::V1);
        }
    }

    fn add_v2(&mut self, dir: &Path, controllers: Option<String>) {
        self.v2_mount = Some(dir.to_path_buf());
        let list = controllers.unwrap_or_default();
        let first = list.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            self.v2_empty.push(dir.to_path_buf());
            return;
        }
        for c in first.split(' ').filter(|c| !c.is_empty()) {
            self.add(c, dir, CgVersion::V2);
        }
        self.add(CGRP_PSEUDO, dir, CgVersion::V2);
    }

    /// Whether anything usable is mounted (`cgroup_init` fails otherwise).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// `cgroup_test_subsys_mounted`: a controller of the table, or a
    /// `cgroup.*` name while some cgroup2 controller is mounted.
    pub(crate) fn subsys_mounted(&self, name: &str) -> bool {
        self.entries.iter().any(|e| {
            e.name == name || (name.starts_with(CGRP_PSEUDO) && e.version == CgVersion::V2)
        })
    }

    /// The entry `cg_build_path` uses for controller `name`: its own, or for
    /// `cgroup` the first cgroup2 controller.
    pub(crate) fn entry_for(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name == name || (name == CGRP_PSEUDO && e.version == CgVersion::V2))
    }

    /// The controllers as `cgroup_get_controller_begin/next` lists them: the
    /// table without the `cgroup` pseudo-controller.
    pub(crate) fn controllers(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.name != CGRP_PSEUDO)
    }

    /// `cgroup_setup_mode()`.
    pub(crate) fn setup_mode(&self) -> SetupMode {
        let v2 =
            self.entries.iter().any(|e| e.version == CgVersion::V2) || !self.v2_empty.is_empty();
        let v1 = self.entries.iter().any(|e| e.version == CgVersion::V1);
        match (v1, v2) {
            (true, true) => SetupMode::Hybrid,
            (false, true) => SetupMode::Unified,
            (true, false) => SetupMode::Legacy,
            (false, false) => SetupMode::Unknown,
        }
    }

    /// `cg_build_path(name, controller)` without its trailing slash: the
    /// group's directory in the controller's hierarchy. `None` when the
    /// controller is not mounted.
    pub(crate) fn group_dir(&self, name: &str, controller: &str) -> Option<PathBuf> {
        let e = self.entry_for(controller)?;
        Some(join_group(&e.path, name))
    }

    /// Whether `dir` is enforcer's cgroup2 mirror of a v1 group on a hybrid
    /// host: a directory below the cgroup2 mount whose path also exists in a
    /// v1 hierarchy. libcgroup never made it, so the compat tools treat it as
    /// absent (otherwise `lscgroup` and `cgget` would show a hybrid host's
    /// cgroup2 controllers, such as hugetlb, for every group).
    pub(crate) fn is_mirror(&self, dir: &Path) -> bool {
        if self.setup_mode() != SetupMode::Hybrid {
            return false;
        }
        let Some(v2) = &self.v2_mount else {
            return false;
        };
        let Ok(rel) = dir.strip_prefix(v2) else {
            return false;
        };
        if rel.as_os_str().is_empty() {
            return false;
        }
        self.entries
            .iter()
            .filter(|e| e.version == CgVersion::V1)
            .any(|e| e.path.join(rel).is_dir())
    }

    /// The group's directory in the cgroup2 mount (`cg_build_path` with no
    /// controller), if one is mounted.
    pub(crate) fn v2_group_dir(&self, name: &str) -> Option<PathBuf> {
        self.v2_mount.as_ref().map(|m| join_group(m, name))
    }
}

/// `mount/name` with libcgroup's slash handling: leading and trailing slashes
/// of the name do not matter, `/` and `` are the root.
pub(crate) fn join_group(mount: &Path, name: &str) -> PathBuf {
    let trimmed = name.trim_matches('/');
    if trimmed.is_empty() {
        mount.to_path_buf()
    } else {
        mount.join(trimmed)
    }
}

/// Whether a group name leaves its hierarchy (`..` components). libcgroup
/// would create `/sys/fs/cgroup/x` for `cpu:../x`; the compat tools refuse.
pub(crate) fn escapes(name: &str) -> bool {
    name.split('/').any(|c| c == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t1\t1
cpu\t1\t2\t1
cpuacct\t2\t1\t1
blkio\t7\t1\t1
memory\t4\t55\t1
devices\t5\t1\t1
freezer\t6\t1\t1
net_cls\t0\t1\t1
pids\t8\t1\t1
";
    const HYBRID: &str = "tmpfs /sys/fs/cgroup tmpfs rw,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,xattr,name=systemd 0 0
cgroup /sys/fs/cgroup/mem2 cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    #[test]
    fn hybrid_table_skips_systemd_and_the_empty_unified_mount() {
        let t = Table::build(PROC_CGROUPS, HYBRID, |_| Some("\n".into()));
        let names: Vec<&str> = t.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["cpu", "cpuacct", "cpuset", "memory"]);
        assert_eq!(
            t.get("memory").unwrap().more,
            vec![PathBuf::from("/sys/fs/cgroup/mem2")]
        );
        assert_eq!(t.setup_mode(), SetupMode::Hybrid);
        assert_eq!(t.v2_empty, vec![PathBuf::from("/sys/fs/cgroup/unified")]);
        assert_eq!(
            t.group_dir("/a/b/", "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu/a/b"))
        );
    }

    #[test]
    fn unified_table_ends_with_the_pseudo_controller() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
        let t = Table::build("#x\n", mounts, |_| {
            Some("cpuset cpu io memory pids\n".into())
        });
        let names: Vec<&str> = t.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["cpuset", "cpu", "io", "memory", "pids", "cgroup"]
        );
        assert_eq!(t.setup_mode(), SetupMode::Unified);
        assert_eq!(t.controllers().count(), 5);
        assert!(t.subsys_mounted("cgroup.procs"));
        assert_eq!(
            t.group_dir("x", "cgroup"),
            Some(PathBuf::from("/sys/fs/cgroup/x"))
        );
    }

    #[test]
    fn co_mounted_controllers_share_a_path() {
        let mounts = "cgroup /cg/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n";
        let t = Table::build(PROC_CGROUPS, mounts, |_| None);
        assert_eq!(t.entries.len(), 2);
        assert_eq!(t.entries[0].path, t.entries[1].path);
        assert_eq!(t.setup_mode(), SetupMode::Legacy);
    }
}
