//! What the host's cgroup layout means for a test: where a group's files
//! are, which spelling a key has here, and whether eBPF can see groups at
//! all. The suite runs unchanged on pure cgroup v2, pure v1 and hybrid hosts
//! (`cargo xtask vmtest`); nothing here hard-codes a mount point.

use std::path::PathBuf;

use enforcer::cgroup::{Cgroups, GroupPath, Version};

pub fn host() -> Cgroups {
    Cgroups::discover().expect("cgroup hierarchies in /proc/self/mountinfo")
}

fn path(name: &str) -> GroupPath {
    GroupPath::parse(name).expect("a valid group name")
}

/// Whether a cgroup2 hierarchy is mounted: without one, eBPF cannot tell
/// groups apart, and enforcer's accounting and enforcement are unavailable.
pub fn has_cgroup2() -> bool {
    host().v2().is_some()
}

/// For tests of eBPF features: true (after saying why on stderr) when the
/// host has no cgroup2 hierarchy, so the test has nothing to check.
pub fn skip_without_cgroup2(test: &str) -> bool {
    if has_cgroup2() {
        return false;
    }
    crate::skipped(test, "no cgroup2 hierarchy on this host (pure cgroup v1)");
    true
}

/// Where the cgroup2 hierarchy is mounted (`/sys/fs/cgroup` on pure v2,
/// `/sys/fs/cgroup/unified` on this hybrid host). Tests of eBPF features call
/// [`skip_without_cgroup2`] first.
pub fn v2_mount() -> PathBuf {
    let cg = host();
    let v2 = cg
        .v2()
        .expect("no cgroup2 hierarchy is mounted (skip_without_cgroup2 first)");
    cg.hierarchy(v2).mount_point.clone()
}

/// The group's directory in the cgroup2 hierarchy (the mirror on a hybrid
/// host): what eBPF identifies it by.
pub fn v2_dir(name: &str) -> PathBuf {
    let cg = host();
    cg.dir(cg.v2().expect("a cgroup2 hierarchy"), &path(name))
}

/// The group's cgroup2 id.
pub fn v2_id(name: &str) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(v2_dir(name)).expect("the group"))
}

/// The group's directory in the hierarchy that holds `controller`.
pub fn dir_of(controller: &str, name: &str) -> PathBuf {
    let cg = host();
    let (h, _) = cg
        .locate(controller)
        .unwrap_or_else(|e| panic!("no {controller} controller here: {e}"));
    cg.dir(h, &path(name))
}

/// The mount point of the hierarchy that holds `controller`.
pub fn mount_of(controller: &str) -> PathBuf {
    let cg = host();
    let (h, _) = cg
        .locate(controller)
        .unwrap_or_else(|e| panic!("no {controller} controller here: {e}"));
    cg.hierarchy(h).mount_point.clone()
}

/// Whether `controller` is a cgroup v1 controller here.
pub fn is_v1(controller: &str) -> bool {
    let cg = host();
    cg.locate(controller)
        .is_ok_and(|(h, _)| cg.hierarchy(h).version == Version::V1)
}

/// Whether the host has `controller` at all (a v1 hierarchy or enabled on v2).
pub fn has_controller(controller: &str) -> bool {
    host().locate(controller).is_ok()
}

/// `(file, value)` of `key` (either spelling) for the group, read from the
/// file this host has (`cpu.weight` is `cpu.shares` on a v1 cpu hierarchy).
pub fn read_key(name: &str, key: &str) -> (String, String) {
    let v = host()
        .get(&path(name), &[key.to_string()], &[])
        .unwrap_or_else(|e| panic!("reading {key} of {name}: {e}"));
    let kv = v.values.first().expect("one value");
    (kv.file.clone(), kv.value.clone())
}

/// The `-g CONTROLLERS:PATH` spec that creates the group where tests need it:
/// with the memory controller (limits, OOM) where the host has one, and in
/// the cgroup2 hierarchy either way where there is one.
pub fn spec(name: &str) -> String {
    if has_controller("memory") {
        format!("memory:{name}")
    } else if has_cgroup2() {
        format!("cgroup2:{name}")
    } else {
        format!("cpu:{name}")
    }
}

