//! `cargo xtask vmtest`: the end-to-end suite (the `enforcer-tests` integration
//! tests) run as root inside QEMU, on other kernels and cgroup layouts than the
//! build host's.
//!
//! The guest boots straight into an initramfs holding the host-built test
//! executables, `enforcer`, the helper, the tools the tests call and busybox;
//! its /init sets up the layout and runs the tests, and the host reads libtest's
//! output from the serial console. Archives and logs live under target/vmtest/.

mod arm64;
mod guest_init;
mod initramfs;
mod kernels;
mod payload;
mod qemu;
#[cfg(test)]
mod readme_tests;
mod report;
mod systemd;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cross::{Target, profile_dir};
use crate::run::{build_for, cargo};
use crate::setup;
use crate::workspace::workspace_root;
use initramfs::Tree;
use kernels::Kernel;
use payload::TestExe;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The guest's architecture: x86_64, or arm64 (aarch64: the binaries and
    /// tests cross-built, Debian's arm64 cloud kernel and packages, the
    /// `virt` machine under TCG).
    #[arg(long, value_enum, default_value_t = GuestArch::X86_64)]
    arch: GuestArch,
    /// 6.1 or 6.12 (Debian cloud kernels, installed if missing), host, or the
    /// path of a bzImage (x86_64 only).
    #[arg(long, default_value = "6.1")]
    kernel: String,
    /// cgroup layout the guest sets up before the tests.
    #[arg(long, value_enum, default_value_t = Layout::V2)]
    layout: Layout,
    /// Boot with BPF-LSM (`lsm=lockdown,capability,bpf`) or without it.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    lsm: Switch,
    /// The matrix: kernels 6.1 and 6.12, each with v2 (LSM on), v1 and hybrid (LSM off).
    #[arg(long, conflicts_with_all = ["kernel", "layout", "lsm"])]
    all: bool,
    /// Which guest: busybox as init running the end-to-end suite, or Debian
    /// with systemd as PID 1 running the deployment tests (the installed
    /// unit, the DaemonSet under podman: `systemd_unit` and `daemonset`).
    #[arg(long, value_enum, default_value_t = Guest::Initramfs, conflicts_with = "all")]
    guest: Guest,
    /// Seconds one test executable may run in the guest before it is killed.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// libtest threads in the guest (it has 2 CPUs).
    #[arg(long, default_value_t = 2)]
    test_threads: u32,
    /// Leave this test executable out (repeatable): CI's row skips those
    /// whose subject does not change with the kernel (they run on the host).
    #[arg(long, value_name = "EXECUTABLE")]
    skip: Vec<String>,
    /// Test filter and libtest arguments, passed to every test executable. A
    /// word naming a test executable (`control_plane`) instead runs only
    /// that executable (several may be named).
    #[arg(last = true)]
    args: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Layout {
    /// Pure cgroup2 at /sys/fs/cgroup, every controller enabled at the root.
    V2,
    /// Only v1 hierarchies, one per controller, plus name=systemd.
    V1,
    /// v1 controllers plus a controller-less cgroup2 at /sys/fs/cgroup/unified.
    Hybrid,
}

impl Layout {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layout::V2 => "v2",
            Layout::V1 => "v1",
            Layout::Hybrid => "hybrid",
        }
    }
}

/// A guest architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GuestArch {
    #[value(name = "x86_64", alias = "amd64")]
    X86_64,
    #[value(name = "arm64", alias = "aarch64")]
    Arm64,
}

impl GuestArch {
    /// What the binaries are built for (None: this host).
    fn target(self) -> Option<Target> {
        match self {
            GuestArch::X86_64 => None,
            GuestArch::Arm64 => Some(Target::Aarch64),
        }
    }

