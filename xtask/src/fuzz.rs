//! `cargo xtask fuzz [TARGET | --all] [--secs N]`: run a cargo-fuzz target in
//! `fuzz/` (or each in turn: CI runs `--all --secs 60`) on the nightly
//! toolchain (libFuzzer needs it), installing cargo-fuzz first if it is
//! missing. Without TARGET, lists the targets.
//!
//! The eBPF object is not needed to fuzz the readers, so it is not built
//! (`AYA_BUILD_SKIP=1`). Each target starts from the project's valid examples
//! (seeds, read-only) plus its own corpus in `fuzz/corpus/TARGET`; crashes land
//! in `fuzz/artifacts/TARGET`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup::{NIGHTLY, ensure_nightly, status};
use crate::workspace::workspace_root;

/// The targets (`fuzz/fuzz_targets/NAME.rs`) and their seed directories,
/// relative to the workspace root.
pub(crate) const TARGETS: &[(&str, &[&str])] = &[
    ("cgconfig", &["fuzz/seeds/cgconfig"]),
    ("toml_policy", &["examples"]),
    ("policy_file", &["fuzz/seeds/cgconfig", "examples"]),
    ("values", &["fuzz/seeds/values"]),
];

/// `cargo` through rustup's proxy, so `+nightly` works, without the variables
/// the outer (stable) cargo set for this xtask.
fn cargo_nightly(root: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg(format!("+{NIGHTLY}")).current_dir(root);
    for var in [
        "CARGO",
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
        "CARGO_MANIFEST_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn ensure_cargo_fuzz(root: &Path) -> Result<()> {
    let installed = cargo_nightly(root)
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    eprintln!("[fuzz] installing cargo-fuzz (cargo install cargo-fuzz)");
    status(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
        .context("could not install cargo-fuzz")
}

/// Every target for `secs` each; the first failure ends the run.
pub(crate) fn run_all(secs: u64, extra: &[String]) -> Result<()> {
    for (name, _) in TARGETS {
        eprintln!("[fuzz] {name} for {secs} s");
        run(Some(name), secs, extra)?;
    }
    eprintln!(
        "[fuzz] {} targets ran {secs} s each without a crash",
        TARGETS.len()
    );
    Ok(())
}

pub(crate) fn run(target: Option<&str>, secs: u64, extra: &[String]) -> Result<()> {
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    let Some(target) = target else {
        println!("fuzz targets (run one with `cargo xtask fuzz TARGET [--secs N]`):");
        for name in &names {
            println!("  {name}");
        }
        return Ok(());
    };
    let Some((_, seeds)) = TARGETS.iter().find(|(n, _)| *n == target) else {
        bail!(
            "unknown fuzz target {target:?}; the targets are: {}",
            names.join(", ")
        );
    };
    let root = workspace_root();
    ensure_nightly()?;
    ensure_cargo_fuzz(&root)?;
    let corpus = root.join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let seeds: Vec<PathBuf> = seeds.iter().map(|s| root.join(s)).collect();
    let mut cmd = cargo_nightly(&root);
    cmd.args(["fuzz", "run", "--fuzz-dir"])
        .arg(root.join("fuzz"))
        .arg(target)
        .arg(&corpus)
        .args(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .args(extra)
        .env("AYA_BUILD_SKIP", "1");
    status(&mut cmd).with_context(|| {
        format!(
            "fuzz target {target} failed; a crashing input is saved under {}",
            root.join("fuzz/artifacts").join(target).display()
        )
    })
}
