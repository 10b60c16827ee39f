//! What enforcer needs from the host, checked one by one with a fix for each
//! problem (the `status` verb's check list): bpffs for the pins, cgroup2 for
//! eBPF to tell groups apart, BTF and BPF-LSM for LSM deny rules, delegation
//! of the policy's parent group, and the capabilities to load programs; and
//! what differs per architecture (the syscall tables, the BPF JIT).

use std::path::Path;

use serde::Serialize;

use crate::arch::Arch;
use crate::bpf::{Feature, FeatureReport};
use crate::cgroup::{Cgroups, GroupPath};

/// One check.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// `bpffs`, `cgroup2`, `btf`, `bpf-lsm`, `delegation`, `capabilities`,
    /// `ebpf`, `arch`, `bpf-jit`, `policy-file`, `policy`.
    pub name: &'static str,
    pub ok: bool,
    /// Whether enforcer (or the policy given) cannot work without it: a
    /// needed check that fails makes `status` exit 1.
    pub needed: bool,
    /// What was found.
    pub detail: String,
    /// What to do, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &'static str, ok: bool, needed: bool, detail: String, fix: &str) -> Check {
    Check {
        name,
        ok,
        needed,
        detail,
        fix: (!ok).then(|| fix.to_string()),
    }
}

/// Capability bits the agent uses (linux/capability.h).
const CAPS: [(u32, &str); 5] = [
    (12, "CAP_NET_ADMIN"),
    (21, "CAP_SYS_ADMIN"),
    (38, "CAP_PERFMON"),
    (39, "CAP_BPF"),
    (5, "CAP_KILL"),
];

fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn capabilities() -> Check {
    let eff = effective_caps();
    let missing: Vec<&str> = CAPS
        .iter()
        .filter(|(bit, _)| eff & (1u64 << bit) == 0)
        .map(|(_, n)| *n)
        .collect();
    check(
        "capabilities",
        missing.is_empty(),
        true,
        if missing.is_empty() {
            "CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_KILL are effective".into()
        } else {
            format!("missing {}", missing.join(", "))
        },
        "run enforcer as root, or grant these capabilities (dist/kubernetes/daemonset.yaml lists them in its securityContext)",
    )
}

/// The bpf mount that holds `pin_dir`, and its mode.
fn bpffs_for(pin_dir: &Path) -> Option<(String, u32)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<String> = None;
    for l in info.lines() {
        let mount = l.split(' ').nth(4)?;
        let fstype = l.split(" - ").nth(1).and_then(|r| r.split(' ').next());
        if fstype == Some("bpf")
            && pin_dir.starts_with(mount)
            && best.as_ref().is_none_or(|b| mount.len() > b.len())
        {
            best = Some(mount.to_string());
        }
    }
    let m = best?;
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&m).ok()?.permissions());
    Some((m, mode & 0o7777))
}

fn bpffs(pin_dir: &Path) -> Check {
    match bpffs_for(pin_dir) {
        Some((m, mode)) if mode & 0o002 == 0 || mode & 0o1000 != 0 => check(
            "bpffs",
            true,
            true,
            format!(
                "{} is on bpffs mounted at {m} (mode {mode:04o})",
                pin_dir.display()
            ),
            "",
        ),
        Some((m, mode)) => check(
            "bpffs",
            false,
            true,
            format!("bpffs at {m} is mode {mode:04o}: any user may create pins there"),
            &format!("chmod 0700 {m} (or mount it with -o mode=0700, as systemd does)"),
        ),
        None => check(
            "bpffs",
            false,
            true,
            format!(
                "no bpffs holds {}: pinned maps and links cannot be kept",
                pin_dir.display()
            ),
            "mount -t bpf -o mode=0700 bpf /sys/fs/bpf (as systemd and cargo xtask setup do)",
        ),
    }
}

fn cgroup2(cg: &Cgroups) -> Check {
    match cg.v2() {
        Some(v2) => check(
            "cgroup2",
            true,
            true,
            format!(
                "{} layout, cgroup2 at {}",
                cg.layout(),
                cg.hierarchy(v2).mount_point.display()
            ),
            "",
        ),
        None => check(
            "cgroup2",
            false,
            true,
            format!(
                "{} layout without a cgroup2 mount: eBPF cannot tell groups apart",
                cg.layout()
            ),
            "mount -t cgroup2 none /sys/fs/cgroup/unified (systemd: boot with systemd.unified_cgroup_hierarchy=1 or the hybrid default)",
        ),
    }
}

fn btf(needed: bool) -> Check {
    let ok = Path::new("/sys/kernel/btf/vmlinux").exists();
    check(
        "btf",
        ok,
        needed,
        if ok {
            "/sys/kernel/btf/vmlinux is there".into()
        } else {
            "/sys/kernel/btf/vmlinux is missing: BPF-LSM programs cannot be loaded".into()
        },
        "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution's is)",
    )
}

/// The node's architecture and what depends on it (informational).
fn architecture(arch: Arch) -> Check {
    let trampolines = match arch {
        Arch::X86_64 => "",
        // arm64 has BPF trampolines from 6.0, but attaching one to a kernel
        // function (fentry, LSM programs) needs ftrace direct calls, which
        // arm64 got in 6.5: Debian 12's 6.1 loads LSM programs and refuses
        // the attach (ENOTSUPP).
        Arch::Aarch64 => {
            "; BPF-LSM programs need BPF trampolines, which arm64 kernels have from Linux 6.5"
        }
    };
    check(
        "arch",
        true,
        false,
        format!(
            "{arch}: policy syscall names and counts use the {arch} table; 32-bit ({compat}) \
             tasks' calls are counted as {compat}:NAME and matched by their {compat} numbers{trampolines}",
            compat = arch.compat_name()
        ),
        "",
    )
}