    /// The kernel's console (see qemu.rs).
    fn kernel_console(self) -> &'static str {
        match self {
            GuestArch::X86_64 => "ttyS1",
            GuestArch::Arm64 => "ttyAMA0",
        }
    }

    /// How much slower than under the x86_64 guest's TCG the tests run:
    /// emulating arm64 on x86_64 costs more (measured, README's matrix).
    fn extra_time_scale(self) -> u32 {
        match self {
            GuestArch::X86_64 => 1,
            GuestArch::Arm64 => 2,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Guest {
    /// An initramfs with busybox as init (fast to boot; no init system).
    Initramfs,
    /// A Debian root filesystem with systemd as PID 1 (mmdebstrap, cached).
    Systemd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

struct Config {
    kernel: String,
    layout: Layout,
    lsm: bool,
}

fn configs(args: &Args) -> Vec<Config> {
    if !args.all {
        return vec![Config {
            kernel: args.kernel.clone(),
            layout: args.layout,
            lsm: args.lsm == Switch::On,
        }];
    }
    let mut out = Vec::new();
    for kernel in ["6.1", "6.12"] {
        for layout in [Layout::V2, Layout::V1, Layout::Hybrid] {
            out.push(Config {
                kernel: kernel.into(),
                layout,
                // Production v2 hosts run BPF-LSM; the old layouts mostly predate it.
                lsm: layout == Layout::V2,
            });
        }
    }
    out
}

/// How long to wait for the guest beyond the test executables' own timeouts:
/// booting and unpacking the initramfs under TCG.
const BOOT_SLACK: Duration = Duration::from_secs(180);

pub(crate) fn run(args: Args) -> Result<()> {
    let arch = args.arch;
    // kmod: depmod indexes an extracted arm64 kernel's modules here, and the
    // x86 guests get this host's modprobe (payload.rs). A fresh machine may
    // have none: the arm64 row failed there on depmod, before any x86
    // kernel package could pull kmod in.
    match arch {
        GuestArch::X86_64 => setup::apt_install(&["qemu-system-x86", "busybox-static", "kmod"])?,
        // qemu-system-arm has qemu-system-aarch64; busybox answers for the
        // arm64 busybox's applet list (payload.rs).
        GuestArch::Arm64 => setup::apt_install(&["qemu-system-arm", "busybox-static", "kmod"])?,
    }
    setup::run()?;
    let configs = configs(&args);
    // Kernels first: installing one is the slowest step that can fail.
    let mut kernels = HashMap::new();
    for c in &configs {
        if !kernels.contains_key(&c.kernel) {
            let kernel = match arch {
                GuestArch::X86_64 => kernels::resolve(&c.kernel)?,
                GuestArch::Arm64 => arm64::kernel(&c.kernel)?,
            };
            kernels.insert(c.kernel.clone(), kernel);
        }
    }

    build_for(arch.target(), false)?;
    let tests = build_tests(arch.target())?;
    let dir = workspace_root().join("target").join("vmtest");
    std::fs::create_dir_all(&dir)?;
    let bin_dir = profile_dir(arch.target(), false);
    let binaries = [
        bin_dir.join("enforcer"),
        bin_dir.join("enforcer-test-helper"),
        bin_dir.join("enforcer-test-cgself"),
    ];
    if args.guest == Guest::Systemd {
        if arch != GuestArch::X86_64 {
            bail!(
                "--guest systemd boots x86_64 guests only (the Debian rootfs is the host's architecture)"
            );
        }
        let c = &configs[0];
        return run_systemd(&args, c, &kernels[&c.kernel], tests, &binaries, &dir);
    }
    let base = match arch {
        GuestArch::X86_64 => dir.join("base.cpio.gz"),
        GuestArch::Arm64 => dir.join("arm64-base.cpio.gz"),
    };
    let init = guest_init::init_script(&tests, arch);
    let (sysroot, extra) = match arch {
        GuestArch::X86_64 => (payload::Sysroot::Host, None),
        GuestArch::Arm64 => (arm64::sysroot()?, Some(arm64::compat32()?)),
    };
    let mut tree = payload::base_tree(&sysroot, &tests, &binaries, &init)?;
    if let Some(compat32) = extra {
        tree.file(Path::new(arm64::COMPAT32_GUEST), &compat32, false)?;
    }
    if tree.write_cached(&base, &dir.join("stripped"))? {
        eprintln!("[vmtest] wrote {}", base.display());
    }

    let (mut only, libtest) = split_args(&args.args, &tests);
    if let Some(unknown) = args
        .skip
        .iter()
        .find(|s| !tests.iter().any(|t| &t.name == *s))
    {
        bail!(
            "--skip {unknown}: no test executable has that name; they are: {}",
            tests
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !args.skip.is_empty() {
        if only.is_empty() {
            only = tests.iter().map(|t| t.name.clone()).collect();
        }
        only.retain(|n| !args.skip.contains(n));
        eprintln!("[vmtest] left out: {}", args.skip.join(", "));
    }
    let suite = Suite {
        dir,
        base,
        names: if only.is_empty() {
            tests.iter().map(|t| t.name.clone()).collect()
        } else {
            only.clone()
        },
        only,
        libtest,
        timeout: Duration::from_secs(args.timeout) * u32::try_from(tests.len())? + BOOT_SLACK,
    };
    let mut accel = None;
    let mut table = Vec::new();
    let (mut passed, mut failed, mut all_ok) = (0, 0, true);
    for c in &configs {
        let kernel = &kernels[&c.kernel];
        let accel = match (accel, arch) {
            (Some(a), _) => a,
            // An arm64 guest on this x86_64 host can only be emulated.
            (None, GuestArch::Arm64) => *accel.insert(qemu::Accel::Tcg),
            (None, GuestArch::X86_64) => *accel.insert(qemu::choose_accel(|| {
                probe_kvm(&suite.dir, &suite.base, kernel)
            })?),
        };
        let (r, lines) = suite.run_one(c, kernel, accel, &args)?;
        for l in &lines {
            println!("{l}");
        }
        table.extend(lines);
        passed += r.passed;
        failed += r.failed;
        all_ok &= r.ok();
    }
    if configs.len() > 1 {
        println!();
        for l in &table {
            println!("{l}");
        }
    }
    println!("{passed} passed, {failed} failed");
    if !all_ok {
        bail!(
            "vmtest: failures above; guest logs in {}",
            suite.dir.display()
        );
    }
    Ok(())
}

/// `--guest systemd`: one boot of the Debian guest running the deployment
/// tests (see systemd.rs).
fn run_systemd(
    args: &Args,
    c: &Config,
    kernel: &Kernel,
    tests: Vec<TestExe>,
    binaries: &[PathBuf],
    dir: &Path,
) -> Result<()> {
    let (only, libtest) = split_args(&args.args, &tests);
    let tests = systemd::select(tests, &only)?;
    let names: Vec<String> = tests.iter().map(|t| t.name.clone()).collect();
    let sdir = dir.join("systemd");
    let image = systemd::image(&sdir, kernel)?;
    let dist = sdir.join("dist");
    crate::dist::layout(&binaries[0], &binaries[0], &dist)?;
    // Debug info is most of a debug build: not kept twice on disk.
    let _ = std::process::Command::new("objcopy")
        .arg("--strip-debug")
        .arg(dist.join("bin/enforcer"))
        .status();
    let accel = qemu::choose_accel(|| Ok(false))?;
    let lsm = if c.lsm { "on" } else { "off" };
    let label = format!("systemd-{}-{}-lsm-{lsm}", kernel.label, c.layout.name());
    // One test thread: the tests drive one systemd and one podman. The
    // console is a terminal to libtest: no colour codes in the report.
    let mut libtest = libtest;
    libtest.push("--color=never".into());
    let config = guest_init::config_script(
        c.layout,
        false,
        1,
        args.timeout,
        accel.time_scale(),
        &names,
        &libtest,
    );
    let scratch = dir.join("stripped");
    let mut parts = Vec::new();
    for (name, tree) in [
        ("systemd-base", systemd::base_tree()?),
        (
            &format!("systemd-modules-{}", kernel.label),
            systemd::modules_tree(kernel)?,
        ),
        (
            "systemd-payload",
            systemd::payload_tree(&tests, binaries, &dist, &config)?,
        ),
    ] {
        let part = sdir.join(format!("{name}.cpio.gz"));
        tree.write_cached(&part, &scratch)?;
        parts.push(part);
    }
    let initrd = sdir.join(format!("{label}.initrd"));
    let mut out = std::fs::File::create(&initrd)?;
    for part in &parts {
        std::io::copy(&mut std::fs::File::open(part)?, &mut out)?;
    }
    drop(out);
    let log = dir.join(format!("{label}.log"));
    let kernel_log = dir.join(format!("{label}.kernel.log"));
    let boot = qemu::Boot {
        kernel: &kernel.image,
        initrd: &initrd,
        // The tests write to ttyS0 (the runner's TTYPath); the kernel and
        // systemd's own console to ttyS1, kept in the kernel log (see
        // qemu.rs); an oops panics at once.
        cmdline: format!(
            "console=ttyS1 panic=-1 oops=panic softlockup_panic=1 rdinit=/init lsm={} \
             systemd.show_status=false{}",
            lsm_list(c.lsm),
            systemd::layout_args(c.layout)
        ),
        accel,
        timeout: Duration::from_secs(args.timeout) * u32::try_from(tests.len())? + BOOT_SLACK,
        kernel_log: &kernel_log,
        disk: Some(&image),
        arch: GuestArch::X86_64,
    };
    eprintln!(
        "[vmtest] booting {} with systemd ({}) {} lsm={lsm} under {}; console: {}, kernel log: {}",
        kernel.label,
        image.display(),
        c.layout.name(),
        accel.name(),
        log.display(),
        kernel_log.display()
    );
    // A guest that dies of the emulator's fault (report::EMULATOR_FAULTS)
    // is booted once more; what it ran before the fault is not counted.
    let mut outcome = qemu::run(&boot, &log, Some(&label))?;
    let mut r = report::parse(
        &outcome.lines,
        &outcome.kernel_lines,
        &names,
        outcome.timed_out,
    );
    let mut elapsed = outcome.elapsed;
    if r.emulator_died() {
        let fault = r.emulator_fault.clone().unwrap_or_default();
        eprintln!(
            "[vmtest {label}] the guest died of an emulator fault ({fault}); booting once more"
        );
        outcome = qemu::run(&boot, &log, Some(&label))?;
        r = report::parse(
            &outcome.lines,
            &outcome.kernel_lines,
            &names,
            outcome.timed_out,
        );
        r.rerun = Some(format!(
            "the first boot died of an emulator fault ({fault}); booted once more"
        ));
        elapsed += outcome.elapsed;
    }
    let _ = std::fs::remove_file(&initrd);
    let head = format!(
        "{:<5} {:<6} lsm={lsm:<3} systemd",
        kernel.label,
        c.layout.name()
    );
    for l in report::config_lines(&head, &r, elapsed) {
        println!("{l}");
    }
    println!("{} passed, {} failed", r.passed, r.failed);
    if !r.ok() {
        bail!(
            "vmtest: failures above; the guest's console is in {}",
            log.display()
        );
    }
    Ok(())
}

/// What every configuration's boot shares.
struct Suite {
    dir: PathBuf,
    base: PathBuf,
    /// Test executables' names, to notice one that never ran.
    names: Vec<String>,
    /// The executables named on the command line (all run when empty).
    only: Vec<String>,
    /// What is passed to each test executable.
    libtest: Vec<String>,
    /// For the whole boot: every executable's own timeout plus the boot.
    timeout: Duration,
}

/// One boot's outcome.
struct Boot {
    r: report::ConfigResult,
    lines: Vec<String>,
    elapsed: Duration,
}

impl Suite {
    /// Run one configuration; its result and report lines. A boot that dies
    /// of the emulator's known fault (report::EMULATOR_FAULTS) is booted once
    /// more for the executables it did not finish; a second fault fails.
    fn run_one(
        &self,
        c: &Config,
        kernel: &Kernel,
        accel: qemu::Accel,
        args: &Args,
    ) -> Result<(report::ConfigResult, Vec<String>)> {
        let lsm = if c.lsm { "on" } else { "off" };
        let label = format!("{}-{}-lsm-{lsm}", kernel.label, c.layout.name());
        let first = self.boot(c, kernel, accel, args, &label, &self.only, &self.names)?;
        let (r, elapsed) = if first.r.emulator_died() {
            let rest: Vec<String> = self
                .names
                .iter()
                .filter(|n| !first.r.completed.contains(n))
                .cloned()
                .collect();
            let fault = first.r.emulator_fault.clone().unwrap_or_default();
            if rest.is_empty() {
                let mut r = first.r;
                r.incomplete = None;
                r.rerun = Some(format!(
                    "emulator fault after the last executable ({fault}); nothing to rerun"
                ));
                (r, first.elapsed)
            } else {
                eprintln!(
                    "[vmtest {label}] the guest died of an emulator fault ({fault}); \
                     booting once more for: {}",
                    rest.join(" ")
                );
                let rerun_label = format!("{label}-rerun");
                let second = self.boot(c, kernel, accel, args, &rerun_label, &rest, &rest)?;
                (
                    first.r.with_rerun(&first.lines, second.r),
                    first.elapsed + second.elapsed,
                )
            }
        } else {
            (first.r, first.elapsed)
        };
        let head = format!("{:<5} {:<6} lsm={lsm:<3}", kernel.label, c.layout.name());
        let lines = report::config_lines(&head, &r, elapsed);
        Ok((r, lines))
    }

    /// Boot once, running `only` (every executable when empty), and expect
    /// `expected` to run.
    #[allow(clippy::too_many_arguments)]
    fn boot(
        &self,
        c: &Config,
        kernel: &Kernel,
        accel: qemu::Accel,
        args: &Args,
        label: &str,
        only: &[String],
        expected: &[String],
    ) -> Result<Boot> {
        let lsm = if c.lsm { "on" } else { "off" };
        let script = guest_init::config_script(
            c.layout,
            false,
            args.test_threads,
            args.timeout,
            accel.time_scale() * args.arch.extra_time_scale(),
            only,
            &self.libtest,
        );
        let initrd = guest_initrd(&self.dir, &self.base, kernel, args.arch, label, script)?;
        let log = self.dir.join(format!("{label}.log"));
        let kernel_log = self.dir.join(format!("{label}.kernel.log"));
        let boot = qemu::Boot {
            arch: args.arch,
            kernel: &kernel.image,
            initrd: &initrd,
            cmdline: cmdline(c, args.arch),
            accel,
            timeout: self.timeout,
            kernel_log: &kernel_log,
            disk: None,
        };
        eprintln!(
            "[vmtest] booting {} ({}) {} lsm={lsm} under {}; console: {}, kernel log: {}",
            kernel.label,
            kernel.image.display(),
            c.layout.name(),
            accel.name(),
            log.display(),
            kernel_log.display()
        );
        let outcome = qemu::run(&boot, &log, Some(label))?;
        // Its parts stay cached; the concatenation is only for this boot.
        let _ = std::fs::remove_file(&initrd);
        let r = report::parse(
            &outcome.lines,
            &outcome.kernel_lines,
            expected,
            outcome.timed_out,
        );
        Ok(Boot {
            r,
            lines: outcome.lines,
            elapsed: outcome.elapsed,
        })
    }
}

/// The trailing arguments split into test executables to run (words that
/// name one) and the rest, for libtest.
fn split_args(args: &[String], tests: &[TestExe]) -> (Vec<String>, Vec<String>) {
    args.iter()
        .cloned()
        .partition(|a| tests.iter().any(|t| &t.name == a))
}

/// The `lsm=` list: with or without BPF-LSM.
fn lsm_list(lsm: bool) -> &'static str {
    if lsm {
        "lockdown,capability,bpf"
    } else {
        "lockdown,capability"
    }
}

fn cmdline(c: &Config, arch: GuestArch) -> String {
    let lsm = lsm_list(c.lsm);
    // A CPU stuck in the kernel panics the guest (its stack on the console)
    // instead of holding the run until the executable's timeout, which a
    // task spinning in the kernel would outlive anyway.
    // The kernel's console is the second serial port (see qemu.rs); an oops
    // panics at once, so the interrupted executable and the kernel's reason
    // are known (see report::EMULATOR_FAULTS) instead of a test hanging on a
    // half-dead kernel.
    let mut s = format!(
        "console={} panic=-1 oops=panic softlockup_panic=1 rdinit=/init lsm={lsm}",
        arch.kernel_console()
    );
    if c.layout == Layout::V2 {
        // Nothing may bind a controller to v1, so every one is free for cgroup2.
        s.push_str(" cgroup_no_v1=all");
    }
    s
}

/// The integration test executables of `enforcer-tests` for `target` (this
/// host when None), built if needed.
fn build_tests(target: Option<Target>) -> Result<Vec<TestExe>> {
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--no-run",
        "--message-format=json",
        "--package",
        "enforcer-tests",
    ]);
    if let Some(t) = target {
        cmd.args(["--target", t.triple()]);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("could not run cargo test --no-run")?;
    if !out.status.success() {
        bail!("building the tests failed");
    }
    let mut tests = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_test = msg["reason"] == "compiler-artifact"
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "test"));
        if let (true, Some(exe), Some(name)) = (
            is_test,
            msg["executable"].as_str(),
            msg["target"]["name"].as_str(),
        ) {
            tests.push(TestExe {
                name: name.to_string(),
                path: PathBuf::from(exe),
            });
        }
    }
    if tests.is_empty() {
        bail!("cargo built no integration test executables for enforcer-tests");
    }
    tests.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tests)
}

