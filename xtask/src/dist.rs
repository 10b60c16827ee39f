//! `cargo xtask dist`: a release build laid out for installation, with the
//! man pages (clap_mangen, via `enforcer man --out-dir`), shell completions
//! (clap_complete), the systemd unit, the Kubernetes manifests and an
//! install script:
//!
//! ```text
//! target/dist/enforcer-VERSION/
//!   bin/enforcer
//!   share/man/man8/enforcer.8, enforcer-VERB.8
//!   share/bash-completion/completions/enforcer
//!   share/zsh/site-functions/_enforcer
//!   share/fish/vendor_completions.d/enforcer.fish
//!   share/doc/enforcer/README.md
//!   lib/systemd/system/enforcer.service
//!   examples/policy.toml
//!   kubernetes/
//!   install.sh
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cross::Target;
use crate::run::{enforcer_binary, enforcer_binary_for, workspace_root};

const INSTALL: &str = r#"#!/bin/sh
# Installs this enforcer build under PREFIX (default /usr/local) and the
# systemd unit; run as root from this directory.
set -eu
PREFIX="${PREFIX:-/usr/local}"
install -D -m 0755 bin/enforcer "$PREFIX/sbin/enforcer"
install -d "$PREFIX/share/man/man8"
install -m 0644 share/man/man8/*.8 "$PREFIX/share/man/man8/"
install -D -m 0644 share/bash-completion/completions/enforcer "$PREFIX/share/bash-completion/completions/enforcer"
install -D -m 0644 share/zsh/site-functions/_enforcer "$PREFIX/share/zsh/site-functions/_enforcer"
install -D -m 0644 share/fish/vendor_completions.d/enforcer.fish "$PREFIX/share/fish/vendor_completions.d/enforcer.fish"
install -D -m 0644 share/doc/enforcer/README.md "$PREFIX/share/doc/enforcer/README.md"
[ -e /etc/enforcer/policy.toml ] || install -D -m 0644 examples/policy.toml /etc/enforcer/policy.toml
install -D -m 0644 lib/systemd/system/enforcer.service /etc/systemd/system/enforcer.service
command -v mandb >/dev/null && mandb -q || true
echo "installed; start with: systemctl daemon-reload && systemctl enable --now enforcer"
"#;

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

/// The tree for the host's architecture, or for `target`'s (its binary;
/// man pages and completions from the host's, as they are the same).
pub(crate) fn run(target: Option<Target>) -> Result<PathBuf> {
    let root = workspace_root();
    let bin = enforcer_binary(true);
    let version = env!("CARGO_PKG_VERSION");
    let name = match target {
        Some(t) => format!("enforcer-{version}-{}", t.name()),
        None => format!("enforcer-{version}"),
    };
    let out = root.join("target/dist").join(name);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    copy(
        &enforcer_binary_for(target, true),
        &out.join("bin/enforcer"),
    )?;
    let man = out.join("share/man/man8");
    let st = Command::new(&bin)
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
            Command::new(&bin).args(["completions", shell]),
            &out.join(path),
        )?;
    }
    copy(
        &root.join("README.md"),
        &out.join("share/doc/enforcer/README.md"),
    )?;
    copy(
        &root.join("dist/enforcer.service"),
        &out.join("lib/systemd/system/enforcer.service"),
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
    std::fs::write(&install, INSTALL)?;
    std::fs::set_permissions(
        &install,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    eprintln!("[dist] {}", out.display());
    Ok(out)
}
