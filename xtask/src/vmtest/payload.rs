//! What goes into the guest: the suite's test executables, the binaries they run,
//! the host tools they call, the shared libraries of each (at the paths `ldd`
//! names), busybox for everything else, and the kernel modules the tools load.
//!
//! Our binaries keep their host paths: the tests find `enforcer` next to their
//! own executable and the helper through a compile-time absolute path.
//!
//! The tools and libraries come from a [`Sysroot`]: this host for an x86_64
//! guest, Debian's arm64 packages (extracted, see arm64.rs) for an arm64 one.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::initramfs::Tree;

/// Where the guest's tools and shared libraries come from.
pub(crate) enum Sysroot {
    /// This host's, found by `ldd`.
    Host,
    /// A root filesystem of another architecture's packages: libraries found
    /// by their `DT_NEEDED` names (readelf) in its library directories.
    Foreign {
        root: PathBuf,
        /// Library directories, below `root`, in search order.
        lib_dirs: &'static [&'static str],
    },
}

impl Sysroot {
    /// The host file behind guest path `guest`.
    fn host_path(&self, guest: &Path) -> PathBuf {
        match self {
            Sysroot::Host => guest.to_path_buf(),
            Sysroot::Foreign { root, .. } => root.join(guest.strip_prefix("/").unwrap_or(guest)),
        }
    }

    /// The guest path of tool `name`, if the sysroot has it.
    pub(crate) fn which(&self, name: &str) -> Option<PathBuf> {
        match self {
            Sysroot::Host => which(name),
            Sysroot::Foreign { .. } => ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| self.host_path(p).exists()),
        }
    }

    /// The guest file `guest` (from the sysroot) and every library it loads.
    fn add_tool(&self, tree: &mut Tree, guest: &Path) -> Result<()> {
        self.add_with_libs(tree, guest, &self.host_path(guest), false)
    }

    /// Host file `host` at guest path `guest`, and every library it loads
    /// (from the sysroot), at the paths the loader looks for them.
    pub(crate) fn add_with_libs(
        &self,
        tree: &mut Tree,
        guest: &Path,
        host: &Path,
        strip: bool,
    ) -> Result<()> {
        tree.file(guest, host, strip)?;
        for lib in self.libs(host)? {
            if !tree.contains(&lib) {
                tree.file(&lib, &self.host_path(&lib), false)?;
            }
        }
        Ok(())
    }

    /// Guest paths of the libraries host file `host` loads, and theirs.
    fn libs(&self, host: &Path) -> Result<Vec<PathBuf>> {
        let Sysroot::Foreign { lib_dirs, .. } = self else {
            return ldd(host);
        };
        let mut found: Vec<PathBuf> = Vec::new();
        let mut todo = vec![host.to_path_buf()];
        while let Some(file) = todo.pop() {
            let (interp, needed) = elf_deps(&file)?;
            for guest in interp.into_iter().chain(needed.iter().map(|n| {
                lib_dirs
                    .iter()
                    .map(|d| Path::new(d).join(n))
                    .find(|p| self.host_path(p).exists())
                    .unwrap_or_else(|| PathBuf::from(n))
            })) {
                if !guest.is_absolute() || !self.host_path(&guest).exists() {
                    bail!(
                        "{}: needs {} which the guest's packages do not have",
                        file.display(),
                        guest.display()
                    );
                }
                if !found.contains(&guest) {
                    todo.push(self.host_path(&guest));
                    found.push(guest);
                }
            }
        }
        Ok(found)
    }

    /// busybox's applets, as `/bin/ls` paths.
    fn busybox_applets(&self, busybox: &Path) -> Result<Vec<String>> {
        // The guest's busybox may be of another architecture: the host's
        // (same Debian release, the same applets) answers for it.
        let runnable = match self {
            Sysroot::Host => busybox.to_path_buf(),
            Sysroot::Foreign { .. } => ["/bin/busybox", "/usr/bin/busybox"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .context(
                    "busybox is not installed on this host (apt-get install busybox-static)",
                )?,
        };
        let list = Command::new(&runnable)
            .arg("--list-full")
            .output()
            .context("busybox --list-full")?;
        Ok(String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(String::from)
            .collect())
    }
}

