//! README's promises about the agent (root, real kernel), each checked where
//! no other test did: the built-in default (port 9750, a table into a pipe,
//! Ctrl-C, logs held while `top` owns the terminal), `top` on kept pins,
//! command-line flags over the policy file, `stats --json` and the metric
//! table as README lists them, `stop` beside another agent, what other users
//! may read, ring-buffer losses reported, SIGHUP, a reload giving back what
//! the arbiter yielded, and the kernel's egress shares.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use enforcer_tests::layout::{self, dir_of, is_v1, skip_without_cgroup2, spec};
use enforcer_tests::tmux::Tmux;
use enforcer_tests::{
    AgentRun, GroupGuard, as_nobody, enforcer, enforcer_bin, enforcer_ok, helper_bin, time_scale,
    unique_name, wait_for,
};

/// Waits for `f`, generously: a deadline for a hung test, not a timing
/// assertion (a loaded host or an emulated guest can take seconds).
fn wait_until(what: &str, f: impl FnMut() -> bool) {
    enforcer_tests::wait_for(what, std::time::Duration::from_secs(60), f);
}

/// The scenarios that load the CPUs or the loopback, and the one that uses
/// the default pin directory and port, run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_policy(run: &AgentRun, text: &str) -> PathBuf {
    let p = run.file("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `enforcer exec -g SPEC -- helper ARGS`, waited for.
fn helper_in(spec: &str, args: &[&str]) -> std::process::Output {
    Command::new(enforcer_bin())
        .args(["exec", "-g", spec, "--"])
        .arg(helper_bin())
        .args(args)
        .output()
        .unwrap()
}

/// Children killed when dropped, also on panic.
#[derive(Default)]
struct Procs(Vec<Child>);

impl Procs {
    fn spawn(&mut self, spec: &str, args: &[&str]) {
        let child = Command::new(enforcer_bin())
            .args(["exec", "-g", spec, "--"])
            .arg(helper_bin())
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.0.push(child);
    }

    fn stop(&mut self) {
        for mut c in self.0.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        self.stop();
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

/// `GET /metrics` on 127.0.0.1:`port`: the body, if something answers 200.
fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// SIGTERM, as `systemctl stop` does, and a clean exit.
fn terminate(run: &mut AgentRun) {
    let mut child = run.child.take().unwrap();
    signal(&child, nix::sys::signal::Signal::SIGTERM);
    let st = child.wait().unwrap();
    assert!(st.success(), "a clean exit: {st}\n{}", run.log());
}

/// Files below `dir` (the pins), recursively.
fn pins(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        pins(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn egress_bytes(run: &AgentRun, group: &str) -> u64 {
    run.stats(group)["net"]["egress_bytes"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn the_default_agent_serves_9750_prints_a_table_into_a_pipe_and_stops_on_ctrl_c() {
    const TEST: &str =
        "the_default_agent_serves_9750_prints_a_table_into_a_pipe_and_stops_on_ctrl_c";
    if skip_without_cgroup2(TEST) {
        return;
    }
    let _one = serial();
    // Observe mode outside AgentRun: this test takes its turn itself.
    let _observe = enforcer_tests::agent_run::observe_lock();
    let pins_dir = Path::new("/sys/fs/bpf/enforcer");
    if pins_dir.join("maps").exists() || TcpListener::bind("127.0.0.1:9750").is_err() {
        enforcer_tests::skipped(TEST, "an agent uses the default pin directory or port here");
        return;
    }
    let pins_existed = pins_dir.exists();
    let audit = Path::new("/var/log/enforcer/audit.jsonl");
    let audit_existed = audit.exists();

    // Not on a terminal: a plain table every interval, metrics on 9750.
    let mut agent = Command::new(enforcer_bin())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(agent.stdout.take().unwrap());
    let mut headers = 0;
    let deadline = Instant::now() + Duration::from_secs(30) * time_scale();
    while headers < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("two tables within 30 s, saw {headers}"));
        assert!(!line.contains('\x1b'), "{line:?}");
        if line.starts_with("GROUP") {
            headers += 1;
        }
    }
    let body = scrape(9750).expect("metrics at http://127.0.0.1:9750/metrics");
    assert!(body.contains("enforcer_build_info"), "{body}");
    // The audit log's default place.
    let fds: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{}/fd", agent.id()))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .collect();
    assert!(fds.iter().any(|p| p == audit), "audit log open: {fds:?}");
    // Ctrl-C: a clean exit that takes the programs off again.
    signal(&agent, nix::sys::signal::Signal::SIGINT);
    let st = agent.wait().unwrap();
    assert!(st.success(), "SIGINT ends it cleanly: {st}");
    assert_eq!(pins(pins_dir), 0, "observe mode removed its pins");

    // On a terminal: `top` owns it, log lines are held until it ends, and
    // Ctrl-C ends both.
    let dir = std::env::temp_dir().join(unique_name("default"));
    std::fs::create_dir_all(&dir).unwrap();
    let exit = dir.join("exit");
    let t = Tmux::start(
        &format!(
            "ENFORCER_LOG=info {}; echo EXIT=$? > {}",
            enforcer_bin().display(),
            exit.display()
        ),
        &[],
    );
    let s = t.wait_screen("the live view", |s| {
        s.contains("enforcer top:") && s.contains("GROUP")
    });
    assert!(
        !s.contains("INFO"),
        "a log line while top owns the terminal:\n{s}"
    );
    t.keys(&["C-c"]);
    // `echo > FILE` creates FILE empty before writing: wait for the line.
    wait_until("enforcer to exit", || {
        std::fs::read_to_string(&exit).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "EXIT=0");
    let s = t.wait_screen("the held log lines", |s| s.contains("INFO"));
    assert!(!s.contains("EGRESS/s"), "the table is gone:\n{s}");
    assert_eq!(pins(pins_dir), 0, "observe mode removed its pins");

    if !pins_existed {
        // The empty, private directories the agent keeps: this test made them.
        for sub in ["maps", "links", "enforce"] {
            let _ = std::fs::remove_dir(pins_dir.join(sub));
        }
        let _ = std::fs::remove_dir(pins_dir);
    }
    if !audit_existed {
        let _ = std::fs::remove_file(audit);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn top_reads_kept_pins_after_the_agent_stops_and_nothing_after_a_detaching_stop() {
    if skip_without_cgroup2(
        "top_reads_kept_pins_after_the_agent_stops_and_nothing_after_a_detaching_stop",
    ) {
        return;
    }
    let g = GroupGuard::new("keptpins");
    enforcer_ok(&["create", "-g", &spec(&g.name)]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    let send = || {
        let out = helper_in(&spec(&g.name), &["udp-send", &to, "10", "100"]);
        assert!(out.status.success(), "{out:?}");
    };
    let top_egress = |run: &AgentRun| -> Option<u64> {
        let out = enforcer(&[
            "top",
            "--once",
            "--json",
            "--pin-dir",
            run.pin(),
            "--interval",
            "100ms",
            "--filter",
            &g.name,
        ]);
        if !out.status.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_array()?
            .iter()
            .find(|r| r["group"] == g.name.as_str())
            .and_then(|r| r["egress_bytes"].as_u64())
    };

    // Observe mode with --keep: after a clean stop the counts stay pinned,
    // keep counting, and `top` reads them.
    let mut run = AgentRun::new();
    run.start_observe(&["--keep"]);
    send();
    wait_until("the group counted", || egress_bytes(&run, &g.name) >= 1280);
    terminate(&mut run);
    send();
    let seen = top_egress(&run);
    assert_eq!(
        seen,
        Some(2560),
        "top after a kept stop: both sends counted"
    );
    // Its observe turn ends here (a shadowed binding would keep it).
    drop(run);

    // Observe mode without it: a clean stop takes everything off, and `top`
    // says there is nothing to read.
    let mut run = AgentRun::new();
    run.start_observe(&[]);
    send();
    wait_until("the group counted", || egress_bytes(&run, &g.name) >= 1280);
    terminate(&mut run);
    let out = enforcer(&[
        "top",
        "--once",
        "--pin-dir",
        run.pin(),
        "--interval",
        "100ms",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("enforcer run"), "{out:?}");
}

#[test]
fn run_flags_override_the_policy_file() {
    if skip_without_cgroup2("run_flags_override_the_policy_file") {
        return;
    }
    let g = GroupGuard::new("flags");
    let mut run = AgentRun::new();
    let file_port = free_port();
    let file_audit = run.file("file-audit.jsonl");
    let p = write_policy(
        &run,
        &format!(
            "[agent]\non_exit = \"keep\"\nmetrics = \"127.0.0.1:{file_port}\"\n\
             audit_log = \"{}\"\naudit_max_size = \"100M\"\nmetrics_max_groups = 500\n\n\
             [group.\"{n}\"]\n\"memory.max\" = \"256M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\n",
            file_audit.display(),
            n = g.name
        ),
    );
    // The flags: metrics on the run's own port, the audit log in its usual
    // place (both given by AgentRun), and these.
    run.start_with(
        &p,
        &[
            "--on-exit",
            "detach",
            "--audit-max-size",
            "4K",
            "--metrics-max-groups",
            "1",
        ],
    );
    assert!(
        scrape(file_port).is_none(),
        "the file's metrics address is not used"
    );
    let out = helper_in(&spec(&g.name), &["connect-loop", "127.0.0.2:9", "100"]);
    assert!(text(&out.stdout).contains("eperm 100"), "{out:?}");
    // Two subgroups of the policy's group, sending: counted as groups of
    // their own, besides the policy's (made after the group's own process
    // ended: on cgroup v2 a group with children holds no processes).
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    for x in ["x", "y"] {
        let sub = format!("{}/{x}", g.name);
        enforcer_ok(&["create", "-g", &spec(&sub)]);
        assert!(
            helper_in(&spec(&sub), &["udp-send", &to, "3", "100"])
                .status
                .success()
        );
    }
    let rotated = run.file("audit.jsonl.1");
    wait_until("the audit log rotated past 4K", || rotated.exists());
    assert!(!file_audit.exists(), "the file's audit log is not used");
    let omitted = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("enforcer_metrics_groups{state=\"omitted\"}"))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .expect("enforcer_metrics_groups{state=\"omitted\"}")
    };
    let mut metrics = String::new();
    wait_until("groups left out by --metrics-max-groups 1", || {
        metrics = scrape(run.port).unwrap_or_default();
        omitted(&metrics) >= 1.0
    });
    assert!(
        metrics.contains(&format!("group=\"{}\"", g.name)),
        "the policy's group always has its series"
    );
    assert!(
        !run.log().contains('\x1b'),
        "no colour into a file:\n{}",
        run.log()
    );
    terminate(&mut run);
    assert_eq!(
        pins(&run.pin_dir),
        0,
        "--on-exit detach over the file's keep"
    );

    // Without the flags the file's address is served and its on_exit kept;
    // --no-metrics switches metrics off whatever the file says.
    let pid = run.pid_file();
    let audit = run.file("audit.jsonl");
    let base = [
        "run",
        "--config",
        p.to_str().unwrap(),
        "--pin-dir",
        run.pin(),
        "--pid-file",
        pid.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
        "--interval",
        "100ms",
    ];
    for no_metrics in [false, true] {
        let mut args = base.to_vec();
        if no_metrics {
            args.push("--no-metrics");
        }
        let mut agent = Command::new(enforcer_bin())
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the agent to pin its maps", Duration::from_secs(60), || {
            run.pin_dir.join("maps/NET_EGRESS").exists()
        });
        if no_metrics {
            // Up and counting, yet nothing listens.
            let x = format!("{}/x", g.name);
            wait_until("the subgroup counted", || {
                assert!(
                    helper_in(&spec(&x), &["udp-send", &to, "1", "100"])
                        .status
                        .success()
                );
                !run.stats(&x).is_null()
            });
            assert!(scrape(file_port).is_none(), "--no-metrics");
        } else {
            wait_until("the file's metrics address", || scrape(file_port).is_some());
        }
        signal(&agent, nix::sys::signal::Signal::SIGTERM);
        assert!(agent.wait().unwrap().success());
        assert!(
            pins(&run.pin_dir) > 0,
            "the file's on_exit = \"keep\" without the flag"
        );
        enforcer_ok(&[
            "stop",
            "--pin-dir",
            run.pin(),
            "--pid-file",
            pid.to_str().unwrap(),
        ]);
    }
}

/// The keys of README's `stats --json` line: (section or "", key).
fn readme_stats_keys() -> Vec<(String, String)> {
    const README: &str = include_str!("../../README.md");
    let start = README
        .find("`{\"group\"")
        .expect("README's stats --json object");
    let text = &README[start + 1..];
    let text = &text[..text.find("}}`").expect("its end") + 2];
    let mut out = Vec::new();
    let mut rest = text.trim_start_matches('{');
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\n']);
        if rest.starts_with('}') || rest.is_empty() {
            break;
        }
        let q = rest[1..].find('"').unwrap() + 1;
        let key = &rest[1..q];
        rest = &rest[q + 1..];
        if let Some(after) = rest.strip_prefix(": {") {
            let end = after.find('}').unwrap();
            for k in after[..end].split(',') {
                out.push((key.to_string(), k.trim().trim_matches('"').to_string()));
            }
            rest = &after[end + 1..];
        } else {
            out.push((String::new(), key.to_string()));
        }
    }
    out
}

#[test]
fn stats_json_has_every_key_readme_lists() {
    if skip_without_cgroup2("stats_json_has_every_key_readme_lists") {
        return;
    }
    let keys = readme_stats_keys();
    assert!(keys.len() > 30, "{keys:?}");
    assert!(
        keys.contains(&("rates".into(), "cpu_percent".into())),
        "{keys:?}"
    );
    let g = GroupGuard::new("statskeys");
    let mut run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!("[group.\"{}\"]\n\"memory.max\" = \"64M\"\n", g.name),
    );
    run.start(&p);
    assert!(
        helper_in(&spec(&g.name), &["getppid", "10"])
            .status
            .success()
    );
    wait_until("the group counted", || !run.stats(&g.name).is_null());
    let mut watch = Command::new(enforcer_bin())
        .args([
            "stats",
            "--json",
            "--watch",
            "0.2",
            "--pin-dir",
            run.pin(),
            &g.name,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(watch.stdout.take().unwrap());
    let next = || -> serde_json::Value {
        let l = lines
            .recv_timeout(Duration::from_secs(10) * time_scale())
            .expect("a sample within 10 s");
        serde_json::from_str(&l).unwrap()
    };
    let first = next();
    let second = next();
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        first[0]["rates"].is_null(),
        "rates from the second sample on: {first}"
    );
    let s = &second[0];
    for (section, key) in &keys {
        let v = if section.is_empty() {
            &s[key.as_str()]
        } else {
            &s[section.as_str()][key.as_str()]
        };
        let present = !v.is_null() || (section == "memory" && key == "limit_bytes");
        assert!(present, "{section}.{key} missing in {s}");
    }
}

/// README's metric table: (name, type, label names, enumerated values per label).
type MetricRow = (String, String, Vec<String>, Vec<(String, Vec<String>)>);

fn readme_metric_table() -> Vec<MetricRow> {
    const README: &str = include_str!("../../README.md");
    let start = README
        .find("| metric | type | labels |")
        .expect("README's metric table");
    let mut out = Vec::new();
    for line in README[start..].lines().skip(2) {
        let Some(row) = line.strip_prefix('|') else {
            break;
        };
        let cells: Vec<&str> = row
            .split(" | ")
            .map(|c| c.trim().trim_end_matches('|').trim())
            .collect();
        let name = cells[0].trim_matches('`').to_string();
        let kind = cells[1].split_whitespace().next().unwrap_or("").to_string();
        // "group, direction (egress, ingress)"; "(last collection ...)" has none;
        // a `;` ends the list.
        let labels_text = cells[2].split(';').next().unwrap_or("");
        let mut labels = Vec::new();
        let mut values = Vec::new();
        let mut depth = 0;
        let mut word = String::new();
        let mut inside = String::new();
        let mut flush = |word: &mut String, inside: &mut String| {
            let w = word.trim().to_string();
            if !w.is_empty() {
                let listed: Vec<String> = inside
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                let bare = listed
                    .iter()
                    .all(|v| v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                if !listed.is_empty() && bare {
                    values.push((w.clone(), listed));
                }
                labels.push(w);
            }
            word.clear();
            inside.clear();
        };
        for c in labels_text.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => flush(&mut word, &mut inside),
                _ if depth > 0 => inside.push(c),
                _ => word.push(c),
            }
        }
        flush(&mut word, &mut inside);
        out.push((name, kind, labels, values));
    }
    out
}

/// The label names and values of a sample line's series.
fn labels_of(line: &str) -> Vec<(String, String)> {
    let Some(open) = line.find('{') else {
        return Vec::new();
    };
    let close = line.rfind('}').unwrap();
    let mut out = Vec::new();
    let mut rest = &line[open + 1..close];
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].trim_start_matches(',').to_string();
        let after = &rest[eq + 2..];
        let end = after.find('"').unwrap();
        out.push((name, after[..end].to_string()));
        rest = &after[end + 1..];
    }
    out
}

#[test]
fn every_family_of_readmes_metric_table_is_served_with_its_labels() {
    if skip_without_cgroup2("every_family_of_readmes_metric_table_is_served_with_its_labels") {
        return;
    }
    let table = readme_metric_table();
    assert!(table.len() >= 30, "{table:?}");
    let g = GroupGuard::new("families");
    let unit = format!("{}/families.service", g.name);
    let mut run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!(
            "[arbiter]\ninterval = \"100ms\"\n\n\
             [group.\"{n}\"]\n\"memory.max\" = \"64M\"\npriority = \"low\"\n\
             [group.\"{n}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n\
             egress_budget = \"10M/1d\"\n\
             [group.\"{n}\".syscalls]\ndeny = [\"getppid\"]\naction = \"log\"\n\
             [[group.\"{n}\".when]]\nmetric = \"oom_kills\"\nabove = 5\nthen = [\"log\"]\n",
            // One policy group, below a unit's name (group_info labels it).
            n = unit
        ),
    );
    run.start_with(&p, &["--metrics-depth", "8"]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    for args in [
        vec!["try-connect", "tcp", "127.0.0.2:9"],
        vec!["getppid", "3"],
        vec!["udp-send", to.as_str(), "3", "100"],
    ] {
        assert!(helper_in(&spec(&unit), &args).status.success(), "{args:?}");
    }
    let mut body = String::new();
    wait_until(
        "the group's denial, its unit's info and a collection",
        || {
            body = scrape(run.port).unwrap_or_default();
            body.contains("enforcer_denied_total{")
                && body.contains(&format!("group=\"{unit}\""))
                && body.lines().any(|l| l.starts_with("enforcer_group_info{"))
        },
    );
    // A second scrape: label sets do not change between scrapes.
    std::thread::sleep(Duration::from_millis(300));
    let again = scrape(run.port).unwrap();
    for (name, kind, labels, values) in &table {
        // A scrape without `Accept: application/openmetrics-text` is
        // Prometheus text 0.0.4: metadata named as the samples README lists.
        let type_line = format!("# TYPE {name} {kind}");
        assert!(body.contains(&type_line), "no `{type_line}`");
        let samples: Vec<&str> = body
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .collect();
        if name == "enforcer_arbiter_yield_steps" || name == "enforcer_map_full_total" {
            // Only while yielding, and for maps that filled; neither happens
            // here (scale.rs fills a map and reads the counter).
            continue;
        }
        assert!(!samples.is_empty(), "{name}: no sample");
        let mut want: Vec<&str> = labels.iter().map(String::as_str).collect();
        want.sort_unstable();
        for s in &samples {
            let got = labels_of(s);
            let mut names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            assert_eq!(names, want, "{name}'s labels in {s}");
            for (label, allowed) in values {
                let v = &got.iter().find(|(n, _)| n == label).unwrap().1;
                assert!(
                    allowed.contains(v),
                    "{name}: {label}={v:?} is not one of {allowed:?}"
                );
            }
            if kind == "gauge" && s.contains("_info") || name == "enforcer_build_info" {
                assert!(s.ends_with(" 1"), "{s}");
            }
            let series = s.rsplit_once(' ').unwrap().0;
            if series.contains(&format!("group=\"{unit}\"")) || !series.contains("group=") {
                assert!(
                    again.lines().any(|l| l.starts_with(series)),
                    "{series} gone from the next scrape"
                );
            }
        }
    }
}

#[test]
fn stop_refuses_to_remove_pins_another_agent_holds() {
    if skip_without_cgroup2("stop_refuses_to_remove_pins_another_agent_holds") {
        return;
    }
    let g = GroupGuard::new("stopother");
    let mut run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\n",
            n = g.name
        ),
    );
    run.start(&p);
    let first = run.child.as_ref().unwrap().id();
    let before = pins(&run.pin_dir);
    // A pid file no agent holds, beside the running agent's pin directory.
    let other = run.file("other.pid");
    let out = enforcer(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("PID {first}")) && err.contains("pin directory"),
        "{err}"
    );
    assert_eq!(pins(&run.pin_dir), before, "nothing unpinned");
    assert!(
        run.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the agent runs on"
    );
    let out = helper_in(&spec(&g.name), &["try-connect", "tcp", "127.0.0.2:9"]);
    assert_eq!(text(&out.stdout).trim(), "err EPERM", "still enforced");
}

