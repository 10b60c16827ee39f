//! README's promises about the verbs (root, real kernel), each checked where
//! no other test did: `--json` on every verb that reads and no escape codes
//! into a pipe, `kill` reaching subgroups, `create`'s modes, `get`'s memory
//! summary, `compat install`, `status`'s layout and features (and the
//! securityfs it mounts), `events -n` and `-f`, a page per verb from `man`,
//! and a new cpuset group that holds a process at once.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use enforcer_tests::layout::{self, skip_without_cgroup2, spec};
use enforcer_tests::tmux::Tmux;
use enforcer_tests::{
    AgentRun, GroupGuard, enforcer, enforcer_bin, enforcer_ok, helper_bin, unique_name,
};

/// Waits for `f`, generously: a deadline for a hung test, not a timing
/// assertion (a loaded host or an emulated guest can take seconds).
fn wait_until(what: &str, f: impl FnMut() -> bool) {
    enforcer_tests::wait_for(what, std::time::Duration::from_secs(60), f);
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(unique_name("cli"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The verbs `enforcer --help` lists.
fn verbs() -> Vec<String> {
    let help = enforcer_ok(&["--help"]);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|v| v != "help")
        .collect()
}

/// Verbs that change the host or print a script or a page: nothing to read
/// back as JSON.
const ACTING: &[&str] = &[
    "run",
    "stop",
    "create",
    "exec",
    "classify",
    "delete",
    "freeze",
    "thaw",
    "kill",
    "compat",
    "completions",
    "man",
];

/// `helper sleep 60` in `spec`, placed before this returns.
fn sleeper(spec: &str, name: &str) -> std::process::Child {
    let child = Command::new(enforcer_bin())
        .args(["exec", "-g", spec, "--"])
        .arg(helper_bin())
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    wait_until("the process in its group", || {
        layout::which_shows(&enforcer_ok(&["which", &pid]), "memory", name)
    });
    child
}

#[test]
fn every_reading_verb_prints_json_and_no_escape_codes_into_a_pipe() {
    if skip_without_cgroup2("every_reading_verb_prints_json_and_no_escape_codes_into_a_pipe") {
        return;
    }
    let verbs = verbs();
    let reading: Vec<&str> = verbs
        .iter()
        .map(String::as_str)
        .filter(|v| !ACTING.contains(v))
        .collect();
    for v in &reading {
        let help = enforcer_ok(&[v, "--help"]);
        assert!(
            help.contains("--json"),
            "`enforcer {v}` reads but has no --json:\n{help}"
        );
    }

    let g = GroupGuard::new("json");
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\n",
            n = g.name
        ),
    )
    .unwrap();
    run.start(&policy);
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&g.name), "--"])
        .arg(helper_bin())
        .args(["try-connect", "tcp", "127.0.0.2:9"])
        .output()
        .unwrap();
    assert!(text(&out.stdout).contains("EPERM"), "{out:?}");
    wait_until("the denial in the audit log", || {
        !run.audit_lines().is_empty()
    });
    let mut child = sleeper(&spec(&g.name), &g.name);
    let pid = child.id().to_string();
    let audit = run.file("audit.jsonl");
    let audit = audit.to_str().unwrap();
    let pid_file = run.pid_file();
    let pid_file = pid_file.to_str().unwrap();
    let policy = policy.to_str().unwrap();
    let limit = "memory.limit_in_bytes=256M";
    // Each reading verb, as it reads with --json; the plain form is the same
    // without it.
    let cases: Vec<Vec<&str>> = vec![
        vec!["get", "--json", "-g", "memory", &g.name],
        vec!["set", "--json", "-r", limit, &g.name],
        vec!["list", "--json"],
        vec!["which", "--json", &pid],
        vec!["status", "--json"],
        vec![
            "top",
            "--once",
            "--json",
            "--pin-dir",
            run.pin(),
            "--interval",
            "100ms",
        ],
        vec!["stats", "--json", "--pin-dir", run.pin()],
        vec!["events", "--json", "--audit-log", audit],
        vec!["apply", "--dry-run", "--json", policy],
        vec![
            "reload",
            "--dry-run",
            "--json",
            "--pid-file",
            pid_file,
            "--config",
            policy,
        ],
    ];
    let covered: Vec<&str> = cases.iter().map(|c| c[0]).collect();
    for v in &reading {
        assert!(covered.contains(v), "no case for the reading verb {v}");
    }
    for args in &cases {
        let out = enforcer(args);
        let stdout = text(&out.stdout);
        assert!(
            out.status.code() == Some(0) || args[0] == "status",
            "{args:?}: {out:?}"
        );
        if args[0] == "events" {
            assert!(!stdout.is_empty());
            for line in stdout.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("{args:?}: a line is not JSON ({e}): {line}"));
            }
        } else {
            serde_json::from_str::<serde_json::Value>(&stdout)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{stdout}"));
        }
        let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
        let out = enforcer(&plain);
        for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !bytes.contains(&0x1b),
                "{plain:?} wrote an escape code into a pipe ({what}): {:?}",
                text(bytes)
            );
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn kill_reaches_the_processes_of_subgroups() {
    if layout::skip_without("kill_reaches_the_processes_of_subgroups", &["memory"]) {
        return;
    }
    // Processes in two subgroups at different depths (on cgroup v2 a group
    // whose children have controllers holds no processes itself).
    let g = GroupGuard::new("killsub");
    let near = format!("{}/near", g.name);
    let deep = format!("{}/far/deeper", g.name);
    for s in [&near, &deep] {
        enforcer_ok(&["create", "-g", &format!("memory:{s}")]);
    }
    for (signal, want) in [("TERM", libc::SIGTERM), ("KILL", libc::SIGKILL)] {
        let mut a = sleeper(&format!("memory:{near}"), &near);
        let mut b = sleeper(&format!("memory:{deep}"), &deep);
        let out = enforcer_ok(&["kill", "-s", signal, &g.name]);
        assert!(out.contains("2 processes"), "{signal}: {out}");
        for (who, c) in [("near", &mut a), ("deeper", &mut b)] {
            let mut status = None;
            wait_until(&format!("the {who} process to end on {signal}"), || {
                status = c.try_wait().unwrap();
                status.is_some()
            });
            assert_eq!(
                status.unwrap().signal(),
                Some(want),
                "the {who} process, {signal}"
            );
        }
    }
}

