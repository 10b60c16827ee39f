//! [`GroupRules`]: one group's kernel-enforced rules, and how they become map
//! contents (`GROUP_RULES`, `NET_RULES`).
//!
//! # Address lists in `NET_RULES`
//!
//! Each list (connect, bind) of a group becomes, per address family, one LPM
//! trie entry per distinct network in the list plus one for `/0`. The value at
//! a prefix `P` holds every rule of the list whose network contains `P` (port
//! range, protocol, rule index). The longest prefix that matches an address
//! is the most specific rule network containing it, and every other rule
//! network containing the address contains that prefix too, so the one lookup
//! returns exactly the rules that can apply; the kernel scans at most
//! [`RULES_PER_PREFIX`] of them. Lists where more rules overlap one prefix are
//! refused ([`GroupRules::check`]).
//!
//! The `/0` entry is always present while a generation is live: a lookup that
//! finds nothing means the generation was deleted under it (see
//! `enforcer-ebpf/src/netrules.rs`).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use crate::arch::{Arch, SyscallName};
use crate::words::{Access, AccessList, Direction, NetRule, Proto, SyscallAction};
use aya::maps::lpm_trie::Key;
use enforcer_common::enforce::{
    SHARE_LEVELS, SYSCALL_BITMAP_BITS, hook, list, policy_flags, skb_priority,
};
use enforcer_common::{GroupPolicy, LimitConf, NetKey, NetRuleEntry, NetRuleSet, RULES_PER_PREFIX};

/// Burst tolerance of a rate limit, as time: after an idle period the limiter
/// lets this much time's worth of traffic through at once...
pub const RATE_BURST: Duration = Duration::from_millis(20);

/// ...but at least this many bytes: three 64 KiB GSO packets, so TCP (whose
/// segments reach the hook as GSO super-packets) keeps a window in flight
/// instead of stalling on drops (measured on loopback at 10 Mbit/s: with 64 KiB
/// TCP got 36% of the rate, with 192 KiB 95%). At 10 Mbit/s this is 157 ms of
/// traffic: a flood starting from idle gets 5% more than the rate over 3 s.
pub const RATE_BURST_BYTES: u64 = 192 * 1024;

/// Limits of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes per second.
    pub rate: Option<u64>,
    /// Bytes per window.
    pub budget: Option<(u64, Duration)>,
}

/// A group's syscall rules: one action for a list of syscalls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallRules {
    pub action: SyscallAction,
    /// Names, each in `arch`'s table (the plan checked them).
    pub syscalls: Vec<SyscallName>,
    /// The architecture of the node that enforces them: its numbers go into
    /// the bitmaps, its compat table's into the compat ones.
    pub arch: Arch,
}

/// Everything the kernel enforces for one group: address lists for
/// `connect` (and UDP `sendmsg`) and `bind`, rate limits and byte budgets per
/// direction, syscall rules, the priority of outgoing packets. Built by the
/// plan (`plan::kernel`); loaded with
/// [`Kernel::set_group_rules`](super::Kernel::set_group_rules).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRules {
    pub connect: Option<AccessList>,
    pub bind: Option<AccessList>,
    pub egress: Limits,
    pub ingress: Limits,
    pub syscalls: Option<SyscallRules>,
    /// `skb->priority` of the group's outgoing packets (`TC_PRIO_*`, see
    /// `plan::kernel`); `None` leaves it unchanged.
    pub priority: Option<u32>,
    /// The group's level in the node's network shares (its priority, 1 to
    /// 100), when `[agent] egress_capacity` or `ingress_capacity` is set.
    pub share_level: Option<u32>,
}

impl GroupRules {
    /// Whether there is nothing to enforce.
    pub fn is_empty(&self) -> bool {
        self.connect.is_none()
            && self.bind.is_none()
            && self.egress == Limits::default()
            && self.ingress == Limits::default()
            && self.syscalls.is_none()
            && self.priority.is_none()
            && self.share_level.is_none()
    }

