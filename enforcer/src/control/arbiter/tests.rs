//! The arbiter's decisions against a fake host: yields on pressure, floors,
//! hysteresis, restores when idle, probing while busy, memory never by
//! `memory.max`, network rates and shares, undo and crash recovery, and no
//! write outside the policy's groups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;
use crate::plan::{ArbitratedGroup, GroupFloors, Priority, base_shares};

const TICK: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Load {
    /// Stalled share of the interval: cpu, memory, io.
    stall: [f64; 3],
    cpus: f64,
    memory: u64,
    memory_limit: Option<u64>,
    net: [f64; 2],
}

#[derive(Default)]
struct FakeHost {
    readings: BTreeMap<String, Reading>,
    load: BTreeMap<String, Load>,
    files: BTreeMap<PathBuf, String>,
    drops: BTreeMap<(usize, u32), u64>,
    drop_rate: BTreeMap<(usize, u32), f64>,
    rates: BTreeMap<(u64, usize), Option<u64>>,
    shares: BTreeMap<usize, NetShares>,
    writes: Vec<PathBuf>,
}

fn file(group: &str, name: &str) -> PathBuf {
    PathBuf::from(format!("/fake/{group}/{name}"))
}

impl FakeHost {
    fn group(&mut self, name: &str) {
        for (f, v) in [
            ("cpu.max", "max 100000"),
            ("cpu.weight", "50"),
            ("memory.high", "max"),
            ("memory.max", "max"),
            ("io.weight", "default 100"),
        ] {
            self.files.insert(file(name, f), v.to_string());
        }
        self.readings.insert(
            name.to_string(),
            Reading {
                stall_us: [Some(0); 3],
                ..Reading::default()
            },
        );
        self.load.insert(name.to_string(), Load::default());
    }

    fn load(&mut self, name: &str) -> &mut Load {
        self.load.get_mut(name).unwrap()
    }

    /// Advances every group's counters by one interval of its load.
    fn advance(&mut self) {
        let us = TICK.as_micros() as f64;
        for (name, load) in &self.load {
            let r = self.readings.get_mut(name).unwrap();
            for i in 0..3 {
                r.stall_us[i] = Some(r.stall_us[i].unwrap_or(0) + (load.stall[i] * us) as u64);
            }
            r.cpu_usec += (load.cpus * us) as u64;
            r.memory = load.memory;
            r.memory_limit = load.memory_limit;
            for d in 0..2 {
                r.net_bytes[d] += (load.net[d] * TICK.as_secs_f64()) as u64;
            }
        }
        for (key, rate) in &self.drop_rate {
            *self.drops.entry(*key).or_default() += (rate * TICK.as_secs_f64()) as u64;
        }
    }

    fn text(&self, group: &str, name: &str) -> &str {
        self.files
            .get(&file(group, name))
            .map_or("", String::as_str)
    }
}

impl Host for FakeHost {
    fn read(&mut self, group: &GroupPath, _: u64) -> Reading {
        self.readings
            .get(group.as_str())
            .copied()
            .unwrap_or_default()
    }

    fn share_drops(&mut self, dir: Direction, level: u32) -> u64 {
        self.drops
            .get(&(dir_index(dir), level))
            .copied()
            .unwrap_or(0)
    }

    fn get(&mut self, group: &GroupPath, knob: Knob) -> Result<Setting, String> {
        let name = match knob {
            Knob::CpuMax => "cpu.max",
            Knob::CpuWeight => "cpu.weight",
            Knob::MemoryHigh => "memory.high",
            Knob::IoWeight => "io.weight",
        };
        let path = file(group.as_str(), name);
        let raw = self
            .files
            .get(&path)
            .cloned()
            .ok_or_else(|| format!("{} is missing", path.display()))?;
        let value = match knob {
            Knob::CpuMax => Value::CpuMax(CpuMax::parse_v2(&raw).unwrap()),
            Knob::CpuWeight => Value::Weight(raw.parse().unwrap()),
            Knob::MemoryHigh => Value::Bytes(raw.parse().ok()),
            Knob::IoWeight => Value::Weight(raw["default ".len()..].parse().unwrap()),
        };
        Ok(Setting { path, raw, value })
    }

