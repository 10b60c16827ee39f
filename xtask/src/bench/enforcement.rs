//! `cargo xtask bench enforcement`: what enforcer's kernel enforcement costs.
//!
//! 1. connect() latency from a process in a managed group: UDP `connect()` of one
//!    socket to 127.0.0.1:9 (no network I/O; only the `cgroup/connect4` hook) and
//!    TCP socket + `connect()` to the closed port 127.0.0.1:9 + close (SYN out,
//!    RST in, ECONNREFUSED; the `sock_create`, `connect4` and `cgroup_skb`
//!    hooks). Variants: nothing attached; enforcer with 0, 10 and 10,000 connect
//!    deny rules that do not match the target; 10 rules plus an egress and ingress
//!    rate limit and budget (never reached) with the counting programs attached
//!    too; and nftables with the same 10 deny rules and a quota, each matched on
//!    the group with `socket cgroupv2`.
//! 2. Program cost from the kernel's BPF stats (`kernel.bpf_stats_enabled`):
//!    run_time_ns / run_cnt of every enforce_* and count_* program during a
//!    second copy of each connect loop (latency is timed with the stats off,
//!    since they add clock reads to every program run).
//!
//! Variants are interleaved run by run (the order rotates every run) and reported
//! as medians with [min-max]. xtask cannot link the enforcer library, so it drives
//! `target/release/enforcer` and `target/release/examples/bench_enforcement` as
//! processes. Everything it creates (a group, an nft table, a pin directory, the
//! bpf_stats sysctl, child processes) is removed or restored by guards, also when
//! a step fails.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::support::{
    BpfStats, Groups, Holder, NftTable, PinDir, Samples, bpftool_json, cgroup2_mount, loadavg,
    nft_cgroup, prog_stats, raw, set_bpf_stats, sweep_leftovers, value,
};
use crate::run::{enforcer_binary, is_root};
use crate::setup::{apt_install, status};
use crate::workspace::workspace_root;

/// Prefix of the group and pin directory; the nft table is `enfbench_enf_<pid>`.
const PREFIX: &str = "enf-benchenf-";
const NFT_PREFIX: &str = "enfbench_enf_";
const TARGET: &str = "127.0.0.1:9";
const UDP_ITERS: u64 = 200_000;
const TCP_ITERS: u64 = 20_000;
/// Limits of the `limits` variant: far above what the loops send.
const RATE: u64 = 1_000_000_000;
const BUDGET: u64 = 1_000_000_000_000;
const SETTLE: Duration = Duration::from_millis(200);

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Bare,
    Rules(usize),
    Limits,
    Nft,
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::Bare => "nothing attached".into(),
            Variant::Rules(0) => "enforcer, 0 rules".into(),
            Variant::Rules(10_000) => "enforcer, 10,000 rules".into(),
            Variant::Rules(n) => format!("enforcer, {n} rules"),
            Variant::Limits => "enforcer, 10 rules + rate + budget, + counting progs".into(),
            Variant::Nft => "nftables, 10 rules + quota".into(),
        }
    }
}

const VARIANTS: [Variant; 6] = [
    Variant::Bare,
    Variant::Rules(0),
    Variant::Rules(10),
    Variant::Rules(10_000),
    Variant::Limits,
    Variant::Nft,
];