    /// The limits of one direction.
    pub fn limits(&self, dir: Direction) -> Limits {
        match dir {
            Direction::Egress => self.egress,
            Direction::Ingress => self.ingress,
        }
    }

    /// Whether the kernel can enforce these rules as they are: at most
    /// [`RULES_PER_PREFIX`] rules of a list overlapping one prefix, at most
    /// 65536 rules per list, `deny` only for syscalls with a hook (see
    /// [`DENY_HOOKS`]), budget windows of at least a second. The
    /// error says what to change. (Whether this host can load the BPF-LSM
    /// programs that `deny` of listen, accept and execve needs is checked by
    /// [`Kernel::set_group_rules`](super::Kernel::set_group_rules).)
    pub fn check(&self) -> Result<(), String> {
        self.compile(0, 0).map(drop)
    }

    /// `rule` of the connect (`bind` false) or bind list, as written.
    pub(super) fn rule(&self, bind: bool, index: u32) -> Option<&NetRule> {
        let list = if bind { &self.bind } else { &self.connect };
        list.as_ref()?.rules.get(index as usize)
    }

    /// The map contents for these rules of group `cgroup_id` at address-list
    /// generation `generation`: the `GROUP_RULES` value (limits without
    /// throttles, see [`limit_conf`]) and the `NET_RULES` entries.
    pub(super) fn compile(&self, cgroup_id: u64, generation: u32) -> Result<Compiled, String> {
        let mut policy = GroupPolicy {
            net_generation: generation,
            skb_priority: self.priority.unwrap_or(skb_priority::UNCHANGED),
            share_level: self
                .share_level
                .filter(|&l| (1..=SHARE_LEVELS).contains(&l))
                .unwrap_or(0),
            ..GroupPolicy::default()
        };
        let mut net = Vec::new();
        for (which, access) in [(list::CONNECT, &self.connect), (list::BIND, &self.bind)] {
            let Some(access) = access else { continue };
            let mode = match access.mode {
                Access::Allow => list::ALLOW,
                Access::Deny => list::DENY,
            };
            if which == list::CONNECT {
                policy.connect = mode;
            } else {
                policy.bind = mode;
            }
            net.extend(list_entries(access, which, cgroup_id, generation)?);
        }
        for dir in [Direction::Egress, Direction::Ingress] {
            let limits = self.limits(dir);
            if let Some((bytes, window)) = limits.budget
                && (window < Duration::from_secs(1) || bytes == 0)
            {
                return Err(format!(
                    "the {} budget must be at least 1 byte per at least 1s",
                    dir_name(dir)
                ));
            }
            if let Some(slot) = policy.limits.get_mut(dir_index(dir)) {
                *slot = limit_conf(limits.rate, Caps::default(), limits.budget);
            }
        }
        if let Some(s) = &self.syscalls {
            syscall_bits(s, &mut policy)?;
        }
        Ok(Compiled { policy, net })
    }
}

/// Map contents of one group's rules.
pub(super) struct Compiled {
    pub(super) policy: GroupPolicy,
    pub(super) net: Vec<(Key<NetKey>, NetRuleSet)>,
}

pub(super) fn dir_index(dir: Direction) -> usize {
    match dir {
        Direction::Egress => 0,
        Direction::Ingress => 1,
    }
}

pub(super) fn dir_name(dir: Direction) -> &'static str {
    match dir {
        Direction::Egress => "egress",
        Direction::Ingress => "ingress",
    }
}

/// Rates set on a group at run time, on top of its rules' own rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Caps {
    /// A `when` rule's `throttle` ([`Kernel::set_rate`](super::Kernel::set_rate)).
    pub(super) throttle: Option<u64>,
    /// The arbiter's yield ([`Kernel::set_yield_rate`](super::Kernel::set_yield_rate)).
    pub(super) yielded: Option<u64>,
}

