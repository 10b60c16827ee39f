//! What the agent trusts (root, real kernel): only root-owned files in
//! root-owned directories no other user can write. Each test plays an
//! ordinary local user (`nobody`) or an operator's mistake against the
//! policy file, the arbiter's record, the pid file and the audit log, a
//! start that fails halfway, and a second agent on the same groups.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use enforcer_tests::layout::{self, skip_without_cgroup2};
use enforcer_tests::tmpfs::Tmpfs;
use enforcer_tests::{
    AgentRun, GroupGuard, NOBODY, as_nobody, enforcer, enforcer_bin, helper_bin, wait_until,
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

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
}

/// The policy text: `g` limited to 256M, connects to 127.0.0.2 denied.
fn deny_text(g: &GroupGuard) -> String {
    format!(
        "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n\n[group.\"{n}\".network]\n\
         connect_deny = [\"127.0.0.2/32\"]\n",
        n = g.name
    )
}

/// The same group with the deny gone and 1G of memory: what a user who could
/// write the policy would put there.
fn weak_text(g: &GroupGuard) -> String {
    format!("[group.\"{n}\"]\n\"memory.max\" = \"1G\"\n", n = g.name)
}

fn write_root(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    chmod(path, 0o644);
}

/// `try-connect tcp 127.0.0.2:9` from inside the group.
fn connect_from(g: &GroupGuard) -> String {
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &format!("memory:{}", g.name), "--"])
        .arg(helper_bin())
        .args(["try-connect", "tcp", "127.0.0.2:9"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

/// The group's memory limit as the host's file says it.
fn memory_limit(g: &GroupGuard) -> u64 {
    let dir = layout::dir_of("memory", &g.name);
    let file = if layout::is_v1("memory") {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Regular files (pins) anywhere under `dir`; 0 when it does not exist.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { files_under(&p) } else { 1 }
        })
        .sum()
}

/// Writes `content` to `path` as `nobody`.
fn write_as_nobody(path: &Path, content: &str) {
    let out = as_nobody(
        "/bin/sh",
        &[
            "-c",
            "printf '%s' \"$0\" > \"$1\"",
            content,
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "as nobody: {}", describe(&out));
}

/// A directory every user may write (as /tmp is, with the sticky bit).
fn shared_dir(run: &AgentRun) -> PathBuf {
    chmod(&run.scratch, 0o755);
    let shared = run.file("shared");
    std::fs::create_dir_all(&shared).unwrap();
    chmod(&shared, 0o1777);
    shared
}

/// Finding 1: the arbiter's crash record was read without an owner check and
/// replayed as root. A user planted one beside a pid file in a 1777
/// directory and the next start overwrote a root-owned file.
#[test]
fn a_planted_arbiter_record_is_never_replayed() {
    if skip_without_cgroup2("a_planted_arbiter_record_is_never_replayed") {
        return;
    }
    let g = GroupGuard::new("record");
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    write_root(&policy, &deny_text(&g));
    let victim = run.file("victim.txt");
    write_root(&victim, "SAFE\n");
    let record = |path: &Path| {
        format!(
            "{{\"groups\":{{\"{n}\":{{\"cgroup_id\":0,\"yields\":{{\"cpu\":{{\"to\":\"x\",\
             \"steps\":1,\"now\":\"\",\"files\":[{{\"path\":\"{p}\",\"set\":\"SAFE\",\
             \"original\":\"PWNED\"}}]}}}}}}}}}}",
            n = g.name,
            p = path.display()
        )
    };

    // The user's record, beside a pid file in a directory everyone can write.
    let shared = shared_dir(&run);
    write_as_nobody(&shared.join("agent.arbiter.json"), &record(&victim));
    let pid_file = shared.join("agent.pid");
    let out = run.run_expecting_exit(
        Some(&policy),
        &["--no-metrics", "--pid-file", pid_file.to_str().unwrap()],
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "SAFE\n");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    for needle in ["refusing to use", shared.to_str().unwrap(), "chmod go-w"] {
        assert!(err.contains(needle), "{needle:?} missing in: {err}");
    }
    assert!(!layout::v2_dir(&g.name).exists(), "nothing was changed");

    // A record of root's (a stale one, or written by a mistake) naming a file
    // outside cgroupfs: the agent starts, and the file is left alone.
    let own = run.file("agent.arbiter.json");
    std::fs::write(&own, record(&victim)).unwrap();
    chmod(&own, 0o600);
    run.start(&policy);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "SAFE\n");
    wait_until("the refusal in the audit log", || {
        run.audit_lines().iter().any(|l| {
            l["kind"] == "arbiter_recovered"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("not a control file"))
        })
    });
    assert!(!own.exists(), "the record is consumed");
}

