//! What an operator meets (root, real kernel): shell completions and man
//! pages, `| head -1` on every verb, `status` as a doctor, `events` printing
//! and following the audit log (rotation, SIGHUP reopen), observe mode
//! cleaning up after itself, and labels for units, containers and pods.

use std::os::fd::{AsRawFd as _, FromRawFd as _};
use std::process::{Command, Stdio};

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::{
    AgentRun, GroupGuard, enforcer, enforcer_bin, enforcer_ok, helper_bin, wait_until,
};

fn helper_in(name: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(name), "--"])
        .arg(helper_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} in {name}: {out:?}");
    out
}

#[test]
fn completions_pass_bash_n_and_man_pages_render() {
    let dir = std::env::temp_dir().join(enforcer_tests::unique_name("docs"));
    std::fs::create_dir_all(&dir).unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let text = enforcer_ok(&["completions", shell]);
        assert!(text.contains("enforcer"), "{shell}");
        for verb in ["top", "events", "completions", "man", "status"] {
            assert!(text.contains(verb), "{shell} completes {verb}");
        }
        if shell == "bash" {
            let f = dir.join("enforcer.bash");
            std::fs::write(&f, &text).unwrap();
            let out = Command::new("bash").arg("-n").arg(&f).output().unwrap();
            assert!(out.status.success(), "bash -n: {out:?}");
        }
    }
    let out = enforcer(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad input");

    let page = enforcer_ok(&["man", "top"]);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(
        page.contains("enforcer\\-top") && page.contains("\\-\\-once"),
        "{page}"
    );
    let out = enforcer(&["man", "nosuchverb"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("choose one of"));
    let man = dir.join("man");
    enforcer_ok(&["man", "--out-dir", man.to_str().unwrap()]);
    for page in [
        "enforcer.8",
        "enforcer-run.8",
        "enforcer-top.8",
        "enforcer-events.8",
    ] {
        let text = std::fs::read_to_string(man.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `enforcer ARGS | head -1` in a real pipeline: the verb's exit status
/// (bash's PIPESTATUS) and stderr.
fn into_head(args: &[&str]) -> (i32, String) {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "'{}' {} 2>err | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        enforcer_bin().display(),
        quoted.join(" ")
    );
    let dir = std::env::temp_dir().join(enforcer_tests::unique_name("head"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&dir)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1);
    let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    std::fs::remove_dir_all(&dir).ok();
    (status, err)
}

/// Every verb that prints, into `| head -1`: no panic (101), no broken-pipe
/// message; status 0 (or the verb's own verdict for `status`).
#[test]
fn every_verb_into_head_exits_without_a_panic() {
    if skip_without_cgroup2("every_verb_into_head_exits_without_a_panic") {
        return;
    }
    let g = GroupGuard::new("head");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\"]\n\"memory.max\" = \"256M\"\n[group.\"{}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            g.name, g.name
        ),
    )
    .unwrap();
    run.start(&p);
    for _ in 0..3 {
        helper_in(&g.name, &["try-connect", "tcp", "127.0.0.2:9"]);
    }
    let audit = run.file("audit.jsonl");
    wait_until("denials in the audit log", || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .count()
            >= 3
    });
    let audit = audit.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["completions", "fish"],
        vec!["man"],
        vec!["man", "run"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["top", "--pin-dir", run.pin(), "--interval", "100ms"],
        vec![
            "top",
            "--once",
            "--json",
            "--pin-dir",
            run.pin(),
            "--interval",
            "100ms",
        ],
        vec!["stats", "--pin-dir", run.pin()],
        vec!["stats", "--json", "--pin-dir", run.pin()],
        vec!["events", "--audit-log", audit],
        vec!["events", "--json", "--audit-log", audit],
        vec!["list"],
        vec!["list", "--json"],
        vec!["get", "-g", "memory", "/"],
        vec!["which", "1"],
        vec!["which", "--json", "1"],
    ];
    for args in &cases {
        let (status, err) = into_head(args);
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert_ne!(status, 101, "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        if args[0] != "status" {
            assert_eq!(status, 0, "{args:?}: {err}");
        }
    }
}

