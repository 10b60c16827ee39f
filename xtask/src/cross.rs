//! Building for another architecture than this x86_64 host's: `cargo xtask
//! build --target aarch64` (and `dist`, `vmtest --arch arm64`).
//!
//! Rust's `aarch64-unknown-linux-gnu` standard library comes from rustup,
//! the linker from Debian's `gcc-aarch64-linux-gnu` (named in
//! .cargo/config.toml, so plain `cargo build --target
//! aarch64-unknown-linux-gnu` works too) and the glibc to link against
//! from `libc6-dev-arm64-cross` (the compiler only recommends it, and
//! recommends are not installed: without it the link finds no `crti.o`). The eBPF object
//! needs nothing more: bytecode is the same on both, and `enforcer/build.rs`
//! (aya-build) builds it with `bpf_target_arch` set to the architecture the
//! binary is built for, which picks the kernel side's per-architecture code.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::setup::{apt_install, status};
use crate::workspace::workspace_root;

/// A target other than the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    /// 64-bit ARM (arm64) Linux, glibc.
    #[value(alias = "arm64")]
    Aarch64,
}

impl Target {
    pub(crate) fn triple(self) -> &'static str {
        match self {
            Target::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// As `uname -m` says it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Target::Aarch64 => "aarch64",
        }
    }

    /// Debian's cross compiler for the target (the linker), and the C
    /// library it links against.
    fn cross_packages(self) -> [&'static str; 2] {
        match self {
            Target::Aarch64 => ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"],
        }
    }
}

/// target/TRIPLE/PROFILE, or target/PROFILE for the host.
pub(crate) fn profile_dir(target: Option<Target>, release: bool) -> PathBuf {
    let mut dir = workspace_root().join("target");
    if let Some(t) = target {
        dir.push(t.triple());
    }
    dir.push(if release { "release" } else { "debug" });
    dir
}

/// The Rust standard library for `target` and Debian's cross linker.
pub(crate) fn ensure(target: Target) -> Result<()> {
    let packages = target.cross_packages();
    apt_install(&packages).with_context(|| {
        format!(
            "the {} linker and C library are Debian's {}",
            target.name(),
            packages.join(" and ")
        )
    })?;
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add Rust's standard library for the target")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == target.triple())
    {
        return Ok(());
    }
    eprintln!("[setup] rustup target add {}", target.triple());
    status(Command::new("rustup").args(["target", "add", target.triple()]))
        .with_context(|| format!("could not add the {} target with rustup", target.triple()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README: the task installs Debian's `gcc-aarch64-linux-gnu` as the
    /// linker, named in `.cargo/config.toml` for the triple it builds, and
    /// glibc's arm64 development files (a fresh machine had the compiler
    /// but not `libc6-dev-arm64-cross`, which it only recommends: the link
    /// failed on `crti.o`).
    #[test]
    fn the_aarch64_linker_is_debians_and_named_for_the_triple_in_cargo_config() {
        assert_eq!(
            Target::Aarch64.cross_packages(),
            ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"]
        );
        assert_eq!(Target::Aarch64.name(), "aarch64");
        let config = std::fs::read_to_string(workspace_root().join(".cargo/config.toml"))
            .expect(".cargo/config.toml");
        let table: toml::Table = config.parse().expect(".cargo/config.toml parses");
        assert_eq!(
            table["target"][Target::Aarch64.triple()]["linker"].as_str(),
            Some("aarch64-linux-gnu-gcc"),
            "{config}"
        );
    }
}
