//! Builds the kernel-side programs (`enforcer-ebpf`) and leaves the object at
//! `$OUT_DIR/enforcer-ebpf`, which `src/bpf` embeds with `include_bytes_aligned!`.
//!
//! `aya_build::build_ebpf` runs `rustup run nightly cargo build --package
//! enforcer-ebpf --release --target bpfel-unknown-none -Z build-std=core` with its
//! own `--target-dir` under `$OUT_DIR`. aya-build 0.2.0 does not pass a
//! `--manifest-path`, so that cargo finds the package from its working directory
//! (this package's, where cargo runs build scripts): `enforcer-ebpf` is a member
//! of the same workspace, so it is found by name.
//!
//! The release profile of that build is set here, through cargo's
//! `CARGO_PROFILE_RELEASE_*` variables, for the inner cargo only: in a workspace
//! only the root manifest's profiles count, and `panic` cannot be set per package
//! there without also changing the userspace binary.

use std::env;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use aya_build::{Package, Toolchain};

const EBPF_PACKAGE: &str = "enforcer-ebpf";
/// The `[[bin]]` name in enforcer-ebpf/Cargo.toml; aya-build copies it to `$OUT_DIR`.
const OBJECT_NAME: &str = "enforcer-ebpf";
/// The release profile of the eBPF build (see the module docs): what
/// enforcer-ebpf/Cargo.toml held while it was a workspace of its own. BTF for the
/// loader comes from DWARF (bpf-linker --btf), hence full debug info and no strip.
const EBPF_PROFILE: [(&str, &str); 5] = [
    ("CARGO_PROFILE_RELEASE_PANIC", "abort"),
    ("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3"),
    ("CARGO_PROFILE_RELEASE_DEBUG", "2"),
    ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1"),
    ("CARGO_PROFILE_RELEASE_STRIP", "false"),
];
const SETUP_HINT: &str = "run `cargo xtask setup` (installs nightly + rust-src, \
    llvm-dev and bpf-linker; see shared/HOST.md)";

fn main() -> Result<()> {
    let manifest_dir = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| anyhow!("CARGO_MANIFEST_DIR not set"))?,
    );
    let root = manifest_dir
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", manifest_dir.display()))?;
    let ebpf_dir = root.join(EBPF_PACKAGE);
    let common_dir = root.join("enforcer-common");

    // Rebuild the object when the kernel sources, the shared types, the
    // workspace's dependency versions and lints, or the toolchain-relevant
    // environment change.
    for path in [
        root.join("Cargo.toml"),
        root.join("Cargo.lock"),
        ebpf_dir.join("Cargo.toml"),
        ebpf_dir.join("src"),
        common_dir.join("Cargo.toml"),
        common_dir.join("src"),
    ] {
        println!("cargo:rerun-if-changed={}", path.display());
    }

    if skip_requested() {
        // aya-build builds nothing in this case; leave an empty object so the
        // userspace crate still compiles (e.g. for docs or clippy on a machine
        // without the eBPF toolchain). Loading it fails with a clear error.
        let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
        let object = out_dir.join(OBJECT_NAME);
        if !object.exists() {
            std::fs::write(&object, b"")
                .with_context(|| format!("writing placeholder {}", object.display()))?;
        }
        return aya_build::build_ebpf([], Toolchain::Nightly);
    }

    let linker = find_in_path("bpf-linker").ok_or_else(|| {
        anyhow!(
            "bpf-linker was not found on PATH; it links the eBPF object in {}. To fix it, {SETUP_HINT}. \
             If it is installed in ~/.cargo/bin, put that directory on PATH.",
            ebpf_dir.display()
        )
    })?;
    // Rebuild when bpf-linker is reinstalled (e.g. against another LLVM).
    println!("cargo:rerun-if-changed={}", linker.display());

    if !ebpf_dir.join("Cargo.toml").is_file() {
        bail!(
            "{} is missing: the eBPF crate must sit next to enforcer/",
            ebpf_dir.display()
        );
    }
    // aya-build relays the inner cargo's stderr as `cargo:warning` lines, so its
    // "Compiling ..." progress would show up as warnings on every rebuild. Quiet
    // only drops progress; errors still go to stderr and compiler diagnostics
    // arrive as JSON messages, both of which aya-build relays.
    // SAFETY: build scripts are single-threaded at this point; nothing else reads
    // or writes the environment concurrently.
    unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
    for (key, value) in EBPF_PROFILE {
        // SAFETY: as above.
        unsafe { env::set_var(key, value) };
    }

    let root_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow!("{} is not valid UTF-8", ebpf_dir.display()))?;
    // The benchmark-only programs go into the object only for `--features bench`.
    let features: &[&str] = if env::var_os("CARGO_FEATURE_BENCH").is_some() {
        &["bench"]
    } else {
        &[]
    };
    aya_build::build_ebpf(
        [Package {
            name: EBPF_PACKAGE,
            root_dir,
            features,
            ..Default::default()
        }],
        Toolchain::Nightly,
    )
    .with_context(|| {
        format!(
            "building the eBPF object ({EBPF_PACKAGE}) failed; compiler output is in the \
             warnings above. If the nightly toolchain, its rust-src component or bpf-linker \
             is missing or mismatched, {SETUP_HINT}"
        )
    })
}

fn skip_requested() -> bool {
    env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
