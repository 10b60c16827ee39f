//! What the agent reports (root, real kernel): every metric README lists,
//! the top-N syscall series, `stats --watch` rates and the `--summary` table.

use std::io::{BufRead as _, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::{AgentRun, GroupGuard, enforcer_bin, helper_bin, wait_until};

fn helper_in(g: &GroupGuard, args: &[&str]) {
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&g.name), "--"])
        .arg(helper_bin())
        .args(args)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The sample lines of an exposition: `(name, labels, value)`.
fn samples(body: &str) -> Vec<(String, String, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            (
                name.to_string(),
                labels.trim_end_matches('}').to_string(),
                value.parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_metric_readme_lists_is_served_with_the_group_label() {
    if skip_without_cgroup2("every_metric_readme_lists_is_served_with_the_group_label") {
        return;
    }
    let a = GroupGuard::new("metrics");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"64M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\negress_rate = \"1Mbit\"\n\
             [group.\"{n}\".syscalls]\ndeny = [\"getppid\"]\naction = \"log\"\n",
            n = a.name
        ),
    )
    .unwrap();
    run.start(&p);
    helper_in(&a, &["getppid", "5"]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    helper_in(&a, &["try-connect", "tcp", "127.0.0.2:9"]);
    helper_in(&a, &["sockaddr", "3"]);
    helper_in(
        &a,
        &[
            "udp-blast",
            &rx.local_addr().unwrap().to_string(),
            "400",
            "1400",
        ],
    );
    let label = format!("group=\"{}\"", a.name);
    let mut all = Vec::new();
    wait_until("every metric of the group", || {
        let Some(m) = run.metrics() else { return false };
        let body = m.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        all = samples(&body);
        let has = |name: &str| {
            all.iter()
                .any(|(n, l, v)| n == name && l.contains(&label) && *v >= 1.0)
        };
        has("enforcer_denied_total")
            && has("enforcer_dropped_packets_total")
            && has("enforcer_syscalls_logged_total")
    });
    let of = |name: &str| -> Vec<(String, f64)> {
        all.iter()
            .filter(|(n, l, _)| n == name && l.contains(&label))
            .map(|(_, l, v)| (l.clone(), *v))
            .collect()
    };
    // The names in README's metric list, each with at least one series here.
    for name in [
        "enforcer_net_bytes_total",
        "enforcer_net_packets_total",
        "enforcer_connect_attempts_total",
        "enforcer_bind_attempts_total",
        "enforcer_syscalls_total",
        "enforcer_syscall_calls_total",
        "enforcer_memory_usage_bytes",
        "enforcer_memory_limit_bytes",
        "enforcer_oom_kills_total",
        "enforcer_cpu_usage_seconds_total",
        "enforcer_build_info",
        "enforcer_collection_duration_seconds",
        "enforcer_map_entries",
        "enforcer_reloads_total",
        "enforcer_rules_loaded",
        "enforcer_denied_total",
        "enforcer_syscalls_logged_total",
        "enforcer_dropped_packets_total",
        "enforcer_dropped_bytes_total",
        "enforcer_events_lost_total",
    ] {
        let agent_wide = !name.contains("attempts")
            && [
                "build_info",
                "collection",
                "map_",
                "reloads",
                "rules_loaded",
            ]
            .iter()
            .any(|n| name.contains(n));
        let present = if agent_wide {
            all.iter().any(|(n, _, _)| n == name)
        } else {
            !of(name).is_empty()
        };
        assert!(present, "{name} missing");
    }
    assert_eq!(of("enforcer_memory_limit_bytes")[0].1, (64u64 << 20) as f64);
    assert!(of("enforcer_connect_attempts_total")[0].1 >= 4.0);
    assert!(of("enforcer_bind_attempts_total")[0].1 >= 3.0);
    let denied: Vec<_> = of("enforcer_denied_total")
        .into_iter()
        .filter(|(l, _)| l.contains("hook=\"connect\",action=\"deny\""))
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].1, 1.0, "one denied connect");
    let dropped: f64 = of("enforcer_dropped_packets_total")
        .iter()
        .filter(|(l, _)| l.contains("direction=\"egress\""))
        .map(|(_, v)| *v)
        .sum();
    assert!(dropped > 0.0, "the 1 Mbit/s limit dropped packets");
    let dropped_bytes: f64 = of("enforcer_dropped_bytes_total")
        .iter()
        .filter(|(l, _)| l.contains("direction=\"egress\""))
        .map(|(_, v)| *v)
        .sum();
    assert!(
        dropped_bytes >= dropped * 28.0,
        "and their bytes, headers included"
    );
    assert!(
        of("enforcer_syscalls_logged_total")[0].1 >= 5.0,
        "getppid logged"
    );
    // The same counters in `stats --json`, under the names the table gives.
    let s = run.stats(&a.name);
    assert!(
        s["enforcement"]["syscalls_logged"].as_u64() >= Some(5),
        "{s}"
    );
    assert!(
        s["enforcement"]["egress_dropped_bytes"].as_u64() > Some(0),
        "{s}"
    );
    assert!(s["enforcement"]["events_lost"].is_u64(), "{s}");
    // A stable syscall label set: the fixed set, the policy's (getppid, which
    // it logs) and `other`, whatever the group called (README lists it).
    let syscalls: Vec<String> = of("enforcer_syscall_calls_total")
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        syscalls.len(),
        enforcer::report::FIXED_SYSCALLS.len() + 2,
        "{syscalls:?}"
    );
    assert!(syscalls.iter().any(|l| l.contains("syscall=\"getppid\"")));
    assert!(syscalls.iter().any(|l| l.contains("syscall=\"other\"")));
    assert!(
        all.iter()
            .any(|(n, l, _)| n == "enforcer_rules_loaded" && l.contains("kind=\"network\"")),
        "rules loaded by kind"
    );
}