pub(crate) fn run(runs: usize) -> Result<()> {
    if !is_root() {
        bail!("the enforcement benchmark loads eBPF programs and creates cgroups: run it as root");
    }
    if !(3..=50).contains(&runs) {
        bail!("--runs must be in 3..=50");
    }
    apt_install(&["bpftool", "nftables"])
        .context("the enforcement benchmark needs bpftool and nft")?;
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.current_dir(workspace_root()).args([
        "build",
        "--release",
        "--package",
        "enforcer",
        "--bins",
        "--examples",
    ]);
    status(&mut build).context("building enforcer and its examples failed")?;
    sweep_leftovers(PREFIX, NFT_PREFIX);

    let enforcer = enforcer_binary(true);
    let driver = workspace_root().join("target/release/examples/bench_enforcement");
    for bin in [&enforcer, &driver] {
        if !bin.is_file() {
            bail!("{} is missing after the build", bin.display());
        }
    }
    let pid = std::process::id();
    let name = format!("{PREFIX}{pid}");
    let groups = Groups::create(&enforcer, &[&name])?;
    let group_dir = cgroup2_mount()?.join(&name);
    if !group_dir.is_dir() {
        bail!(
            "{} (the group's cgroup2 mirror) is missing",
            group_dir.display()
        );
    }
    let pins = PinDir {
        enforcer: enforcer.clone(),
        dir: PathBuf::from(format!("/sys/fs/bpf/{PREFIX}{pid}")),
    };
    // Restores the sysctl's value at the end; runs toggle it around each loop.
    let _stats = BpfStats::enable()?;
    let bench = Bench {
        enforcer,
        driver,
        group: groups.names[0].clone(),
        group_dir,
        pin_dir: pins.dir.clone(),
        nft_table: format!("{NFT_PREFIX}{pid}"),
    };

    let load_before = loadavg();
    let mut lat = Samples::default();
    let mut progs = Samples::default();
    let mut load_ms = Samples::default();
    let mut results: BTreeMap<String, String> = BTreeMap::new();
    for r in 0..runs {
        eprintln!("[bench] run {}/{runs}", r + 1);
        for k in 0..VARIANTS.len() {
            let v = VARIANTS[(k + r) % VARIANTS.len()];
            bench.one(v, &mut lat, &mut progs, &mut load_ms, &mut results)?;
        }
    }
    let load_after = loadavg();
    drop(bench);
    drop(pins);
    drop(groups);

    let mut t = format!(
        "\nenforcement benchmark: {runs} interleaved runs per variant, median [min-max]; \
         load average at start {load_before}, at end {load_after}\n\n"
    );
    t += &format!(
        "connect() latency, ns per call ({UDP_ITERS} UDP connects of one socket to {TARGET}; \
         {TCP_ITERS} TCP socket+connect+close to closed {TARGET}):\n\n"
    );
    t += "| variant | UDP connect ns | ratio | TCP connect (refused) ns | ratio |\n|---|---|---|---|---|\n";
    let bare_udp = lat.median(&key(Variant::Bare, "udp"));
    let bare_tcp = lat.median(&key(Variant::Bare, "tcp"));
    for v in VARIANTS {
        let (u, tc) = (key(v, "udp"), key(v, "tcp"));
        t += &format!(
            "| {} | {} | {:.2}x | {} | {:.2}x |\n",
            v.name(),
            lat.fmt(&u, 0),
            lat.median(&u) / bare_udp,
            lat.fmt(&tc, 0),
            lat.median(&tc) / bare_tcp,
        );
    }
    t += "\nOutcomes of the timed connects per variant (last run): ";
    t += &results
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    t += "\n\nRule load time (set_group_rules), ms: ";
    t += &load_ms
        .0
        .keys()
        .map(|k| format!("{k}: {}", load_ms.fmt(k, 1)))
        .collect::<Vec<_>>()
        .join("; ");
    t += "\n\nProgram cost from kernel BPF stats, ns per run (run_time_ns / run_cnt over a second \
          copy of each connect loop, run with the stats on; the latencies above were taken with them off; the stats add their own clock reads, about 50 ns for an empty program here):\n\n";
    t += "| variant | loop | program | ns per run |\n|---|---|---|---|\n";
    for (k, _) in progs.0.iter() {
        let mut parts = k.splitn(3, '|');
        let (v, l, p) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        t += &format!("| {v} | {l} | {p} | {} |\n", progs.fmt(k, 0));
    }
    println!("{t}");
    Ok(())
}

fn key(v: Variant, l: &str) -> String {
    format!("{}|{l}", v.name())
}

struct Bench {
    enforcer: PathBuf,
    driver: PathBuf,
    group: String,
    group_dir: PathBuf,
    pin_dir: PathBuf,
    nft_table: String,
}

impl Bench {
    /// One run of one variant: set it up, time both loops, tear it down.
    fn one(
        &self,
        v: Variant,
        lat: &mut Samples,
        progs: &mut Samples,
        load_ms: &mut Samples,
        results: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        let mut holder = None;
        let mut nft = None;
        match v {
            Variant::Bare => {}
            Variant::Rules(n) => holder = Some(self.hold(n, false)?),
            Variant::Limits => holder = Some(self.hold(10, true)?),
            Variant::Nft => nft = Some(NftTable::deny_rules(&self.nft_table, &self.group_dir)?),
        }
        if let Some(h) = &holder
            && let Some(ms) = h.load_ms
        {
            load_ms.push(&v.name(), ms);
        }
        std::thread::sleep(SETTLE);
        let programs = if holder.is_some() {
            self.programs()?
        } else {
            Vec::new()
        };
        for (l, iters, tcp) in [("udp", UDP_ITERS, false), ("tcp", TCP_ITERS, true)] {
            // Latency with BPF stats off (they add clock reads to every program
            // run), then the same loop again with them on for the program cost.
            set_bpf_stats(false)?;
            let out = self.connect_loop(iters, tcp)?;
            lat.push(&key(v, l), value(&out, "ns_per_connect")?);
            results.insert(
                format!("{} {l}", v.name()),
                raw(&out, "results")?.trim().to_owned(),
            );
            if programs.is_empty() {
                continue;
            }
            set_bpf_stats(true)?;
            let before: Vec<(u64, u64)> = programs
                .iter()
                .map(|(_, id)| prog_stats(*id))
                .collect::<Result<_>>()?;
            self.connect_loop(iters, tcp)?;
            set_bpf_stats(false)?;
            for ((name, id), (t0, c0)) in programs.iter().zip(before) {
                let (t1, c1) = prog_stats(*id)?;
                // At least one run per timed iteration (sock_create runs twice
                // per UDP loop: too few to mean anything).
                if c1 - c0 >= iters {
                    progs.push(
                        &format!("{}|{l}|{name}", v.name()),
                        (t1 - t0) as f64 / (c1 - c0) as f64,
                    );
                }
            }
        }
        drop(nft);
        drop(holder);
        Ok(())
    }