impl Caps {
    /// The caps recorded in a direction's current `LimitConf`.
    pub(super) fn of(conf: &LimitConf) -> Caps {
        Caps {
            throttle: Some(conf.throttle_rate).filter(|&t| t > 0),
            yielded: Some(conf.yield_rate).filter(|&t| t > 0),
        }
    }
}

/// The kernel's view of one direction's limits: the lowest of the rules'
/// rate, the throttle and the yield (any may be absent), and the budget.
pub(crate) fn limit_conf(
    rule_rate: Option<u64>,
    caps: Caps,
    budget: Option<(u64, Duration)>,
) -> LimitConf {
    let rate = [rule_rate, caps.throttle, caps.yielded]
        .into_iter()
        .flatten()
        .filter(|&r| r > 0)
        .min();
    // ns per byte in 16.16 fixed point, capped so `len * factor` cannot
    // overflow in the kernel (rates below ~4 bytes/s are treated as 4).
    let q16 = rate.map_or(0, |r| {
        let q = (1_000_000_000u128 << 16) / u128::from(r);
        u64::try_from(q).unwrap_or(u64::MAX).clamp(1, 1 << 43)
    });
    let (budget_bytes, window_ns) = budget.map_or((0, 0), |(b, w)| {
        (b, u64::try_from(w.as_nanos()).unwrap_or(u64::MAX))
    });
    let burst_ns = u64::try_from(RATE_BURST.as_nanos())
        .unwrap_or(u64::MAX)
        .max(
            u64::try_from((u128::from(RATE_BURST_BYTES) * u128::from(q16)) >> 16)
                .unwrap_or(u64::MAX),
        );
    LimitConf {
        ns_per_byte_q16: q16,
        burst_ns,
        budget_bytes,
        window_ns,
        rate: rate.unwrap_or(0),
        rule_rate: rule_rate.unwrap_or(0),
        throttle_rate: caps.throttle.unwrap_or(0),
        yield_rate: caps.yielded.unwrap_or(0),
    }
}

/// A network as (family, prefix length, 16 address bytes).
fn net_key(addr: IpAddr, prefix: u8) -> (u8, u8, [u8; 16]) {
    let mut bytes = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            bytes[..4].copy_from_slice(&a.octets());
            (list::V4, prefix, bytes)
        }
        IpAddr::V6(a) => (list::V6, prefix, a.octets()),
    }
}

fn entry(rule: &NetRule, index: usize) -> Result<NetRuleEntry, String> {
    let (port_lo, port_hi) = rule.ports.unwrap_or((0, u16::MAX));
    Ok(NetRuleEntry {
        port_lo,
        port_hi,
        proto: match rule.proto {
            Proto::Any => 0,
            Proto::Tcp => libc::IPPROTO_TCP as u8,
            Proto::Udp => libc::IPPROTO_UDP as u8,
        },
        _pad: 0,
        rule: u16::try_from(index)
            .map_err(|_| "a list can have at most 65536 rules".to_string())?,
    })
}

fn list_entries(
    access: &AccessList,
    which: u8,
    cgroup_id: u64,
    generation: u32,
) -> Result<Vec<(Key<NetKey>, NetRuleSet)>, String> {
    let name = if which == list::BIND {
        "bind"
    } else {
        "connect"
    };
    let mut out = Vec::new();
    for (family, zero) in [
        (list::V4, IpAddr::from([0u8; 4])),
        (list::V6, IpAddr::from([0u8; 16])),
    ] {
        let rules: Vec<(usize, &NetRule)> = access
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| net_key(r.net.addr(), r.net.prefix_len()).0 == family)
            .collect();
        // Every distinct network, and /0.
        let prefixes: BTreeSet<(u8, [u8; 16], IpAddr)> = rules
            .iter()
            .map(|(_, r)| {
                (
                    r.net.prefix_len(),
                    net_key(r.net.addr(), r.net.prefix_len()).2,
                    r.net.addr(),
                )
            })
            .chain([(0, [0u8; 16], zero)])
            .collect();
        for (prefix, bytes, addr) in prefixes {
            let covering: Vec<(usize, &NetRule)> = rules
                .iter()
                .filter(|(_, r)| r.net.prefix_len() <= prefix && r.net.contains(&addr))
                .copied()
                .collect();
            if covering.len() > RULES_PER_PREFIX {
                return Err(format!(
                    "{} rules of the {name} list apply to {addr}/{prefix}; at most \
                     {RULES_PER_PREFIX} rules may overlap one network (merge port ranges or \
                     use fewer, wider rules)",
                    covering.len()
                ));
            }
            let mut set = NetRuleSet {
                count: covering.len() as u32,
                ..NetRuleSet::default()
            };
            for (slot, (index, rule)) in set.entries.iter_mut().zip(covering) {
                *slot = entry(rule, index)?;
            }
            let key = Key::new(
                NetKey::FIXED_BITS + u32::from(prefix),
                NetKey::new(cgroup_id, generation, which, family, bytes),
            );
            out.push((key, set));
        }
    }
    Ok(out)
}

