//! The agent end to end (root, real kernel): `enforcer run` with a policy,
//! `enforcer stats`, the metrics endpoint, the audit log, SIGKILL and restart,
//! and `enforcer stop`. Each test uses its own groups, pin directory and port.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enforcer_tests::{GroupGuard, enforcer, enforcer_bin, enforcer_ok, helper_bin, unique_name};

/// Removes the test's pin directory and scratch files, and kills its agent.
struct AgentRun {
    pin_dir: PathBuf,
    scratch: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl AgentRun {
    fn new() -> Self {
        let name = unique_name("agent");
        let scratch = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&scratch).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        AgentRun {
            pin_dir: PathBuf::from("/sys/fs/bpf").join(name),
            scratch,
            port,
            child: None,
        }
    }

    fn pin(&self) -> &str {
        self.pin_dir.to_str().unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    fn start(&mut self, policy: &Path) {
        let child = Command::new(enforcer_bin())
            .args(["run", "--config"])
            .arg(policy)
            .args(["--pin-dir", self.pin(), "--interval", "100ms"])
            .args(["--metrics", &format!("127.0.0.1:{}", self.port)])
            .arg("--audit-log")
            .arg(self.file("audit.jsonl"))
            .arg("--pid-file")
            .arg(self.file("agent.pid"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_until("the agent to serve metrics", || self.metrics().is_some());
    }

    fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn metrics(&self) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1.1 200").then_some(out)
    }

    fn stats(&self, group: &str) -> serde_json::Value {
        let out = enforcer_ok(&["stats", "--json", "--pin-dir", self.pin(), group]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .and_then(|a| a.first().cloned())
            .unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        self.sigkill();
        let _ = enforcer(&[
            "stop",
            "--pin-dir",
            self.pin(),
            "--pid-file",
            self.file("agent.pid").to_str().unwrap(),
        ]);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn policy(run: &AgentRun, groups: &[&GroupGuard]) -> PathBuf {
    let mut text = String::new();
    for g in groups {
        text.push_str(&format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"20M\"\n",
            g.name
        ));
    }
    let p = run.file("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Send `count` datagrams of 100 bytes from a process inside `group`.
fn send_from(group: &GroupGuard, to: &UdpSocket, count: usize) {
    let addr = to.local_addr().unwrap().to_string();
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &format!("memory:{}", group.name), "--"])
        .arg(helper_bin())
        .args(["udp-send", &addr, &count.to_string(), "100"])
        .status()
        .unwrap();
    assert!(st.success());
}

fn egress(run: &AgentRun, g: &GroupGuard) -> (u64, u64) {
    let s = run.stats(&g.name);
    (
        s["net"]["egress_packets"].as_u64().unwrap_or(0),
        s["net"]["egress_bytes"].as_u64().unwrap_or(0),
    )
}

#[test]
fn counts_survive_sigkill_and_restart_without_double_attachment() {
    let a = GroupGuard::new("agent-a");
    let b = GroupGuard::new("agent-b");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a, &b]);
    run.start(&p);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_from(&a, &rx, 1000);
    assert_eq!(egress(&run, &a), (1000, 128_000));
    assert_eq!(egress(&run, &b), (0, 0), "B sent nothing");

    // SIGKILL: the programs stay attached through their pinned links and keep
    // counting while no agent runs.
    run.sigkill();
    send_from(&a, &rx, 500);
    run.start(&p);
    send_from(&a, &rx, 500);
    // Exactly the ground truth: nothing lost, nothing counted twice.
    assert_eq!(egress(&run, &a), (2000, 256_000));

    // The JSON shape operators script against.
    let s = run.stats(&a.name);
    for key in [
        "egress_bytes",
        "egress_packets",
        "ingress_bytes",
        "ingress_packets",
        "connect_attempts",
        "bind_attempts",
    ] {
        assert!(s["net"][key].is_u64(), "net.{key} missing: {s}");
    }
    assert!(s["cgroup_id"].as_u64().unwrap() > 0);
    assert_eq!(s["memory"]["limit_bytes"], 20 << 20);
    assert!(s["syscalls"]["total"].as_u64().unwrap() > 0);
    assert!(s["cpu"]["usage_usec"].is_u64());

    let out = enforcer_ok(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        run.file("agent.pid").to_str().unwrap(),
    ]);
    assert!(out.contains("removed"), "{out}");
    assert!(!run.pin_dir.exists(), "stop must remove the pins");
    if let Some(mut c) = run.child.take() {
        let st = c.wait().unwrap();
        assert!(st.success(), "agent must exit cleanly on stop: {st:?}");
    }
    // Detached: traffic is no longer counted anywhere, and stats says so.
    let out = enforcer(&["stats", "--pin-dir", run.pin()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("enforcer run"));
}

#[test]
fn syscalls_are_counted_per_group_by_name() {
    let a = GroupGuard::new("sys-a");
    let b = GroupGuard::new("sys-b");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a, &b]);
    run.start(&p);
    let before_b = run.stats(&b.name)["syscalls"]["total"]
        .as_u64()
        .unwrap_or(0);
    let k = 20_000u64;
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &format!("memory:{}", a.name), "--"])
        .arg(helper_bin())
        .args(["getppid", &k.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let s = run.stats(&a.name);
    let n = s["syscalls"]["by_name"]["getppid"].as_u64().unwrap_or(0);
    assert!(n >= k && n <= k + 100, "getppid counted {n}, made {k}");
    let after_b = run.stats(&b.name)["syscalls"]["total"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(before_b, after_b, "an idle group's counts must not move");
}

#[test]
fn metrics_endpoint_and_oom_events_in_the_audit_log() {
    let a = GroupGuard::new("met-a");
    let mut run = AgentRun::new();
    let p = policy(&run, &[&a]);
    run.start(&p);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send_from(&a, &rx, 10);
    let needle = format!(
        "enforcer_net_bytes_total{{group=\"{}\",direction=\"egress\"}} 1280",
        a.name
    );
    wait_until("the metrics to show the traffic", || {
        run.metrics().is_some_and(|m| m.contains(&needle))
    });
    let body = run.metrics().unwrap();
    let body = body.split("\r\n\r\n").nth(1).unwrap();
    // Parseable exposition: every sample line is `name{labels} value`.
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        assert!(series.starts_with("enforcer_"), "bad name in {line:?}");
    }
    assert!(body.ends_with("# EOF\n"));

    // A process over the group's 20M limit is OOM-killed: one event, audited.
    let st = Command::new(enforcer_bin())
        .args(["exec", "-g", &format!("memory:{}", a.name), "--"])
        .arg(helper_bin())
        .args(["alloc", &(100u64 << 20).to_string()])
        .status()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
    let audit = run.file("audit.jsonl");
    wait_until("the OOM event in the audit log", || {
        std::fs::read_to_string(&audit).is_ok_and(|t| t.contains("\"oom_kill\""))
    });
    let text = std::fs::read_to_string(&audit).unwrap();
    let ev: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("oom_kill")).unwrap()).unwrap();
    assert_eq!(ev["group"], a.name, "{ev}");
    assert!(ev["pid"].as_u64().unwrap() > 0);
    wait_until("oom_kills in stats", || {
        run.stats(&a.name)["memory"]["oom_kills"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
}
