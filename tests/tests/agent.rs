//! The agent end to end (root, real kernel): `enforcer run` with a policy,
//! `enforcer stats`, the metrics endpoint, the audit log, SIGKILL and restart,
//! and `enforcer stop`. Each test uses its own groups, pin directory and port.

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use enforcer_tests::layout::{self, read_key, skip_without_cgroup2, spec, v2_dir};
use enforcer_tests::{
    AgentRun, GroupGuard, enforcer, enforcer_bin, enforcer_ok, helper_bin, wait_until,
};

fn policy(run: &AgentRun, groups: &[&GroupGuard]) -> PathBuf {
    let mut text = String::new();
    for g in groups {
        text.push_str(&format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"20M\"\n",
            g.name
        ));
    }
    let p = run.file("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Send `count` datagrams of 100 bytes from a process inside `group`.
fn send_from(group: &GroupGuard, to: &UdpSocket, count: usize) {
    let addr = to.local_addr().unwrap().to_string();
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&group.name), "--"])
        .arg(helper_bin())
        .args(["udp-send", &addr, &count.to_string(), "100"])
        .status()
        .unwrap();
    assert!(st.success());
}

fn egress(run: &AgentRun, g: &GroupGuard) -> (u64, u64) {
    let s = run.stats(&g.name);
    (
        s["net"]["egress_packets"].as_u64().unwrap_or(0),
        s["net"]["egress_bytes"].as_u64().unwrap_or(0),
    )
}

#[test]
fn counts_survive_sigkill_and_restart_without_double_attachment() {
    if skip_without_cgroup2("counts_survive_sigkill_and_restart_without_double_attachment") {
        return;
    }
    let a = GroupGuard::new("agent-a");
    let b = GroupGuard::new("agent-b");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a, &b]);
    run.start(&p);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_from(&a, &rx, 1000);
    // B is busy, but not on the network: counted (so attached), sending nothing.
    assert!(helper_in(&b, &["getppid", "1000"]).status.success());
    assert_eq!(egress(&run, &a), (1000, 128_000));
    let sb = run.stats(&b.name);
    assert!(
        sb["syscalls"]["by_name"]["getppid"].as_u64().unwrap_or(0) >= 1000,
        "B must be attached and counted: {sb}"
    );
    assert_eq!(egress(&run, &b), (0, 0), "B sent nothing");

    // SIGKILL: the programs stay attached through their pinned links and keep
    // counting while no agent runs.
    run.sigkill();
    send_from(&a, &rx, 500);
    run.start(&p);
    send_from(&a, &rx, 500);
    // Exactly the ground truth: nothing lost, nothing counted twice.
    assert_eq!(egress(&run, &a), (2000, 256_000));

    // The JSON shape operators script against.
    let s = run.stats(&a.name);
    for key in [
        "egress_bytes",
        "egress_packets",
        "ingress_bytes",
        "ingress_packets",
        "connect_attempts",
        "bind_attempts",
    ] {
        assert!(s["net"][key].is_u64(), "net.{key} missing: {s}");
    }
    assert!(s["cgroup_id"].as_u64().unwrap() > 0);
    assert_eq!(s["memory"]["limit_bytes"], 20 << 20);
    assert!(s["syscalls"]["total"].as_u64().unwrap() > 0);
    assert!(s["cpu"]["usage_usec"].is_u64());

    let out = enforcer_ok(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        run.file("agent.pid").to_str().unwrap(),
    ]);
    assert!(out.contains("removed"), "{out}");
    assert_eq!(
        std::fs::read_dir(&run.pin_dir).unwrap().count(),
        0,
        "stop must remove the pins (the empty, private directory stays)"
    );
    if let Some(mut c) = run.child.take() {
        let st = c.wait().unwrap();
        assert!(st.success(), "agent must exit cleanly on stop: {st:?}");
    }
    // Detached: traffic is no longer counted anywhere, and stats says so.
    let out = enforcer(&["stats", "--pin-dir", run.pin()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("enforcer run"));
}

