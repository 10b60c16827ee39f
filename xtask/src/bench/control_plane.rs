//! `cargo xtask bench control-plane`: create, configure and delete N groups with
//! `enforcer apply` + `enforcer delete`, against a cgcreate + cgset + cgdelete loop.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::median;
use crate::run::enforcer_binary;
use crate::setup::apt_install;

/// cgroup mount points from mountinfo (xtask cannot use the enforcer library:
/// it must build before the eBPF toolchain exists).
fn cgroup_mounts() -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mount = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mount))
        })
        .collect())
}

/// Remove every benchmark group left in any hierarchy (libcgroup's cgdelete
/// leaves `cpu/x` behind on this host; a failed run may leave more).
fn sweep(prefix: &str) -> Result<usize> {
    let mut n = 0;
    for m in cgroup_mounts()? {
        let Ok(rd) = std::fs::read_dir(&m) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix)
                && std::fs::remove_dir(e.path()).is_ok()
            {
                n += 1;
            }
        }
    }
    Ok(n)
}

fn timed(mut cmd: Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// One enforcer run: a generated cgconfig.conf applied in one process, then one
/// delete naming every group.
fn enforcer_run(bin: &Path, conf: &Path, groups: &[String]) -> Result<(Duration, Duration)> {
    let mut apply = Command::new(bin);
    apply.arg("apply").arg(conf);
    let create = timed(apply)?;
    let mut del = Command::new(bin);
    del.arg("delete");
    for g in groups {
        del.arg("-g").arg(format!("memory,cpu:{g}"));
    }
    Ok((create, timed(del)?))
}

/// One libcgroup run: what a shell script around cgcreate/cgset/cgdelete does.
fn libcgroup_run(groups: &[String]) -> Result<(Duration, Duration)> {
    let start = Instant::now();
    for g in groups {
        let mut c = Command::new("cgcreate");
        c.args(["-g", &format!("memory,cpu:{g}")]);
        timed(c)?;
        let mut s = Command::new("cgset");
        s.args(["-r", "memory.limit_in_bytes=64M", "-r", "cpu.shares=512", g]);
        timed(s)?;
    }
    let create = start.elapsed();
    let start = Instant::now();
    for g in groups {
        let mut d = Command::new("cgdelete");
        d.args(["-g", &format!("memory,cpu:{g}")]);
        timed(d)?;
    }
    Ok((create, start.elapsed()))
}

pub(crate) fn run(n: usize, runs: usize) -> Result<()> {
    apt_install(&["cgroup-tools"])
        .context("the comparison needs libcgroup's tools (Debian cgroup-tools)")?;
    let bin = enforcer_binary(true);
    let prefix = format!("enf-bench-{}-", std::process::id());
    let groups = names(&prefix, n);
    let dir = std::env::temp_dir().join(format!("{prefix}conf"));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("bench.conf");
    let mut text = String::new();
    for g in &groups {
        writeln!(
            text,
            "group {g} {{\n  memory {{ memory.limit_in_bytes = 64M; }}\n  cpu {{ cpu.shares = 512; }}\n}}"
        )?;
    }
    std::fs::write(&conf, text)?;

    let mut e_create = Vec::new();
    let mut e_delete = Vec::new();
    let mut l_create = Vec::new();
    let mut l_delete = Vec::new();
    let result = (|| -> Result<()> {
        for r in 0..runs {
            eprintln!("[bench] run {}/{runs}", r + 1);
            let (c, d) = enforcer_run(&bin, &conf, &groups)?;
            e_create.push(c.as_secs_f64());
            e_delete.push(d.as_secs_f64());
            if sweep(&prefix)? > 0 {
                bail!("enforcer delete left groups behind");
            }
            let (c, d) = libcgroup_run(&groups)?;
            l_create.push(c.as_secs_f64());
            l_delete.push(d.as_secs_f64());
            let left = sweep(&prefix)?;
            if r == 0 && left > 0 {
                eprintln!("[bench] cgdelete left {left} directories behind (swept)");
            }
        }
        Ok(())
    })();
    sweep(&prefix)?;
    std::fs::remove_dir_all(&dir).ok();
    result?;

    let spread = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{:.3}-{:.3}", lo, hi)
    };
    let (ec, ed, lc, ld) = (
        median(&mut e_create.clone()),
        median(&mut e_delete.clone()),
        median(&mut l_create.clone()),
        median(&mut l_delete.clone()),
    );
    println!(
        "control-plane benchmark: {n} groups (memory.limit_in_bytes=64M, cpu.shares=512), {runs} interleaved runs, median seconds [min-max]"
    );
    println!("| phase | enforcer | libcgroup (cgcreate+cgset / cgdelete) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| create + configure | {ec:.3} [{}] | {lc:.3} [{}] | {:.1}x |",
        spread(&e_create),
        spread(&l_create),
        lc / ec
    );
    println!(
        "| delete | {ed:.3} [{}] | {ld:.3} [{}] | {:.1}x |",
        spread(&e_delete),
        spread(&l_delete),
        ld / ed
    );
    println!(
        "| total | {:.3} | {:.3} | {:.1}x |",
        ec + ed,
        lc + ld,
        (lc + ld) / (ec + ed)
    );
    Ok(())
}
