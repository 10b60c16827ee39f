//! Pieces shared by the accounting and enforcement benchmarks: guards for what a
//! run creates (child processes, groups, nft tables, pin and temp directories,
//! the bpf_stats sysctl), the sweep of an interrupted run's leftovers, host
//! helpers, and parsing and statistics of the drivers' output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::median;
use crate::run::enforcer_binary;
use crate::setup::status;

/// cgroup2 mount point as nft resolves `socket cgroupv2` paths (relative to it).
const NFT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

// ---------------------------------------------------------------------------
// Guards.

/// A child holding programs attached: a driver (ends, detaching and unpinning,
/// when its stdin closes) or bpftrace (ends on SIGINT, with `interrupt`). On drop
/// it gets `grace` to exit before it is killed.
pub(super) struct Holder {
    pub(super) child: Child,
    pub(super) stdin: Option<ChildStdin>,
    pub(super) interrupt: bool,
    grace: Duration,
    /// What the warning calls the child if it has to be killed.
    what: &'static str,
    /// Program ids by name, as the driver reported them.
    pub(super) programs: BTreeMap<String, u64>,
    /// Rule load time the driver reported.
    pub(super) load_ms: Option<f64>,
}

impl Holder {
    /// Takes over `child` (and its stdin, if piped).
    pub(super) fn new(
        mut child: Child,
        interrupt: bool,
        grace: Duration,
        what: &'static str,
    ) -> Holder {
        let stdin = child.stdin.take();
        Holder {
            child,
            stdin,
            interrupt,
            grace,
            what,
            programs: BTreeMap::new(),
            load_ms: None,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.interrupt {
            signal("INT", self.child.id());
        }
        end(&mut self.child, self.grace, self.what);
    }
}

/// Waits up to `grace` for a child to exit, then kills it (warning about it as
/// `what`).
pub(super) fn end(child: &mut Child, grace: Duration, what: &str) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "[bench] warning: {what} {} did not exit; killing it",
        child.id()
    );
    let _ = child.kill();
    let _ = child.wait();
}

pub(super) fn signal(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

/// Groups made with `enforcer create`, deleted with `enforcer delete`.
pub(super) struct Groups {
    enforcer: PathBuf,
    pub(super) names: Vec<String>,
}

impl Groups {
    pub(super) fn create(enforcer: &Path, names: &[&str]) -> Result<Groups> {
        let mut groups = Groups {
            enforcer: enforcer.to_path_buf(),
            names: Vec::new(),
        };
        for name in names {
            status(
                Command::new(enforcer)
                    .args(["create", "-g", &format!("memory:{name}")])
                    .stdout(Stdio::null()),
            )?;
            groups.names.push((*name).to_owned());
        }
        Ok(groups)
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        for name in &self.names {
            let ok = Command::new(&self.enforcer)
                .args(["delete", "-g", &format!("memory:{name}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("[bench] warning: could not delete group {name}");
            }
        }
    }
}

/// An nft table (`inet` family), deleted on drop. With `may_be_missing` (the
/// table is named before it is loaded) a failed delete is only a note.
pub(super) struct NftTable {
    pub(super) name: String,
    pub(super) may_be_missing: bool,
}

impl Drop for NftTable {
    fn drop(&mut self) {
        let mut delete = Command::new("nft");
        delete.args(["delete", "table", "inet", &self.name]);
        if self.may_be_missing {
            delete.stderr(Stdio::null());
        }
        let ok = delete.status().is_ok_and(|s| s.success());
        if ok {
            return;
        }
        if self.may_be_missing {
            eprintln!(
                "[bench] note: nft table inet {} was not there to delete",
                self.name
            );
        } else {
            eprintln!(
                "[bench] warning: could not delete nft table inet {}",
                self.name
            );
        }
    }
}

/// `kernel.bpf_stats_enabled=1` while alive; the previous value is restored on drop.
pub(super) struct BpfStats {
    previous: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    pub(super) fn enable() -> Result<BpfStats> {
        let previous = std::fs::read_to_string(BPF_STATS)?.trim().to_owned();
        std::fs::write(BPF_STATS, "1").context("sysctl kernel.bpf_stats_enabled=1")?;
        Ok(BpfStats { previous })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if std::fs::write(BPF_STATS, &self.previous).is_err() {
            eprintln!(
                "[bench] warning: could not restore kernel.bpf_stats_enabled={}",
                self.previous
            );
        }
    }
}

/// Turns the kernel's BPF stats on or off (while a [`BpfStats`] guard is alive).
pub(super) fn set_bpf_stats(on: bool) -> Result<()> {
    std::fs::write(BPF_STATS, if on { "1" } else { "0" })
        .context("writing kernel.bpf_stats_enabled")
}

/// A private pin directory, unpinned with `enforcer stop` on drop (each driver
/// unpins on exit; this catches a driver that was killed, and the pins a
/// collection driver keeps).
pub(super) struct PinDir {
    pub(super) enforcer: PathBuf,
    pub(super) dir: PathBuf,
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if !self.dir.exists() {
            return;
        }
        // No pid file (nothing to signal), and not one in bpffs, where only
        // pins can be made.
        let name = self.dir.file_name().unwrap_or_default().to_string_lossy();
        let _ = Command::new(&self.enforcer)
            .arg("stop")
            .arg("--pin-dir")
            .arg(&self.dir)
            .arg("--pid-file")
            .arg(std::env::temp_dir().join(format!("{name}.no-pid")))
            .stdout(Stdio::null())
            .status();
        // `enforcer stop` leaves the pin directory itself (empty, so nobody
        // else can take its name while an agent may come back); a benchmark's
        // goes.
        let _ = std::fs::remove_dir(&self.dir);
        if self.dir.exists() {
            eprintln!("[bench] warning: {} was not removed", self.dir.display());
        }
    }
}

/// A directory removed (with its contents) on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn create(path: PathBuf) -> Result<TempDir> {
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes what an interrupted earlier run (whose xtask process is gone) left:
/// pin directories and groups named `<prefix><pid>...` and nft tables named
/// `<nft_prefix><pid>...`.
pub(super) fn sweep_leftovers(prefix: &str, nft_prefix: &str) {
    let dead = |name: &str, prefix: &str| {
        let pid: String = name
            .strip_prefix(prefix)
            .unwrap_or("")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        !pid.is_empty() && !Path::new("/proc").join(&pid).exists()
    };
    let enforcer = enforcer_binary(true);
    for entry in std::fs::read_dir("/sys/fs/bpf")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if dead(&name, prefix) {
            eprintln!("[bench] removing pins left by an earlier run: {name}");
            drop(PinDir {
                enforcer: enforcer.clone(),
                dir: entry.path(),
            });
        }
    }
    if let Ok(out) = Command::new("nft").args(["list", "tables"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(name) = line.strip_prefix("table inet ")
                && dead(name, nft_prefix)
            {
                eprintln!("[bench] removing nft table left by an earlier run: {name}");
                drop(NftTable {
                    name: name.to_owned(),
                    may_be_missing: false,
                });
            }
        }
    }
    if let Ok(mount) = cgroup2_mount() {
        let names: Vec<String> = std::fs::read_dir(mount)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| dead(n, prefix))
            .collect();
        if !names.is_empty() {
            eprintln!("[bench] removing groups left by an earlier run: {names:?}");
            drop(Groups { enforcer, names });
        }
    }
}

