//! Names are data (root, real kernel): groups named by someone else (a
//! container runtime, a delegated user) with escape sequences, newlines,
//! bidirectional controls, invalid UTF-8 and 255 bytes, and a process whose
//! `comm` is an escape sequence, go through every verb that shows them. No
//! raw control character reaches a human output (a terminal or a pipe); each
//! name is shown in its documented escaped form; JSON parses and carries the
//! name; the metrics pass `promtool check metrics`.

use std::ffi::OsStr;
use std::net::UdpSocket;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use enforcer_tests::layout::{skip_without_cgroup2, v2_mount};
use enforcer_tests::{AgentRun, enforcer, helper_bin, unique_name, wait_until};

/// The hostile names (raw bytes) and how a person must see each.
fn hostile() -> Vec<(Vec<u8>, String)> {
    let long = "n".repeat(255);
    vec![
        (
            b"x\x1b[2J\x1b[31mRED".to_vec(),
            "x\\x1b[2J\\x1b[31mRED".to_string(),
        ),
        // The kernel refuses a newline in a cgroup name; a carriage return
        // overwrites a line as well.
        (b"cr\rfake 1 2 3".to_vec(), "cr\\rfake 1 2 3".to_string()),
        (b"bad\xff\xfeutf8".to_vec(), "bad\\xff\\xfeutf8".to_string()),
        (
            "bidi\u{202e}txt".as_bytes().to_vec(),
            "bidi\\u{202e}txt".to_string(),
        ),
        (
            "c1\u{9b}31m".as_bytes().to_vec(),
            "c1\\u{009b}31m".to_string(),
        ),
        (long.as_bytes().to_vec(), long.clone()),
    ]
}