#[test]
fn other_users_may_not_read_pins_or_the_audit_log_but_may_scrape_metrics() {
    if skip_without_cgroup2("other_users_may_not_read_pins_or_the_audit_log_but_may_scrape_metrics")
    {
        return;
    }
    // bpffs is root's alone (setup, and the VM's init, mount it 0700).
    let bpffs = std::fs::metadata("/sys/fs/bpf").unwrap();
    assert_eq!(
        (bpffs.uid(), bpffs.mode() & 0o777),
        (0, 0o700),
        "/sys/fs/bpf"
    );
    let g = GroupGuard::new("others");
    let mut run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\n",
            n = g.name
        ),
    );
    run.start(&p);
    let out = helper_in(&spec(&g.name), &["try-connect", "tcp", "127.0.0.2:9"]);
    assert!(text(&out.stdout).contains("EPERM"));
    wait_until("the denial in the audit log", || {
        !run.audit_lines().is_empty()
    });
    // A copy of the binary any user may run, in a directory any user may
    // enter.
    std::fs::set_permissions(&run.scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = run.file("enforcer");
    std::fs::copy(enforcer_bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let audit = run.file("audit.jsonl");
    let audit = audit.to_str().unwrap().to_string();
    for args in [
        vec!["stats", "--pin-dir", run.pin()],
        vec![
            "top",
            "--once",
            "--pin-dir",
            run.pin(),
            "--interval",
            "100ms",
        ],
        vec!["events", "--audit-log", audit.as_str()],
    ] {
        let out = as_nobody(&bin, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?} as nobody: {out:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("permission denied") && err.contains("root"),
            "{args:?}: {err}"
        );
        assert!(
            !text(&out.stdout).contains(&g.name),
            "{args:?} showed the group"
        );
    }
    // Creating a group is cgroupfs's call: refused to a user, allowed in a
    // group delegated to them (`create -a/-t`, as cgcreate does).
    let mine = GroupGuard::new("delegated");
    let out = as_nobody(&bin, &["create", "-g", &spec(&mine.name)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("ermission denied"), "{out:?}");
    enforcer_ok(&[
        "create",
        "-a",
        "65534:65534",
        "-t",
        "65534:65534",
        "-g",
        &spec(&mine.name),
    ]);
    let sub = format!("{}/sub", mine.name);
    let out = as_nobody(&bin, &["create", "-g", &spec(&sub)]);
    assert!(out.status.success(), "a delegated group: {out:?}");
    assert!(layout::v2_dir(&sub).is_dir());

    // Metrics are for every local user.
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{}; printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' >&3; cat <&3",
        run.port
    );
    let out = as_nobody("/bin/bash", &["-c", &script]);
    assert!(
        text(&out.stdout).contains(&format!("group=\"{}\"", g.name)),
        "{out:?}"
    );

    // With an audit group, its members may read the events (and only they).
    run.sigkill();
    run.start_with(&p, &["--audit-group", "65534"]);
    let out = as_nobody(&bin, &["events", "--audit-log", &audit]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains(&g.name), "{out:?}");
}

#[test]
fn events_the_ring_buffer_could_not_hold_are_counted_and_reported() {
    if skip_without_cgroup2("events_the_ring_buffer_could_not_hold_are_counted_and_reported") {
        return;
    }
    let g = GroupGuard::new("lost");
    let mut run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"256M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\n",
            n = g.name
        ),
    );
    run.start(&p);
    // Stopped, the agent reads nothing: 6,000 denials, 88 bytes each, do not
    // fit the 256 KiB ring buffer.
    let agent = run.child.take().unwrap();
    signal(&agent, nix::sys::signal::Signal::SIGSTOP);
    let out = helper_in(&spec(&g.name), &["connect-loop", "127.0.0.2:9", "6000"]);
    signal(&agent, nix::sys::signal::Signal::SIGCONT);
    run.child = Some(agent);
    assert!(text(&out.stdout).contains("eperm 6000"), "{out:?}");
    let mut lost = 0;
    wait_until("the losses in stats", || {
        lost = run.stats(&g.name)["enforcement"]["events_lost"]
            .as_u64()
            .unwrap_or(0);
        lost > 0
    });
    wait_until("a warning line in the audit log", || {
        run.audit_lines().iter().any(|l| {
            l["kind"] == "events_lost"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("ring buffer full"))
        })
    });
    wait_until("a warning line in the agent's log", || {
        run.log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("ring buffer was full"))
    });
    let series = format!("enforcer_events_lost_total{{group=\"{}\"}}", g.name);
    wait_until("the series", || {
        scrape(run.port).is_some_and(|m| {
            m.lines()
                .any(|l| l.starts_with(&series) && !l.ends_with(" 0"))
        })
    });
    let written = run
        .audit_lines()
        .iter()
        .filter(|l| l["kind"] == "connect_denied")
        .count() as u64;
    assert!(written + lost <= 6000 + 1, "written {written}, lost {lost}");
}