    fn connect_loop(&self, iters: u64, tcp: bool) -> Result<String> {
        let iters = iters.to_string();
        let mut args = vec!["connect-loop", "--addr", TARGET, "--iters", &iters];
        if tcp {
            args.push("--tcp");
        }
        let out = Command::new(&self.enforcer)
            .args(["exec", "-g", &format!("memory:{}", self.group), "--"])
            .arg(&self.driver)
            .args(&args)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "bench_enforcement {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts the driver holding `n` rules (and limits + counting programs).
    fn hold(&self, n: usize, limits: bool) -> Result<Holder> {
        let mut cmd = Command::new(&self.driver);
        cmd.arg("load-rules")
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .arg("--cgroup")
            .arg(&self.group_dir)
            .args(["--rules", &n.to_string(), "--secs", "300"]);
        if limits {
            cmd.args([
                "--rate",
                &RATE.to_string(),
                "--budget",
                &BUDGET.to_string(),
                "--counting",
            ]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting bench_enforcement load-rules")?;
        let stdout = child.stdout.take();
        let mut holder = Holder::new(child, false, Duration::from_secs(20), "driver");
        let mut ready = false;
        for line in BufReader::new(stdout.context("no stdout")?).lines() {
            let line = line?;
            if let Some(ms) = line.strip_prefix("load_ms=") {
                holder.load_ms = ms.parse().ok();
            }
            if line == "ready" {
                ready = true;
                break;
            }
        }
        if !ready {
            bail!("bench_enforcement load-rules ended before it was ready");
        }
        Ok(holder)
    }

    /// `(program name, id)` of every link pinned under the pin directory.
    fn programs(&self) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for sub in ["enforce", "links"] {
            for group in std::fs::read_dir(self.pin_dir.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                for link in std::fs::read_dir(group.path())?.flatten() {
                    let path = link.path().display().to_string();
                    let v = bpftool_json(&["link", "show", "pinned", &path])?;
                    if let Some(id) = v["prog_id"].as_u64() {
                        out.push((link.file_name().to_string_lossy().into_owned(), id));
                    }
                }
            }
        }
        if out.is_empty() {
            bail!("no links pinned under {}", self.pin_dir.display());
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// The nftables variant.

impl NftTable {
    /// A table whose output chain has the same 10 deny rules as the enforcer
    /// variants (none matching the target) and a quota, each matched on the group.
    fn deny_rules(name: &str, group_dir: &Path) -> Result<NftTable> {
        let (path, level) = nft_cgroup(group_dir)?;
        let m = format!("socket cgroupv2 level {level} \"{path}\"");
        let mut rules = Vec::new();
        for i in 0..10u32 {
            rules.push(if i < 8 {
                format!(
                    "{m} ip daddr 127.0.0.0/8 meta l4proto {{ tcp, udp }} th dport {} reject",
                    1000 + i
                )
            } else {
                let h = (i + 1).to_be_bytes();
                format!(
                    "{m} ip daddr 10.{}.{}.{} meta l4proto {{ tcp, udp }} th dport 9 reject",
                    h[1], h[2], h[3]
                )
            });
        }
        rules.push(format!("{m} quota over {} mbytes drop", BUDGET / 1_000_000));
        let text = format!(
            "table inet {name} {{\n  chain out {{\n    type filter hook output priority 0;\n    {}\n  }}\n}}\n",
            rules.join("\n    ")
        );
        let file = std::env::temp_dir().join(format!("{name}.nft"));
        std::fs::write(&file, text)?;
        let result = status(Command::new("nft").arg("-f").arg(&file));
        let _ = std::fs::remove_file(&file);
        let table = NftTable {
            name: name.to_owned(),
            may_be_missing: true,
        };
        result.context("loading the nft table")?;
        Ok(table)
    }
}
