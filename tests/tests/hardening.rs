//! Hardening (root, real kernel): what an ordinary local user, a stale file or
//! a crash can do to the agent's enforcement and records. Each test tries one
//! attack or failure as an independent tester would and asserts it fails.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use enforcer::cgroup::{Cgroups, GroupPath};
use enforcer_tests::layout::skip_without_cgroup2;
use enforcer_tests::{
    AgentRun, GroupGuard, as_nobody, enforcer, enforcer_bin, enforcer_ok, helper_bin, unique_name,
    wait_for, wait_until,
};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A bpffs instance of this test only, mounted as the kernel mounts it
/// without options (mode 1777: every user may create directories), as on a
/// host where nobody made bpffs root-only. Unmounted when dropped.
struct PermissiveBpffs {
    dir: PathBuf,
}

impl PermissiveBpffs {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("bpffs"));
        std::fs::create_dir_all(&dir).unwrap();
        nix::mount::mount(
            Some("bpf"),
            &dir,
            Some("bpf"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount a private bpffs");
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o1777, "a bpffs mounted without options is 1777");
        PermissiveBpffs { dir }
    }
}

impl Drop for PermissiveBpffs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The group's cgroup2 directory and id (the mirror on a hybrid host).
fn v2_dir_and_id(name: &str) -> (PathBuf, u64) {
    let cg = Cgroups::discover().unwrap();
    let dir = cg.dir(
        cg.v2().expect("a cgroup2 mount"),
        &GroupPath::parse(name).unwrap(),
    );
    let id = std::fs::metadata(&dir).unwrap().ino();
    (dir, id)
}

/// A policy for `g` that denies every connect to 127.0.0.2.
fn deny_policy(run: &AgentRun, g: &GroupGuard) -> PathBuf {
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\n",
            n = g.name
        ),
    )
    .unwrap();
    p
}

fn in_group(g: &GroupGuard, args: &[&str]) -> Output {
    Command::new(enforcer_bin())
        .args(["exec", "-g", &format!("memory:{}", g.name), "--"])
        .arg(helper_bin())
        .args(args)
        .output()
        .unwrap()
}

/// `try-connect tcp 127.0.0.2:9` from inside the group: its one output line.
fn connect_from(g: &GroupGuard) -> String {
    text(&in_group(g, &["try-connect", "tcp", "127.0.0.2:9"]).stdout)
        .trim()
        .to_string()
}

