//! What goes into the guest: the suite's test executables, the binaries they run,
//! the host tools they call, the shared libraries of each (at the paths `ldd`
//! names), busybox for everything else, and the kernel modules the tools load.
//!
//! Our binaries keep their host paths: the tests find `enforcer` next to their
//! own executable and the helper through a compile-time absolute path.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::initramfs::Tree;

/// Host tools the tests run by name (see tests/tests/*.rs: `Command::new("nft")`,
/// `/usr/bin/flock`).
const TOOLS: &[&str] = &["nft", "flock"];

/// Host tools shipped when the host has them (`cargo xtask setup` installs
/// them); without one, the tests that need it say so: `bash` (pipelines,
/// `bash -n`), `tmux` (full-screen `top`), the shadow tools and procps's
/// `pkill` (the classification tests make users and groups, and change who
/// is a member with `gpasswd`).
///
/// libcgroup's own tools are not shipped, on purpose: the side-by-side
/// comparisons (tests/tests/compat.rs) pin libcgroup's output on v1
/// hierarchies, which is what the host suite runs on; in a guest they skip,
/// and the tests that only need a group made use enforcer's `cgcreate`.
const OPTIONAL_TOOLS: &[&str] = &[
    "bash", "tmux", "useradd", "groupadd", "userdel", "groupdel", "gpasswd", "pkill",
];

/// Host data the optional tools read, copied when present: terminal
/// descriptions and the C.UTF-8 locale for tmux (it refuses to start
/// without a UTF-8 locale), the shadow tools' defaults.
const OPTIONAL_DATA: &[&str] = &[
    "/lib/terminfo",
    "/usr/lib/locale/C.utf8",
    "/etc/login.defs",
    "/etc/default/useradd",
];

/// Modules needed by those tools on kernels that build them as modules (Debian's
/// nf_tables is `=m`); each with what it depends on, per modules.dep.
pub(crate) const MODULE_PREFIXES: &[&str] = &[
    "kernel/net/netfilter/nfnetlink",
    "kernel/net/netfilter/nf_tables",
    "kernel/net/netfilter/nft_",
    "kernel/net/ipv4/netfilter/nft_",
    "kernel/net/ipv6/netfilter/nft_",
];

/// A test executable as the guest runs it.
pub(crate) struct TestExe {
    /// The test target's name (`control_plane`), for the report.
    pub(crate) name: String,
    pub(crate) path: PathBuf,
}

/// The kernel-independent part of the guest: binaries, libraries, busybox, /etc.
pub(crate) fn base_tree(tests: &[TestExe], binaries: &[PathBuf], init: &str) -> Result<Tree> {
    let mut tree = Tree::default();
    tree.mirror_top_level_links();
    for d in [
        "/dev", "/proc", "/sys", "/tmp", "/run", "/root", "/etc", "/var/log", "/var/tmp",
    ] {
        tree.dir(d);
    }
    // The kernel opens /dev/console for init's stdio before init can mount devtmpfs.
    tree.char_dev("/dev/console", 5, 1);
    // Debian's /var/run is a link to /run (libcgroup's and enforcer's
    // `/var/run/cgred.socket` is there).
    tree.symlink(Path::new("/var/run"), Path::new("/run"));
    // Debian's accounts the tests use: root, and `nobody` for the
    // unprivileged side (named in enforcer's messages).
    tree.bytes(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        0o644,
    );
    tree.bytes("/etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644);
    tree.bytes(
        "/etc/shadow",
        "root:*:20000:0:99999:7:::\nnobody:*:20000:0:99999:7:::\n",
        0o640,
    );
    tree.bytes("/etc/gshadow", "root:*::\nnogroup:*::\n", 0o640);
    // nft resolves protocol and service names through these.
    for f in ["/etc/protocols", "/etc/services"] {
        if Path::new(f).exists() {
            tree.file(Path::new(f), Path::new(f), false)?;
        }
    }

    for t in tests {
        add_with_libs(&mut tree, &t.path, true)?;
    }
    for b in binaries {
        add_with_libs(&mut tree, b, true)?;
    }
    for tool in TOOLS {
        let path = which(tool).with_context(|| {
            format!("the tests run `{tool}`, which is not installed on this host")
        })?;
        add_with_libs(&mut tree, &path, false)?;
    }
    for tool in OPTIONAL_TOOLS {
        match which(tool) {
            Some(path) => add_with_libs(&mut tree, &path, false)?,
            None => eprintln!(
                "[vmtest] {tool} is not installed here (`cargo xtask setup` installs it): \
                 the guest runs without it"
            ),
        }
    }
    for data in OPTIONAL_DATA {
        add_tree(&mut tree, Path::new(data))?;
    }
    add_kmod(&mut tree)?;
    add_busybox(&mut tree)?;
    tree.bytes("/init", init, 0o755);
    Ok(tree)
}

/// kmod's modprobe, so the kernel can load nf_tables & co. on demand
/// (busybox's modprobe cannot read Debian 6.12's .ko.xz modules).
pub(crate) fn add_kmod(tree: &mut Tree) -> Result<()> {
    let Some(kmod) = which("kmod") else {
        // Installed with every Debian kernel package; without it, modules are not loaded.
        eprintln!("[vmtest] kmod not found: kernel modules will not be loadable in the guest");
        return Ok(());
    };
    add_with_libs(tree, &kmod, false)?;
    for name in ["modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"] {
        tree.symlink(&Path::new("/sbin").join(name), &kmod);
    }
    Ok(())
}

/// busybox-static as /bin/sh and every applet it has, unless a real tool is there.
pub(crate) fn add_busybox(tree: &mut Tree) -> Result<()> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .context("busybox is not installed (apt-get install busybox-static)")?;
    let guest_busybox = tree.resolve(busybox);
    tree.file(&guest_busybox, busybox, false)?;
    let list = Command::new(busybox)
        .arg("--list-full")
        .output()
        .context("busybox --list-full")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let path = Path::new("/").join(applet);
        if !tree.contains(&path) {
            tree.symlink(&path, &guest_busybox);
        }
    }
    Ok(())
}