/// The one table of syscalls that `action = "deny"` can refuse, each with the
/// BPF-LSM (or cgroup socket) hook that refuses it. The plan checks a policy
/// against it; the rule compiler sets the hook bits from it.
pub const DENY_HOOKS: [(&str, u32); 9] = [
    ("socket", hook::SOCKET_CREATE),
    ("connect", hook::SOCKET_CONNECT),
    ("bind", hook::SOCKET_BIND),
    ("listen", hook::SOCKET_LISTEN),
    ("accept", hook::SOCKET_ACCEPT),
    ("accept4", hook::SOCKET_ACCEPT),
    ("execve", hook::BPRM_CHECK),
    ("execveat", hook::BPRM_CHECK),
    ("setsockopt", hook::SOCKET_SETSOCKOPT),
];

/// The hook that can refuse `name`, if any.
pub fn deny_hook(name: &str) -> Option<u32> {
    DENY_HOOKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, hook)| hook)
}

/// The syscall a denial by `hook` stands for (the first of its names).
pub(super) fn hook_syscall(hook_bit: u32) -> &'static str {
    match hook_bit {
        hook::SOCKET_CREATE => "socket",
        hook::SOCKET_CONNECT => "connect",
        hook::SOCKET_BIND => "bind",
        hook::SOCKET_LISTEN => "listen",
        hook::SOCKET_ACCEPT => "accept",
        hook::SOCKET_SETSOCKOPT => "setsockopt",
        hook::BPRM_CHECK => "execve",
        _ => "?",
    }
}

fn set_bit(bitmap: &mut [u64], nr: u32) -> bool {
    if nr >= SYSCALL_BITMAP_BITS {
        return false;
    }
    if let Some(word) = bitmap.get_mut((nr / 64) as usize) {
        *word |= 1 << (nr % 64);
    }
    true
}

