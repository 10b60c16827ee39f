//! `cargo xtask setup`: make this machine able to build and run enforcer.
//!
//! Idempotent: each step first checks whether its piece is already there. The
//! recipe is the one verified in shared/HOST.md: nightly with rust-src, the Debian
//! `llvm-N-dev` whose major equals nightly rustc's LLVM major, bpf-linker built
//! against that LLVM, and bpffs mounted at /sys/fs/bpf.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub(crate) const NIGHTLY: &str = "nightly";

pub(crate) fn run() -> Result<()> {
    ensure_nightly()?;
    ensure_rust_src()?;
    let major = nightly_llvm_major()?;
    ensure_bpf_linker(major)?;
    ensure_bpffs()?;
    // The kernel tests (enforce_kernel) observe packet priorities with nft;
    // the compat tests compare against libcgroup's own tools; the `top`
    // tests drive it in tmux; the deployment tests run the DaemonSet under
    // podman with both OCI runtimes and scrape it with Debian's Prometheus
    // (daemonset.rs), strip the image's binary (binutils), and ask
    // systemd-analyze about the unit (fleet.rs); promtool (Debian's
    // prometheus) checks the metrics' text format and
    // python3-prometheus-client's strict parser OpenMetrics; the container
    // tests build their images from busybox-static.
    apt_install(&[
        "nftables",
        "cgroup-tools",
        "tmux",
        "podman",
        "runc",
        "crun",
        "prometheus",
        "python3-prometheus-client",
        "busybox-static",
        "systemd",
        "binutils",
    ])?;
    Ok(())
}

/// kubernetes-validate (PyPI), for the manifests' schema test (fleet.rs),
/// in a virtualenv under target/tools/: its executable. Pinned, so a run
/// validates against a known set of Kubernetes versions (1.37.0 knows 1.25
/// to 1.37); raise the pin for newer ones.
pub(crate) fn kubernetes_validate() -> Result<PathBuf> {
    const PACKAGE: &str = "kubernetes-validate==1.37.0";
    let venv = crate::workspace::workspace_root().join("target/tools/kubernetes-validate");
    let bin = venv.join("bin/kubernetes-validate");
    let stamp = venv.join("installed");
    if bin.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(PACKAGE) {
        return Ok(bin);
    }
    apt_install(&["python3-venv"])?;
    step(&format!("pip install {PACKAGE} into {}", venv.display()));
    if venv.exists() {
        std::fs::remove_dir_all(&venv)?;
    }
    status(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .context("could not make a Python virtualenv (python3-venv)")?;
    status(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        PACKAGE,
    ]))
    .with_context(|| format!("could not install {PACKAGE} from PyPI"))?;
    std::fs::write(&stamp, PACKAGE)?;
    Ok(bin)
}

fn step(msg: &str) {
    eprintln!("[setup] {msg}");
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn status(cmd: &mut Command) -> Result<()> {
    let st = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

pub(crate) fn ensure_nightly() -> Result<()> {
    let list = output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is required to manage the nightly toolchain")?;
    if list.lines().any(|l| l.starts_with(NIGHTLY)) {
        return Ok(());
    }
    step("installing the nightly toolchain (needed for -Z build-std on bpfel-unknown-none)");
    status(Command::new("rustup").args(["toolchain", "install", NIGHTLY, "--profile", "minimal"]))
        .context("could not install the nightly toolchain with rustup")
}

fn ensure_rust_src() -> Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        NIGHTLY,
    ]))?;
    if installed.lines().any(|l| l.starts_with("rust-src")) {
        return Ok(());
    }
    step("adding rust-src to nightly (build-std needs core's source)");
    status(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
        .context("could not add rust-src to the nightly toolchain")
}

/// bpf-linker must use the same LLVM major as the rustc that emits the bitcode.
fn nightly_llvm_major() -> Result<u32> {
    let vv = output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "-vV"]))?;
    parse_llvm_major(&vv).context("`rustc +nightly -vV` printed no `LLVM version:` line")
}

