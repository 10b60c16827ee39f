//! Property tests for the policy readers and every value parser: arbitrary input
//! and mutations of valid examples must never panic, and every error from a file
//! reader must say where (`FILE:LINE:COLUMN`).

use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::{Index, select};

use super::model::{Metric, MetricUnit};
use super::{netrule, parse_policy, perm, threshold};

/// The seed tutorial's cgconfig.conf.
const SEED_CGCONFIG: &str = "#\n# Copyright IBM Corporation. 2007\n#\ngroup foo {\ncpu {\n\
                             cpu.shares = 100;\n}\nmemory {\nmemory.limit_in_bytes = 5000000;\n}\n}\n";

/// cgconfig.conf features the README and the parser's tests use.
const MORE_CGCONFIG: &str = "mount {\n  cpu = /sys/fs/cgroup/cpu;\n  name=systemd = /sys/fs/cgroup/systemd;\n}\n\
template users/%u {\n  perm { task { uid = %u; } }\n  cpu { cpu.shares = 10; }\n}\n\
group \"web/api\" {\n  perm {\n    task { uid = root; gid = \"users\"; fperm = 660; }\n    \
admin { uid = 0; gid = root; dperm = 775; fperm = 0644; }\n  }\n  cpuset { cpuset.cpus = \"0-1\"; }\n  \
name=systemd { }\n  memory { memory.max = 50M; memory.swap.max = max; }\n}\n\
group a/b { cpu { cpu.max = \"max 100000\"; } }\n\
default {\n  perm {\n    task { uid = root; gid = root; fperm = 660; }\n    \
admin { uid = root; gid = wheel; dperm = 775; fperm = 644; }\n  }\n}\n";

const POLICY_TOML: &str = include_str!("../../../examples/policy.toml");
const README: &str = include_str!("../../../README.md");

/// The README's fenced cgconfig.conf and TOML examples.
fn readme_examples() -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut rest = README;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let Some(nl) = after.find('\n') else { break };
        let info = &after[..nl];
        let body_start = &after[nl + 1..];
        let Some(end) = body_start.find("```") else {
            break;
        };
        let body = &body_start[..end];
        if matches!(info.trim(), "" | "toml") && body.contains("group") {
            out.push(body);
        }
        rest = &body_start[end + 3..];
    }
    out
}

/// Every valid example, with the file name it is read under.
pub(crate) static EXAMPLES: LazyLock<Vec<(&'static str, &'static str)>> = LazyLock::new(|| {
    let mut all = vec![
        ("seed.conf", SEED_CGCONFIG),
        ("more.conf", MORE_CGCONFIG),
        ("policy.toml", POLICY_TOML),
    ];
    for text in readme_examples() {
        let name = if text.trim_start().starts_with('[') {
            "readme.toml"
        } else {
            "readme.conf"
        };
        all.push((name, text));
    }
    all
});

