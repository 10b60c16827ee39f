//! `cargo xtask vmtest` as README describes it: `--all` is both kernels with
//! each layout, a word after `--` naming a test file picks that file and the
//! other words are libtest's, `VMTEST_ACCEL` picks KVM, and `--arch` takes
//! `x86_64` or `arm64`.

use std::path::PathBuf;

use clap::Parser;

use super::payload::TestExe;
use super::qemu::{Accel, choose_accel};
use super::{Args, GuestArch, Layout, configs, split_args};
use crate::cross::Target;

#[derive(Parser)]
struct Cmd {
    #[command(flatten)]
    args: Args,
}

fn args(words: &[&str]) -> Args {
    Cmd::try_parse_from(std::iter::once("vmtest").chain(words.iter().copied()))
        .unwrap_or_else(|e| panic!("vmtest {words:?}: {e}"))
        .args
}

#[test]
fn all_runs_both_kernels_with_each_layout_and_file_names_select_files() {
    let all: Vec<(String, &str, bool)> = configs(&args(&["--all"]))
        .into_iter()
        .map(|c| (c.kernel, c.layout.name(), c.lsm))
        .collect();
    let want: Vec<(String, &str, bool)> = ["6.1", "6.12"]
        .into_iter()
        .flat_map(|k| {
            [("v2", true), ("v1", false), ("hybrid", false)].map(|(l, lsm)| (k.to_string(), l, lsm))
        })
        .collect();
    assert_eq!(all, want);
    let one = configs(&args(&[
        "--kernel", "6.12", "--layout", "hybrid", "--lsm", "off",
    ]));
    assert_eq!(one.len(), 1);
    assert!(one[0].kernel == "6.12" && one[0].layout == Layout::Hybrid && !one[0].lsm);
    for k in ["6.1", "6.12", "host", "/boot/vmlinuz-x"] {
        assert_eq!(configs(&args(&["--kernel", k]))[0].kernel, k);
    }
    assert!(Cmd::try_parse_from(["vmtest", "--all", "--kernel", "6.1"]).is_err());

    let tests: Vec<TestExe> = ["control_plane", "ebpf_egress", "agent"]
        .map(|n| TestExe {
            name: n.into(),
            path: PathBuf::from(n),
        })
        .into();
    let words = args(&["--", "control_plane", "ebpf_egress", "seed", "--nocapture"]).args;
    let (files, libtest) = split_args(&words, &tests);
    assert_eq!(files, ["control_plane", "ebpf_egress"]);
    assert_eq!(libtest, ["seed", "--nocapture"]);

    // SAFETY: no other test reads or writes VMTEST_ACCEL.
    unsafe { std::env::remove_var("VMTEST_ACCEL") };
    assert!(choose_accel(|| panic!("no probe without VMTEST_ACCEL")).unwrap() == Accel::Tcg);
    // SAFETY: as above.
    unsafe { std::env::set_var("VMTEST_ACCEL", "kvm") };
    let kvm = choose_accel(|| panic!("kvm is not probed")).unwrap() == Accel::Kvm;
    // SAFETY: as above.
    unsafe { std::env::remove_var("VMTEST_ACCEL") };
    assert!(kvm, "VMTEST_ACCEL=kvm asks for KVM");
}

#[test]
fn arch_takes_x86_64_or_arm64_and_arm64_cross_builds_for_aarch64() {
    let readme = std::fs::read_to_string(crate::workspace::workspace_root().join("README.md"))
        .expect("README.md");
    assert!(
        readme.contains("`cargo xtask vmtest [--arch x86_64|arm64]"),
        "README no longer shows vmtest's --arch"
    );
    assert_eq!(args(&[]).arch, GuestArch::X86_64, "x86_64 unless asked");
    for (word, want) in [
        ("x86_64", GuestArch::X86_64),
        ("arm64", GuestArch::Arm64),
        // The other names README uses for them.
        ("aarch64", GuestArch::Arm64),
        ("amd64", GuestArch::X86_64),
    ] {
        let a = args(&["--arch", word, "--kernel", "6.1", "--", "control_plane"]);
        assert_eq!(a.arch, want, "--arch {word}");
        assert_eq!(a.args, ["control_plane"], "--arch {word}");
    }
    assert_eq!(
        GuestArch::X86_64.target(),
        None,
        "x86_64 guests run the host's build"
    );
    assert_eq!(GuestArch::Arm64.target(), Some(Target::Aarch64));
    assert_eq!(args(&["--arch", "arm64", "--all"]).arch, GuestArch::Arm64);
    assert!(Cmd::try_parse_from(["vmtest", "--arch", "riscv64"]).is_err());
}
