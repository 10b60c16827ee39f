//! The systemd units as `install.sh` installs them, run by a real systemd
//! (PID 1): `cargo xtask vmtest --guest systemd` boots Debian with systemd
//! and puts `cargo xtask dist`'s tree (around the debug build) at
//! `ENFORCER_TEST_DIST`. Elsewhere these tests say they skipped.
//!
//! What a user relies on: `systemctl start` returns once the agent is READY
//! with the shipped default policy on a kernel without BPF-LSM; `systemctl
//! reload` applies a changed policy; workloads in the policy's groups
//! survive `systemctl restart`, `systemctl stop` and a SIGKILL of the agent,
//! and with `on_exit = "keep"` a denied connect stays denied meanwhile;
//! classification still works under the unit's sandbox; the journal carries
//! the fields README documents; `systemd-analyze security` scores the unit
//! at most 4.5; install.sh honours PREFIX and DESTDIR.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::Duration;

use enforcer_tests::layout::{spec, v2_mount};
use enforcer_tests::{helper_bin, skipped};

/// The `cargo xtask dist` tree when PID 1 is systemd; None (and a skip
/// noted) elsewhere.
fn guest(test: &str) -> Option<PathBuf> {
    let dist = std::env::var_os("ENFORCER_TEST_DIST");
    // The systemd guest names its dist tree: there PID 1 must be systemd,
    // or the guest is broken and these tests would pass by skipping.
    assert!(
        dist.is_none() || Path::new("/run/systemd/system").is_dir(),
        "ENFORCER_TEST_DIST is set (the systemd guest) but PID 1 is not systemd"
    );
    if !Path::new("/run/systemd/system").is_dir() {
        skipped(
            test,
            "PID 1 is not systemd (runs in `cargo xtask vmtest --guest systemd`)",
        );
        return None;
    }
    match dist {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            skipped(
                test,
                "ENFORCER_TEST_DIST names no `cargo xtask dist` tree to install",
            );
            None
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn systemctl(args: &[&str]) -> Output {
    run(Command::new("systemctl").args(args))
}

/// `systemctl ARGS`, which must succeed; on failure the unit's status and
/// journal say why.
fn systemctl_ok(args: &[&str]) {
    let out = systemctl(args);
    if !out.status.success() {
        let status = systemctl(&["status", "--no-pager", "-l", "enforcer"]);
        let journal =
            run(Command::new("journalctl").args(["-u", "enforcer", "--no-pager", "-n", "60"]));
        panic!(
            "systemctl {args:?} failed ({}): {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&journal.stdout)
        );
    }
}

/// Polls `f` (limit times the guest's time scale); on timeout panics with
/// the agent's journal.
fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit * enforcer_tests::time_scale();
    while !f() {
        if std::time::Instant::now() > deadline {
            let journal =
                run(Command::new("journalctl").args(["-u", "enforcer", "--no-pager", "-n", "80"]));
            panic!(
                "timed out waiting for {what}; the agent's journal:\n{}",
                String::from_utf8_lossy(&journal.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One property of a unit (`systemctl show -p PROP --value UNIT`).
fn show(unit: &str, prop: &str) -> String {
    ok(Command::new("systemctl").args(["show", "-p", prop, "--value", unit]))
        .trim()
        .to_string()
}

/// install.sh as a user runs it, once per test executable.
fn install(dist: &Path) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        ok(Command::new("sh").arg("install.sh").current_dir(dist));
        ok(Command::new("systemctl").arg("daemon-reload"));
    });
}

/// Every path below `roots` (not following symlinks).
fn paths_below(roots: &[&str]) -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.clone());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    for r in roots {
        walk(Path::new(r), &mut out);
    }
    out
}

/// The installed unit file below `root` (any directory level).
fn find_unit(root: &Path) -> Option<PathBuf> {
    paths_below(&[root.to_str().unwrap()])
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "enforcer.service"))
}

/// What install.sh writes outside `root` (the prefix, or DESTDIR), run
/// with `env`; and the unit it installed there.
fn install_into(dist: &Path, root: &Path, env: &[(&str, &str)]) -> (Vec<PathBuf>, String) {
    let watched = ["/etc", "/usr", "/var", "/opt", "/lib"];
    let before = paths_below(&watched);
    ok(Command::new("sh")
        .arg("install.sh")
        .current_dir(dist)
        .envs(env.iter().copied()));
    let after = paths_below(&watched);
    // Only enforcer's files: the guest's own services write meanwhile
    // (podman's CNI lock in /etc/cni).
    let outside: Vec<PathBuf> = after
        .difference(&before)
        .filter(|p| !p.starts_with(root) && p.to_string_lossy().contains("enforcer"))
        .cloned()
        .collect();
    let unit = find_unit(root).unwrap_or_else(|| panic!("no enforcer.service below {root:?}"));
    (outside, std::fs::read_to_string(unit).unwrap())
}