/// Fragments that mean something to one reader or the other.
const TOKENS: &[&str] = &[
    "{",
    "}",
    ";",
    "=",
    "\"",
    "#",
    "\n",
    "[",
    "]",
    "[[",
    "]]",
    ",",
    ".",
    "'",
    "'''",
    "\"\"\"",
    "\\",
    "\\u",
    "group",
    "perm",
    "task",
    "admin",
    "mount",
    "default",
    "template",
    "namespace",
    "uid",
    "gid",
    "fperm",
    "dperm",
    "name=",
    "memory",
    "cpu",
    "cpuset",
    "io",
    "cgroup",
    "memory.limit_in_bytes",
    "memory.max",
    "cpu.shares",
    "cpu.weight",
    "cpu.max",
    "io.weight",
    "cpuset.cpus",
    "pids.max",
    "cgroup.procs",
    "tasks",
    "controllers",
    "priority",
    "network",
    "syscalls",
    "when",
    "agent",
    "connect_deny",
    "connect_allow",
    "bind_allow",
    "egress_rate",
    "egress_budget",
    "deny",
    "action",
    "metric",
    "above",
    "below",
    "for",
    "then",
    "until",
    "-1",
    "0",
    "0-5",
    "5-0",
    "max",
    "1e99",
    "99999999999999999999999",
    "18446744073709551616",
    "1.5",
    ".5",
    "5.",
    "-",
    "+",
    "10G/1d",
    "1G/0s",
    "10Mbit",
    "12.5MB/s",
    "0bit",
    "1m30s",
    "100ms",
    "0777",
    "7777",
    "10000",
    "::1",
    "[::1]:80",
    "10.0.0.0/8",
    "0.0.0.0/0:1-65535/udp",
    "/33",
    ":0",
    ":99999",
    "/tcp",
    "%",
    "ü",
    "é",
    "\u{0}",
    "\u{feff}",
    "\r\n",
    "\t",
    "..",
    "/",
    "//",
    "true",
    "false",
    "inf",
    "nan",
    "1979-05-27",
    "{ }",
    "[]",
    "x = 1",
    "[group.\"x\"]",
    "[group.x.network]",
    "[[group.x.when]]",
    "group.x.\"cpu.shares\" = 1",
];

#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Delete(Index, u8),
    Insert(Index, String),
    Replace(Index, char),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Truncate(Index),
}

pub(crate) fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(TOKENS).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
        1 => "[ -~]{0,12}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 1u8..16).prop_map(|(i, n)| Mutation::Delete(i, n)),
        3 => (any::<Index>(), fragment()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        1 => (any::<Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        1 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Applies `mutations` to `text`, working on characters so the result stays a
/// `String`.
pub(crate) fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for m in mutations {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            Mutation::Delete(i, n) => {
                let start = at(i, chars.len()).min(chars.len());
                let end = (start + usize::from(*n)).min(chars.len());
                chars.drain(start..end);
            }
            Mutation::Insert(i, t) => {
                let pos = at(i, chars.len()).min(chars.len());
                chars.splice(pos..pos, t.chars());
            }
            Mutation::Replace(i, c) => {
                if !chars.is_empty() {
                    let pos = i.index(chars.len());
                    chars[pos] = *c;
                }
            }
            Mutation::DuplicateLine(i) | Mutation::SwapLines(i, _) => {
                let s: String = chars.iter().collect();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let a = i.index(lines.len());
                if let Mutation::SwapLines(_, j) = m {
                    let b = j.index(lines.len());
                    lines.swap(a, b);
                } else {
                    lines.insert(a, lines[a]);
                }
                chars = lines.join("\n").chars().collect();
            }
            Mutation::Truncate(i) => {
                let pos = at(i, chars.len()).min(chars.len());
                chars.truncate(pos);
            }
        }
    }
    chars.into_iter().collect()
}

/// A valid example with a few mutations, and the name it is read under.
pub(crate) fn mutated_example() -> impl Strategy<Value = (&'static str, String)> {
    (
        select(EXAMPLES.clone()),
        prop::collection::vec(mutation(), 1..5),
    )
        .prop_map(|((name, text), muts)| (name, mutate(text, &muts)))
}

#[test]
fn examples_are_valid() {
    assert!(EXAMPLES.len() >= 5, "README examples not found");
    for (name, text) in EXAMPLES.iter() {
        if let Err(err) = parse_policy(text.as_bytes(), Path::new(name)) {
            panic!("{name}: {err}");
        }
    }
}

