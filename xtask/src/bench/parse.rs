//! `cargo xtask bench parse`: how `enforcer apply --dry-run` scales with the
//! number of groups, for a cgconfig.conf and a TOML policy of the same groups.
//! Reading and validating must be linear: 100,000 groups should take about ten
//! times what 10,000 take. With `--baseline BIN` another enforcer binary (an
//! older build) runs interleaved with this one, so before and after come from
//! one run on one machine.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::median;
use crate::run::enforcer_binary;

pub(crate) struct Options {
    pub(crate) sizes: Vec<usize>,
    pub(crate) runs: usize,
    pub(crate) baseline: Option<PathBuf>,
}

#[derive(Clone, Copy)]
enum Format {
    Cgconfig,
    Toml,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Cgconfig => "cgconfig.conf",
            Format::Toml => "TOML",
        }
    }

    /// A policy of `n` groups, each with a memory limit and a cpu weight.
    fn policy(self, n: usize) -> Result<String> {
        let mut text = String::with_capacity(n * 96);
        for i in 0..n {
            match self {
                Format::Cgconfig => writeln!(
                    text,
                    "group enf-parse-{i} {{\n  memory {{ memory.limit_in_bytes = 64M; }}\n  \
                     cpu {{ cpu.shares = 512; }}\n}}"
                )?,
                Format::Toml => writeln!(
                    text,
                    "[group.\"enf-parse-{i}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\
                     \"cpu.shares\" = 512\n"
                )?,
            }
        }
        Ok(text)
    }

    fn file_name(self, n: usize) -> String {
        match self {
            Format::Cgconfig => format!("{n}.conf"),
            Format::Toml => format!("{n}.toml"),
        }
    }
}

/// Seconds for one `apply --dry-run` of `file` (its output thrown away).
fn dry_run(bin: &Path, file: &Path) -> Result<f64> {
    let start = Instant::now();
    let out = Command::new(bin)
        .args(["apply", "--dry-run"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let took = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{} apply --dry-run {} failed: {}",
            bin.display(),
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

pub(crate) fn run(opts: Options) -> Result<()> {
    let current = enforcer_binary(true);
    let mut binaries = vec![("this build", current)];
    if let Some(b) = opts.baseline.clone() {
        binaries.push(("baseline", b));
    }
    let dir = std::env::temp_dir().join(format!("enf-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&binaries, &dir, &opts);
    std::fs::remove_dir_all(&dir).ok();
    result
}

fn measure(binaries: &[(&str, PathBuf)], dir: &Path, opts: &Options) -> Result<()> {
    let formats = [Format::Cgconfig, Format::Toml];
    let mut files = Vec::new();
    for format in formats {
        for &n in &opts.sizes {
            let path = dir.join(format.file_name(n));
            std::fs::write(&path, format.policy(n)?)?;
            files.push((format, n, path));
        }
    }
    // times[binary][file]
    let mut times = vec![vec![Vec::new(); files.len()]; binaries.len()];
    for r in 0..opts.runs {
        eprintln!("[bench] run {}/{}", r + 1, opts.runs);
        for (f, (_, _, path)) in files.iter().enumerate() {
            for (b, (_, bin)) in binaries.iter().enumerate() {
                times[b][f].push(dry_run(bin, path)?);
            }
        }
    }
    println!(
        "parse benchmark: `enforcer apply --dry-run` of N groups (memory limit + cpu shares), \
         {} interleaved runs, median seconds [min-max]",
        opts.runs
    );
    let mut header = "| format | groups |".to_owned();
    for (name, _) in binaries {
        header.push_str(&format!(" {name} |"));
    }
    if binaries.len() > 1 {
        header.push_str(" baseline / this build |");
    }
    println!("{header}");
    println!("|{}", "---|".repeat(header.matches('|').count() - 1));
    for (f, (format, n, _)) in files.iter().enumerate() {
        let mut row = format!("| {} | {n} |", format.name());
        let mut medians = Vec::new();
        for times in &times {
            let v = &times[f];
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            let m = median(&mut v.clone());
            medians.push(m);
            row.push_str(&format!(" {m:.3} [{lo:.3}-{hi:.3}] |"));
        }
        if let [this, baseline] = medians[..] {
            row.push_str(&format!(" {:.1}x |", baseline / this));
        }
        println!("{row}");
    }
    // Linearity: each size's median over the smallest's, against the ratio of sizes.
    for format in formats {
        for (b, (name, _)) in binaries.iter().enumerate() {
            let rows: Vec<(usize, f64)> = files
                .iter()
                .enumerate()
                .filter(|(_, (fm, _, _))| fm.name() == format.name())
                .map(|(f, (_, n, _))| (*n, median(&mut times[b][f].clone())))
                .collect();
            if let (Some(first), Some(last)) = (rows.first(), rows.last())
                && rows.len() > 1
            {
                println!(
                    "{} ({name}): {} groups take {:.1}x the time of {} ({:.0}x the groups)",
                    format.name(),
                    last.0,
                    last.1 / first.1,
                    first.0,
                    last.0 as f64 / first.0 as f64
                );
            }
        }
    }
    Ok(())
}
