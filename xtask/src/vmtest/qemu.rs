//! Booting one kernel + initramfs in QEMU and capturing its serial consoles:
//! the first (ttyS0) carries what the guest's init and the tests print, the
//! second (ttyS1) the kernel's own log, so kernel messages never split a test's
//! output line and a guest's dying words are kept whole. An arm64 guest (the
//! `virt` machine, one PL011 UART) has the kernel's log on its UART
//! (ttyAMA0) and the tests' on a virtio console (hvc0): the same two streams.
//!
//! TCG by default: on this host /dev/kvm exists but KVM guests hang (shared/HOST.md).
//! `VMTEST_ACCEL=kvm` forces KVM; `VMTEST_ACCEL=auto` first boots the guest in
//! probe mode under KVM with a short timeout and falls back to TCG if it does
//! not come back.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::GuestArch;
use super::guest_init::MARK;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// How much slower than the host a guest runs: the tests' time limits
    /// are multiplied by it (`ENFORCER_TEST_TIME_SCALE`). TCG emulates every
    /// instruction, and the CPU is shared with the host's other work.
    pub(crate) fn time_scale(self) -> u32 {
        match self {
            Accel::Kvm => 1,
            Accel::Tcg => 10,
        }
    }
}

pub(crate) struct Boot<'a> {
    pub(crate) arch: GuestArch,
    pub(crate) kernel: &'a Path,
    pub(crate) initrd: &'a Path,
    pub(crate) cmdline: String,
    pub(crate) accel: Accel,
    pub(crate) timeout: Duration,
    /// Where the kernel's console (ttyS1, ttyAMA0 on arm64) is written.
    pub(crate) kernel_log: &'a Path,
    /// A raw disk image as /dev/vda, opened with `snapshot=on`: the guest's
    /// writes go to a temporary overlay, so the cached image stays as built.
    pub(crate) disk: Option<&'a Path>,
}

pub(crate) struct Outcome {
    /// Every console line, `\r` removed.
    pub(crate) lines: Vec<String>,
    /// Every line of the kernel's log.
    pub(crate) kernel_lines: Vec<String>,
    pub(crate) timed_out: bool,
    pub(crate) elapsed: Duration,
}

fn qemu(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::X86_64 => "qemu-system-x86_64",
        GuestArch::Arm64 => "qemu-system-aarch64",
    }
}

fn command(boot: &Boot) -> Command {
    let mut cmd = Command::new(qemu(boot.arch));
    match (boot.arch, boot.accel) {
        (GuestArch::X86_64, Accel::Kvm) => cmd.args(["-accel", "kvm", "-cpu", "host"]),
        // `max` gives TCG every CPU feature it emulates (the kernel's BPF JIT and
        // crypto pick their code paths from them).
        (GuestArch::X86_64, Accel::Tcg) => cmd.args(["-accel", "tcg", "-cpu", "max"]),
        // The `virt` machine; `max` has AArch32 at EL0 (the compat tests),
        // and QEMU's own pointer-authentication hash (`pauth-impdef`) instead
        // of the architected QARMA, which costs TCG more than anything else
        // the kernel does.
        (GuestArch::Arm64, _) => cmd.args([
            "-machine",
            "virt",
            "-accel",
            "tcg",
            "-cpu",
            "max,pauth-impdef=on",
        ]),
    };
    cmd.args(["-m", "2048", "-smp", "2"]).args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
    ]);
    match boot.arch {
        GuestArch::X86_64 => cmd.args(["-serial", "stdio"]),
        GuestArch::Arm64 => cmd.args([
            "-chardev",
            "stdio,id=tests",
            "-device",
            "virtio-serial-device",
            "-device",
            "virtconsole,chardev=tests",
        ]),
    };
    cmd.arg("-serial")
        .arg(format!("file:{}", boot.kernel_log.display()))
        .args(["-monitor", "none", "-nic", "none"])
        // With -no-reboot a guest panic (panic=-1 reboots at once) ends QEMU.
        .arg("-no-reboot")
        .arg("-kernel")
        .arg(boot.kernel)
        .arg("-initrd")
        .arg(boot.initrd)
        .arg("-append")
        .arg(&boot.cmdline);
    if let Some(disk) = boot.disk {
        let mut drive = std::ffi::OsString::from("file=");
        drive.push(disk);
        drive.push(",format=raw,if=virtio,snapshot=on");
        cmd.arg("-drive").arg(drive);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Boot, stream the console into `log` (and marker lines to stderr when
/// `progress`), and stop the VM if it outlives `boot.timeout`.
pub(crate) fn run(boot: &Boot, log: &Path, progress: Option<&str>) -> Result<Outcome> {
    let start = Instant::now();
    let mut child = command(boot)
        .spawn()
        .with_context(|| format!("could not start {}", qemu(boot.arch)))?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let stderr = child.stderr.take().context("qemu stderr")?;
    let (tx, rx) = mpsc::channel::<String>();
    let tx2 = tx.clone();
    std::thread::spawn(move || forward_lines(stdout, &tx));
    // QEMU's own complaints (bad option, missing file) go into the log too.
    std::thread::spawn(move || forward_lines(stderr, &tx2));

    let mut file = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
    let mut lines = Vec::new();
    let mut timed_out = false;
    let deadline = start + boot.timeout;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                writeln!(file, "{line}")?;
                if let Some(prefix) = progress {
                    show_progress(prefix, &line);
                }
                lines.push(line);
            }
            // Both readers are done: QEMU closed its output, so it has exited.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > deadline && !timed_out {
            timed_out = true;
            writeln!(
                file,
                "{MARK}HOST timed out after {:?}: stopping QEMU",
                boot.timeout
            )?;
            let _ = child.kill();
        }
    }
    let _ = child.wait();
    let kernel_lines = std::fs::read(boot.kernel_log)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .map(|l| l.replace('\r', ""))
                .collect()
        })
        .unwrap_or_default();
    Ok(Outcome {
        lines,
        kernel_lines,
        timed_out,
        elapsed: start.elapsed(),
    })
}

fn forward_lines(r: impl std::io::Read, tx: &mpsc::Sender<String>) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']).replace('\r', "");
        if tx.send(line).is_err() {
            return;
        }
        buf.clear();
    }
}

/// One stderr line per guest milestone, so a 10-minute run shows it is alive.
fn show_progress(prefix: &str, line: &str) {
    let Some(rest) = line.strip_prefix(MARK) else {
        if line.starts_with("test result:") {
            eprintln!("[vmtest {prefix}] {line}");
        }
        return;
    };
    if rest.starts_with("BEGIN") || rest.starts_with("END") || rest.starts_with("WARN") {
        eprintln!("[vmtest {prefix}] {rest}");
    }
}

/// TCG unless VMTEST_ACCEL asks for KVM, or for a probe that finds KVM working.
pub(crate) fn choose_accel(probe: impl FnOnce() -> Result<bool>) -> Result<Accel> {
    match std::env::var("VMTEST_ACCEL").as_deref() {
        Err(_) | Ok("") | Ok("tcg") => Ok(Accel::Tcg),
        Ok("kvm") => Ok(Accel::Kvm),
        Ok("auto") => {
            if !Path::new("/dev/kvm").exists() {
                return Ok(Accel::Tcg);
            }
            let works = probe()?;
            eprintln!(
                "[vmtest] KVM probe: {}",
                if works {
                    "works"
                } else {
                    "no answer, using TCG"
                }
            );
            Ok(if works { Accel::Kvm } else { Accel::Tcg })
        }
        Ok(other) => bail!("VMTEST_ACCEL={other}: expected tcg, kvm or auto"),
    }
}