proptest! {
    #[test]
    fn value_parsers_take_any_text(text in any::<String>()) {
        super::run_value_parsers(&text);
    }

    #[test]
    fn value_parsers_take_unit_like_text(
        text in "[-+ ]?[0-9]{0,25}(\\.[0-9]{0,25})?[ ]?(|[kKmMgGtTpPeE]i?[bB]?|bit|[kKmMgG]i?bit|[kKmMgG]i?B/s|bps|ms|s|m|h|d|us|%)(/[0-9]{0,3}[smhd]?)?"
    ) {
        let _ = crate::units::parse_duration(&text);
        let _ = crate::units::parse_size(&text);
        let _ = crate::units::parse_rate(&text);
        let _ = crate::units::parse_budget(&text);
        let _ = crate::units::parse_plain(&text);
        let _ = threshold::parse_threshold(MetricUnit::BytesPerSec, &text);
        let _ = threshold::parse_threshold(MetricUnit::Percent, &text);
    }

    #[test]
    fn sizes_scale_by_their_unit(n in 0u64..(1 << 20), unit in 0usize..6) {
        let (suffix, shift) = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40), ("P", 50)][unit];
        let want = n.checked_mul(1 << shift);
        prop_assert_eq!(crate::units::parse_size(&format!("{n}{suffix}")).ok(), want);
        let binary = crate::units::parse_size(&format!("{n}{suffix}iB")).ok();
        prop_assert_eq!(binary, want.filter(|_| unit > 0));
    }

    #[test]
    fn durations_add_up(h in 0u64..48, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
        let text = format!("{h}h{m}m {s}s{ms}ms");
        let want = std::time::Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
        prop_assert_eq!(crate::units::parse_duration(&text), Ok(want));
    }

    #[test]
    fn rates_in_bits_are_an_eighth_in_bytes(n in 1u64..1_000_000) {
        prop_assert_eq!(crate::units::parse_rate(&format!("{}Kbit", n * 8)), Ok(n * 1000));
        prop_assert_eq!(crate::units::parse_rate(&format!("{n}KB/s")), Ok(n * 1000));
    }

    #[test]
    fn budgets_split_size_and_window(n in 1u64..100_000, secs in 1u64..100_000) {
        let (bytes, window) = crate::units::parse_budget(&format!("{n}M/{secs}s")).unwrap();
        prop_assert_eq!(bytes, n << 20);
        prop_assert_eq!(window.as_secs(), secs);
    }

    #[test]
    fn net_rules_read_back_what_was_written(
        v4 in any::<[u8; 4]>(),
        v6 in any::<[u16; 8]>(),
        ipv6 in any::<bool>(),
        prefix in any::<u8>(),
        ports in proptest::option::of((any::<u16>(), any::<u16>())),
        proto in 0usize..3,
    ) {
        let max = if ipv6 { 128 } else { 32 };
        let prefix = prefix % (max + 1);
        // The network address itself: host bits set are refused, by design.
        let addr: std::net::IpAddr = if ipv6 {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            std::net::Ipv6Addr::from(u128::from(std::net::Ipv6Addr::from(v6)) & mask).into()
        } else {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::from(v4)) & mask).into()
        };
        let ports = ports.map(|(a, b)| (a.min(b).max(1), a.max(b).max(1)));
        let mut text = format!("{addr}/{prefix}");
        if let Some((lo, hi)) = ports {
            text.push_str(&if lo == hi { format!(":{lo}") } else { format!(":{lo}-{hi}") });
        }
        text.push_str(["", "/tcp", "/udp"][proto]);
        let (net, got_ports, _) = netrule::parse_net_rule(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(net.prefix_len(), prefix, "{}", text);
        prop_assert!(net.contains(&addr), "{} does not contain {}", text, addr);
        prop_assert_eq!(got_ports, ports, "{}", text);
    }

    #[test]
    fn octal_modes_read_back(mode in 0u32..=0o7777, width in 0usize..6) {
        let text = format!("{mode:0width$o}");
        prop_assert_eq!(perm::parse_mode(&text), Ok(mode));
        let too_big = format!("{:o}", mode + 0o10000);
        prop_assert!(perm::parse_mode(&too_big).is_err(), "{}", too_big);
    }
}

// ----- a policy printed from the model reads back equal ------------------------

