//! What README says about the developer tasks, checked: the commands it shows
//! parse, CI runs the lints and the VM row it names, the fuzz targets are the
//! four it lists, and the kernel crate denies what it says.

use clap::Parser as _;

use crate::workspace::workspace_root;
use crate::{Cli, Task};

fn parse(args: &[&str]) -> Task {
    Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("`cargo xtask {}`: {e}", args.join(" ")))
        .task
}

#[test]
fn build_and_run_passes_what_follows_the_dashes_and_the_benches_readme_names_exist() {
    match parse(&["build-and-run", "--", "list"]) {
        Task::BuildAndRun { args, release } => {
            assert_eq!((args, release), (vec!["list".to_string()], false));
        }
        _ => panic!("build-and-run parsed as another task"),
    }
    for bench in [
        "control-plane",
        "accounting",
        "enforcement",
        "classify",
        "priority",
    ] {
        assert!(
            matches!(parse(&["bench", bench]), Task::Bench { .. }),
            "cargo xtask bench {bench}"
        );
    }
}

#[test]
fn ci_runs_every_lint_readme_names_and_the_6_1_v2_lsm_row() {
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).expect(".ci/run");
    let lines: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for cmd in [
        "cargo xtask test",
        "cargo fmt --all --check",
        "cargo clippy --workspace --all-targets -- -D warnings",
        "cargo clippy -p enforcer --features bench --all-targets -- -D warnings",
        "cargo clippy -p enforcer-ebpf --features bench --all-targets -- -D warnings",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(cmd)),
            ".ci/run does not run `{cmd}`:\n{ci}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("cargo xtask vmtest")
            && l.contains("--kernel 6.1")
            && l.contains("--layout v2")
            && l.contains("--lsm on")),
        ".ci/run does not run the 6.1 / v2 / LSM row:\n{ci}"
    );
}

#[test]
fn ci_runs_the_systemd_guest_on_6_1_pure_v2_without_bpf_lsm() {
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).expect(".ci/run");
    // The layout is the default (v2) unless the line names another.
    assert!(
        ci.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.contains("cargo xtask vmtest")
                && l.contains("--guest systemd")
                && l.contains("--kernel 6.1")
                && l.contains("--lsm off")
                && (!l.contains("--layout") || l.contains("--layout v2"))),
        ".ci/run does not run the systemd guest on 6.1 / v2 / LSM off:\n{ci}"
    );
}

#[test]
fn fuzz_targets_are_readmes_four_and_each_has_its_source() {
    let names: Vec<&str> = crate::fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    // The cgconfig.conf and TOML readers, a policy file's raw bytes, every
    // value parser.
    assert_eq!(names, ["cgconfig", "toml_policy", "policy_file", "values"]);
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, seeds) in crate::fuzz::TARGETS {
        let src = root.join(format!("fuzz/fuzz_targets/{name}.rs"));
        assert!(src.is_file(), "{} is missing", src.display());
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no target {name}"
        );
        for s in *seeds {
            assert!(root.join(s).is_dir(), "seed directory {s} of {name}");
        }
    }
    let values = std::fs::read_to_string(root.join("fuzz/fuzz_targets/values.rs")).unwrap();
    assert!(values.contains("enforcer::fuzzing::values"), "{values}");
}

#[test]
fn the_kernel_crate_denies_what_readme_says() {
    let src = std::fs::read_to_string(workspace_root().join("enforcer-ebpf/src/main.rs"))
        .expect("enforcer-ebpf/src/main.rs");
    let start = src
        .find("#![deny(")
        .expect("a crate-level deny in the kernel crate");
    let attr = &src[start..start + src[start..].find(")]").expect("its end")];
    for lint in [
        "clippy::indexing_slicing",
        "clippy::arithmetic_side_effects",
        "clippy::panic",
        "clippy::unwrap_used",
        "clippy::expect_used",
    ] {
        assert!(attr.contains(lint), "{lint} is not denied: {attr}");
    }
}

/// README's text with each run of whitespace made one space, so a command
/// wrapped over two lines reads as one.
fn readme_flat() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    readme.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn build_and_dist_take_readmes_aarch64_target_into_its_directory_and_triple() {
    use crate::cross::{Target, profile_dir};

    let readme = readme_flat();
    // "Other architectures" and the Architectures table's build row.
    for quoted in [
        "`cargo xtask build --target aarch64` (and `cargo xtask dist --target aarch64`, \
         into `target/dist/enforcer-VERSION-aarch64/`)",
        "| build | `cargo xtask build` | `cargo xtask build --target aarch64` \
         (cross-built here; `dist --target aarch64`) |",
        "Rust's `aarch64-unknown-linux-gnu` standard library",
    ] {
        assert!(readme.contains(quoted), "README no longer says {quoted}");
    }
    match parse(&["build"]) {
        Task::Build { target, release } => assert_eq!((target, release), (None, false)),
        _ => panic!("build parsed as another task"),
    }
    for arch in ["aarch64", "arm64"] {
        match parse(&["build", "--target", arch]) {
            Task::Build { target, release } => {
                assert_eq!((target, release), (Some(Target::Aarch64), false), "{arch}");
            }
            _ => panic!("build --target {arch} parsed as another task"),
        }
        match parse(&["dist", "--target", arch]) {
            Task::Dist { target } => assert_eq!(target, Some(Target::Aarch64), "{arch}"),
            _ => panic!("dist --target {arch} parsed as another task"),
        }
    }
    assert!(
        Cli::try_parse_from(["xtask", "build", "--target", "riscv64"]).is_err(),
        "a target README does not name is refused"
    );

    let version = env!("CARGO_PKG_VERSION");
    // README's `target/dist/enforcer-VERSION-aarch64/`, with the version.
    assert_eq!(
        format!(
            "target/dist/{}/",
            crate::dist::dir_name(Some(Target::Aarch64))
        ),
        format!("target/dist/enforcer-{version}-aarch64/")
    );
    assert_eq!(
        crate::dist::dir_name(None),
        format!("enforcer-{version}"),
        "the host's tree has no architecture suffix"
    );
    assert_eq!(Target::Aarch64.triple(), "aarch64-unknown-linux-gnu");
    assert!(
        profile_dir(Some(Target::Aarch64), false)
            .ends_with("target/aarch64-unknown-linux-gnu/debug"),
        "{}",
        profile_dir(Some(Target::Aarch64), false).display()
    );
    assert!(profile_dir(None, true).ends_with("target/release"));
}

#[test]
fn ci_cross_builds_the_aarch64_binary() {
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).expect(".ci/run");
    assert!(
        ci.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.starts_with("cargo xtask build") && l.contains("--target aarch64")),
        ".ci/run does not cross-build for aarch64 as README says:\n{ci}"
    );
}

/// README: CI runs the executables whose subject changes with the
/// architecture in the arm64 guest (arch, enforce_kernel, agent).
#[test]
fn ci_runs_the_architecture_tests_in_the_arm64_guest() {
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).expect(".ci/run");
    let step = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with("cargo xtask vmtest") && l.contains("--arch arm64"));
    let Some(step) = step else {
        panic!(".ci/run does not boot the arm64 guest as README says:\n{ci}");
    };
    let names: Vec<&str> = step
        .split_once(" -- ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    for exe in ["arch", "enforce_kernel", "agent"] {
        assert!(
            names.contains(&exe),
            "the arm64 step of .ci/run does not run {exe}: {step}"
        );
        assert!(
            workspace_root()
                .join(format!("tests/tests/{exe}.rs"))
                .is_file(),
            "{exe} is not a test executable"
        );
    }
}
