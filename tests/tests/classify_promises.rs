//! README's promises about rule-based classification (root, real kernel),
//! each checked where no other test did: cgrulesengd's options, signals and
//! log lines; the sticky protocol both ways with libcgroup's own tools;
//! `@group` members read at start and again on SIGUSR2, and by the agent when
//! /etc/group changes; rules files in cgrules.d; scripts matched by their
//! path; running processes classified at start; children forked before the
//! move following their parent; a stopped engine continuing what it holds;
//! execs no rule can match never reported; `[[classify]]`'s group, ignore
//! and hold.
//!
//! They run one at a time: a rules daemon serves the one
//! `/var/run/cgred.socket`.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use enforcer::classify::engine::{Engine, EngineOptions};
use enforcer_tests::classify::{
    Daemon, Proc, Scratch, TestGroup, TestUser, can_add_users, group_of, reaches, shows,
};
use enforcer_tests::compat::{Side, real_create};
use enforcer_tests::layout;
use enforcer_tests::{AgentRun, GroupGuard, enforcer_bin, time_scale, wait_for};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `program ARGS` with these ids (groups: the supplementary groups).
/// Whether group membership can be changed here (`gpasswd`); says why not.
fn can_change_members(test: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
            .any(|d| d.join("gpasswd").exists())
    });
    if !found {
        enforcer_tests::skipped(test, "no gpasswd to add a user to a group here");
    }
    found
}

/// `gpasswd -a USER GROUP`: /etc/group changes.
fn add_member(user: &TestUser, group: &TestGroup) {
    let st = Command::new("gpasswd")
        .args(["-a", &user.name, &group.name])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "gpasswd -a {} {}", user.name, group.name);
}