fn syscall_bits(s: &SyscallRules, policy: &mut GroupPolicy) -> Result<(), String> {
    for sysno in &s.syscalls {
        let name = sysno.name();
        match s.action {
            SyscallAction::Deny => {
                policy.deny_hooks |= deny_hook(name).ok_or_else(|| {
                    format!(
                        "`{name}` cannot be denied: no BPF-LSM hook covers it (deny works for \
                         {}); use action = \"kill\" or \"log\"",
                        DENY_HOOKS.map(|(n, _)| n).join(", ")
                    )
                })?;
            }
            SyscallAction::Kill | SyscallAction::Log => {
                let (native, compat) = if s.action == SyscallAction::Kill {
                    (&mut policy.kill, &mut policy.kill_compat)
                } else {
                    (&mut policy.log, &mut policy.log_compat)
                };
                let nr = s.arch.check(name)?;
                if !set_bit(native, nr) {
                    return Err(format!(
                        "`{name}` (number {nr}) is beyond the syscall table"
                    ));
                }
                for nr in s.arch.compat_numbers(name) {
                    set_bit(compat, nr);
                }
                policy.flags |= policy_flags::SYSCALLS;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::words::{IpNet, Span};

    fn span() -> Span {
        Span {
            file: Arc::new(PathBuf::from("test.toml")),
            line: 1,
            column: 1,
        }
    }

    fn rule(net: &str, prefix: u8, ports: Option<(u16, u16)>, proto: Proto) -> NetRule {
        NetRule {
            net: IpNet::new(net.parse().expect("address"), prefix).expect("prefix"),
            ports,
            proto,
            span: span(),
        }
    }

    fn deny(rules: Vec<NetRule>) -> AccessList {
        AccessList {
            mode: Access::Deny,
            rules,
            span: span(),
        }
    }

    /// (prefix length of the address part, rule indexes) of every entry.
    fn shape(c: &Compiled) -> Vec<(u8, u32, Vec<u16>)> {
        c.net
            .iter()
            .map(|(k, v)| {
                let d = k.data();
                (
                    d.family,
                    k.prefix_len() - NetKey::FIXED_BITS,
                    v.entries[..v.count as usize]
                        .iter()
                        .map(|e| e.rule)
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn each_prefix_carries_its_covering_rules() {
        let rules = GroupRules {
            connect: Some(deny(vec![
                rule("10.0.0.0", 8, None, Proto::Any),
                rule("10.1.0.0", 16, Some((80, 80)), Proto::Tcp),
                rule("0.0.0.0", 0, Some((53, 53)), Proto::Udp),
                rule("::1", 128, None, Proto::Any),
            ])),
            ..GroupRules::default()
        };
        let c = rules.compile(42, 7).expect("compiles");
        assert_eq!(c.policy.connect, list::DENY);
        assert_eq!(c.policy.bind, list::NONE);
        assert_eq!(c.policy.net_generation, 7);
        assert_eq!(
            shape(&c),
            vec![
                (list::V4, 0, vec![2]),
                (list::V4, 8, vec![0, 2]),
                (list::V4, 16, vec![0, 1, 2]),
                (list::V6, 0, vec![]),
                (list::V6, 128, vec![3]),
            ]
        );
        let (key, set) = &c.net[2];
        assert_eq!(key.data().cgroup_id(), 42);
        assert_eq!(key.data().addr[..4], [10, 1, 0, 0]);
        assert_eq!(
            set.entries[1],
            NetRuleEntry {
                port_lo: 80,
                port_hi: 80,
                proto: 6,
                _pad: 0,
                rule: 1
            }
        );
        assert_eq!((set.entries[0].port_lo, set.entries[0].port_hi), (0, 65535));
    }

    #[test]
    fn too_many_overlapping_rules_are_refused() {
        let many = (0..=RULES_PER_PREFIX as u16)
            .map(|p| rule("127.0.0.0", 8, Some((p + 1, p + 1)), Proto::Tcp))
            .collect();
        let rules = GroupRules {
            bind: Some(deny(many)),
            ..GroupRules::default()
        };
        let err = rules.check().expect_err("33 rules on one prefix");
        assert!(err.contains("at most 32"), "{err}");
    }

    #[test]
    fn limits_take_the_lower_rate_and_keep_the_budget() {
        let throttle = |t| Caps {
            throttle: Some(t),
            yielded: None,
        };
        let c = limit_conf(
            Some(1_250_000),
            throttle(625_000),
            Some((1000, Duration::from_secs(60))),
        );
        assert_eq!(c.rate, 625_000);
        assert_eq!(c.ns_per_byte_q16, 1600 << 16);
        assert_eq!((c.rule_rate, c.throttle_rate), (1_250_000, 625_000));
        assert_eq!((c.budget_bytes, c.window_ns), (1000, 60_000_000_000));
        assert_eq!(limit_conf(None, Caps::default(), None).ns_per_byte_q16, 0);
        assert_eq!(
            limit_conf(None, throttle(u64::MAX), None).ns_per_byte_q16,
            1
        );
        assert_eq!(
            limit_conf(Some(1), Caps::default(), None).ns_per_byte_q16,
            1 << 43
        );
        // A yield and a throttle each keep their own value; the lowest rules.
        let both = Caps {
            throttle: Some(625_000),
            yielded: Some(250_000),
        };
        let c = limit_conf(Some(1_250_000), both, None);
        assert_eq!(
            (c.rate, c.yield_rate, c.throttle_rate),
            (250_000, 250_000, 625_000)
        );
        assert_eq!(Caps::of(&c), both);
    }

    fn names(list: &[&str]) -> Vec<SyscallName> {
        list.iter().map(|n| n.parse().expect("a syscall")).collect()
    }

    fn syscall_rules(action: SyscallAction, list: &[&str], arch: Arch) -> GroupRules {
        GroupRules {
            syscalls: Some(SyscallRules {
                action,
                syscalls: names(list),
                arch,
            }),
            ..GroupRules::default()
        }
    }

    fn bit(map: &[u64], nr: u32) -> bool {
        map[(nr / 64) as usize] & (1 << (nr % 64)) != 0
    }

    #[test]
    fn syscalls_become_bits_and_hooks() {
        let kill = syscall_rules(
            SyscallAction::Kill,
            &["ptrace", "connect", "mmap"],
            Arch::X86_64,
        );
        let p = kill.compile(1, 0).expect("compiles").policy;
        assert!(bit(&p.kill, 101), "x86_64 ptrace");
        assert!(bit(&p.kill_compat, 26), "i386 ptrace");
        assert!(bit(&p.kill_compat, 102), "socketcall for connect");
        assert!(bit(&p.kill_compat, 362), "i386 connect");
        assert!(bit(&p.kill_compat, 192), "mmap2 for mmap");
        assert_eq!(p.flags, policy_flags::SYSCALLS);
        assert_eq!(p.deny_hooks, 0);

        let deny_rules = syscall_rules(
            SyscallAction::Deny,
            &["socket", "execveat", "accept4"],
            Arch::X86_64,
        );
        let p = deny_rules.compile(1, 0).expect("compiles").policy;
        assert_eq!(
            p.deny_hooks,
            hook::SOCKET_CREATE | hook::BPRM_CHECK | hook::SOCKET_ACCEPT
        );
        assert_eq!(p.flags, 0, "deny needs no sys_enter program");

        let bad = syscall_rules(SyscallAction::Deny, &["ptrace"], Arch::X86_64);
        assert!(bad.check().expect_err("ptrace").contains("no BPF-LSM hook"));
    }

    /// The same names become aarch64's numbers and arm32's for an aarch64
    /// node; a name aarch64 lacks is refused, naming the architecture.
    #[test]
    fn syscall_bits_follow_the_node_architecture() {
        let kill = syscall_rules(
            SyscallAction::Kill,
            &["ptrace", "personality", "getuid"],
            Arch::Aarch64,
        );
        let p = kill.compile(1, 0).expect("compiles").policy;
        assert!(bit(&p.kill, 117), "aarch64 ptrace");
        assert!(bit(&p.kill, 92), "aarch64 personality");
        assert!(!bit(&p.kill, 135), "x86_64's personality number");
        assert!(bit(&p.kill_compat, 26), "arm32 ptrace");
        assert!(bit(&p.kill_compat, 136), "arm32 personality");
        assert!(
            bit(&p.kill_compat, 24) && bit(&p.kill_compat, 199),
            "getuid, getuid32"
        );

        let fork = syscall_rules(SyscallAction::Log, &["getppid", "fork"], Arch::Aarch64);
        assert_eq!(
            fork.check().expect_err("fork on aarch64"),
            "\"fork\" does not exist on aarch64; use \"clone\""
        );
        let on_x86 = syscall_rules(SyscallAction::Log, &["getppid", "fork"], Arch::X86_64);
        assert!(on_x86.check().is_ok());
    }
}
