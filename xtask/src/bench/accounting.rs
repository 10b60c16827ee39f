//! `cargo xtask bench accounting`: what enforcer's eBPF accounting costs.
//!
//! 1. Syscall path: ns per `getppid()` from a process in a managed group with
//!    nothing attached, with an empty raw `sys_enter` program, with the enforcer
//!    agent, and with a bpftrace one-liner counting syscalls per cgroup; plus a
//!    process outside the managed groups, bare and with the agent running.
//! 2. Program cost from the kernel's BPF stats (`kernel.bpf_stats_enabled`):
//!    run_time_ns / run_cnt of enforcer's programs beside empty programs of the
//!    same type attached at the same time, over the same events.
//! 3. Small-packet UDP: 64-byte datagrams sent with `sendmmsg` to a socket on
//!    127.0.0.1, bare, with the agent, and with nftables counter rules matching
//!    the same group.
//! 4. Collection: reading all counters of 1k and 10k synthetic groups from a
//!    private pin directory, and the maps' memory.
//!
//! Variants are interleaved run by run (the order rotates every run) and reported
//! as medians with [min-max]. xtask cannot link the enforcer library, so it drives
//! `target/release/enforcer` and `target/release/examples/bench_accounting` as
//! processes. Everything it creates (two groups, an nft table, pin directories,
//! the bpf_stats sysctl, a temp directory, child processes) is removed or
//! restored by guards, also when a step fails.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::support::{
    BpfStats, Groups, Holder, NftTable, PinDir, Samples, TempDir, bpftool_json, cgroup2_mount, end,
    fmt_stat, loadavg, med, nft_cgroup, prog_stats, raw, signal, sweep_leftovers, value,
};
use crate::run::{enforcer_binary, is_root};
use crate::setup::{apt_install, status};
use crate::workspace::workspace_root;

/// Run sizes. Defaults keep the whole benchmark near four minutes on the build host.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    /// Interleaved runs per variant.
    pub(crate) runs: usize,
    /// getppid calls per timed run.
    pub(crate) calls: u64,
    /// Seconds per UDP send run.
    pub(crate) udp_secs: f64,
}

const BPFTRACE_PROGRAM: &str = "tracepoint:raw_syscalls:sys_enter { @[cgroup] = count(); }";
/// Prefix of everything this benchmark names (groups, pin dirs, temp dir); the
/// nft table is `enfbench_acct_<pid>` (nft names take no `-`).
const PREFIX: &str = "enf-bench-acct-";
const NFT_PREFIX: &str = "enfbench_acct_";
/// Pause after the agent reports ready (its first collection runs at once) and
/// after the other variants attach, so no start-up work overlaps a timed run.
const SETTLE_AGENT: Duration = Duration::from_secs(1);
const SETTLE: Duration = Duration::from_millis(300);
/// How long a run waits for someone else's tracing programs to be unloaded.
const QUIET_WAIT: Duration = Duration::from_secs(120);

pub(crate) fn run(opts: Options) -> Result<()> {
    if !is_root() {
        bail!("the accounting benchmark loads eBPF programs and creates cgroups: run it as root");
    }
    if opts.runs < 3 || opts.calls == 0 || !(0.2..=10.0).contains(&opts.udp_secs) {
        bail!("--runs must be at least 3, --calls positive, --udp-secs in 0.2..=10");
    }
    apt_install(&["bpftool", "bpftrace", "nftables"])
        .context("the accounting benchmark needs bpftool, bpftrace and nft")?;
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(workspace_root()).args([
        "build",
        "--release",
        "--package",
        "enforcer",
        "--features",
        "bench",
        "--examples",
    ]);
    status(&mut build).context("building enforcer's examples (bench_accounting) failed")?;
    ensure_tracefs()?;
    sweep_leftovers(PREFIX, NFT_PREFIX);

    let bench = Bench::new()?;
    let load_before = loadavg();
    let foreign_before = foreign_tracing_programs();
    let syscall = bench.syscall_path(opts)?;
    let progs = bench.program_cost(opts)?;
    let udp = bench.udp(opts)?;
    let collect = bench.collection()?;
    let foreign_after = foreign_tracing_programs();
    let load_after = loadavg();

    println!(
        "\naccounting benchmark: {} interleaved runs per variant, median [min-max]; kernel {}, {} CPUs",
        opts.runs,
        uname_r(),
        possible_cpus()
    );
    println!(
        "load average (1/5/15 min) at start: {load_before}; at end: {load_after} \
         (the benchmark itself keeps about one CPU busy)"
    );
    println!(
        "other tracing programs loaded at start: {foreign_before}; at end: {foreign_after}; \
         syscall-path and UDP runs that started with one loaded (after waiting up to {} s): {}",
        QUIET_WAIT.as_secs(),
        bench.disturbed.get()
    );
    println!("{syscall}\n{progs}\n{udp}\n{collect}");
    Ok(())
}

