//! What this kernel lets enforcer do, found by loading each program through
//! the verifier once (nothing attached, nothing pinned), and what a group's
//! rules need from it.
//!
//! Kept apart from loading for real (`object.rs`, `kernel.rs`), as `below`
//! keeps feature probing apart from its readers: the agent probes before it
//! changes anything, so a policy the kernel cannot fully enforce is refused
//! as a whole, naming the group, the rule and the kernel's reason.

use std::fmt;
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
    pub const ALL: [Feature; 8] = [
        Feature::Accounting,
        Feature::SyscallCounting,
        Feature::OomEvents,
        Feature::NetworkRules,
        Feature::RateLimits,
        Feature::SocketDeny,
        Feature::SyscallKill,
        Feature::LsmDeny,
    ];

    /// What is lost without it, as a user reads it.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::Accounting => "per-group traffic, connect and bind counters",
            Feature::SyscallCounting => "per-group syscall counters",
            Feature::OomEvents => "OOM kill events",
            Feature::NetworkRules => "connect/bind address lists (and deny of connect, bind)",
            Feature::RateLimits => "rate limits, byte budgets, throttles and packet priorities",
            Feature::SocketDeny => "syscall deny rules for socket and setsockopt",
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
                .filter(|p| p.name == "count_syscalls")
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
        if throttles {
            out.push((
                Feature::RateLimits,
                "when ... then = [\"throttle ...\"]".into(),
            ));
        }
        if let Some(s) = &rules.syscalls {
            use crate::plan::SyscallAction;
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
            Feature::NetworkRules => "network rules",
            Feature::RateLimits => "rate limits",
            Feature::SocketDeny => "socket deny",
            Feature::SyscallKill => "syscall kill/log",
            Feature::LsmDeny => "LSM deny",
        })
    }
}

/// Why the kernel refused a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The program that did not load.
    pub program: &'static str,
    /// The kernel's error, in a few words.
    pub reason: String,
    /// The verifier's last lines, if it said anything.
    pub verifier: Vec<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
    }
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
    let mut features = Vec::new();
    for feature in Feature::ALL {
        let mut refused = None;
        for spec in feature.programs() {
            if let Err(e) = ensure_loaded(&mut ebpf, spec, &mut btf) {
                refused = Some(refusal(spec.name, &e));
                break;
            }
        }
        features.push(FeatureStatus {
            feature,
            what: feature.describe(),
            refused,
        });
    }
    Ok(FeatureReport {
        kernel: kernel_release(),
        features,
    })
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