    fn set(&mut self, group: &GroupPath, knob: Knob, value: Value) -> Result<Setting, String> {
        let setting = self.get(group, knob)?;
        let text = match value {
            Value::CpuMax(m) => m.to_v2(),
            Value::Weight(w) if knob == Knob::IoWeight => format!("default {w}"),
            Value::Weight(w) => w.to_string(),
            Value::Bytes(b) => b.map_or("max".to_string(), |b| b.to_string()),
        };
        self.write_file(&setting.path, &text)?;
        self.get(group, knob)
    }

    fn read_file(&mut self, path: &Path) -> Result<String, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| "no such file".to_string())
    }

    fn write_file(&mut self, path: &Path, text: &str) -> Result<(), String> {
        self.writes.push(path.to_path_buf());
        self.files.insert(path.to_path_buf(), text.to_string());
        Ok(())
    }

    fn set_yield_rate(&mut self, id: u64, dir: Direction, rate: Option<u64>) -> Result<(), String> {
        self.rates.insert((id, dir_index(dir)), rate);
        Ok(())
    }

    fn set_shares(&mut self, dir: Direction, shares: &NetShares) -> Result<(), String> {
        self.shares.insert(dir_index(dir), shares.clone());
        Ok(())
    }
}

fn group(name: &str, priority: Priority) -> ArbitratedGroup {
    ArbitratedGroup {
        path: GroupPath::parse(name).unwrap(),
        priority,
        floors: GroupFloors {
            cpu: 0.1,
            memory: 0,
            io_weight: 1,
            rate: [250_000, 250_000],
        },
        shares: true,
    }
}

fn plan(groups: Vec<ArbitratedGroup>, capacity: Option<u64>) -> ArbiterPlan {
    let levels: BTreeMap<Priority, u64> = groups.iter().map(|g| (g.priority, 0)).collect();
    let shares = base_shares(capacity, &levels);
    ArbiterPlan {
        interval: TICK,
        resources: Resource::ALL.to_vec(),
        cpu_pressure: 0.1,
        memory_pressure: 0.05,
        io_pressure: 0.1,
        network_pressure: 0.01,
        step: 0.5,
        memory_step: 0.1,
        restore_after: Duration::from_secs(1),
        probe_after: Duration::from_secs(10),
        cpus: 2,
        groups,
        shares: [shares, NetShares::default()],
    }
}

/// web (high) and batch (low), with a fake host that has both and a third
/// group outside the policy.
fn setup(capacity: Option<u64>) -> (Arbiter, FakeHost) {
    let mut host = FakeHost::default();
    for g in ["web", "batch", "other"] {
        host.group(g);
    }
    let arbiter = Arbiter::new(
        plan(
            vec![group("web", Priority::HIGH), group("batch", Priority::LOW)],
            capacity,
        ),
        vec![11, 22],
        None,
    );
    (arbiter, host)
}

/// Runs `n` intervals from `*t`, returning every change.
fn run(a: &mut Arbiter, host: &mut FakeHost, t: &mut Instant, n: usize) -> Vec<Change> {
    let mut out = Vec::new();
    for _ in 0..n {
        host.advance();
        *t += TICK;
        out.extend(a.tick(*t, host));
    }
    out
}

fn contend_cpu(host: &mut FakeHost) {
    *host.load("web") = Load {
        stall: [0.5, 0.0, 0.0],
        cpus: 1.0,
        ..Load::default()
    };
    *host.load("batch") = Load {
        cpus: 2.0,
        ..Load::default()
    };
}