#[test]
fn sighup_reloads_and_a_rejected_policy_is_explained_in_both_logs() {
    if skip_without_cgroup2("sighup_reloads_and_a_rejected_policy_is_explained_in_both_logs") {
        return;
    }
    let g = GroupGuard::new("hup");
    let mut run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!("[group.\"{}\"]\n\"memory.max\" = \"20M\"\n", g.name),
    );
    run.start(&p);
    let reloads = |run: &AgentRun| {
        run.audit_lines()
            .iter()
            .filter(|l| l["kind"] == "reload")
            .count()
    };
    let before = reloads(&run);
    signal(
        run.child.as_ref().unwrap(),
        nix::sys::signal::Signal::SIGHUP,
    );
    wait_until("a reload on SIGHUP", || reloads(&run) > before);

    std::fs::write(
        &p,
        format!("[group.\"{}\"]\n\"memory.max\" = \"20XB\"\n", g.name),
    )
    .unwrap();
    signal(
        run.child.as_ref().unwrap(),
        nix::sys::signal::Signal::SIGHUP,
    );
    let mut why = String::new();
    wait_until("the rejection in the audit log", || {
        run.audit_lines().iter().any(|l| {
            let hit = l["kind"] == "reload_rejected";
            if hit {
                why = l["message"].as_str().unwrap_or_default().to_string();
            }
            hit
        })
    });
    assert!(why.contains("20XB") && why.contains(":2:"), "{why}");
    wait_until("the rejection in the agent's log", || {
        run.log().lines().any(|l| l.contains("20XB"))
    });
    assert_eq!(
        layout::read_key(&g.name, "memory.max").1,
        (20u64 << 20).to_string()
    );
}