/// The BPF JIT (`net.core.bpf_jit_enable`: 0 off, 1 on, 2 on with debug
/// output); `None` when the file cannot be read.
fn bpf_jit(setting: Option<&str>) -> Check {
    let (ok, detail) = match setting.map(str::trim) {
        Some("1") => (true, "on: programs run as native code".to_string()),
        Some("2") => (
            true,
            "on, with debug output to the kernel log (net.core.bpf_jit_enable=2)".to_string(),
        ),
        Some("0") => (
            false,
            "off: every program runs in the kernel's interpreter, several times slower per \
             packet and syscall"
                .to_string(),
        ),
        other => (
            false,
            format!(
                "unknown (/proc/sys/net/core/bpf_jit_enable: {})",
                other.unwrap_or("not readable")
            ),
        ),
    };
    check(
        "bpf-jit",
        ok,
        false,
        detail,
        "sysctl -w net.core.bpf_jit_enable=1 (kernels with CONFIG_BPF_JIT_ALWAYS_ON have it on always)",
    )
}

fn bpf_lsm(report: Option<&FeatureReport>, needed: bool) -> Check {
    let refusal = report.and_then(|r| r.refusal(Feature::LsmDeny));
    let ok = report.is_some() && refusal.is_none();
    check(
        "bpf-lsm",
        ok,
        needed,
        match (report, refusal) {
            (None, _) => "not probed (eBPF unavailable)".into(),
            (Some(_), None) => "BPF-LSM programs load here".into(),
            (Some(_), Some(r)) => format!("BPF-LSM programs do not load: {r}"),
        },
        "boot with `bpf` among the active LSMs (lsm=...,bpf on the kernel command line) on a kernel that allows BPF trampolines (arm64: Linux 6.5 or later); or use action = \"kill\"/\"log\" for listen, accept and execve",
    )
}

fn delegation(cg: &Cgroups, parent: Option<&str>) -> Check {
    let Some(parent) = parent else {
        return check(
            "delegation",
            true,
            false,
            "no parent group configured: the policy's groups go at the top of each hierarchy"
                .into(),
            "",
        );
    };
    let exists = GroupPath::parse(parent)
        .ok()
        .and_then(|p| cg.v2().map(|v2| cg.dir(v2, &p)))
        .is_some_and(|d| d.join("cgroup.subtree_control").exists());
    check(
        "delegation",
        exists,
        true,
        if exists {
            format!("the parent group {parent} exists in cgroup2")
        } else {
            format!("the parent group {parent} does not exist in cgroup2")
        },
        "run the agent from dist/enforcer.service (it starts enforcer-groups.service, whose Delegate=yes makes systemd hand it system.slice/enforcer-groups.service), or create the group first",
    )
}

/// Every check; `report` is the kernel's feature table (None: eBPF could
/// not be probed at all, `probe_error` says why). `lsm_needed` and
/// `parent` come from the policy, if one was given.
pub fn checks(
    cg: &Cgroups,
    pin_dir: &Path,
    report: Option<&FeatureReport>,
    probe_error: Option<&str>,
    lsm_needed: bool,
    parent: Option<&str>,
) -> Vec<Check> {
    let mut out = vec![capabilities(), bpffs(pin_dir), cgroup2(cg)];
    out.push(match (report, probe_error) {
        (Some(r), _) => match r.refusal(Feature::Accounting) {
            None => check(
                "ebpf",
                true,
                true,
                format!("counting programs load on {}", r.kernel),
                "",
            ),
            Some(why) => check(
                "ebpf",
                false,
                true,
                format!("the counting programs do not load: {why}"),
                "use a kernel with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF, and run as root",
            ),
        },
        (None, e) => check(
            "ebpf",
            false,
            true,
            format!("eBPF is not available: {}", e.unwrap_or("unknown")),
            "use a kernel with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF, and run as root",
        ),
    });
    out.push(btf(lsm_needed));
    out.push(bpf_lsm(report, lsm_needed));
    out.push(delegation(cg, parent));
    out.push(architecture(Arch::host()));
    let jit = std::fs::read_to_string("/proc/sys/net/core/bpf_jit_enable").ok();
    out.push(bpf_jit(jit.as_deref()));
    out
}

/// Whether every needed check passed.
pub fn healthy(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.ok || !c.needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_and_jit_are_named() {
        let a = architecture(Arch::Aarch64);
        assert!(a.ok && !a.needed);
        assert!(a.detail.starts_with("aarch64: "), "{}", a.detail);
        assert!(a.detail.contains("arm32:NAME"), "{}", a.detail);
        assert!(a.detail.contains("from Linux 6.5"), "{}", a.detail);
        assert!(architecture(Arch::X86_64).detail.contains("i386:NAME"));
        assert!(bpf_jit(Some("1\n")).ok);
        let off = bpf_jit(Some("0\n"));
        assert!(!off.ok && !off.needed, "a slow JIT-less kernel still works");
        assert!(off.fix.unwrap().contains("bpf_jit_enable=1"));
        assert!(!bpf_jit(None).ok);
    }

    #[test]
    fn fixes_only_for_problems_and_health_counts_needed_ones() {
        let ok = check("a", true, true, "fine".into(), "do x");
        let optional = check("b", false, false, "missing".into(), "do y");
        assert_eq!(ok.fix, None);
        assert_eq!(optional.fix.as_deref(), Some("do y"));
        assert!(healthy(&[ok.clone(), optional]));
        assert!(!healthy(&[
            ok,
            check("c", false, true, "no".into(), "do z")
        ]));
    }

    #[test]
    fn capabilities_are_read_from_proc() {
        // Tests run as root here; the check must at least name what it read.
        let c = capabilities();
        assert!(c.detail.contains("CAP_"), "{c:?}");
    }
}