#[test]
fn syscalls_are_counted_per_group_by_name() {
    if skip_without_cgroup2("syscalls_are_counted_per_group_by_name") {
        return;
    }
    let a = GroupGuard::new("sys-a");
    let u = GroupGuard::new("sys-unmanaged");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a]);
    run.start(&p);
    enforcer_ok(&["create", "-g", &spec(&u.name)]);
    let k = 20_000u64;
    assert!(helper_in(&a, &["getppid", &k.to_string()]).status.success());
    // A busy group the policy does not name: never counted in policy mode.
    assert!(helper_in(&u, &["getppid", &k.to_string()]).status.success());
    let s = run.stats(&a.name);
    let n = s["syscalls"]["by_name"]["getppid"].as_u64().unwrap_or(0);
    assert!(n >= k && n <= k + 100, "getppid counted {n}, made {k}");
    let all = enforcer_ok(&["stats", "--json", "--pin-dir", run.pin()]);
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    let groups: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["group"].as_str())
        .collect();
    assert!(groups.contains(&a.name.as_str()), "{groups:?}");
    assert!(
        !groups.contains(&u.name.as_str()),
        "an unmanaged group's syscalls must not be counted: {groups:?}"
    );
}

#[test]
fn metrics_endpoint_and_oom_events_in_the_audit_log() {
    if skip_without_cgroup2("metrics_endpoint_and_oom_events_in_the_audit_log") {
        return;
    }
    let a = GroupGuard::new("met-a");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a]);
    run.start(&p);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_from(&a, &rx, 10);
    let needle = format!(
        "enforcer_net_bytes_total{{group=\"{}\",direction=\"egress\"}} 1280",
        a.name
    );
    wait_until("the metrics to show the traffic", || {
        run.metrics().is_some_and(|m| m.contains(&needle))
    });
    let body = run.metrics().unwrap();
    let body = body.split("\r\n\r\n").nth(1).unwrap();
    // Parseable exposition: every sample line is `name{labels} value`.
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        assert!(series.starts_with("enforcer_"), "bad name in {line:?}");
    }
    // Prometheus text 0.0.4 unless OpenMetrics is asked for.
    assert!(!body.contains("# EOF"), "{body}");
    let om = run
        .metrics_accepting(Some("application/openmetrics-text;version=1.0.0"))
        .unwrap();
    assert!(om.contains("Content-Type: application/openmetrics-text; version=1.0.0"));
    assert!(om.ends_with("# EOF\n"));

    // A process over the group's 20M limit is OOM-killed: one event, audited.
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&a.name), "--"])
        .arg(helper_bin())
        .args(["alloc", &(100u64 << 20).to_string()])
        .status()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
    let audit = run.file("audit.jsonl");
    wait_until("the OOM event in the audit log", || {
        std::fs::read_to_string(&audit).is_ok_and(|t| t.contains("\"oom_kill\""))
    });
    let text = std::fs::read_to_string(&audit).unwrap();
    let ev: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("oom_kill")).unwrap()).unwrap();
    assert_eq!(ev["group"], a.name, "{ev}");
    assert!(ev["pid"].as_u64().unwrap() > 0);
    wait_until("oom_kills in stats", || {
        run.stats(&a.name)["memory"]["oom_kills"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
}

/// The group's cpu weight as this host's file says it: `cpu.shares` on a v1
/// cpu hierarchy, `cpu.weight` on v2.
fn read_cpu_weight(g: &GroupGuard) -> String {
    read_key(&g.name, "cpu.weight").1
}

/// What `cpu.weight = W` reads back here (v1 shares by the kernel's
/// equivalence: weight 100 is 1024 shares).
fn weight_here(w: u64) -> String {
    if layout::is_v1("cpu") {
        (w * 1024 / 100).to_string()
    } else {
        w.to_string()
    }
}

#[test]
fn closed_loop_rule_fires_acts_and_is_undone() {
    if skip_without_cgroup2("closed_loop_rule_fires_acts_and_is_undone") {
        return;
    }
    let a = GroupGuard::new("loop");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n\"cpu.weight\" = 100\n\n\
             [[group.\"{n}\".when]]\nmetric = \"egress_bytes_per_sec\"\nabove = \"100K\"\n\
             then = [\"set cpu.weight=50\", \"log\"]\nuntil = \"1s\"\n",
            n = a.name
        ),
    )
    .unwrap();
    run.start(&p);
    // cpu.weight 100 and 50 are cpu.shares 1024 and 512 on a v1 cpu hierarchy.
    assert_eq!(read_cpu_weight(&a), weight_here(100));
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let addr = rx.local_addr().unwrap().to_string();
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&a.name), "--"])
        .arg(helper_bin())
        .args(["udp-send", &addr, "20000", "1000"])
        .status()
        .unwrap();
    assert!(st.success());
    wait_until("the rule to lower cpu.weight", || {
        read_cpu_weight(&a) == weight_here(50)
    });
    // Within two 100 ms intervals of the traffic, plus the sender's own run
    // time (an emulated guest runs all of it slower).
    assert!(
        start.elapsed() < Duration::from_secs(3) * enforcer_tests::time_scale(),
        "took {:?}",
        start.elapsed()
    );
    // The agent writes each action's audit line after acting: the weight can
    // be seen before the lines are there.
    let fired = || -> Vec<serde_json::Value> {
        run.audit_lines()
            .into_iter()
            .filter(|l| l["kind"] == "rule" && l["phase"] == "fired")
            .collect()
    };
    wait_until("the set and log actions in the audit log", || {
        fired().len() >= 2
    });
    let fired = fired();
    assert_eq!(fired.len(), 2, "set and log: {fired:?}");
    assert_eq!(fired[0]["group"], a.name);
    assert_eq!(fired[0]["action"], "set cpu.weight=50");
    // Quiet for `until` (1 s): the old weight comes back.
    wait_until("the rule to be undone", || {
        read_cpu_weight(&a) == weight_here(100)
    });
    wait_until("the undo in the audit log", || {
        run.audit_lines()
            .iter()
            .any(|l| l["kind"] == "rule" && l["phase"] == "undone")
    });
}