#[test]
fn cpu_yields_step_by_step_to_the_floor_and_comes_back_when_idle() {
    let (mut a, mut host) = setup(None);
    let mut t = Instant::now();
    assert!(
        a.tick(t, &mut host).is_empty(),
        "the first reading is a baseline"
    );
    contend_cpu(&mut host);
    let changes = run(&mut a, &mut host, &mut t, 1);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let c = &changes[0];
    assert_eq!(
        (c.group.as_str(), c.resource, c.phase),
        ("batch", Resource::Cpu, Phase::Yield)
    );
    assert_eq!(c.cause.as_deref(), Some("web"));
    assert_eq!(c.pressure, 0.5);
    assert_eq!(
        c.detail,
        "cpu.max max 100000 -> 100000 100000, cpu.weight 50 -> 25"
    );
    assert!(c.result.is_ok());
    assert_eq!(host.text("batch", "cpu.max"), "100000 100000");
    // Every interval the pressure lasts, one more step, down to the floor
    // (a tenth of a CPU) and no further, whatever batch's usage.
    run(&mut a, &mut host, &mut t, 10);
    assert_eq!(host.text("batch", "cpu.max"), "10000 100000");
    assert_eq!(host.text("batch", "cpu.weight"), "1");
    assert_eq!(
        a.record().lines(),
        ["batch yielding to web: cpu.max 10%, cpu.weight 1"]
    );
    // web goes idle: after `restore_after` of calm, everything comes back
    // at once, as it was written.
    *host.load("web") = Load::default();
    let changes = run(&mut a, &mut host, &mut t, 3);
    assert!(
        changes.is_empty(),
        "calm for less than a second: {changes:?}"
    );
    let changes = run(&mut a, &mut host, &mut t, 2);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].phase, Phase::Restore);
    assert_eq!(host.text("batch", "cpu.max"), "max 100000");
    assert_eq!(host.text("batch", "cpu.weight"), "50");
    assert!(a.record().groups.is_empty());
    assert_eq!(a.status().changes, 6, "five steps down, one restore");
}

#[test]
fn floors_hold() {
    let (mut a, mut host) = setup(None);
    a.plan.groups[1].floors.cpu = 0.3;
    let mut t = Instant::now();
    a.tick(t, &mut host);
    contend_cpu(&mut host);
    run(&mut a, &mut host, &mut t, 20);
    assert_eq!(host.text("batch", "cpu.max"), "30000 100000");
}

#[test]
fn the_top_group_and_groups_outside_the_policy_are_never_touched() {
    let (mut a, mut host) = setup(Some(25_000_000));
    let mut t = Instant::now();
    a.tick(t, &mut host);
    // Everyone pressed on everything.
    for g in ["web", "batch", "other"] {
        *host.load(g) = Load {
            stall: [0.9, 0.9, 0.9],
            cpus: 2.0,
            memory: 100 << 20,
            net: [10e6, 0.0],
            ..Load::default()
        };
    }
    host.drop_rate.insert((0, 75), 1e6);
    run(&mut a, &mut host, &mut t, 8);
    assert!(!host.writes.is_empty());
    for w in &host.writes {
        assert!(w.starts_with("/fake/batch"), "wrote {}", w.display());
    }
    assert!(
        host.rates.keys().all(|(id, _)| *id == 22),
        "{:?}",
        host.rates
    );
    // Never memory.max: no OOM kill can come from the arbiter.
    assert_eq!(host.text("batch", "memory.max"), "max");
}

#[test]
fn the_hysteresis_band_holds_and_a_busy_calm_group_gets_steps_back_slowly() {
    let (mut a, mut host) = setup(None);
    let mut t = Instant::now();
    a.tick(t, &mut host);
    contend_cpu(&mut host);
    run(&mut a, &mut host, &mut t, 3);
    assert_eq!(host.text("batch", "cpu.max"), "25000 100000");
    // Between half the threshold and the threshold: no step either way.
    host.load("web").stall[0] = 0.07;
    assert!(run(&mut a, &mut host, &mut t, 40).is_empty());
    // Calm but busy: one step back every `probe_after` (10 s), not all.
    host.load("web").stall[0] = 0.01;
    let changes = run(&mut a, &mut host, &mut t, 44);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].phase, Phase::Restore);
    assert_eq!(host.text("batch", "cpu.max"), "50000 100000");
    // The pressure comes back: the step is taken again at once.
    host.load("web").stall[0] = 0.3;
    let changes = run(&mut a, &mut host, &mut t, 1);
    assert_eq!(changes[0].phase, Phase::Yield);
    assert_eq!(host.text("batch", "cpu.max"), "25000 100000");
}