#[test]
fn status_is_a_doctor_with_a_fix_per_problem() {
    let out = enforcer(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "capabilities",
        "bpffs",
        "cgroup2",
        "ebpf",
        "btf",
        "bpf-lsm",
        "delegation",
        "arch",
        "bpf-jit",
    ] {
        assert!(names.contains(&n), "{n} checked: {names:?}");
    }
    for c in v["checks"].as_array().unwrap() {
        assert_eq!(
            c["ok"].as_bool() == Some(false),
            c.get("fix").is_some(),
            "a fix exactly for each problem: {c}"
        );
    }
    // The verdict against the host's own facts, not against the same run's
    // JSON: `cargo xtask setup` (and the VM guests) give root, a bpffs at
    // /sys/fs/bpf, cgroup2 (except on pure v1) and BTF; then the host is
    // healthy and the exit status 0.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let fstype_at = |point: &str| {
        mountinfo.lines().any(|l| {
            l.split(' ').nth(4) == Some(point)
                && l.split(" - ").nth(1).is_some_and(|r| r.starts_with("bpf "))
        })
    };
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["ok"].as_bool())
    };
    assert_eq!(check("bpffs"), Some(fstype_at("/sys/fs/bpf")), "{v}");
    let cgroup2 = mountinfo.contains(" - cgroup2 ");
    assert_eq!(check("cgroup2"), Some(cgroup2), "{v}");
    assert_eq!(
        check("btf"),
        Some(std::path::Path::new("/sys/kernel/btf/vmlinux").exists()),
        "{v}"
    );
    assert_eq!(check("capabilities"), Some(true), "root: {v}");
    // README: status says which architecture it is on and whether the BPF
    // JIT is on (and, below, whether this kernel attaches BPF-LSM programs).
    let detail = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["detail"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let machine = nix::sys::utsname::uname()
        .unwrap()
        .machine()
        .to_string_lossy()
        .into_owned();
    assert!(
        detail("arch").starts_with(&format!("{machine}: ")),
        "the arch check names this node's architecture ({machine}): {v}"
    );
    // What depends on it: the syscall table, and how 32-bit tasks' calls
    // are counted.
    let compat = if machine == "aarch64" {
        "arm32"
    } else {
        "i386"
    };
    for what in [format!("the {machine} table"), format!("{compat}:NAME")] {
        assert!(detail("arch").contains(&what), "{what}: {v}");
    }
    let jit = std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable").ok();
    assert_eq!(
        check("bpf-jit"),
        Some(matches!(jit.as_deref().map(str::trim), Some("1" | "2"))),
        "net.core.bpf_jit_enable is {jit:?}: {v}"
    );
    let plain = enforcer(&["status"]);
    let plain = String::from_utf8_lossy(&plain.stdout);
    for name in ["arch", "bpf-jit"] {
        assert!(
            plain
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "no {name} check in `enforcer status`:\n{plain}"
        );
    }
    // The feature table's BPF-LSM row: a reason where it is refused, the
    // same answer in the text table and in the bpf-lsm check.
    let lsm_row = v["ebpf"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feature"] == "lsm_deny")
        .unwrap_or_else(|| panic!("no lsm_deny in the feature table: {v}"))
        .clone();
    let lsm_attaches = lsm_row["refused"].is_null();
    if !lsm_attaches {
        assert!(
            lsm_row["refused"]["reason"]
                .as_str()
                .is_some_and(|r| !r.trim().is_empty()),
            "a refusal says why: {lsm_row}"
        );
    }
    assert_eq!(check("bpf-lsm"), Some(lsm_attaches), "{v}");
    let text_row = plain
        .lines()
        .find(|l| l.trim_start().starts_with("LSM deny"))
        .unwrap_or_else(|| panic!("no LSM deny row in `enforcer status`:\n{plain}"));
    assert_eq!(
        text_row.contains("UNAVAILABLE"),
        !lsm_attaches,
        "{text_row} / {lsm_row}"
    );
    let kernel_says = kernel_attaches_bpf_lsm();
    eprintln!("BPF-LSM: the feature table says {lsm_attaches}, the kernel {kernel_says:?}");
    if let Some(attaches) = kernel_says {
        assert_eq!(
            lsm_attaches, attaches,
            "the feature table against the kernel's own answer to an lsm_cgroup \
             program's load and attach: {lsm_row}"
        );
    }
    if cgroup2 {
        assert_eq!(out.status.code(), Some(0), "a set-up host is healthy: {v}");
        assert_eq!(v["healthy"], true, "{v}");
    } else {
        assert_eq!(
            out.status.code(),
            Some(1),
            "without cgroup2 nothing counts: {v}"
        );
    }

    // Pins somewhere that is not bpffs: a problem, exit 1, with the fix.
    let out = enforcer(&["status", "--pin-dir", "/tmp/not-bpffs/enforcer"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PROBLEM bpffs"), "{text}");
    assert!(text.contains("fix: mount -t bpf"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bpffs"));

    // A policy that needs what this kernel lacks (BPF-LSM for `listen`
    // where it does not load), or a parent that does not exist.
    let dir = std::env::temp_dir().join(enforcer_tests::unique_name("doctor"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("policy.toml");
    std::fs::write(
        &p,
        "[agent]\nparent = \"enf-test-no-such-parent\"\n[group.\"x\"]\n",
    )
    .unwrap();
    let out = enforcer(&["status", "--json", "--config", p.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let del = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "delegation")
        .unwrap();
    assert_eq!(del["ok"], false, "{del}");
    assert!(del["fix"].as_str().unwrap().contains("Delegate=yes"));
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(
        &p,
        "[group.\"x\"]\n[group.\"x\".syscalls]\ndeny = [\"listen\"]\naction = \"deny\"\n",
    )
    .unwrap();
    let out = enforcer(&["status", "--json", "--config", p.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lsm = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bpf-lsm")
        .unwrap();
    assert_eq!(lsm["needed"], true, "{lsm}");
    // The verdict against what the kernel does with the rule: where status
    // says BPF-LSM works, an agent enforcing it makes listen() in the group
    // fail; where it says not, the agent refuses the policy.
    let lsm_ok = lsm["ok"].as_bool().unwrap();
    assert_eq!(
        lsm_ok, lsm_attaches,
        "the same kernel, the same answer: {v}"
    );
    assert_eq!(out.status.success(), lsm_ok, "{v}");
    if cgroup2 {
        let g = GroupGuard::new("doctor-lsm");
        let mut run = AgentRun::new();
        let policy = run.file("lsm.toml");
        std::fs::write(
            &policy,
            format!(
                "[group.\"{}\"]\n[group.\"{}\".syscalls]\ndeny = [\"listen\"]\naction = \"deny\"\n",
                g.name, g.name
            ),
        )
        .unwrap();
        if lsm_ok {
            run.start(&policy);
            let out = Command::new(enforcer_bin())
                .args(["exec", "-g", &spec(&g.name), "--"])
                .arg(helper_bin())
                .args(["try-listen", "127.0.0.1:0"])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "err EPERM",
                "status said BPF-LSM works: listen() must be denied"
            );
        } else {
            let out = run.run_expecting_exit(Some(&policy), &[]);
            assert_eq!(
                out.status.code(),
                Some(1),
                "status said BPF-LSM is missing: the agent must refuse: {out:?}"
            );
        }
    }
    // A broken policy is bad input.
    std::fs::write(&p, "[group.\"x\"]\nnosuchkey = 1\n").unwrap();
    assert_eq!(
        enforcer(&["status", "--config", p.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn events_print_filter_follow_and_survive_a_sighup_reopen() {
    if skip_without_cgroup2("events_print_filter_follow_and_survive_a_sighup_reopen") {
        return;
    }
    let g = GroupGuard::new("events");
    let other = GroupGuard::new("evother");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    let mut policy = String::new();
    for n in [&g.name, &other.name] {
        policy.push_str(&format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n[group.\"{n}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n"
        ));
    }
    std::fs::write(&p, policy).unwrap();
    run.start(&p);
    helper_in(&g.name, &["try-connect", "tcp", "127.0.0.2:9"]);
    helper_in(&other.name, &["try-connect", "tcp", "127.0.0.2:9"]);
    let audit = run.file("audit.jsonl");
    let audit_s = audit.to_str().unwrap().to_string();
    wait_until("two denials", || {
        enforcer_ok(&["events", "--json", "--audit-log", &audit_s])
            .lines()
            .count()
            >= 2
    });
    let mine = enforcer_ok(&["events", "--json", "--audit-log", &audit_s, &g.name]);
    let lines: Vec<serde_json::Value> = mine
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{mine}");
    assert_eq!(lines[0]["group"], g.name.as_str());
    let human = enforcer_ok(&["events", "--audit-log", &audit_s, &g.name]);
    assert!(human.contains(&g.name) && human.contains("pid "), "{human}");
    assert!(human.starts_with("20"), "a UTC time first: {human}");

    // Follow: new events appear as they are written, also after logrotate
    // moved the log away and the agent reopened it on SIGHUP.
    let mut follow = Command::new(enforcer_bin())
        .args(["events", "-f", "--json", "--audit-log", &audit_s, &g.name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = enforcer_tests::Lines::new(follow.stdout.take().unwrap());
    let first = out.next("events -f");
    assert!(first.contains(&g.name), "the last events first: {first}");
    std::fs::rename(&audit, run.file("audit.jsonl.1")).unwrap();
    enforcer_ok(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    wait_until("the agent to reopen the audit log", || audit.exists());
    helper_in(&g.name, &["try-connect", "tcp", "127.0.0.2:9"]);
    let next: serde_json::Value = serde_json::from_str(&out.next("events -f")).unwrap();
    assert_eq!(next["group"], g.name.as_str(), "{next}");
    let _ = follow.kill();
    let _ = follow.wait();
    let reopened = std::fs::read_to_string(&audit).unwrap();
    assert!(
        reopened.contains(&g.name),
        "new lines at the path: {reopened}"
    );
    let meta = std::fs::metadata(&audit).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
}

fn pins(run: &AgentRun) -> usize {
    fn count(d: &std::path::Path) -> usize {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.file_type().is_ok_and(|t| t.is_dir()) {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&run.pin_dir)
}

fn sigterm_and_wait(run: &mut AgentRun) {
    let mut child = run.child.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "a clean exit: {st}\n{}", run.log());
}

#[test]
fn observe_mode_detaches_on_a_clean_exit_unless_kept() {
    if skip_without_cgroup2("observe_mode_detaches_on_a_clean_exit_unless_kept") {
        return;
    }
    let mut run = AgentRun::new();
    run.start_observe(&[]);
    assert!(pins(&run) > 0, "pinned while running");
    sigterm_and_wait(&mut run);
    assert_eq!(
        pins(&run),
        0,
        "observe mode took its programs off:\n{}",
        run.log()
    );
    let out = enforcer(&["stats", "--pin-dir", run.pin()]);
    assert_eq!(out.status.code(), Some(1), "nothing pinned any more");

    run.start_observe(&["--keep"]);
    sigterm_and_wait(&mut run);
    assert!(pins(&run) > 0, "--keep leaves them");

    // A policy keeps today's fail-closed default.
    let g = GroupGuard::new("keep");
    let p = run.file("policy.toml");
    std::fs::write(&p, format!("[group.\"{}\"]\n", g.name)).unwrap();
    enforcer_ok(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    run.start(&p);
    sigterm_and_wait(&mut run);
    assert!(pins(&run) > 0, "a policy's programs stay");
}

#[test]
fn units_containers_and_pods_are_labelled_in_stats_top_and_metrics() {
    if skip_without_cgroup2("units_containers_and_pods_are_labelled_in_stats_top_and_metrics") {
        return;
    }
    const UID: &str = "6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b";
    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let g = GroupGuard::new("k8s");
    let uid_ = UID.replace('-', "_");
    let systemd_pod = format!(
        "{}/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope",
        g.name
    );
    let cgroupfs_pod = format!("{}/kubepods/besteffort/pod{UID}/{ID}", g.name);
    let unit = format!("{}/system.slice/nginx.service", g.name);
    let docker = format!("{}/system.slice/docker-{ID}.scope", g.name);
    for path in [&systemd_pod, &cgroupfs_pod, &unit, &docker] {
        enforcer_ok(&["create", "-g", &spec(path)]);
    }
    let mut run = AgentRun::new();
    run.start_observe(&["--metrics-depth", "8"]);
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    for path in [&systemd_pod, &cgroupfs_pod, &unit, &docker] {
        let out = helper_in(path, &["udp-send", &to, "3", "100"]);
        assert!(out.status.success(), "{out:?}");
    }
    wait_until("every group counted", || {
        [&systemd_pod, &cgroupfs_pod, &unit, &docker]
            .iter()
            .all(|p| !run.stats(p).is_null())
    });
    let s = run.stats(&systemd_pod);
    assert_eq!(s["workload"]["pod_uid"], UID, "{s}");
    assert_eq!(s["workload"]["qos_class"], "burstable");
    assert_eq!(s["workload"]["runtime"], "containerd");
    assert_eq!(s["workload"]["container_id"], ID);
    let s = run.stats(&cgroupfs_pod);
    assert_eq!(
        (
            s["workload"]["pod_uid"].as_str(),
            s["workload"]["qos_class"].as_str()
        ),
        (Some(UID), Some("besteffort"))
    );
    assert_eq!(run.stats(&unit)["workload"]["unit"], "nginx.service");
    assert_eq!(run.stats(&docker)["workload"]["runtime"], "docker");

    let top = enforcer_ok(&[
        "top",
        "--pin-dir",
        run.pin(),
        "--interval",
        "100ms",
        "--filter",
        &g.name,
        "--rows",
        "100",
    ]);
    assert!(top.contains("nginx.service"), "{top}");
    assert!(top.contains("pod 6f1c2b3a-1d2 ctr 0123456789ab"), "{top}");
    assert!(top.contains("docker 0123456789ab"), "{top}");

    wait_until("the pod's info series", || {
        run.metrics().is_some_and(|m| {
            m.lines().any(|l| {
                l.starts_with("enforcer_group_info{")
                    && l.contains(&format!("group=\"{systemd_pod}\""))
                    && l.contains(&format!("pod_uid=\"{UID}\""))
                    && l.contains("qos_class=\"burstable\"")
                    && l.contains(&format!("container_id=\"{ID}\""))
            })
        })
    });
}

/// The agent speaks systemd's readiness protocol to `$NOTIFY_SOCKET`
/// (`Type=notify`): READY once running, RELOADING then READY around a
/// reload, STOPPING on the way out.
#[test]
fn the_agent_notifies_readiness_reload_and_stop() {
    if skip_without_cgroup2("the_agent_notifies_readiness_reload_and_stop") {
        return;
    }
    let g = GroupGuard::new("notify");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(&p, format!("[group.\"{}\"]\n", g.name)).unwrap();
    let sock_path = run.file("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let child = run
        .command(None, Some(&p), &[])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    run.child = Some(child);
    let next = || {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = next();
    assert!(ready.contains("READY=1"), "{ready}");
    assert!(run.metrics().is_some(), "ready means metrics are served");
    enforcer_ok(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    let reloading = next();
    assert!(
        reloading.contains("RELOADING=1") && reloading.contains("MONOTONIC_USEC="),
        "{reloading}"
    );
    assert!(next().contains("READY=1"));
    sigterm_and_wait(&mut run);
    assert!(next().contains("STOPPING=1"));
}

/// The kernel's own answer, without enforcer's code: whether an
/// `lsm_cgroup` program on `socket_listen` (`r0 = 1; exit`: allows
/// everything) loads and attaches to a cgroup2 group this test creates, and
/// `bpf` is among the active LSMs (else the kernel never calls it). None
/// where it cannot be told: no vmlinux BTF or cgroup2, an answer that is no
/// verdict on BPF-LSM (EINVAL, say), the LSM list unreadable.
fn kernel_attaches_bpf_lsm() -> Option<bool> {
    // enum bpf_prog_type / bpf_attach_type / bpf_cmd (include/uapi/linux/bpf.h).
    const BPF_PROG_TYPE_LSM: u32 = 29;
    const BPF_LSM_CGROUP: u32 = 43;
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_LINK_CREATE: libc::c_long = 28;
    // The kernel's "not supported here" (ENOTSUPP), e.g. no trampolines.
    const ENOTSUPP: i32 = 524;
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
        prog_btf_fd: u32,
        func_info_rec_size: u32,
        func_info: u64,
        func_info_cnt: u32,
        line_info_rec_size: u32,
        line_info: u64,
        line_info_cnt: u32,
        attach_btf_id: u32,
        tail: [u64; 8],
    }
    #[repr(C)]
    struct LinkCreate {
        prog_fd: u32,
        target_fd: u32,
        attach_type: u32,
        flags: u32,
        tail: [u64; 6],
    }
    fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<i32, i32> {
        // SAFETY: attr is a bpf_attr prefix the kernel reads (and zero-checks
        // past what it knows) for `size` bytes.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
        if r < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(r as i32)
        }
    }
    let refusal =
        |errno: i32| [libc::EPERM, libc::EACCES, libc::EOPNOTSUPP, ENOTSUPP].contains(&errno);
    if !enforcer_tests::layout::has_cgroup2() {
        return None;
    }
    let btf_id = vmlinux_func_id("bpf_lsm_socket_listen")?;
    eprintln!("bpf_lsm_socket_listen is vmlinux BTF id {btf_id}");
    // mov64 r0, 1; exit
    let insns: [[u8; 8]; 2] = [[0xb7, 0, 0, 0, 1, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]];
    let license = b"GPL\0";
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_LSM,
        insn_cnt: 2,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name: [0; 16],
        prog_ifindex: 0,
        expected_attach_type: BPF_LSM_CGROUP,
        prog_btf_fd: 0,
        func_info_rec_size: 0,
        func_info: 0,
        func_info_cnt: 0,
        line_info_rec_size: 0,
        line_info: 0,
        line_info_cnt: 0,
        attach_btf_id: btf_id,
        tail: [0; 8],
    };
    let prog = match bpf(BPF_PROG_LOAD, &mut load) {
        // SAFETY: a descriptor the kernel just gave us, owned from here.
        Ok(fd) => unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
        Err(e) if refusal(e) => {
            eprintln!("the kernel refuses an lsm_cgroup program's load: errno {e}");
            return Some(false);
        }
        Err(e) => {
            eprintln!("no verdict from an lsm_cgroup program's load: errno {e}");
            return None;
        }
    };
    let g = GroupGuard::new("lsm-attach-probe");
    let dir = enforcer_tests::layout::v2_dir(&g.name);
    std::fs::create_dir(&dir).ok()?;
    let cgroup = std::fs::File::open(&dir).ok()?;
    let mut link = LinkCreate {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_LSM_CGROUP,
        flags: 0,
        tail: [0; 6],
    };
    match bpf(BPF_LINK_CREATE, &mut link) {
        // SAFETY: as above; dropping it detaches the program.
        Ok(fd) => drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }),
        Err(e) if refusal(e) => {
            eprintln!("the kernel loads an lsm_cgroup program and refuses its attach: errno {e}");
            return Some(false);
        }
        Err(e) => {
            eprintln!("no verdict from an lsm_cgroup program's attach: errno {e}");
            return None;
        }
    }
    let lsms = std::fs::read_to_string("/sys/kernel/security/lsm").ok()?;
    Some(lsms.trim().split(',').any(|l| l.trim() == "bpf"))
}

/// The BTF id of the function `name` in /sys/kernel/btf/vmlinux.
fn vmlinux_func_id(name: &str) -> Option<u32> {
    const BTF_KIND_FUNC: u32 = 12;
    let b = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    // struct btf_header: magic, version, flags, hdr_len, type_off, type_len,
    // str_off, str_len (little-endian on both architectures tested).
    if b.get(0..2)? != [0x9f, 0xeb] {
        return None;
    }
    let hdr = u32_at(4)? as usize;
    let (type_off, type_len) = (hdr + u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = hdr + u32_at(16)? as usize;
    let (mut o, mut id) = (type_off, 1u32);
    while o < type_off + type_len {
        let (name_off, info) = (u32_at(o)? as usize, u32_at(o + 4)?);
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        if kind == BTF_KIND_FUNC {
            let s = b.get(str_off + name_off..)?;
            let end = s.iter().position(|&c| c == 0)?;
            if &s[..end] == name.as_bytes() {
                return Some(id);
            }
        }
        // struct btf_type (12 bytes), then what its kind carries.
        o += 12
            + match kind {
                1 | 14 | 17 => 4,             // INT, VAR, DECL_TAG
                3 => 12,                      // ARRAY
                4 | 5 | 15 | 19 => 12 * vlen, // STRUCT, UNION, DATASEC, ENUM64
                6 | 13 => 8 * vlen,           // ENUM, FUNC_PROTO
                _ => 0,
            };
        id += 1;
    }
    None
}
