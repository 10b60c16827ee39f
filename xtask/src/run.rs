//! Building, running and testing the workspace.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cross::Target;
use crate::setup::status;
use crate::workspace::workspace_root;

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
    build_for(None, release)
}

/// The binaries (`enforcer` and the test helpers) for `target`, or the host.
pub(crate) fn build_for(target: Option<Target>, release: bool) -> Result<()> {
    if let Some(t) = target {
        crate::cross::ensure(t)?;
    }
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
    if let Some(t) = target {
        cmd.args(["--target", t.triple()]);
    }
    status(&mut cmd).context("building the workspace failed")?;
    if let Some(t) = target {
        eprintln!(
            "[build] {} ({})",
            enforcer_binary_for(target, release).display(),
            t.name()
        );
    }
    Ok(())
}

pub(crate) fn enforcer_binary(release: bool) -> PathBuf {
    enforcer_binary_for(None, release)
}

pub(crate) fn enforcer_binary_for(target: Option<Target>, release: bool) -> PathBuf {
    crate::cross::profile_dir(target, release).join("enforcer")
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
    // Tests that return early for what this host lacks say so in this file
    // (`enforcer_tests::skipped`): libtest would count them as passed.
    let skips = workspace_root().join("target").join("test-skips.txt");
    let _ = std::fs::remove_file(&skips);
    let kubernetes_validate = crate::setup::kubernetes_validate()?;
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .env("ENFORCER_TEST_SKIPS", &skips)
        .env("ENFORCER_TEST_KUBERNETES_VALIDATE", kubernetes_validate)
        .stdout(Stdio::piped());
    if !extra.is_empty() {
        cmd.arg("--").args(extra);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {cmd:?}"))?;
    let watchdog = crate::watchdog::Watchdog::start(child.id());
    let mut tally = Tally::default();
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout().lock();
        for line in BufReader::new(out).lines() {
            let line = line.context("reading cargo test's output")?;
            tally.line(&line);
            // A closed stdout (`| head`) must not stop the tests.
            let _ = writeln!(stdout, "{line}");
        }
    }
    let st = child.wait().context("waiting for cargo test")?;
    let killed = watchdog.killed();
    if !killed.is_empty() {
        // Their tests' guards never ran.
        if let Some(summary) = crate::sweep::run() {
            eprintln!("[test] after the killed executables: {summary}");
        }
    }
    let skipped = skip_lines(&skips);
    eprintln!("{}", tally.summary(&skipped));
    for s in &skipped {
        eprintln!("[test]   skipped {s}");
    }
    for k in &killed {
        eprintln!("[test]   killed (ran past its limit) {k}");
    }
    if !st.success() {
        bail!("tests failed ({st})");
    }
    Ok(())
}

/// libtest's `test result:` lines, summed over every test executable.
#[derive(Default, Debug, PartialEq)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
    executables: u64,
}

impl Tally {
    fn line(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        self.executables += 1;
        for part in rest.split(['.', ';']) {
            let mut w = part.split_whitespace();
            if let (Some(n), Some(what)) = (w.next(), w.next()) {
                let n: u64 = n.parse().unwrap_or(0);
                match what {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        }
    }

    /// libtest counts a test that returned early as passed: those are
    /// reported as skipped, not as passes.
    fn summary(&self, skipped: &[String]) -> String {
        format!(
            "[test] {} passed, {} skipped{}, {} failed, {} ignored, in {} test executables",
            self.passed.saturating_sub(skipped.len() as u64),
            skipped.len(),
            if skipped.is_empty() {
                ""
            } else {
                " (reasons below)"
            },
            self.failed,
            self.ignored,
            self.executables
        )
    }
}

/// The skip file's lines (`test: why`), each once, sorted.
fn skip_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let set: std::collections::BTreeSet<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn results_of_every_executable_are_summed_and_skips_set_apart() {
        let mut t = Tally::default();
        for l in [
            "running 3 tests",
            "test result: ok. 259 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.99s",
            "test result: FAILED. 7 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 2.22s",
            "test a ... ok",
        ] {
            t.line(l);
        }
        assert_eq!(
            t,
            Tally {
                passed: 266,
                failed: 2,
                ignored: 1,
                executables: 2
            }
        );
        let skipped = vec!["x: no BPF-LSM".to_string(), "y: no tmux".to_string()];
        assert_eq!(
            t.summary(&skipped),
            "[test] 264 passed, 2 skipped (reasons below), 2 failed, 1 ignored, in 2 test executables"
        );
    }
}
