//! What the agent reports (root, real kernel): every metric README lists,
//! the top-N syscall series, `stats --watch` rates and the `--summary` table.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::{AgentRun, GroupGuard, Lines, enforcer_bin, helper_bin};

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

/// README's metrics table: `(name, type, labels column)` per row. Compiled
/// in: a `cargo xtask vmtest` guest has the test executables, not the tree.
fn readme_metrics() -> Vec<(String, String, String)> {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.strip_prefix("| `enforcer_")?.split(" | ").collect();
            let name = format!("enforcer_{}", cells.first()?.trim_end_matches('`'));
            Some((
                name,
                cells.get(1)?.to_string(),
                cells.get(2)?.trim_end_matches(" |").to_string(),
            ))
        })
        .collect()
}

/// The exposition's `# TYPE family type` lines.
fn types(body: &str) -> Vec<(String, String)> {
    body.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("# TYPE ")?.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

#[test]
fn every_metric_readme_lists_is_served_with_the_group_label() {
    if skip_without_cgroup2("every_metric_readme_lists_is_served_with_the_group_label") {
        return;
    }
    let a = GroupGuard::new("metrics");
    let unit = format!("{}/web.service", a.name);
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    // Something for every family README lists: a limit, a budget, rules of
    // each kind, a `when` rule, an arbiter, and a group whose path names a
    // systemd unit (for enforcer_group_info).
    std::fs::write(
        &p,
        format!(
            "[arbiter]\nresources = [\"cpu\"]\n\n\
             [group.\"{n}\"]\n\"memory.max\" = \"64M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\negress_rate = \"1Mbit\"\negress_budget = \"1G/1d\"\n\
             [group.\"{n}\".syscalls]\ndeny = [\"getppid\"]\naction = \"log\"\n\
             [[group.\"{n}\".when]]\nmetric = \"egress_bytes_per_sec\"\nabove = \"1G\"\nfor = \"1s\"\nthen = \"log\"\n\n\
             [group.\"{unit}\"]\n",
            n = a.name
        ),
    )
    .unwrap();
    run.start(&p);
    helper_in(&a, &["getppid", "5"]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    helper_in(&a, &["try-connect", "tcp", "127.0.0.2:9"]);
    helper_in(&a, &["sockaddr", "3"]);
    const SENT: u64 = 400;
    helper_in(
        &a,
        &[
            "udp-blast",
            &rx.local_addr().unwrap().to_string(),
            &SENT.to_string(),
            "1400",
        ],
    );
    // The group is idle from here on: two more collections and the agent's
    // counters are final, equal to what `stats` reads from the pins.
    run.wait_collections(2);
    let body = run.metrics().expect("a scrape");
    let body = body
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let all = samples(&body);
    let label = format!("group=\"{}\"", a.name);
    let of = |name: &str| -> Vec<(String, f64)> {
        all.iter()
            .filter(|(n, l, _)| n == name && l.contains(&label))
            .map(|(_, l, v)| (l.clone(), *v))
            .collect()
    };

    // Every family README lists is served with README's type; a family for
    // groups is served for this group (each condition README names is met
    // here, but yielding).
    let served = types(&body);
    let listed = readme_metrics();
    assert!(listed.len() >= 30, "README's metrics table: {listed:?}");
    for (name, kind, labels) in &listed {
        let kind = kind.split_whitespace().next().unwrap_or_default();
        let family = name.strip_suffix("_total").unwrap_or(name);
        if labels.contains("only while yielding") {
            continue; // tests/tests/arbiter.rs yields; nothing yields here
        }
        assert!(
            served
                .iter()
                .any(|(f, t)| (f == family || f == name) && t == kind),
            "README lists {name} ({kind}); served: {served:?}"
        );
        let per_group = labels.starts_with("group");
        let series: Vec<_> = all.iter().filter(|(n, _, _)| n == name).collect();
        if labels.contains("maps that filled only") {
            // Nothing fills a map here: tests/tests/scale.rs overflows one.
            continue;
        }
        assert!(!series.is_empty(), "{name}: no sample");
        if per_group {
            let group = if name == "enforcer_group_info" {
                format!("group=\"{unit}\"")
            } else {
                label.clone()
            };
            assert!(
                series.iter().any(|(_, l, _)| l.contains(&group)),
                "{name} has no series for {group}: {series:?}"
            );
        }
    }
    // ... and nothing is served that README does not list.
    for (family, _) in &served {
        assert!(
            listed
                .iter()
                .any(|(n, _, _)| n == family || n.strip_suffix("_total").unwrap_or(n) == family),
            "{family} is served but not in README's metrics table"
        );
    }

    // Every per-group counter (the counter table) has exactly one series,
    // equal to the value `stats --json` reads from the kernel.
    let s = run.stats(&a.name);
    for def in enforcer::counters::COUNTERS {
        let want = s[def.json.0][def.json.1]
            .as_u64()
            .unwrap_or_else(|| panic!("stats has no {}.{}: {s}", def.json.0, def.json.1));
        let matching: Vec<f64> = of(def.metric.name)
            .into_iter()
            .filter(|(l, _)| {
                def.labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| v)
            .collect();
        assert_eq!(
            matching,
            [want as f64],
            "{} {:?} against stats' {}.{}",
            def.metric.name,
            def.labels,
            def.json.0,
            def.json.1
        );
    }

    // And against what the test did.
    let net = &s["net"];
    let dropped = &s["enforcement"];
    let packets = net["egress_packets"].as_u64().unwrap()
        + dropped["egress_dropped_packets"].as_u64().unwrap();
    assert_eq!(packets, SENT, "every datagram left or was dropped: {s}");
    let bytes =
        net["egress_bytes"].as_u64().unwrap() + dropped["egress_dropped_bytes"].as_u64().unwrap();
    assert_eq!(
        bytes,
        SENT * 1428,
        "1400 B of payload and 28 of headers each: {s}"
    );
    assert!(
        dropped["egress_dropped_packets"].as_u64() > Some(0),
        "the 1 Mbit/s limit dropped: {s}"
    );
    assert_eq!(dropped["connect_denied"], 1, "one denied connect: {s}");
    assert_eq!(dropped["syscalls_logged"], 5, "getppid logged 5 times: {s}");
    assert_eq!(s["syscalls"]["by_name"]["getppid"], 5, "{s}");
    assert_eq!(
        of("enforcer_memory_limit_bytes"),
        [(label.clone(), (64u64 << 20) as f64)]
    );
    let budget: Vec<f64> = of("enforcer_budget_bytes")
        .into_iter()
        .filter(|(l, _)| l.contains("direction=\"egress\""))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(budget, [(1u64 << 30) as f64]);
    let left: Vec<f64> = of("enforcer_budget_remaining_bytes")
        .into_iter()
        .filter(|(l, _)| l.contains("direction=\"egress\""))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        left,
        [((1u64 << 30) - net["egress_bytes"].as_u64().unwrap()) as f64],
        "the budget is charged what left"
    );
    assert_eq!(of("enforcer_oom_kills_total")[0].1, 0.0);
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
    let rules: Vec<(String, f64)> = all
        .iter()
        .filter(|(n, _, _)| n == "enforcer_rules_loaded")
        .map(|(_, l, v)| (l.clone(), *v))
        .collect();
    for kind in ["network", "syscall", "when"] {
        assert!(
            rules
                .iter()
                .any(|(l, v)| l.contains(&format!("kind=\"{kind}\"")) && *v >= 1.0),
            "rules loaded of kind {kind}: {rules:?}"
        );
    }
    let info: Vec<_> = all
        .iter()
        .filter(|(n, l, _)| n == "enforcer_group_info" && l.contains(&format!("group=\"{unit}\"")))
        .collect();
    assert!(
        info.len() == 1 && info[0].1.contains("unit=\"web.service\"") && info[0].2 == 1.0,
        "{info:?}"
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
    let lines = Lines::new(agent.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10) * enforcer_tests::time_scale();
    let mut seen = String::new();
    while Instant::now() < deadline && !seen.contains(&a.name) {
        let line = lines.next("the summary table");
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
    let out = Lines::new(watch.stdout.take().unwrap());
    let first: serde_json::Value = serde_json::from_str(&out.next("stats --watch")).unwrap();
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
        let v: serde_json::Value = serde_json::from_str(&out.next("stats --watch")).unwrap();
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
    let readme = include_str!("../../README.md");
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