#[test]
fn reload_applies_a_valid_policy_and_keeps_the_old_one_when_invalid() {
    if skip_without_cgroup2("reload_applies_a_valid_policy_and_keeps_the_old_one_when_invalid") {
        return;
    }
    let a = GroupGuard::new("reload");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"20M\"\n",
            a.name
        ),
    )
    .unwrap();
    run.start(&p);
    let limit = || read_key(&a.name, "memory.max").1;
    assert_eq!(limit(), (20u64 << 20).to_string());

    // An invalid policy (a typo in a value) is refused by `reload --config`...
    let bad = run.file("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"20XB\"\n",
            a.name
        ),
    )
    .unwrap();
    let out = enforcer(&[
        "reload",
        "--config",
        bad.to_str().unwrap(),
        "--pid-file",
        run.file("agent.pid").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(":2:"),
        "{out:?}"
    );
    // ...and when it lands in the agent's own file, the agent keeps the old one.
    std::fs::copy(&bad, &p).unwrap();
    let pid_file = run.file("agent.pid");
    enforcer_ok(&["reload", "--pid-file", pid_file.to_str().unwrap()]);
    wait_until("the rejection in the audit log", || {
        run.audit_lines()
            .iter()
            .any(|l| l["kind"] == "reload_rejected")
    });
    assert_eq!(limit(), (20u64 << 20).to_string());

    // A valid change is applied (the file watch picks it up without a signal).
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"30M\"\n",
            a.name
        ),
    )
    .unwrap();
    wait_until("the new limit", || limit() == (30u64 << 20).to_string());
    assert!(
        run.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the agent keeps running"
    );
}