#[test]
fn install_sh_honours_prefix_and_destdir() {
    let Some(dist) = guest("install_sh_honours_prefix_and_destdir") else {
        return;
    };
    // An installation of its own below /opt.
    let prefix = Path::new("/opt/enforcer-prefix-test");
    let _ = std::fs::remove_dir_all(prefix);
    let (outside, unit) = install_into(&dist, prefix, &[("PREFIX", prefix.to_str().unwrap())]);
    assert!(
        outside.is_empty(),
        "PREFIX={} wrote outside it: {outside:?}",
        prefix.display()
    );
    let bin = prefix.join("sbin/enforcer");
    assert!(bin.is_file(), "{bin:?}");
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap()
        .to_string();
    assert!(
        exec.starts_with(&format!("ExecStart={} ", bin.display())),
        "the unit runs the installed binary: {exec}"
    );
    let config = exec
        .split_whitespace()
        .skip_while(|w| *w != "--config")
        .nth(1)
        .expect("--config")
        .to_string();
    assert!(
        config.starts_with(prefix.to_str().unwrap()) && Path::new(&config).is_file(),
        "the unit's policy {config} is installed below the prefix"
    );
    // Installed again (an upgrade): the program is replaced, the policy the
    // operator changed is kept.
    let changed = format!(
        "{}\n# changed by the operator\n",
        std::fs::read_to_string(&config).unwrap()
    );
    std::fs::write(&config, &changed).unwrap();
    std::fs::remove_file(&bin).unwrap();
    install_into(&dist, prefix, &[("PREFIX", prefix.to_str().unwrap())]);
    assert!(bin.is_file(), "the second install put the program back");
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        changed,
        "an existing policy is kept"
    );
    std::fs::remove_dir_all(prefix).unwrap();

    // A package build: staged below DESTDIR, naming the final paths.
    let stage = Path::new("/tmp/enforcer-destdir-test");
    let _ = std::fs::remove_dir_all(stage);
    let (outside, unit) = install_into(
        &dist,
        stage,
        &[("PREFIX", "/usr"), ("DESTDIR", stage.to_str().unwrap())],
    );
    assert!(outside.is_empty(), "DESTDIR wrote outside it: {outside:?}");
    assert!(stage.join("usr/sbin/enforcer").is_file());
    assert!(
        unit.contains("\nExecStart=/usr/sbin/enforcer "),
        "the staged unit names the final path:\n{unit}"
    );
    std::fs::remove_dir_all(stage).unwrap();
}

#[test]
fn systemd_analyze_verifies_and_scores_the_installed_units() {
    let Some(dist) = guest("systemd_analyze_verifies_and_scores_the_installed_units") else {
        return;
    };
    install(&dist);
    // Loads them and builds their start jobs: bad settings, missing
    // executables and ordering cycles (the unit starts early, before
    // multi-user.target) fail here.
    ok(Command::new("systemd-analyze").args([
        "verify",
        "--man=no",
        "/etc/systemd/system/enforcer-groups.service",
        "/etc/systemd/system/enforcer.service",
    ]));
    let out =
        ok(Command::new("systemd-analyze").args(["security", "--no-pager", "enforcer.service"]));
    let exposure =
        enforcer_tests::exposure(&out).unwrap_or_else(|| panic!("no overall exposure in:\n{out}"));
    assert!(exposure <= 4.5, "exposure {exposure} > 4.5:\n{out}");
}

/// Where the unit puts the policy's groups: ExecStart's `--parent`.
fn groups_parent() -> String {
    let exec = show("enforcer", "ExecStart");
    let argv = exec
        .split("argv[]=")
        .nth(1)
        .and_then(|a| a.split(" ;").next())
        .unwrap_or_else(|| panic!("ExecStart: {exec}"));
    let mut words = argv.split_whitespace();
    words.find(|w| *w == "--parent");
    words.next().unwrap_or("").trim_matches('/').to_string()
}

/// The process's cgroup2 path (`/system.slice/...`).
fn cgroup_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("")
        .to_string()
}