/// The label JSON and metrics carry: UTF-8 as it is, other bytes as `\xNN`.
fn label(raw: &[u8]) -> String {
    let mut out = String::new();
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A parent the test made, with the hostile groups below it in the cgroup2
/// tree (made with mkdir, as another tool would), each holding a sleeping
/// process that first sent a few datagrams (so the agent counts it).
struct Hostile {
    parent: PathBuf,
    parent_name: String,
    sleepers: Vec<Child>,
}

impl Hostile {
    fn new(to: &UdpSocket) -> Self {
        let parent_name = unique_name("names");
        let parent = v2_mount().join(&parent_name);
        std::fs::create_dir(&parent).unwrap();
        let mut h = Hostile {
            parent,
            parent_name,
            sleepers: Vec::new(),
        };
        let addr = to.local_addr().unwrap().to_string();
        for (raw, _) in hostile() {
            let dir = h.parent.join(OsStr::from_bytes(&raw));
            std::fs::create_dir(&dir).unwrap();
            // The shell moves itself in, then becomes the helper.
            let child = Command::new("sh")
                .arg("-c")
                .arg(r#"echo $$ > "$1/cgroup.procs" && "$2" udp-send "$3" 3 10 && exec "$2" sleep 60"#)
                .arg("sh")
                .arg(&dir)
                .arg(helper_bin())
                .arg(&addr)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            h.sleepers.push(child);
        }
        h
    }

    /// The group label of a hostile name, as JSON carries it.
    fn label(&self, raw: &[u8]) -> String {
        format!("{}/{}", self.parent_name, label(raw))
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        for c in &mut self.sleepers {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (raw, _) in hostile() {
            let dir = self.parent.join(OsStr::from_bytes(&raw));
            for _ in 0..100 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir(&self.parent);
    }
}

/// No control character (but newline) reaches a person: no C0 byte, no DEL,
/// valid UTF-8 without C1 or bidirectional controls.
fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| {
        panic!(
            "{what}: not UTF-8 ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    for (i, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(
            !bad,
            "{what}: raw {c:?} at byte {i}: {:?}",
            &text[i.saturating_sub(40)..(i + 40).min(text.len())]
        );
    }
}

fn ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_terminal_safe(&format!("{what} (stderr)"), &out.stderr);
    String::from_utf8(out.stdout.clone()).unwrap_or_else(|e| panic!("{what}: not UTF-8: {e}"))
}

/// A human output: safe, and showing every hostile name in its escaped form
/// (`shown` says how a verb shows a name when not as a whole).
fn check_human(what: &str, out: &Output, h: &Hostile, shown: impl Fn(&str) -> String) {
    let text = ok(what, out);
    assert_terminal_safe(what, &out.stdout);
    for (_, visible) in hostile() {
        let want = shown(&format!("{}/{visible}", h.parent_name));
        assert!(
            text.contains(&want),
            "{what} does not show {want:?}:\n{text}"
        );
    }
}

/// A JSON output: parses, and carries each hostile name's label under `key`.
fn check_json(what: &str, out: &Output, h: &Hostile, key: &str) {
    let text = ok(what, out);
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
    let rows = v.as_array().cloned().unwrap_or_default();
    for (raw, _) in hostile() {
        let want = h.label(&raw);
        assert!(
            rows.iter()
                .any(|r| r[key].as_str().is_some_and(|g| g.ends_with(&want))),
            "{what} has no {key} {want:?}: {text}"
        );
    }
}

#[test]
fn hostile_names_are_escaped_in_every_output() {
    if skip_without_cgroup2("hostile_names_are_escaped_in_every_output") {
        return;
    }
    let mut run = AgentRun::new();
    run.start_observe(&[]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let h = Hostile::new(&rx);
    let pin = run.pin().to_string();
    wait_until("every hostile group to be counted", || {
        let out = enforcer(&["stats", "--json", "--pin-dir", &pin]);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        hostile()
            .iter()
            .all(|(raw, _)| rows.iter().any(|r| r["group"] == h.label(raw).as_str()))
    });

    // stats: the table (a pipe) and JSON. Tables keep the end of a long
    // path (`…` for the rest).
    let tail = |s: &str| {
        let n = s.chars().count();
        s.chars().skip(n.saturating_sub(20)).collect::<String>()
    };
    check_human(
        "stats",
        &enforcer(&["stats", "--rows", "100000", "--pin-dir", &pin]),
        &h,
        tail,
    );
    check_json(
        "stats --json",
        &enforcer(&["stats", "--json", "--pin-dir", &pin]),
        &h,
        "group",
    );
    // top --once into a pipe, and as JSON.
    let top = [
        "top",
        "--once",
        "--interval",
        "100ms",
        "--pin-dir",
        &pin,
        "--filter",
        &h.parent_name,
    ];
    check_human("top --once", &enforcer(&top), &h, tail);
    let mut top_json = top.to_vec();
    top_json.push("--json");
    check_json("top --once --json", &enforcer(&top_json), &h, "group");
    // top on a terminal (tmux): the escaped names on the screen, in the
    // flat table and the detail view, and the screen is not red.
    let cmd = format!(
        "{} top --pin-dir {pin} --interval 300ms --filter {}",
        enforcer_tests::enforcer_bin().display(),
        h.parent_name
    );
    let t = enforcer_tests::tmux::Tmux::start(&cmd, &[("TERM", "xterm-256color")]);
    t.wait_screen("the escaped name on top's screen", |s| {
        s.contains("x\\x1b[2J\\x1b[31mRED")
    });
    // A new filter (Esc clears the one given on the command line).
    t.keys(&["/"]);
    t.keys(&["Escape"]);
    t.keys(&["/"]);
    t.type_text("31mRED");
    t.keys(&["Enter"]);
    t.keys(&["Enter"]);
    let s = t.wait_screen("the detail of the hostile group", |s| {
        s.contains("detail (Esc") && s.contains("group      ") && s.contains("x\\x1b[2J")
    });
    assert!(!s.contains('\u{1b}'), "{s}");
    // No red from a name: top colours nothing red on its own (31 is red).
    let coloured = t.screen_with_escapes();
    assert!(
        !coloured.contains("\u{1b}[31m"),
        "a name turned the screen red:\n{coloured}"
    );
    t.keys(&["q"]);
    // list, plain and JSON.
    let spec = format!("cgroup2:{}", h.parent_name);
    check_human("list", &enforcer(&["list", &spec]), &h, |g| {
        format!(":/{g}")
    });
    check_json(
        "list --json",
        &enforcer(&["list", "--json", &spec]),
        &h,
        "path",
    );
    // which: each sleeping process's groups.
    for (c, (raw, visible)) in h.sleepers.iter().zip(hostile()) {
        let pid = c.id().to_string();
        let text = ok("which", &enforcer(&["which", &pid]));
        assert_terminal_safe("which", text.as_bytes());
        assert!(
            text.contains(&visible),
            "which {pid} does not show {visible:?}: {text}"
        );
        let json = ok("which --json", &enforcer(&["which", "--json", &pid]));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let want = format!("/{}", h.label(&raw));
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .any(|m| m["path"] == want.as_str()),
            "which --json {pid} has no path {want:?}: {json}"
        );
    }
    // The metrics: the exposition format's escaping, accepted by promtool.
    let scrape = run.metrics().unwrap();
    let body = scrape.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(
        body.contains(&format!("group=\"{}/cr\rfake 1 2 3\"", h.parent_name)),
        "a carriage return in a label is as it is in the exposition"
    );
    promtool_accepts(body);
    // Error messages naming a hostile group: escaped too (exit 2).
    let hostile_arg = "x\x1b[2J\x1b[31mbad";
    let policy = run.file("hostile.toml");
    std::fs::write(
        &policy,
        "[group.\"x\\u001b[2J\\u001b[31mbad\"]\n\"memory.limit_in_bytes\" = \"1M\"\n",
    )
    .unwrap();
    let policy = policy.to_str().unwrap();
    for args in [
        vec!["get", hostile_arg],
        vec!["stats", "--pin-dir", &pin, hostile_arg],
        vec!["create", "-g", &format!("memory:{hostile_arg}")],
        vec!["apply", "--dry-run", policy],
        vec!["events", "--audit-log", "/nonexistent/x\x1b[2J"],
    ] {
        let out = enforcer(&args);
        assert!(
            out.status.code().is_some_and(|c| c != 0),
            "{args:?} must fail"
        );
        assert_terminal_safe(&format!("{args:?}'s error"), &out.stderr);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("[2J"),
            "{args:?} names what was wrong: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `promtool check metrics` on a scrape, if promtool is installed (setup
/// installs Debian's prometheus package).
fn promtool_accepts(body: &str) {
    use std::io::Write as _;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        enforcer_tests::skipped("promtool_accepts", "promtool is not installed");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused the scrape:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_hostile_comm_is_escaped_in_events() {
    if skip_without_cgroup2("a_hostile_comm_is_escaped_in_events") {
        return;
    }
    let g = enforcer_tests::GroupGuard::new("names-comm");
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[group.\"{}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            g.name, g.name
        ),
    )
    .unwrap();
    run.start(&policy);
    // An executable whose name (so the process's comm) is an escape sequence.
    let evil = run.scratch.join(OsStr::from_bytes(b"\x1b[31mEV\nIL"));
    std::fs::copy(helper_bin(), &evil).unwrap();
    let out = Command::new(enforcer_tests::enforcer_bin())
        .args(["exec", "-g", &enforcer_tests::layout::spec(&g.name), "--"])
        .arg(&evil)
        .args(["try-connect", "tcp", "127.0.0.2:9"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("EPERM"),
        "{out:?}"
    );
    let audit = run.file("audit.jsonl");
    wait_until("the denial in the audit log", || {
        std::fs::read_to_string(&audit).is_ok_and(|t| t.contains("EV\\nIL"))
    });
    let out = enforcer(&["events", "--audit-log", audit.to_str().unwrap()]);
    let text = ok("events", &out);
    assert_terminal_safe("events", &out.stdout);
    assert!(
        text.contains("(\\x1b[31mEV\\nIL)"),
        "events shows the comm escaped: {text}"
    );
    let out = enforcer(&["events", "--json", "--audit-log", audit.to_str().unwrap()]);
    let text = ok("events --json", &out);
    assert!(
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .any(|v| v["comm"] == "\x1b[31mEV\nIL"),
        "events --json carries the comm as it is: {text}"
    );
}
