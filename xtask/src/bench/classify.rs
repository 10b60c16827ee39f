//! `cargo xtask bench classify`: how fast new processes reach their rule's
//! group, and what classification costs processes no rule matches.
//!
//! Three rules daemons on the same `/etc/cgrules.conf`, interleaved run by
//! run: Debian's `cgrulesengd` (libcgroup 2.0.2, proc connector), enforcer's
//! `cgrulesengd` (exec tracepoint program, kernel-side filter) and the same
//! with `--hold` (the process is stopped at exec until it is placed).
//!
//! * Latency: for each of N execs of a program a rule names, the time from
//!   `sched:sched_process_exec` to the `cgroup:cgroup_attach_task` into the
//!   rule's cpu group, both stamped in the kernel by bpftrace (the same
//!   clock for every daemon). p50 and p99 per run, medians over runs.
//! * Ran first in the old group: the program reads /proc/self/cgroup at the
//!   start of `main` and says where it woke up.
//! * Unmatched cost: wall time per exec (fork, exec, wait) of a program no
//!   rule matches, with no daemon and with each daemon, and the kernel
//!   program's own cost from the kernel's BPF stats.
//!
//! The benchmark owns `/etc/cgrules.conf`, `/etc/cgconfig.conf` and
//! `/etc/cgconfig.d` while it runs (Debian's daemon needs all three) and
//! refuses to start if any exists, so an operator's files are never touched.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::support::{BpfStats, TempDir, bpftool_json, fmt_stat, loadavg, prog_stats, signal};
use crate::run::enforcer_binary;
use crate::setup::apt_install;
use crate::workspace::workspace_root;

const GROUP: &str = "enf-bench-classify";
const MATCHED: &str = "enfbenchx";
const UNMATCHED: &str = "enfbenchmiss";

/// Files Debian's cgrulesengd reads; created for the run, removed after.
struct EtcFiles;

impl EtcFiles {
    fn create(rules: &str) -> Result<EtcFiles> {
        for p in ["/etc/cgrules.conf", "/etc/cgconfig.conf", "/etc/cgconfig.d"] {
            if Path::new(p).exists() {
                bail!(
                    "{p} exists: the classify benchmark writes its own rules there; move it aside first"
                );
            }
        }
        std::fs::write("/etc/cgrules.conf", rules)?;
        std::fs::write("/etc/cgconfig.conf", "")?;
        std::fs::create_dir("/etc/cgconfig.d")?;
        Ok(EtcFiles)
    }
}

impl Drop for EtcFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file("/etc/cgrules.conf");
        let _ = std::fs::remove_file("/etc/cgconfig.conf");
        let _ = std::fs::remove_dir("/etc/cgconfig.d");
    }
}

/// The rule's group in the cpu hierarchy (and enforcer's cgroup2 mirror).
struct Group;

impl Group {
    fn create() -> Result<Group> {
        let st = Command::new("/usr/bin/cgcreate")
            .args(["-g", &format!("cpu:{GROUP}")])
            .status()?;
        if !st.success() {
            bail!("cgcreate -g cpu:{GROUP} failed");
        }
        Ok(Group)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for m in [
            "/sys/fs/cgroup/cpu",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ] {
            let d = Path::new(m).join(GROUP);
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for p in procs.split_whitespace() {
                    let _ = std::fs::write(Path::new(m).join("cgroup.procs"), p);
                }
            }
            let _ = std::fs::remove_dir(&d);
        }
    }
}

/// A running daemon, stopped with SIGTERM when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        signal("TERM", self.0.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Variant {
    None,
    Debian,
    Enforcer,
    EnforcerHold,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::None => "no daemon",
            Variant::Debian => "Debian cgrulesengd 2.0.2",
            Variant::Enforcer => "enforcer cgrulesengd",
            Variant::EnforcerHold => "enforcer cgrulesengd --hold",
        }
    }
}