fn parse_llvm_major(vv: &str) -> Option<u32> {
    let ver = vv.lines().find_map(|l| l.strip_prefix("LLVM version: "))?;
    ver.trim().split('.').next()?.parse().ok()
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

/// Which `llvm-N` feature the installed bpf-linker was built with, read from cargo's
/// own install record (bpf-linker does not print its LLVM version).
fn installed_bpf_linker_llvm() -> Option<u32> {
    let text = std::fs::read_to_string(cargo_home().join(".crates2.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let installs = json.get("installs")?.as_object()?;
    let (_, info) = installs
        .iter()
        .find(|(k, _)| k.starts_with("bpf-linker "))?;
    info.get("features")?
        .as_array()?
        .iter()
        .filter_map(|f| f.as_str()?.strip_prefix("llvm-")?.parse().ok())
        .next()
}

fn bpf_linker_runs() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn dpkg_installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

pub(crate) fn apt_install(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| !dpkg_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!("apt-get install {}", missing.join(" ")));
    status(Command::new("apt-get").arg("update").arg("-q")).context(
        "apt-get update failed; is this a Debian host with network access to its mirror?",
    )?;
    status(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .with_context(|| format!("could not install {}", missing.join(" ")))
}

fn ensure_bpf_linker(major: u32) -> Result<()> {
    let llvm_dev = format!("llvm-{major}-dev");
    let polly = format!("libpolly-{major}-dev");
    // bpf-linker links libLLVM dynamically, so the package must stay even when the
    // linker itself is already installed.
    apt_install(&[&llvm_dev, &polly]).with_context(|| {
        format!("bpf-linker needs LLVM {major} (the nightly rustc's LLVM major) from Debian's {llvm_dev}")
    })?;
    if installed_bpf_linker_llvm() == Some(major) && bpf_linker_runs() {
        return Ok(());
    }
    step(&format!(
        "cargo install bpf-linker against LLVM {major} (about a minute)"
    ));
    let prefix = format!("/usr/lib/llvm-{major}");
    let path = format!("{prefix}/bin:{}", std::env::var("PATH").unwrap_or_default());
    status(
        Command::new("cargo")
            .args([
                "install",
                "--force",
                "bpf-linker",
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ])
            .env("LLVM_PREFIX", &prefix)
            .env(format!("LLVM_SYS_{major}1_PREFIX"), &prefix)
            .env("PATH", path),
    )
    .with_context(|| format!("could not build bpf-linker with feature llvm-{major}"))?;
    if !bpf_linker_runs() {
        bail!(
            "bpf-linker was installed but `bpf-linker --version` fails; is ~/.cargo/bin on PATH?"
        );
    }
    Ok(())
}

fn bpffs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                let mut f = l.split(' ');
                let mount_point = f.nth(4);
                let fstype = l.split(" - ").nth(1).and_then(|r| r.split(' ').next());
                mount_point == Some("/sys/fs/bpf") && fstype == Some("bpf")
            })
        })
        .unwrap_or(false)
}

/// bpffs at /sys/fs/bpf, root-only (mode 0700, as systemd mounts it): the
/// kernel's default for a mount without options is 1777, where any user may
/// create directories next to enforcer's pins.
fn ensure_bpffs() -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if !bpffs_mounted() {
        step("mounting bpffs at /sys/fs/bpf, mode 0700 (pinned maps and links live there)");
        std::fs::create_dir_all("/sys/fs/bpf").ok();
        status(Command::new("mount").args(["-t", "bpf", "-o", "mode=0700", "bpf", "/sys/fs/bpf"]))
            .context("could not mount bpffs at /sys/fs/bpf; run as root")?;
    }
    let mode = std::fs::metadata("/sys/fs/bpf")
        .context("examining /sys/fs/bpf")?
        .permissions()
        .mode()
        & 0o7777;
    if mode != 0o700 {
        step(&format!(
            "bpffs at /sys/fs/bpf is mode {mode:04o}: making it root-only (0700)"
        ));
        std::fs::set_permissions("/sys/fs/bpf", std::fs::Permissions::from_mode(0o700))
            .context("could not chmod /sys/fs/bpf to 0700; run as root")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_llvm_major;

    #[test]
    fn llvm_major_from_rustc_vv() {
        let vv = "rustc 1.97.0-nightly\nhost: x86_64-unknown-linux-gnu\nLLVM version: 22.1.4\n";
        assert_eq!(parse_llvm_major(vv), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.0\n"), None);
    }
}