// ---------------------------------------------------------------------------
// The benchmark's fixtures.

struct Bench {
    enforcer: PathBuf,
    driver: PathBuf,
    /// The managed group (in the policy) and an unmanaged one, both created by
    /// `enforcer create -g memory:NAME` (which also makes the cgroup2 mirror).
    groups: Groups,
    group_dir: PathBuf,
    group_id: u64,
    policy: PathBuf,
    pin_dir: PathBuf,
    pid_file: PathBuf,
    audit_log: PathBuf,
    agent_log: PathBuf,
    tmp: TempDir,
    /// Runs that began while someone else's tracing programs were loaded.
    disturbed: Cell<usize>,
}

impl Bench {
    fn new() -> Result<Bench> {
        let enforcer = enforcer_binary(true);
        let driver = workspace_root().join("target/release/examples/bench_accounting");
        for bin in [&enforcer, &driver] {
            if !bin.is_file() {
                bail!("{} is missing after the build", bin.display());
            }
        }
        let pid = std::process::id();
        let tmp = TempDir::create(std::env::temp_dir().join(format!("{PREFIX}{pid}")))?;
        let managed = format!("{PREFIX}{pid}");
        let other = format!("{PREFIX}{pid}-other");
        let groups = Groups::create(&enforcer, &[&managed, &other])?;
        let group_dir = cgroup2_mount()?.join(&managed);
        let group_id = std::fs::metadata(&group_dir)
            .with_context(|| {
                format!(
                    "{} (the group's cgroup2 mirror) is missing",
                    group_dir.display()
                )
            })?
            .ino();
        let policy = tmp.0.join("policy.toml");
        std::fs::write(
            &policy,
            format!("[group.\"{managed}\"]\n\"memory.max\" = \"1G\"\n"),
        )?;
        Ok(Bench {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/{PREFIX}{pid}")),
            pid_file: tmp.0.join("agent.pid"),
            audit_log: tmp.0.join("audit.jsonl"),
            agent_log: tmp.0.join("agent.log"),
            policy,
            enforcer,
            driver,
            groups,
            group_dir,
            group_id,
            tmp,
            disturbed: Cell::new(0),
        })
    }

    fn managed(&self) -> &str {
        &self.groups.names[0]
    }

    fn other(&self) -> &str {
        &self.groups.names[1]
    }

