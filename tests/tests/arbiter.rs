//! The arbiter end to end (root, real kernel): contention makes the low
//! group yield (its CPU quota or its sending rate changes, an audit event
//! names the group it yields to), idleness gives everything back, a crash of
//! the agent in between is recovered from its record at the next start, a
//! clean stop gives back what is yielded, a group outside the policy is never
//! touched, and the floors (`min_cpu`, `min_egress`) hold.
//!
//! The scenarios load both CPUs (hogs in both groups) or the loopback
//! (UDP floods), so they run one at a time, each bounded in time: the
//! processes they start end by themselves after at most a minute, and are
//! killed as soon as a phase is over.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use enforcer_tests::layout::{self, dir_of, is_v1, skip_without_cgroup2};
use enforcer_tests::{AgentRun, GroupGuard, enforcer_bin, enforcer_ok, helper_bin, wait_for};

/// The scenarios compete for the same two CPUs and the loopback.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_policy(run: &AgentRun, text: &str) -> PathBuf {
    let p = run.file("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Processes a phase started, killed when it ends (also on panic).
#[derive(Default)]
struct Procs(Vec<Child>);

impl Procs {
    /// `enforcer exec -g SPEC -- enforcer-test-helper ARGS`, `n` times.
    fn spawn(&mut self, spec: &str, n: usize, args: &[&str]) {
        for _ in 0..n {
            let child = Command::new(enforcer_bin())
                .args(["exec", "-g", spec, "--"])
                .arg(helper_bin())
                .args(args)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            self.0.push(child);
        }
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

/// Where a group's processes go: the cpu controller, where a policy group
/// with a `priority` is made (on a hybrid host `enforcer exec` puts them in
/// the group's cgroup2 mirror too, where PSI and the eBPF counters see them).
fn cpu_spec(name: &str) -> String {
    format!("cpu:{name}")
}

/// The group's CPU quota as (quota µs or `None` for no limit, period µs),
/// from the file this host has.
fn cpu_max(name: &str) -> (Option<u64>, u64) {
    let dir = dir_of("cpu", name);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()))
            .trim()
            .to_string()
    };
    if is_v1("cpu") {
        let quota: i64 = read("cpu.cfs_quota_us").parse().unwrap();
        let period: u64 = read("cpu.cfs_period_us").parse().unwrap();
        (u64::try_from(quota).ok(), period)
    } else {
        let text = read("cpu.max");
        let mut w = text.split_whitespace();
        let quota = w.next().and_then(|q| q.parse().ok());
        let period = w.next().and_then(|p| p.parse().ok()).unwrap_or(100_000);
        (quota, period)
    }
}

/// Every CPU file of a group that the arbiter could turn, as text.
fn cpu_files(name: &str) -> Vec<(String, String)> {
    let dir = dir_of("cpu", name);
    let files: &[&str] = if is_v1("cpu") {
        &["cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"]
    } else {
        &["cpu.max", "cpu.weight"]
    };
    files
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read_to_string(dir.join(f)).unwrap_or_default(),
            )
        })
        .collect()
}

/// The audit log's arbiter events.
fn arbiter_events(run: &AgentRun) -> Vec<serde_json::Value> {
    run.audit_lines()
        .into_iter()
        .filter(|l| l["kind"] == "arbiter")
        .collect()
}

/// Arbiter events of `group` on `resource` in `phase`, after the first `skip`
/// arbiter events.
fn events(
    run: &AgentRun,
    skip: usize,
    phase: &str,
    group: &str,
    resource: &str,
) -> Vec<serde_json::Value> {
    arbiter_events(run)
        .into_iter()
        .skip(skip)
        .filter(|l| l["phase"] == phase && l["group"] == group && l["resource"] == resource)
        .collect()
}

/// The arbiter's record of what it has yielded (`<pid file>.arbiter.json`).
fn record(run: &AgentRun) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(run.pid_file().with_extension("arbiter.json")).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// Polls `f` every 20 ms for at most `limit`; returns how long it took.
fn within(what: &str, limit: Duration, f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    wait_for(what, limit, f);
    start.elapsed()
}