fn helper_in(group: &GroupGuard, args: &[&str]) -> std::process::Output {
    Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&group.name), "--"])
        .arg(helper_bin())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn policy_rules_are_enforced_and_survive_an_agent_crash() {
    if skip_without_cgroup2("policy_rules_are_enforced_and_survive_an_agent_crash") {
        return;
    }
    let a = GroupGuard::new("enf-a");
    let mut run = AgentRun::new();
    // A port nobody listens on, on an address of the loopback range.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("127.0.0.2:{port}");
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n\n[group.\"{n}\".network]\nconnect_deny = [\"127.0.0.2/32:{port}\"]\n\n\
             [group.\"{n}\".syscalls]\ndeny = [\"personality\"]\naction = \"kill\"\n",
            n = a.name
        ),
    )
    .unwrap();
    run.start(&p);
    let connect_in_group = || {
        String::from_utf8_lossy(&helper_in(&a, &["try-connect", "tcp", &target]).stdout).to_string()
    };
    assert!(
        connect_in_group().contains("err EPERM"),
        "{}",
        connect_in_group()
    );
    // Outside the group the same connect reaches the kernel (nothing listens).
    let outside = Command::new(helper_bin())
        .args(["try-connect", "tcp", &target])
        .output()
        .unwrap();
    let outside = String::from_utf8_lossy(&outside.stdout);
    assert_eq!(outside.trim(), "err ECONNREFUSED", "outside the group");
    // A denied syscall kills the process before it runs.
    let out = helper_in(&a, &["personality"]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "{out:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("alive"));

    // The agent dies; the rules stay in the kernel.
    run.sigkill();
    assert!(
        connect_in_group().contains("err EPERM"),
        "rules must survive the agent"
    );
    run.start(&p);
    assert!(connect_in_group().contains("err EPERM"));
    let s = run.stats(&a.name);
    assert!(
        s["enforcement"]["connect_denied"].as_u64().unwrap() >= 3,
        "{s}"
    );
    assert!(
        s["enforcement"]["syscalls_killed"].as_u64().unwrap() >= 1,
        "{s}"
    );
    wait_until("the denial in the audit log", || {
        run.audit_lines().iter().any(|l| {
            l["group"] == a.name && l["kind"].as_str().is_some_and(|k| k.contains("connect"))
        })
    });
}

#[test]
fn observe_mode_counts_other_groups_and_reclaims_deleted_ones_quietly() {
    if skip_without_cgroup2("observe_mode_counts_other_groups_and_reclaims_deleted_ones_quietly") {
        return;
    }
    let a = GroupGuard::new("obs-a");
    let d = GroupGuard::new("obs-d");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a]);
    run.start_with(&p, &["--observe"]);
    // A group the policy does not name, created after the agent started.
    enforcer_ok(&["create", "-g", &spec(&d.name)]);
    let id = layout::v2_id(&d.name);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_from(&d, &rx, 100);
    assert_eq!(
        egress(&run, &d),
        (100, 12_800),
        "observe mode counts every group"
    );
    let series = format!("group=\"{}\"", d.name);
    wait_until("the group's series", || {
        run.metrics().is_some_and(|m| m.contains(&series))
    });

    enforcer_ok(&["delete", "-g", &spec(&d.name)]);
    wait_until("the deleted group's counters to be reclaimed", || {
        enforcer::bpf::snapshot_pinned(&run.pin_dir).is_ok_and(|s| !s.groups.contains_key(&id))
    });
    // ... and its series removed from the metrics.
    wait_until("the deleted group's series to go", || {
        run.metrics().is_some_and(|m| !m.contains(&series))
    });
    // Quiet for five more collections after the reclaim: a check of
    // absence over the agent's own ticks, not the clock.
    run.wait_collections(5);
    let log = std::fs::read_to_string(run.file("agent.log")).unwrap_or_default();
    assert!(
        !log.contains("ERROR"),
        "no error spam for a deleted group:\n{log}"
    );
    assert!(
        !log.contains(&d.name),
        "nothing logged about it at the default level:\n{log}"
    );
}