/// The group's CPU quota in µs (`None`: no limit), from the file this host has.
fn cpu_quota(name: &str) -> Option<u64> {
    let dir = dir_of("cpu", name);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    if is_v1("cpu") {
        u64::try_from(read("cpu.cfs_quota_us").parse::<i64>().unwrap()).ok()
    } else {
        read("cpu.max")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .ok()
    }
}

#[test]
fn a_reload_gives_back_what_the_arbiter_yielded() {
    let test = "a_reload_gives_back_what_the_arbiter_yielded";
    if skip_without_cgroup2(test) || !layout::has_controller("cpu") {
        return;
    }
    let _one = serial();
    let high = GroupGuard::new("rl-high");
    let low = GroupGuard::new("rl-low");
    let mut run = AgentRun::new();
    // Nothing is given back by itself within the test: restore_after 10 min.
    let p = write_policy(
        &run,
        &format!(
            "[arbiter]\ninterval = \"100ms\"\nresources = [\"cpu\"]\nrestore_after = \"10m\"\n\
             probe_after = \"10m\"\n\n\
             [group.\"{h}\"]\npriority = \"high\"\n\n[group.\"{l}\"]\npriority = \"low\"\n",
            h = high.name,
            l = low.name
        ),
    );
    run.start(&p);
    let original = cpu_quota(&low.name);
    let mut lows = Procs::default();
    let mut highs = Procs::default();
    for _ in 0..2 {
        lows.spawn(&format!("cpu:{}", low.name), &["spin", "60"]);
        highs.spawn(&format!("cpu:{}", high.name), &["spin", "60"]);
    }
    wait_for("the low group to yield", Duration::from_secs(20), || {
        cpu_quota(&low.name) != original
    });
    highs.stop();
    lows.stop();
    enforcer_ok(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    wait_for(
        "the reload to give the quota back",
        Duration::from_secs(10),
        || cpu_quota(&low.name) == original,
    );
    // The agent writes an action's audit line after acting.
    wait_until("the restore in the audit log", || {
        run.audit_lines().iter().any(|l| {
            l["kind"] == "arbiter" && l["phase"] == "restore" && l["group"] == low.name.as_str()
        })
    });
}

/// Egress bytes per second of the groups `ids` (cgroup2 ids) over `window`,
/// from the kernel's counters read straight from the pins.
fn rates(run: &AgentRun, ids: &[u64], window: Duration) -> Vec<f64> {
    let sample = || -> (Vec<u64>, Instant) {
        let s = enforcer::bpf::snapshot_pinned(&run.pin_dir).expect("the pinned counters");
        let at = Instant::now();
        let bytes = ids
            .iter()
            .map(|id| s.groups.get(id).map_or(0, |g| g.egress.bytes))
            .collect();
        (bytes, at)
    };
    let (b0, t0) = sample();
    std::thread::sleep(window);
    let (b1, t1) = sample();
    let secs = (t1 - t0).as_secs_f64();
    b0.iter()
        .zip(&b1)
        .map(|(a, b)| (b - a) as f64 / secs)
        .collect()
}

#[test]
fn levels_get_their_assured_egress_share_and_borrow_what_is_idle() {
    let test = "levels_get_their_assured_egress_share_and_borrow_what_is_idle";
    if skip_without_cgroup2(test) || !layout::has_controller("cpu") {
        return;
    }
    let _one = serial();
    let high = GroupGuard::new("share-high");
    let low = GroupGuard::new("share-low");
    let mut run = AgentRun::new();
    // 16 Mbit = 2 MB/s (small enough that a busy host's CPUs are not what
    // limits the senders; an emulated guest, slower, gets a quarter of it and
    // longer windows, as the limiter's burst weighs more at a lower rate).
    // The low level: its floor (a tenth of the capacity) and a fifth of the
    // rest; the high level the other four fifths: 0.28 and 0.72 of it.
    let slow = time_scale().min(4);
    let kbit = 16_000 / u64::from(slow);
    let window = Duration::from_secs(3) * slow.min(3);
    let warm_up = Duration::from_millis(1500) * slow.min(3);
    let capacity = kbit as f64 * 125.0;
    let p = write_policy(
        &run,
        &format!(
            "[agent]\negress_capacity = \"{kbit}kbit\"\n\n\
             [group.\"{h}\"]\npriority = \"high\"\n\"cpu.weight\" = 100\n\n\
             [group.\"{l}\"]\npriority = \"low\"\n\"cpu.weight\" = 100\n\
             min_egress = \"{floor}kbit\"\n",
            h = high.name,
            l = low.name,
            floor = kbit / 10
        ),
    );
    run.start(&p);
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sink.local_addr().unwrap().to_string();
    let flood = ["udp-flood", addr.as_str(), "60", "1400"];
    // The same CPU weight for both: only the network shares differ (a
    // loaded host would otherwise starve the low group's sender of CPU).
    let ids = [layout::v2_id(&high.name), layout::v2_id(&low.name)];

    // The low group alone borrows what the idle high level leaves.
    let mut lows = Procs::default();
    lows.spawn(&format!("cpu:{}", low.name), &flood);
    std::thread::sleep(warm_up);
    let alone = rates(&run, &ids, window);
    assert!(
        alone[1] >= 0.8 * capacity,
        "the low level alone borrows the idle capacity: {:.2} MB/s",
        alone[1] / 1e6
    );
    // Both flooding: each level gets at least its assured share.
    let mut highs = Procs::default();
    highs.spawn(&format!("cpu:{}", high.name), &flood);
    std::thread::sleep(warm_up);
    let both = rates(&run, &ids, window);
    eprintln!(
        "capacity {:.2} MB/s: low alone {:.2} MB/s; together high {:.2}, low {:.2}",
        capacity / 1e6,
        alone[1] / 1e6,
        both[0] / 1e6,
        both[1] / 1e6
    );
    assert!(
        both[0] >= 0.9 * 0.72 * capacity,
        "high: {:.2} MB/s",
        both[0] / 1e6
    );
    assert!(
        both[1] >= 0.9 * 0.28 * capacity,
        "low: {:.2} MB/s",
        both[1] / 1e6
    );
    highs.stop();
    lows.stop();
}

/// README: outgoing TCP over its share is first passed with a congestion
/// notification, counted apart from drops
/// (`enforcement.egress_marked_packets`); UDP, which ignores the
/// notification, is dropped and never marked.
#[test]
fn outgoing_tcp_over_its_share_is_marked_and_udp_is_dropped() {
    let test = "outgoing_tcp_over_its_share_is_marked_and_udp_is_dropped";
    if skip_without_cgroup2(test) || !layout::has_controller("cpu") {
        return;
    }
    let _one = serial();
    let g = GroupGuard::new("share-mark");
    let mut run = AgentRun::new();
    let slow = time_scale().min(4);
    let kbit = 16_000 / u64::from(slow);
    let capacity = kbit * 125;
    let p = write_policy(
        &run,
        &format!(
            "[agent]\negress_capacity = \"{kbit}kbit\"\n\n\
             [group.\"{n}\"]\npriority = \"low\"\n\"cpu.weight\" = 100\nmin_egress = \"{floor}kbit\"\n",
            n = g.name,
            floor = kbit / 10
        ),
    );
    run.start(&p);
    // The group as the policy creates it (its CPU weight: the group exists
    // in the cpu hierarchy), as the share test places its senders.
    let at = format!("cpu:{}", g.name);
    let enforcement = |run: &AgentRun| -> (u64, u64) {
        let s = &run.stats(&g.name)["enforcement"];
        (
            s["egress_marked_packets"].as_u64().unwrap_or(0),
            s["egress_dropped_packets"].as_u64().unwrap_or(0),
        )
    };

    // TCP: about three seconds of the capacity, over a loopback that could
    // carry it in milliseconds.
    let bytes = capacity * 3;
    let (addr, reader) = enforcer_tests::tcp_sink();
    let start = Instant::now();
    let out = helper_in(&at, &["tcp-send", &addr, &bytes.to_string()]);
    let secs = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "tcp-send: {}", text(&out.stderr));
    assert_eq!(reader.join().unwrap(), bytes);
    wait_until("the TCP counters", || enforcement(&run).0 > 0);
    let (marked, dropped) = enforcement(&run);
    eprintln!(
        "TCP: {bytes} bytes in {secs:.2} s under {capacity} B/s: \
         {marked} packets marked, {dropped} dropped"
    );
    // Held near the capacity, and marked on the way (the marks do not
    // keep a loopback flow from overrunning their room: about as many
    // packets were dropped as marked here; README says so).
    assert!(
        secs > 2.0,
        "TCP sent {bytes} bytes in {secs:.2} s: the capacity did not hold it"
    );
    assert!(marked > 0, "TCP over its share is marked: {marked} marked");

    // UDP ignores the notification: over the share it is dropped, never
    // marked.
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink_addr = sink.local_addr().unwrap().to_string();
    let out = helper_in(&at, &["udp-flood", sink_addr.as_str(), "1", "1400"]);
    assert!(out.status.success(), "udp-flood: {}", text(&out.stderr));
    wait_until("the UDP drops", || enforcement(&run).1 > dropped);
    assert_eq!(
        enforcement(&run).0,
        marked,
        "a UDP datagram over the share is dropped, not marked"
    );
}

