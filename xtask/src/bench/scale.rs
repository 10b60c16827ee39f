//! `cargo xtask bench scale`: the agent at node scale (issue 18). N groups
//! below one group, each with a UDP socket that sent one datagram (and so
//! an entry in the counting maps, and syscalls observing), under two
//! setups: **policy** (a policy group whose subtree a user could have made,
//! as a delegated subtree) and **observe** (no policy, the whole host).
//! Measured per case: the agent's CPU over `--secs` of steady state at a
//! 1 s interval (utime + stime from /proc), its RSS now and at its peak,
//! one scrape of /metrics, the entries in NET_EGRESS, and the time from
//! SIGTERM to exit. `--full` adds observe cases with more groups than the
//! maps hold (and, for this build, a subtree quota above that), so the
//! maps are full. With `--baseline` the same cases run on another build
//! (such as one of main), interleaved.
//!
//! The groups are made by this process and filled by `xtask bench-worker
//! hop`, one process moving itself through them; everything is removed on
//! drop, also on error.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::support::{PinDir, TempDir, cgroup2_mount, end, loadavg, signal, sweep_leftovers};
use crate::run::{enforcer_binary, is_root};

const PREFIX: &str = "enf-bench-scale-";

pub(crate) struct Options {
    pub(crate) sizes: Vec<usize>,
    pub(crate) secs: f64,
    pub(crate) full: Option<usize>,
    pub(crate) baseline: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Policy,
    Observe,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Policy => "policy",
            Mode::Observe => "observe",
        }
    }
}

/// What one case measured.
struct Measure {
    cpu_percent: f64,
    rss_mib: f64,
    peak_mib: f64,
    scrape: Option<Duration>,
    entries: Option<f64>,
    sigterm: Option<Duration>,
}

// ---------------------------------------------------------------------------
// The worker.

/// `xtask bench-worker hop ADDR PARENT N`: joins PARENT/g0 .. g(N-1) in
/// turn, sending one 64-byte datagram from a socket made in each.
pub(crate) fn hop(args: &[String]) -> Result<()> {
    let addr = args.get(1).context("hop: ADDR")?;
    let parent = PathBuf::from(args.get(2).context("hop: PARENT")?);
    let n: usize = args.get(3).context("hop: N")?.parse()?;
    for i in 0..n {
        let dir = parent.join(format!("g{i}"));
        std::fs::write(dir.join("cgroup.procs"), "0")
            .with_context(|| format!("joining {}", dir.display()))?;
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.send_to(&[0x5a; 64], addr.as_str())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Guards.

/// N groups below a cgroup2 directory, removed (and the directory, if this
/// made it) on drop.
struct Tree {
    parent: PathBuf,
    n: usize,
    made_parent: bool,
}

impl Drop for Tree {
    fn drop(&mut self) {
        for i in 0..self.n {
            let _ = std::fs::remove_dir(self.parent.join(format!("g{i}")));
        }
        if self.made_parent {
            let _ = std::fs::remove_dir(&self.parent);
        }
    }
}

/// The agent, ended on drop (SIGTERM, then SIGKILL) if still running.
struct Agent {
    child: Option<Child>,
    port: u16,
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal("TERM", c.id());
            end(&mut c, Duration::from_secs(30), "the agent");
        }
    }
}

/// A policy group made by the agent, deleted on drop.
struct PolicyGroup {
    enforcer: PathBuf,
    name: String,
}

