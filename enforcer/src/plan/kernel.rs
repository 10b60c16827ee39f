//! The kernel part of the plan: a group's `network`, `syscalls` and `priority`
//! become its rule tables ([`GroupRules`]). What `priority` means is decided
//! here, for the CPU ([`cpu_weight`]) and for packets ([`packet_priority`]) at
//! once, and `action = "deny"` is checked against the one hook table
//! ([`DENY_HOOKS`]) that the rule compiler uses too.

use enforcer_common::enforce::skb_priority;

use crate::arch::Arch;
use crate::bpf::{DENY_HOOKS, GroupRules, Limits, SyscallRules, deny_hook};
use crate::config::GroupSpec;

use super::error::PlanError;
use crate::words::{Priority, SyscallAction};

/// cgroup v2 weights (v1 shares by the kernel's equivalence, 100 = 1024): [`Priority::weight`],
/// twice and half the default of 100 for `high` and `low`.
pub(super) fn cpu_weight(p: Priority) -> String {
    p.weight().to_string()
}

/// The `skb->priority` of the group's outgoing packets: above `normal` is
/// `TC_PRIO_INTERACTIVE` (6), below it `TC_PRIO_BULK` (1), `normal` leaves
/// packets unchanged (`None`).
pub fn packet_priority(p: Priority) -> Option<u32> {
    match p.cmp(&Priority::NORMAL) {
        std::cmp::Ordering::Greater => Some(skb_priority::HIGH),
        std::cmp::Ordering::Less => Some(skb_priority::LOW),
        std::cmp::Ordering::Equal => None,
    }
}

/// What the cgroup hook behind a `deny` rule cannot see: `socket`,
/// `connect` and `bind` are refused in `cgroup/sock_create`,
/// `cgroup/connect4|6` and `cgroup/bind4|6`, which the kernel runs for
/// AF_INET and AF_INET6 sockets only. (`setsockopt` is refused for every
/// socket; listen, accept and execve need BPF-LSM, which sees every call.)
const INET_ONLY: [(&str, &str); 3] = [
    (
        "socket",
        "AF_UNIX, AF_NETLINK, AF_PACKET and other sockets are still created",
    ),
    (
        "connect",
        "connect() of an AF_UNIX or other socket still goes through",
    ),
    (
        "bind",
        "bind() of an AF_UNIX or other socket still goes through",
    ),
];

/// A warning, at the rule, for each `deny` whose hook covers only some
/// sockets: the rule is enforced for those, and the policy says which.
pub(super) fn partial_deny_warnings(g: &GroupSpec, warnings: &mut Vec<String>) {
    let Some(s) = &g.syscalls else { return };
    if s.action.value != SyscallAction::Deny {
        return;
    }
    for d in &s.deny {
        let name = d.value.name();
        if let Some((_, missed)) = INET_ONLY.iter().find(|(n, _)| *n == name) {
            warnings.push(format!(
                "{}: `{name}` with `action = \"deny\"` refuses AF_INET and AF_INET6 only: \
                 the kernel's cgroup hook sees no other family, so {missed}. Write \
                 `action = \"kill\"` to stop every {name}() call, or keep it to refuse \
                 network sockets",
                d.span
            ));
        }
    }
}

/// The rule tables of one policy group, checked as this node's kernel will
/// take them.
pub fn group_rules(g: &GroupSpec) -> Result<GroupRules, PlanError> {
    group_rules_for(g, Arch::host())
}

