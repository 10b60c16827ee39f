//! Issue 18, what a local or delegated user can do to the agent at scale
//! (root, real kernel): hold its metrics port, fill its syscall map, fill
//! its counting maps from a delegated subtree, outrun its reclaim. Each
//! test fails on the code before the fix (see the finding it names).

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use enforcer_tests::classify::{Proc, Scratch, TestUser, can_add_users, group_of, reaches};
use enforcer_tests::compat::real_create;
use enforcer_tests::layout::{self, skip_without_cgroup2, v2_dir};
use enforcer_tests::{AgentRun, GroupGuard, NOBODY, enforcer_ok, helper_bin, wait_for, wait_until};

/// `program ARGS`, first moved into the cgroup2 directory `dir` (if any),
/// then as `uid`/`gid` (no supplementary groups).
fn spawn_as(
    dir: Option<std::path::PathBuf>,
    uid: u32,
    gid: u32,
    program: &std::path::Path,
    args: &[&str],
) -> Command {
    let mut c = Command::new(program);
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
    let procs =
        dir.map(|d| std::ffi::CString::new(d.join("cgroup.procs").to_str().unwrap()).unwrap());
    // SAFETY: between fork and exec the child only writes its pid into a
    // cgroup and drops its credentials, async-signal-safe calls all.
    unsafe {
        c.pre_exec(move || {
            if let Some(p) = &procs {
                let fd = libc::open(p.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn first_line(p: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufReader::new(p.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

/// Finding 3 of issue 18: ~1,000 idle connections to the metrics port took
/// every descriptor of an agent at systemd's 1,024: 4 of 5 new processes of
/// a user with a `[[classify]]` rule stayed where they were (nothing
/// logged), reload and the audit log's reopen failed, the agent spun.
#[test]
fn metrics_connections_cannot_starve_classification_or_reload() {
    const TEST: &str = "metrics_connections_cannot_starve_classification_or_reload";
    if skip_without_cgroup2(TEST) || layout::skip_without(TEST, &["cpu"]) || !can_add_users(TEST) {
        return;
    }
    let dest = GroupGuard::new("hs-cls");
    real_create(&format!("cpu:{}", dest.name));
    let user = TestUser::new(None);
    let s = Scratch::new();
    let prog = s.program(&format!("enfhs{}", std::process::id()));
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[classify]]\nuser = \"{}\"\ncontrollers = [\"cpu\"]\ndestination = \"{}\"\n",
            user.name, dest.name
        ),
    )
    .unwrap();
    let log = std::fs::File::create(run.file("agent.log")).unwrap();
    let mut cmd = run.command(None, Some(&policy), &[]);
    cmd.env("ENFORCER_CGRULES_CONF", s.0.join("none.conf"))
        .env("ENFORCER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log);
    // A soft and hard limit of 1,024 descriptors, as in a container whose
    // hard limit is systemd's soft one: raising it is no way out here.
    // SAFETY: setrlimit in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1024,
                rlim_max: 1024,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run.child = Some(cmd.spawn().unwrap());
    wait_for("classification to start", Duration::from_secs(60), || {
        run.log().contains("exec classification started") && run.metrics().is_some()
    });

    let addr = format!("127.0.0.1:{}", run.port);
    let mut flood = Proc(
        spawn_as(
            None,
            NOBODY,
            NOBODY,
            &helper_bin(),
            &["hold-conns", &addr, "1100", "30"],
        )
        .spawn()
        .unwrap(),
    );
    let held = first_line(&mut flood.0);
    eprintln!("nobody: {held}");

    let mut stayed = Vec::new();
    for _ in 0..5 {
        let p = Proc(
            spawn_as(None, user.uid, user.gid, &prog, &["30"])
                .spawn()
                .unwrap(),
        );
        if !reaches(p.pid(), "cpu", &dest.name) {
            stayed.push((p.pid(), group_of(p.pid(), "cpu")));
        }
    }
    assert!(
        stayed.is_empty(),
        "not classified: {stayed:?}\n{}",
        run.log()
    );

    let reloads = run.log().matches("policy reloaded").count();
    enforcer_ok(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    wait_for("the reload", Duration::from_secs(10), || {
        let log = run.log();
        log.matches("policy reloaded").count() > reloads
            || log.contains("reload failed")
            || log.contains("invalid policy")
    });
    let log = run.log();
    assert!(
        log.matches("policy reloaded").count() > reloads
            && !log.contains("could not reopen the audit log"),
        "{log}"
    );
    drop(flood);
    wait_until("a scrape after the flood", || run.metrics().is_some());
}

/// `stats --json` of `group`: its syscall calls by name.
fn calls(run: &AgentRun, group: &str, name: &str) -> Option<u64> {
    run.stats(group)["syscalls"]["by_name"][name].as_u64()
}

/// Finding 7 of issue 18: a process calling syscall numbers 500..1.1M
/// filled SYSCALLS (one key per number) and every other group's new counts
/// stopped. Invalid numbers now share one key.
#[test]
fn invalid_syscall_numbers_cannot_fill_the_syscall_map() {
    const TEST: &str = "invalid_syscall_numbers_cannot_fill_the_syscall_map";
    if skip_without_cgroup2(TEST) {
        return;
    }
    let (a, b) = (GroupGuard::new("hs-sysa"), GroupGuard::new("hs-sysb"));
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{}\"]\n\"memory.max\" = \"64M\"\n[group.\"{}\"]\n\"memory.max\" = \"64M\"\n",
            a.name, b.name
        ),
    )
    .unwrap();
    // Room for 2,048 (group, syscall) keys: 5,000 numbers filled it.
    run.start_with(&policy, &["--max-syscall-keys", "2048"]);
    let mut sweep = spawn_as(
        Some(v2_dir(&a.name)),
        NOBODY,
        NOBODY,
        &helper_bin(),
        &["syscall-sweep", "512", "5512"],
    )
    .spawn()
    .unwrap();
    assert_eq!(first_line(&mut sweep), "called 5000");
    sweep.wait().unwrap();
    let mut other = spawn_as(
        Some(v2_dir(&b.name)),
        0,
        0,
        &helper_bin(),
        &["getppid", "100"],
    )
    .spawn()
    .unwrap();
    assert!(other.wait().unwrap().success());
    wait_for("the other group's calls", Duration::from_secs(10), || {
        calls(&run, &b.name, "getppid") == Some(100)
    });
    assert_eq!(
        calls(&run, &a.name, "invalid"),
        Some(5000),
        "{}",
        run.stats(&a.name)
    );
    let m = run.metrics().unwrap();
    assert!(
        !m.contains("enforcer_map_full_total{map=\"SYSCALLS\"}"),
        "{m}"
    );
}