#[test]
fn memory_steps_to_the_working_set_minus_a_step_and_never_for_a_self_made_pressure() {
    let (mut a, mut host) = setup(None);
    a.plan.resources = vec![Resource::Memory];
    let mut t = Instant::now();
    a.tick(t, &mut host);
    // web presses against its own memory.max: others yielding would not help.
    *host.load("web") = Load {
        stall: [0.0, 0.5, 0.0],
        memory: 95 << 20,
        memory_limit: Some(100 << 20),
        ..Load::default()
    };
    host.load("batch").memory = 1000 << 20;
    assert!(run(&mut a, &mut host, &mut t, 4).is_empty());
    host.load("web").memory_limit = None;
    let changes = run(&mut a, &mut host, &mut t, 1);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(
        host.text("batch", "memory.high"),
        (900u64 << 20).to_string()
    );
    // The kernel reclaimed it to that: the next step is from there.
    host.load("batch").memory = 900 << 20;
    run(&mut a, &mut host, &mut t, 1);
    assert_eq!(
        host.text("batch", "memory.high"),
        (810u64 << 20).to_string()
    );
    assert_eq!(host.text("batch", "memory.max"), "max");
    let undone = a.undo_all(&mut host);
    assert_eq!(undone.len(), 1);
    assert_eq!(host.text("batch", "memory.high"), "max");
}

#[test]
fn network_rates_and_shares_follow_a_held_back_level() {
    let (mut a, mut host) = setup(Some(25_000_000));
    a.plan.resources = vec![Resource::Egress];
    let mut t = Instant::now();
    a.tick(t, &mut host);
    // web sends 20 MB/s and 5% of its demand is held back; batch sends 5 MB/s.
    host.load("web").net = [20e6, 0.0];
    host.load("batch").net = [5e6, 0.0];
    host.drop_rate.insert((0, 75), 1.05e6);
    let changes = run(&mut a, &mut host, &mut t, 1);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].detail, "egress unlimited -> 20Mbit");
    assert_eq!(host.rates.get(&(22, 0)), Some(&Some(2_500_000)));
    let shares = &host.shares[&0];
    assert_eq!(shares.level(25).unwrap().assured, 2_500_000);
    assert_eq!(shares.level(75).unwrap().assured, 22_500_000);
    assert_eq!(a.record().lines(), ["batch yielding to web: egress 20Mbit"]);
    // web stops: batch gets its rate and its share back.
    host.load("web").net = [0.0, 0.0];
    host.drop_rate.clear();
    run(&mut a, &mut host, &mut t, 5);
    assert_eq!(host.rates.get(&(22, 0)), Some(&None));
    assert_eq!(host.shares[&0], a.plan.shares[0]);
}

#[test]
fn a_file_someone_else_changed_is_left_alone() {
    let (mut a, mut host) = setup(None);
    let mut t = Instant::now();
    a.tick(t, &mut host);
    contend_cpu(&mut host);
    run(&mut a, &mut host, &mut t, 1);
    host.files.insert(file("batch", "cpu.weight"), "77".into());
    let undone = a.undo_all(&mut host);
    assert_eq!(undone.len(), 1);
    assert!(
        undone[0].detail.contains("someone else changed it"),
        "{}",
        undone[0].detail
    );
    assert_eq!(host.text("batch", "cpu.weight"), "77");
    assert_eq!(host.text("batch", "cpu.max"), "max 100000");
}