// ---------------------------------------------------------------------------
// Host helpers.

pub(super) fn bpftool_json(args: &[&str]) -> Result<serde_json::Value> {
    let out = Command::new("bpftool").arg("--json").args(args).output()?;
    if !out.status.success() {
        bail!(
            "bpftool {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// `(run_time_ns, run_cnt)` of a program; bpftool omits both while zero.
pub(super) fn prog_stats(id: u64) -> Result<(u64, u64)> {
    let v = bpftool_json(&["prog", "show", "id", &id.to_string()])?;
    Ok((
        v["run_time_ns"].as_u64().unwrap_or(0),
        v["run_cnt"].as_u64().unwrap_or(0),
    ))
}

pub(super) fn cgroup2_mount() -> Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    text.lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mount = pre.split(' ').nth(4)?;
            (post.split(' ').next()? == "cgroup2").then(|| PathBuf::from(mount))
        })
        .context("no cgroup2 mount in /proc/self/mountinfo")
}

/// The path and level nft's `socket cgroupv2` needs for a cgroup2 directory:
/// nft resolves the path below /sys/fs/cgroup (on this hybrid host
/// `unified/GROUP`); the level is the group's depth in the cgroup2 tree.
pub(super) fn nft_cgroup(group_dir: &Path) -> Result<(String, usize)> {
    let rel = group_dir.strip_prefix(NFT_CGROUP_ROOT).with_context(|| {
        format!(
            "{} is not below {NFT_CGROUP_ROOT}, where nft looks up cgroupv2 paths",
            group_dir.display()
        )
    })?;
    let level = group_dir
        .strip_prefix(cgroup2_mount()?)?
        .components()
        .count();
    Ok((rel.display().to_string(), level))
}

/// The first three fields of /proc/loadavg: other work on the host adds noise.
pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------
// Parsing and statistics.

/// The text after `key=` on the first line of a driver's output that has it.
pub(super) fn raw<'a>(out: &'a str, key: &str) -> Result<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("no {key}= in the driver's output: {out}"))
}

pub(super) fn value(out: &str, key: &str) -> Result<f64> {
    Ok(raw(out, key)?.trim().parse()?)
}

/// Samples per key, in run order (index = run).
#[derive(Default)]
pub(super) struct Samples(pub(super) BTreeMap<String, Vec<f64>>);

impl Samples {
    pub(super) fn push(&mut self, key: &str, x: f64) {
        self.0.entry(key.to_owned()).or_default().push(x);
    }

    pub(super) fn get(&self, key: &str) -> &[f64] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    pub(super) fn median(&self, key: &str) -> f64 {
        med(self.get(key))
    }

    pub(super) fn fmt(&self, key: &str, decimals: usize) -> String {
        fmt_stat(self.get(key), decimals)
    }

    /// `f(variant, base)` per run: each run's variant against the same run's base.
    pub(super) fn paired(&self, key: &str, base: &str, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
        self.get(key)
            .iter()
            .zip(self.get(base))
            .map(|(x, b)| f(*x, *b))
            .collect()
    }
}

/// Median of a sample; NaN if it is empty.
pub(super) fn med(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    median(&mut v.to_vec())
}

/// `median [min-max]` with `decimals` decimals.
pub(super) fn fmt_stat(v: &[f64], decimals: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.d$} [{lo:.d$}-{hi:.d$}]", med(v), d = decimals)
}