fn start(v: Variant, links: &Path) -> Result<Option<Daemon>> {
    let mut cmd = match v {
        Variant::None => return Ok(None),
        Variant::Debian => Command::new("/usr/sbin/cgrulesengd"),
        Variant::Enforcer | Variant::EnforcerHold => Command::new(links.join("cgrulesengd")),
    };
    cmd.args(["-n", "-Q"]);
    if v == Variant::EnforcerHold {
        cmd.arg("--hold");
    }
    let _ = std::fs::remove_file("/var/run/cgred.socket");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let d = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !Path::new("/var/run/cgred.socket").exists() {
        if Instant::now() > deadline {
            bail!("{} did not start (no /var/run/cgred.socket)", v.name());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The socket comes before the startup scan of running processes.
    std::thread::sleep(Duration::from_millis(500));
    Ok(Some(d))
}

/// The cpu hierarchy's id (`dst_root` of cgroup_attach_task).
fn cpu_hierarchy() -> Result<u32> {
    let text = std::fs::read_to_string("/proc/cgroups")?;
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"cpu"))
                .then(|| f.get(1)?.parse().ok())
                .flatten()
        })
        .context("no cpu controller in /proc/cgroups")
}

/// bpftrace stamping exec and attach in the kernel; its `L pid usec` lines.
struct Trace {
    child: Child,
}

impl Trace {
    fn start() -> Result<Trace> {
        let root = cpu_hierarchy()?;
        let script = format!(
            "tracepoint:sched:sched_process_exec /comm == \"{MATCHED}\"/ {{ @s[pid] = nsecs; }}\n\
             tracepoint:cgroup:cgroup_attach_task /args->dst_root == {root} && @s[args->pid]/ \
             {{ printf(\"L %d %d\\n\", args->pid, (nsecs - @s[args->pid]) / 1000); delete(@s[args->pid]); }}\n"
        );
        let mut child = Command::new("bpftrace")
            .args(["-e", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting bpftrace")?;
        let out = child.stdout.take().context("bpftrace's stdout")?;
        let mut lines = BufReader::new(out);
        let mut first = String::new();
        lines.read_line(&mut first)?;
        if !first.starts_with("Attaching") {
            bail!("bpftrace did not attach: {first}");
        }
        child.stdout = Some(lines.into_inner());
        Ok(Trace { child })
    }

    /// Stop and return the latencies (microseconds).
    fn finish(self) -> Result<Vec<f64>> {
        std::thread::sleep(Duration::from_millis(300));
        signal("INT", self.child.id());
        let out = self.child.wait_with_output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("L "))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect())
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

struct LatencyRun {
    p50: f64,
    p99: f64,
    placed: usize,
    woke_in_old: usize,
}

fn latency_run(v: Variant, links: &Path, prog: &Path, execs: usize) -> Result<LatencyRun> {
    let _d = start(v, links)?;
    let trace = Trace::start()?;
    let mut woke_in_old = 0;
    let dest = format!(":cpu:/{GROUP}");
    for _ in 0..execs {
        // Alive 5 ms: long enough for any daemon to move it.
        let out = Command::new(prog).arg("0.005").output()?;
        if !String::from_utf8_lossy(&out.stdout).contains(&dest) {
            woke_in_old += 1;
        }
    }
    let mut lat = trace.finish()?;
    Ok(LatencyRun {
        placed: lat.len(),
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
        woke_in_old,
    })
}

/// Median microseconds of one fork+exec+wait of the unmatched program (the
/// median of each exec's own time: other work on a shared host lands on few
/// execs, which a mean would spread over all).
fn exec_cost(v: Variant, links: &Path, prog: &Path, execs: usize) -> Result<f64> {
    let _d = start(v, links)?;
    let mut each = Vec::with_capacity(execs);
    for _ in 0..execs {
        let t = Instant::now();
        let st = Command::new(prog).stdout(Stdio::null()).status()?;
        each.push(t.elapsed().as_secs_f64() * 1e6);
        if !st.success() {
            bail!("{} failed", prog.display());
        }
    }
    Ok(pct(&mut each, 0.5))
}

/// `classify_exec`'s own time per unmatched exec from the kernel's BPF
/// stats, measured apart from the wall-clock runs (the stats slow every BPF
/// program on the host while they are on).
fn kernel_cost(links: &Path, prog: &Path, execs: usize) -> Result<Option<f64>> {
    let _d = start(Variant::Enforcer, links)?;
    let _stats = BpfStats::enable()?;
    for _ in 0..execs {
        Command::new(prog).stdout(Stdio::null()).status()?;
    }
    let progs = bpftool_json(&["prog", "show"])?;
    let id = progs
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "classify_exec"))
        .and_then(|p| p["id"].as_u64());
    let Some(id) = id else { return Ok(None) };
    let (ns, cnt) = prog_stats(id)?;
    Ok((cnt > 0).then(|| ns as f64 / cnt as f64))
}

