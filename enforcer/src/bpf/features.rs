//! What this kernel lets enforcer do, found by loading each program through
//! the verifier once (nothing attached, nothing pinned), and what a group's
//! rules need from it.
//!
//! Kept apart from loading for real (`object.rs`, `kernel.rs`), as `below`
//! keeps feature probing apart from its readers: the agent probes before it
//! changes anything, so a policy the kernel cannot fully enforce is refused
//! as a whole, naming the group, the rule and the kernel's reason.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::OnceLock;

use serde::Serialize;

use super::BpfError;
use super::layout::{
    ENFORCE_SYSCALLS, GROUP_PROGRAMS, ProgramSpec, TRACING_PROGRAMS, enforce_programs,
};
use super::object::{ensure_loaded, load};
use super::rules::{GroupRules, deny_hook};
use enforcer_common::enforce::hook;

/// Something enforcer does with one or more kernel programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Per-group traffic, connect and bind counters (`cgroup_skb`, `cgroup/connect*`, `cgroup/bind*`).
    Accounting,
    /// Per-group syscall counters (raw tracepoint `sys_enter`).
    SyscallCounting,
    /// OOM kill events (tracepoint `oom/mark_victim`).
    OomEvents,
    /// Prompt reclaim of removed groups (tracepoint `cgroup/cgroup_rmdir`).
    RemovalEvents,
    /// `connect_*`/`bind_*` address lists, and `deny` of connect and bind.
    NetworkRules,
    /// Rate limits, byte budgets, closed-loop throttles and packet priorities.
    RateLimits,
    /// `deny` of `socket` and `setsockopt` (`cgroup/sock_create`, `cgroup/setsockopt`).
    SocketDeny,
    /// Syscall `kill` and `log` rules (raw tracepoint `sys_enter`).
    SyscallKill,
    /// `deny` of `listen`, `accept`, `execve` (BPF-LSM, `lsm_cgroup`).
    LsmDeny,
}

impl Feature {
    pub const ALL: [Feature; 9] = [
        Feature::Accounting,
        Feature::SyscallCounting,
        Feature::OomEvents,
        Feature::RemovalEvents,
        Feature::NetworkRules,
        Feature::RateLimits,
        Feature::SocketDeny,
        Feature::SyscallKill,
        Feature::LsmDeny,
    ];

    /// Whether it enforces rules (rather than counts or reports).
    pub fn is_enforcement(self) -> bool {
        matches!(
            self,
            Feature::NetworkRules
                | Feature::RateLimits
                | Feature::SocketDeny
                | Feature::SyscallKill
                | Feature::LsmDeny
        )
    }

