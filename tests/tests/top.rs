//! `enforcer top` driven in tmux (root, real kernel): rows appear for groups
//! with traffic, sorting by a column reorders them, the filter narrows them,
//! Enter shows a group's detail, `q` exits 0 and gives the terminal back;
//! NO_COLOR has no colours; into a pipe, one plain table without escapes.

use std::net::UdpSocket;
use std::process::Command;

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::tmux::Tmux;
use enforcer_tests::{AgentRun, GroupGuard, enforcer_bin, enforcer_ok, helper_bin, wait_until};

fn send(g: &GroupGuard, to: &UdpSocket, count: usize) {
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&g.name), "--"])
        .arg(helper_bin())
        .args([
            "udp-send",
            &to.local_addr().unwrap().to_string(),
            &count.to_string(),
            "1000",
        ])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Two groups, `b` sending much more than `a` (and `a` < `b` by name), with
/// an agent counting them.
fn two_groups() -> (GroupGuard, GroupGuard, AgentRun) {
    let a = GroupGuard::new("topa");
    let b = GroupGuard::new("topb");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\"]\n\"memory.max\" = \"256M\"\n[group.\"{}\"]\n\"memory.max\" = \"256M\"\n",
            a.name, b.name
        ),
    )
    .unwrap();
    run.start(&p);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send(&a, &rx, 5);
    send(&b, &rx, 300);
    wait_until("both groups counted", || {
        run.stats(&a.name)["net"]["egress_bytes"]
            .as_u64()
            .unwrap_or(0)
            > 0
            && run.stats(&b.name)["net"]["egress_bytes"]
                .as_u64()
                .unwrap_or(0)
                > 100_000
    });
    (a, b, run)
}

fn line_of(screen: &str, name: &str) -> Option<usize> {
    screen.lines().position(|l| l.contains(name))
}

