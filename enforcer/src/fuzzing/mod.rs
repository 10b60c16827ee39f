//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, `cargo xtask fuzz`).
//! They build against this library, so they reach the readers through here. Each
//! function runs readers on arbitrary input and panics when an invariant breaks:
//! a panic inside a reader, an error from a file reader without a position, a
//! group path that escapes its hierarchy. Not an API.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::cgroup::Cgroups;
use crate::config::{Policy, check_located, parse_cgconfig, parse_policy, parse_toml, to_toml};

#[cfg(test)]
mod proptests;

/// A policy file's bytes, read as cgconfig.conf, as TOML and sniffed; what
/// parses is validated against a fake host.
pub fn policy(bytes: &[u8]) {
    for name in ["f.conf", "f.toml", "sniffed"] {
        let result = parse_policy(bytes, Path::new(name));
        check_located(name, &result);
        if let Ok(policy) = result {
            plan(name, &policy);
        }
    }
}

/// cgconfig.conf text, then validated against a fake host.
pub fn cgconfig(text: &str) {
    let result = parse_cgconfig(text, Path::new("f.conf"));
    check_located("f.conf", &result);
    if let Ok(policy) = result {
        plan("f.conf", &policy);
    }
}

/// TOML policy text, then validated against a fake host.
pub fn toml(text: &str) {
    let result = parse_toml(text, Path::new("f.toml"));
    check_located("f.toml", &result);
    if let Ok(policy) = result {
        plan("f.toml", &policy);
    }
}

/// Every value parser: sizes, rates, durations, budgets, thresholds, network
/// rules, modes and actions of the policy formats; group paths and specs, CPU
/// lists, keys and values, owners given as numbers, and the kernel's mountinfo
/// and /proc/PID/cgroup text.
pub fn values(text: &str) {
    crate::config::run_value_parsers(text);
    crate::cgroup::run_value_parsers(text);
}

/// A hybrid host under `root`: v1 memory, cpu+cpuacct, cpuset, blkio, pids,
/// freezer and name=systemd, plus an empty cgroup2 (directories and a few root
/// files, as validation reads them).
pub fn fake_hybrid_host(root: &Path) -> Cgroups {
    let mut mountinfo = String::new();
    let mounts = [
        ("memory", "memory"),
        ("cpu,cpuacct", "cpu,cpuacct"),
        ("cpuset", "cpuset"),
        ("blkio", "blkio"),
        ("pids", "pids"),
        ("freezer", "freezer"),
        ("systemd", "xattr,name=systemd"),
    ];
    for (n, (dir, opts)) in mounts.into_iter().enumerate() {
        std::fs::create_dir_all(root.join(dir)).expect("creating the fake host");
        mountinfo.push_str(&format!(
            "{n} 0 0:{n} / {} rw - cgroup cgroup rw,{opts}\n",
            root.join(dir).display()
        ));
    }
    let files = [
        ("memory/memory.swappiness", "60\n"),
        ("cpuset/cpuset.cpus", "0-1\n"),
        ("cpuset/cpuset.mems", "0\n"),
        ("unified/cgroup.controllers", "\n"),
    ];
    std::fs::create_dir_all(root.join("unified")).expect("creating the fake host");
    for (file, text) in files {
        std::fs::write(root.join(file), text).expect("creating the fake host");
    }
    mountinfo.push_str(&format!(
        "99 0 0:99 / {} rw - cgroup2 cgroup2 rw\n",
        root.join("unified").display()
    ));
    Cgroups::from_mountinfo(&mountinfo).expect("reading the fake host")
}

/// What a reader accepted and the host validated, printed as TOML, reads
/// back to a policy that prints the same and would change the host the same
/// way (`apply --dry-run`'s rendering of both plans is equal): `apply
/// --dry-run`, the schema and a policy converted from cgconfig.conf describe
/// what was read, not a lossy copy of it.
fn reads_back(name: &str, cg: &Cgroups, policy: &Policy, rendered: &str) {
    let printed = to_toml(policy);
    let again = parse_toml(&printed, Path::new("printed.toml")).unwrap_or_else(|e| {
        panic!("{name}: the printed policy does not read back: {e}\n{printed}")
    });
    assert_eq!(to_toml(&again), printed, "{name}: printing is not stable");
    let plan = crate::plan::validate(cg, again, None, crate::plan::Kernel::Unchecked)
        .unwrap_or_else(|e| panic!("{name}: the printed policy does not validate: {e}\n{printed}"));
    let again = crate::plan::Diff::new(cg, &plan, &Default::default()).render();
    assert_eq!(
        without_positions(&again),
        without_positions(rendered),
        "{name}: the printed policy means something else:\n{printed}"
    );
}

/// A rendered plan without the `  [FILE:LINE:COL]` that says where each group
/// was written (the printed file has other lines).
fn without_positions(rendered: &str) -> String {
    rendered
        .lines()
        .map(|l| match l.rfind("  [") {
            Some(i) if l.ends_with(']') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Validating a policy against the fake host never panics, and its errors
/// point into the file; what validates prints and reads back.
fn plan(name: &str, policy: &Policy) {
    static HOST: OnceLock<Cgroups> = OnceLock::new();
    let cg = HOST.get_or_init(|| {
        let root: PathBuf = std::env::temp_dir().join("enforcer-fuzz-host");
        fake_hybrid_host(&root)
    });
    match crate::plan::validate(cg, policy.clone(), None, crate::plan::Kernel::Unchecked) {
        Ok(plan) => {
            let rendered = crate::plan::Diff::new(cg, &plan, &Default::default()).render();
            reads_back(name, cg, policy, &rendered);
        }
        Err(err) => {
            assert!(err.span().is_some(), "no position: {err:?}");
            assert!(err.to_string().starts_with(&format!("{name}:")), "{err}");
            assert!(err.is_user_error(), "{err}");
        }
    }
}