/// [`group_rules`] for a node of architecture `arch`: each syscall name must
/// exist in its table (`"fork" does not exist on aarch64; use "clone"`).
pub fn group_rules_for(g: &GroupSpec, arch: Arch) -> Result<GroupRules, PlanError> {
    let mut rules = GroupRules::default();
    if let Some(n) = &g.network {
        rules.connect = n.connect.clone();
        rules.bind = n.bind.clone();
        rules.egress = Limits {
            rate: n.egress_rate.as_ref().map(|r| r.value),
            budget: n.egress_budget.as_ref().map(|b| (b.bytes, b.window)),
        };
        rules.ingress = Limits {
            rate: n.ingress_rate.as_ref().map(|r| r.value),
            budget: n.ingress_budget.as_ref().map(|b| (b.bytes, b.window)),
        };
    }
    if let Some(s) = &g.syscalls
        && !s.deny.is_empty()
    {
        if s.action.value == SyscallAction::Deny
            && let Some(sysno) = s.deny.iter().find(|d| deny_hook(d.value.name()).is_none())
        {
            let name = sysno.value.name();
            let names: Vec<&str> = DENY_HOOKS.iter().map(|(n, _)| *n).collect();
            return Err(PlanError::Rule {
                span: sysno.span.clone(),
                message: format!(
                    "`{name}` cannot be denied: no BPF-LSM cgroup hook covers it (`action = \
                     \"deny\"` works only for {}); write `action = \"log\"` or `action = \
                     \"kill\"` for it",
                    crate::config::one_of(&names)
                ),
            });
        }
        for d in &s.deny {
            arch.check(d.value.name())
                .map_err(|message| PlanError::Rule {
                    span: d.span.clone(),
                    message,
                })?;
        }
        rules.syscalls = Some(SyscallRules {
            action: s.action.value,
            syscalls: s.deny.iter().map(|d| d.value).collect(),
            arch,
        });
    }
    rules.priority = g.priority.as_ref().and_then(|p| packet_priority(p.value));
    if let Err(message) = rules.check() {
        let span = g
            .network
            .as_ref()
            .map(|n| n.span.clone())
            .or_else(|| g.syscalls.as_ref().map(|s| s.span.clone()))
            .unwrap_or_else(|| g.span.clone());
        return Err(PlanError::Rule { span, message });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

    fn rules_of(text: &str) -> Vec<Result<GroupRules, PlanError>> {
        let policy = crate::config::parse_toml(text, Path::new("p.toml")).expect("parses");
        policy.groups.iter().map(group_rules).collect()
    }

    #[test]
    fn from_a_parsed_policy() {
        let text = r#"
[group."web".network]
connect_deny = ["127.0.0.2", "[::1]:80/tcp"]
bind_allow = ["0.0.0.0/0:8080"]
egress_rate = "10Mbit"
egress_budget = "100K/1m"

[group."web".syscalls]
deny = ["personality"]
action = "kill"

[group."empty"]
"#;
        let mut all = rules_of(text).into_iter();
        let rules = all.next().unwrap().unwrap();
        assert!(!rules.is_empty());
        assert_eq!(rules.egress.rate, Some(1_250_000));
        assert_eq!(
            rules.egress.budget,
            Some((102_400, Duration::from_secs(60)))
        );
        let second = rules.connect.as_ref().unwrap().rules[1].to_string();
        assert_eq!(second, "[::1/128]:80/tcp");
        assert!(all.next().unwrap().unwrap().is_empty());
    }

    #[test]
    fn priority_is_decided_once_for_cpu_and_packets() {
        let got: Vec<Option<u32>> = rules_of(
            "[group.\"a\"]\npriority = \"high\"\n[group.\"b\"]\npriority = \"low\"\n\
             [group.\"c\"]\npriority = \"normal\"\n[group.\"d\"]\n",
        )
        .into_iter()
        .map(|r| r.unwrap().priority)
        .collect();
        assert_eq!(got, [Some(6), Some(1), None, None]);
        assert_eq!(
            [Priority::HIGH, Priority::NORMAL, Priority::LOW].map(cpu_weight),
            ["200", "100", "50"]
        );
        let at = |level| Priority::new(level).unwrap();
        assert_eq!([at(100), at(1), at(60)].map(|p| p.weight()), [400, 26, 132]);
        assert_eq!(packet_priority(at(51)), Some(6));
        assert_eq!(packet_priority(at(49)), Some(1));
        assert_eq!(Priority::new(0), None);
        assert_eq!(Priority::new(101), None);
    }

    #[test]
    fn deny_only_what_a_hook_covers() {
        let err =
            rules_of("[group.a.syscalls]\ndeny = [\"socket\", \"ptrace\"]\naction = \"deny\"\n")
                .remove(0)
                .unwrap_err();
        assert!(err.is_user_error());
        let message = err.to_string();
        assert!(
            message.starts_with("p.toml:2:19: `ptrace` cannot be denied"),
            "{message}"
        );
        assert!(message.contains("`socket`, `connect`"), "{message}");
        // Moved here from the reader's tests: the hook table is the plan's now.
        let err =
            rules_of("[group.a.syscalls]\naction = \"deny\"\ndeny = [\"connect\", \"ptrace\"]\n")
                .remove(0)
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("p.toml:3:20: `ptrace` cannot be denied"),
            "{err}"
        );
        let err = rules_of("[group.a.syscalls]\ndeny = [\"openat\"]\naction = \"deny\"\n")
            .remove(0)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("p.toml:2:9: `openat` cannot be denied"),
            "{err}"
        );
        let ok =
            rules_of("[group.a.syscalls]\ndeny = [\"execve\", \"accept4\"]\naction = \"deny\"\n")
                .remove(0)
                .unwrap();
        assert_eq!(ok.syscalls.unwrap().action, SyscallAction::Deny);
    }

    /// x86_64-only names are refused for an aarch64 node, at the name, with
    /// the architecture and what to write instead; the same policy is fine
    /// for x86_64.
    #[test]
    fn names_are_checked_against_the_node_architecture() {
        let text =
            "[group.a.syscalls]\ndeny = [\"ptrace\", \"fork\", \"open\"]\naction = \"log\"\n";
        let policy = crate::config::parse_toml(text, Path::new("p.toml")).expect("parses");
        let g = &policy.groups[0];
        let err = group_rules_for(g, Arch::Aarch64).unwrap_err();
        assert!(err.is_user_error());
        assert_eq!(
            err.to_string(),
            "p.toml:2:19: \"fork\" does not exist on aarch64; use \"clone\""
        );
        let ok = group_rules_for(g, Arch::X86_64).expect("x86_64 has fork and open");
        assert_eq!(ok.syscalls.unwrap().arch, Arch::X86_64);

        let fixed =
            "[group.a.syscalls]\ndeny = [\"ptrace\", \"clone\", \"openat\"]\naction = \"kill\"\n";
        let policy = crate::config::parse_toml(fixed, Path::new("p.toml")).expect("parses");
        let rules = group_rules_for(&policy.groups[0], Arch::Aarch64).expect("aarch64 names");
        assert_eq!(rules.syscalls.unwrap().arch, Arch::Aarch64);

        let none = "[group.a.syscalls]\ndeny = [\"arch_prctl\"]\naction = \"kill\"\n";
        let policy = crate::config::parse_toml(none, Path::new("p.toml")).expect("parses");
        let err = group_rules_for(&policy.groups[0], Arch::Aarch64).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "p.toml:2:9: \"arch_prctl\" does not exist on aarch64; it has no equivalent"
            ),
            "{err}"
        );
    }
}