    /// What is lost without it, as a user reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::Accounting => "per-group traffic, connect and bind counters",
            Feature::SyscallCounting => "per-group syscall counters",
            Feature::OomEvents => "OOM kill events",
            Feature::RemovalEvents => {
                "prompt reclaim of removed groups (else at the next walk of the tree)"
            }
            Feature::NetworkRules => "connect/bind address lists (and deny of connect, bind)",
            Feature::RateLimits => "rate limits, byte budgets, throttles and packet priorities",
            Feature::SocketDeny => {
                "syscall deny rules for socket (AF_INET and AF_INET6 sockets only: the \
                 cgroup hook sees no other family) and setsockopt"
            }
            Feature::SyscallKill => "syscall kill and log rules",
            Feature::LsmDeny => "syscall deny rules for listen, accept and execve (BPF-LSM)",
        }
    }

    /// The programs it needs (enforcement programs: their level-1 copies,
    /// which differ from the others only in one constant).
    fn programs(self) -> Vec<ProgramSpec> {
        let enforce = |suffixes: &[&str]| -> Vec<ProgramSpec> {
            enforce_programs(1)
                .filter(|p| {
                    suffixes
                        .iter()
                        .any(|s| p.name.trim_end_matches("_1").ends_with(s))
                })
                .collect()
        };
        match self {
            Feature::Accounting => GROUP_PROGRAMS.to_vec(),
            Feature::SyscallCounting => TRACING_PROGRAMS
                .iter()
                .copied()
                .filter(|p| p.name == "count_syscalls" || p.name == "cgroup_migrated")
                .collect(),
            Feature::RemovalEvents => TRACING_PROGRAMS
                .iter()
                .copied()
                .filter(|p| p.name == "cgroup_removed")
                .collect(),
            Feature::OomEvents => TRACING_PROGRAMS
                .iter()
                .copied()
                .filter(|p| p.name == "oom_kill")
                .collect(),
            Feature::NetworkRules => enforce(&[
                "_connect4",
                "_connect6",
                "_bind4",
                "_bind6",
                "_sendmsg4",
                "_sendmsg6",
            ]),
            Feature::RateLimits => enforce(&["_egress", "_ingress"]),
            Feature::SocketDeny => enforce(&["_sock_create", "_setsockopt"]),
            Feature::SyscallKill => vec![ENFORCE_SYSCALLS],
            Feature::LsmDeny => enforce(&["_socket_listen", "_socket_accept", "_bprm_check"]),
        }
    }

    /// The feature a program serves, if any.
    pub fn of_program(name: &str) -> Option<Feature> {
        let level1 = name
            .rsplit_once('_')
            .filter(|(_, l)| l.parse::<u32>().is_ok())
            .map_or_else(|| name.to_string(), |(base, _)| format!("{base}_1"));
        Feature::ALL.into_iter().find(|f| {
            f.programs()
                .iter()
                .any(|p| p.name == level1 || p.name == name)
        })
    }

    /// The features `rules` need (beyond accounting, which every managed
    /// group gets), with the rule that needs each, as written in a policy.
    pub fn needed_by(rules: &GroupRules, throttles: bool) -> Vec<(Feature, String)> {
        let mut out = Vec::new();
        if rules.connect.is_some() {
            out.push((
                Feature::NetworkRules,
                "network.connect_allow/connect_deny".into(),
            ));
        }
        if rules.bind.is_some() {
            out.push((Feature::NetworkRules, "network.bind_allow/bind_deny".into()));
        }
        for (dir, l) in [("egress", rules.egress), ("ingress", rules.ingress)] {
            if l.rate.is_some() {
                out.push((Feature::RateLimits, format!("network.{dir}_rate")));
            }
            if l.budget.is_some() {
                out.push((Feature::RateLimits, format!("network.{dir}_budget")));
            }
        }
        if rules.priority.is_some() {
            out.push((Feature::RateLimits, "priority".into()));
        }
        if rules.share_level.is_some() {
            out.push((
                Feature::RateLimits,
                "the network shares ([agent] egress_capacity / ingress_capacity)".into(),
            ));
        }
        if throttles {
            out.push((
                Feature::RateLimits,
                "when ... then = [\"throttle ...\"]".into(),
            ));
        }
        if let Some(s) = &rules.syscalls {
            use crate::words::SyscallAction;
            for nr in &s.syscalls {
                let name = nr.name();
                let feature = match s.action {
                    SyscallAction::Kill | SyscallAction::Log => Feature::SyscallKill,
                    SyscallAction::Deny => match deny_hook(name) {
                        Some(hook::SOCKET_CREATE | hook::SOCKET_SETSOCKOPT) => Feature::SocketDeny,
                        Some(hook::SOCKET_CONNECT | hook::SOCKET_BIND) => Feature::NetworkRules,
                        _ => Feature::LsmDeny,
                    },
                };
                let action = match s.action {
                    SyscallAction::Kill => "kill",
                    SyscallAction::Log => "log",
                    SyscallAction::Deny => "deny",
                };
                out.push((
                    feature,
                    format!("syscalls.deny {name:?} with action = {action:?}"),
                ));
            }
        }
        out
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Accounting => "accounting",
            Feature::SyscallCounting => "syscall counting",
            Feature::OomEvents => "OOM events",
            Feature::RemovalEvents => "removal events",
            Feature::NetworkRules => "network rules",
            Feature::RateLimits => "rate limits",
            Feature::SocketDeny => "socket deny",
            Feature::SyscallKill => "syscall kill/log",
            Feature::LsmDeny => "LSM deny",
        })
    }
}

/// Why the kernel refused a program, or would never run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The program that did not load (or, if `inert`, the first of the
    /// feature's programs).
    pub program: &'static str,
    /// The kernel's error, in a few words.
    pub reason: String,
    /// The verifier's last lines, if it said anything.
    pub verifier: Vec<String>,
    /// The kernel loads the programs, but would never run them (BPF-LSM
    /// programs while `bpf` is not an active LSM); `reason` says why.
    pub inert: bool,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inert {
            return f.write_str(&self.reason);
        }
        write!(f, "the kernel refused {}: {}", self.program, self.reason)?;
        if !self.verifier.is_empty() {
            write!(f, " (verifier: {})", self.verifier.join(" / "))?;
        }
        Ok(())
    }
}

/// One feature on this kernel.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureStatus {
    pub feature: Feature,
    pub what: &'static str,
    /// `None`: every program it needs loads here.
    pub refused: Option<Refusal>,
}

/// Every feature on this kernel.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureReport {
    /// `uname -r`.
    pub kernel: String,
    pub features: Vec<FeatureStatus>,
}

impl FeatureReport {
    /// Why `feature` is unavailable here, if it is.
    pub fn refusal(&self, feature: Feature) -> Option<&Refusal> {
        self.features
            .iter()
            .find(|s| s.feature == feature)
            .and_then(|s| s.refused.as_ref())
    }

