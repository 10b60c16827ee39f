//! `cargo xtask vmtest --guest systemd`: a Debian guest with systemd as PID 1,
//! for what only a real systemd can show (the unit as `install.sh` installs
//! it, `systemctl start/restart/stop/reload`, the journal) and for the
//! DaemonSet run under podman on a pure cgroup2 host.
//!
//! The root filesystem is built once from Debian's packages with mmdebstrap
//! (the host's release, so the host-built test executables find the same
//! libraries) and cached in target/vmtest/systemd/; the kernel's modules are
//! copied in and it becomes an ext4 image, booted read-write through a
//! snapshot so it stays as built. Each run's files (test executables, the
//! binaries, `cargo xtask dist`'s tree around the debug build, the test
//! service) travel in a small initramfs whose /init mounts the image,
//! copies them in and hands over to systemd; `vmtest.service` runs the tests
//! once the guest reached multi-user.target and prints the same console
//! markers as the busybox guest (see guest_init.rs and report.rs).

use std::collections::hash_map::DefaultHasher;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::guest_init::{MARK, RUN_TEST, sh_quote};
use super::initramfs::Tree;
use super::kernels::Kernel;
use super::payload::{self, TestExe};
use crate::setup::{apt_install, status};

/// The test executables this guest runs unless others are named.
pub(crate) const TESTS: &[&str] = &["systemd_unit", "daemonset"];

/// Where the test executables find the `cargo xtask dist` tree in the guest
/// (`ENFORCER_TEST_DIST`).
const DIST: &str = "/vmtest/dist";

/// Debian packages of the guest besides the minimal base: systemd as init,
/// podman with both OCI runtimes and CNI networking for the DaemonSet,
/// Prometheus (and promtool) to scrape it.
const PACKAGES: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "kmod",
    "iproute2",
    "procps",
    "podman",
    "crun",
    "runc",
    "conmon",
    "containernetworking-plugins",
    "iptables",
    "prometheus",
];

/// Units that would only slow the guest down or write to its consoles: the
/// packaged Prometheus (the tests start their own), gettys (agetty hangs up
/// the serial console the tests print to, ttyS0, and would claim the
/// kernel's, ttyS1), timers that would run apt or fstrim.
const MASKED: &[&str] = &[
    "prometheus.service",
    "serial-getty@ttyS0.service",
    "serial-getty@ttyS1.service",
    "getty@tty1.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "podman-auto-update.timer",
];