impl Drop for PolicyGroup {
    fn drop(&mut self) {
        let _ = Command::new(&self.enforcer)
            .args(["delete", "-g", &format!("memory:{}", self.name)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------
// Measuring.

fn scrape(port: u16, timeout: Duration) -> Option<(Duration, String)> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200")
        .then(|| (start.elapsed(), out))
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &text[text.rfind(')').context("stat")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
}

fn status_kib(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// One case: a fresh agent of `bin` over `n` groups.
fn case(bin: &Path, mode: Mode, n: usize, extra: &[&str], secs: f64, k: usize) -> Result<Measure> {
    let name = format!("{PREFIX}{}-{k}", std::process::id());
    let tmp = TempDir::create(std::env::temp_dir().join(&name))?;
    let pins = PinDir {
        enforcer: enforcer_binary(true),
        dir: PathBuf::from("/sys/fs/bpf").join(&name),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let v2 = cgroup2_mount()?;
    let parent = v2.join(&name);
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .args(["--interval", "1s"])
        .arg("--pin-dir")
        .arg(&pins.dir)
        .args(["--metrics", &format!("127.0.0.1:{port}")])
        .arg("--audit-log")
        .arg(tmp.0.join("audit.jsonl"))
        .arg("--pid-file")
        .arg(tmp.0.join("agent.pid"))
        .args(extra);
    let _group;
    let made_parent = mode == Mode::Observe;
    if mode == Mode::Policy {
        let policy = tmp.0.join("policy.toml");
        std::fs::write(
            &policy,
            format!("[group.\"{name}\"]\n\"memory.max\" = \"8G\"\n"),
        )?;
        cmd.arg("--config").arg(&policy);
        _group = Some(PolicyGroup {
            enforcer: enforcer_binary(true),
            name: name.clone(),
        });
    } else {
        _group = None;
        std::fs::create_dir(&parent)?;
    }
    let log = std::fs::File::create(tmp.0.join("agent.log"))?;
    let mut agent = Agent {
        child: Some(cmd.stdout(Stdio::null()).stderr(log).spawn()?),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while scrape(port, Duration::from_secs(2)).is_none() {
        if let Some(Ok(Some(st))) = agent.child.as_mut().map(Child::try_wait) {
            bail!(
                "the agent exited with {st}: {}",
                std::fs::read_to_string(tmp.0.join("agent.log")).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("the agent did not serve metrics within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The metrics may answer before the policy's group is made (the
    // listener is bound before the host changes): wait for the group too.
    // (Under load, `g0` once failed with ENOENT here.)
    while !parent.is_dir() {
        if Instant::now() > deadline {
            bail!("the agent made no {} within 60 s", parent.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut tree = Tree {
        parent: parent.clone(),
        n: 0,
        made_parent,
    };
    for i in 0..n {
        std::fs::create_dir(parent.join(format!("g{i}")))?;
        tree.n = i + 1;
    }
    let rx = UdpSocket::bind("127.0.0.1:0")?;
    let addr = rx.local_addr()?.to_string();
    let me = std::env::current_exe()?;
    let filled = Command::new(&me)
        .args(["bench-worker", "hop", &addr])
        .arg(&parent)
        .arg(n.to_string())
        .status()?;
    if !filled.success() {
        bail!("bench-worker hop failed: {filled}");
    }
    // Settled: the entries counted stop changing (or 30 s pass).
    let mut last = None;
    let mut steady = 0;
    let settle = Instant::now() + Duration::from_secs(30);
    while steady < 3 && Instant::now() < settle {
        std::thread::sleep(Duration::from_secs(1));
        let now = scrape(port, Duration::from_secs(5))
            .and_then(|(_, m)| sample(&m, "enforcer_map_entries{map=\"NET_EGRESS\"}"));
        steady = if now.is_some() && now == last {
            steady + 1
        } else {
            0
        };
        last = now;
    }
    let pid = agent.child.as_ref().context("agent")?.id();
    let t0 = cpu_ticks(pid)?;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let ticks = cpu_ticks(pid)? - t0;
    let cpu_percent = ticks as f64 / clock_ticks() / start.elapsed().as_secs_f64() * 100.0;
    let rss_mib = status_kib(pid, "VmRSS:") / 1024.0;
    let peak_mib = status_kib(pid, "VmHWM:") / 1024.0;
    let scraped = scrape(port, Duration::from_secs(30));
    let entries = scraped
        .as_ref()
        .and_then(|(_, m)| sample(m, "enforcer_map_entries{map=\"NET_EGRESS\"}"));
    let mut child = agent.child.take().context("agent")?;
    signal("TERM", pid);
    let t = Instant::now();
    let limit = Duration::from_secs(60);
    let sigterm = loop {
        if child.try_wait()?.is_some() {
            break Some(t.elapsed());
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(tree);
    drop(pins);
    drop(tmp);
    let _ = agent.port;
    Ok(Measure {
        cpu_percent,
        rss_mib,
        peak_mib,
        scrape: scraped.map(|(d, _)| d),
        entries,
        sigterm,
    })
}

pub(crate) fn run(opts: Options) -> Result<()> {
    if !is_root() {
        bail!("the scale benchmark needs root (cgroups, eBPF)");
    }
    sweep_leftovers(PREFIX, "enfbenchscale");
    let current = enforcer_binary(true);
    let mut binaries: Vec<(&str, PathBuf)> = vec![("this build", current)];
    if let Some(b) = &opts.baseline {
        binaries.push(("baseline", b.clone()));
    }
    let mut cases: Vec<(Mode, usize, bool)> = Vec::new();
    for &n in &opts.sizes {
        cases.push((Mode::Policy, n, false));
        cases.push((Mode::Observe, n, false));
    }
    if let Some(n) = opts.full {
        cases.push((Mode::Observe, n, true));
    }
    println!(
        "scale benchmark: the agent (1 s interval) over N groups that each sent a datagram; \
         CPU over {} s of steady state; load before: {}",
        opts.secs,
        loadavg()
    );
    println!(
        "| setup | groups | build | agent CPU % | RSS MiB (peak) | scrape ms | NET_EGRESS entries | SIGTERM to exit ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut k = 0;
    for (mode, n, full) in cases {
        for (label, bin) in &binaries {
            k += 1;
            // Full maps: this build's quota raised above what the maps hold.
            let quota = (n + 1000).to_string();
            let extra: Vec<&str> = if full && *label == "this build" {
                vec!["--max-subgroups", &quota]
            } else {
                Vec::new()
            };
            eprintln!(
                "[bench] {} {} groups{}, {label} (load {})",
                mode.name(),
                n,
                if full { ", maps full" } else { "" },
                loadavg()
            );
            let m = case(bin, mode, n, &extra, opts.secs, k)?;
            let ms = |d: Option<Duration>, none: &str| {
                d.map_or_else(
                    || none.to_string(),
                    |d| format!("{:.0}", d.as_secs_f64() * 1e3),
                )
            };
            println!(
                "| {}{} | {n} | {label} | {:.1} | {:.0} ({:.0}) | {} | {} | {} |",
                mode.name(),
                if full { ", maps full" } else { "" },
                m.cpu_percent,
                m.rss_mib,
                m.peak_mib,
                ms(m.scrape, "no answer in 30 s"),
                m.entries
                    .map_or_else(|| "?".to_string(), |e| format!("{e:.0}")),
                ms(m.sigterm, "> 60000 (killed)"),
            );
        }
    }
    println!("load after: {}", loadavg());
    Ok(())
}
