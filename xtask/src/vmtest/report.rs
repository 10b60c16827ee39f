//! Reading the guest console: libtest's summary and failing test names per test
//! executable, between the markers guest_init.rs prints, and the result lines.
//! The kernel's own log (a second serial port) says whether the guest died of
//! the emulator's known fault rather than of the tests.

use std::collections::BTreeSet;
use std::time::Duration;

use super::guest_init::MARK;

#[derive(Default, Debug, PartialEq)]
pub(crate) struct ConfigResult {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    /// `executable::test` for each failing test, or `executable` plus what went
    /// wrong when an executable gave no summary (crash, timeout).
    pub(crate) failures: Vec<String>,
    /// The guest's own warnings (a controller this kernel lacks, a failed mount).
    pub(crate) warnings: Vec<String>,
    /// `test: why` for each test that returned early for what the kernel or
    /// layout lacks (counted in `passed` by libtest).
    pub(crate) skipped: Vec<String>,
    /// Why the run as a whole is incomplete (no DONE marker), if it is.
    pub(crate) incomplete: Option<String>,
    /// Executables that ran to their end marker.
    pub(crate) completed: Vec<String>,
    /// The kernel log line that shows the emulator's fault, if the guest
    /// died of it (see [`emulator_fault`]).
    pub(crate) emulator_fault: Option<String>,
    /// What a rerun after an emulator fault covered, for the report.
    pub(crate) rerun: Option<String>,
}

impl ConfigResult {
    pub(crate) fn ok(&self) -> bool {
        self.failed == 0 && self.incomplete.is_none()
    }

    /// Whether the run died of the emulator's fault and deserves one rerun
    /// of what it did not finish.
    pub(crate) fn emulator_died(&self) -> bool {
        self.emulator_fault.is_some() && self.incomplete.is_some()
    }

    /// This run's results for the executables it finished, and `rerun`'s for
    /// the rest: the executable the fault interrupted counts only as the
    /// rerun ran it, never as a pass of the faulted run.
    pub(crate) fn with_rerun(self, first_lines: &[String], rerun: ConfigResult) -> ConfigResult {
        let fault = self.emulator_fault.clone().unwrap_or_default();
        let finished = parse_runs(first_lines, &[], &self.completed, false, false);
        let interrupted = rerun.completed.join(", ");
        ConfigResult {
            passed: finished.passed + rerun.passed,
            failed: finished.failed + rerun.failed,
            failures: [finished.failures, rerun.failures].concat(),
            warnings: [self.warnings, rerun.warnings].concat(),
            skipped: [finished.skipped, rerun.skipped].concat(),
            incomplete: rerun.incomplete,
            completed: [self.completed, rerun.completed].concat(),
            emulator_fault: rerun.emulator_fault,
            rerun: Some(format!(
                "the first boot died of an emulator fault ({fault}); rerun once: {interrupted}"
            )),
        }
    }
}

/// Kernel log lines that mean QEMU's multi-threaded TCG raced the guest
/// kernel's live code patching (text_poke of static keys and BPF trampolines),
/// not that a test or enforcer broke the kernel: an `int3` trap the kernel no
/// longer expects in a just-patched jump, and a vCPU that stops making
/// progress (softlockup_panic turns it into a panic). Seen about once in five
/// full runs of a 2-vCPU guest; never on real hardware or under KVM.
const EMULATOR_FAULTS: &[&str] = &["Oops: int3", "BUG: soft lockup"];

/// The first kernel log line that shows an emulator fault.
pub(crate) fn emulator_fault(kernel_log: &[String]) -> Option<String> {
    kernel_log
        .iter()
        .find(|l| EMULATOR_FAULTS.iter().any(|sig| l.contains(sig)))
        .map(|l| l.trim().to_string())
}

/// Parse a whole console log and the kernel's log. `expected` names the
/// executables the guest should have run: one that never started counts as a
/// failure too.
pub(crate) fn parse(
    lines: &[String],
    kernel_log: &[String],
    expected: &[String],
    timed_out: bool,
) -> ConfigResult {
    parse_runs(lines, kernel_log, expected, timed_out, true)
}