/// Indices of the hierarchies a group made with `controllers` lives in:
/// each controller's own, plus the cgroup2 tree wherever there is one (the
/// mirror on a hybrid host, the one tree on pure v2). In mount order, once each.
fn hierarchies_for(controllers: &[&str]) -> Vec<usize> {
    let cg = host();
    let mut out: Vec<usize> = controllers
        .iter()
        .map(|c| {
            cg.locate(c)
                .unwrap_or_else(|e| panic!("no {c} controller here: {e}"))
                .0
        })
        .chain(cg.v2())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Every directory a group made with `-g CONTROLLERS:name` has here (see
/// [`hierarchies_for`]): memory and the mirror on a hybrid host, memory
/// alone on pure v1, the one cgroup2 directory on pure v2.
pub fn dirs_for(controllers: &[&str], name: &str) -> Vec<PathBuf> {
    let cg = host();
    hierarchies_for(controllers)
        .into_iter()
        .map(|h| cg.dir(h, &path(name)))
        .collect()
}

/// How `enforcer list` labels each hierarchy of [`dirs_for`], same order:
/// the v1 controllers (`memory`), `cgroup2` for the cgroup2 tree.
pub fn labels_for(controllers: &[&str]) -> Vec<String> {
    let cg = host();
    hierarchies_for(controllers)
        .into_iter()
        .map(|h| cg.hierarchy(h).label())
        .collect()
}

/// The label `enforcer list` gives the hierarchy holding `controller`.
pub fn label_of(controller: &str) -> String {
    let cg = host();
    let (h, _) = cg
        .locate(controller)
        .unwrap_or_else(|e| panic!("no {controller} controller here: {e}"));
    cg.hierarchy(h).label()
}

/// A control file as this host spells it: `v1` where its controller (the
/// prefix of `v1`) is a cgroup v1 controller, `v2` where it is on cgroup2
/// (`spelled("memory.limit_in_bytes", "memory.max")`).
pub fn spelled<'a>(v1: &'a str, v2: &'a str) -> &'a str {
    let controller = v1.split('.').next().unwrap_or(v1);
    if is_v1(controller) { v1 } else { v2 }
}

/// Whether `which` output (`ID:CONTROLLERS:PATH,...`, as in /proc/PID/cgroup)
/// has the process in group `name` of the hierarchy holding `controller`:
/// `N:memory:/name` on a v1 hierarchy, `0::/name` on cgroup2.
pub fn which_shows(which: &str, controller: &str, name: &str) -> bool {
    let want = if is_v1(controller) {
        format!("{}:/{name}", label_of(controller))
    } else {
        format!(":/{name}")
    };
    which.trim().split(',').any(|entry| {
        entry
            .split_once(':')
            .is_some_and(|(id, rest)| rest == want && (is_v1(controller) || id == "0"))
    })
}

/// A `(key, value)` enforcer's checks let through but this host's kernel
/// refuses when it is written: what makes `apply` fail midway and roll back.
/// v1: swappiness is at most 100; cgroup2 (which has no swappiness):
/// `memory.oom.group` takes only 0 or 1.
pub fn refused_memory_setting() -> (&'static str, &'static str) {
    if is_v1("memory") {
        ("memory.swappiness", "1000")
    } else {
        ("memory.oom.group", "2")
    }
}

/// For tests that need controllers some hosts lack (6.12 without
/// CONFIG_MEMCG_V1 has no v1 memory or cpuset): true, after saying which on
/// stderr, when one of `controllers` is missing here.
pub fn skip_without(test: &str, controllers: &[&str]) -> bool {
    let missing: Vec<&str> = controllers
        .iter()
        .copied()
        .filter(|c| !has_controller(c))
        .collect();
    if missing.is_empty() {
        return false;
    }
    crate::skipped(
        test,
        &format!(
            "no {} controller on this host ({})",
            missing.join(", "),
            host().layout()
        ),
    );
    true
}

/// The controllers enabled in the cgroup2 root's `cgroup.subtree_control`
/// (empty without cgroup2).
pub fn v2_root_controllers() -> Vec<String> {
    if !has_cgroup2() {
        return Vec::new();
    }
    std::fs::read_to_string(v2_mount().join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// crun's reason to refuse this host, if it has one: on a hybrid host crun
/// (1.8, `libcrun_cgroup_enter`) refuses every container when the cgroup2
/// root's `cgroup.controllers` is not empty, that is when any controller is
/// bound to cgroup2 rather than to a v1 hierarchy (hugetlb on this build
/// host, from boot), whatever is enabled in `cgroup.subtree_control`.
pub fn crun_refuses_hybrid() -> Option<String> {
    let cg = host();
    if cg.layout() != enforcer::cgroup::Layout::Hybrid {
        return None;
    }
    let available = std::fs::read_to_string(v2_mount().join("cgroup.controllers")).ok()?;
    (!available.trim().is_empty()).then(|| {
        format!(
            "crun refuses containers on a hybrid host whose cgroup2 root has any controller \
             (cgroup.controllers here: {}); runc runs here, the systemd guest runs crun on \
             pure cgroup2",
            available.trim()
        )
    })
}

/// Disables in the cgroup2 root the controllers enabled since `before` was
/// read (only those: what was there before is someone else's), retrying
/// while a group below still uses one. Returns what was taken back.
pub fn restore_v2_root_controllers(before: &[String]) -> Vec<String> {
    let added: Vec<String> = v2_root_controllers()
        .into_iter()
        .filter(|c| !before.contains(c))
        .collect();
    let file = v2_mount().join("cgroup.subtree_control");
    for c in &added {
        for _ in 0..50 {
            if std::fs::write(&file, format!("-{c}")).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    added
}
