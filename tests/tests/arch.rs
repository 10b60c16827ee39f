//! Syscalls per architecture, end to end (root, real kernel): what a group
//! calls is counted under each call's name in this architecture's table,
//! and a 32-bit task's calls under its compat table's names (`i386:` on
//! x86_64, `arm32:` on aarch64). `cargo xtask vmtest --arch arm64` runs
//! this file in an arm64 guest.

use std::path::PathBuf;
use std::process::Command;

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::{
    AgentRun, GroupGuard, SYSCALL_SEQUENCE, compat32_bin, enforcer_bin, helper_bin, skipped,
};

/// A policy that counts `g`'s syscalls (with a memory limit, so the group
/// exists where `spec` looks for it on every layout).
fn policy(run: &AgentRun, g: &GroupGuard) -> PathBuf {
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n",
            g.name
        ),
    )
    .unwrap();
    p
}

/// `PROGRAM ARGS` run inside `g` by `enforcer exec`.
fn run_in(g: &GroupGuard, program: &std::path::Path, args: &[&str]) {
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&g.name), "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{program:?} {args:?}: {out:?}");
}

/// The calls a report names, by name.
fn by_name(s: &serde_json::Value, name: &str) -> u64 {
    s["syscalls"]["by_name"][name].as_u64().unwrap_or(0)
}

#[test]
fn a_known_sequence_of_syscalls_is_counted_by_name() {
    if skip_without_cgroup2("a_known_sequence_of_syscalls_is_counted_by_name") {
        return;
    }
    let g = GroupGuard::new("arch-seq");
    let mut run = AgentRun::new();
    let p = policy(&run, &g);
    run.start(&p);
    run_in(&g, &helper_bin(), &["syscall-sequence"]);
    let s = run.stats(&g.name);
    for (name, nr, calls) in SYSCALL_SEQUENCE {
        // `enforcer exec` and the helper's start add a few calls of their own.
        let n = by_name(&s, name);
        assert!(
            (calls..calls + 10).contains(&n),
            "{name} (number {nr} on {}) counted {n} times, made {calls}: {s}",
            std::env::consts::ARCH
        );
    }
    let total = s["syscalls"]["total"].as_u64().unwrap_or(0);
    let made: u64 = SYSCALL_SEQUENCE.iter().map(|(_, _, n)| n).sum();
    assert!(total >= made, "total {total} < {made}: {s}");
}

/// K getppid calls of a 32-bit task in the group, if this host can make
/// them: through `int 0x80` on x86_64, by the arm32 helper
/// (`ENFORCER_TEST_COMPAT32`, which `cargo xtask vmtest --arch arm64`
/// ships) on aarch64.
fn compat_getppid(k: u64) -> Option<(PathBuf, Vec<String>)> {
    if cfg!(target_arch = "x86_64") {
        return Some((helper_bin(), vec!["getppid-int80".into(), k.to_string()]));
    }
    compat32_bin().map(|b| (b, vec!["getppid".into(), k.to_string()]))
}

#[test]
fn compat_syscalls_are_counted_under_the_compat_table() {
    if skip_without_cgroup2("compat_syscalls_are_counted_under_the_compat_table") {
        return;
    }
    const K: u64 = 123;
    let Some((program, args)) = compat_getppid(K) else {
        skipped(
            "compat_syscalls_are_counted_under_the_compat_table",
            "no 32-bit helper here (ENFORCER_TEST_COMPAT32 unset; `cargo xtask vmtest --arch \
             arm64` ships one)",
        );
        return;
    };
    let g = GroupGuard::new("arch-compat");
    let mut run = AgentRun::new();
    let p = policy(&run, &g);
    run.start(&p);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_in(&g, &program, &args);
    let s = run.stats(&g.name);
    let compat = if cfg!(target_arch = "x86_64") {
        "i386"
    } else {
        "arm32"
    };
    // getppid is 64 in both compat tables; 64 is `semget` on x86_64 and
    // `write` on aarch64, where an uncounted ABI would have put these calls.
    assert_eq!(by_name(&s, &format!("{compat}:getppid")), K, "{s}");
    if cfg!(target_arch = "x86_64") {
        assert_eq!(by_name(&s, "semget"), 0, "{s}");
    }
}

/// A fleet policy written with x86_64 names, checked for arm64 nodes from
/// this machine: refused at the name (exit 2, nothing changed), naming the
/// architecture and the call to use; the same file is fine for x86_64.
#[test]
fn x86_only_names_are_refused_for_arm64_nodes() {
    let g = GroupGuard::new("arch-names");
    let run = AgentRun::new();
    let p = run.file("fleet.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\"]\n\"pids.max\" = 10\n\n[group.\"{}\".syscalls]\n\
             deny = [\"ptrace\", \"open\", \"fork\"]\naction = \"kill\"\n",
            g.name, g.name
        ),
    )
    .unwrap();
    let file = p.to_str().unwrap();
    let out = enforcer_tests::enforcer(&["apply", file, "--dry-run", "--arch", "arm64"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{file}:5:19: \"open\" does not exist on aarch64; use \"openat\""
        )),
        "{err}"
    );
    let out = enforcer_tests::enforcer(&["apply", file, "--dry-run", "--arch", "x86_64"]);
    assert!(out.status.success(), "{out:?}");
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("fork -> kill"), "{plan}");
}