/// base + the kernel's modules + this run's config.sh, concatenated: the kernel
/// unpacks back-to-back gzip'd cpio archives in order, so only the small parts
/// are rebuilt per kernel and per run.
fn guest_initrd(
    dir: &Path,
    base: &Path,
    kernel: &Kernel,
    arch: GuestArch,
    label: &str,
    config_sh: String,
) -> Result<PathBuf> {
    let modules = dir.join(format!("modules-{}.cpio.gz", kernel.label));
    let tree = match (&kernel.release, arch) {
        (Some(release), GuestArch::X86_64) => payload::modules_tree(
            &kernel.modules_root,
            Path::new("/"),
            release,
            payload::MODULE_PREFIXES,
        )?,
        // Guest paths as Debian's arm64 packages lay them out (see arm64.rs),
        // and the tests' console driver.
        (Some(release), GuestArch::Arm64) => {
            let prefixes: Vec<&str> = payload::MODULE_PREFIXES
                .iter()
                .chain(arm64::CONSOLE_MODULES)
                .copied()
                .collect();
            payload::modules_tree(
                &kernel.modules_root,
                &arm64::guest_root()?,
                release,
                &prefixes,
            )?
        }
        (None, _) => Tree::default(),
    };
    tree.write_cached(&modules, &dir.join("stripped"))?;

    let config = dir.join(format!("{label}.config.cpio.gz"));
    let mut tree = Tree::default();
    tree.bytes("/vmtest/config.sh", config_sh, 0o644);
    tree.write_cached(&config, &dir.join("stripped"))?;

    let initrd = dir.join(format!("{label}.initrd"));
    let mut out = std::fs::File::create(&initrd)?;
    for part in [base, modules.as_path(), config.as_path()] {
        let mut f = std::fs::File::open(part)?;
        std::io::copy(&mut f, &mut out)?;
    }
    Ok(initrd)
}

/// Whether a KVM guest boots to /init and powers off within a short time here.
fn probe_kvm(dir: &Path, base: &Path, kernel: &Kernel) -> Result<bool> {
    let script = guest_init::config_script(Layout::V2, true, 1, 1, 1, &[], &[]);
    let initrd = guest_initrd(dir, base, kernel, GuestArch::X86_64, "kvm-probe", script)?;
    let boot = qemu::Boot {
        arch: GuestArch::X86_64,
        kernel: &kernel.image,
        initrd: &initrd,
        cmdline: "console=ttyS1 panic=-1 rdinit=/init".into(),
        accel: qemu::Accel::Kvm,
        kernel_log: &dir.join("kvm-probe.kernel.log"),
        // TCG reaches /init in about 4 s here; KVM, when it works, is faster.
        timeout: Duration::from_secs(30),
        disk: None,
    };
    let out = qemu::run(&boot, &dir.join("kvm-probe.log"), None)?;
    let _ = std::fs::remove_file(&initrd);
    Ok(!out.timed_out && out.lines.iter().any(|l| l == "VMTEST-DONE"))
}