/// An ELF file's interpreter (guest path) and `DT_NEEDED` names, by
/// readelf (binutils reads every architecture's headers).
fn elf_deps(file: &Path) -> Result<(Option<PathBuf>, Vec<String>)> {
    let out = Command::new("readelf")
        .args(["--wide", "--program-headers", "--dynamic"])
        .arg(file)
        .output()
        .context("could not run readelf (binutils)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut interp = None;
    let mut needed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.split("[Requesting program interpreter: ").nth(1) {
            interp = rest.strip_suffix(']').map(PathBuf::from);
        } else if line.contains("(NEEDED)")
            && let Some(name) = line.split('[').nth(1).and_then(|r| r.strip_suffix(']'))
        {
            needed.push(name.to_string());
        }
    }
    Ok((interp, needed))
}

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
pub(crate) fn base_tree(
    sys: &Sysroot,
    tests: &[TestExe],
    binaries: &[PathBuf],
    init: &str,
) -> Result<Tree> {
    let mut tree = Tree::default();
    match sys {
        Sysroot::Host => tree.mirror_top_level_links(Path::new("/")),
        Sysroot::Foreign { root, .. } => tree.mirror_top_level_links(root),
    }
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
        let host = sys.host_path(Path::new(f));
        if host.exists() {
            tree.file(Path::new(f), &host, false)?;
        }
    }

    for t in tests {
        sys.add_with_libs(&mut tree, &t.path, &t.path, true)?;
    }
    for b in binaries {
        sys.add_with_libs(&mut tree, b, b, true)?;
    }
    for tool in TOOLS {
        let path = sys.which(tool).with_context(|| {
            format!("the tests run `{tool}`, which is not installed for the guest")
        })?;
        sys.add_tool(&mut tree, &path)?;
    }
    for tool in OPTIONAL_TOOLS {
        match sys.which(tool) {
            Some(path) => sys.add_tool(&mut tree, &path)?,
            None => eprintln!(
                "[vmtest] {tool} is not installed here (`cargo xtask setup` installs it): \
                 the guest runs without it"
            ),
        }
    }
    for data in OPTIONAL_DATA {
        add_tree(&mut tree, sys, Path::new(data))?;
    }
    add_kmod(&mut tree, sys)?;
    add_busybox(&mut tree, sys)?;
    tree.bytes("/init", init, 0o755);
    Ok(tree)
}

/// kmod's modprobe, so the kernel can load nf_tables & co. on demand
/// (busybox's modprobe cannot read Debian 6.12's .ko.xz modules).
pub(crate) fn add_kmod(tree: &mut Tree, sys: &Sysroot) -> Result<()> {
    let Some(kmod) = sys.which("kmod") else {
        // Installed with every Debian kernel package; without it, modules are not loaded.
        eprintln!("[vmtest] kmod not found: kernel modules will not be loadable in the guest");
        return Ok(());
    };
    sys.add_tool(tree, &kmod)?;
    for name in ["modprobe", "insmod", "rmmod", "lsmod", "modinfo", "depmod"] {
        tree.symlink(&Path::new("/sbin").join(name), &kmod);
    }
    Ok(())
}

/// busybox-static as /bin/sh and every applet it has, unless a real tool is there.
pub(crate) fn add_busybox(tree: &mut Tree, sys: &Sysroot) -> Result<()> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(Path::new)
        .find(|p| sys.host_path(p).exists())
        .context("busybox is not installed (apt-get install busybox-static)")?;
    let guest_busybox = tree.resolve(busybox);
    tree.file(&guest_busybox, &sys.host_path(busybox), false)?;
    for applet in sys.busybox_applets(&sys.host_path(busybox))? {
        let path = Path::new("/").join(applet);
        if !tree.contains(&path) {
            tree.symlink(&path, &guest_busybox);
        }
    }
    Ok(())
}

/// The sysroot's file or directory `path` (recursively) at the same guest
/// path; nothing if it is missing.
pub(crate) fn add_tree(tree: &mut Tree, sys: &Sysroot, path: &Path) -> Result<()> {
    let host = sys.host_path(path);
    if host.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&host)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            add_tree(tree, sys, &path.join(name))?;
        }
    } else if host.is_file() {
        tree.file(path, &host, false)?;
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

/// /lib/modules/RELEASE (below `root`, `/` for this host's kernels): the
/// index files and the modules whose paths start with one of `prefixes`
/// ([`MODULE_PREFIXES`] for the test guest), with their dependencies, at
/// /lib/modules/RELEASE in the guest, whose top-level links (merged /usr or
/// not) are those of `guest_root`. Empty if the kernel has no module
/// directory there.
pub(crate) fn modules_tree(
    root: &Path,
    guest_root: &Path,
    release: &str,
    prefixes: &[&str],
) -> Result<Tree> {
    let mut tree = Tree::default();
    let guest_dir = Path::new("/lib/modules").join(release);
    let dir = root.join("lib/modules").join(release);
    let Ok(dep) = std::fs::read_to_string(dir.join("modules.dep")) else {
        return Ok(tree);
    };
    tree.mirror_top_level_links(guest_root);
    for e in std::fs::read_dir(&dir)?.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with("modules.") && e.path().is_file() {
            tree.file(&guest_dir.join(&name), &e.path(), false)?;
        }
    }
    for module in module_closure(&dep, prefixes) {
        tree.file(&guest_dir.join(&module), &dir.join(&module), false)?;
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