    pub fn all_available(&self) -> bool {
        self.features.iter().all(|s| s.refused.is_none())
    }

    /// Whether the program `name` can be used here (its feature loads, or it
    /// belongs to none).
    pub fn program_available(&self, name: &str) -> bool {
        Feature::of_program(name).is_none_or(|f| self.refusal(f).is_none())
    }
}

impl fmt::Display for FeatureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kernel {}:", self.kernel)?;
        for s in &self.features {
            match &s.refused {
                None => writeln!(f, "  {:<17} available   {}", s.feature.to_string(), s.what)?,
                Some(r) => {
                    writeln!(f, "  {:<17} UNAVAILABLE {}", s.feature.to_string(), s.what)?;
                    writeln!(f, "    {r}")?;
                }
            }
        }
        Ok(())
    }
}

/// The last lines of the verifier's log in an error chain, if any.
fn refusal(program: &'static str, error: &BpfError) -> Refusal {
    use std::error::Error as _;
    let mut reason = error.to_string();
    let mut verifier = Vec::new();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if let Some((head, log)) = text.split_once("Verifier output:") {
            reason = head.trim().trim_end_matches('.').to_string();
            let lines: Vec<String> = log
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            verifier = lines[lines.len().saturating_sub(4)..].to_vec();
        } else {
            reason = text;
        }
        source = s.source();
    }
    Refusal {
        program,
        reason,
        verifier,
        inert: false,
    }
}

/// Where securityfs is mounted (the kernel's documented place, and where
/// systemd mounts it).
const SECURITYFS: &str = "/sys/kernel/security";

/// securityfs' list of the active LSMs, comma-separated, in the kernel's order.
const LSM_LIST: &str = "/sys/kernel/security/lsm";

/// `SECURITYFS_MAGIC` of `include/uapi/linux/magic.h`.
const SECURITYFS_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x7363_6673);

/// Why BPF-LSM programs would never run on this host (`None` if they would):
/// `bpf` is not among the active LSMs. A kernel built with `CONFIG_BPF_LSM`
/// loads and attaches BPF-LSM programs either way, but calls them only if
/// `bpf` was enabled at boot (`CONFIG_LSM` or `lsm=`), so a successful load
/// does not tell. Also `Some` if the list cannot be read: a `deny` rule that
/// silently does nothing is worse than one refused.
///
/// The active LSMs are fixed at boot, so this is found out once per process.
/// Used by [`probe_features`] ([`Feature::LsmDeny`]) and by
/// `Kernel::lsm_unavailable`.
pub(super) fn bpf_lsm_inactive() -> Option<String> {
    static INACTIVE: OnceLock<Option<String>> = OnceLock::new();
    INACTIVE
        .get_or_init(|| match active_lsms() {
            Ok(list) => bpf_missing_from(&list),
            Err(e) => Some(format!(
                "cannot tell whether BPF-LSM is active: reading {LSM_LIST}: {e}"
            )),
        })
        .clone()
}

/// The contents of [`LSM_LIST`], mounting securityfs first if it is not
/// mounted (it is not at boot on some hosts).
fn active_lsms() -> io::Result<String> {
    let dir = Path::new(SECURITYFS);
    let mounted =
        nix::sys::statfs::statfs(dir).is_ok_and(|fs| fs.filesystem_type() == SECURITYFS_MAGIC);
    if !mounted {
        // Mount securityfs only when it is not mounted there yet, so that we
        // never stack a second mount; it stays mounted, as systemd would have
        // it. It shows the security modules' files and changes nothing.
        nix::mount::mount(
            Some("securityfs"),
            dir,
            Some("securityfs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|errno| {
            io::Error::new(
                io::Error::from(errno).kind(),
                format!(
                    "securityfs is not mounted and mounting it at {SECURITYFS} failed: {errno}"
                ),
            )
        })?;
        tracing::info!(
            path = SECURITYFS,
            "mounted securityfs to read the active LSMs"
        );
    }
    std::fs::read_to_string(LSM_LIST)
}

/// Why BPF-LSM is not active according to `list`, the contents of
/// [`LSM_LIST`] (`None` if `bpf` is in it).
fn bpf_missing_from(list: &str) -> Option<String> {
    let list = list.trim();
    if list.split(',').any(|lsm| lsm.trim() == "bpf") {
        return None;
    }
    let (shown, boot) = if list.is_empty() {
        ("none", "bpf".to_string())
    } else {
        (list, format!("{list},bpf"))
    };
    Some(format!(
        "BPF-LSM is not active: `bpf` is missing from the active LSMs ({LSM_LIST}: {shown}); \
         boot with lsm={boot}"
    ))
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into())
}