#[test]
fn top_in_tmux_sorts_filters_details_and_quits_cleanly() {
    if skip_without_cgroup2("top_in_tmux_sorts_filters_details_and_quits_cleanly") {
        return;
    }
    let (a, b, run) = two_groups();
    let exit = run.file("top.exit");
    let cmd = format!(
        "{} top --pin-dir {} --interval 300ms; echo EXIT=$? > {}",
        enforcer_bin().display(),
        run.pin(),
        exit.display()
    );
    let t = Tmux::start(&cmd, &[]);
    // Rows for both groups; by egress (the default), b first.
    let s = t.wait_screen("rows of both groups", |s| {
        s.contains(&a.name) && s.contains(&b.name) && s.contains("EGRESS/s")
    });
    assert!(
        line_of(&s, &b.name) < line_of(&s, &a.name),
        "egress order:\n{s}"
    );
    assert_eq!(t.pane("alternate_on"), "1", "full screen");
    // `n` sorts by name: a first.
    t.keys(&["n"]);
    t.wait_screen("sorted by name", |s| {
        s.contains("sorted by group") && line_of(s, &a.name) < line_of(s, &b.name)
    });
    // Same key again reverses.
    t.keys(&["n"]);
    t.wait_screen("reversed", |s| line_of(s, &b.name) < line_of(s, &a.name));
    // `/` filters: only a.
    t.keys(&["/"]);
    t.type_text(&a.name);
    t.keys(&["Enter"]);
    let filter = format!("filter \"{}\"", a.name);
    t.wait_screen("filtered", |s| {
        s.contains(&filter) && s.contains(&a.name) && !s.contains(&b.name)
    });
    // Enter: the group's detail.
    t.keys(&["Enter"]);
    // Its bottom border: tmux may be captured while the box is half drawn.
    let s = t.wait_screen("detail", |s| s.contains("detail (Esc") && s.contains('└'));
    assert!(
        s.contains("syscalls") && s.contains("denied") && s.contains("no rate limit"),
        "{s}"
    );
    t.keys(&["Escape"]);
    // Tree view toggles on.
    t.keys(&["Escape", "t"]);
    t.wait_screen("tree", |s| s.contains("tree depth 3"));
    // q: exit status 0, the normal screen back.
    t.keys(&["q"]);
    // `echo > FILE` creates FILE empty before writing: wait for the line.
    wait_until("top to exit", || {
        std::fs::read_to_string(&exit).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "EXIT=0");
    assert_eq!(t.pane("alternate_on"), "0", "alternate screen left");
    let s = t.screen();
    assert!(
        !s.contains("EGRESS/s"),
        "the table is gone from the screen:\n{s}"
    );
}

/// The escape sequences of a captured screen that set a colour (SGR 30-49,
/// 90-107, 38;5/48;5): attributes such as bold and reverse do not count.
fn colours(screen: &str) -> Vec<String> {
    let mut out = Vec::new();
    for seq in screen.split('\x1b').skip(1) {
        let Some(body) = seq.strip_prefix('[') else {
            continue;
        };
        let Some(end) = body.find('m') else { continue };
        for p in body[..end].split(';') {
            if let Ok(n) = p.parse::<u32>()
                && ((30..=49).contains(&n) || (90..=107).contains(&n))
                && n != 39
                && n != 49
            {
                out.push(body[..end].to_string());
            }
        }
    }
    out
}

#[test]
fn no_color_turns_colours_off_and_a_pipe_gets_one_plain_table() {
    if skip_without_cgroup2("no_color_turns_colours_off_and_a_pipe_gets_one_plain_table") {
        return;
    }
    let (a, _b, run) = two_groups();
    let cmd = format!(
        "{} top --pin-dir {} --interval 300ms",
        enforcer_bin().display(),
        run.pin()
    );
    let coloured = Tmux::start(&cmd, &[("TERM", "xterm-256color")]);
    coloured.wait_screen("rows", |s| s.contains(&a.name));
    assert!(
        !colours(&coloured.screen_with_escapes()).is_empty(),
        "colours without NO_COLOR"
    );
    let plain = Tmux::start(&cmd, &[("TERM", "xterm-256color"), ("NO_COLOR", "1")]);
    plain.wait_screen("rows", |s| s.contains(&a.name));
    let c = colours(&plain.screen_with_escapes());
    assert!(c.is_empty(), "NO_COLOR: no colours, found {c:?}");
    coloured.keys(&["q"]);
    plain.keys(&["q"]);

    // Not a terminal: one plain table, no escape codes, and it ends.
    let out = enforcer_ok(&["top", "--pin-dir", run.pin(), "--interval", "200ms"]);
    assert!(out.starts_with("GROUP"), "{out}");
    assert!(out.contains(&a.name), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
    // --once --json: rows as JSON.
    let json = enforcer_ok(&[
        "top",
        "--once",
        "--json",
        "--pin-dir",
        run.pin(),
        "--interval",
        "100ms",
        "--filter",
        &a.name,
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{json}");
    assert_eq!(v[0]["group"], a.name.as_str());
}

/// `enforcer` with no arguments (what `cargo xtask build-and-run` runs): the
/// observe agent shown by `top`; `q` ends both, and observe mode takes its
/// programs off again. It uses the default pin directory, pid file and
/// metrics port, so it runs only where no other agent uses them.
#[test]
fn the_embedded_default_shows_top_and_cleans_up_on_q() {
    if skip_without_cgroup2("the_embedded_default_shows_top_and_cleans_up_on_q") {
        return;
    }
    let pins = std::path::Path::new("/sys/fs/bpf/enforcer");
    if pins.join("maps").exists() || std::net::TcpListener::bind("127.0.0.1:9750").is_err() {
        enforcer_tests::skipped(
            "the_embedded_default_shows_top_and_cleans_up_on_q",
            "an agent uses the default pin directory or metrics port here",
        );
        return;
    }
    // The embedded agent observes: one at a time with the other tests' ones.
    let _observe = enforcer_tests::agent_run::observe_lock();
    let pins_existed = pins.exists();
    let g = GroupGuard::new("embedded");
    enforcer_ok(&["create", "-g", &spec(&g.name)]);
    let dir = std::env::temp_dir().join(enforcer_tests::unique_name("embedded"));
    std::fs::create_dir_all(&dir).unwrap();
    let exit = dir.join("exit");
    let cmd = format!(
        "{}; echo EXIT=$? > {}",
        enforcer_bin().display(),
        exit.display()
    );
    let t = Tmux::start(&cmd, &[]);
    t.wait_screen("the live view", |s| {
        s.contains("enforcer top:") && s.contains("GROUP")
    });
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send(&g, &rx, 20);
    t.keys(&["/"]);
    t.type_text(&g.name);
    t.keys(&["Enter"]);
    t.wait_screen("the group's row", |s| s.contains(&g.name));
    t.keys(&["q"]);
    // `echo > FILE` creates FILE empty before writing: wait for the line.
    wait_until("enforcer to exit", || {
        std::fs::read_to_string(&exit).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "EXIT=0");
    assert!(
        !pins.join("maps").exists()
            || std::fs::read_dir(pins.join("maps"))
                .unwrap()
                .next()
                .is_none(),
        "observe mode removed its pins"
    );
    if !pins_existed {
        // The empty, private directory the agent keeps: this test made it.
        let _ = std::fs::remove_dir(pins.join("maps"));
        let _ = std::fs::remove_dir(pins.join("links"));
        let _ = std::fs::remove_dir(pins);
    }
    std::fs::remove_dir_all(&dir).ok();
}
