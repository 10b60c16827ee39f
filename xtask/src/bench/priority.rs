//! `cargo xtask bench priority`: what priorities do for a high-priority group
//! while a low-priority group saturates the host, with nothing attached, with
//! static priorities (CPU weights 200/50 and packet priorities, today's
//! behaviour, comparable to systemd's CPUWeight) and with the arbiter.
//!
//! * CPU: the high group runs two processes doing a fixed amount of work
//!   (calibrated to about `--work-secs` alone) while two hogs spin in the
//!   low group. Reported: its wall time, and against its time alone. With
//!   the arbiter, also the time from the high group's start to the low
//!   group's first yield (audit log), and how long after the work ends the
//!   low group uses 90% of the CPUs again (its cgroup2 `cpu.stat`).
//! * Network: the high group runs a request/response loop over loopback
//!   TCP (64-byte request and answer, 1 ms apart, each round trip timed),
//!   the low group a bulk TCP sender; the arbiter variant sets
//!   `egress_capacity = "200Mbit"`. Reported: p50/p99 round trips, the low
//!   group's throughput alone and while the high group runs, how long after
//!   the loop ends it is back at 90% of its rate alone, and the arbiter's
//!   own CPU time (`enforcer_arbiter_cpu_seconds_total`) per second.
//!
//! The workers are this binary (`xtask bench-worker ...`) started in the
//! groups with `enforcer exec -g cpu:GROUP`; the receiving ends are threads
//! of this process, outside every group. Everything a run makes (groups,
//! pins, the agent, workers) is removed on drop, also on error.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::support::{
    PinDir, Samples, TempDir, cgroup2_mount, end, loadavg, signal, sweep_leftovers,
};
use crate::run::{enforcer_binary, is_root};

const PREFIX: &str = "enf-bench-prio-";

pub(crate) struct Options {
    pub(crate) runs: usize,
    pub(crate) work_secs: f64,
    pub(crate) net_secs: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    /// No low group, no agent.
    Alone,
    /// Both groups, default weights, no agent.
    Nothing,
    /// The agent with `priority` high/low: CPU weights 200/50, packet
    /// priorities.
    Static,
    /// The same with `[arbiter]` (and, for the network, a capacity).
    Arbiter,
}

const VARIANTS: [Variant; 4] = [
    Variant::Alone,
    Variant::Nothing,
    Variant::Static,
    Variant::Arbiter,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Alone => "high alone",
            Variant::Nothing => "both, nothing attached",
            Variant::Static => "both, static priority",
            Variant::Arbiter => "both, arbiter",
        }
    }
}

// ---------------------------------------------------------------------------
// Workers (run inside the groups).

