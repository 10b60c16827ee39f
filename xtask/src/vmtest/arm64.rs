//! What an arm64 guest needs besides what every guest does
//! (`cargo xtask vmtest --arch arm64`): Debian's arm64 cloud kernel,
//! Debian's arm64 packages for the tools and libraries, and a 32-bit (arm32)
//! helper for the compat-syscall tests, all cached under target/vmtest/arm64/.
//!
//! Nothing is installed for arm64 on this host: the kernel package is
//! downloaded and extracted (`dpkg --add-architecture arm64` once, so apt
//! knows the arm64 archive), the userland is extracted from Debian's arm64
//! packages by mmdebstrap (`--variant=extract`: no maintainer scripts, so
//! nothing of arm64 runs here). The test executables and `enforcer` are
//! cross-built (crate::cross) and dynamically linked against Debian's arm64
//! glibc, which the guest gets from those packages.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::kernels::{Kernel, version_cmp};
use super::payload::Sysroot;
use crate::setup::{apt_install, status};
use crate::workspace::workspace_root;

/// Packages whose files the guest gets: the tools the tests run (see
/// payload.rs) and what they read; their dependencies come along.
const PACKAGES: &[&str] = &[
    "busybox-static",
    "nftables",
    "util-linux",
    "kmod",
    "bash",
    "tmux",
    "passwd",
    "login",
    "procps",
    "libc6",
    "libc-bin",
    "libgcc-s1",
    "ncurses-base",
    "netbase",
];

/// Where Debian's arm64 libraries are (bookworm's extracted packages are
/// not merged-/usr).
const LIB_DIRS: &[&str] = &[
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// The modules of the tests' console (a virtio console: the virt machine's
/// one PL011 UART carries the kernel's log); Debian builds them as modules.
pub(crate) const CONSOLE_MODULES: &[&str] = &[
    "kernel/drivers/virtio/virtio.",
    "kernel/drivers/virtio/virtio_ring.",
    "kernel/drivers/virtio/virtio_mmio.",
    "kernel/drivers/char/virtio_console.",
];

/// Where the guest finds the arm32 helper (`ENFORCER_TEST_COMPAT32`).
pub(crate) const COMPAT32_GUEST: &str = "/usr/local/libexec/enforcer-test-compat32";

fn dir() -> PathBuf {
    workspace_root().join("target/vmtest/arm64")
}

/// The guest's tools and libraries: Debian's arm64 packages, extracted.
pub(crate) fn sysroot() -> Result<Sysroot> {
    Ok(Sysroot::Foreign {
        root: rootfs()?,
        lib_dirs: LIB_DIRS,
    })
}

/// The extracted root, whose top-level layout the guest has.
pub(crate) fn guest_root() -> Result<PathBuf> {
    rootfs()
}

/// The extracted root, rebuilt when the package list changes.
fn rootfs() -> Result<PathBuf> {
    let root = dir().join("rootfs");
    let stamp = dir().join("rootfs.packages");
    let want = PACKAGES.join(",");
    if root.is_dir() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&want) {
        return Ok(root);
    }
    apt_install(&["mmdebstrap"])?;
    let tmp = dir().join("rootfs.tmp");
    for d in [&tmp, &root] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
    }
    std::fs::create_dir_all(dir())?;
    eprintln!("[vmtest] extracting Debian's arm64 packages for the guest (mmdebstrap, cached)");
    status(
        Command::new("mmdebstrap")
            .args(["--arch=arm64", "--variant=extract", "--quiet"])
            .arg(format!("--include={want}"))
            .arg(suite()?)
            .arg(&tmp),
    )
    .context("mmdebstrap could not extract Debian's arm64 packages")?;
    std::fs::rename(&tmp, &root)?;
    std::fs::write(&stamp, want)?;
    Ok(root)
}

/// This host's Debian release (the archive the arm64 packages come from).
fn suite() -> Result<String> {
    let text = std::fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .context("/etc/os-release has no VERSION_CODENAME")
}

/// Debian's meta-packages that point at each series' newest arm64 cloud kernel.
fn meta_package(series: &str) -> Option<&'static str> {
    match series {
        "6.1" => Some("linux-image-cloud-arm64"),
        "6.12" => Some("linux-image-6.12-cloud-arm64"),
        _ => None,
    }
}