#[test]
fn stats_watch_prints_rates_and_summary_prints_plain_tables_into_a_pipe() {
    if skip_without_cgroup2("stats_watch_prints_rates_and_summary_prints_plain_tables_into_a_pipe")
    {
        return;
    }
    let a = GroupGuard::new("watch");
    let run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!("[group.\"{}\"]\n\"memory.max\" = \"64M\"\n", a.name),
    )
    .unwrap();
    // --summary into a pipe (stdout is not a terminal).
    let mut agent = run
        .command(None, Some(&p), &["--summary", "--no-metrics"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(agent.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(10) * enforcer_tests::time_scale();
    let mut seen = String::new();
    while Instant::now() < deadline && !seen.contains(&a.name) {
        let line = lines.next().unwrap().unwrap();
        seen.push_str(&line);
        seen.push('\n');
    }
    assert!(seen.contains(&a.name), "the group's row: {seen}");
    assert!(
        !seen.contains('\x1b'),
        "no escape codes into a pipe: {seen:?}"
    );

    // stats --watch --json: one array per refresh, rates from the second on.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = rx.local_addr().unwrap().to_string();
    let mut watch = Command::new(enforcer_bin())
        .args([
            "stats",
            "--json",
            "--watch",
            "0.3",
            "--pin-dir",
            run.pin(),
            &a.name,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
    assert!(first[0]["rates"].is_null(), "no rate on the first sample");
    let sender = std::thread::spawn({
        let name = a.name.clone();
        move || {
            Command::new(enforcer_bin())
                .args(["exec", "-g", &spec(&name), "--"])
                .arg(helper_bin())
                .args(["udp-flood", &addr, "1.5", "1000"])
                .output()
                .unwrap()
        }
    });
    let mut best = 0.0f64;
    for _ in 0..10 {
        let v: serde_json::Value = serde_json::from_str(&out.next().unwrap().unwrap()).unwrap();
        best = best.max(
            v[0]["rates"]["egress_bytes_per_sec"]
                .as_f64()
                .unwrap_or(0.0),
        );
    }
    let _ = sender.join();
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(best > 1e6, "a UDP flood shows as more than 1 MB/s: {best}");
}

/// Every metric family the endpoint serves has its row in README's metrics
/// table (the rows are `` | `name` | type | labels | ``).
#[test]
fn every_served_metric_is_in_readme() {
    if skip_without_cgroup2("every_served_metric_is_in_readme") {
        return;
    }
    let mut run = AgentRun::new();
    run.start_observe(&[]);
    let scrape = run.metrics().unwrap();
    let body = scrape.split("\r\n\r\n").nth(1).unwrap_or_default();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let documented: Vec<&str> = readme
        .lines()
        .filter_map(|l| {
            l.strip_prefix("| `enforcer_")?
                .split_once('`')
                .map(|(n, _)| n)
        })
        .collect();
    let served: Vec<&str> = body
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# TYPE enforcer_")?
                .split_whitespace()
                .next()
        })
        .collect();
    assert!(served.len() > 20, "{body}");
    let missing: Vec<&&str> = served.iter().filter(|n| !documented.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "served but not in README's table: {missing:?}"
    );
}