fn run_as(uid: u32, gid: u32, groups: &[u32], program: &Path, args: &[&str]) -> Proc {
    let mut c = Command::new(program);
    c.args(args).stdout(Stdio::null());
    let groups: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: the child only sets its own credentials before it execs.
    unsafe {
        c.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Proc(c.spawn().expect("starting a program with other ids"))
}

fn as_root(program: &Path, args: &[&str]) -> Proc {
    Proc(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Our `cgrulesengd` (a link named so) with its rules in `conf` and `dir`,
/// logging to a file, with `extra` options; waits for its start line.
fn daemon(s: &Scratch, conf: &Path, dir: &Path, extra: &[&str]) -> Daemon {
    let log = s.0.join(enforcer_tests::unique_name("cgre.log"));
    let link = s.0.join("cgrulesengd");
    let _ = std::os::unix::fs::symlink(enforcer_bin(), &link);
    let child = Command::new(&link)
        .args(["-n", "-v", "-v", "-f"])
        .arg(&log)
        .args(extra)
        .env("ENFORCER_CGRULES_CONF", conf)
        .env("ENFORCER_CGRULES_DIR", dir)
        .stdin(Stdio::null())
        .spawn()
        .expect("starting cgrulesengd");
    let d = Daemon { child, log };
    wait_log(&d, "Started the CGroup Rules Engine Daemon.");
    d
}

fn wait_log(d: &Daemon, line: &str) {
    wait_for(
        &format!("{line:?} in the daemon's log"),
        Duration::from_secs(20),
        || d.log_text().contains(line),
    );
}

/// Waits until the daemon has the rules it read again on SIGUSR2 in force:
/// it says "Reloading rules configuration" before reading them and lists
/// them once they are (a process started in between meets the old rules).
fn wait_reloaded(d: &Daemon) {
    wait_for(
        "the reloaded rules listed in the daemon's log",
        Duration::from_secs(20),
        || {
            d.log_text()
                .rsplit_once("Reloading rules configuration")
                .is_some_and(|(_, after)| after.contains("Rule: "))
        },
    );
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

/// Where `pid` stays for a while (it must not be moved): its group after
/// 800 ms, an observation window rather than a wait.
fn stays(pid: u32, controller: &str) -> Option<String> {
    std::thread::sleep(Duration::from_millis(800));
    group_of(pid, controller)
}

fn first_child(pid: u32) -> u32 {
    let mut kid = None;
    wait_for("a child", Duration::from_secs(10), || {
        kid = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|k| k.split_whitespace().next().and_then(|k| k.parse().ok()));
        kid.is_some()
    });
    kid.unwrap()
}

/// The process state letter of /proc/PID/stat (`T`: stopped).
fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next())
        .unwrap_or('?')
}

#[test]
fn cgrulesengd_takes_libcgroups_options_and_sigusr2_rereads_the_rules() {
    let _one = serial();
    let s = Scratch::new();
    let link = s.0.join("cgrulesengd");
    std::os::unix::fs::symlink(enforcer_bin(), &link).unwrap();
    let run = |args: &[&str]| Command::new(&link).args(args).output().unwrap();
    // -h: the usage, every option listed.
    let out = run(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    for opt in [
        "-q",
        "-v",
        "-f <path>",
        "-s[facility]",
        "-n",
        "-d",
        "-Q",
        "-u <user>",
        "-g <group>",
    ] {
        assert!(
            text(&out.stdout).contains(opt),
            "{opt}: {}",
            text(&out.stdout)
        );
    }
    // Bad options and names, as libcgroup answers them.
    let out = run(&["-x"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("Usage : cgrulesengd"), "{out:?}");
    let out = run(&["-sX"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("Unknown syslog facility: X"),
        "{out:?}"
    );
    let out = run(&["-u", "enf-no-such-user"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(
        text(&out.stderr).contains("Cannot find user enf-no-such-user"),
        "{out:?}"
    );
    let out = run(&["-g", "enf-no-such-group"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    let (d1, d2) = (GroupGuard::new("cgre-a"), GroupGuard::new("cgre-b"));
    real_create(&format!("cpu:{}", d1.name));
    real_create(&format!("cpu:{}", d2.name));
    let (p1, p2) = (
        format!("enfopta{}", std::process::id()),
        format!("enfoptb{}", std::process::id()),
    );
    let (prog1, prog2) = (s.program(&p1), s.program(&p2));
    let rules = s.write("cgrules.conf", &format!("*:{p1} cpu {}\n", d1.name));
    let none = s.0.join("none.d");

    // -n -v -v -f LOG, -u/-g: the socket's owner; the log lines.
    let d = daemon(&s, &rules, &none, &["-u", "nobody", "-g", "nogroup"]);
    let sock = std::fs::metadata("/var/run/cgred.socket").expect("the sticky socket");
    assert_eq!(
        (sock.uid(), sock.gid()),
        (65534, 65534),
        "-u nobody -g nogroup"
    );
    assert!(
        d.log_text().contains("Proceeding with PID"),
        "{}",
        d.log_text()
    );
    let a = as_root(&prog1, &["30"]);
    assert!(reaches(a.pid(), "cpu", &d1.name), "{}", d.log_text());
    // SIGUSR2: the rules file is read again.
    std::fs::write(&rules, format!("*:{p2} cpu {}\n", d2.name)).unwrap();
    signal(d.child.id(), nix::sys::signal::Signal::SIGUSR2);
    wait_reloaded(&d);
    let b = as_root(&prog2, &["30"]);
    assert!(reaches(b.pid(), "cpu", &d2.name), "{}", d.log_text());
    let log_path = d.log.clone();
    drop(d);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("Stopped CGroup Rules Engine Daemon at"),
        "{log}"
    );

    // -Q: no log at all, while it still classifies.
    let quiet = s.0.join("quiet.log");
    let mut q = Command::new(&link)
        .args(["-n", "-Q", "-f"])
        .arg(&quiet)
        .env("ENFORCER_CGRULES_CONF", &rules)
        .env("ENFORCER_CGRULES_DIR", &none)
        .spawn()
        .unwrap();
    wait_for(
        "the socket of the -Q daemon",
        Duration::from_secs(20),
        || std::fs::metadata("/var/run/cgred.socket").is_ok_and(|m| m.uid() == 0),
    );
    let c = as_root(&prog2, &["30"]);
    assert!(reaches(c.pid(), "cpu", &d2.name));
    assert_eq!(
        std::fs::read_to_string(&quiet).unwrap_or_default(),
        "",
        "-Q logs nothing"
    );
    signal(q.id(), nix::sys::signal::Signal::SIGTERM);
    assert!(q.wait().unwrap().success());

    // -d: -v -v -n -f -, the log on stdout; without -n it forks away and the
    // command returns.
    let mut dbg = Command::new(&link)
        .arg("-d")
        .env("ENFORCER_CGRULES_CONF", &rules)
        .env("ENFORCER_CGRULES_DIR", &none)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = dbg.stdout.take().unwrap();
    let started = std::thread::spawn(move || {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        while !all.contains("Started the CGroup Rules Engine Daemon.") {
            match std::io::Read::read(&mut out, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        all
    });
    let deadline = Instant::now() + Duration::from_secs(20) * time_scale();
    while !started.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(dbg.id(), nix::sys::signal::Signal::SIGTERM);
    assert!(dbg.wait().unwrap().success());
    let all = started.join().unwrap();
    assert!(all.contains("Not using daemon mode"), "-d: {all}");

    let forked = s.0.join("forked.log");
    let _forked_guard = EndsWhoever(forked.clone());
    let out = Command::new(&link)
        .args(["-v", "-v", "-f"])
        .arg(&forked)
        .env("ENFORCER_CGRULES_CONF", &rules)
        .env("ENFORCER_CGRULES_DIR", &none)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut pid = None;
    wait_for("the forked daemon", Duration::from_secs(20), || {
        let t = std::fs::read_to_string(&forked).unwrap_or_default();
        pid = t
            .split("Proceeding with PID ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse::<u32>().ok());
        pid.is_some() && t.contains("Started the CGroup Rules Engine Daemon.")
    });
    let pid = pid.unwrap();
    assert_ne!(pid, 0);
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    wait_for("the forked daemon to stop", Duration::from_secs(10), || {
        std::fs::read_to_string(&forked)
            .unwrap_or_default()
            .contains("Stopped CGroup Rules Engine Daemon")
    });
}

/// Sends SIGTERM to every process whose command line names `0` (a daemon
/// that forked away), when dropped.
struct EndsWhoever(std::path::PathBuf);

impl Drop for EndsWhoever {
    fn drop(&mut self) {
        let needle = self.0.to_string_lossy().into_owned();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
}

/// Empty stand-ins for libcgroup's configuration where the host has none
/// (Debian's daemon will not start without all three), removed when dropped.
/// The test's own rules are bind-mounted over them in a mount namespace of
/// the daemon's: other rules daemons and agents on the host see no rules.
struct EtcPlaceholders(Vec<&'static str>);

const LIBCGROUP_CONFIG: [(&str, bool); 3] = [
    ("/etc/cgrules.conf", false),
    ("/etc/cgconfig.conf", false),
    ("/etc/cgconfig.d", true),
];

impl EtcPlaceholders {
    fn new() -> EtcPlaceholders {
        let mut made = Vec::new();
        for (p, dir) in LIBCGROUP_CONFIG {
            if Path::new(p).symlink_metadata().is_err() {
                if dir {
                    std::fs::create_dir(p).unwrap();
                } else {
                    std::fs::write(p, "").unwrap();
                }
                made.push(p);
            }
        }
        EtcPlaceholders(made)
    }
}

impl Drop for EtcPlaceholders {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// Debian's cgrulesengd with `rules` as its /etc/cgrules.conf, in a mount
/// namespace of its own.
fn libcgroup_daemon(s: &Scratch, rules: &Path, log: &Path) -> Child {
    let conf_d = s.0.join("cgconfig.d");
    std::fs::create_dir_all(&conf_d).unwrap();
    let conf = s.write("cgconfig.conf", "");
    let script = format!(
        "mount --bind '{}' /etc/cgrules.conf && mount --bind '{}' /etc/cgconfig.conf && \
         mount --bind '{}' /etc/cgconfig.d && exec /usr/sbin/cgrulesengd -n -v -v -f '{}'",
        rules.display(),
        conf.display(),
        conf_d.display(),
        log.display()
    );
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `cgexec [--sticky] -g cpu:GROUP sh -c "PROG 30 & wait"` by `side`: the
/// child that runs PROG.
fn child_under_cgexec(side: Side, sticky: bool, group: &str, prog: &Path) -> (Proc, u32) {
    let mut args = Vec::new();
    if sticky {
        args.push("--sticky".to_string());
    }
    args.extend([
        "-g".to_string(),
        format!("cpu:{group}"),
        "sh".into(),
        "-c".into(),
        format!("{} 30 & wait", prog.display()),
    ]);
    let p = Proc(
        enforcer_tests::compat::command(side, "cgexec", &args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let kid = first_child(p.pid());
    (p, kid)
}

#[test]
fn sticky_works_between_libcgroups_tools_and_enforcers() {
    const TEST: &str = "sticky_works_between_libcgroups_tools_and_enforcers";
    let _one = serial();
    if !Path::new("/usr/sbin/cgrulesengd").exists() || !Path::new("/usr/bin/cgexec").exists() {
        enforcer_tests::skipped(
            TEST,
            "no libcgroup tools here (cargo xtask setup installs cgroup-tools)",
        );
        return;
    }
    if layout::skip_without(TEST, &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let (dest, here) = (GroupGuard::new("stk-dest"), GroupGuard::new("stk-here"));
    real_create(&format!("cpu:{}", dest.name));
    real_create(&format!("cpu:{}", here.name));
    let name = format!("enfstk{}", std::process::id());
    let prog = s.program(&name);
    let rule = format!("*:{name} cpu {}\n", dest.name);
    let here_path = format!("/{}", here.name);

    // Our daemon, libcgroup's cgexec.
    let rules = s.write("cgrules.conf", &rule);
    let d = daemon(&s, &rules, &s.0.join("none.d"), &[]);
    let (_free, kid) = child_under_cgexec(Side::Real, false, &here.name, &prog);
    assert!(reaches(kid, "cpu", &dest.name), "control: {}", d.log_text());
    let (_sticky, kid) = child_under_cgexec(Side::Real, true, &here.name, &prog);
    assert_eq!(
        stays(kid, "cpu").as_deref(),
        Some(here_path.as_str()),
        "{}",
        d.log_text()
    );
    drop(d);

    // libcgroup's daemon, our cgexec: the registered process stays.
    let _etc = EtcPlaceholders::new();
    let _ = std::fs::remove_file("/var/run/cgred.socket");
    let log = s.0.join("libcgroup.log");
    let mut theirs = libcgroup_daemon(&s, &rules, &log);
    let theirs_guard = Killer(&mut theirs);
    wait_for("libcgroup's daemon", Duration::from_secs(20), || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Started the CGroup Rules Engine Daemon")
            && Path::new("/var/run/cgred.socket").exists()
    });
    let libcgroup_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let (_free, kid) = child_under_cgexec(Side::Ours, false, &here.name, &prog);
    assert!(
        reaches(kid, "cpu", &dest.name),
        "control: libcgroup's daemon moves the child:\n{}",
        libcgroup_log()
    );
    let (_sticky, kid) = child_under_cgexec(Side::Ours, true, &here.name, &prog);
    assert_eq!(
        stays(kid, "cpu").as_deref(),
        Some(here_path.as_str()),
        "{}",
        libcgroup_log()
    );
    drop(theirs_guard);
}

/// Sends SIGTERM and waits, when dropped.
struct Killer<'a>(&'a mut Child);

impl Drop for Killer<'_> {
    fn drop(&mut self) {
        // SAFETY-free: signals our own child.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn group_members_are_read_at_start_and_reread_on_sigusr2() {
    let _one = serial();
    const TEST: &str = "group_members_are_read_at_start_and_reread_on_sigusr2";
    if !can_add_users(TEST) || !can_change_members(TEST) || layout::skip_without(TEST, &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("members");
    real_create(&format!("cpu:{}", dest.name));
    let staff = TestGroup::new();
    let user = TestUser::new(None);
    let prog = s.program("enfmember");
    let rules = s.write(
        "cgrules.conf",
        &format!("@{} cpu {}\n", staff.name, dest.name),
    );
    let d = daemon(&s, &rules, &s.0.join("none.d"), &[]);
    // The group as effective gid matches, membership or not.
    let by_gid = run_as(user.uid, staff.gid, &[], &prog, &["30"]);
    assert!(reaches(by_gid.pid(), "cpu", &dest.name), "{}", d.log_text());
    // Not a member when the rules were read.
    let here = group_of(std::process::id(), "cpu");
    let before = run_as(user.uid, user.gid, &[user.gid], &prog, &["30"]);
    assert_eq!(stays(before.pid(), "cpu"), here, "not a member yet");
    add_member(&user, &staff);
    // Members are read when the rules are: not yet...
    let still = run_as(user.uid, user.gid, &[user.gid, staff.gid], &prog, &["30"]);
    assert_eq!(
        stays(still.pid(), "cpu"),
        here,
        "members are read at load, not at match"
    );
    // ...and on SIGUSR2.
    signal(d.child.id(), nix::sys::signal::Signal::SIGUSR2);
    wait_reloaded(&d);
    let after = run_as(user.uid, user.gid, &[user.gid, staff.gid], &prog, &["30"]);
    assert!(reaches(after.pid(), "cpu", &dest.name), "{}", d.log_text());
}

/// `enforcer run` with `policy`, its rules files `conf` and `dir`, logging
/// at info level to `agent.log`; waits until it serves metrics.
fn agent_with_rules(run: &mut AgentRun, policy: &Path, conf: &Path, dir: &Path) {
    let log = std::fs::File::create(run.file("agent.log")).unwrap();
    let child = run
        .command(None, Some(policy), &[])
        .env("ENFORCER_CGRULES_CONF", conf)
        .env("ENFORCER_CGRULES_DIR", dir)
        .env("ENFORCER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    run.child = Some(child);
    wait_for(
        "the agent to serve metrics",
        Duration::from_secs(60),
        || run.metrics().is_some(),
    );
}

#[test]
fn the_agent_picks_up_rules_and_group_members_within_a_second() {
    let _one = serial();
    const TEST: &str = "the_agent_picks_up_rules_and_group_members_within_a_second";
    if layout::skip_without_cgroup2(TEST)
        || !can_add_users(TEST)
        || layout::skip_without(TEST, &["cpu"])
    {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("agentrules");
    real_create(&format!("cpu:{}", dest.name));
    let staff = TestGroup::new();
    let user = TestUser::new(None);
    let prog = s.program("enfagentm");
    let conf = s.write("cgrules.conf", "");
    let dir = s.0.join("rules.d");
    std::fs::create_dir_all(&dir).unwrap();
    let g = GroupGuard::new("agentrules-p");
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(&policy, format!("[group.\"{}\"]\n", g.name)).unwrap();
    agent_with_rules(&mut run, &policy, &conf, &dir);
    // No rules: nothing loaded (given a few of its one-second checks).
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !run.log().contains("exec classification started"),
        "{}",
        run.log()
    );
    // A rule written to cgrules.conf: loaded within a second (and a
    // scheduling slack).
    std::fs::write(&conf, format!("@{} cpu {}\n", staff.name, dest.name)).unwrap();
    let t = Instant::now();
    wait_for("the rules to load", Duration::from_secs(5), || {
        run.log().contains("exec classification started")
    });
    eprintln!("rules loaded {:?} after the edit", t.elapsed());
    let here = group_of(std::process::id(), "cpu");
    let before = run_as(user.uid, user.gid, &[user.gid], &prog, &["30"]);
    assert_eq!(stays(before.pid(), "cpu"), here, "not a member yet");
    if !can_change_members(TEST) {
        return;
    }
    // /etc/group changes: the members are read again.
    add_member(&user, &staff);
    wait_for("the rules to be reloaded", Duration::from_secs(5), || {
        run.log().contains("classification rules reloaded")
    });
    let after = run_as(user.uid, user.gid, &[user.gid, staff.gid], &prog, &["30"]);
    assert!(reaches(after.pid(), "cpu", &dest.name), "{}", run.log());
}

#[test]
fn rules_in_the_cgrules_d_directory_apply_too() {
    let _one = serial();
    if layout::skip_without("rules_in_the_cgrules_d_directory_apply_too", &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let (d1, d2) = (GroupGuard::new("rulesd-a"), GroupGuard::new("rulesd-b"));
    real_create(&format!("cpu:{}", d1.name));
    real_create(&format!("cpu:{}", d2.name));
    let (p1, p2) = (
        format!("enfconf{}", std::process::id()),
        format!("enfdird{}", std::process::id()),
    );
    let conf = s.write("main.conf", &format!("*:{p1} cpu {}\n", d1.name));
    let dir = s.0.join("my.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("10-more.conf"),
        format!("*:{p2} cpu {}\n", d2.name),
    )
    .unwrap();
    let _d = daemon(&s, &conf, &dir, &[]);
    let a = as_root(&s.program(&p1), &["30"]);
    let b = as_root(&s.program(&p2), &["30"]);
    assert!(reaches(a.pid(), "cpu", &d1.name), "the file's rule");
    assert!(reaches(b.pid(), "cpu", &d2.name), "the directory's rule");
}

#[test]
fn a_script_is_matched_by_its_path() {
    let _one = serial();
    if layout::skip_without("a_script_is_matched_by_its_path", &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("script");
    real_create(&format!("cpu:{}", dest.name));
    let name = format!("enfscript{}", std::process::id());
    let script = s.write(&name, "#!/bin/sh\nsleep 30\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rules = s.write(
        "cgrules.conf",
        &format!("*:{} cpu {}\n", script.display(), dest.name),
    );
    let d = daemon(&s, &rules, &s.0.join("none.d"), &[]);
    let p = as_root(&script, &[]);
    assert!(reaches(p.pid(), "cpu", &dest.name), "{}", d.log_text());
}

#[test]
fn running_processes_are_classified_when_the_engine_starts() {
    let _one = serial();
    const TEST: &str = "running_processes_are_classified_when_the_engine_starts";
    if layout::skip_without(TEST, &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("atstart");
    real_create(&format!("cpu:{}", dest.name));
    let name = format!("enfearly{}", std::process::id());
    let prog = s.program(&name);
    let early = as_root(&prog, &["30"]);
    let rules = s.write("cgrules.conf", &format!("*:{name} cpu {}\n", dest.name));
    let d = daemon(&s, &rules, &s.0.join("none.d"), &[]);
    assert!(
        reaches(early.pid(), "cpu", &dest.name),
        "cgrulesengd: {}",
        d.log_text()
    );
    drop(d);

    if layout::skip_without_cgroup2(TEST) {
        return;
    }
    let dest2 = GroupGuard::new("atstart-agent");
    real_create(&format!("cpu:{}", dest2.name));
    let name2 = format!("enfearlyb{}", std::process::id());
    let early2 = as_root(&s.program(&name2), &["30"]);
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[classify]]\ncomm = \"{name2}\"\ncontrollers = [\"cpu\"]\ndestination = \"{}\"\n",
            dest2.name
        ),
    )
    .unwrap();
    agent_with_rules(
        &mut run,
        &policy,
        &s.0.join("none.conf"),
        &s.0.join("none.d"),
    );
    assert!(
        reaches(early2.pid(), "cpu", &dest2.name),
        "the agent: {}",
        run.log()
    );
}

#[test]
fn children_forked_before_the_move_follow_their_parent() {
    let _one = serial();
    if layout::skip_without(
        "children_forked_before_the_move_follow_their_parent",
        &["cpu"],
    ) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("follow");
    real_create(&format!("cpu:{}", dest.name));
    let name = format!("enffork{}", std::process::id());
    let script = s.write(&name, "#!/bin/sh\nsleep 30 &\nwait\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rules = s.write("cgrules.conf", &format!("*:{name} cpu {}\n", dest.name));
    let d = daemon(&s, &rules, &s.0.join("none.d"), &[]);
    // The engine stopped: the script starts and forks before it is placed.
    signal(d.child.id(), nix::sys::signal::Signal::SIGSTOP);
    let p = as_root(&script, &[]);
    let kid = first_child(p.pid());
    let old = group_of(kid, "cpu");
    assert_ne!(old.as_deref(), Some(format!("/{}", dest.name).as_str()));
    signal(d.child.id(), nix::sys::signal::Signal::SIGCONT);
    assert!(reaches(p.pid(), "cpu", &dest.name), "{}", d.log_text());
    assert!(
        reaches(kid, "cpu", &dest.name),
        "the child forked meanwhile: {}",
        d.log_text()
    );
}

fn rules_for(s: &Scratch, text: &str) -> enforcer::classify::rules::RuleSet {
    let f = s.write(&enforcer_tests::unique_name("rules"), text);
    enforcer::classify::rules::load(&f, &s.0.join("none.d")).unwrap()
}

#[test]
fn a_stopped_engine_continues_the_processes_it_holds() {
    let _one = serial();
    if layout::skip_without(
        "a_stopped_engine_continues_the_processes_it_holds",
        &["cpu"],
    ) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("held");
    real_create(&format!("cpu:{}", dest.name));
    let name = format!("enfheld{}", std::process::id());
    let prog = s.program(&name);
    let rules = rules_for(&s, &format!("*:{name} cpu {}\n", dest.name));
    let engine = Engine::new(
        rules,
        EngineOptions {
            hold: true,
            socket: None,
        },
        Box::new(|_, _| {}),
    )
    .expect("the exec engine");
    // Reported and held by the kernel; nobody reads the report.
    let p = as_root(&prog, &["30"]);
    wait_for("the process to be held", Duration::from_secs(10), || {
        state(p.pid()) == 'T'
    });
    drop(engine);
    wait_for("the process to run again", Duration::from_secs(10), || {
        state(p.pid()) != 'T'
    });
}

#[test]
fn an_exec_no_rule_can_match_is_never_reported() {
    let _one = serial();
    if layout::skip_without("an_exec_no_rule_can_match_is_never_reported", &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("unreported");
    real_create(&format!("cpu:{}", dest.name));
    let name = format!("enfreport{}", std::process::id());
    let prog = s.program(&name);
    let other = s.program(&format!("enfother{}", std::process::id()));
    let rules = rules_for(&s, &format!("*:{name} cpu {}\n", dest.name));
    let mut engine = Engine::new(
        rules,
        EngineOptions {
            hold: false,
            socket: None,
        },
        Box::new(|_, _| {}),
    )
    .expect("the exec engine");
    let before = engine.stats().kernel;
    for _ in 0..20 {
        let st = Command::new(&other).status().unwrap();
        assert!(st.success());
    }
    engine.poll_once(Duration::from_millis(100));
    let after = engine.stats();
    assert!(
        after.kernel.seen >= before.seen + 20,
        "the execs were seen: {after:?}"
    );
    assert_eq!(
        after.kernel.reported, before.reported,
        "none reported: {after:?}"
    );
    assert_eq!(after.events, 0, "{after:?}");
    let p = as_root(&prog, &["30"]);
    let mut placed = false;
    let deadline = Instant::now() + Duration::from_secs(10) * time_scale();
    while !placed && Instant::now() < deadline {
        engine.poll_once(Duration::from_millis(100));
        placed = shows(
            &std::fs::read_to_string(format!("/proc/{}/cgroup", p.pid())).unwrap_or_default(),
            "cpu",
            &dest.name,
        );
    }
    assert!(
        placed,
        "the matching exec was reported and placed: {:?}",
        engine.stats()
    );
    assert_eq!(engine.stats().kernel.reported, before.reported + 1);
}

#[test]
fn the_agent_reads_group_ignore_and_hold_from_classify_tables() {
    let _one = serial();
    const TEST: &str = "the_agent_reads_group_ignore_and_hold_from_classify_tables";
    if layout::skip_without_cgroup2(TEST)
        || !can_add_users(TEST)
        || layout::skip_without(TEST, &["cpu"])
    {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("tables");
    real_create(&format!("cpu:{}", dest.name));
    let staff = TestGroup::new();
    let user = TestUser::new(None);
    let kept = format!("enfkept{}", std::process::id());
    let woke = format!("enfwoke{}", std::process::id());
    let (kept_prog, woke_prog) = (s.program(&kept), s.program(&woke));
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[classify]]\ncomm = \"{kept}\"\nignore = true\n\n\
             [[classify]]\ncomm = \"{kept}\"\ncontrollers = [\"cpu\"]\ndestination = \"{d}\"\n\n\
             [[classify]]\ngroup = \"{g}\"\ncomm = \"{woke}\"\ncontrollers = [\"cpu\"]\n\
             destination = \"{d}\"\nhold = true\n",
            d = dest.name,
            g = staff.name
        ),
    )
    .unwrap();
    agent_with_rules(
        &mut run,
        &policy,
        &s.0.join("none.conf"),
        &s.0.join("none.d"),
    );
    wait_for("classification to start", Duration::from_secs(30), || {
        run.log().contains("exec classification started")
    });
    // ignore: the first matching table keeps the process where it is.
    let here = group_of(std::process::id(), "cpu");
    let k = as_root(&kept_prog, &["30"]);
    assert_eq!(stays(k.pid(), "cpu"), here, "ignore = true");
    // group (as a member) and hold: placed before its first instruction.
    for _ in 0..5 {
        let out = {
            let mut c = Command::new(&woke_prog);
            // The table's group as the effective gid.
            let (uid, gid, groups) = (user.uid, staff.gid, vec![staff.gid]);
            // SAFETY: the child only sets its own credentials before it execs.
            unsafe {
                c.pre_exec(move || {
                    if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            c.output().unwrap()
        };
        let seen = text(&out.stdout);
        assert!(
            shows(&seen, "cpu", &dest.name),
            "woke in its old group: {seen}\n{}",
            run.log()
        );
    }
}

/// README: "A script found running at start, or named to `cgclassify`, is
/// matched as its interpreter (libcgroup reads the script from argv, which
/// the process writes)." The rule naming the script's path comes first and
/// must not match; the one naming the interpreter (what /proc/PID/exe says,
/// `/usr/bin/dash` for `#!/bin/sh` on Debian) places it. Both rules name a
/// throwaway user, so no other process on the host matches them.
#[test]
fn a_running_script_is_matched_as_its_interpreter_at_start_and_by_cgclassify() {
    let _one = serial();
    const TEST: &str = "a_running_script_is_matched_as_its_interpreter_at_start_and_by_cgclassify";
    if !can_add_users(TEST) || layout::skip_without(TEST, &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let by_path = GroupGuard::new("script-path");
    let by_interp = GroupGuard::new("script-interp");
    real_create(&format!("cpu:{}", by_path.name));
    real_create(&format!("cpu:{}", by_interp.name));
    let user = TestUser::new(None);
    let name = format!("enfrunscript{}", std::process::id());
    // `exit` after the sleep: the shell forks it rather than exec it.
    let script = s.write(&name, "#!/bin/sh\nsleep 30\nexit 0\n");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = std::fs::canonicalize(&script).unwrap();
    let early = run_as(user.uid, user.gid, &[user.gid], &script, &[]);
    let interp = std::fs::read_link(format!("/proc/{}/exe", early.pid())).unwrap();
    assert_ne!(interp, script, "a script's exe is its interpreter");
    let rules = s.write(
        "cgrules.conf",
        &format!(
            "{u}:{} cpu {}\n{u}:{} cpu {}\n",
            script.display(),
            by_path.name,
            interp.display(),
            by_interp.name,
            u = user.name
        ),
    );
    let none = s.0.join("none.d");
    let here = group_of(early.pid(), "cpu");
    assert_ne!(
        here.as_deref(),
        Some(format!("/{}", by_interp.name).as_str())
    );

    // Found running when the rules daemon starts.
    let d = daemon(&s, &rules, &none, &[]);
    assert!(
        reaches(early.pid(), "cpu", &by_interp.name),
        "the script found at start is matched as {} (now in {:?}): {}",
        interp.display(),
        group_of(early.pid(), "cpu"),
        d.log_text()
    );
    drop(d);

    // Named to cgclassify (no daemon running).
    let later = run_as(user.uid, user.gid, &[user.gid], &script, &[]);
    assert_eq!(stays(later.pid(), "cpu"), here, "nothing moved it yet");
    let mut c =
        enforcer_tests::compat::command(Side::Ours, "cgclassify", &[later.pid().to_string()]);
    c.env("ENFORCER_CGRULES_CONF", &rules)
        .env("ENFORCER_CGRULES_DIR", &none);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        reaches(later.pid(), "cpu", &by_interp.name),
        "cgclassify matches a running script as {} (now in {:?}): {out:?}",
        interp.display(),
        group_of(later.pid(), "cpu"),
    );
}