/// The host file or directory `path` (recursively) at the same guest path;
/// nothing if it is missing.
pub(crate) fn add_tree(tree: &mut Tree, path: &Path) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for e in entries {
            add_tree(tree, &e)?;
        }
    } else if path.is_file() {
        tree.file(path, path, false)?;
    }
    Ok(())
}

/// `path` plus every shared library `ldd` says it loads, at the same paths.
fn add_with_libs(tree: &mut Tree, path: &Path, strip: bool) -> Result<()> {
    tree.file(path, path, strip)?;
    for lib in ldd(path)? {
        if !tree.contains(&lib) {
            tree.file(&lib, &lib, false)?;
        }
    }
    Ok(())
}

fn ldd(path: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(path)
        .output()
        .context("could not run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // A static binary (busybox-static) has no libraries to copy.
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.contains("not found") {
            bail!("{}: {line}", path.display());
        }
        // "libc.so.6 => /lib/.../libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let target = line.split_once("=>").map_or(line, |(_, t)| t.trim());
        let file = target.split(" (").next().unwrap_or("");
        if file.starts_with('/') {
            libs.push(PathBuf::from(file));
        }
    }
    Ok(libs)
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    // Root's tools (nft) live in sbin, which a user's PATH may lack.
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// /lib/modules/RELEASE: the index files and the modules whose paths start
/// with one of `prefixes` ([`MODULE_PREFIXES`] for the test guest), with their
/// dependencies. Empty if the kernel has no module directory on this host.
pub(crate) fn modules_tree(release: &str, prefixes: &[&str]) -> Result<Tree> {
    let mut tree = Tree::default();
    let dir = Path::new("/lib/modules").join(release);
    let Ok(dep) = std::fs::read_to_string(dir.join("modules.dep")) else {
        return Ok(tree);
    };
    tree.mirror_top_level_links();
    for e in std::fs::read_dir(&dir)?.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with("modules.") && e.path().is_file() {
            tree.file(&dir.join(&name), &e.path(), false)?;
        }
    }
    for module in module_closure(&dep, prefixes) {
        let path = dir.join(&module);
        tree.file(&path, &path, false)?;
    }
    Ok(tree)
}

/// Modules whose path starts with one of `prefixes`, and everything they need.
fn module_closure(dep: &str, prefixes: &[&str]) -> Vec<String> {
    let deps: std::collections::HashMap<&str, Vec<&str>> = dep
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| (m, d.split_whitespace().collect()))
        .collect();
    let mut todo: Vec<&str> = deps
        .keys()
        .copied()
        .filter(|m| prefixes.iter().any(|p| m.starts_with(p)))
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(m) = todo.pop() {
        if seen.insert(m) {
            todo.extend(deps.get(m).into_iter().flatten().copied());
        }
    }
    seen.into_iter().map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_closure_follows_dependencies() {
        let dep = "kernel/net/netfilter/nft_ct.ko: kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko\n\
                   kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko\n\
                   kernel/lib/libcrc32c.ko:\n\
                   kernel/drivers/other.ko:\n";
        let got = module_closure(dep, &["kernel/net/netfilter/nft_"]);
        assert_eq!(
            got,
            [
                "kernel/lib/libcrc32c.ko",
                "kernel/net/netfilter/nf_conntrack.ko",
                "kernel/net/netfilter/nft_ct.ko"
            ]
        );
    }
}