/// One valid `[group."NAME"]` with every kind of section, as TOML text.
fn arb_group(index: usize) -> impl Strategy<Value = String> {
    let settings = prop::collection::vec(
        prop_oneof![
            (1u64..4096).prop_map(|n| format!("\"memory.max\" = \"{n}M\"")),
            (1u32..10_000).prop_map(|n| format!("\"cpu.weight\" = {n}")),
            (1u32..100_000).prop_map(|n| format!("\"pids.max\" = \"{n}\"")),
        ],
        0..3,
    );
    let priority = prop::option::of(select(vec!["high", "normal", "low"]));
    let rule = (
        any::<u32>(),
        0u8..=32,
        prop::option::of((1u16..1000, 0u16..1000)),
        0usize..3,
    )
        .prop_map(|(addr, prefix, ports, proto)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(addr & mask);
            let ports = ports.map_or(String::new(), |(lo, span)| format!(":{lo}-{}", lo + span));
            let proto = ["", "/tcp", "/udp"][proto];
            format!("\"{net}/{prefix}{ports}{proto}\"")
        });
    let network = prop::option::of((
        prop::collection::vec(rule, 1..4),
        any::<bool>(),
        prop::option::of(1u64..1_000_000),
        prop::option::of((1u64..1000, 1u64..48)),
    ));
    let syscalls = prop::option::of((
        prop::sample::subsequence(vec!["ptrace", "personality", "mount", "kexec_load"], 1..4),
        select(vec!["log", "kill"]),
    ));
    let when = prop::collection::vec(
        (
            select(Metric::ALL.to_vec()),
            any::<bool>(),
            1u32..1000,
            0u64..60,
            prop::sample::subsequence(
                vec![
                    "log",
                    "kill",
                    "freeze",
                    "set cpu.weight=50",
                    "throttle egress 5Mbit",
                ],
                1..3,
            ),
            prop::option::of(1u64..600),
        ),
        0..3,
    );
    (settings, priority, network, syscalls, when).prop_map(
        move |(settings, priority, network, syscalls, when)| {
            let name = format!("\"g{index}\"");
            let mut text = format!("[group.{name}]\n");
            let mut seen = Vec::new();
            for s in settings {
                let key = s.split(" = ").next().unwrap_or_default().to_owned();
                if !seen.contains(&key) {
                    text.push_str(&s);
                    text.push('\n');
                    seen.push(key);
                }
            }
            if let Some(p) = priority {
                text.push_str(&format!("priority = \"{p}\"\n"));
            }
            if let Some((mut rules, allow, rate, budget)) = network {
                rules.sort();
                rules.dedup();
                let mode = if allow { "allow" } else { "deny" };
                text.push_str(&format!(
                    "[group.{name}.network]\nconnect_{mode} = [{}]\n",
                    rules.join(", ")
                ));
                if let Some(r) = rate {
                    text.push_str(&format!("egress_rate = \"{r}Kbit\"\n"));
                }
                if let Some((m, h)) = budget {
                    text.push_str(&format!("ingress_budget = \"{m}M/{h}h\"\n"));
                }
            }
            if let Some((deny, action)) = syscalls {
                let deny: Vec<String> = deny.iter().map(|d| format!("\"{d}\"")).collect();
                text.push_str(&format!(
                    "[group.{name}.syscalls]\ndeny = [{}]\naction = \"{action}\"\n",
                    deny.join(", ")
                ));
            }
            for (metric, above, n, hold, then, until) in when {
                let threshold = match metric.unit() {
                    MetricUnit::Bytes | MetricUnit::BytesPerSec => format!("\"{n}M\""),
                    _ => format!("{n}.5"),
                };
                let cmp = if above { "above" } else { "below" };
                let then: Vec<String> = then.iter().map(|a| format!("\"{a}\"")).collect();
                text.push_str(&format!(
                    "[[group.{name}.when]]\nmetric = \"{metric}\"\n{cmp} = {threshold}\n\
                     for = \"{hold}s\"\nthen = [{}]\n",
                    then.join(", ")
                ));
                if let Some(u) = until {
                    text.push_str(&format!("until = \"{u}s\"\n"));
                }
            }
            text
        },
    )
}