#[test]
fn a_feature_the_kernel_refuses_is_left_out_with_one_warning_and_observe_mode_runs() {
    const TEST: &str =
        "a_feature_the_kernel_refuses_is_left_out_with_one_warning_and_observe_mode_runs";
    if skip_without_cgroup2(TEST) {
        return;
    }
    let report = enforcer::bpf::features().expect("the kernel's features");
    let refused: Vec<_> = report
        .features
        .iter()
        .filter(|f| f.refused.is_some())
        .collect();
    if refused.is_empty() {
        enforcer_tests::skipped(TEST, "this kernel loads every program: nothing is left out");
        return;
    }
    let g = GroupGuard::new("refused");
    enforcer_ok(&["create", "-g", &spec(&g.name)]);
    let mut run = AgentRun::new();
    // Information lines too (the default shows warnings and errors).
    run.log_filter = Some("info".into());
    run.start_observe(&[]);
    assert!(
        helper_in(&spec(&g.name), &["getppid", "10"])
            .status
            .success()
    );
    wait_until("observe mode counting", || !run.stats(&g.name).is_null());
    let log = run.log();
    // Counters and events the agent cannot report are a warning; an
    // enforcement feature no rule of the policy uses is information.
    for f in &refused {
        let level = if f.feature.is_enforcement() {
            "INFO"
        } else {
            "WARN"
        };
        let about: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("{} unavailable", f.what)))
            .collect();
        assert_eq!(about.len(), 1, "one line for {}:\n{log}", f.what);
        assert!(
            about[0].contains(level),
            "{level} for {}: {}",
            f.what,
            about[0]
        );
    }
}