pub(crate) fn run(execs: usize, runs: usize) -> Result<()> {
    apt_install(&["cgroup-tools", "bpftrace", "bpftool"])?;
    if !Path::new("/sys/kernel/tracing/events").exists() {
        let _ = Command::new("mount")
            .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            .status();
    }
    let scratch = TempDir::create(
        std::env::temp_dir().join(format!("enf-bench-classify-{}", std::process::id())),
    )?;
    let release = workspace_root().join("target/release");
    let cgself = release.join("enforcer-test-cgself");
    let matched = scratch.0.join(MATCHED);
    let unmatched = scratch.0.join(UNMATCHED);
    std::fs::copy(&cgself, &matched).with_context(|| format!("copying {}", cgself.display()))?;
    std::fs::copy(&cgself, &unmatched)?;
    std::os::unix::fs::symlink(enforcer_binary(true), scratch.0.join("cgrulesengd"))?;
    // The rule under test plus rules for users that do not run anything here.
    let rules = format!(
        "# enforcer bench\nnobody cpu {GROUP}\n@nogroup cpu {GROUP}\n*:{MATCHED} cpu {GROUP}\n"
    );
    let _etc = EtcFiles::create(&rules)?;
    let _group = Group::create()?;

    let lat_variants = [Variant::Debian, Variant::Enforcer, Variant::EnforcerHold];
    let cost_variants = [Variant::None, Variant::Debian, Variant::Enforcer];
    let mut lat: Vec<Vec<LatencyRun>> = lat_variants.iter().map(|_| Vec::new()).collect();
    let mut cost: Vec<Vec<f64>> = cost_variants.iter().map(|_| Vec::new()).collect();
    let mut kernel_ns = Vec::new();
    for r in 0..runs {
        eprintln!("[bench] classify run {}/{runs} (load {})", r + 1, loadavg());
        for (i, v) in lat_variants.iter().enumerate() {
            lat[i].push(latency_run(*v, &scratch.0, &matched, execs)?);
        }
        for (i, v) in cost_variants.iter().enumerate() {
            cost[i].push(exec_cost(*v, &scratch.0, &unmatched, execs)?);
        }
        kernel_ns.extend(kernel_cost(&scratch.0, &unmatched, execs.min(500))?);
    }
    let mut out = String::new();
    writeln!(
        out,
        "exec -> classified ({execs} execs per run, {runs} runs, medians of the per-run values [min-max]):"
    )?;
    writeln!(
        out,
        "| daemon | p50 (us) | p99 (us) | placed | ran in the old group first |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for (i, v) in lat_variants.iter().enumerate() {
        let col = |f: &dyn Fn(&LatencyRun) -> f64| lat[i].iter().map(f).collect::<Vec<_>>();
        writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            v.name(),
            fmt_stat(&col(&|x| x.p50), 0),
            fmt_stat(&col(&|x| x.p99), 0),
            fmt_stat(&col(&|x| x.placed as f64), 0),
            fmt_stat(&col(&|x| x.woke_in_old as f64 * 100.0 / execs as f64), 1) + " %",
        )?;
    }
    writeln!(
        out,
        "\nper exec of a program no rule matches (median of {execs} fork+exec+wait per run):"
    )?;
    writeln!(out, "| daemon | us per exec | vs no daemon |")?;
    writeln!(out, "|---|---|---|")?;
    for (i, v) in cost_variants.iter().enumerate() {
        let delta: Vec<f64> = cost[i].iter().zip(&cost[0]).map(|(x, b)| x - b).collect();
        writeln!(
            out,
            "| {} | {} | {} us |",
            v.name(),
            fmt_stat(&cost[i], 1),
            fmt_stat(&delta, 1)
        )?;
    }
    if !kernel_ns.is_empty() {
        writeln!(
            out,
            "\nclassify_exec in the kernel (BPF stats): {} ns per exec",
            fmt_stat(&kernel_ns, 0)
        )?;
    }
    print!("{out}");
    Ok(())
}
