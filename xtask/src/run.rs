//! Building, running and testing the workspace.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::setup::status;

pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub(crate) fn is_root() -> bool {
    // SAFETY-free check: /proc/self/status carries the effective uid.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

pub(crate) fn build(release: bool) -> Result<()> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--package",
        "enforcer",
        "--package",
        "enforcer-tests",
        "--bins",
    ]);
    if release {
        cmd.arg("--release");
    }
    status(&mut cmd).context("building the workspace failed")
}

pub(crate) fn enforcer_binary(release: bool) -> PathBuf {
    workspace_root()
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join("enforcer")
}

pub(crate) fn run_enforcer(release: bool, args: &[String]) -> Result<()> {
    let bin = enforcer_binary(release);
    let mut cmd = if is_root() {
        Command::new(&bin)
    } else {
        let mut c = Command::new("sudo");
        c.arg(&bin);
        c
    };
    cmd.args(args);
    let st = cmd
        .status()
        .with_context(|| format!("could not start {}", bin.display()))?;
    if !st.success() {
        bail!("enforcer exited with {st}");
    }
    Ok(())
}

pub(crate) fn test(extra: &[String]) -> Result<()> {
    if !is_root() {
        bail!(
            "the end-to-end tests create cgroups and load eBPF programs: run `cargo xtask test` as root"
        );
    }
    if let Some(summary) = crate::sweep::run() {
        eprintln!("[test] {summary}");
    }
    // Binaries first: the end-to-end tests run the real `enforcer` executable.
    build(false)?;
    let kubernetes_validate = crate::setup::kubernetes_validate()?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .env("ENFORCER_TEST_KUBERNETES_VALIDATE", kubernetes_validate);
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    status(&mut cmd).context("tests failed")
}
