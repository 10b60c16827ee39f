//! Counting at node scale (root, real kernel): thousands of live groups
//! counted exactly, a bulk delete reclaimed within two intervals, and a full
//! map reported rather than silent.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use enforcer_tests::layout::{skip_without_cgroup2, v2_dir};
use enforcer_tests::{
    AgentRun, GroupGuard, enforcer_ok, helper_bin, scale_pattern, wait_for, wait_until,
};

/// Groups of the scale test (the issue asks for at least 2,000; the bulk
/// delete for 2,500).
const GROUPS: usize = 2500;

/// `stats --json` of every group, by label.
fn all_stats(run: &AgentRun) -> BTreeMap<String, serde_json::Value> {
    let out = enforcer_ok(&["stats", "--json", "--pin-dir", run.pin()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|g| (g["group"].as_str().unwrap().to_string(), g.clone()))
        .collect()
}

fn syscall_name(nr: libc::c_long) -> &'static str {
    match nr {
        libc::SYS_getppid => "getppid",
        libc::SYS_getuid => "getuid",
        libc::SYS_getgid => "getgid",
        libc::SYS_geteuid => "geteuid",
        libc::SYS_getegid => "getegid",
        _ => unreachable!("not in scale_pattern"),
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn thousands_of_groups_are_counted_exactly_and_a_bulk_delete_is_reclaimed() {
    if skip_without_cgroup2(
        "thousands_of_groups_are_counted_exactly_and_a_bulk_delete_is_reclaimed",
    ) {
        return;
    }
    let parent = GroupGuard::new("scale");
    enforcer_ok(&["create", "-g", &format!("cgroup2:{}", parent.name)]);
    let mut run = AgentRun::new();
    run.start_observe(&[]);
    let agent = run.child.as_ref().unwrap().id();
    // Settle: the agent's first collections allocate what any host needs.
    run.wait_collections(5);
    let rss_before = rss_kib(agent);

    let dirs: Vec<PathBuf> = (0..GROUPS)
        .map(|i| v2_dir(&format!("{}/g{i}", parent.name)))
        .collect();
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = rx.local_addr().unwrap().to_string();
    let out = Command::new(helper_bin())
        .arg("scale-worker")
        .arg(&addr)
        .args(dirs.iter().map(|d| d.display().to_string()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // Every group's syscalls and datagrams, exactly.
    let label = |i: usize| format!("{}/g{i}", parent.name);
    let mut stats = BTreeMap::new();
    wait_for("every group in stats", Duration::from_secs(30), || {
        stats = all_stats(&run);
        (0..GROUPS).all(|i| stats.contains_key(&label(i)))
    });
    let mut checked_calls = 0u64;
    for i in 0..GROUPS {
        let s = &stats[&label(i)];
        let (calls, datagrams) = scale_pattern(i);
        for (nr, n) in &calls {
            let got = s["syscalls"]["by_name"][syscall_name(*nr)].as_u64();
            assert_eq!(got, Some(*n), "group {i}, {}: {s}", syscall_name(*nr));
            checked_calls += n;
        }
        // After joining it made a socket, those calls, its datagrams and
        // exit_group.
        let want_total = calls.iter().map(|(_, n)| n).sum::<u64>() + datagrams + 2;
        assert_eq!(
            s["syscalls"]["total"].as_u64(),
            Some(want_total),
            "group {i}: {s}"
        );
        assert_eq!(
            s["net"]["egress_packets"].as_u64(),
            Some(datagrams),
            "group {i}: {s}"
        );
        assert_eq!(
            s["net"]["egress_bytes"].as_u64(),
            Some(datagrams * (64 + 28)),
            "group {i}: {s}"
        );
    }
    eprintln!("{GROUPS} groups, {checked_calls} calls checked exactly");

    // One command deletes them all; within two intervals (100 ms each, plus
    // what a loaded test host adds) their counters and series are gone.
    enforcer_ok(&["delete", "-r", "-g", &format!("cgroup2:{}", parent.name)]);
    wait_for(
        "the deleted groups' counters to be reclaimed",
        Duration::from_secs(5),
        || {
            let now = all_stats(&run);
            !now.keys()
                .any(|k| k.starts_with(&format!("{}/", parent.name)))
        },
    );
    wait_until("their metric series to go", || {
        run.metrics()
            .is_some_and(|m| !m.contains(&format!("{}/g", parent.name)))
    });
    // The collection that dropped their reports gives the memory back
    // (malloc_trim) at its end: a few more and the heap is what it keeps.
    run.wait_collections(3);
    let rss_after = rss_kib(agent);
    eprintln!("agent RSS: {rss_before} KiB before, {rss_after} KiB after reclaim");
    assert!(
        rss_after * 10 <= rss_before * 11 + 2048 * 10,
        "agent RSS {rss_after} KiB after reclaim, {rss_before} KiB before"
    );
}

#[test]
fn a_full_map_is_counted_and_warned_about() {
    if skip_without_cgroup2("a_full_map_is_counted_and_warned_about") {
        return;
    }
    let g = GroupGuard::new("full");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!("[group.\"{}\"]\n\"memory.max\" = \"64M\"\n", g.name),
    )
    .unwrap();
    // Room for 8 (group, syscall) pairs: the agent's own group alone uses more.
    run.start_with(&p, &["--max-syscall-keys", "8"]);
    let out = Command::new(enforcer_tests::enforcer_bin())
        .args(["exec", "-g", &enforcer_tests::layout::spec(&g.name), "--"])
        .arg(helper_bin())
        .args(["sockaddr", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    wait_until("the full map in the metrics", || {
        run.metrics()
            .is_some_and(|m| m.contains("enforcer_map_full_total{map=\"SYSCALLS\"}"))
    });
    wait_until("the warning in the log and the audit log", || {
        run.log().contains("a counting map is full")
            && run.audit_lines().iter().any(|l| l["kind"] == "map_full")
    });
}