#[test]
fn create_sets_modes_like_cgcreate() {
    if layout::skip_without("create_sets_modes_like_cgcreate", &["memory"]) {
        return;
    }
    let g = GroupGuard::new("modes");
    enforcer_ok(&[
        "create",
        "-d",
        "750",
        "-f",
        "640",
        "-s",
        "600",
        "-g",
        &format!("memory:{}", g.name),
    ]);
    let dir = layout::dir_of("memory", &g.name);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&dir), 0o750, "-d: the directory");
    let limit = layout::spelled("memory.limit_in_bytes", "memory.max");
    assert_eq!(mode(&dir.join(limit)), 0o640, "-f: the control files");
    let tasks = if dir.join("tasks").exists() {
        "tasks"
    } else {
        "cgroup.procs"
    };
    assert_eq!(mode(&dir.join(tasks)), 0o600, "-s: the tasks file");
}

#[test]
fn get_prints_the_memory_summary_readme_names() {
    if layout::skip_without("get_prints_the_memory_summary_readme_names", &["memory"]) {
        return;
    }
    let g = GroupGuard::new("summary");
    enforcer_ok(&["create", "-g", &format!("memory:{}", g.name)]);
    enforcer_ok(&["set", "-r", "memory.limit_in_bytes=64M", &g.name]);
    let mut child = sleeper(&format!("memory:{}", g.name), &g.name);
    let out = enforcer_ok(&["get", "-g", "memory", &g.name]);
    let line = out
        .lines()
        .find(|l| l.starts_with("memory summary:"))
        .unwrap_or_else(|| panic!("no memory summary:\n{out}"));
    for word in [
        "usage ",
        "peak ",
        "limit 64.0 MiB",
        "failcnt 0",
        "oom_kills 0",
    ] {
        assert!(line.contains(word), "{word:?} missing: {line}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&enforcer_ok(&["get", "--json", "-g", "memory", &g.name])).unwrap();
    let m = &v[0]["memory"];
    assert!(m["usage_bytes"].as_u64().unwrap() > 0, "{m}");
    assert!(
        m["peak_bytes"].as_u64().unwrap() >= m["usage_bytes"].as_u64().unwrap(),
        "{m}"
    );
    assert_eq!(m["limit_bytes"], 64u64 << 20);
    assert_eq!(
        (m["failcnt"].as_u64(), m["oom_kills"].as_u64()),
        (Some(0), Some(0))
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn compat_install_links_every_tool_and_refuses_a_foreign_file_with_status_2() {
    let help = enforcer_ok(&["compat", "install", "--help"]);
    assert!(help.contains("[default: /usr/local]"), "{help}");
    let d = scratch();
    let out = enforcer_ok(&["compat", "install", "--prefix", d.to_str().unwrap()]);
    let tools = [
        "bin/cgcreate",
        "bin/cgset",
        "bin/cgget",
        "bin/cgexec",
        "bin/cgclassify",
        "bin/cgdelete",
        "bin/lscgroup",
        "bin/lssubsys",
        "bin/cgsnapshot",
        "bin/cgxget",
        "bin/cgxset",
        "sbin/cgconfigparser",
        "sbin/cgrulesengd",
    ];
    for t in tools {
        let link = std::fs::read_link(d.join(t)).unwrap_or_else(|e| panic!("{t}: {e}\n{out}"));
        assert_eq!(
            std::fs::canonicalize(&link).unwrap(),
            std::fs::canonicalize(enforcer_bin()).unwrap(),
            "{t}"
        );
    }
    // A name taken by something else (libcgroup's own tool, say): refused,
    // bad input, nothing linked.
    let other = scratch();
    std::fs::create_dir_all(other.join("bin")).unwrap();
    std::fs::write(other.join("bin/cgget"), "#!/bin/sh\n").unwrap();
    let out = enforcer(&["compat", "install", "--prefix", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("cgget"), "{out:?}");
    let entries: Vec<_> = std::fs::read_dir(other.join("bin")).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing changed");
    assert!(!other.join("sbin/cgrulesengd").exists(), "nothing changed");
    // uninstall removes only the links to enforcer.
    std::fs::rename(other.join("bin/cgget"), d.join("bin/mine")).unwrap();
    enforcer_ok(&["compat", "uninstall", "--prefix", d.to_str().unwrap()]);
    for t in tools {
        assert!(d.join(t).symlink_metadata().is_err(), "{t} stayed");
    }
    assert!(
        d.join("bin/mine").is_file(),
        "a file of someone else's stays"
    );
    std::fs::remove_dir_all(d).ok();
    std::fs::remove_dir_all(other).ok();
}

#[test]
fn status_shows_the_layout_and_every_feature_readme_names() {
    let out = enforcer(&["status"]);
    let s = text(&out.stdout);
    assert!(
        s.lines()
            .next()
            .is_some_and(|l| l.starts_with("cgroup layout: ")),
        "{s}"
    );
    let features: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.starts_with("eBPF features"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("    "))
        .collect();
    for f in [
        "accounting",
        "syscall counting",
        "OOM events",
        "network rules",
        "rate limits",
        "socket deny",
        "syscall kill/log",
        "LSM deny",
    ] {
        let line = features
            .iter()
            .find(|l| l.trim_start().starts_with(f))
            .unwrap_or_else(|| panic!("no {f:?} in:\n{s}"));
        assert!(
            line.contains("available") || line.contains("UNAVAILABLE"),
            "{line}"
        );
    }
    // Where the kernel refuses a feature, its reason follows on the next line.
    let lines: Vec<&str> = s.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("UNAVAILABLE") {
            assert!(
                lines.get(i + 1).is_some_and(|n| n.starts_with("    ")),
                "no reason under {l}:\n{s}"
            );
        }
    }
}

#[test]
fn status_mounts_securityfs_where_it_is_missing() {
    const TEST: &str = "status_mounts_securityfs_where_it_is_missing";
    // In a mount namespace of its own, so the host's mounts stay as they are:
    // securityfs unmounted, then `status`, then what is mounted.
    let script = format!(
        "umount /sys/kernel/security 2>/dev/null; \
         if grep -q ' /sys/kernel/security ' /proc/self/mountinfo; then exit 3; fi; \
         '{}' status --json 2>/dev/null; echo; echo MOUNTS; \
         grep ' /sys/kernel/security ' /proc/self/mountinfo || true",
        enforcer_bin().display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = text(&out.stdout);
    let (status, mounts) = stdout
        .split_once("\nMOUNTS\n")
        .expect("status --json, then the mounts");
    let v: serde_json::Value = serde_json::from_str(status).unwrap();
    let lsm = v["ebpf"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "lsm_deny")
        .expect("the LSM deny feature");
    // The list of active LSMs is read once BPF-LSM programs load; where the
    // kernel refuses them (no trampolines here), nothing needs it.
    if lsm["refused"]["inert"] == false {
        enforcer_tests::skipped(
            TEST,
            &format!("BPF-LSM programs do not load here, so the LSM list is not read: {lsm}"),
        );
        return;
    }
    assert!(
        mounts.contains("securityfs"),
        "status did not mount securityfs: {stdout}"
    );
}

/// 15 audit lines of oom_kill events, pids 1..=15.
fn audit_file(dir: &Path) -> PathBuf {
    let p = dir.join("audit.jsonl");
    let text: String = (1..=15)
        .map(|i| {
            format!(
                "{{\"time\":{i}.0,\"kind\":\"oom_kill\",\"group\":\"g{i}\",\"pid\":{i},\"comm\":\"x\"}}\n"
            )
        })
        .collect();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A child killed when dropped, also on panic.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines `out` yields, from a thread, so that a reader can give up.
fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn pids(lines: &str) -> Vec<u64> {
    lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["pid"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn events_prints_the_last_n_lines_and_follows_from_the_last_10() {
    let d = scratch();
    let log = audit_file(&d);
    let log_s = log.to_str().unwrap();
    assert_eq!(
        pids(&enforcer_ok(&["events", "--json", "--audit-log", log_s])),
        (1..=15).collect::<Vec<_>>()
    );
    assert_eq!(
        pids(&enforcer_ok(&[
            "events",
            "--json",
            "-n",
            "3",
            "--audit-log",
            log_s
        ])),
        [13, 14, 15]
    );
    let human = enforcer_ok(&["events", "-n", "1", "--audit-log", log_s]);
    assert!(
        human.starts_with("1970-01-01T00:00:15") && human.contains("g15"),
        "{human}"
    );

    let mut follow = Killed(
        Command::new(enforcer_bin())
            .args(["events", "-f", "--json", "--audit-log", log_s])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = lines_of(follow.0.stdout.take().unwrap());
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(10) * enforcer_tests::time_scale())
            .expect("a line from events -f within 10 s")
    };
    let first: Vec<String> = (0..10).map(|_| next()).collect();
    assert_eq!(pids(&first.join("\n")), (6..=15).collect::<Vec<_>>());
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(
        &mut f,
        b"{\"time\":16.0,\"kind\":\"oom_kill\",\"group\":\"g16\",\"pid\":16,\"comm\":\"x\"}\n",
    )
    .unwrap();
    assert_eq!(pids(&next()), [16]);
    drop(follow);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn man_writes_a_page_per_verb_and_shows_it_with_man_on_a_terminal() {
    let d = scratch();
    enforcer_ok(&["man", "--out-dir", d.to_str().unwrap()]);
    assert!(d.join("enforcer.8").is_file());
    for v in verbs() {
        let page = d.join(format!("enforcer-{v}.8"));
        let roff =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(roff.contains(".TH"), "{}", page.display());
    }
    // Into a pipe: roff.
    assert!(enforcer_ok(&["man", "stats"]).contains(".TH"));
    // On a terminal: man(1) renders it.
    if Command::new("man").arg("--version").output().is_err() {
        enforcer_tests::skipped(
            "man_writes_a_page_per_verb_and_shows_it_with_man_on_a_terminal",
            "(the terminal half) no man(1) on this host",
        );
        return;
    }
    let t = Tmux::start(
        &format!("{} man stats", enforcer_bin().display()),
        &[("PAGER", "cat"), ("MANPAGER", "cat")],
    );
    let s = t.wait_screen("the rendered page", |s| {
        s.contains("NAME") && s.contains("enforcer-stats")
    });
    assert!(
        !s.contains(".TH") && !s.contains(".SH"),
        "roff on a terminal:\n{s}"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_new_cpuset_group_holds_a_process_at_once() {
    if layout::skip_without("a_new_cpuset_group_holds_a_process_at_once", &["cpuset"]) {
        return;
    }
    let g = GroupGuard::new("cpuset");
    let spec = format!("cpuset:{}/child", g.name);
    enforcer_ok(&["create", "-g", &spec]);
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec, "--"])
        .arg(helper_bin())
        .args(["sleep", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exec into a new cpuset group: {out:?}"
    );
}