fn terminate(run: &mut AgentRun) {
    let mut child = run.child.take().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn cpu_contention_yields_idleness_restores_and_a_crash_is_recovered() {
    let test = "cpu_contention_yields_idleness_restores_and_a_crash_is_recovered";
    if skip_without_cgroup2(test) || !layout::has_controller("cpu") {
        return;
    }
    let _one = serial();
    let high = GroupGuard::new("arb-high");
    let low = GroupGuard::new("arb-low");
    let outside = GroupGuard::new("arb-outside");
    let mut run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!(
            "[arbiter]\ninterval = \"100ms\"\nresources = [\"cpu\"]\nrestore_after = \"1s\"\n\n\
             [group.\"{h}\"]\npriority = \"high\"\n\n\
             [group.\"{l}\"]\npriority = \"low\"\nmin_cpu = \"20%\"\n",
            h = high.name,
            l = low.name
        ),
    );
    // A busy group the policy does not name.
    enforcer_ok(&["create", "-g", &cpu_spec(&outside.name)]);
    let mut others = Procs::default();
    others.spawn(&cpu_spec(&outside.name), 1, &["spin", "60"]);
    wait_for("the outside group", Duration::from_secs(5), || {
        dir_of("cpu", &outside.name).exists()
    });
    let outside_before = cpu_files(&outside.name);

    run.start(&p);
    let (original, period) = cpu_max(&low.name);
    let floor = period / 5;
    // The low group alone has the CPUs: nobody above it needs them.
    let mut lows = Procs::default();
    lows.spawn(&cpu_spec(&low.name), 2, &["spin", "60"]);
    // Eight of the arbiter's intervals with the low group busy on both CPUs.
    wait_for(
        "the low group's hogs to run",
        Duration::from_secs(5),
        || cpu_usage_usec(&low.name) > 0,
    );
    run.wait_collections(8);
    assert!(
        arbiter_events(&run).is_empty(),
        "nothing to yield to: {:#?}",
        arbiter_events(&run)
    );
    assert_eq!(cpu_max(&low.name).0, original);

    // Contention: the high group's hogs wait for CPUs the low group holds.
    let mut highs = Procs::default();
    highs.spawn(&cpu_spec(&high.name), 2, &["spin", "60"]);
    let took = within("the low group to yield", Duration::from_secs(10), || {
        !events(&run, 0, "yield", &low.name, "cpu").is_empty()
    });
    let first = &events(&run, 0, "yield", &low.name, "cpu")[0];
    assert_eq!(
        first["to"],
        high.name.as_str(),
        "the cause is named: {first}"
    );
    assert!(first["ok"].as_bool().unwrap(), "{first}");
    assert!(
        first["pressure"].as_f64().unwrap() >= 0.1,
        "at the threshold at least: {first}"
    );
    eprintln!("first yield {took:?} after the high group started: {first}");
    // It keeps yielding while the contention lasts, never below its floor.
    let mut lowest = u64::MAX;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        let (q, _) = cpu_max(&low.name);
        let q = q.expect("a yielding group has a quota");
        lowest = lowest.min(q);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lowest >= floor, "min_cpu 20%: quota {lowest} of {period}");
    assert!(
        lowest < period * 2,
        "yielded: quota {lowest} of {period} is less than what two hogs use"
    );
    // stats says who yields to whom, from the record.
    let rec = record(&run).expect("the arbiter records what it changed");
    assert_eq!(
        rec["groups"][&low.name]["yields"]["cpu"]["to"],
        high.name.as_str()
    );
    let stats = enforcer_ok(&[
        "stats",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    assert!(
        stats.contains(&format!("{} yielding to {}: cpu.max", low.name, high.name)),
        "{stats}"
    );

    // A crash while yielded leaves the quota; the next start puts it back
    // from the record before the arbiter acts again.
    run.sigkill();
    assert!(cpu_max(&low.name).0.is_some(), "left yielded by the crash");
    highs.stop();
    let seen = arbiter_events(&run).len();
    run.start(&p);
    assert_eq!(cpu_max(&low.name).0, original, "recovered at start");
    assert!(record(&run).is_none(), "the record is gone once recovered");
    assert!(
        run.audit_lines()
            .iter()
            .any(|l| l["kind"] == "arbiter_recovered"
                && l["message"].as_str().unwrap_or("").contains(&low.name)),
        "{:#?}",
        run.audit_lines()
    );

    // Contention again, then the high group goes idle: everything comes
    // back once it has been idle for restore_after.
    highs.spawn(&cpu_spec(&high.name), 2, &["spin", "60"]);
    within("a yield after the restart", Duration::from_secs(10), || {
        !events(&run, seen, "yield", &low.name, "cpu").is_empty()
    });
    highs.stop();
    let took = within(
        "the low group's CPU to come back",
        Duration::from_secs(6),
        || cpu_max(&low.name).0 == original,
    );
    eprintln!("restored {took:?} after the high group stopped");
    // The audit line follows the write within the same tick.
    wait_for("the restore to be audited", Duration::from_secs(2), || {
        !events(&run, seen, "restore", &low.name, "cpu").is_empty()
    });
    let restore = events(&run, seen, "restore", &low.name, "cpu");
    assert_eq!(restore.len(), 1, "{restore:#?}");
    assert!(restore[0]["ok"].as_bool().unwrap(), "{}", restore[0]);
    assert!(record(&run).is_none(), "nothing yielded, no record");

    // The group outside the policy was busy all along and never touched.
    assert_eq!(cpu_files(&outside.name), outside_before);
    assert!(
        run.audit_lines()
            .iter()
            .all(|l| !l.to_string().contains(&outside.name)),
        "{:#?}",
        run.audit_lines()
    );
    lows.stop();
    others.stop();
}

/// The low group's egress rate in the arbiter's record, if it yields it.
fn yielded_rate(run: &AgentRun, group: &str) -> Option<u64> {
    record(run)?["groups"][group]["yields"]["egress"]["rate"].as_u64()
}

#[test]
fn network_contention_yields_the_low_groups_rate_down_to_its_floor() {
    let test = "network_contention_yields_the_low_groups_rate_down_to_its_floor";
    if skip_without_cgroup2(test) {
        return;
    }
    let _one = serial();
    let high = GroupGuard::new("arbn-high");
    let low = GroupGuard::new("arbn-low");
    let mut run = AgentRun::new();
    // 200 Mbit/s of capacity; the low group may never be held below 10.
    let floor = 1_250_000u64;
    let p = write_policy(
        &run,
        &format!(
            "[agent]\negress_capacity = \"200Mbit\"\n\n\
             [arbiter]\ninterval = \"100ms\"\nresources = [\"egress\"]\nrestore_after = \"1s\"\n\n\
             [group.\"{h}\"]\npriority = \"high\"\n\n\
             [group.\"{l}\"]\npriority = \"low\"\nmin_egress = \"10Mbit\"\n",
            h = high.name,
            l = low.name
        ),
    );
    run.start(&p);
    // A sink nobody reads: what leaves the groups is counted at their egress.
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sink.local_addr().unwrap().to_string();
    let flood = ["udp-flood", addr.as_str(), "60", "1400"];
    let mut lows = Procs::default();
    lows.spawn(&cpu_spec(&low.name), 1, &flood);
    // Eight of the arbiter's intervals with the low group sending.
    wait_for("the low group to send", Duration::from_secs(5), || {
        egress_bytes(&run, &low.name) > 0
    });
    let alone = egress_rate(&run, &low.name);
    run.wait_collections(8);
    assert!(
        events(&run, 0, "yield", &low.name, "egress").is_empty(),
        "alone, the low group may use the whole capacity: {:#?}",
        arbiter_events(&run)
    );

    let mut highs = Procs::default();
    highs.spawn(&cpu_spec(&high.name), 1, &flood);
    let took = within(
        "the low group to yield egress",
        Duration::from_secs(10),
        || !events(&run, 0, "yield", &low.name, "egress").is_empty(),
    );
    let first = &events(&run, 0, "yield", &low.name, "egress")[0];
    assert_eq!(first["to"], high.name.as_str(), "{first}");
    assert!(first["ok"].as_bool().unwrap(), "{first}");
    eprintln!("first egress yield {took:?} after the high group started: {first}");
    // Held back step by step while the high group's demand is held back,
    // down to the floor and no further.
    let mut lowest = u64::MAX;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        if let Some(r) = yielded_rate(&run, &low.name) {
            lowest = lowest.min(r);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(lowest < 25_000_000, "yielded below the capacity: {lowest}");
    assert!(lowest >= floor, "min_egress 10Mbit: held to {lowest} B/s");
    // The record is the arbiter's word; the kernel's counters show the group
    // really sends at its floor (plus the limiter's burst) while held there.
    wait_for(
        "the low group held at its floor",
        Duration::from_secs(10),
        || yielded_rate(&run, &low.name) == Some(floor),
    );
    let held = egress_rate(&run, &low.name);
    let burst = enforcer::bpf::RATE_BURST_BYTES as f64;
    assert!(
        held <= 1.10 * floor as f64 + burst && held >= 0.5 * floor as f64,
        "held at {floor} B/s, sent {held:.0} B/s (alone {alone:.0} B/s)"
    );

    // The high group goes idle: the rate is lifted.
    highs.stop();
    let took = within(
        "the low group's rate to be lifted",
        Duration::from_secs(6),
        || !events(&run, 0, "restore", &low.name, "egress").is_empty(),
    );
    eprintln!("egress restored {took:?} after the high group stopped");
    assert!(yielded_rate(&run, &low.name).is_none());

    // Yielded again, then a clean stop (the high group still sending, so
    // nothing but the stop can give it back) restores the rate, in the
    // kernel too, and removes the record.
    let seen = arbiter_events(&run).len();
    highs.spawn(&cpu_spec(&high.name), 1, &flood);
    within("a second yield", Duration::from_secs(10), || {
        !events(&run, seen, "yield", &low.name, "egress").is_empty()
    });
    wait_for(
        "the low group held at its floor again",
        Duration::from_secs(10),
        || yielded_rate(&run, &low.name) == Some(floor),
    );
    let before_stop = arbiter_events(&run).len();
    terminate(&mut run);
    let restored = events(&run, before_stop, "restore", &low.name, "egress");
    assert_eq!(
        restored.len(),
        1,
        "the stop gives back what is yielded: {:#?}",
        arbiter_events(&run)
    );
    assert!(restored[0]["ok"].as_bool().unwrap(), "{}", restored[0]);
    assert!(record(&run).is_none(), "no record after a clean stop");
    highs.stop();
    // No agent runs now: only the kernel decides. Alone, the low group may
    // borrow the whole capacity again, far above the rate it was held to.
    let after = egress_rate(&run, &low.name);
    assert!(
        after > 4.0 * floor as f64,
        "after the stop the low group sends {after:.0} B/s; it was held to {floor} B/s"
    );
    lows.stop();
}

/// The group's egress bytes as the kernel counted them (`stats`).
fn egress_bytes(run: &AgentRun, group: &str) -> u64 {
    run.stats(group)["net"]["egress_bytes"]
        .as_u64()
        .unwrap_or(0)
}

/// What the group sends per second over one second, by the kernel's count.
fn egress_rate(run: &AgentRun, group: &str) -> f64 {
    let (b0, t0) = (egress_bytes(run, group), Instant::now());
    std::thread::sleep(Duration::from_secs(1));
    (egress_bytes(run, group) - b0) as f64 / t0.elapsed().as_secs_f64()
}

/// CPU time the group's processes used, in µs (cgroup2 `cpu.stat`, or v1
/// `cpuacct.usage` in ns / 1000).
fn cpu_usage_usec(name: &str) -> u64 {
    let v2 = layout::v2_dir(name).join("cpu.stat");
    if let Ok(text) = std::fs::read_to_string(&v2) {
        return text
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
    }
    std::fs::read_to_string(dir_of("cpuacct", name).join("cpuacct.usage"))
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |ns| ns / 1000)
}
