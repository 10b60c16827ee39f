//! `enforcer top` as README shows it (root, real kernel, tmux): the title,
//! columns and key line of its screen, tree rows that count their subtree
//! (`-` where nothing was read), a group's detail with its unit, memory
//! against its limit, rate and budget, every counter and its syscalls, and
//! `--once` sorting and folding as asked.

use std::net::UdpSocket;
use std::process::Command;

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::tmux::Tmux;
use enforcer_tests::{AgentRun, GroupGuard, enforcer_bin, enforcer_ok, helper_bin};

/// Waits for `f`, generously: a deadline for a hung test, not a timing
/// assertion (a loaded host or an emulated guest can take seconds).
fn wait_until(what: &str, f: impl FnMut() -> bool) {
    enforcer_tests::wait_for(what, std::time::Duration::from_secs(60), f);
}

fn helper_in(group: &str, args: &[&str]) {
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(group), "--"])
        .arg(helper_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} in {group}: {out:?}");
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// A group `G` with two subgroups that send (G itself runs nothing), in
/// observe mode: (the guard, its two subgroups, the agent).
fn tree() -> (GroupGuard, [String; 2], AgentRun) {
    let g = GroupGuard::new("toptree");
    let subs = [format!("{}/a/x", g.name), format!("{}/b", g.name)];
    for s in &subs {
        enforcer_ok(&["create", "-g", &spec(s)]);
    }
    let mut run = AgentRun::new();
    run.start_observe(&[]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    helper_in(&subs[0], &["udp-send", &to, "30", "1000"]);
    helper_in(&subs[1], &["udp-send", &to, "10", "1000"]);
    wait_until("both subgroups counted", || {
        subs.iter().all(|s| !run.stats(s).is_null())
    });
    (g, subs, run)
}

#[test]
fn the_live_view_has_readmes_title_columns_and_key_line() {
    if skip_without_cgroup2("the_live_view_has_readmes_title_columns_and_key_line") {
        return;
    }
    let (g, subs, run) = tree();
    let cmd = format!(
        "{} top --pin-dir {} --interval 300ms --tree 3 --filter {}",
        enforcer_bin().display(),
        run.pin(),
        g.name
    );
    let t = Tmux::start(&cmd, &[]);
    let s = t.wait_screen("the tree", |s| {
        s.lines().any(|l| l.trim_start().starts_with("a "))
    });
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines[0].starts_with("enforcer top: ")
            && lines[0].contains(" groups, sorted by egress")
            && lines[0].contains(", tree depth 3"),
        "title: {}",
        lines[0]
    );
    let header = lines
        .iter()
        .find(|l| l.starts_with("GROUP"))
        .unwrap_or_else(|| panic!("no header:\n{s}"));
    assert_eq!(
        words(header),
        [
            "GROUP",
            "EGRESS/s▼",
            "INGRESS/s",
            "SYSCALLS/s",
            "EGRESS",
            "INGRESS",
            "SYSCALLS",
            "MEMORY",
            "CPU%",
            "DENIED",
            "DROPPED",
            "LOST",
            "WORKLOAD"
        ],
        "{header}"
    );
    let keys = lines
        .iter()
        .find(|l| l.starts_with("q quit"))
        .unwrap_or_else(|| panic!("no key line:\n{s}"));
    let want = "q quit ↑↓ move Enter detail / filter t tree +/- depth n e i y m c d p l (or 1-9) sort r reverse";
    assert!(words(keys).join(" ").starts_with(want), "{keys}");

    // The tree, each level indented below its parent: G, a, x and b.
    let row = |indent: usize, name: &str| -> String {
        let prefix = format!("{}{name} ", " ".repeat(indent));
        lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row {prefix:?}:\n{s}"))
            .to_string()
    };
    let g_row = row(2, &g.name);
    let a_row = row(4, "a");
    let x_row = row(6, "x");
    let b_row = row(4, "b");
    // Each row counts its whole subtree (datagrams of 1,000 bytes and 28
    // of headers: 40 in G, 30 in a and x, 10 in b).
    for (r, want) in [
        (&g_row, "40.2 KiB"),
        (&a_row, "30.1 KiB"),
        (&x_row, "30.1 KiB"),
        (&b_row, "10.0 KiB"),
    ] {
        assert!(r.contains(want), "{want} in {r}\n{s}");
    }
    // G and a run nothing themselves: their memory and CPU were not read.
    // Character columns (the header's ▼ is more than one byte).
    let col = |name: &str| header[..header.find(name).unwrap()].chars().count();
    let (from, to) = (col("MEMORY"), col("DENIED"));
    let memory_and_cpu = |r: &str| -> Vec<String> {
        let chars: Vec<char> = r.chars().collect();
        words(&chars[from..to].iter().collect::<String>())
            .iter()
            .map(|w| w.to_string())
            .collect()
    };
    for r in [&g_row, &a_row] {
        assert_eq!(memory_and_cpu(r), ["-", "-"], "{r}");
    }
    // x runs (ran) its sender: its memory was read.
    assert_ne!(memory_and_cpu(&x_row)[0], "-", "{x_row}");
    let _ = &subs;
    t.keys(&["q"]);
}