/// A TCP connect to 127.0.0.2:9 from a new process in `group`: `err EPERM`
/// when the policy's rule holds (`err ECONNREFUSED` otherwise).
fn connect_from(group: &str) -> String {
    ok(Command::new(installed_enforcer())
        .args(["exec", "-g", &spec(group), "--"])
        .arg(helper_bin())
        .args(["try-connect", "tcp", "127.0.0.2:9"]))
    .trim()
    .to_string()
}

fn installed_enforcer() -> &'static str {
    "/usr/local/sbin/enforcer"
}

fn alive(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

/// The journal's entries of the unit, as JSON objects.
fn journal() -> Vec<serde_json::Value> {
    ok(Command::new("journalctl").args(["-u", "enforcer", "-o", "json", "--no-pager"]))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn test_policy(parent: &str) -> String {
    format!(
        r#"[agent]
metrics = "127.0.0.1:9750"
interval = "1s"
on_exit = "keep"
observe = true
audit_log = "/var/log/enforcer/audit.jsonl"

[group."web"]
"memory.max" = "64M"

[group."web".network]
connect_deny = ["127.0.0.2/32:9"]

# Fires as soon as the workload is in: its journal entry has GROUP= and RULE=.
[[group."web".when]]
metric = "memory_usage_bytes"
above = "1K"
then = ["log"]

# The helper started as nobody goes to web: the agent reads
# /proc/PID/exe of another user's process (CAP_SYS_PTRACE in the unit).
[[classify]]
user = "nobody"
exe = "{helper}"
controllers = ["memory"]
destination = "{parent}/web"
"#,
        helper = helper_bin().display()
    )
}

#[test]
fn the_installed_unit_keeps_workloads_and_rules_through_restart_stop_and_a_crash() {
    let Some(dist) =
        guest("the_installed_unit_keeps_workloads_and_rules_through_restart_stop_and_a_crash")
    else {
        return;
    };
    install(&dist);
    let policy = Path::new("/etc/enforcer/policy.toml");
    let default_policy = std::fs::read_to_string(policy).unwrap();

    // The default policy starts (no BPF-LSM needed): start returns once
    // the agent said READY.
    systemctl_ok(&["start", "enforcer"]);
    assert_eq!(show("enforcer", "ActiveState"), "active");
    let parent = groups_parent();
    let cg2 = v2_mount();
    assert!(
        cg2.join(&parent).join("example").is_dir(),
        "the default policy's group is below {parent}"
    );

    // A process of nobody's that the new policy's [[classify]] rule places.
    let mut nobodys = {
        use std::os::unix::process::CommandExt as _;
        Command::new(helper_bin())
            .args(["sleep", "100000"])
            .uid(enforcer_tests::NOBODY)
            .gid(enforcer_tests::NOBODY)
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let npid = nobodys.id();
    wait_for("nobody's helper to run", Duration::from_secs(10), || {
        std::fs::read_link(format!("/proc/{npid}/exe")).is_ok_and(|e| e == helper_bin())
    });

    // A changed policy, applied by `systemctl reload`; written beside and
    // renamed over, as an editor saves it (the classifier never reads half).
    let staged = policy.with_extension("toml.new");
    std::fs::write(&staged, test_policy(&parent)).unwrap();
    std::fs::rename(&staged, policy).unwrap();
    systemctl_ok(&["reload", "enforcer"]);
    let web = format!("{parent}/web");
    wait_for(
        "the reloaded policy's group",
        Duration::from_secs(20),
        || cg2.join(&web).is_dir(),
    );
    wait_for(
        "the reloaded policy's connect rule",
        Duration::from_secs(20),
        || connect_from(&web) == "err EPERM",
    );

    // A workload in the group, outside the agent's unit.
    let mut workload = Command::new(installed_enforcer())
        .args(["exec", "-g", &spec(&web), "--"])
        .arg(helper_bin())
        .args(["sleep", "100000"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = workload.id();
    wait_for("the workload in its group", Duration::from_secs(10), || {
        cgroup_of(pid) == format!("/{web}")
    });
    let agent_cgroup = show("enforcer", "ControlGroup");
    assert!(
        !cgroup_of(pid).starts_with(&format!("{agent_cgroup}/")),
        "the workload is in the agent's unit {agent_cgroup}: stopping it would kill the workload"
    );

    // Classification under the unit's sandbox: nobody's process, running
    // before the rules arrive, is placed when the classifier starts with
    // them (it classifies every running process once at its start).
    wait_for(
        "nobody's helper classified into web",
        Duration::from_secs(20),
        || cgroup_of(npid) == format!("/{web}"),
    );

    // restart: the workload stays, the rule holds.
    systemctl_ok(&["restart", "enforcer"]);
    assert!(alive(&mut workload), "the workload survived the restart");
    assert_eq!(cgroup_of(pid), format!("/{web}"));
    assert_eq!(connect_from(&web), "err EPERM", "after the restart");

    // stop: the workload stays, the rule holds while no agent runs.
    systemctl_ok(&["stop", "enforcer"]);
    assert_eq!(show("enforcer", "ActiveState"), "inactive");
    assert!(alive(&mut workload), "the workload survived the stop");
    assert!(alive(&mut nobodys), "nobody's process survived the stop");
    assert_eq!(
        connect_from(&web),
        "err EPERM",
        "with on_exit = keep, while stopped"
    );

    // A crash: SIGKILL to the agent; systemd restarts it (Restart=on-failure).
    // The connect is made by a process waiting in the group, at once after
    // the kill: before systemd's RestartSec and the new agent's start.
    systemctl_ok(&["start", "enforcer"]);
    let main: i32 = show("enforcer", "MainPID").parse().unwrap();
    let restarts: u32 = show("enforcer", "NRestarts").parse().unwrap();
    let mut waiting = Command::new(installed_enforcer())
        .args(["exec", "-g", &spec(&web), "--", "/bin/sh", "-c"])
        .arg(format!(
            "read go && exec {} try-connect tcp 127.0.0.2:9",
            helper_bin().display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let wpid = waiting.id();
    wait_for(
        "the waiting process in its group",
        Duration::from_secs(10),
        || cgroup_of(wpid) == format!("/{web}"),
    );
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(main, libc::SIGKILL) }, 0);
    {
        use std::io::Write as _;
        writeln!(waiting.stdin.take().unwrap(), "go").unwrap();
    }
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "err EPERM",
        "with on_exit = keep, right after the crash"
    );
    assert!(alive(&mut workload), "the workload survived the crash");
    wait_for(
        "systemd to restart the agent",
        Duration::from_secs(60),
        || {
            show("enforcer", "ActiveState") == "active"
                && show("enforcer", "MainPID") != main.to_string()
                && show("enforcer", "NRestarts").parse::<u32>().unwrap_or(0) > restarts
        },
    );
    assert!(
        alive(&mut workload),
        "the workload survived the crash-restart"
    );
    assert_eq!(cgroup_of(pid), format!("/{web}"));
    assert_eq!(connect_from(&web), "err EPERM", "after the crash-restart");

    // The journal: README documents GROUP= and RULE= (`journalctl -u
    // enforcer -o verbose`) for the when rule's entry.
    let deadline =
        std::time::Instant::now() + Duration::from_secs(20) * enforcer_tests::time_scale();
    loop {
        let entries = journal();
        let rule_entries: Vec<&serde_json::Value> =
            entries.iter().filter(|e| e["MESSAGE"] == "rule").collect();
        if rule_entries.iter().any(|e| {
            e["GROUP"].as_str().is_some_and(|g| g.ends_with("web")) && e["RULE"].is_string()
        }) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no journal entry of the when rule with GROUP= and RULE= as README documents; \
             the rule's entries: {rule_entries:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The holder's stop is the workloads' stop: systemd ends every process
    // in its cgroup, the delegated groups below it included.
    systemctl_ok(&["stop", "enforcer"]);
    systemctl_ok(&["stop", "enforcer-groups"]);
    let deadline =
        std::time::Instant::now() + Duration::from_secs(30) * enforcer_tests::time_scale();
    while alive(&mut workload) || alive(&mut nobodys) {
        if std::time::Instant::now() > deadline {
            let said = |cmd: &mut Command| {
                let out = run(cmd);
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            };
            let sig = |p: u32| {
                std::fs::read_to_string(format!("/proc/{p}/status"))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.starts_with("Sig") || l.starts_with("State"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            panic!(
                "`systemctl stop enforcer-groups` left the workloads running: {pid} in {} ({}), \
                 {npid} in {} ({});\n{}\n{}",
                cgroup_of(pid),
                sig(pid),
                cgroup_of(npid),
                sig(npid),
                said(Command::new("systemctl").args(["status", "--no-pager", "enforcer-groups"])),
                said(Command::new("journalctl").args([
                    "--no-pager",
                    "-n",
                    "40",
                    "-u",
                    "enforcer-groups"
                ])),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = workload.kill();
    let _ = workload.wait();
    let _ = nobodys.kill();
    let _ = nobodys.wait();
    let _ = run(Command::new(installed_enforcer()).arg("stop"));
    std::fs::write(policy, default_policy).unwrap();
}