#[test]
fn groups_go_below_a_delegated_parent_and_the_agent_leaves_it() {
    if skip_without_cgroup2("groups_go_below_a_delegated_parent_and_the_agent_leaves_it") {
        return;
    }
    let parent = GroupGuard::new("parent");
    enforcer_ok(&["create", "-g", &spec(&parent.name)]);
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(&p, "[agent]\nparent = \"ignored-when-the-flag-is-given\"\n\n[group.\"web\"]\n\"memory.limit_in_bytes\" = \"20M\"\n").unwrap();
    // As a systemd service with Delegate=yes: the agent starts inside the parent.
    run.start_in(
        Some(&format!("cgroup2:{}", parent.name)),
        Some(&p),
        &["--parent", &parent.name],
    );
    let web = format!("{}/web", parent.name);
    assert_eq!(read_key(&web, "memory.max").1, (20u64 << 20).to_string());
    assert!(v2_dir(&web).is_dir());
    let pid = run.child.as_ref().unwrap().id();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroup.contains(&format!("0::/{}/enforcer-agent", parent.name)),
        "the agent must move out of the parent into its own leaf: {cgroup}"
    );
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&web), "--"])
        .arg(helper_bin())
        .args([
            "udp-send",
            &rx.local_addr().unwrap().to_string(),
            "10",
            "100",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(run.stats(&web)["net"]["egress_packets"], 10);
}

/// Whether this kernel loads BPF-LSM programs (`enforcer status` says so).
fn lsm_available() -> bool {
    enforcer::bpf::features()
        .map(|f| f.refusal(enforcer::bpf::Feature::LsmDeny).is_none())
        .unwrap_or(false)
}

#[test]
fn a_policy_the_kernel_cannot_enforce_changes_nothing() {
    if skip_without_cgroup2("a_policy_the_kernel_cannot_enforce_changes_nothing") {
        return;
    }
    if lsm_available() {
        enforcer_tests::skipped(
            "a_policy_the_kernel_cannot_enforce_changes_nothing",
            "this kernel loads BPF-LSM programs, so the policy is enforceable",
        );
        return;
    }
    let a = GroupGuard::new("nolsm-a");
    let b = GroupGuard::new("nolsm-b");
    let run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{a}\"]\n\"memory.max\" = \"64M\"\n\n[group.\"{a}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\n\n\
             [group.\"{b}\"]\n\"memory.max\" = \"64M\"\n\n[group.\"{b}\".syscalls]\n\
             deny = [\"socket\", \"execve\"]\naction = \"deny\"\n",
            a = a.name,
            b = b.name
        ),
    )
    .unwrap();
    let out = run.run_expecting_exit(Some(&p), &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    // The group, the rule, its line and the kernel's reason; no cgroup id.
    for needle in [
        "policy.toml:11:".to_string(),
        format!("group \"{}\"", b.name),
        "syscalls.deny \"execve\" with action = \"deny\"".to_string(),
        "BPF-LSM".to_string(),
    ] {
        assert!(err.contains(&needle), "{needle:?} missing in: {err}");
    }
    assert!(!err.contains("cgroup 3"), "{err}");
    // Nothing was created, limited, attached or pinned.
    let cg = enforcer::cgroup::Cgroups::discover().unwrap();
    for g in [&a, &b] {
        assert!(
            cg.present_in(&g.path()).is_empty(),
            "{} was created",
            g.name
        );
    }
    let pinned = std::fs::read_dir(&run.pin_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(pinned, 0, "nothing pinned");

    // On a running agent, a reload adding such a group is refused as a whole.
    let c = GroupGuard::new("nolsm-c");
    let mut run = run;
    std::fs::write(
        &p,
        format!("[group.\"{}\"]\n\"memory.max\" = \"64M\"\n", c.name),
    )
    .unwrap();
    run.start(&p);
    std::fs::write(
        &p,
        format!(
            "[group.\"{c}\"]\n\"memory.max\" = \"64M\"\n\n[group.\"{b}\"]\n\
             [group.\"{b}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n\
             [group.\"{b}\".syscalls]\ndeny = [\"execve\"]\naction = \"deny\"\n",
            c = c.name,
            b = b.name
        ),
    )
    .unwrap();
    enforcer_ok(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    wait_until("the rejection in the audit log", || {
        run.audit_lines().iter().any(|l| {
            l["kind"] == "reload_rejected"
                && l["message"].as_str().is_some_and(|m| m.contains("execve"))
        })
    });
    assert!(
        cg.present_in(&b.path()).is_empty(),
        "the new group was not created (so not counted either)"
    );
}

#[test]
fn reload_with_another_file_is_refused_and_says_what_config_does() {
    if skip_without_cgroup2("reload_with_another_file_is_refused_and_says_what_config_does") {
        return;
    }
    let a = GroupGuard::new("other-a");
    let n = GroupGuard::new("other-new");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a]);
    run.start(&p);
    let p2 = run.file("p2.toml");
    std::fs::write(
        &p2,
        format!("[group.\"{}\"]\n\"memory.max\" = \"20M\"\n", n.name),
    )
    .unwrap();
    let out = enforcer(&[
        "reload",
        "--config",
        p2.to_str().unwrap(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the agent runs") && err.contains("policy.toml"),
        "{err}"
    );
    // Its own file, validated first, is fine.
    let reloads = || {
        run.audit_lines()
            .iter()
            .filter(|l| l["kind"] == "reload")
            .count()
    };
    let before = reloads();
    enforcer_ok(&[
        "reload",
        "--config",
        p.to_str().unwrap(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    // The reload is done (and audited) before p2's group is looked for.
    wait_until("the reload in the audit log", || reloads() > before);
    let cg = enforcer::cgroup::Cgroups::discover().unwrap();
    assert!(
        cg.present_in(&n.path()).is_empty(),
        "p2's group never appears"
    );
}

/// A real scrape in each format through a reader nobody here wrote: the
/// text format 0.0.4 (asked for with `text/plain`, or with no Accept header)
/// through `promtool check metrics` (Debian's prometheus), OpenMetrics
/// (asked for as Prometheus asks) through the strict OpenMetrics parser of
/// python3-prometheus-client (promtool 2.42 reads only the text format).
#[test]
fn scrapes_pass_promtool_and_the_openmetrics_parser() {
    if skip_without_cgroup2("scrapes_pass_promtool_and_the_openmetrics_parser") {
        return;
    }
    let a = GroupGuard::new("promtool");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a]);
    run.start(&p);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_from(&a, &rx, 10);
    wait_until("the metrics to show the group", || {
        run.metrics().is_some_and(|m| m.contains(&a.name))
    });
    let body = |scrape: String| scrape.split_once("\r\n\r\n").unwrap().1.to_string();
    for accept in [None, Some("text/plain")] {
        let scrape = run.metrics_accepting(accept).unwrap();
        assert!(
            scrape.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
            "{scrape}"
        );
        let out = pipe("promtool", &["check", "metrics"], &body(scrape));
        let Some(out) = out else {
            enforcer_tests::skipped("scrapes_pass_promtool", "promtool is not installed");
            return;
        };
        assert!(
            out.status.success(),
            "promtool check metrics ({accept:?}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let om = body(run.metrics_accepting(Some(prometheus_accept)).unwrap());
    let parse = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        families = list(p(sys.stdin.read()))\n\
        print(len(families))\n";
    let out = pipe("/usr/bin/python3", &["-c", parse], &om).unwrap();
    if String::from_utf8_lossy(&out.stderr).contains("No module named") {
        enforcer_tests::skipped(
            "scrapes_pass_the_openmetrics_parser",
            "python3-prometheus-client is not installed",
        );
        return;
    }
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the scrape: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `program ARGS` with `input` on stdin; None if it is not installed.
fn pipe(program: &str, args: &[&str], input: &str) -> Option<std::process::Output> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

/// A kernel feature no rule of the policy needs (BPF-LSM here: no
/// trampolines) is said once, at info, not as a warning at every start.
#[test]
fn an_unneeded_refused_feature_is_said_once_at_info() {
    if skip_without_cgroup2("an_unneeded_refused_feature_is_said_once_at_info") {
        return;
    }
    let a = GroupGuard::new("lsm-quiet");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a]);
    run.start(&p);
    run.sigkill();
    let warned = run.log();
    assert!(
        !warned.contains("unavailable on this kernel"),
        "a warning at the default level for a feature nothing needs:\n{warned}"
    );
    let mut cmd = run.command(None, Some(&p), &[]);
    let out = cmd
        .env("ENFORCER_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the restarted agent to serve metrics", || {
        run.metrics().is_some()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(out.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = out.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("unavailable on this kernel"))
        .collect();
    let kernel_has_lsm = lines.is_empty();
    if kernel_has_lsm {
        enforcer_tests::skipped(
            "an_unneeded_refused_feature_is_said_once_at_info",
            "this kernel refuses no feature",
        );
        return;
    }
    for l in &lines {
        assert!(l.contains("INFO"), "said at info: {l}");
    }
    let lsm = lines.iter().filter(|l| l.contains("BPF-LSM")).count();
    assert_eq!(lsm, 1, "BPF-LSM said once: {log}");
}
