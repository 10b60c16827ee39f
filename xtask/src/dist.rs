//! `cargo xtask dist`: a release build laid out for installation, with the
//! man pages (clap_mangen, via `enforcer man --out-dir`), shell completions
//! (clap_complete), the systemd units, the default policy, the Kubernetes
//! manifests and dist/install.sh:
//!
//! ```text
//! target/dist/enforcer-VERSION/
//!   bin/enforcer
//!   share/man/man8/enforcer.8, enforcer-VERB.8
//!   share/bash-completion/completions/enforcer
//!   share/zsh/site-functions/_enforcer
//!   share/fish/vendor_completions.d/enforcer.fish
//!   share/doc/enforcer/README.md
//!   lib/systemd/system/enforcer.service, enforcer-groups.service
//!   etc/enforcer/policy.toml        (dist/policy.toml: starts on every kernel)
//!   examples/policy.toml            (every kind of rule; needs BPF-LSM)
//!   kubernetes/
//!   install.sh                      (PREFIX, SYSCONFDIR, UNITDIR, DESTDIR)
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cross::Target;
use crate::run::{enforcer_binary, enforcer_binary_for};
use crate::workspace::workspace_root;

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    Ok(())
}

fn write_output(cmd: &mut Command, to: &Path) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(to, out.stdout).with_context(|| format!("writing {}", to.display()))
}

/// The tree's directory under target/dist: `enforcer-VERSION`, or
/// `enforcer-VERSION-ARCH` for another architecture.
pub(crate) fn dir_name(target: Option<Target>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match target {
        Some(t) => format!("enforcer-{version}-{}", t.name()),
        None => format!("enforcer-{version}"),
    }
}

/// The tree for the host's architecture, or for `target`'s (its binary;
/// man pages and completions from the host's, as they are the same).
pub(crate) fn run(target: Option<Target>) -> Result<PathBuf> {
    let out = workspace_root().join("target/dist").join(dir_name(target));
    layout(
        &enforcer_binary(true),
        &enforcer_binary_for(target, true),
        &out,
    )?;
    eprintln!("[dist] {}", out.display());
    Ok(out)
}

/// The release tree in `out` (replaced if it exists) around the enforcer
/// binary `bin`, built for the tree's architecture; `host_bin`, runnable
/// here, writes the man pages and completions. `cargo xtask dist` uses the
/// release build, the systemd guest of `cargo xtask vmtest` the debug build
/// its tests run.
pub(crate) fn layout(host_bin: &Path, bin: &Path, out: &Path) -> Result<()> {
    let root = workspace_root();
    if out.exists() {
        std::fs::remove_dir_all(out)?;
    }
    copy(bin, &out.join("bin/enforcer"))?;
    let man = out.join("share/man/man8");
    let st = Command::new(host_bin)
        .args(["man", "--out-dir"])
        .arg(&man)
        .status()?;
    if !st.success() {
        bail!("enforcer man --out-dir failed: {st}");
    }
    for (shell, path) in [
        ("bash", "share/bash-completion/completions/enforcer"),
        ("zsh", "share/zsh/site-functions/_enforcer"),
        ("fish", "share/fish/vendor_completions.d/enforcer.fish"),
    ] {
        write_output(
            Command::new(host_bin).args(["completions", shell]),
            &out.join(path),
        )?;
    }
    copy(
        &root.join("README.md"),
        &out.join("share/doc/enforcer/README.md"),
    )?;
    for unit in ["enforcer.service", "enforcer-groups.service"] {
        copy(
            &root.join("dist").join(unit),
            &out.join("lib/systemd/system").join(unit),
        )?;
    }
    copy(
        &root.join("dist/policy.toml"),
        &out.join("etc/enforcer/policy.toml"),
    )?;
    copy(
        &root.join("examples/policy.toml"),
        &out.join("examples/policy.toml"),
    )?;
    for e in std::fs::read_dir(root.join("dist/kubernetes"))? {
        let e = e?;
        copy(&e.path(), &out.join("kubernetes").join(e.file_name()))?;
    }
    let install = out.join("install.sh");
    copy(&root.join("dist/install.sh"), &install)?;
    std::fs::set_permissions(
        &install,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    Ok(())
}