/// A copy of the enforcer binary any user can run (the build tree may not be
/// reachable for `nobody`).
fn public_enforcer(run: &AgentRun) -> PathBuf {
    let dir = run.file("public");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&run.scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("enforcer");
    std::fs::copy(enforcer_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn an_unprivileged_user_cannot_strip_enforcement() {
    if skip_without_cgroup2("an_unprivileged_user_cannot_strip_enforcement") {
        return;
    }
    let g = GroupGuard::new("strip");
    let bpffs = PermissiveBpffs::new();
    let mut run = AgentRun::with_pin_dir(bpffs.dir.join("enforcer"));
    let policy = deny_policy(&run, &g);
    enforcer_ok(&["create", "-g", &format!("memory:{}", g.name)]);
    let (_, id) = v2_dir_and_id(&g.name);

    // Before the agent starts, a user prepares the group's pin directory.
    let planted = run.pin_dir.join(format!("enforce/{id}"));
    let out = as_nobody("/bin/mkdir", &["-p", planted.to_str().unwrap()]);
    assert!(out.status.success(), "the 1777 window: {}", describe(&out));
    // The agent refuses it, naming the path, its owner and the fix...
    let out = run.run_expecting_exit(Some(&policy), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    for needle in [
        "refusing to use",
        "not owned by root",
        "nobody",
        "mode=0700",
    ] {
        assert!(err.contains(needle), "{needle:?} missing in: {err}");
    }
    // ...and pins nothing there.
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 0);

    // Once root has removed it, the agent makes its directories itself.
    std::fs::remove_dir_all(&run.pin_dir).unwrap();
    run.start(&policy);
    let meta = std::fs::metadata(&run.pin_dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
    assert_eq!(connect_from(&g), "err EPERM");

    // The user can now neither read, remove, rename nor add anything.
    let pins = run.pin();
    for (prog, args) in [
        ("/bin/ls", vec![pins.to_string()]),
        ("/bin/rm", vec!["-rf".into(), format!("{pins}/enforce")]),
        ("/bin/rm", vec!["-rf".into(), pins.to_string()]),
        ("/bin/mv", vec![pins.to_string(), format!("{pins}.moved")]),
        ("/bin/mkdir", vec![format!("{pins}/enforce/x")]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = as_nobody(prog, &args);
        assert!(
            !out.status.success(),
            "{prog} {args:?} as nobody must fail: {}",
            describe(&out)
        );
    }
    let group_pins = run.pin_dir.join(format!("enforce/{id}"));
    assert!(std::fs::read_dir(&group_pins).unwrap().count() >= 10);
    assert_eq!(connect_from(&g), "err EPERM");

    // Even root removing the pins does not lift enforcement while the agent
    // runs: it holds its links, pins them again and says so.
    std::fs::remove_dir_all(&group_pins).unwrap();
    std::fs::remove_file(run.pin_dir.join("maps/GROUP_RULES")).unwrap();
    assert_eq!(connect_from(&g), "err EPERM", "enforcement never stops");
    wait_until("the pins to be restored", || {
        group_pins.join("enforce_connect4_1").exists()
            && run.pin_dir.join("maps/GROUP_RULES").exists()
    });
    wait_until("the restoration to be audited", || {
        run.audit_lines().iter().any(|l| {
            l["kind"] == "pin_restored"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("enforce_connect4_1"))
        })
    });
    assert_eq!(
        std::fs::metadata(&group_pins).unwrap().mode() & 0o7777,
        0o700
    );

    // After stop, the pin directory stays root's: still nothing to take over.
    let out = enforcer(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let meta = std::fs::metadata(&run.pin_dir).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700));
    let out = as_nobody("/bin/mkdir", &[&format!("{}/enforce", run.pin())]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert_eq!(
        connect_from(&g),
        "err ECONNREFUSED",
        "stop lifts enforcement"
    );
}

/// A process that must survive: `helper sleep 60`.
/// An unrelated process (the helper's `witness`) that says which signals it
/// received: asked after a command returned, it has handled every signal the
/// command sent, so "none" is an answer, not the absence of one after a sleep.
struct Bystander {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Bystander {
    fn new() -> Self {
        let mut child = Command::new(helper_bin())
            .arg("witness")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut b = Bystander {
            child,
            stdin,
            stdout,
        };
        // Its handlers are in place once it answers.
        assert_eq!(b.signals(), "", "a fresh witness caught nothing");
        b
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The signals it has caught so far (`1,15`), asked now.
    fn signals(&mut self) -> String {
        use std::io::{BufRead as _, Write as _};
        writeln!(self.stdin, "ping").expect("the witness reads its stdin");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the witness answers");
        let got = line
            .trim()
            .strip_prefix("signals")
            .unwrap_or_else(|| panic!("witness said {line:?}"))
            .trim()
            .to_string();
        line.clear();
        self.stdout.read_line(&mut line).expect("pong");
        assert_eq!(line.trim(), "pong");
        got
    }

    fn assert_alive(&mut self, after: &str) {
        assert_eq!(self.signals(), "", "{after} signalled an unrelated process");
        assert!(self.child.try_wait().unwrap().is_none(), "{after}: it died");
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stale_pid_file_never_signals_another_process() {
    if skip_without_cgroup2("a_stale_pid_file_never_signals_another_process") {
        return;
    }
    let g = GroupGuard::new("stale");
    let mut run = AgentRun::new();
    let policy = deny_policy(&run, &g);
    run.start(&policy);
    run.sigkill();
    let pid_file = run.pid_file();
    assert!(pid_file.exists(), "a killed agent leaves its pid file");
    let mut bystander = Bystander::new();
    std::fs::write(&pid_file, format!("{}\n", bystander.pid())).unwrap();

    let out = enforcer(&["reload", "--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("no agent is running"),
        "{}",
        describe(&out)
    );
    bystander.assert_alive("reload");

    let out = enforcer(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!text(&out.stdout).contains("stopped the agent"));
    bystander.assert_alive("stop");
}

#[test]
fn a_shared_lock_by_another_user_does_not_keep_the_agent_from_starting() {
    if skip_without_cgroup2("a_shared_lock_by_another_user_does_not_keep_the_agent_from_starting") {
        return;
    }
    let g = GroupGuard::new("sharedlock");
    let mut run = AgentRun::new();
    let policy = deny_policy(&run, &g);
    // A pid file left world-readable (by an older version), which a local
    // user holds a shared lock on.
    std::fs::set_permissions(&run.scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(run.pid_file(), "1\n").unwrap();
    std::fs::set_permissions(run.pid_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    use std::os::unix::process::CommandExt as _;
    let mut holder = Command::new("/usr/bin/flock")
        .args(["-s", run.pid_file().to_str().unwrap(), "sleep", "30"])
        .uid(enforcer_tests::NOBODY)
        .gid(enforcer_tests::NOBODY)
        .spawn()
        .unwrap();
    wait_until("the user's shared lock", || {
        let pid = holder.id().to_string();
        std::fs::read_to_string("/proc/locks")
            .unwrap_or_default()
            .lines()
            .any(|l| l.split_whitespace().nth(4) == Some(pid.as_str()))
    });
    run.start(&policy);
    let meta = std::fs::metadata(run.pid_file()).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    assert_eq!(connect_from(&g), "err EPERM");
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn a_second_agent_refuses_to_start_and_names_the_first() {
    if skip_without_cgroup2("a_second_agent_refuses_to_start_and_names_the_first") {
        return;
    }
    let g = GroupGuard::new("second");
    let mut run = AgentRun::new();
    let policy = deny_policy(&run, &g);
    run.start(&policy);
    let first = run.child.as_ref().unwrap().id();

    // Same pid file.
    let out = run.run_expecting_exit(Some(&policy), &["--no-metrics"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains(&format!("another agent (PID {first}")),
        "{}",
        describe(&out)
    );
    // The way to stop it, with the flags it runs with (plain `enforcer stop`
    // knows only the default pid file).
    let stop = format!(
        "`enforcer stop --pid-file {} --pin-dir {}`",
        run.pid_file().display(),
        run.pin()
    );
    assert!(text(&out.stderr).contains(&stop), "{}", describe(&out));
    // Same pins, another pid file.
    let other_pid_file = run.file("other.pid");
    let out = run.run_expecting_exit(
        Some(&policy),
        &[
            "--no-metrics",
            "--pid-file",
            other_pid_file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(err.contains(&stop), "{err}");
    assert!(
        err.contains(&format!("PID {first}")) && err.contains("pin directory"),
        "{err}"
    );
    assert!(
        !other_pid_file.exists(),
        "the refused agent removes its own"
    );

    // The first agent's pid file is intact: reload and stop reach it.
    assert_eq!(
        std::fs::read_to_string(run.pid_file())
            .unwrap()
            .lines()
            .next(),
        Some(first.to_string().as_str())
    );
    let out = enforcer_ok(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    assert!(out.contains(&format!("PID {first}")), "{out}");
    assert_eq!(connect_from(&g), "err EPERM");
    let out = enforcer_ok(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    assert!(
        out.contains(&format!("stopped the agent (PID {first})")),
        "{out}"
    );
    let st = run.child.take().unwrap().wait().unwrap();
    assert!(st.success(), "the first agent exits cleanly: {st}");
}

#[test]
fn pid_file_and_audit_log_are_never_followed_through_symlinks() {
    if skip_without_cgroup2("pid_file_and_audit_log_are_never_followed_through_symlinks") {
        return;
    }
    let g = GroupGuard::new("links");
    let mut run = AgentRun::new();
    let policy = deny_policy(&run, &g);
    // A directory every user may write, as /tmp is.
    let shared = run.file("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&run.scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let precious = run.file("precious");
    std::fs::write(&precious, "root's data\n").unwrap();
    let (pid_link, audit_link) = (shared.join("agent.pid"), shared.join("audit.jsonl"));
    for link in [&pid_link, &audit_link] {
        let out = as_nobody(
            "/bin/ln",
            &["-s", precious.to_str().unwrap(), link.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", describe(&out));
    }

    // A directory others can write is refused whatever is in it (issue 18).
    for (flag, link) in [("--pid-file", &pid_link), ("--audit-log", &audit_link)] {
        let out = run.run_expecting_exit(
            Some(&policy),
            &["--no-metrics", flag, link.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(
            text(&out.stderr).contains("writable by users other than root"),
            "{}",
            describe(&out)
        );
    }
    // A symlink in a directory of root's (root's own mistake) is not
    // followed either.
    let (pid_link, audit_link) = (run.file("link.pid"), run.file("link.jsonl"));
    for link in [&pid_link, &audit_link] {
        std::os::unix::fs::symlink(&precious, link).unwrap();
    }
    for (flag, link) in [("--pid-file", &pid_link), ("--audit-log", &audit_link)] {
        let out = run.run_expecting_exit(
            Some(&policy),
            &["--no-metrics", flag, link.to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(text(&out.stderr).contains("symlink"), "{}", describe(&out));
    }
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "root's data\n");

    // The audit log is private: 0600, or 0640 for a named group.
    run.start(&policy);
    let audit = run.file("audit.jsonl");
    assert_eq!(std::fs::metadata(&audit).unwrap().mode() & 0o777, 0o600);
    run.sigkill();
    run.start_with(&policy, &["--audit-group", "65534"]);
    let meta = std::fs::metadata(&audit).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o640, 65534));
}

#[test]
fn an_oom_kill_in_a_fresh_group_is_named_in_observe_mode() {
    if skip_without_cgroup2("an_oom_kill_in_a_fresh_group_is_named_in_observe_mode") {
        return;
    }
    let mut run = AgentRun::new();
    run.start_observe(&[]);
    let groups: Vec<GroupGuard> = (0..3)
        .map(|i| GroupGuard::new(&format!("fresh{i}")))
        .collect();
    for g in &groups {
        let spec = format!("memory:{}", g.name);
        enforcer_ok(&["create", "-g", &spec]);
        enforcer_ok(&["set", "-r", "memory.limit_in_bytes=20M", &g.name]);
        let out = in_group(g, &["alloc", &(100u64 << 20).to_string()]);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(9),
            "{}",
            describe(&out)
        );
    }
    for g in &groups {
        wait_until(&format!("the OOM kill in {} to be audited", g.name), || {
            run.audit_lines()
                .iter()
                .any(|l| l["kind"] == "oom_kill" && l["group"] == g.name.as_str())
        });
    }
    assert!(
        !run.audit_lines().iter().any(|l| l["group"] == "?"),
        "no event is written without its group"
    );
}

#[test]
fn agent_verbs_say_permission_denied_to_other_users() {
    if skip_without_cgroup2("agent_verbs_say_permission_denied_to_other_users") {
        return;
    }
    let g = GroupGuard::new("nonroot");
    let mut run = AgentRun::new();
    let policy = deny_policy(&run, &g);
    run.start(&policy);
    let bin = public_enforcer(&run);
    let pid_file = run.pid_file();
    std::fs::set_permissions(&pid_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [
        vec!["reload", "--pid-file", pid_file.to_str().unwrap()],
        vec![
            "stop",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--pin-dir",
            run.pin(),
        ],
        vec![
            "run",
            "--no-metrics",
            "--pin-dir",
            "/tmp/x",
            "--pid-file",
            "/tmp/y",
        ],
    ] {
        let out = as_nobody(&bin, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&out));
        let err = text(&out.stderr);
        assert!(
            err.contains("permission denied") && err.contains("root"),
            "{args:?}: {err}"
        );
    }
    assert!(run.child.as_mut().unwrap().try_wait().unwrap().is_none());
    assert_eq!(connect_from(&g), "err EPERM");
}

/// Totals of the background load of the crash test.
#[derive(Default)]
struct Load {
    udp_sent: u64,
    udp_errors: u64,
    connects: u64,
    eperm: u64,
    connected: u64,
    other: u64,
}

fn field(line: &str, name: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == name)
        .and_then(|i| words.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line:?}"))
}

#[test]
fn agent_crashes_lose_no_count_leak_no_denied_connect_and_tear_no_audit_line() {
    if skip_without_cgroup2(
        "agent_crashes_lose_no_count_leak_no_denied_connect_and_tear_no_audit_line",
    ) {
        return;
    }
    const KILLS: usize = 10;
    let g = GroupGuard::new("crash");
    let mut run = AgentRun::new();
    let policy = deny_policy(&run, &g);
    run.start(&policy);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_to = rx.local_addr().unwrap().to_string();

    // Load in the group until told to stop: UDP datagrams and denied connects.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let name = g.name.clone();
        std::thread::spawn(move || {
            let mut load = Load::default();
            let run_in = |args: &[&str]| -> String {
                let out = Command::new(enforcer_bin())
                    .args(["exec", "-g", &format!("memory:{name}"), "--"])
                    .arg(helper_bin())
                    .args(args)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", describe(&out));
                text(&out.stdout)
            };
            // Bounded: a few thousand events a second, enough for kills to
            // land while events are in flight.
            while !stop.load(Ordering::Relaxed) {
                let line = run_in(&["udp-blast", &udp_to, "500", "64"]);
                load.udp_sent += field(&line, "sent");
                load.udp_errors += field(&line, "errors");
                let line = run_in(&["connect-loop", "127.0.0.2:9", "200"]);
                load.connects += 200;
                load.connected += field(&line, "ok");
                load.eperm += field(&line, "eperm");
                load.other += field(&line, "other");
                std::thread::sleep(Duration::from_millis(10));
            }
            load
        })
    };

    let started = Instant::now();
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(250));
        run.sigkill();
        std::thread::sleep(Duration::from_millis(100));
        run.start(&policy);
    }
    std::thread::sleep(Duration::from_millis(250));
    stop.store(true, Ordering::Relaxed);
    let load = load.join().unwrap();
    let elapsed = started.elapsed();

    // Every datagram sent is counted, once.
    let s = run.stats(&g.name);
    assert_eq!(
        s["net"]["egress_packets"].as_u64().unwrap(),
        load.udp_sent,
        "datagrams sent {} (send errors {}): {s}",
        load.udp_sent,
        load.udp_errors
    );
    // No denied connect got through, and the kernel counted each refusal.
    assert_eq!(load.connected, 0, "a denied connect succeeded");
    assert_eq!(load.eperm, load.connects, "other errors: {}", load.other);
    let denied = s["enforcement"]["connect_denied"].as_u64().unwrap();
    assert_eq!(denied, load.eperm);
    let lost_in_kernel = s["enforcement"]["events_lost"].as_u64().unwrap();

    // Every audit line parses (audit_lines panics otherwise); no event twice;
    // at most one lost per kill beyond what the kernel counted as lost.
    let mut lines = Vec::new();
    wait_for(
        "the agent to write the backlog",
        Duration::from_secs(20),
        || {
            lines = run.audit_lines();
            let written = lines
                .iter()
                .filter(|l| l["kind"] == "connect_denied")
                .count() as u64;
            written + lost_in_kernel + KILLS as u64 >= denied
        },
    );
    let events: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["kind"] == "connect_denied")
        .collect();
    let ids: BTreeSet<(u64, u64)> = events
        .iter()
        .map(|l| (l["ktime_ns"].as_u64().unwrap(), l["pid"].as_u64().unwrap()))
        .collect();
    assert_eq!(ids.len(), events.len(), "an event was written twice");
    assert!(events.iter().all(|l| l["group"] == g.name.as_str()));
    let written = events.len() as u64;
    let lost = denied.saturating_sub(written + lost_in_kernel);
    assert!(
        written + lost_in_kernel <= denied && lost <= KILLS as u64,
        "denied {denied}, written {written}, lost in the kernel {lost_in_kernel}, \
         lost otherwise {lost} over {KILLS} kills"
    );
    eprintln!(
        "crash test: {KILLS} kills in {elapsed:?}; datagrams sent {} counted {}; denied \
         connects attempted {} succeeded {}; audit lines written {written} parsed {} \
         (kernel-dropped {lost_in_kernel}, lost to kills {lost}, duplicates 0)",
        load.udp_sent,
        s["net"]["egress_packets"],
        load.connects,
        load.connected,
        lines.len()
    );
}