    /// Runs the driver with `args` inside `group` (`enforcer exec`), returns stdout.
    fn exec_in(&self, group: &str, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.enforcer)
            .args(["exec", "-g", &format!("memory:{group}"), "--"])
            .arg(&self.driver)
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "bench_accounting {} in {group} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn getppid(&self, group: &str, calls: u64, cpu: Option<usize>) -> Result<f64> {
        let calls = calls.to_string();
        let cpu = cpu.map(|c| c.to_string());
        let mut args = vec!["getppid", "--calls", &calls];
        if let Some(cpu) = &cpu {
            args.extend(["--cpu", cpu]);
        }
        let out = self.exec_in(group, &args)?;
        value(&out, "ns_per_call")
    }

    fn sendmmsg(&self, secs: f64) -> Result<(f64, f64)> {
        let out = self.exec_in(self.managed(), &["sendmmsg", "--secs", &secs.to_string()])?;
        Ok((value(&out, "datagrams_per_sec")?, value(&out, "sent")?))
    }

    /// `enforcer run` with a policy naming only the managed group, on a private
    /// pin directory; returns once it has written its pid file (after attaching).
    fn start_agent(&self) -> Result<Agent> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.agent_log)?;
        let child = Command::new(&self.enforcer)
            .arg("run")
            .arg("--config")
            .arg(&self.policy)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--pid-file")
            .arg(&self.pid_file)
            .arg("--audit-log")
            .arg(&self.audit_log)
            .arg("--no-metrics")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting enforcer run")?;
        let mut agent = Agent {
            child: Some(child),
            enforcer: self.enforcer.clone(),
            pin_dir: self.pin_dir.clone(),
            pid_file: self.pid_file.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pid = agent.child.as_ref().map_or(0, Child::id);
            // Ready: its pid file names it (first line) and the host-wide
            // tracing links are pinned (attached last, after the groups').
            let written = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
            let tracing = self.pin_dir.join("links/global/count_syscalls");
            if written.lines().next() == Some(pid.to_string().as_str()) && tracing.exists() {
                // Let its start-up work (first collection tick) finish.
                std::thread::sleep(SETTLE_AGENT);
                return Ok(agent);
            }
            if let Some(child) = agent.child.as_mut()
                && let Some(st) = child.try_wait()?
            {
                agent.child = None;
                bail!(
                    "enforcer run exited ({st}) before it was ready; its log:\n{}",
                    tail(&self.agent_log)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "enforcer run was not ready after 30 s; its log:\n{}",
                    tail(&self.agent_log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The driver holding empty programs attached until we close its stdin.
    fn hold_noop(&self, args: &[&str]) -> Result<Holder> {
        let child = Command::new(&self.driver)
            .args(args)
            .args(["--secs", "900"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(self.tmp.0.join("noop.err"))?)
            .spawn()?;
        let mut holder = Holder::new(child, false, Duration::from_secs(10), "child");
        let stdout = holder.child.stdout.take().context("no stdout")?;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line == "ready" {
                std::thread::sleep(SETTLE);
                return Ok(holder);
            }
            if let Some(rest) = line.strip_prefix("prog ")
                && let Some((name, id)) = rest.split_once(' ')
            {
                holder.programs.insert(name.to_owned(), id.parse()?);
            }
        }
        bail!(
            "bench_accounting {} failed: {}",
            args.join(" "),
            std::fs::read_to_string(self.tmp.0.join("noop.err")).unwrap_or_default()
        )
    }

    /// bpftrace with the one-liner, returned once its program is attached (seen
    /// in `bpftool perf show` under bpftrace's pid).
    fn start_bpftrace(&self) -> Result<Holder> {
        let out = self.tmp.0.join("bpftrace.out");
        let child = Command::new("bpftrace")
            .args(["-e", BPFTRACE_PROGRAM])
            .stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(Stdio::from(File::options().append(true).open(&out)?))
            .spawn()
            .context("starting bpftrace")?;
        let mut holder = Holder::new(child, true, Duration::from_secs(10), "child");
        let pid = u64::from(holder.child.id());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let perf = bpftool_json(&["perf", "show"]).unwrap_or_default();
            let attached = perf.as_array().is_some_and(|a| {
                a.iter().any(|e| {
                    e["pid"].as_u64() == Some(pid) && e["tracepoint"].as_str() == Some("sys_enter")
                })
            });
            if attached {
                std::thread::sleep(SETTLE);
                return Ok(holder);
            }
            if let Some(st) = holder.child.try_wait()? {
                bail!("bpftrace exited ({st}): {}", tail(&out));
            }
            if Instant::now() > deadline {
                bail!("bpftrace did not attach within 30 s: {}", tail(&out));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // -----------------------------------------------------------------------
    // 1. Syscall path.

    fn syscall_path(&self, opts: Options) -> Result<String> {
        #[derive(Clone, Copy)]
        enum State {
            Bare,
            Noop,
            Enforcer,
            Bpftrace,
        }
        const STATES: [State; 4] = [State::Bare, State::Noop, State::Enforcer, State::Bpftrace];
        let cpus = measured_cpus();
        let mut s = Samples::default();
        let (managed, other) = (self.managed(), self.other());
        // One timed run pinned to each CPU of `cpus`, recorded as `name@cpu`:
        // bpftrace's cost depends on the CPU (its perf event sits on one CPU).
        let run = |s: &mut Samples, name: &str, group: &str| -> Result<()> {
            for &cpu in &cpus {
                let ns = self.getppid(group, opts.calls, Some(cpu))?;
                s.push(&format!("{name}@{cpu}"), ns);
            }
            Ok(())
        };
        for r in 0..opts.runs {
            eprintln!("[bench] syscall path: run {}/{}", r + 1, opts.runs);
            if !wait_for_no_tracing() {
                self.disturbed.set(self.disturbed.get() + 1);
            }
            for k in 0..STATES.len() {
                match STATES[(r + k) % STATES.len()] {
                    State::Bare => {
                        run(&mut s, "bare", managed)?;
                        run(&mut s, "bare outside", other)?;
                    }
                    State::Noop => {
                        let _noop = self.hold_noop(&["noop-sys-enter"])?;
                        run(&mut s, "noop", managed)?;
                    }
                    State::Enforcer => {
                        let _agent = self.start_agent()?;
                        run(&mut s, "enforcer", managed)?;
                        run(&mut s, "enforcer outside", other)?;
                    }
                    State::Bpftrace => {
                        let _bpftrace = self.start_bpftrace()?;
                        run(&mut s, "bpftrace", managed)?;
                    }
                }
            }
        }
        let added = |v: &str, base: &str, cpu: usize| {
            s.paired(&format!("{v}@{cpu}"), &format!("{base}@{cpu}"), |x, b| {
                x - b
            })
        };
        let bpftrace_label = format!("bpftrace `{BPFTRACE_PROGRAM}`");
        let rows = [
            ("bare, in the managed group", "bare", None),
            (
                "empty raw sys_enter program (the floor)",
                "noop",
                Some("bare"),
            ),
            (
                "enforcer agent, in the managed group",
                "enforcer",
                Some("bare"),
            ),
            (bpftrace_label.as_str(), "bpftrace", Some("bare")),
            ("bare, outside managed groups", "bare outside", None),
            (
                "enforcer agent, outside managed groups",
                "enforcer outside",
                Some("bare outside"),
            ),
        ];
        let mut t = String::new();
        t += &format!(
            "\n### Syscall path: ns per getppid() ({} calls per run, pinned to one CPU)\n\n",
            opts.calls
        );
        t += "| variant |";
        for cpu in &cpus {
            t += &format!(" CPU {cpu} ns/call |");
        }
        for cpu in &cpus {
            t += &format!(" CPU {cpu} added (paired) |");
        }
        t += "\n|---|";
        t += &"---|".repeat(2 * cpus.len());
        t += "\n";
        for (label, key, base) in rows {
            t += &format!("| {label} |");
            for cpu in &cpus {
                t += &format!(" {} |", s.fmt(&format!("{key}@{cpu}"), 1));
            }
            for &cpu in &cpus {
                let cell = base.map_or("-".into(), |b| fmt_stat(&added(key, b, cpu), 1));
                t += &format!(" {cell} |");
            }
            t += "\n";
        }
        t += "\n";
        for &cpu in &cpus {
            let n = med(&added("noop", "bare", cpu));
            let e = med(&added("enforcer", "bare", cpu));
            let b = med(&added("bpftrace", "bare", cpu));
            let o = med(&added("enforcer outside", "bare outside", cpu));
            t += &format!(
                "CPU {cpu}: enforcer added / empty program added {:.2}x (target <= 1.25x: {}); \
                 enforcer added / bpftrace added {:.2}x (target <= 0.5x: {}); outside \
                 managed groups enforcer adds {o:.1} ns ({:.2}x the empty program's).\n",
                e / n,
                verdict(e / n <= 1.25),
                e / b,
                verdict(e / b <= 0.5),
                o / n
            );
        }
        Ok(t)
    }

    // -----------------------------------------------------------------------
    // 2. Program cost from BPF stats.

    fn program_cost(&self, opts: Options) -> Result<String> {
        eprintln!("[bench] program cost (kernel.bpf_stats_enabled=1)");
        let _agent = self.start_agent()?;
        let group_dir = self.group_dir.display().to_string();
        let noop_sys = self.hold_noop(&["noop-sys-enter", "--cgroup", &group_dir])?;
        let noop_skb = self.hold_noop(&["noop-skb", "--cgroup", &group_dir])?;
        let link = |rel: String| -> Result<u64> {
            let path = self.pin_dir.join("links").join(rel);
            let v = bpftool_json(&["link", "show", "pinned", &path.display().to_string()])?;
            v["prog_id"]
                .as_u64()
                .with_context(|| format!("no prog_id for the link pinned at {}", path.display()))
        };
        let id = |h: &Holder, name: &str| -> Result<u64> {
            h.programs
                .get(name)
                .copied()
                .with_context(|| format!("the driver did not report {name}"))
        };
        let count_syscalls = link("global/count_syscalls".into())?;
        let count_egress = link(format!("{}/count_egress", self.group_id))?;
        let count_ingress = link(format!("{}/count_ingress", self.group_id))?;
        let noop_sys_enter = id(&noop_sys, "noop_sys_enter")?;
        let noop_egress = id(&noop_skb, "noop_skb_egress")?;
        let noop_ingress = id(&noop_skb, "noop_skb_ingress")?;
        let lever_pid_hash = id(&noop_sys, "lever_sys_pid_hash")?;
        let lever_pid_array = id(&noop_sys, "lever_sys_pid_array")?;
        let lever_cache_egress = id(&noop_skb, "lever_skb_cache_array_egress")?;
        let lever_cache_ingress = id(&noop_skb, "lever_skb_cache_array_ingress")?;
        let lever_local_egress = id(&noop_skb, "lever_skb_local_egress")?;
        let lever_local_ingress = id(&noop_skb, "lever_skb_local_ingress")?;

        let _stats = BpfStats::enable()?;
        let mut s = Samples::default();
        let calls = (opts.calls / 2).max(1);
        for r in 0..opts.runs {
            eprintln!("[bench] program cost: run {}/{}", r + 1, opts.runs);
            let progs = [
                ("noop sys_enter in", noop_sys_enter),
                ("count_syscalls in", count_syscalls),
                ("lever pid+hash in", lever_pid_hash),
                ("lever pid+array in", lever_pid_array),
            ];
            window(&mut s, &progs, || {
                self.getppid(self.managed(), calls, None).map(drop)
            })?;
            let progs = [
                ("noop sys_enter out", noop_sys_enter),
                ("count_syscalls out", count_syscalls),
                ("lever pid+hash out", lever_pid_hash),
                ("lever pid+array out", lever_pid_array),
            ];
            window(&mut s, &progs, || {
                self.getppid(self.other(), calls, None).map(drop)
            })?;
            let progs = [
                ("noop egress", noop_egress),
                ("count_egress", count_egress),
                ("noop ingress", noop_ingress),
                ("count_ingress", count_ingress),
                ("lever cache+array egress", lever_cache_egress),
                ("lever cache+array ingress", lever_cache_ingress),
                ("lever local egress", lever_local_egress),
                ("lever local ingress", lever_local_ingress),
            ];
            window(&mut s, &progs, || self.sendmmsg(1.0).map(drop))?;
        }
        drop(noop_skb);
        drop(noop_sys);

        let mut t = String::new();
        t += "\n### Program cost: kernel BPF stats, run_time_ns / run_cnt\n\n";
        t += "Both programs of a row are attached at once and see the same events; each \
              run is one getppid() loop (1/2 of the syscall-path calls) or 1 s of \
              sendmmsg.\n\n";
        t += "| hook, events | empty program ns/run | enforcer ns/run | counting adds (paired) | target |\n";
        t += "|---|---|---|---|---|\n";
        let rows = [
            (
                "raw sys_enter, getppid in the managed group",
                "noop sys_enter in",
                "count_syscalls in",
                Some(45.0),
            ),
            (
                "raw sys_enter, getppid outside managed groups",
                "noop sys_enter out",
                "count_syscalls out",
                None,
            ),
            (
                "cgroup_skb egress, 64-byte UDP",
                "noop egress",
                "count_egress",
                Some(20.0),
            ),
            (
                "cgroup_skb ingress, 64-byte UDP",
                "noop ingress",
                "count_ingress",
                Some(20.0),
            ),
            // The data-path levers (benchmark-only programs), same events.
            (
                "lever: pid_tgid cache + (cgroup, nr) hash, in the group",
                "noop sys_enter in",
                "lever pid+hash in",
                Some(45.0),
            ),
            (
                "lever: pid_tgid cache + per-CPU array by slot, in the group",
                "noop sys_enter in",
                "lever pid+array in",
                Some(45.0),
            ),
            (
                "lever: pid_tgid cache, outside managed groups",
                "noop sys_enter out",
                "lever pid+hash out",
                None,
            ),
            (
                "lever: egress, slot cache + per-CPU array",
                "noop egress",
                "lever cache+array egress",
                Some(20.0),
            ),
            (
                "lever: ingress, slot cache + per-CPU array",
                "noop ingress",
                "lever cache+array ingress",
                Some(20.0),
            ),
            (
                "lever: egress, per-CPU cgroup local storage",
                "noop egress",
                "lever local egress",
                Some(20.0),
            ),
            (
                "lever: ingress, per-CPU cgroup local storage",
                "noop ingress",
                "lever local ingress",
                Some(20.0),
            ),
        ];
        for (label, noop, ours, target) in rows {
            let added = s.paired(ours, noop, |x, b| x - b);
            let target = match target {
                Some(limit) => format!("<= {limit:.0} ns: {}", verdict(med(&added) <= limit)),
                None => "-".into(),
            };
            t += &format!(
                "| {label} | {} | {} | {} | {target} |\n",
                s.fmt(noop, 1),
                s.fmt(ours, 1),
                fmt_stat(&added, 1)
            );
        }
        Ok(t)
    }

    // -----------------------------------------------------------------------
    // 3. Small-packet UDP send rate.

    fn udp(&self, opts: Options) -> Result<String> {
        #[derive(Clone, Copy)]
        enum V {
            Bare,
            Noop,
            Enforcer,
            NftOut,
            NftBoth,
        }
        const VARIANTS: [V; 5] = [V::Bare, V::Noop, V::Enforcer, V::NftOut, V::NftBoth];
        let group_dir = self.group_dir.display().to_string();
        let (nft_path, nft_level) = nft_cgroup(&self.group_dir)?;
        let table = format!("{NFT_PREFIX}{}", std::process::id());
        let mut s = Samples::default();
        let mut verified = None;
        for r in 0..opts.runs {
            eprintln!("[bench] UDP send rate: run {}/{}", r + 1, opts.runs);
            if !wait_for_no_tracing() {
                self.disturbed.set(self.disturbed.get() + 1);
            }
            for k in 0..VARIANTS.len() {
                match VARIANTS[(r + k) % VARIANTS.len()] {
                    V::Bare => s.push("bare", self.sendmmsg(opts.udp_secs)?.0),
                    V::Noop => {
                        let _noop = self.hold_noop(&["noop-skb", "--cgroup", &group_dir])?;
                        s.push("noop", self.sendmmsg(opts.udp_secs)?.0);
                    }
                    V::Enforcer => {
                        let _agent = self.start_agent()?;
                        s.push("enforcer", self.sendmmsg(opts.udp_secs)?.0);
                    }
                    V::NftOut | V::NftBoth => {
                        let both = matches!(VARIANTS[(r + k) % VARIANTS.len()], V::NftBoth);
                        let nft = NftTable::counting(&table, &nft_path, nft_level, both)?;
                        let (rate, sent) = self.sendmmsg(opts.udp_secs)?;
                        s.push(if both { "nft both" } else { "nft out" }, rate);
                        if both && verified.is_none() {
                            verified = Some((nft.counters()?, sent));
                        }
                    }
                }
            }
        }
        let Some(((out_packets, in_packets), sent)) = verified else {
            bail!("the nft variant never ran");
        };
        // The warm-up (0.2 s) is counted by the rules too, but not in `sent`.
        if (out_packets as f64) < sent || (in_packets as f64) < sent {
            bail!(
                "nft rules `socket cgroupv2 level {nft_level} \"{nft_path}\"` matched {out_packets} \
                 out / {in_packets} in packets of {sent} sent: they do not match the group"
            );
        }
        let cost = |v: &str| s.paired(v, "bare", |x, b| 1e9 / x - 1e9 / b);
        let (noop, enforcer) = (cost("noop"), cost("enforcer"));
        let (nft_out, nft_both) = (cost("nft out"), cost("nft both"));
        let mut t = String::new();
        t += &format!(
            "\n### UDP send rate: 64-byte datagrams, sendmmsg x64, {} s per run\n\n",
            opts.udp_secs
        );
        t +=
            "| variant | datagrams/s | vs bare | added ns/datagram (paired) |\n|---|---|---|---|\n";
        let bare = s.median("bare");
        for (label, key, added) in [
            ("bare, in the managed group", "bare", None),
            (
                "empty cgroup_skb egress + ingress programs",
                "noop",
                Some(&noop),
            ),
            (
                "enforcer agent (egress + ingress counted)",
                "enforcer",
                Some(&enforcer),
            ),
            ("nft counter rule, output hook", "nft out", Some(&nft_out)),
            (
                "nft counter rules, output + input hooks",
                "nft both",
                Some(&nft_both),
            ),
        ] {
            t += &format!(
                "| {label} | {} | {:.3} | {} |\n",
                s.fmt(key, 0),
                s.median(key) / bare,
                added.map_or("-".into(), |a| fmt_stat(a, 1))
            );
        }
        t += &format!(
            "\nnft rule: `socket cgroupv2 level {nft_level} \"{nft_path}\" counter`; checked: in \
             one run it counted {out_packets} packets out and {in_packets} in for {sent} \
             datagrams sent after warm-up.\n\
             enforcer's accounting vs the nft output rule: {:.1} vs {:.1} ns/datagram \
             (target: less: {}); vs output + input rules: {:.1} ns/datagram ({}).\n",
            med(&enforcer),
            med(&nft_out),
            verdict(med(&enforcer) < med(&nft_out)),
            med(&nft_both),
            verdict(med(&enforcer) < med(&nft_both)),
        );
        Ok(t)
    }

    // -----------------------------------------------------------------------
    // 4. Collection.

    fn collection(&self) -> Result<String> {
        let mut t = String::new();
        t += "\n### Collection: reading every counter of N groups\n\n";
        t += "Synthetic groups in a private pin directory: one entry per group in \
              NET_EGRESS, NET_INGRESS and SOCK_ATTEMPTS, and 3 (or 0) (group, syscall) \
              entries per group in SYSCALLS; 9 reads each. `snapshot_pinned` and \
              `Kernel::snapshot` (the agent's read) use BPF_MAP_LOOKUP_BATCH where the \
              kernel has it; the last column is the bench module's own batch reader, \
              checked to return the same counters.\n\n";
        t += "| groups | SYSCALLS entries per group | map entries read | `snapshot_pinned` ms | `Kernel::snapshot` ms | target (10k in 5 ms) | batch lookup ms |\n";
        t += "|---|---|---|---|---|---|---|\n";
        let mut memory = None;
        for (groups, per_group) in [(1000u64, 3u32), (10_000, 3), (10_000, 0)] {
            eprintln!("[bench] collection: {groups} groups");
            let pins = PinDir {
                enforcer: self.enforcer.clone(),
                dir: PathBuf::from(format!(
                    "{}-collect-{groups}-{per_group}",
                    self.pin_dir.display()
                )),
            };
            let dir = pins.dir.display().to_string();
            let out = Command::new(&self.driver)
                .args([
                    "collect",
                    "--pin-dir",
                    &dir,
                    "--groups",
                    &groups.to_string(),
                ])
                .args(["--syscalls-per-group", &per_group.to_string()])
                .args(["--reps", "9", "--keep"])
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                bail!(
                    "bench_accounting collect failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let out = String::from_utf8_lossy(&out.stdout);
            let mut s = Samples::default();
            for key in [
                "snapshot_pinned_ms",
                "kernel_snapshot_ms",
                "batch_lookup_ms",
            ] {
                let list = raw(&out, key)?;
                for x in list.split(',') {
                    s.push(key, x.parse()?);
                }
            }
            let entries = 3.0 * value(&out, "group_entries")? + value(&out, "syscall_entries")?;
            let target = if groups == 10_000 {
                verdict(s.median("kernel_snapshot_ms") <= 5.0).to_owned()
            } else {
                "-".into()
            };
            t += &format!(
                "| {groups} | {per_group} | {entries:.0} | {} | {} | {target} | {} |\n",
                s.fmt("snapshot_pinned_ms", 1),
                s.fmt("kernel_snapshot_ms", 1),
                s.fmt("batch_lookup_ms", 1)
            );
            if memory.is_none() {
                memory = Some(map_memory(&pins.dir)?);
            }
        }
        t += &memory.unwrap_or_default();
        Ok(t)
    }
}

/// Reads the BPF stats of `progs`, runs `f`, and records each program's
/// ns per run over that window.
fn window(
    s: &mut Samples,
    progs: &[(&'static str, u64)],
    f: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let before: Vec<(u64, u64)> = progs
        .iter()
        .map(|(_, id)| prog_stats(*id))
        .collect::<Result<_>>()?;
    f()?;
    for ((name, id), (t0, c0)) in progs.iter().zip(before) {
        let (t1, c1) = prog_stats(*id)?;
        if c1 <= c0 {
            bail!("program {name} (id {id}) did not run during the window");
        }
        s.push(name, (t1 - t0) as f64 / (c1 - c0) as f64);
    }
    Ok(())
}

/// Map memory from `bpftool map show` (bytes_memlock) beside the payload computed
/// from key and value sizes, for the maps of a pin directory.
fn map_memory(pin_dir: &Path) -> Result<String> {
    let cpus = possible_cpus();
    let mut t = String::new();
    t += &format!(
        "\nMap memory (bpftool `bytes_memlock`; the maps are not preallocated \
         (BPF_F_NO_PREALLOC): this is what the empty maps hold) and payload computed as key + value x {cpus} CPUs \
         (per-CPU maps) or key + value:\n\n"
    );
    t += "| map | kind | max entries | bytes_memlock | per entry | computed payload per entry |\n";
    t += "|---|---|---|---|---|---|\n";
    let mut per_group = 0.0;
    let mut per_group_payload = 0.0;
    for name in [
        "NET_EGRESS",
        "NET_INGRESS",
        "SOCK_ATTEMPTS",
        "SYSCALL_GROUPS",
        "SYSCALLS",
    ] {
        let path = pin_dir.join("maps").join(name);
        let v = bpftool_json(&["map", "show", "pinned", &path.display().to_string()])?;
        let kind = v["type"].as_str().unwrap_or("?").to_owned();
        let max = v["max_entries"].as_u64().unwrap_or(0).max(1);
        let memlock = v["bytes_memlock"].as_u64().unwrap_or(0);
        let key = v["bytes_key"].as_u64().unwrap_or(0);
        let value = v["bytes_value"].as_u64().unwrap_or(0);
        let payload = if kind.starts_with("percpu") {
            key + value.div_ceil(8) * 8 * cpus
        } else {
            key + value
        };
        let per_entry = memlock as f64 / max as f64;
        if name != "SYSCALLS" {
            per_group += per_entry;
            per_group_payload += payload as f64;
        }
        t += &format!("| {name} | {kind} | {max} | {memlock} | {per_entry:.0} | {payload} |\n");
    }
    t += &format!(
        "\nPer group (one entry in each of the four per-group maps): {per_group_payload:.0} \
         bytes of payload, allocated when the group first counts (the maps are not \
         preallocated, so bytes_memlock / max_entries, {per_group:.0} bytes here, is only \
         the empty maps' share); plus one SYSCALLS entry per distinct (group, syscall).\n"
    );
    Ok(t)
}

// ---------------------------------------------------------------------------
// Guards.

/// The running agent. Dropping it sends SIGTERM, reaps it, then `enforcer stop`
/// detaches and unpins what it left (it keeps its pins on exit).
struct Agent {
    child: Option<Child>,
    enforcer: PathBuf,
    pin_dir: PathBuf,
    pid_file: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal("TERM", child.id());
            end(&mut child, Duration::from_secs(10), "child");
        }
        // The agent is reaped, so `stop` finds no live pid and only unpins.
        let stopped = Command::new(&self.enforcer)
            .arg("stop")
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--pid-file")
            .arg(&self.pid_file)
            .stdout(Stdio::null())
            .status();
        // `stop` leaves the (empty) pin directory; the benchmark's own goes
        // with the rest of its scratch state.
        let _ = std::fs::remove_dir(&self.pin_dir);
        if !stopped.is_ok_and(|s| s.success()) || self.pin_dir.exists() {
            eprintln!(
                "[bench] warning: `enforcer stop --pin-dir {}` did not remove everything",
                self.pin_dir.display()
            );
        }
    }
}

impl NftTable {
    /// A table with counter rules matching one cgroup2 group, on the output hook
    /// (and the input hook with `both`).
    fn counting(name: &str, path: &str, level: usize, both: bool) -> Result<NftTable> {
        let nft = |args: &[&str]| status(Command::new("nft").args(args));
        nft(&["add", "table", "inet", name])?;
        let table = NftTable {
            name: name.to_owned(),
            may_be_missing: false,
        };
        let rule = format!("socket cgroupv2 level {level} \"{path}\" counter");
        let mut chains = vec![("out", "output")];
        if both {
            chains.push(("in", "input"));
        }
        for (chain, hook) in chains {
            nft(&[
                "add",
                "chain",
                "inet",
                name,
                chain,
                &format!("{{ type filter hook {hook} priority 0; }}"),
            ])?;
            nft(&["add", "rule", "inet", name, chain, &rule])?;
        }
        Ok(table)
    }

    /// Packets counted by the `out` and `in` chains' rules (0 where absent).
    fn counters(&self) -> Result<(u64, u64)> {
        let out = Command::new("nft")
            .args(["--json", "list", "table", "inet", &self.name])
            .output()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("parsing `nft --json list table inet {}`", self.name))?;
        let (mut out_packets, mut in_packets) = (0, 0);
        for item in v["nftables"].as_array().into_iter().flatten() {
            let rule = &item["rule"];
            let packets = rule["expr"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|e| e["counter"]["packets"].as_u64());
            match (rule["chain"].as_str(), packets) {
                (Some("out"), Some(p)) => out_packets = p,
                (Some("in"), Some(p)) => in_packets = p,
                _ => {}
            }
        }
        Ok((out_packets, in_packets))
    }
}

// ---------------------------------------------------------------------------
// Host helpers.

/// Tracing programs loaded by someone else (they would add to the syscall path).
fn foreign_tracing_programs() -> String {
    let Ok(names) = tracing_programs() else {
        return "unknown (bpftool failed)".into();
    };
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Loaded tracing programs (raw tracepoint, tracepoint, tracing, kprobe), as
/// `name (type)`.
fn tracing_programs() -> Result<Vec<String>> {
    let v = bpftool_json(&["prog", "show"])?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            matches!(
                p["type"].as_str(),
                Some("raw_tracepoint" | "tracepoint" | "tracing" | "kprobe")
            )
        })
        .map(|p| {
            format!(
                "{} ({})",
                p["name"].as_str().unwrap_or("?"),
                p["type"].as_str().unwrap_or("?")
            )
        })
        .collect())
}

/// Before a run that no program of ours is attached to: waits up to
/// `QUIET_WAIT` for tracing programs loaded by someone else (e.g. a test suite
/// starting agents) to go, since they slow every syscall. Returns false (and the
/// run goes ahead) if they stay.
fn wait_for_no_tracing() -> bool {
    let deadline = Instant::now() + QUIET_WAIT;
    loop {
        match tracing_programs() {
            Ok(names) if names.is_empty() => return true,
            Ok(names) if Instant::now() > deadline => {
                eprintln!("[bench] warning: run starts with {}", names.join(", "));
                return false;
            }
            Err(_) => return false,
            Ok(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Mounts tracefs at /sys/kernel/tracing unless it is there (bpftrace needs it).
fn ensure_tracefs() -> Result<()> {
    let dir = Path::new("/sys/kernel/tracing");
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Ok(());
    }
    status(Command::new("mount").args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"]))
        .context("mounting tracefs (bpftrace attaches tracepoints through it)")
}

fn possible_cpus() -> u64 {
    // "0-1" or "0": the last number plus one.
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| s.trim().rsplit(['-', ',']).next()?.parse::<u64>().ok())
        .map_or(1, |n| n + 1)
}

/// The first and the last online CPU (one CPU if only one is online).
fn measured_cpus() -> Vec<usize> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let numbers: Vec<usize> = online
        .trim()
        .split([',', '-'])
        .filter_map(|n| n.parse().ok())
        .collect();
    let first = numbers.first().copied().unwrap_or(0);
    let last = numbers.last().copied().unwrap_or(first);
    if first == last {
        vec![first]
    } else {
        vec![first, last]
    }
}

fn uname_r() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into())
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

// ---------------------------------------------------------------------------
// Reporting.

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**not met**" }
}