/// [`parse`], counting an executable the guest did not finish as a failure
/// only if `count_unfinished`.
fn parse_runs(
    lines: &[String],
    kernel_log: &[String],
    expected: &[String],
    timed_out: bool,
    count_unfinished: bool,
) -> ConfigResult {
    let mut r = ConfigResult {
        emulator_fault: emulator_fault(kernel_log),
        ..ConfigResult::default()
    };
    let mut current: Option<Exe> = None;
    let mut seen = BTreeSet::new();
    let mut done = false;
    let mut in_dmesg = false;
    for line in lines {
        if let Some(rest) = line.strip_prefix(MARK) {
            let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            match word {
                "BEGIN" => {
                    seen.insert(arg.to_string());
                    current = Some(Exe::new(arg));
                }
                "END" => {
                    if let Some(exe) = current.take() {
                        let rc = arg.rsplit_once("rc=").map_or("?", |(_, rc)| rc);
                        r.completed.push(exe.name.clone());
                        exe.finish(&mut r, Some(rc));
                    }
                }
                "WARN" => r.warnings.push(arg.to_string()),
                "SKIP" => r.skipped.push(arg.to_string()),
                "DMESG-BEGIN" => in_dmesg = true,
                "DMESG-END" => in_dmesg = false,
                "DONE" => done = true,
                _ => {}
            }
            continue;
        }
        if in_dmesg {
            continue;
        }
        if let Some(exe) = current.as_mut() {
            exe.line(line);
        }
    }
    if let Some(exe) = current.take()
        && count_unfinished
    {
        exe.finish(&mut r, None);
    }
    for name in expected {
        if !seen.contains(name) {
            r.failed += 1;
            r.failures.push(format!("{name} (never ran)"));
        }
    }
    if !done {
        let panicked = |l: &String| l.contains("Kernel panic");
        r.incomplete = Some(if timed_out {
            "timed out".into()
        } else if let Some(fault) = &r.emulator_fault {
            format!("emulator fault: {fault}")
        } else if let Some(p) = kernel_log.iter().find(|l| panicked(l)) {
            format!("kernel panic: {}", p.trim())
        } else if lines.iter().any(panicked) {
            "kernel panic".into()
        } else {
            "the guest stopped before finishing".into()
        });
    }
    r
}

/// One test executable's output.
struct Exe {
    name: String,
    summary: Option<(u64, u64)>,
    failing: Vec<String>,
    /// Tests libtest reported as running long: the suspects when it is killed.
    slow: Vec<String>,
    /// Inside libtest's closing "failures:" list of names.
    in_failure_list: bool,
}

impl Exe {
    fn new(name: &str) -> Self {
        Exe {
            name: name.to_string(),
            summary: None,
            failing: Vec::new(),
            slow: Vec::new(),
            in_failure_list: false,
        }
    }

    fn line(&mut self, line: &str) {
        // Child processes share the console, so match within a line, not whole lines.
        if let Some(idx) = line.find("test result: ") {
            self.summary = parse_summary(&line[idx..]);
            self.in_failure_list = false;
        } else if let Some(name) = failed_test(line) {
            self.add_failing(name);
        } else if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, _)) = rest.split_once(" has been running for over")
        {
            self.slow.push(name.to_string());
        } else if line == "failures:" {
            self.in_failure_list = true;
        } else if line.starts_with("---- ") {
            // The first "failures:" block holds each test's output, not names.
            self.in_failure_list = false;
        } else if self.in_failure_list
            && let Some(name) = line.strip_prefix("    ")
            && !name.contains(' ')
        {
            self.add_failing(name);
        }
    }

    fn add_failing(&mut self, name: &str) {
        if !self.failing.iter().any(|n| n == name) {
            self.failing.push(name.to_string());
        }
    }

    fn finish(self, r: &mut ConfigResult, rc: Option<&str>) {
        for t in &self.failing {
            r.failures.push(format!("{}::{t}", self.name));
        }
        match self.summary {
            Some((passed, failed)) => {
                r.passed += passed;
                r.failed += failed;
            }
            None => {
                // No summary: it crashed, was killed by the guest's timeout, or the
                // VM stopped. Count the executable once, naming the suspects.
                r.failed += 1;
                let why = match rc {
                    Some("137") => "killed by the timeout".to_string(),
                    Some(rc) => format!("exited {rc} without a summary"),
                    None => "did not finish".to_string(),
                };
                let slow = if self.slow.is_empty() {
                    String::new()
                } else {
                    format!("; running long: {}", self.slow.join(", "))
                };
                r.failures.push(format!("{} ({why}{slow})", self.name));
            }
        }
    }
}

