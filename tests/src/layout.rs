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
    eprintln!("SKIPPED {test}: no cgroup2 hierarchy on this host (pure cgroup v1)");
    true
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