#[test]
fn a_record_restores_after_a_crash() {
    let (mut a, mut host) = setup(Some(25_000_000));
    a.plan.resources = vec![Resource::Cpu, Resource::Egress];
    let mut t = Instant::now();
    a.tick(t, &mut host);
    contend_cpu(&mut host);
    host.load("web").net = [20e6, 0.0];
    host.load("batch").net = [5e6, 0.0];
    host.drop_rate.insert((0, 75), 1e6);
    run(&mut a, &mut host, &mut t, 2);
    let record = a.record();
    assert_eq!(record.groups["batch"].cgroup_id, 22);
    // The agent dies here; the next one recovers from the record alone.
    drop(a);
    let lines = recover(&record, &mut host, &|g| g == "batch" || g == "web");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(host.text("batch", "cpu.max"), "max 100000");
    assert_eq!(host.text("batch", "cpu.weight"), "50");
    assert_eq!(host.rates.get(&(22, 0)), Some(&None));
}

/// Finding 1 of issue 18: a record is replayed as root, so what it names is
/// checked: only the control files of the resource of a group this agent
/// manages are written, whatever the record says.
#[test]
fn a_record_writes_only_control_files_of_managed_groups() {
    let (mut a, mut host) = setup(None);
    a.tick(Instant::now(), &mut host);
    let victim = PathBuf::from("/etc/victim");
    host.files.insert(victim.clone(), "SAFE".into());
    host.files
        .insert(file("batch", "memory.max"), "SAFE".into());
    let planted = |path: &Path| YieldRecord {
        to: "web".into(),
        steps: 1,
        now: String::new(),
        files: vec![FileChange {
            path: path.to_path_buf(),
            original: "PWNED".into(),
            set: "SAFE".into(),
        }],
        rate: None,
    };
    let record = Record {
        groups: BTreeMap::from([
            (
                "batch".to_string(),
                GroupRecord {
                    cgroup_id: 22,
                    yields: BTreeMap::from([
                        ("cpu".to_string(), planted(&victim)),
                        // memory.max is never the arbiter's (memory.high is).
                        ("memory".to_string(), planted(&file("batch", "memory.max"))),
                        // Another group's file under this group's name.
                        ("io".to_string(), planted(&file("web", "io.weight"))),
                    ]),
                },
            ),
            (
                "elsewhere".to_string(),
                GroupRecord {
                    cgroup_id: 9,
                    yields: BTreeMap::from([(
                        "cpu".to_string(),
                        planted(&file("elsewhere", "cpu.max")),
                    )]),
                },
            ),
        ]),
    };
    host.files
        .insert(file("elsewhere", "cpu.max"), "SAFE".into());
    host.files.insert(file("web", "io.weight"), "SAFE".into());
    host.writes.clear();
    let lines = recover(&record, &mut host, &|g| g == "batch" || g == "web");
    assert!(host.writes.is_empty(), "wrote {:?}: {lines:?}", host.writes);
    assert_eq!(host.files[&victim], "SAFE");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("not a control file"))
            .count(),
        3,
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("elsewhere: not a group of this agent's policy"))
    );
}

#[test]
fn a_group_not_in_a_controller_is_said_once() {
    let (mut a, mut host) = setup(None);
    a.plan.resources = vec![Resource::Io];
    host.files.remove(&file("batch", "io.weight"));
    let mut t = Instant::now();
    a.tick(t, &mut host);
    *host.load("web") = Load {
        stall: [0.0, 0.0, 0.5],
        ..Load::default()
    };
    host.load("batch").stall[2] = 0.2;
    let changes = run(&mut a, &mut host, &mut t, 4);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0]
            .result
            .as_ref()
            .unwrap_err()
            .contains("io.weight is missing")
    );
}

#[test]
fn rates_read_as_tc_writes_them() {
    assert_eq!(rate_text(2_500_000), "20Mbit");
    assert_eq!(rate_text(125_000_000), "1Gbit");
    assert_eq!(rate_text(187_500), "1.5Mbit");
    assert_eq!(rate_text(100), "800bit");
}