/// Loads every program once (unpinned; everything is unloaded again) and
/// reports which features this kernel has. Fails only if the object itself
/// cannot be loaded (no BPF at all, not root).
pub fn probe_features() -> Result<FeatureReport, BpfError> {
    let (mut ebpf, _logs) = load(None)?;
    let mut btf = None;
    Ok(probe_in(&mut ebpf, &mut btf))
}

/// Loads (through the verifier) the programs of every feature into `ebpf`,
/// noting what the kernel refuses. Programs stay loaded, ready to attach.
pub(super) fn probe_in(ebpf: &mut aya::Ebpf, btf: &mut Option<aya::Btf>) -> FeatureReport {
    let mut features = Vec::new();
    for feature in Feature::ALL {
        let programs = feature.programs();
        let mut refused = None;
        for &spec in &programs {
            if let Err(e) = ensure_loaded(ebpf, spec, btf) {
                refused = Some(refusal(spec.name, &e));
                break;
            }
        }
        if refused.is_none()
            && feature == Feature::LsmDeny
            && let Some(reason) = bpf_lsm_inactive()
        {
            refused = Some(Refusal {
                program: programs.first().map_or("", |p| p.name),
                reason,
                verifier: Vec::new(),
                inert: true,
            });
        }
        if refused.is_none()
            && feature == Feature::LsmDeny
            && let Some(reason) = super::lsm_attach::attach_refused(ebpf, btf)
        {
            refused = Some(Refusal {
                program: programs.first().map_or("", |p| p.name),
                reason,
                verifier: Vec::new(),
                inert: false,
            });
        }
        features.push(FeatureStatus {
            feature,
            what: feature.describe(),
            refused,
        });
    }
    FeatureReport {
        kernel: kernel_release(),
        features,
    }
}

/// [`probe_features`], once per process.
pub fn features() -> Result<&'static FeatureReport, BpfError> {
    static REPORT: OnceLock<FeatureReport> = OnceLock::new();
    if let Some(r) = REPORT.get() {
        return Ok(r);
    }
    let report = probe_features()?;
    Ok(REPORT.get_or_init(|| report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_map_to_their_feature_at_every_level() {
        assert_eq!(
            Feature::of_program("count_egress"),
            Some(Feature::Accounting)
        );
        assert_eq!(
            Feature::of_program("count_syscalls"),
            Some(Feature::SyscallCounting)
        );
        assert_eq!(Feature::of_program("oom_kill"), Some(Feature::OomEvents));
        assert_eq!(
            Feature::of_program("enforce_connect4_3"),
            Some(Feature::NetworkRules)
        );
        assert_eq!(
            Feature::of_program("enforce_egress_8"),
            Some(Feature::RateLimits)
        );
        assert_eq!(
            Feature::of_program("enforce_setsockopt_2"),
            Some(Feature::SocketDeny)
        );
        assert_eq!(
            Feature::of_program("enforce_syscalls"),
            Some(Feature::SyscallKill)
        );
        assert_eq!(
            Feature::of_program("enforce_bprm_check_5"),
            Some(Feature::LsmDeny)
        );
        assert_eq!(Feature::of_program("nothing"), None);
    }

    #[test]
    fn bpf_among_the_active_lsms() {
        for list in [
            "lockdown,capability,landlock,bpf",
            "bpf",
            "capability,bpf,landlock\n",
            " lockdown, capability, bpf ",
            "lockdown,capability,yama,apparmor,bpf",
        ] {
            assert_eq!(bpf_missing_from(list), None, "{list:?}");
        }
    }

    #[test]
    fn bpf_missing_from_the_active_lsms() {
        let why = bpf_missing_from("lockdown,capability\n").expect("bpf is not active");
        assert_eq!(
            why,
            "BPF-LSM is not active: `bpf` is missing from the active LSMs \
             (/sys/kernel/security/lsm: lockdown,capability); \
             boot with lsm=lockdown,capability,bpf"
        );
        // Names that merely contain "bpf" are other LSMs.
        for list in ["capability,bpfx", "xbpf", "lockdown,bpf_lsm"] {
            assert!(bpf_missing_from(list).is_some(), "{list:?}");
        }
        let empty = bpf_missing_from("").expect("no LSM at all");
        assert!(
            empty.ends_with("(/sys/kernel/security/lsm: none); boot with lsm=bpf"),
            "{empty}"
        );
    }

    #[test]
    fn an_inert_refusal_shows_its_reason_only() {
        let r = Refusal {
            program: "enforce_socket_listen_1",
            reason: "BPF-LSM is not active".into(),
            verifier: Vec::new(),
            inert: true,
        };
        assert_eq!(r.to_string(), "BPF-LSM is not active");
        let loaded = Refusal { inert: false, ..r };
        assert_eq!(
            loaded.to_string(),
            "the kernel refused enforce_socket_listen_1: BPF-LSM is not active"
        );
    }
}