#[test]
fn the_detail_shows_workload_memory_limits_budget_every_counter_and_syscalls() {
    if skip_without_cgroup2(
        "the_detail_shows_workload_memory_limits_budget_every_counter_and_syscalls",
    ) {
        return;
    }
    let g = GroupGuard::new("topdetail");
    let unit = format!("{}/detail.service", g.name);
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{unit}\"]\n\"memory.max\" = \"64M\"\n[group.\"{unit}\".network]\n\
             egress_rate = \"10Mbit\"\negress_budget = \"100M/1h\"\n"
        ),
    )
    .unwrap();
    run.start(&p);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    helper_in(&unit, &["udp-send", &to, "20", "1000"]);
    helper_in(&unit, &["getppid", "5000"]);
    wait_until("the group counted", || {
        run.stats(&unit)["syscalls"]["by_name"]["getppid"]
            .as_u64()
            .unwrap_or(0)
            >= 5000
    });
    let stats = run.stats(&unit);
    let cmd = format!(
        "{} top --pin-dir {} --interval 300ms --filter {}",
        enforcer_bin().display(),
        run.pin(),
        g.name
    );
    let t = Tmux::start(&cmd, &[]);
    t.wait_screen("the group's row", |s| s.contains("detail.service"));
    t.keys(&["Enter"]);
    let s = t.wait_screen("the detail", |s| {
        s.contains("detail (Esc") && s.contains('└')
    });
    let flat = words(&s.replace('│', " ")).join(" ");
    for want in [
        "unit detail.service",
        "of 64.0 MiB",
        "egress rate 1.2 MiB/s budget 100.0 MiB per 3600 s:",
        "left (",
        "syscalls most made:",
        "getppid",
    ] {
        assert!(flat.contains(want), "{want:?} missing:\n{s}");
    }
    // Every counter, under the name `stats --json` gives it.
    for section in ["net", "enforcement"] {
        for key in stats[section].as_object().unwrap().keys() {
            assert!(flat.contains(key.as_str()), "{section}.{key} missing:\n{s}");
        }
    }
    t.keys(&["Escape", "q"]);
}

#[test]
fn top_once_sorts_and_folds_the_tree_as_asked() {
    if skip_without_cgroup2("top_once_sorts_and_folds_the_tree_as_asked") {
        return;
    }
    let (g, subs, run) = tree();
    let top = |extra: &[&str]| -> Vec<(String, u64)> {
        let mut args = vec![
            "top",
            "--once",
            "--json",
            "--pin-dir",
            run.pin(),
            "--interval",
            "100ms",
            "--filter",
            &g.name,
        ];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&enforcer_ok(&args)).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["group"].as_str().unwrap().to_string(),
                    r["egress_bytes"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    // Flat, by name: the two counted subgroups, in name order (`b` after
    // `a/x`), reversed with --sort's order flipped by name.
    let by_name = top(&["--sort", "group"]);
    let names: Vec<&str> = by_name.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [subs[0].as_str(), subs[1].as_str()], "{by_name:?}");
    let by_egress = top(&["--sort", "egress"]);
    assert_eq!(
        by_egress[0].0, subs[0],
        "the bigger sender first: {by_egress:?}"
    );
    // A tree one level deep (below the root): G folds its whole subtree.
    let folded = top(&["--tree", "1"]);
    let row = folded
        .iter()
        .find(|(n, _)| *n == g.name)
        .unwrap_or_else(|| panic!("{folded:?}"));
    assert_eq!(row.1, 40 * 1028, "{folded:?}");
    assert!(
        folded
            .iter()
            .all(|(n, _)| !n.starts_with(&format!("{}/", g.name))),
        "nothing deeper than depth 1: {folded:?}"
    );
}