/// Finding 4: a policy in a user-owned directory, mode 0666, or a symlink to
/// a user's file was accepted and hot-reloaded.
#[test]
fn a_policy_others_can_write_is_refused_at_start_and_reload() {
    if skip_without_cgroup2("a_policy_others_can_write_is_refused_at_start_and_reload") {
        return;
    }
    let g = GroupGuard::new("policytrust");
    let mut run = AgentRun::new();
    chmod(&run.scratch, 0o755);
    let users = run.file("users");
    std::fs::create_dir_all(&users).unwrap();
    chown_nobody(&users);
    let in_users = users.join("policy.toml");
    write_as_nobody(&in_users, &deny_text(&g));
    let wide = run.file("wide.toml");
    write_root(&wide, &deny_text(&g));
    chmod(&wide, 0o666);
    let link = run.file("link.toml");
    std::os::unix::fs::symlink(&in_users, &link).unwrap();

    for (policy, what, fix) in [
        (&in_users, users.to_str().unwrap(), "chown root"),
        (&wide, wide.to_str().unwrap(), "chmod go-w"),
        (&link, users.to_str().unwrap(), "chown root"),
    ] {
        let out = run.run_expecting_exit(Some(policy), &["--no-metrics"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let err = text(&out.stderr);
        for needle in ["refusing to use the policy file", what, fix] {
            assert!(err.contains(needle), "{needle:?} missing in: {err}");
        }
        assert!(!layout::v2_dir(&g.name).exists(), "nothing was changed");
        assert_eq!(files_under(&run.pin_dir), 0, "nothing was pinned");
    }

    // `status --config` says so before anyone starts an agent on it.
    let out = enforcer(&["status", "--config", wide.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let said = text(&out.stdout);
    assert!(
        said.lines()
            .any(|l| l.contains("policy-file") && l.contains("writable by users other than root")),
        "{said}"
    );

    // Started with a policy of root's; then it becomes writable by others
    // (an operator's chmod) and a user rewrites it: the watch sees the
    // change, and the reload is refused.
    let policy = run.file("policy.toml");
    write_root(&policy, &deny_text(&g));
    run.start(&policy);
    assert_eq!(connect_from(&g), "err EPERM");
    assert_eq!(memory_limit(&g), 256 << 20);
    chmod(&policy, 0o666);
    write_as_nobody(&policy, &weak_text(&g));
    wait_until("the reload to be judged", || {
        run.audit_lines()
            .iter()
            .any(|l| l["kind"] == "reload_rejected" || l["kind"] == "reload")
    });
    let lines = run.audit_lines();
    assert!(
        lines.iter().any(|l| l["kind"] == "reload_rejected"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("refusing to use the policy file"))),
        "{lines:?}"
    );
    assert_eq!(connect_from(&g), "err EPERM", "the deny stays in force");
    assert_eq!(memory_limit(&g), 256 << 20, "the limit stays");
    // SIGHUP is refused the same way.
    let out = enforcer(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    wait_until("the SIGHUP reload refused too", || {
        run.audit_lines()
            .iter()
            .filter(|l| l["kind"] == "reload_rejected")
            .count()
            >= 2
    });
    assert_eq!(connect_from(&g), "err EPERM");
}

/// A Kubernetes ConfigMap volume: a world-writable directory (as the kubelet
/// makes it) of `..data` symlinks, mounted read-only into the agent's
/// container (the kubelet writes it through a path of its own). Nobody can
/// write through a read-only mount, so it is trusted, and a `..data` swap is
/// reloaded.
#[test]
fn a_configmap_on_a_read_only_mount_is_trusted() {
    if skip_without_cgroup2("a_configmap_on_a_read_only_mount_is_trusted") {
        return;
    }
    let g = GroupGuard::new("cmro");
    let mut run = AgentRun::new();
    chmod(&run.scratch, 0o755);
    // The kubelet writes the volume through its own path; the container
    // sees it read-only.
    let kubelet = Tmpfs::mount(&run.file("kubelet"), "size=1m,mode=0777");
    let v1 = kubelet.dir.join("..2026_12_10_v1");
    std::fs::create_dir(&v1).unwrap();
    chmod(&v1, 0o755);
    write_root(&v1.join("policy.toml"), &deny_text(&g));
    std::os::unix::fs::symlink("..2026_12_10_v1", kubelet.dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/policy.toml", kubelet.dir.join("policy.toml")).unwrap();
    let cm = kubelet.bind_read_only(&run.file("configmap"));
    run.start(&cm.dir.join("policy.toml"));
    assert_eq!(connect_from(&g), "err EPERM");
    // The kubelet's update: a new directory, `..data` swapped to it.
    let v2 = kubelet.dir.join("..2026_12_10_v2");
    std::fs::create_dir(&v2).unwrap();
    chmod(&v2, 0o755);
    write_root(&v2.join("policy.toml"), &weak_text(&g));
    std::os::unix::fs::symlink("..2026_12_10_v2", kubelet.dir.join("..data_tmp")).unwrap();
    std::fs::rename(kubelet.dir.join("..data_tmp"), kubelet.dir.join("..data")).unwrap();
    wait_until("the swap to be reloaded", || {
        run.audit_lines().iter().any(|l| l["kind"] == "reload")
    });
    assert_eq!(
        connect_from(&g),
        "err ECONNREFUSED",
        "the new policy is in force"
    );
    assert_eq!(memory_limit(&g), 1 << 30);

    // The same layout on a writable mount is refused: its directory is
    // writable by every user.
    let other = AgentRun::new();
    let rw = Tmpfs::mount(&other.file("configmap"), "size=1m,mode=0777");
    std::fs::create_dir(rw.dir.join("..v1")).unwrap();
    write_root(&rw.dir.join("..v1/policy.toml"), &deny_text(&g));
    std::os::unix::fs::symlink("..v1", rw.dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/policy.toml", rw.dir.join("policy.toml")).unwrap();
    let out = other.run_expecting_exit(Some(&rw.dir.join("policy.toml")), &["--no-metrics"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("writable"), "{}", describe(&out));
}

/// Finding 12: the pid file, audit log and record in a directory other users
/// can write (they deleted the pid file and the audit log, after which `stop`
/// and `reload` failed); a pid file left 0644 that a user holds locked.
#[test]
fn management_files_must_be_in_directories_only_root_can_write() {
    if skip_without_cgroup2("management_files_must_be_in_directories_only_root_can_write") {
        return;
    }
    let g = GroupGuard::new("mgmt");
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    write_root(&policy, &deny_text(&g));
    let shared = shared_dir(&run);
    let open = run.file("open");
    std::fs::create_dir_all(&open).unwrap();
    chmod(&open, 0o777);
    for (flag, path) in [
        ("--pid-file", shared.join("agent.pid")),
        ("--pid-file", open.join("agent.pid")),
        ("--audit-log", shared.join("audit.jsonl")),
        ("--audit-log", open.join("sub/audit.jsonl")),
    ] {
        let out = run.run_expecting_exit(
            Some(&policy),
            &["--no-metrics", flag, path.to_str().unwrap()],
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "{flag} {}: {}",
            path.display(),
            describe(&out)
        );
        let err = text(&out.stderr);
        for needle in [
            "refusing to use",
            "writable by users other than root",
            "chmod go-w",
        ] {
            assert!(err.contains(needle), "{needle:?} missing in: {err}");
        }
        assert!(!path.exists(), "{} was created", path.display());
        assert!(!layout::v2_dir(&g.name).exists(), "nothing was changed");
    }
    assert_eq!(files_under(&shared) + files_under(&open), 0);

    // A pid file left 0644 by an older version, which a user holds an
    // exclusive lock on: not an agent, so it does not keep one from starting.
    write_root(&run.pid_file(), "1\n");
    use std::os::unix::process::CommandExt as _;
    let mut holder = Command::new("/usr/bin/flock")
        .args(["-x", run.pid_file().to_str().unwrap(), "sleep", "30"])
        .uid(NOBODY)
        .gid(NOBODY)
        .spawn()
        .unwrap();
    wait_until("the user's exclusive lock", || {
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
    let out = enforcer(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let _ = holder.kill();
    let _ = holder.wait();
}

/// Finding 13: a start that fails leaves nothing behind (the metrics port
/// taken used to leave 43 pins and exit 2; a read-only audit log 16 pins);
/// a refused pin directory gets no subdirectory; a missing policy is bad
/// input (exit 2).
#[test]
fn a_failed_start_leaves_nothing_behind() {
    if skip_without_cgroup2("a_failed_start_leaves_nothing_behind") {
        return;
    }
    let g = GroupGuard::new("failstart");
    let run = AgentRun::new();
    let policy = run.file("policy.toml");
    write_root(&policy, &deny_text(&g));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run.run_expecting_exit(Some(&policy), &["--metrics", &addr]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains(&addr), "{}", describe(&out));
    assert_eq!(files_under(&run.pin_dir), 0, "pins left behind");
    assert!(!layout::v2_dir(&g.name).exists(), "a group left behind");

    let ro = Tmpfs::mount(&run.file("ro"), "size=64k,mode=0755");
    ro.remount_read_only();
    let audit = ro.dir.join("audit.jsonl");
    let out = run.run_expecting_exit(
        Some(&policy),
        &["--no-metrics", "--audit-log", audit.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("audit.jsonl"),
        "{}",
        describe(&out)
    );
    assert_eq!(files_under(&run.pin_dir), 0, "pins left behind");
    assert!(!layout::v2_dir(&g.name).exists(), "a group left behind");

    // A pin directory below a directory of a user's: refused, and nothing
    // is made in it.
    let bpffs = run.file("bpffs");
    std::fs::create_dir_all(&bpffs).unwrap();
    nix::mount::mount(
        Some("bpf"),
        &bpffs,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    let _bpffs = Unmount(bpffs.clone());
    let users = bpffs.join("users");
    let out = as_nobody("/bin/mkdir", &[users.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    let pins = users.join("enforcer");
    let out = run.run_expecting_exit(
        Some(&policy),
        &["--no-metrics", "--pin-dir", pins.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("not owned by root"),
        "{}",
        describe(&out)
    );
    assert!(!pins.exists(), "the refused pin directory was created");
    assert!(!layout::v2_dir(&g.name).exists(), "a group left behind");

    let out = run.run_expecting_exit(Some(&run.file("missing.toml")), &["--no-metrics"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        describe(&out)
    );
}

/// Finding 14: two agents with their own pin directories and pid files on
/// the same groups ran side by side, each enforcing and counting. The second
/// refuses and names the first.
#[test]
fn a_second_agent_on_the_same_groups_is_refused() {
    if skip_without_cgroup2("a_second_agent_on_the_same_groups_is_refused") {
        return;
    }
    let g = GroupGuard::new("twoagents");
    let mut first = AgentRun::new();
    let policy = first.file("policy.toml");
    write_root(&policy, &deny_text(&g));
    first.start(&policy);
    let pid = first.child.as_ref().unwrap().id();

    let second = AgentRun::new();
    let other_policy = second.file("policy.toml");
    write_root(&other_policy, &deny_text(&g));
    let out = second.run_expecting_exit(Some(&other_policy), &["--no-metrics"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    for needle in [
        format!("PID {pid}"),
        first.pin().to_string(),
        g.name.clone(),
    ] {
        assert!(err.contains(&needle), "{needle:?} missing in: {err}");
    }
    assert_eq!(files_under(&second.pin_dir), 0, "the refused agent pinned");
    assert_eq!(
        connect_from(&g),
        "err EPERM",
        "the first agent still enforces"
    );

    // An agent of other groups whose policy takes in the first one's group:
    // the reload is refused and its own groups stay as they were.
    let h = GroupGuard::new("twoagents-h");
    let mut third = AgentRun::new();
    let third_policy = third.file("policy.toml");
    write_root(&third_policy, &weak_text(&h));
    third.start(&third_policy);
    write_root(
        &third_policy,
        &format!("{}\n{}", weak_text(&h), weak_text(&g)),
    );
    wait_until("the reload to fail", || {
        third.audit_lines().iter().any(|l| {
            l["kind"] == "reload_failed"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("PID {pid}")))
        })
    });
    assert_eq!(memory_limit(&g), 256 << 20, "the first agent's limit stays");
    assert_eq!(connect_from(&g), "err EPERM");
    assert!(
        third.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the third agent runs on with its own groups"
    );
    assert_eq!(memory_limit(&h), 1 << 30);
}

/// Two agents in observe mode would both count every group: one at a time.
#[test]
fn a_second_observing_agent_is_refused() {
    if skip_without_cgroup2("a_second_observing_agent_is_refused") {
        return;
    }
    let mut first = AgentRun::new();
    first.start_observe(&[]);
    let pid = first.child.as_ref().unwrap().id();
    let second = AgentRun::new();
    let out = second.run_expecting_exit(None, &["--no-metrics"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("PID {pid}")) && err.contains(first.pin()),
        "{err}"
    );
    assert_eq!(files_under(&second.pin_dir), 0);
}

/// Observe mode only counts, so it claims no group: an agent observing the
/// whole host and one managing a group run side by side, the manager
/// enforcing, each counting the group's calls in its own maps; the
/// observer's stop leaves the manager's rules alone.
#[test]
fn an_observing_agent_and_a_managing_one_run_side_by_side() {
    if skip_without_cgroup2("an_observing_agent_and_a_managing_one_run_side_by_side") {
        return;
    }
    let g = GroupGuard::new("obsmanage");
    let mut observer = AgentRun::new();
    observer.start_observe(&[]);
    let mut manager = AgentRun::new();
    let policy = manager.file("policy.toml");
    write_root(&policy, &deny_text(&g));
    manager.start(&policy);
    assert_eq!(connect_from(&g), "err EPERM", "the manager enforces");

    const K: u64 = 5_000;
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &format!("memory:{}", g.name), "--"])
        .arg(helper_bin())
        .args(["getppid", &K.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let getppid = |run: &AgentRun| {
        run.stats(&g.name)["syscalls"]["by_name"]["getppid"]
            .as_u64()
            .unwrap_or(0)
    };
    for (who, run) in [("observer", &observer), ("manager", &manager)] {
        wait_until(&format!("the {who} to count the group's calls"), || {
            getppid(run) >= K
        });
        let n = getppid(run);
        assert!(n < K + 100, "the {who} counted {n} getppid for {K} made");
    }

    let out = enforcer(&[
        "stop",
        "--pin-dir",
        observer.pin(),
        "--pid-file",
        observer.pid_file().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "the observer stops: {}",
        describe(&out)
    );
    assert_eq!(
        connect_from(&g),
        "err EPERM",
        "the manager still enforces after the observer stopped"
    );
    assert!(
        manager
            .child
            .as_mut()
            .unwrap()
            .try_wait()
            .unwrap()
            .is_none(),
        "the manager runs on"
    );
}