fn arb_policy_text() -> impl Strategy<Value = String> {
    let agent = prop::option::of((10u64..5000, any::<bool>(), select(vec!["keep", "detach"])));
    let groups = (0usize..4).prop_flat_map(|n| (0..n).map(arb_group).collect::<Vec<_>>());
    (agent, groups).prop_map(|(agent, groups)| {
        let mut text = String::new();
        if let Some((ms, observe, on_exit)) = agent {
            text.push_str(&format!(
                "[agent]\ninterval = \"{ms}ms\"\nobserve = {observe}\non_exit = \"{on_exit}\"\n\
                 metrics = \"127.0.0.1:9750\"\nparent = \"system.slice/x\"\n\n"
            ));
        }
        text.push_str(&groups.concat());
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Reading a policy, printing the model and reading the print gives the
    /// same model: the print is a fixed point and every value survives it.
    #[test]
    fn a_printed_policy_reads_back_equal(text in arb_policy_text()) {
        let first = super::parse_toml(&text, Path::new("p.toml"))
            .map_err(|e| TestCaseError::fail(format!("{text}\n{e}")))?;
        let printed = super::to_toml(&first);
        let second = super::parse_toml(&printed, Path::new("printed.toml"))
            .map_err(|e| TestCaseError::fail(format!("{printed}\n{e}")))?;
        prop_assert_eq!(super::to_toml(&second), printed.clone());
        prop_assert_eq!(first.groups.len(), second.groups.len());
        for (a, b) in first.groups.iter().zip(&second.groups) {
            prop_assert_eq!(&a.name, &b.name);
            prop_assert_eq!(a.network.as_ref().map(|n| (n.egress_rate.as_ref().map(|r| r.value), n.ingress_budget.as_ref().map(|b| (b.bytes, b.window)))),
                b.network.as_ref().map(|n| (n.egress_rate.as_ref().map(|r| r.value), n.ingress_budget.as_ref().map(|b| (b.bytes, b.window)))));
            let rules = |g: &super::GroupSpec| g.network.as_ref().and_then(|n| n.connect.as_ref()).map(|l| (l.mode, l.rules.iter().map(|r| (r.net, r.ports, r.proto)).collect::<Vec<_>>()));
            prop_assert_eq!(rules(a), rules(b));
            let whens = |g: &super::GroupSpec| g.when.iter().map(|w| (w.metric.value, w.compare, w.threshold.value, w.hold.value, w.then.iter().map(|t| t.value.clone()).collect::<Vec<_>>(), w.until.as_ref().map(|u| u.value))).collect::<Vec<_>>();
            prop_assert_eq!(whens(a), whens(b));
            let sys = |g: &super::GroupSpec| g.syscalls.as_ref().map(|s| (s.action.value, s.deny.iter().map(|d| d.value).collect::<Vec<_>>()));
            prop_assert_eq!(sys(a), sys(b));
            prop_assert_eq!(a.priority.as_ref().map(|p| p.value), b.priority.as_ref().map(|p| p.value));
        }
        prop_assert_eq!(first.agent.map(|a| (a.interval.map(|i| i.value), a.observe.map(|o| o.value), a.on_exit.map(|o| o.value))),
            second.agent.map(|a| (a.interval.map(|i| i.value), a.observe.map(|o| o.value), a.on_exit.map(|o| o.value))));
    }
}

/// Every shipped example, cgconfig.conf ones too, prints to TOML that reads
/// back to the same print.
#[test]
fn examples_print_and_read_back() {
    for (name, text) in EXAMPLES.iter() {
        let Ok(policy) = parse_policy(text.as_bytes(), Path::new(name)) else {
            continue;
        };
        let printed = super::to_toml(&policy);
        let again = super::parse_toml(&printed, Path::new("printed.toml"))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{printed}"));
        assert_eq!(super::to_toml(&again), printed, "{name}");
    }
}
