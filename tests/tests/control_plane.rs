//! The control plane on the real kernel (run as root): the seed tutorial's
//! walk-through, cgconfig.conf, every verb, and bad input that must change nothing.
//!
//! The same tests run on pure cgroup v2, pure v1 and hybrid hosts (`cargo xtask
//! vmtest`): where the kernel's files or enforcer's placement differ by layout,
//! `enforcer_tests::layout` says what this host has, and each test asserts
//! exactly that.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use enforcer::cgroup::Cgroups;
use enforcer_tests::layout::{self, is_v1, spelled};
use enforcer_tests::{GroupGuard, enforcer, enforcer_bin, enforcer_env, enforcer_ok, helper_bin};

fn page() -> u64 {
    Cgroups::discover().unwrap().facts().page_size
}

/// Every directory the group has, in any hierarchy.
fn dirs_of(name: &str) -> Vec<std::path::PathBuf> {
    let cg = Cgroups::discover().unwrap();
    let p = enforcer::cgroup::GroupPath::parse(name).unwrap();
    cg.present_in(&p)
        .into_iter()
        .map(|h| cg.dir(h, &p))
        .collect()
}

fn get_json(name: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["get", "--json"];
    args.extend_from_slice(extra);
    args.push(name);
    let out = enforcer_ok(&args);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

fn value_of(group: &serde_json::Value, file: &str) -> String {
    group["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv["file"] == file)
        .unwrap_or_else(|| panic!("{file} missing in {group}"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Start `enforcer exec -g SPEC -- helper ARGS`; the child's PID is the helper's.
fn exec_in(spec: &str, args: &[&str]) -> std::process::Child {
    Command::new(enforcer_bin())
        .args(["exec", "-g", spec, "--"])
        .arg(helper_bin())
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `f`, generously: a limit for a hung test, not a timing
/// assertion (under TCG emulation a process start can take seconds).
fn wait_until(what: &str, f: impl FnMut() -> bool) {
    enforcer_tests::wait_for(what, Duration::from_secs(60), f);
}

/// Sorted, for comparing directory lists.
fn sorted(mut v: Vec<std::path::PathBuf>) -> Vec<std::path::PathBuf> {
    v.sort();
    v
}

/// Whether `enforcer which PID` shows it in `name` of `controller`'s hierarchy.
fn which_shows(pid: &str, controller: &str, name: &str) -> bool {
    let out = enforcer(&["which", pid]);
    layout::which_shows(&String::from_utf8_lossy(&out.stdout), controller, name)
}

#[test]
fn seed_walkthrough_memory_limit_exec_oom_delete() {
    if layout::skip_without("seed_walkthrough_memory_limit_exec_oom_delete", &["memory"]) {
        return;
    }
    let g = GroupGuard::new("seed");
    let spec = format!("memory:{}", g.name);
    enforcer_ok(&["create", "-g", &spec]);
    // Hybrid: memory plus the cgroup2 mirror; pure v1: memory; pure v2: one.
    assert_eq!(
        sorted(dirs_of(&g.name)),
        sorted(layout::dirs_for(&["memory"], &g.name))
    );
    let limit_file = spelled("memory.limit_in_bytes", "memory.max");

    // 50000000 is not page aligned: the kernel keeps it rounded down.
    let out = enforcer_ok(&["set", "-r", "memory.limit_in_bytes=50000000", &g.name]);
    let expect = 50_000_000 / page() * page();
    assert!(out.contains(&format!("reads back {expect}")), "{out}");
    let v = get_json(&g.name, &["-r", "memory.limit_in_bytes"]);
    assert_eq!(value_of(&v, limit_file), expect.to_string());
    assert_eq!(v["memory"]["limit_bytes"], expect);

    // exec: the command replaces enforcer, so the child's PID is the command's.
    let mut sleeper = exec_in(&spec, &["sleep", "30"]);
    let pid = sleeper.id().to_string();
    wait_until("the process to be in the group", || {
        which_shows(&pid, "memory", &g.name)
    });
    let which = enforcer_ok(&["which", "--json", &pid]);
    let m: serde_json::Value = serde_json::from_str(&which).unwrap();
    let v2 = m
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["hierarchy_id"] == 0);
    if layout::has_cgroup2() {
        // Hybrid: the mirror; pure v2: the group itself.
        assert_eq!(
            v2.expect("a cgroup2 membership")["path"],
            format!("/{}", g.name),
            "placed in the cgroup2 tree too: {which}"
        );
    } else {
        assert!(v2.is_none(), "no cgroup2 here, yet: {which}");
    }
    wait_until("memory usage to show", || {
        get_json(&g.name, &["-g", "memory"])["memory"]["usage_bytes"]
            .as_u64()
            .unwrap()
            > 0
    });
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    // Lower the limit and exceed it: the OOM killer ends the process.
    enforcer_ok(&["set", "-r", "memory.limit_in_bytes=20M", &g.name]);
    let before = get_json(&g.name, &[])["memory"]["oom_kills"]
        .as_u64()
        .unwrap();
    let status = exec_in(&spec, &["alloc", &(100u64 << 20).to_string()])
        .wait()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "expected an OOM kill, got {status:?}"
    );
    let after = get_json(&g.name, &[])["memory"]["oom_kills"]
        .as_u64()
        .unwrap();
    assert!(after > before, "oom_kills {before} -> {after}");

    enforcer_ok(&["delete", "-g", &spec]);
    assert!(
        dirs_of(&g.name).is_empty(),
        "left behind: {:?}",
        dirs_of(&g.name)
    );
}

#[test]
fn seed_cgconfig_applies_and_delete_leaves_nothing() {
    if layout::skip_without(
        "seed_cgconfig_applies_and_delete_leaves_nothing",
        &["memory", "cpu"],
    ) {
        return;
    }
    let g = GroupGuard::new("cgconf");
    let dir = tempfile_dir();
    let file = dir.join("cgconfig.conf");
    std::fs::write(
        &file,
        format!(
            "#\n# Copyright IBM Corporation. 2007\n#\ngroup {} {{\ncpu {{\ncpu.shares = 100;\n}}\nmemory {{\nmemory.limit_in_bytes = 5000000;\n}}\n}}\n",
            g.name
        ),
    )
    .unwrap();
    // cgroup2 has cpu.weight: 100 shares are weight 100 * 100 / 1024 = 10.
    let (cpu_file, cpu_value) = if is_v1("cpu") {
        ("cpu.shares", "100")
    } else {
        ("cpu.weight", "10")
    };
    let plan = enforcer_ok(&["apply", "--dry-run", file.to_str().unwrap()]);
    assert!(
        plan.contains(&format!(
            "cpu.shares ({}:{cpu_file}): (none) -> {cpu_value}",
            layout::label_of("cpu")
        )),
        "{plan}"
    );
    assert!(dirs_of(&g.name).is_empty(), "--dry-run created something");

    enforcer_ok(&["apply", file.to_str().unwrap()]);
    let v = get_json(
        &g.name,
        &["-r", "cpu.shares", "-r", "memory.limit_in_bytes"],
    );
    assert_eq!(value_of(&v, cpu_file), cpu_value);
    assert_eq!(
        value_of(&v, spelled("memory.limit_in_bytes", "memory.max")),
        (5_000_000 / page() * page()).to_string()
    );
    // Hybrid: cpu, memory and the cgroup2 mirror; v1: cpu and memory; v2: one.
    assert_eq!(
        sorted(dirs_of(&g.name)),
        sorted(layout::dirs_for(&["cpu", "memory"], &g.name))
    );

    // libcgroup 2.0.2 leaves cpu/x behind here; enforcer must not.
    enforcer_ok(&["delete", "-g", &format!("memory,cpu:{}", g.name)]);
    assert!(
        dirs_of(&g.name).is_empty(),
        "left behind: {:?}",
        dirs_of(&g.name)
    );
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(enforcer_tests::unique_name("cfg"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn toml_policy_applies_v2_spelling_on_v1_controllers() {
    if layout::skip_without(
        "toml_policy_applies_v2_spelling_on_v1_controllers",
        &["memory", "cpu", "pids"],
    ) {
        return;
    }
    let g = GroupGuard::new("toml");
    let dir = tempfile_dir();
    let file = dir.join("policy.toml");
    std::fs::write(
        &file,
        format!(
            "[group.\"{}\"]\n\"memory.max\" = \"64M\"\n\"cpu.weight\" = 100\n\"pids.max\" = 50\n",
            g.name
        ),
    )
    .unwrap();
    let out = enforcer_ok(&["apply", "--json", file.to_str().unwrap()]);
    let a: serde_json::Value = serde_json::from_str(&out).unwrap();
    let writes = a["writes"].as_array().unwrap();
    let files: Vec<&str> = writes.iter().map(|w| w["file"].as_str().unwrap()).collect();
    // On v1 controllers the v2 keys are translated (weight 100 is 1024
    // shares); on cgroup2 they are written as they are.
    assert_eq!(
        files,
        vec![
            spelled("memory.limit_in_bytes", "memory.max"),
            spelled("cpu.shares", "cpu.weight"),
            "pids.max"
        ]
    );
    assert_eq!(writes[0]["effective"], (64u64 << 20).to_string());
    assert_eq!(
        writes[1]["effective"],
        if is_v1("cpu") { "1024" } else { "100" }
    );
    assert_eq!(writes[2]["effective"], "50");
    enforcer_ok(&["delete", "-g", &format!("memory,cpu,pids:{}", g.name)]);
    assert!(dirs_of(&g.name).is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn apply_rolls_back_when_the_kernel_refuses_midway() {
    if layout::skip_without(
        "apply_rolls_back_when_the_kernel_refuses_midway",
        &["memory"],
    ) {
        return;
    }
    let a = GroupGuard::new("rb-a");
    let b = GroupGuard::new("rb-b");
    let dir = tempfile_dir();
    let file = dir.join("rb.conf");
    // Valid syntax and keys, but the kernel rejects the value (v1: swappiness
    // 1000, max 100; cgroup2: memory.oom.group 2, only 0 or 1).
    let (key, value) = layout::refused_memory_setting();
    std::fs::write(
        &file,
        format!(
            "group {} {{ memory {{ memory.limit_in_bytes = 64M; }} }}\ngroup {} {{ memory {{ {key} = {value}; }} }}\n",
            a.name, b.name
        ),
    )
    .unwrap();
    let out = enforcer(&["apply", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(key) && err.contains("rolled back"), "{err}");
    assert!(
        dirs_of(&a.name).is_empty() && dirs_of(&b.name).is_empty(),
        "rollback left groups"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A busy shell loop writing an ever-growing counter to `file`; on SIGTERM it
/// writes `term` to `file.term` and exits 0.
const COUNTER_LOOP: &str = r#"trap 'echo term > "$1.term"; exit 0' TERM
i=0
while :; do i=$((i+1)); echo $i > "$1"; done"#;

fn counter(file: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// Start `enforcer exec -g SPEC -- sh -c COUNTER_LOOP sh FILE`.
fn exec_counter(spec: &str, file: &std::path::Path) -> std::process::Child {
    Command::new(enforcer_bin())
        .args(["exec", "-g", spec, "--", "sh", "-c", COUNTER_LOOP, "sh"])
        .arg(file)
        .spawn()
        .unwrap()
}

/// Whether the kernel reports `name` frozen: cgroup2's `cgroup.events` where the
/// group has `cgroup.freeze` (enforcer's own choice), v1's `freezer.state` else.
fn kernel_frozen(name: &str) -> bool {
    let cg = Cgroups::discover().unwrap();
    let p = enforcer::cgroup::GroupPath::parse(name).unwrap();
    if let Some(v2) = cg.v2() {
        let dir = cg.dir(v2, &p);
        if dir.join("cgroup.freeze").is_file() {
            let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap();
            return events.lines().any(|l| l == "frozen 1");
        }
    }
    let (h, _) = cg.locate("freezer").unwrap();
    std::fs::read_to_string(cg.dir(h, &p).join("freezer.state"))
        .unwrap()
        .trim()
        == "FROZEN"
}

/// The child's exit status, waiting at most 5 s (a signal that never came
/// fails the test instead of hanging it; the group's guard kills the child).
fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("the process to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// Waits until `enforcer exec` has put `pid` in the memory group `name`.
fn wait_placed(name: &str, pid: u32) {
    let pid = pid.to_string();
    wait_until("exec placement", || which_shows(&pid, "memory", name));
}

#[test]
fn classify_freeze_thaw_kill_list_and_delete_with_processes() {
    if layout::skip_without(
        "classify_freeze_thaw_kill_list_and_delete_with_processes",
        &["memory", "freezer"],
    ) {
        return;
    }
    let g = GroupGuard::new("procs");
    let spec = format!("memory,freezer:{}", g.name);
    let tmp = tempfile_dir();
    let count = tmp.join("count");
    enforcer_ok(&["create", "-g", &spec]);
    let mut child = Command::new("sh")
        .args(["-c", COUNTER_LOOP, "sh"])
        .arg(&count)
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    enforcer_ok(&["classify", "-g", &spec, &pid]);
    let which = enforcer_ok(&["which", &pid]);
    for c in ["memory", "freezer"] {
        assert!(layout::which_shows(&which, c, &g.name), "{c}: {which}");
    }

    // Once in each hierarchy of the group: memory, freezer and cgroup2 on a
    // hybrid host, memory and freezer on v1, cgroup2 alone on v2.
    let listed = enforcer_ok(&["list"]);
    for label in layout::labels_for(&["memory", "freezer"]) {
        let line = format!("{label}:/{}", g.name);
        assert_eq!(
            listed.lines().filter(|l| *l == line).count(),
            1,
            "{line} in {listed}"
        );
    }

    // The loop is making progress before the freeze.
    let mut c0 = 0;
    wait_until("the counter to start", || {
        counter(&count).inspect(|&c| c0 = c).is_some()
    });
    wait_until("the counter to advance", || {
        counter(&count).is_some_and(|c| c > c0)
    });
    assert!(!kernel_frozen(&g.name));

    let out = enforcer_ok(&["freeze", &g.name]);
    assert!(out.contains("frozen"), "{out}");
    // `freeze` returns once the kernel reports the state reached.
    assert!(
        kernel_frozen(&g.name),
        "the kernel does not report it frozen"
    );
    let frozen_at = std::fs::read_to_string(&count).unwrap();
    // An observation window, not synchronisation: a running loop rewrites the
    // file thousands of times in this time.
    let window = Instant::now();
    while window.elapsed() < Duration::from_millis(300) {
        assert_eq!(
            std::fs::read_to_string(&count).unwrap(),
            frozen_at,
            "the counter moved while frozen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(!state.contains(") R "), "{state}");

    let out = enforcer_ok(&["thaw", &g.name]);
    assert!(out.contains("thawed"), "{out}");
    assert!(!kernel_frozen(&g.name));
    let c1 = frozen_at.trim().parse().unwrap_or(0);
    wait_until("the counter to resume after thaw", || {
        counter(&count).is_some_and(|c| c > c1)
    });

    // Deleting a group with a process moves the process to the parent.
    enforcer_ok(&["delete", "-g", &spec]);
    assert!(dirs_of(&g.name).is_empty());
    assert!(
        child.try_wait().unwrap().is_none(),
        "the process must survive delete"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // kill -s TERM: the group is frozen, every process signalled, then thawed
    // so the signals are delivered.
    enforcer_ok(&["create", "-g", &spec]);
    let trapping_count = tmp.join("trapping");
    let mut trapping = exec_counter(&spec, &trapping_count);
    let mut plain = exec_in(&spec, &["sleep", "30"]);
    wait_placed(&g.name, trapping.id());
    wait_placed(&g.name, plain.id());
    wait_until("the trapping loop to start", || {
        counter(&trapping_count).is_some()
    });
    let out = enforcer_ok(&["kill", "-s", "TERM", &g.name]);
    assert!(out.contains("sent SIGTERM to 2 processes"), "{out}");
    assert!(!kernel_frozen(&g.name), "kill left the group frozen");
    let status = wait_exit(&mut trapping);
    assert_eq!(
        status.code(),
        Some(0),
        "the TERM trap did not run: {status:?}"
    );
    let marker = std::fs::read_to_string(tmp.join("trapping.term")).unwrap();
    assert_eq!(marker.trim(), "term");
    assert_eq!(wait_exit(&mut plain).signal(), Some(15));

    // kill (KILL): every process in the group is killed.
    let mut a = exec_in(&spec, &["sleep", "30"]);
    let mut b = exec_in(&spec, &["sleep", "30"]);
    wait_placed(&g.name, a.id());
    wait_placed(&g.name, b.id());
    let out = enforcer_ok(&["kill", &g.name]);
    assert!(out.contains("2 processes"), "{out}");
    assert_eq!(wait_exit(&mut a).signal(), Some(9));
    assert_eq!(wait_exit(&mut b).signal(), Some(9));
    enforcer_ok(&["delete", "-g", &spec]);
    std::fs::remove_dir_all(tmp).ok();
}

#[test]
fn create_sets_ownership_like_cgcreate() {
    if layout::skip_without("create_sets_ownership_like_cgcreate", &["memory"]) {
        return;
    }
    let g = GroupGuard::new("own");
    enforcer_ok(&[
        "create",
        "-a",
        "1234:2345",
        "-t",
        "3456:4567",
        "-g",
        &format!("memory:{}", g.name),
    ]);
    let dir = layout::dir_of("memory", &g.name);
    let d = std::fs::metadata(&dir).unwrap();
    assert_eq!((d.uid(), d.gid()), (1234, 2345));
    let t = std::fs::metadata(dir.join("cgroup.procs")).unwrap();
    assert_eq!((t.uid(), t.gid()), (3456, 4567));
    let limit = spelled("memory.limit_in_bytes", "memory.max");
    let f = std::fs::metadata(dir.join(limit)).unwrap();
    assert_eq!((f.uid(), f.gid()), (1234, 2345));
}

#[test]
fn tiny_memory_limit_warns_and_reads_back_zero() {
    if layout::skip_without("tiny_memory_limit_warns_and_reads_back_zero", &["memory"]) {
        return;
    }
    let g = GroupGuard::new("tiny");
    enforcer_ok(&["create", "-g", &format!("memory:{}", g.name)]);
    let out = enforcer(&["set", "-r", "memory.limit_in_bytes=500", &g.name]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("OOM-killed"),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reads back 0"));
}

/// Bad input: exit status 2, a message naming the problem, and nothing changed.
#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    if layout::skip_without(
        "bad_input_is_rejected_and_changes_nothing",
        &["memory", "cpuset"],
    ) {
        return;
    }
    let g = GroupGuard::new("bad");
    let fresh = GroupGuard::new("never");
    let mem = format!("memory:{}", g.name);
    enforcer_ok(&["create", "-g", &format!("memory,cpuset:{}", g.name)]);
    enforcer_ok(&["create", "-g", &format!("memory:{}/child", g.name)]);
    enforcer_ok(&["set", "-r", "memory.limit_in_bytes=64M", &g.name]);
    let limit = || {
        value_of(
            &get_json(&g.name, &["-r", "memory.limit_in_bytes"]),
            spelled("memory.limit_in_bytes", "memory.max"),
        )
    };
    let child = format!("{}/child", g.name);
    let child_dirs = sorted(layout::dirs_for(&["memory"], &child));
    // Where `memory:../etc` would land if `..` were dropped or let through.
    let memory_root = layout::mount_of("memory");
    let outside = memory_root.parent().unwrap().join("etc");
    let outside_before = outside.exists();
    let before = limit();
    let long = "x".repeat(256);
    let dir = tempfile_dir();
    let syntax = dir.join("syntax.conf");
    std::fs::write(
        &syntax,
        format!(
            "group {} {{\n  memory {{\n    memory.limit_in_bytes 5000000;\n  }}\n}}\n",
            fresh.name
        ),
    )
    .unwrap();
    let half = dir.join("half.conf");
    std::fs::write(
        &half,
        format!(
            "group {} {{ memory {{ }} }}\ngroup {}/x {{ memory {{ memory.bogus = 1; }} }}\n",
            fresh.name, fresh.name
        ),
    )
    .unwrap();
    let (syntax, half) = (
        syntax.to_str().unwrap().to_string(),
        half.to_str().unwrap().to_string(),
    );
    let never = format!("memory:{}", fresh.name);
    let never_long = format!("memory:{}/{long}", fresh.name);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["create", "-g", "memory:../etc"], "invalid group path"),
        (vec!["create", "-g", "memory:a//b"], "empty component"),
        (vec!["create", "-g", "memory:a b"], "only letters"),
        (vec!["create", "-g", &never_long], "longer than 255"),
        (vec!["create", "-g", "memory:/"], "root group"),
        (
            vec!["create", "-g", "nosuch:x"],
            "unknown controller \"nosuch\"",
        ),
        (
            vec!["create", "-g", &never, "-g", "nosuch:y"],
            "unknown controller",
        ),
        (vec!["create", "-g", "memoryfoo"], "CONTROLLERS:PATH"),
        (
            vec!["set", "-r", "memory.nosuch=1", &g.name],
            "unknown key \"memory.nosuch\"",
        ),
        (
            vec!["set", "-r", "memory.limit_in_bytes=10XB", &g.name],
            "unknown unit",
        ),
        (
            vec!["set", "-r", "memory.limit_in_bytes=-5", &g.name],
            "cannot be negative",
        ),
        (
            vec!["set", "-r", "memory.limit_in_bytes=abc", &g.name],
            "expected a number",
        ),
        (
            vec!["set", "-r", "cpu.shares=1", &g.name],
            "from 2 to 262144",
        ),
        (
            vec!["set", "-r", "cpuset.cpus=0-5", &g.name],
            "online CPUs are",
        ),
        (
            vec!["set", "-r", "cgroup.procs=1", &g.name],
            "enforcer classify",
        ),
        (vec!["set", "-r", "noequals", &g.name], "KEY=VALUE"),
        (
            vec!["set", "-r", "memory.limit_in_bytes=1G", &fresh.name],
            "does not exist",
        ),
        (
            vec![
                "set",
                "-r",
                "memory.limit_in_bytes=1G",
                "-r",
                "memory.bogus=2",
                &g.name,
            ],
            "unknown key",
        ),
        (vec!["delete", "-g", "memory:/"], "root group"),
        (vec!["delete", "-g", &mem], "has subgroups"),
        (vec!["delete", "-g", &never], "does not exist"),
        (vec!["classify", "-g", &mem, "999999999"], "no process"),
        (vec!["kill", "-s", "NOPE", &g.name], "unknown signal"),
        (vec!["apply", &syntax], ":3:27: expected"),
        (vec!["apply", &half], "memory.bogus"),
    ];
    for (args, fragment) in &cases {
        let out = enforcer(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(fragment),
            "{args:?}: expected {fragment:?} in {err}"
        );
        assert_eq!(limit(), before, "{args:?} changed the limit");
        assert!(
            dirs_of(&fresh.name).is_empty(),
            "{args:?} created {}",
            fresh.name
        );
        assert_eq!(
            sorted(dirs_of(&child)),
            child_dirs,
            "{args:?} removed a child"
        );
    }
    // Only enforcer's groups were touched.
    assert!(!memory_root.join("etc").exists());
    assert_eq!(outside.exists(), outside_before, "{}", outside.display());
    enforcer_ok(&["delete", "-r", "-g", &format!("memory,cpuset:{}", g.name)]);
    assert!(dirs_of(&g.name).is_empty());
    std::fs::remove_dir_all(dir).ok();
}

/// A group named like a controller's file (`memory.limit_in_bytes`, `cgroup.x`,
/// `tasks`) would sit among the control files, and in the cgroup2 tree it could
/// not be told apart from one: refused as bad input before anything is created.
#[test]
fn group_named_like_a_control_file_is_refused() {
    if layout::skip_without("group_named_like_a_control_file_is_refused", &["memory"]) {
        return;
    }
    let cg = Cgroups::discover().unwrap();
    let unique = enforcer_tests::unique_name("ctl");
    let names = [
        "memory.limit_in_bytes".to_string(),
        format!("memory.{unique}"),
        format!("cgroup.{unique}"),
        format!("{unique}/tasks"),
        format!("{unique}/io.{unique}"),
    ];
    // Directories a broken build might leave: removed afterwards if (and only
    // if) this test made them.
    let mut candidates: Vec<std::path::PathBuf> = Vec::new();
    for h in cg.hierarchies() {
        candidates.push(h.mount_point.join(&unique));
        candidates.extend(names.iter().map(|n| h.mount_point.join(n)));
    }
    let existed: Vec<bool> = candidates.iter().map(|d| d.is_dir()).collect();
    let cleanup = Cleanup(
        candidates
            .iter()
            .zip(&existed)
            .filter(|(_, e)| !**e)
            .map(|(d, _)| d.clone())
            .collect(),
    );
    let dir = tempfile_dir();
    let conf = dir.join("ctl.conf");
    std::fs::write(
        &conf,
        format!("group {unique} {{ memory {{ }} }}\ngroup cgroup.{unique} {{ memory {{ }} }}\n"),
    )
    .unwrap();
    for name in &names {
        let spec = format!("memory:{name}");
        let out = enforcer(&["create", "-g", &spec]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "create {spec}: {err}");
        assert!(
            err.contains("control file") && err.contains("rename"),
            "create {spec}: {err}"
        );
        for args in [
            vec!["set", "-r", "memory.limit_in_bytes=64M", name.as_str()],
            vec!["delete", "-g", spec.as_str()],
            vec!["get", name.as_str()],
        ] {
            let out = enforcer(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        }
    }
    let out = enforcer(&["apply", conf.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "apply: {err}");
    assert!(
        err.contains(":2:7: ") && err.contains("control file"),
        "{err}"
    );
    for (d, existed) in candidates.iter().zip(&existed) {
        assert_eq!(d.is_dir(), *existed, "{} was created", d.display());
    }
    drop(cleanup);
    std::fs::remove_dir_all(dir).ok();
}

/// Removes the listed directories (deepest first) if they exist, on panic too.
struct Cleanup(Vec<std::path::PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut dirs = self.0.clone();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A policy file that is missing, or a directory, is bad input for every verb
/// that reads one: exit 2, naming the file and what to do.
#[test]
fn missing_or_directory_policy_file_is_bad_input() {
    let dir = tempfile_dir();
    let missing = dir.join("absent.conf");
    let (missing, dir_s) = (missing.to_str().unwrap(), dir.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["apply", missing], missing, "does not exist"),
        (
            vec!["apply", "--dry-run", missing],
            missing,
            "does not exist",
        ),
        (vec!["apply", dir_s], dir_s, "is a directory"),
        (
            vec!["reload", "--config", missing],
            missing,
            "does not exist",
        ),
        (vec!["reload", "--config", dir_s], dir_s, "is a directory"),
    ];
    for (args, file, fragment) in cases {
        let out = enforcer(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(file)
                && err.contains(fragment)
                && (err.contains("check the path")
                    || err.contains("give the path of the policy file")),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// `set` on the root group is refused up front (exit 2), not left to the kernel.
/// Only pids is used: the root has no `pids.max`, so even a broken build cannot
/// change anything on the host's root group.
#[test]
fn set_on_the_root_group_is_bad_input() {
    let g = GroupGuard::new("rootset");
    enforcer_ok(&["create", "-g", &format!("pids:{}", g.name)]);
    enforcer_ok(&["set", "-r", "pids.max=50", &g.name]);
    for args in [
        vec!["set", "-r", "pids.max=40", "/"],
        vec!["set", "-r", "pids.max=40", &g.name, "/"],
        vec!["set", "--copy-from", &g.name, "/"],
    ] {
        let out = enforcer(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("root group") && err.contains("name a group below it"),
            "{args:?}: {err}"
        );
        let v = get_json(&g.name, &["-r", "pids.max"]);
        assert_eq!(
            value_of(&v, "pids.max"),
            "50",
            "{args:?} changed {}",
            g.name
        );
    }
}

/// `io.weight` / `blkio.weight` go to the weight file this kernel has: on v1,
/// CFQ's `blkio.weight` where it exists, BFQ's `blkio.bfq.weight` (range
/// 1..1000) otherwise, as on this host; on cgroup2, `io.weight` (io.cost)
/// before BFQ's `io.bfq.weight`. `get` reads back the file `set` wrote. A
/// kernel with none of them (no io.cost, BFQ not loaded) offers no I/O weight
/// at all: then the key is refused as unknown.
#[test]
fn io_weight_uses_the_weight_file_this_kernel_has() {
    const TEST: &str = "io_weight_uses_the_weight_file_this_kernel_has";
    if layout::skip_without(TEST, &["blkio"]) {
        return;
    }
    let g = GroupGuard::new("ioweight");
    let spec = format!("blkio:{}", g.name);
    enforcer_ok(&["create", "-g", &spec]);
    let dir = layout::dir_of("blkio", &g.name);
    // (file, what io.weight=500 becomes, what blkio.weight=300 becomes), in
    // the order enforcer prefers them. io = 1 + (300 - 10) * 9999 / 990 = 2930;
    // blkio = 10 + 499 * 990 / 9999 = 59; BFQ: 100 + 400 * 900 / 9900 = 136.
    let candidates = if is_v1("blkio") {
        [
            ("blkio.weight", "59", "300"),
            ("blkio.bfq.weight", "136", "300"),
        ]
    } else {
        [
            ("io.weight", "default 500", "default 2930"),
            ("io.bfq.weight", "default 136", "default 300"),
        ]
    };
    let names = [candidates[0].0, candidates[1].0];
    let Some(&(file, from_io_500, from_blkio_300)) =
        candidates.iter().find(|(f, _, _)| dir.join(f).is_file())
    else {
        enforcer_tests::skipped(
            TEST,
            &format!(
                "(weight conversions) {} has none of {names:?}; this kernel offers no I/O \
                 weight (no CFQ or io.cost, BFQ not loaded). Checking that the keys are \
                 refused instead.",
                dir.display()
            ),
        );
        for kv in ["io.weight=500", "blkio.weight=300"] {
            let out = enforcer(&["set", "-r", kv, &g.name]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{kv}: {err}");
            assert!(
                err.contains("unknown key") && names.iter().all(|n| err.contains(n)),
                "{kv}: {err}"
            );
        }
        for n in names {
            assert!(!dir.join(n).exists(), "set created {n}");
        }
        // A group still to be created cannot show its files beforehand (these
        // are never on the root): the write fails in the kernel, and apply
        // rolls back.
        let fresh = GroupGuard::new("ioweight-apply");
        let d = tempfile_dir();
        let conf = d.join("io.toml");
        std::fs::write(
            &conf,
            format!("[group.\"{}\"]\n\"io.weight\" = 500\n", fresh.name),
        )
        .unwrap();
        let out = enforcer(&["apply", conf.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("rolled back"), "{err}");
        assert!(dirs_of(&fresh.name).is_empty(), "{err}");
        std::fs::remove_dir_all(d).ok();
        return;
    };
    for (key, value, expect) in [
        ("io.weight", "500", from_io_500),
        ("blkio.weight", "300", from_blkio_300),
    ] {
        let out = enforcer_ok(&["set", "--json", "-r", &format!("{key}={value}"), &g.name]);
        let o: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(o[0]["file"], file, "{out}");
        assert_eq!(o[0]["effective"], expect, "{out}");
        for k in ["io.weight", "blkio.weight"] {
            let v = get_json(&g.name, &["-r", k]);
            assert_eq!(value_of(&v, file), expect, "get -r {k}: {v}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.join(file)).unwrap().trim(),
            expect
        );
    }
    // Out of range for every spelling: bad input, nothing written.
    for bad in ["io.weight=0", "io.weight=10001", "blkio.weight=5"] {
        let out = enforcer(&["set", "-r", bad, &g.name]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join(file)).unwrap().trim(),
        from_blkio_300
    );

    // apply on a group that does not exist yet: the file is chosen once it does.
    let fresh = GroupGuard::new("ioweight-apply");
    let d = tempfile_dir();
    let conf = d.join("io.toml");
    std::fs::write(
        &conf,
        format!("[group.\"{}\"]\n\"io.weight\" = 500\n", fresh.name),
    )
    .unwrap();
    let out = enforcer_ok(&["apply", "--json", conf.to_str().unwrap()]);
    let a: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(a["writes"][0]["file"], file, "{out}");
    assert_eq!(a["writes"][0]["effective"], from_io_500, "{out}");
    std::fs::remove_dir_all(d).ok();
}

/// `ENFORCER_LOG=info` names every directory created or removed, by `create`,
/// `apply` (and its rollback) and `delete`.
#[test]
fn info_log_names_each_directory_created_or_removed() {
    if layout::skip_without(
        "info_log_names_each_directory_created_or_removed",
        &["memory", "cpu", "pids"],
    ) {
        return;
    }
    let g = GroupGuard::new("log");
    let other = GroupGuard::new("log-b");
    let info = [("ENFORCER_LOG", "info")];
    let dirs_for = |ctrls: &[&str], name: &str| -> Vec<String> {
        layout::dirs_for(ctrls, name)
            .iter()
            .map(|d| d.display().to_string())
            .collect()
    };
    let assert_logged = |err: &str, verb: &str, dirs: &[String]| {
        for d in dirs {
            assert!(
                err.lines()
                    .any(|l| l.contains(verb) && l.ends_with(d.as_str())),
                "no `{verb}` line for {d} in:\n{err}"
            );
        }
    };

    let dir = tempfile_dir();
    let file = dir.join("log.conf");
    std::fs::write(
        &file,
        format!(
            "group {0}/a {{ memory {{ memory.limit_in_bytes = 64M; }} }}\ngroup {0}/b {{ cpu {{ }} }}\n",
            g.name
        ),
    )
    .unwrap();
    let out = enforcer_env(&info, &["apply", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let mut created = dirs_for(&["memory"], &g.name);
    created.extend(dirs_for(&["memory"], &format!("{}/a", g.name)));
    created.extend(dirs_for(&["cpu"], &g.name));
    created.extend(dirs_for(&["cpu"], &format!("{}/b", g.name)));
    assert_logged(&err, "created", &created);

    let out = enforcer_env(
        &info,
        &["delete", "-r", "-g", &format!("memory,cpu:{}", g.name)],
    );
    assert!(out.status.success(), "{out:?}");
    assert_logged(&String::from_utf8_lossy(&out.stderr), "removed", &created);

    let spec = format!("pids:{}/x", other.name);
    let out = enforcer_env(&info, &["create", "-g", &spec]);
    assert!(out.status.success(), "{out:?}");
    let mut made = dirs_for(&["pids"], &other.name);
    made.extend(dirs_for(&["pids"], &format!("{}/x", other.name)));
    assert_logged(&String::from_utf8_lossy(&out.stderr), "created", &made);

    // A rollback names what it removes.
    let (key, value) = layout::refused_memory_setting();
    std::fs::write(
        &file,
        format!(
            "group {0}/y {{ memory {{ {key} = {value}; }} }}\n",
            other.name
        ),
    )
    .unwrap();
    let out = enforcer_env(&info, &["apply", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rolled = dirs_for(&["memory"], &format!("{}/y", other.name));
    assert_logged(&String::from_utf8_lossy(&out.stderr), "removed", &rolled);
    std::fs::remove_dir_all(dir).ok();
}

/// Runs `enforcer ARGS` with stdout a pipe whose read end is already closed:
/// every write to stdout fails with EPIPE.
fn enforcer_into_closed_pipe(args: &[&str]) -> std::process::Output {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    Command::new(enforcer_bin())
        .args(args)
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// A reader that goes away (`enforcer list | head -1`) ends the program
/// quietly with status 0, whichever verb was printing: never a panic (101).
#[test]
fn every_printing_verb_survives_a_closed_stdout() {
    if layout::skip_without(
        "every_printing_verb_survives_a_closed_stdout",
        &["memory", "freezer"],
    ) {
        return;
    }
    let g = GroupGuard::new("pipe");
    let spec = format!("memory,freezer:{}", g.name);
    enforcer_ok(&["create", "-g", &spec]);
    // Long enough to outlive the verbs in an emulated guest too.
    let mut child = exec_in(&spec, &["sleep", "600"]);
    let pid = child.id().to_string();
    wait_placed(&g.name, child.id());
    let dir = tempfile_dir();
    let file = dir.join("pipe.conf");
    std::fs::write(
        &file,
        format!(
            "group {} {{ memory {{ memory.limit_in_bytes = 64M; }} }}\n",
            g.name
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["get", "-g", "memory", "/"],
        vec!["get", "--json", "-g", "memory", "/"],
        vec!["get", &g.name],
        vec!["list"],
        vec!["list", "--json"],
        vec!["which", &pid],
        vec!["which", "--json", &pid],
        vec!["status"],
        vec!["apply", "--dry-run", file],
        vec!["apply", file],
        vec!["apply", "--json", file],
        vec!["set", "-r", "memory.limit_in_bytes=32M", &g.name],
        vec!["set", "--json", "-r", "memory.limit_in_bytes=48M", &g.name],
        vec!["freeze", &g.name],
        vec!["thaw", &g.name],
        vec!["kill", "-s", "CONT", &g.name],
        vec!["--help"],
        vec!["--version"],
    ];
    for args in &cases {
        let out = enforcer_into_closed_pipe(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} was not quiet: {err}");
    }
    // The verbs still did their work before their output was lost.
    let v = get_json(&g.name, &["-r", "memory.limit_in_bytes"]);
    assert_eq!(
        value_of(&v, spelled("memory.limit_in_bytes", "memory.max")),
        (48u64 << 20).to_string()
    );
    let ended = child.try_wait().unwrap();
    assert!(ended.is_none(), "CONT must not end it: {ended:?}");
    // stats reads the agent's pins, which may or may not exist: whatever it
    // says, it must not panic.
    let out = enforcer_into_closed_pipe(&["stats", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "stats: {err}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(dir).ok();
}

/// "does not exist" errors suggest a command that works: running the suggested
/// command creates the group.
#[test]
fn not_found_hint_suggests_a_working_command() {
    let g = GroupGuard::new("hint");
    for args in [
        vec!["get", g.name.as_str()],
        vec!["kill", g.name.as_str()],
        vec!["set", "--copy-from", g.name.as_str(), "x"],
    ] {
        let out = enforcer(&args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let start = err
            .find("`enforcer ")
            .unwrap_or_else(|| panic!("{args:?}: no suggested command in {err}"));
        let cmd = &err[start + "`enforcer ".len()..];
        let cmd = &cmd[..cmd.find('`').unwrap()];
        // The suggestion is written for a shell: single quotes protect `*`.
        let words: Vec<String> = cmd
            .split_whitespace()
            .map(|w| w.replace('\'', ""))
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(words.first(), Some(&"create"), "{args:?}: {err}");
        enforcer_ok(&words);
        assert!(!dirs_of(&g.name).is_empty(), "{cmd} created nothing");
        enforcer_ok(&["get", &g.name]);
        for d in dirs_of(&g.name) {
            std::fs::remove_dir(&d).unwrap();
        }
    }
}

/// A failing `apply` puts back the values it overwrote in groups that already
/// existed (and keeps those groups), and removes the groups it created.
#[test]
fn apply_restores_overwritten_values_when_a_later_group_fails() {
    if layout::skip_without(
        "apply_restores_overwritten_values_when_a_later_group_fails",
        &["memory", "cpu"],
    ) {
        return;
    }
    let a = GroupGuard::new("restore-a");
    let b = GroupGuard::new("restore-b");
    enforcer_ok(&["create", "-g", &format!("memory,cpu:{}", a.name)]);
    enforcer_ok(&[
        "set",
        "-r",
        "memory.limit_in_bytes=64M",
        "-r",
        "cpu.shares=700",
        &a.name,
    ]);
    let values = || {
        let v = get_json(
            &a.name,
            &["-r", "memory.limit_in_bytes", "-r", "cpu.shares"],
        );
        (
            value_of(&v, spelled("memory.limit_in_bytes", "memory.max")),
            value_of(&v, spelled("cpu.shares", "cpu.weight")),
        )
    };
    let before = values();
    // cgroup2 keeps 700 shares as weight 700 * 100 / 1024 = 68.
    let cpu = if is_v1("cpu") { "700" } else { "68" };
    assert_eq!(before, ((64u64 << 20).to_string(), cpu.to_string()));
    let dir = tempfile_dir();
    let file = dir.join("restore.conf");
    // a's values are written first; b's then fails in the kernel.
    let (key, value) = layout::refused_memory_setting();
    std::fs::write(
        &file,
        format!(
            "group {} {{\n  memory {{ memory.limit_in_bytes = 32M; }}\n  cpu {{ cpu.shares = 300; }}\n}}\n\
             group {} {{ memory {{ {key} = {value}; }} }}\n",
            a.name, b.name
        ),
    )
    .unwrap();
    let out = enforcer(&["apply", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("restored 2 values"), "{err}");
    assert_eq!(values(), before, "apply did not restore {}", a.name);
    assert_eq!(
        sorted(dirs_of(&a.name)),
        sorted(layout::dirs_for(&["memory", "cpu"], &a.name)),
        "{} must stay",
        a.name
    );
    assert!(dirs_of(&b.name).is_empty(), "{} must be removed", b.name);
    std::fs::remove_dir_all(dir).ok();
}

/// `set --copy-from SRC DST` gives DST the settings of SRC.
#[test]
fn set_copy_from_copies_the_settings() {
    if layout::skip_without(
        "set_copy_from_copies_the_settings",
        &["memory", "cpu", "pids"],
    ) {
        return;
    }
    let src = GroupGuard::new("copy-src");
    let dst = GroupGuard::new("copy-dst");
    let ctrls = "memory,cpu,pids";
    enforcer_ok(&["create", "-g", &format!("{ctrls}:{}", src.name)]);
    enforcer_ok(&["create", "-g", &format!("{ctrls}:{}", dst.name)]);
    // Each in the spelling of this host's files, so the key is the file.
    // cgroup2 has no swappiness: memory.oom.group is its plain-file knob.
    let settings = [
        (
            spelled("memory.limit_in_bytes", "memory.max"),
            (48u64 << 20).to_string(),
        ),
        if is_v1("memory") {
            ("memory.swappiness", "17".to_string())
        } else {
            ("memory.oom.group", "1".to_string())
        },
        if is_v1("cpu") {
            ("cpu.shares", "333".to_string())
        } else {
            // Not a weight a nice level has: copying cpu.weight.nice too
            // would make it 51.
            ("cpu.weight", "50".to_string())
        },
        if is_v1("cpu") {
            ("cpu.cfs_quota_us", "25000".to_string())
        } else {
            ("cpu.max", "25000 100000".to_string())
        },
        ("pids.max", "77".to_string()),
    ];
    let mut args = vec!["set".to_string()];
    for (k, v) in &settings {
        args.extend(["-r".to_string(), format!("{k}={v}")]);
    }
    args.push(src.name.clone());
    enforcer_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let keys: Vec<&str> = settings.iter().flat_map(|(k, _)| ["-r", *k]).collect();
    let before = get_json(&dst.name, &keys);
    for (k, v) in &settings {
        assert_ne!(&value_of(&before, k), v, "{k} already equal");
    }

    let out = enforcer_ok(&["set", "--json", "--copy-from", &src.name, &dst.name]);
    let outcomes: serde_json::Value = serde_json::from_str(&out).unwrap();
    let written: Vec<&str> = outcomes
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["group"], format!("/{}", dst.name));
            o["file"].as_str().unwrap()
        })
        .collect();
    let after = get_json(&dst.name, &keys);
    for (k, v) in &settings {
        assert!(written.contains(k), "{k} not copied: {written:?}");
        assert_eq!(&value_of(&after, k), v, "{k}");
    }
    // Nothing but settings: no process lists, triggers or counters.
    for f in &written {
        assert!(
            !f.starts_with("cgroup.") && *f != "tasks" && *f != "memory.force_empty",
            "{f} copied"
        );
    }
    // The source is unchanged.
    let src_now = get_json(&src.name, &keys);
    for (k, v) in &settings {
        assert_eq!(&value_of(&src_now, k), v, "{k} of the source");
    }
}

/// `list CONTROLLERS:PATH` shows the group and its subgroups, parents first, in
/// each hierarchy of those controllers (and the cgroup2 mirror), and nothing
/// else; `--json` says the same.
#[test]
fn list_path_and_json() {
    if layout::skip_without("list_path_and_json", &["memory", "pids"]) {
        return;
    }
    let g = GroupGuard::new("list");
    for sub in ["b/y", "a/x", "a/w"] {
        enforcer_ok(&["create", "-g", &format!("memory:{}/{sub}", g.name)]);
    }
    enforcer_ok(&["create", "-g", &format!("pids:{}/p", g.name)]);
    // What was made with which controller; a group is in a hierarchy when its
    // controller's hierarchies include it (the cgroup2 tree holds every group).
    let made = [
        ("memory", vec!["", "/a", "/a/w", "/a/x", "/b", "/b/y"]),
        ("pids", vec!["", "/p"]),
    ];
    // `list CTRL:NAME`: per hierarchy of CTRL (mount order), parents first.
    let expect_for = |ctrl: &str| -> Vec<String> {
        let mut out = Vec::new();
        for label in layout::labels_for(&[ctrl]) {
            let mut paths: Vec<String> = made
                .iter()
                .filter(|(c, _)| layout::labels_for(&[c]).contains(&label))
                .flat_map(|(_, tree)| tree.iter().map(|t| format!("/{}{t}", g.name)))
                .collect();
            paths.sort();
            paths.dedup();
            out.extend(paths.into_iter().map(|p| format!("{label}:{p}")));
        }
        out
    };
    let expect = expect_for("memory");
    let out = enforcer_ok(&["list", &format!("memory:{}", g.name)]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, expect, "{out}");

    let out = enforcer_ok(&["list", "--json", &format!("memory:/{}/a", g.name)]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{}:{}",
                x["controllers"].as_str().unwrap(),
                x["path"].as_str().unwrap()
            )
        })
        .collect();
    let want: Vec<String> = expect
        .iter()
        .filter(|l| l.contains(&format!("/{}/a", g.name)))
        .cloned()
        .collect();
    assert_eq!(got, want, "{out}");

    // The pids hierarchy: the group and /p (v1), the whole cgroup2 tree (v2).
    let out = enforcer_ok(&["list", &format!("pids:{}", g.name)]);
    let label = format!("{}:", layout::label_of("pids"));
    let pids: Vec<&str> = out.lines().filter(|l| l.starts_with(&label)).collect();
    let want: Vec<String> = expect_for("pids")
        .into_iter()
        .filter(|l| l.starts_with(&label))
        .collect();
    assert_eq!(pids, want, "{out}");
}