/// `--kernel 6.1 | 6.12` for arm64: the series' newest Debian cloud kernel,
/// downloaded and extracted (not installed) with its modules indexed.
pub(crate) fn kernel(spec: &str) -> Result<Kernel> {
    let meta = meta_package(spec)
        .with_context(|| format!("--kernel {spec} with --arch arm64: expected 6.1 or 6.12"))?;
    ensure_arm64_archive()?;
    let pkg = concrete_package(spec, meta)?;
    let release = pkg
        .strip_prefix("linux-image-")
        .and_then(|r| r.strip_suffix("-unsigned").or(Some(r)))
        .context("unexpected kernel package name")?
        .to_string();
    let root = dir().join("kernels").join(&release);
    let image = root.join("boot").join(format!("vmlinuz-{release}"));
    let modules = root.join("lib/modules").join(&release);
    if !image.is_file() || !modules.join("modules.dep").is_file() {
        fetch(&pkg, &root)?;
        if !image.is_file() {
            bail!("{pkg} has no boot/vmlinuz-{release}");
        }
        // The package's postinst would index the modules; it is not run.
        status(Command::new("depmod").arg("-b").arg(&root).arg(&release))
            .context("depmod (kmod) could not index the arm64 kernel's modules")?;
    }
    Ok(Kernel {
        label: format!("arm64-{spec}"),
        image,
        release: Some(release),
        modules_root: root,
    })
}

/// apt knows the arm64 archive (`dpkg --add-architecture arm64` and an
/// update, once).
fn ensure_arm64_archive() -> Result<()> {
    let foreign = Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .context("dpkg")?;
    if String::from_utf8_lossy(&foreign.stdout)
        .lines()
        .any(|l| l.trim() == "arm64")
    {
        return Ok(());
    }
    eprintln!("[vmtest] dpkg --add-architecture arm64 (apt then knows Debian's arm64 packages)");
    status(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
    status(Command::new("apt-get").args(["update", "-q"]))
        .context("apt-get update after adding arm64 failed")
}

/// The versioned image package the meta-package depends on (its newest);
/// else the newest of the series apt knows.
fn concrete_package(series: &str, meta: &str) -> Result<String> {
    let out = Command::new("apt-cache")
        .args(["depends", &format!("{meta}:arm64")])
        .output()
        .context("apt-cache depends")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let from_meta = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|d| d.trim_end_matches(":arm64").to_string())
        .find(|d| d.starts_with("linux-image-") && d.ends_with("-cloud-arm64"));
    if let Some(p) = from_meta {
        return Ok(p);
    }
    let out = Command::new("apt-cache")
        .args(["search", "--names-only"])
        .arg(format!(
            "^linux-image-{}[.-].*-cloud-arm64(-unsigned)?$",
            series.replace('.', "\\.")
        ))
        .output()
        .context("apt-cache search")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .max_by(|a, b| version_cmp(a, b))
        .map(String::from)
        .with_context(|| format!("no Debian package provides an arm64 {series} cloud kernel"))
}

/// `apt-get download PKG:arm64` and `dpkg-deb -x` into `root`.
fn fetch(pkg: &str, root: &Path) -> Result<()> {
    let debs = dir().join("debs");
    std::fs::create_dir_all(&debs)?;
    eprintln!("[vmtest] apt-get download {pkg}:arm64 (extracted, not installed)");
    status(
        Command::new("apt-get")
            .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
            .arg(format!("{pkg}:arm64"))
            .current_dir(&debs),
    )
    .with_context(|| format!("could not download {pkg}:arm64"))?;
    let deb = std::fs::read_dir(&debs)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_")))
        })
        .with_context(|| format!("apt-get download left no {pkg}_*.deb"))?;
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    std::fs::create_dir_all(root)?;
    status(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root))
        .with_context(|| format!("could not extract {}", deb.display()))?;
    // The archive is not needed once extracted.
    let _ = std::fs::remove_file(&deb);
    Ok(())
}

/// The arm32 helper (tests/compat32/compat32.c), built static with Debian's
/// gcc-arm-linux-gnueabihf.
pub(crate) fn compat32() -> Result<PathBuf> {
    apt_install(&["gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross"])?;
    let src = workspace_root().join("tests/compat32/compat32.c");
    let out = dir().join("enforcer-test-compat32");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&out).is_some() && modified(&out) >= modified(&src) {
        // Unchanged: the base archive that holds it stays cached.
        return Ok(out);
    }
    std::fs::create_dir_all(dir())?;
    status(
        Command::new("arm-linux-gnueabihf-gcc")
            .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(&src),
    )
    .with_context(|| format!("could not build {}", src.display()))?;
    Ok(out)
}