/// `xtask bench-worker ARGS`: the processes the benchmark puts in groups.
pub(crate) fn worker(args: &[String]) -> Result<()> {
    let arg = |i: usize| -> Result<&str> {
        args.get(i)
            .map(String::as_str)
            .with_context(|| format!("bench-worker: argument {i} missing: {args:?}"))
    };
    match arg(0)? {
        // Spins until killed (or SECS pass: a bound if the benchmark dies).
        "spin" => {
            let secs: f64 = arg(1)?.parse()?;
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed().as_secs_f64() < secs {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            Ok(())
        }
        // A fixed amount of work; prints how long it took.
        "work" => {
            let units: u64 = arg(1)?.parse()?;
            let start = Instant::now();
            work(units);
            println!("secs={}", start.elapsed().as_secs_f64());
            Ok(())
        }
        // Request/response over TCP for SECS, 1 ms apart; prints percentiles.
        "rr" => {
            let addr = arg(1)?;
            let secs: f64 = arg(2)?.parse()?;
            let mut conn = TcpStream::connect(addr)?;
            conn.set_nodelay(true)?;
            let mut rtts = Vec::new();
            let mut buf = [0u8; 64];
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < secs {
                let t = Instant::now();
                conn.write_all(&[7u8; 64])?;
                conn.read_exact(&mut buf)?;
                rtts.push(t.elapsed().as_secs_f64() * 1e6);
                std::thread::sleep(Duration::from_millis(1));
            }
            rtts.sort_by(f64::total_cmp);
            let pct = |p: f64| rtts[((rtts.len() - 1) as f64 * p) as usize];
            println!("n={}\np50={}\np99={}", rtts.len(), pct(0.5), pct(0.99));
            Ok(())
        }
        // Bulk TCP for SECS.
        "bulk" => {
            let addr = arg(1)?;
            let secs: f64 = arg(2)?.parse()?;
            let mut conn = TcpStream::connect(addr)?;
            let buf = vec![0x5au8; 64 << 10];
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < secs {
                if conn.write_all(&buf).is_err() {
                    break;
                }
            }
            Ok(())
        }
        other => bail!("bench-worker: unknown worker {other:?}"),
    }
}

/// `units` of CPU work (a multiply-add chain; 1 unit = 1M steps).
fn work(units: u64) {
    let mut x = 1u64;
    for _ in 0..units {
        for _ in 0..1_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    std::hint::black_box(x);
}

// ---------------------------------------------------------------------------
// Guards.

/// Processes started in groups; killed on drop.
#[derive(Default)]
struct Workers(Vec<Child>);

impl Workers {
    fn spawn(&mut self, enforcer: &Path, group: &str, args: &[&str]) -> Result<()> {
        let child = Command::new(enforcer)
            .args(["exec", "-g", &format!("cpu:{group}"), "--"])
            .arg(std::env::current_exe()?)
            .arg("bench-worker")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a worker")?;
        self.0.push(child);
        Ok(())
    }

    /// Waits for every worker; their outputs.
    fn wait(&mut self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for c in self.0.drain(..) {
            let o = c.wait_with_output()?;
            if !o.status.success() {
                bail!("a worker failed with {}", o.status);
            }
            out.push(String::from_utf8_lossy(&o.stdout).into_owned());
        }
        Ok(out)
    }

    fn kill(&mut self) {
        for mut c in self.0.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The two groups, in the cpu hierarchy (and their cgroup2 mirrors).
struct Groups {
    enforcer: PathBuf,
    names: [String; 2],
}

impl Groups {
    fn create(enforcer: &Path, pid: u32) -> Result<Groups> {
        let names = [format!("{PREFIX}{pid}-high"), format!("{PREFIX}{pid}-low")];
        let g = Groups {
            enforcer: enforcer.to_path_buf(),
            names,
        };
        for n in &g.names {
            let st = Command::new(enforcer)
                .args(["create", "-g", &format!("cpu:{n}")])
                .status()?;
            if !st.success() {
                bail!("enforcer create -g cpu:{n} failed");
            }
        }
        Ok(g)
    }

    fn high(&self) -> &str {
        &self.names[0]
    }

    fn low(&self) -> &str {
        &self.names[1]
    }

    /// Default weights and no quota (what an agent may have left).
    fn reset(&self) -> Result<()> {
        for n in &self.names {
            let st = Command::new(&self.enforcer)
                .args(["set", "-r", "cpu.weight=100", "-r", "cpu.max=max", n])
                .stdout(Stdio::null())
                .status()?;
            if !st.success() {
                bail!("resetting {n}'s cpu.weight and cpu.max failed");
            }
        }
        Ok(())
    }

    /// CPU time (µs) of the low group, from its cgroup2 `cpu.stat`.
    fn low_usec(&self) -> Result<u64> {
        let text = std::fs::read_to_string(cgroup2_mount()?.join(self.low()).join("cpu.stat"))?;
        text.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .context("no usage_usec in the low group's cpu.stat")
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        for n in &self.names {
            let ok = Command::new(&self.enforcer)
                .args(["delete", "-g", &format!("cpu:{n}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("[bench] warning: could not delete group {n}");
            }
        }
    }
}

/// `enforcer run` with a policy; on drop SIGTERM, waited for, and `enforcer
/// stop` (nothing of a variant may stay attached into the next).
struct Agent {
    child: Child,
    port: u16,
    audit: PathBuf,
    enforcer: PathBuf,
    pins: PathBuf,
    pid_file: PathBuf,
}

impl Agent {
    fn start(enforcer: &Path, dir: &Path, pins: &Path, policy: &str) -> Result<Agent> {
        let conf = dir.join("policy.toml");
        std::fs::write(&conf, policy)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let audit = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&audit);
        let child = Command::new(enforcer)
            .arg("run")
            .arg("--config")
            .arg(&conf)
            .arg("--pin-dir")
            .arg(pins)
            .arg("--pid-file")
            .arg(dir.join("agent.pid"))
            .args(["--on-exit", "detach"])
            .arg("--audit-log")
            .arg(&audit)
            .args(["--metrics", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("agent.log"))?)
            .spawn()?;
        let mut agent = Agent {
            child,
            port,
            audit,
            enforcer: enforcer.to_path_buf(),
            pins: pins.to_path_buf(),
            pid_file: dir.join("agent.pid"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while agent.metrics().is_err() {
            if let Some(st) = agent.child.try_wait()? {
                bail!(
                    "the agent exited with {st}: {}",
                    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("the agent did not serve metrics within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(agent)
    }

    fn metrics(&self) -> Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// A metric without labels.
    fn metric(&self, name: &str) -> Option<f64> {
        self.metrics().ok()?.lines().find_map(|l| {
            let v = l.strip_prefix(name)?.strip_prefix(' ')?;
            v.trim().parse().ok()
        })
    }

    /// Epoch seconds of the first arbiter yield in the audit log.
    fn first_yield(&self) -> Option<f64> {
        let text = std::fs::read_to_string(&self.audit).ok()?;
        text.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["kind"] == "arbiter" && v["phase"] == "yield").then(|| v["time"].as_f64())?
        })
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        signal("TERM", self.child.id());
        end(&mut self.child, Duration::from_secs(10), "the agent");
        let ok = Command::new(&self.enforcer)
            .arg("stop")
            .arg("--pin-dir")
            .arg(&self.pins)
            .arg("--pid-file")
            .arg(&self.pid_file)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let left = std::fs::read_dir(&self.pins).map_or(0, |d| d.count());
        if !ok || left > 0 {
            eprintln!(
                "[bench] warning: enforcer stop left {} behind",
                self.pins.display()
            );
        }
    }
}

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A TCP sink in this process counting what it receives.
struct Sink {
    addr: String,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Sink {
    fn start() -> Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        listener.set_nonblocking(true)?;
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (bytes.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let b = b.clone();
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                        std::thread::spawn(move || {
                            let mut buf = vec![0u8; 1 << 16];
                            while let Ok(n) = conn.read(&mut buf) {
                                if n == 0 {
                                    break;
                                }
                                b.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Sink { addr, bytes, stop })
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An echo server in this process: 64 bytes back for every 64.
fn echo_server() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_nodelay(true);
                let mut buf = [0u8; 64];
                while conn.read_exact(&mut buf).is_ok() {
                    if conn.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

// ---------------------------------------------------------------------------
// The benchmark.

struct Bench {
    enforcer: PathBuf,
    groups: Groups,
    dir: PathBuf,
    pins: PathBuf,
    units: u64,
    opts: Options,
}

impl Bench {
    fn policy(&self, v: Variant, net: bool) -> Option<String> {
        let groups = format!(
            "[group.\"{}\"]\npriority = \"high\"\n\n[group.\"{}\"]\npriority = \"low\"\n",
            self.groups.high(),
            self.groups.low()
        );
        match v {
            Variant::Alone | Variant::Nothing => None,
            Variant::Static => Some(groups),
            Variant::Arbiter if net => Some(format!(
                "[agent]\negress_capacity = \"200Mbit\"\n\n[arbiter]\n\n{groups}"
            )),
            Variant::Arbiter => Some(format!("[arbiter]\n\n{groups}")),
        }
    }

    fn agent(&self, v: Variant, net: bool) -> Result<Option<Agent>> {
        self.groups.reset()?;
        self.policy(v, net)
            .map(|p| Agent::start(&self.enforcer, &self.dir, &self.pins, &p))
            .transpose()
    }

    /// The CPU-bound case, one variant.
    fn cpu(&self, v: Variant, s: &mut Samples) -> Result<()> {
        let agent = self.agent(v, false)?;
        let mut low = Workers::default();
        let mut low_alone = 0.0;
        if v != Variant::Alone {
            for _ in 0..2 {
                low.spawn(&self.enforcer, self.groups.low(), &["spin", "120"])?;
            }
            std::thread::sleep(Duration::from_millis(300));
            let (t, u) = (Instant::now(), self.groups.low_usec()?);
            std::thread::sleep(Duration::from_millis(1000));
            low_alone = (self.groups.low_usec()? - u) as f64 / 1e6 / t.elapsed().as_secs_f64();
            s.push(&format!("cpu|{}|low_alone_cpus", v.name()), low_alone);
        }
        let arbiter_before = agent
            .as_ref()
            .and_then(|a| a.metric("enforcer_arbiter_cpu_seconds_total"));
        let started = epoch();
        let t = Instant::now();
        let mut high = Workers::default();
        let units = self.units.to_string();
        for _ in 0..2 {
            high.spawn(&self.enforcer, self.groups.high(), &["work", &units])?;
        }
        high.wait()?;
        let took = t.elapsed().as_secs_f64();
        s.push(&format!("cpu|{}|secs", v.name()), took);
        if v == Variant::Arbiter
            && let Some(a) = &agent
        {
            if let Some(y) = a.first_yield() {
                s.push("cpu|yield_ms", (y - started) * 1e3);
            }
            // Work conservation: the low group at 90% of what it used
            // alone again.
            let mut prev = (Instant::now(), self.groups.low_usec()?);
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut back = None;
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                let now = (Instant::now(), self.groups.low_usec()?);
                let cpus = (now.1 - prev.1) as f64 / 1e6 / (now.0 - prev.0).as_secs_f64();
                prev = now;
                if cpus >= 0.9 * low_alone {
                    back = Some(now.0.duration_since(t).as_secs_f64() - took);
                    break;
                }
            }
            s.push("cpu|regain_s", back.unwrap_or(f64::INFINITY));
            let after = a.metric("enforcer_arbiter_cpu_seconds_total");
            if let (Some(b), Some(e)) = (arbiter_before, after) {
                s.push("cpu|arbiter_cpu_pct", (e - b) / took * 100.0);
            }
        }
        low.kill();
        drop(agent);
        Ok(())
    }

    /// The network case, one variant.
    fn net(&self, v: Variant, s: &mut Samples, echo: &str) -> Result<()> {
        let agent = self.agent(v, true)?;
        let sink = Sink::start()?;
        let secs = self.opts.net_secs;
        let key = |k: &str| format!("net|{}|{k}", v.name());
        let mut low = Workers::default();
        let rate =
            |from: u64, d: Duration| (sink.bytes() - from) as f64 * 8.0 / 1e6 / d.as_secs_f64();
        let mut alone = 0.0;
        if v != Variant::Alone {
            let bound = (secs * 2.0 + 10.0).to_string();
            low.spawn(
                &self.enforcer,
                self.groups.low(),
                &["bulk", &sink.addr, &bound],
            )?;
            std::thread::sleep(Duration::from_millis(500));
            let (b, t) = (sink.bytes(), Instant::now());
            std::thread::sleep(Duration::from_millis(1500));
            alone = rate(b, t.elapsed());
            s.push(&key("low_alone_mbit"), alone);
        }
        let arbiter_before = agent
            .as_ref()
            .and_then(|a| a.metric("enforcer_arbiter_cpu_seconds_total"));
        let started = epoch();
        let (b, t) = (sink.bytes(), Instant::now());
        let mut high = Workers::default();
        high.spawn(
            &self.enforcer,
            self.groups.high(),
            &["rr", echo, &secs.to_string()],
        )?;
        let out = high.wait()?;
        let took = t.elapsed();
        let out = out.first().map(String::as_str).unwrap_or("");
        s.push(&key("p50_us"), super::support::value(out, "p50")?);
        s.push(&key("p99_us"), super::support::value(out, "p99")?);
        if v != Variant::Alone {
            s.push(&key("low_mbit"), rate(b, took));
            // Work conservation: 90% of its rate alone again.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut back = f64::INFINITY;
            let mut prev = (Instant::now(), sink.bytes());
            while Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                let now = (Instant::now(), sink.bytes());
                let r = (now.1 - prev.1) as f64 * 8.0 / 1e6 / (now.0 - prev.0).as_secs_f64();
                prev = now;
                if r >= 0.9 * alone {
                    back = now.0.duration_since(t).as_secs_f64() - took.as_secs_f64();
                    break;
                }
            }
            s.push(&key("regain_s"), back);
        }
        if v == Variant::Arbiter
            && let Some(a) = &agent
        {
            s.push(
                "net|yield_ms",
                a.first_yield().map_or(f64::NAN, |y| (y - started) * 1e3),
            );
            let after = a.metric("enforcer_arbiter_cpu_seconds_total");
            if let (Some(b), Some(e)) = (arbiter_before, after) {
                s.push("net|arbiter_cpu_pct", (e - b) / took.as_secs_f64() * 100.0);
            }
        }
        low.kill();
        drop(agent);
        Ok(())
    }
}

/// Work units that take about `secs` on one CPU here.
fn calibrate(secs: f64) -> u64 {
    let t = Instant::now();
    work(20);
    let per_unit = t.elapsed().as_secs_f64() / 20.0;
    ((secs / per_unit) as u64).max(1)
}

pub(crate) fn run(opts: Options) -> Result<()> {
    if !is_root() {
        bail!("the priority benchmark creates cgroups and runs the agent: run it as root");
    }
    if !(1..=20).contains(&opts.runs) {
        bail!("--runs must be in 1..=20");
    }
    sweep_leftovers(PREFIX, "enfbenchprio");
    let enforcer = enforcer_binary(true);
    let pid = std::process::id();
    let groups = Groups::create(&enforcer, pid)?;
    let dir = TempDir::create(std::env::temp_dir().join(format!("{PREFIX}{pid}")))?;
    let pins = PinDir {
        enforcer: enforcer.clone(),
        dir: PathBuf::from(format!("/sys/fs/bpf/{PREFIX}{pid}")),
    };
    let units = calibrate(opts.work_secs);
    let echo = echo_server()?;
    let runs = opts.runs;
    let bench = Bench {
        enforcer,
        groups,
        dir: dir.0.clone(),
        pins: pins.dir.clone(),
        units,
        opts,
    };
    let load_before = loadavg();
    let mut s = Samples::default();
    for r in 0..runs {
        for k in 0..VARIANTS.len() {
            let v = VARIANTS[(k + r) % VARIANTS.len()];
            eprintln!("[bench] run {}/{runs}: cpu, {}", r + 1, v.name());
            bench.cpu(v, &mut s)?;
        }
        for k in 0..VARIANTS.len() {
            let v = VARIANTS[(k + r) % VARIANTS.len()];
            eprintln!("[bench] run {}/{runs}: network, {}", r + 1, v.name());
            bench.net(v, &mut s, &echo)?;
        }
    }
    let load_after = loadavg();
    let net_secs = bench.opts.net_secs;
    drop(bench);
    drop(pins);
    drop(dir);

    let mut t = format!(
        "\npriority benchmark: {runs} interleaved runs per variant, median [min-max]; \
         load average at start {load_before}, at end {load_after}\n\n"
    );
    t += "CPU: two processes of fixed work in the high group, two hogs in the low group \
          (2 CPUs):\n\n| variant | high's work, s | vs alone |\n|---|---|---|\n";
    let alone = s.median(&format!("cpu|{}|secs", Variant::Alone.name()));
    for v in VARIANTS {
        let k = format!("cpu|{}|secs", v.name());
        t += &format!(
            "| {} | {} | {:.2}x |\n",
            v.name(),
            s.fmt(&k, 2),
            s.median(&k) / alone
        );
    }
    t += &format!(
        "\nArbiter, CPU: first yield {} ms after the high group started; low group back at 90% \
         of its CPU use alone {} s after the work ended; the arbiter's CPU {} % of one CPU.\n",
        s.fmt("cpu|yield_ms", 0),
        s.fmt("cpu|regain_s", 2),
        s.fmt("cpu|arbiter_cpu_pct", 3),
    );
    t += &format!(
        "\nNetwork: request/response over loopback TCP in the high group (64 B each way, 1 ms \
         apart, {net_secs} s), bulk TCP from the low group (arbiter variant: egress_capacity \
         200Mbit):\n\n| variant | p50 us | p99 us | p99 vs alone | low alone Mbit/s | low during Mbit/s | \
         low back at 90% after, s |\n|---|---|---|---|---|---|---|\n"
    );
    let p99_alone = s.median(&format!("net|{}|p99_us", Variant::Alone.name()));
    for v in VARIANTS {
        let k = |x: &str| format!("net|{}|{x}", v.name());
        let or_dash = |x: &str, d: usize| {
            if s.get(&k(x)).is_empty() {
                "-".to_string()
            } else {
                s.fmt(&k(x), d)
            }
        };
        t += &format!(
            "| {} | {} | {} | {:.2}x | {} | {} | {} |\n",
            v.name(),
            s.fmt(&k("p50_us"), 0),
            s.fmt(&k("p99_us"), 0),
            s.median(&k("p99_us")) / p99_alone,
            or_dash("low_alone_mbit", 0),
            or_dash("low_mbit", 0),
            or_dash("regain_s", 2),
        );
    }
    t += &format!(
        "\nArbiter, network: first yield {} ms after the high group started (NaN: none); the \
         arbiter's CPU {} % of one CPU.\n",
        s.fmt("net|yield_ms", 0),
        s.fmt("net|arbiter_cpu_pct", 3),
    );
    println!("{t}");
    Ok(())
}