/// What the guest's image leaves out: documentation, translations and
/// Prometheus's web console libraries (the tests use its API only).
const EXCLUDED: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/javascript/*",
];

/// Modules the initramfs loads to find the root image.
const BOOT_MODULES: &[&str] = &[
    "kernel/drivers/virtio/virtio_pci",
    "kernel/drivers/block/virtio_blk",
];

/// Bump when the way the root filesystem is made changes.
const ROOTFS_VERSION: u32 = 1;

fn key_of(h: impl Hash) -> String {
    let mut s = DefaultHasher::new();
    h.hash(&mut s);
    format!("{:016x}", s.finish())
}

/// The host's Debian release (`VERSION_CODENAME`): the guest's packages
/// must offer the libraries the host-built executables were linked against.
fn suite() -> Result<String> {
    let text = std::fs::read_to_string("/etc/os-release").context("reading /etc/os-release")?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
        .context("/etc/os-release names no VERSION_CODENAME: the systemd guest needs a Debian host")
}

/// What the root filesystem is made of: changes when the packages or the
/// way it is configured do.
fn rootfs_key() -> Result<String> {
    Ok(key_of((
        ROOTFS_VERSION,
        suite()?,
        PACKAGES,
        MASKED,
        EXCLUDED,
    )))
}

/// The root filesystem directory, built with mmdebstrap.
fn rootfs(dir: &Path) -> Result<PathBuf> {
    let suite = suite()?;
    let root = dir.join("rootfs");
    apt_install(&["mmdebstrap", "e2fsprogs"])?;
    let tmp = dir.join("rootfs.tmp");
    for d in [&tmp, &root] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
    }
    eprintln!(
        "[vmtest] building the systemd guest's root filesystem (Debian {suite}, mmdebstrap; about two minutes, cached)"
    );
    let mut cmd = Command::new("mmdebstrap");
    cmd.args(["--variant=minbase", "--quiet"])
        .arg(format!("--include={}", PACKAGES.join(",")));
    for e in EXCLUDED {
        cmd.arg(format!("--dpkgopt=path-exclude={e}"));
    }
    cmd.arg(&suite).arg(&tmp);
    status(&mut cmd).context("mmdebstrap could not build the guest's root filesystem")?;
    configure(&tmp)?;
    std::fs::rename(&tmp, &root)?;
    Ok(root)
}

/// A fixed machine id (no first-boot preset run), a name, and the masks.
fn configure(root: &Path) -> Result<()> {
    std::fs::write(
        root.join("etc/machine-id"),
        "5ce3b0bd6a1c4a0f9a3c2d7e8f901234\n",
    )?;
    std::fs::write(root.join("etc/hostname"), "enforcer-guest\n")?;
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost enforcer-guest\n::1 localhost\n",
    )?;
    let units = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units)?;
    for u in MASKED {
        let link = units.join(u);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/null", &link)?;
    }
    Ok(())
}

/// The ext4 image of the root filesystem with `kernel`'s modules, rebuilt
/// when either changes. Only the image is kept (the machine's disk is
/// shared): the root filesystem directory is removed once it is made.
pub(crate) fn image(dir: &Path, kernel: &Kernel) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let label = &kernel.label;
    let img = dir.join(format!("root-{label}.ext4"));
    let key_file = img.with_extension("key");
    let key = key_of((rootfs_key()?, &kernel.release));
    if img.exists() && std::fs::read_to_string(&key_file).ok().as_deref() == Some(&key) {
        return Ok(img);
    }
    let _ = std::fs::remove_file(&key_file);
    let _ = std::fs::remove_file(&img);
    let root = rootfs(dir)?;
    if let Some(release) = &kernel.release {
        let modules = root.join("lib/modules").join(release);
        let host = Path::new("/lib/modules").join(release);
        if !modules.exists() && host.exists() {
            std::fs::create_dir_all(root.join("lib/modules"))?;
            status(Command::new("cp").arg("-a").arg(&host).arg(&modules))
                .context("copying the kernel's modules into the guest")?;
        }
    }
    // Sparse: only what the root filesystem holds takes space; the rest is
    // room for podman's images and Prometheus's data in the guest.
    status(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "enforcer-guest", "-d"])
            .arg(&root)
            .arg(&img)
            .arg("4G"),
    )
    .context("mkfs.ext4 could not make the guest's root image")?;
    std::fs::remove_dir_all(&root)?;
    std::fs::write(&key_file, key)?;
    Ok(img)
}

/// The initramfs's /init: mount the image, copy this run's files in, start
/// systemd.
fn init_script() -> String {
    format!(
        r#"#!/bin/sh
# Generated by `cargo xtask vmtest --guest systemd` (xtask/src/vmtest/systemd.rs).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
modprobe virtio_pci && modprobe virtio_blk || echo "{MARK}WARN could not load the virtio modules"
i=0
while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /newroot
if ! mount -t ext4 /dev/vda /newroot; then
    echo "{MARK}WARN the root image is not on /dev/vda"
    poweroff -f
fi
cp -a /payload/. /newroot/
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /lib/systemd/systemd
"#
    )
}

/// The service that runs the tests once the guest is up.
const SERVICE: &str = "[Unit]
Description=cargo xtask vmtest: the deployment tests
After=multi-user.target

[Service]
# exec, not oneshot: the boot is finished (systemd-analyze can tell) while the tests run.
Type=exec
ExecStart=/bin/sh /vmtest/run.sh
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no
TTYVTDisallocate=no

[Install]
WantedBy=multi-user.target
";

/// /vmtest/run.sh: the test executables one after another (each followed
/// by its skips), then power-off.
fn run_script(tests: &[TestExe]) -> String {
    let mut runs = String::new();
    for t in tests {
        let _ = writeln!(
            runs,
            "run_test {} {}",
            t.name,
            sh_quote(&t.path.to_string_lossy())
        );
    }
    format!(
        r#"#!/bin/sh
# Generated by `cargo xtask vmtest --guest systemd` (xtask/src/vmtest/systemd.rs).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
export ENFORCER_TEST_DIST={DIST}
say() {{ echo "{MARK}$*"; }}
. /vmtest/config.sh
say "INFO kernel $(uname -r)"
say "INFO cmdline $(cat /proc/cmdline)"
say "INFO $(systemctl --version | head -n 1)"
say "INFO $(systemd-analyze time 2>&1 | head -n 1)"
grep -E ' - cgroup2? ' /proc/self/mountinfo | while read -r l; do say "INFO mount $l"; done
[ -f /sys/fs/cgroup/cgroup.subtree_control ] &&
    say "INFO subtree_control $(cat /sys/fs/cgroup/cgroup.subtree_control)"
systemctl --failed --plain --no-legend | while read -r l; do say "WARN failed unit at boot: $l"; done

{RUN_TEST}
{runs}
say_skips
# The kernel's messages are on the second serial port (target/vmtest/*.kernel.log).
say "DONE"
sync
systemctl poweroff --force --force
"#
    )
}

/// The kernel-independent initramfs: busybox, kmod and /init.
pub(crate) fn base_tree() -> Result<Tree> {
    let mut tree = Tree::default();
    tree.mirror_top_level_links(Path::new("/"));
    for d in ["/dev", "/proc", "/sys", "/newroot"] {
        tree.dir(d);
    }
    tree.char_dev("/dev/console", 5, 1);
    payload::add_kmod(&mut tree, &payload::Sysroot::Host)?;
    payload::add_busybox(&mut tree, &payload::Sysroot::Host)?;
    tree.bytes("/init", init_script(), 0o755);
    Ok(tree)
}

/// The modules /init loads, for `kernel`.
pub(crate) fn modules_tree(kernel: &Kernel) -> Result<Tree> {
    match &kernel.release {
        Some(release) => {
            payload::modules_tree(&kernel.modules_root, Path::new("/"), release, BOOT_MODULES)
        }
        None => Ok(Tree::default()),
    }
}

/// This run's files, below /payload (copied into the root by /init): the
/// test executables and binaries at their host paths, the dist tree, the
/// test service and its scripts. `config_sh` is guest_init's config.sh.
pub(crate) fn payload_tree(
    tests: &[TestExe],
    binaries: &[PathBuf],
    dist: &Path,
    config_sh: &str,
) -> Result<Tree> {
    let mut tree = Tree::default();
    let at = |p: &Path| Path::new("/payload").join(p.strip_prefix("/").unwrap_or(p));
    for exe in tests.iter().map(|t| &t.path).chain(binaries) {
        tree.file(&at(exe), exe, true)?;
    }
    add_dir(&mut tree, dist, &at(Path::new(DIST)))?;
    tree.bytes("/payload/vmtest/run.sh", run_script(tests), 0o755);
    tree.bytes("/payload/vmtest/config.sh", config_sh, 0o644);
    tree.bytes("/payload/etc/systemd/system/vmtest.service", SERVICE, 0o644);
    tree.symlink(
        Path::new("/payload/etc/systemd/system/multi-user.target.wants/vmtest.service"),
        Path::new("/etc/systemd/system/vmtest.service"),
    );
    Ok(tree)
}

/// Every file below host directory `host` at `guest`; binaries stripped.
fn add_dir(tree: &mut Tree, host: &Path, guest: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(host)
        .with_context(|| format!("reading {}", host.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for e in entries {
        let name = e.file_name().context("file name")?;
        if e.is_dir() {
            add_dir(tree, &e, &guest.join(name))?;
        } else {
            let strip = e.parent().is_some_and(|p| p.ends_with("bin"));
            tree.file(&guest.join(name), &e, strip)?;
        }
    }
    Ok(())
}

/// The kernel command line's systemd part for a cgroup layout.
pub(crate) fn layout_args(layout: super::Layout) -> &'static str {
    match layout {
        super::Layout::V2 => "",
        // systemd 252 mounts the v1 controllers plus cgroup2 at
        // /sys/fs/cgroup/unified (hybrid), or v1 alone.
        super::Layout::Hybrid => " systemd.unified_cgroup_hierarchy=0",
        super::Layout::V1 => {
            " systemd.unified_cgroup_hierarchy=0 systemd.legacy_systemd_cgroup_controller=1"
        }
    }
}

/// Whether every test executable named for this guest was built.
pub(crate) fn select(tests: Vec<TestExe>, only: &[String]) -> Result<Vec<TestExe>> {
    let wanted: Vec<&str> = if only.is_empty() {
        TESTS.to_vec()
    } else {
        only.iter().map(String::as_str).collect()
    };
    let picked: Vec<TestExe> = tests
        .into_iter()
        .filter(|t| wanted.contains(&t.name.as_str()))
        .collect();
    if picked.len() != wanted.len() {
        bail!("the systemd guest runs {wanted:?}, but cargo built only some of them");
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_script_runs_each_named_executable() {
        let s = run_script(&[TestExe {
            name: "systemd_unit".into(),
            path: "/x/it's".into(),
        }]);
        assert!(s.contains("run_test systemd_unit '/x/it'\\''s'\n"), "{s}");
        assert!(
            s.contains("export ENFORCER_TEST_DIST=/vmtest/dist\n"),
            "{s}"
        );
        assert!(s.ends_with("systemctl poweroff --force --force\n"), "{s}");
    }

    /// README: systemd is PID 1, the image holds systemd, podman with runc
    /// and crun, and Prometheus, and is booted through a snapshot (the
    /// tests in the guest fail rather than skip where any is missing).
    #[test]
    fn the_guest_boots_systemd_from_an_image_with_what_readme_lists() {
        let src = include_str!("systemd.rs");
        assert!(src.contains("exec switch_root /newroot /lib/systemd/systemd"));
        for package in ["systemd", "podman", "runc", "crun", "prometheus"] {
            assert!(
                PACKAGES.contains(&package),
                "{package} is not in the image's packages: {PACKAGES:?}"
            );
        }
        let qemu = include_str!("qemu.rs");
        assert!(qemu.contains("snapshot=on"));
    }
}