/// "test foo::bar ... FAILED" anywhere in a line.
fn failed_test(line: &str) -> Option<&str> {
    let rest = line.strip_suffix(" ... FAILED")?;
    let idx = rest.rfind("test ")?;
    let name = &rest[idx + 5..];
    (!name.is_empty() && !name.contains(' ')).then_some(name)
}

/// "test result: FAILED. 41 passed; 3 failed; 0 ignored; ..." -> (41, 3).
fn parse_summary(s: &str) -> Option<(u64, u64)> {
    let mut passed = None;
    let mut failed = None;
    for part in s.split(['.', ';']) {
        let mut w = part.split_whitespace();
        if let (Some(n), Some(what)) = (w.next(), w.next()) {
            match what {
                "passed" => passed = n.parse().ok(),
                "failed" => failed = n.parse().ok(),
                _ => {}
            }
        }
    }
    Some((passed?, failed?))
}

pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// `6.1   v2      lsm=on   41 passed, 3 failed (2m10s)` and the details under it.
pub(crate) fn config_lines(label: &str, r: &ConfigResult, elapsed: Duration) -> Vec<String> {
    let skipped = if r.skipped.is_empty() {
        String::new()
    } else {
        format!(" ({} of them skipped)", r.skipped.len())
    };
    let mut out = vec![format!(
        "{label}   {} passed{skipped}, {} failed ({}){}",
        r.passed,
        r.failed,
        duration(elapsed),
        r.incomplete
            .as_ref()
            .map(|w| format!(" INCOMPLETE: {w}"))
            .unwrap_or_default()
    )];
    out.extend(r.rerun.iter().map(|w| format!("    {w}")));
    out.extend(r.failures.iter().map(|f| format!("    FAILED {f}")));
    out.extend(r.warnings.iter().map(|w| format!("    guest: {w}")));
    out.extend(r.skipped.iter().map(|s| format!("    skipped {s}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn counts_and_names_failures_per_executable() {
        let log = lines(
            "boot noise\n\
             VMTEST-WARN no v1 memory controller on this kernel\n\
             VMTEST-BEGIN control_plane\n\
             running 3 tests\n\
             test a ... ok\n\
             some child output test b ... FAILED\n\
             test c ... ok\n\
             failures:\n\
             \n\
             ---- b stdout ----\n\
             panicked\n\
             failures:\n\
             \x20   b\n\
             \n\
             test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n\
             VMTEST-END control_plane rc=101\n\
             VMTEST-BEGIN agent\n\
             test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n\
             VMTEST-END agent rc=0\n\
             VMTEST-BEGIN enforce_kernel\n\
             test slow has been running for over 60 seconds\n\
             VMTEST-END enforce_kernel rc=137\n\
             VMTEST-DMESG-BEGIN\n\
             test x ... FAILED\n\
             VMTEST-DMESG-END\n\
             VMTEST-DONE\n",
        );
        let expected = ["control_plane", "agent", "enforce_kernel", "ebpf_egress"]
            .map(String::from)
            .to_vec();
        let r = parse(&log, &[], &expected, false);
        assert_eq!(r.passed, 7);
        assert_eq!(r.failed, 3);
        assert_eq!(
            r.failures,
            [
                "control_plane::b",
                "enforce_kernel (killed by the timeout; running long: slow)",
                "ebpf_egress (never ran)"
            ]
        );
        assert_eq!(r.warnings, ["no v1 memory controller on this kernel"]);
        assert!(r.incomplete.is_none());
    }

    #[test]
    fn a_run_without_done_is_incomplete() {
        let log = lines("VMTEST-BEGIN agent\nrunning 5 tests\n");
        let r = parse(&log, &[], &["agent".into()], true);
        assert_eq!(r.failed, 1);
        assert_eq!(r.failures, ["agent (did not finish)"]);
        assert_eq!(r.incomplete.as_deref(), Some("timed out"));
        assert!(!r.ok());
    }

    /// libtest counts a test that returned early as passed: the result line
    /// says how many of the passes were skips, and which.
    #[test]
    fn skips_are_counted_apart_and_listed() {
        let log = lines(
            "VMTEST-BEGIN hardening\n\
             test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n\
             VMTEST-END hardening rc=0\n\
             VMTEST-SKIP a_stale_pid_file: no cgroup2 hierarchy on this host (pure cgroup v1)\n\
             VMTEST-DONE\n",
        );
        let r = parse(&log, &[], &["hardening".into()], false);
        assert_eq!(r.passed, 8);
        assert_eq!(
            r.skipped,
            ["a_stale_pid_file: no cgroup2 hierarchy on this host (pure cgroup v1)"]
        );
        let out = config_lines("6.1   v1     lsm=off", &r, Duration::from_secs(75));
        assert_eq!(
            out[0],
            "6.1   v1     lsm=off   8 passed (1 of them skipped), 0 failed (1m15s)"
        );
        assert_eq!(
            out[1],
            "    skipped a_stale_pid_file: no cgroup2 hierarchy on this host (pure cgroup v1)"
        );
    }

    /// A guest that dies of the emulator's int3 race mid-executable: the
    /// executables it finished keep their results, the interrupted one and
    /// the rest count only as the rerun ran them, and the report says so.
    #[test]
    fn an_emulator_fault_is_rerun_once_and_never_counted_as_a_pass() {
        let first = lines(
            "VMTEST-BEGIN agent\n\
             test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n\
             VMTEST-END agent rc=0\n\
             VMTEST-SKIP agent_lsm: BPF-LSM is not active\n\
             VMTEST-BEGIN arbiter\n\
             running 2 tests\n\
             test one ... ok\n",
        );
        let kernel = lines(
            "[  812.1] int3: 0000 [#1] PREEMPT SMP NOPTI\n\
             [  812.1] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n\
             [  812.2] Kernel panic - not syncing: Fatal exception in interrupt\n",
        );
        let expected = ["agent", "arbiter", "top"].map(String::from).to_vec();
        let r = parse(&first, &kernel, &expected, false);
        assert!(r.emulator_died(), "{r:?}");
        assert!(!r.ok());
        assert_eq!(r.completed, ["agent"]);
        assert_eq!(
            r.incomplete.as_deref(),
            Some("emulator fault: [  812.1] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI")
        );

        let rest: Vec<String> = expected
            .iter()
            .filter(|n| !r.completed.contains(n))
            .cloned()
            .collect();
        assert_eq!(rest, ["arbiter", "top"]);
        let second = lines(
            "VMTEST-BEGIN arbiter\n\
             test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n\
             VMTEST-END arbiter rc=0\n\
             VMTEST-BEGIN top\n\
             test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s\n\
             VMTEST-END top rc=101\n\
             VMTEST-DONE\n",
        );
        let again = parse(&second, &[], &rest, false);
        let merged = r.with_rerun(&first, again);
        // 5 from the first boot's agent, 2 + 3 from the rerun; the test that
        // passed before the fault (arbiter's `one`) is not counted twice.
        assert_eq!(merged.passed, 10);
        assert_eq!(merged.failed, 1);
        assert!(merged.incomplete.is_none());
        assert!(!merged.ok(), "a real failure in the rerun still fails");
        // The first boot's skips, said as its executable ended, are kept.
        assert_eq!(merged.skipped, ["agent_lsm: BPF-LSM is not active"]);
        let out = config_lines("6.1   v2     lsm=on ", &merged, Duration::from_secs(60));
        assert!(out[0].contains("10 passed (1 of them skipped)"), "{out:?}");
        assert!(
            out[1]
                .starts_with("    the first boot died of an emulator fault ([  812.1] Oops: int3"),
            "{out:?}"
        );
        assert!(out[1].ends_with("rerun once: arbiter, top"), "{out:?}");
    }

    /// A panic that is not the emulator's is a failure, not a reason to rerun.
    #[test]
    fn another_kernel_panic_is_not_rerun() {
        let first = lines("VMTEST-BEGIN agent\nrunning 5 tests\n");
        let kernel = lines(
            "[  9.1] BUG: kernel NULL pointer dereference, address: 0000000000000008\n\
             [  9.2] Kernel panic - not syncing: Fatal exception\n",
        );
        let r = parse(&first, &kernel, &["agent".into()], false);
        assert!(!r.emulator_died());
        assert_eq!(
            r.incomplete.as_deref(),
            Some("kernel panic: [  9.2] Kernel panic - not syncing: Fatal exception")
        );
    }
}
