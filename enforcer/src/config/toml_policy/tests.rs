//! The TOML reader's tests: what each mistake says and where it points.

use std::path::Path;

use super::read::dotted_key_start;
use super::{parse_action, parse_toml};
use crate::config::error::ConfigError;
use crate::config::model::*;

#[test]
fn finds_the_start_of_dotted_keys() {
    assert_eq!(dotted_key_start("x\nmemory."), Some(2));
    assert_eq!(dotted_key_start("  memory . swap .  "), Some(2));
    assert_eq!(dotted_key_start("\"a.b\".'c'."), Some(0));
    assert_eq!(dotted_key_start("memory"), None);
    assert_eq!(dotted_key_start("= ."), None);
}

mod policy {
    use super::*;

    const EXAMPLE: &str = r#"[group."foo"]
controllers = ["cpuset"]          # optional
"cpu.shares" = 100
"memory.limit_in_bytes" = "5000000"
"cpuset.cpus" = "0-1"

[group."foo".perm]
task  = { uid = "root", gid = "root", fperm = "660" }
admin = { uid = "root", gid = "root", dperm = "775", fperm = "644" }
"#;

    fn parse(text: &str) -> Policy {
        parse_toml(text, Path::new("/etc/enforcer.toml")).unwrap()
    }

    fn error(text: &str) -> ConfigError {
        parse_toml(text, Path::new("p.toml")).unwrap_err()
    }

    fn at(span: &Span) -> (u32, u32) {
        (span.line, span.column)
    }

    fn settings(group: &GroupSpec) -> Vec<(&str, &str, &str)> {
        group
            .controllers
            .iter()
            .flat_map(|c| {
                c.settings
                    .iter()
                    .map(move |s| (c.name.as_str(), s.key.as_str(), s.value.as_str()))
            })
            .collect()
    }

    #[test]
    fn example_policy() {
        let policy = parse(EXAMPLE);
        assert!(policy.warnings.is_empty());
        assert_eq!(policy.groups.len(), 1);
        let group = &policy.groups[0];
        assert_eq!(group.name, "foo");
        assert_eq!(at(&group.span), (1, 8));
        assert_eq!(group.span.file.as_path(), Path::new("/etc/enforcer.toml"));

        let names: Vec<_> = group.controllers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpuset", "cpu", "memory"]);
        assert_eq!(at(&group.controllers[0].span), (2, 16));
        assert_eq!(
            settings(group),
            [
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpu", "cpu.shares", "100"),
                ("memory", "memory.limit_in_bytes", "5000000"),
            ]
        );

        let shares = &group.controllers[1].settings[0];
        assert_eq!(at(&shares.span), (3, 1));
        assert_eq!(at(&shares.value_span), (3, 16));
        let limit = &group.controllers[2].settings[0];
        assert_eq!(at(&limit.span), (4, 1));
        assert_eq!(at(&limit.value_span), (4, 27));
    }

    #[test]
    fn example_perm() {
        let policy = parse(EXAMPLE);
        let perm = &policy.groups[0].perm;
        let task = perm.task.as_ref().unwrap();
        assert_eq!(task.uid.as_deref(), Some("root"));
        assert_eq!(task.gid.as_deref(), Some("root"));
        assert_eq!((task.fperm, task.dperm), (Some(0o660), None));
        assert_eq!(at(&task.span), (8, 1));
        let admin = perm.admin.as_ref().unwrap();
        assert_eq!((admin.dperm, admin.fperm), (Some(0o775), Some(0o644)));
        assert_eq!(at(&admin.span), (9, 1));
    }

    #[test]
    fn integer_modes_and_ids() {
        let policy = parse(
            "[group.a.perm]\ntask = { uid = 0, gid = 100, fperm = 660 }\n\
             admin = { dperm = 0o755, fperm = \"0644\" }\n",
        );
        let perm = &policy.groups[0].perm;
        let task = perm.task.as_ref().unwrap();
        assert_eq!(task.uid.as_deref(), Some("0"));
        assert_eq!(task.gid.as_deref(), Some("100"));
        assert_eq!(task.fperm, Some(0o660));
        let admin = perm.admin.as_ref().unwrap();
        assert_eq!(admin.dperm, Some(0o755));
        assert_eq!(admin.fperm, Some(0o644));
        // A group with only `perm` has no controllers; that is for `plan` to judge.
        assert!(policy.groups[0].controllers.is_empty());
    }

    #[test]
    fn dotted_keys_and_controller_tables() {
        let policy = parse(
            "[group.\"web/api\"]\nmemory.max = \"1G\"\nmemory.swap.max = 0\n\n\
             [group.\"web/api\".cpu]\nweight = 50\n\n[group.b]\ncontrollers = [\"cpuset\", \"pids\"]\n\
             \"io\" . 'cost' . max = 1\n",
        );
        let web = &policy.groups[0];
        assert_eq!(web.name, "web/api");
        assert_eq!(
            settings(web),
            [
                ("memory", "memory.max", "1G"),
                ("memory", "memory.swap.max", "0"),
                ("cpu", "cpu.weight", "50"),
            ]
        );
        let memory = &web.controllers[0];
        // Dotted keys point at their first part, sub-table keys at themselves.
        assert_eq!(at(&memory.settings[0].span), (2, 1));
        assert_eq!(at(&memory.settings[0].value_span), (2, 14));
        assert_eq!(at(&memory.settings[1].span), (3, 1));
        assert_eq!(at(&web.controllers[1].settings[0].span), (6, 1));
        assert_eq!(at(&web.controllers[1].settings[0].value_span), (6, 10));

        let b = &policy.groups[1];
        let names: Vec<_> = b.controllers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpuset", "pids", "io"]);
        assert!(b.controllers[..2].iter().all(|c| c.settings.is_empty()));
        assert_eq!(at(&b.controllers[1].span), (9, 26));
        let cost = &b.controllers[2].settings[0];
        assert_eq!(cost.key, "io.cost.max");
        assert_eq!((at(&cost.span), at(&cost.value_span)), ((10, 1), (10, 23)));
    }

    #[test]
    fn empty_file_is_an_empty_policy() {
        let policy = parse("# nothing yet\n");
        assert!(policy.groups.is_empty());
    }

    #[test]
    fn toml_syntax_errors_have_positions() {
        let err = error("[group.\"foo\"]\n\"cpu.shares\" = 100\n[group.foo\nx = 1\n");
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
        assert_eq!(at(err.span().unwrap()), (3, 11));
        assert_eq!(
            err.to_string(),
            "p.toml:3:11: expected `]` (unclosed table), found end of line"
        );

        #[rustfmt::skip]
        let cases: &[(&str, (u32, u32), &str)] = &[
            ("[group.a]\n\"cpu.shares\" = 1\n\"cpu.shares\" = 2\n", (3, 1), "invalid TOML: duplicate key `cpu.shares` in `[group.a]`: remove or merge"),
            ("[group.a]\n\"cpu.shares\" = \n", (2, 16), "found end of line"),
            ("[group.a]\n\"cpuset.cpus\" = \"0-1\n", (2, 21), "expected a closing quote, found end of line"),
            ("[group.a]\n\"cpu.shares\" = 1 2\n", (2, 18), "expected newline or `#` after the value, found `2`"),
            ("[group.a]\ncontrollers = [\"cpu\",\n", (2, 22), "expected `]` (unclosed array), found end of line"),
        ];
        for (text, position, fragment) in cases {
            let err = error(text);
            assert_eq!(at(err.span().unwrap()), *position, "{text:?}: {err}");
            assert!(
                err.to_string().contains(fragment),
                "{text:?}: wanted {fragment:?} in {err}"
            );
        }
    }

    #[test]
    fn container_rules_read_and_refuse_what_selects_nothing() {
        let p = crate::config::parse_toml(
            "[[container]]\nruntime = \"podman\"\nname = \"web-*\"\n\n[container.network]\n\
             connect_deny = [\"10.0.0.0/8\"]\n\n[[container]]\nid = \"3f2a\"\n\
             [container.syscalls]\ndeny = [\"ptrace\"]\naction = \"kill\"\n",
            std::path::Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(p.containers.len(), 2);
        assert_eq!(p.containers[0].rules.name, "container[1]");
        assert_eq!(p.containers[0].name.as_ref().unwrap().value, "web-*");
        assert!(p.containers[0].rules.network.is_some());
        assert_eq!(p.containers[1].id.as_ref().unwrap().value, "3f2a");
        for (text, fragment) in [
            (
                "[[container]]\n[container.network]\nconnect_deny = []\n",
                "selects every container",
            ),
            ("[[container]]\nname = \"x\"\n", "has no rules"),
            (
                "[[container]]\nruntime = \"lxc\"\n[container.network]\nconnect_deny = []\n",
                "unknown runtime `lxc`",
            ),
            (
                "[[container]]\nid = \"XYZ\"\n[container.network]\nconnect_deny = []\n",
                "lowercase hex",
            ),
            (
                "[[container]]\nname = \"x\"\n\"memory.max\" = \"1G\"\n",
                "unknown key",
            ),
        ] {
            let err = error(text).to_string();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn unknown_top_level_table() {
        let err = error("[group.a]\n\"cpu.shares\" = 1\n\n[limits]\nx = 1\n");
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "p.toml:4:2: unknown table `[limits]`: this version supports only `[agent]`, \
             `[arbiter]`, `[group.\"NAME\"]`, `[[classify]]` and `[[container]]` tables; remove \
             it or move its settings into a group"
        );
        let err = error("version = 2\n");
        assert!(
            err.to_string()
                .starts_with("p.toml:1:1: unknown top-level key `version`")
        );
    }

    #[test]
    fn invalid_values_point_at_the_value() {
        #[rustfmt::skip]
        let cases: &[(&str, (u32, u32), &str)] = &[
            ("[group.a]\n\"memory.oom.group\" = true\n", (2, 22), "`memory.oom.group` is a boolean"),
            ("[group.a]\n\"cpu.max\" = [\"max\", 100000]\n", (2, 13), "`cpu.max` is an array"),
            ("[group.a]\n\"cpu.weight\" = 1.5\n", (2, 16), "write it as a string, such as `\"1.5\"`"),
            ("[group.a]\nweight = 5\n", (2, 1), "unknown key `weight` in group `a`: expected a controller file such as `memory.max`, or `controllers`/`perm`"),
            ("[group.a]\n\".max\" = 5\n", (2, 1), "missing controller name"),
            ("[group.a]\ncontrollers = \"cpu\"\n", (2, 1), "`controllers` must be an array"),
            ("[group.a]\ncontrollers = [\"cpu\", 1]\n", (2, 23), "not an integer"),
            ("[group.a]\ncontrollers = [\"cpu\", \"cpu\"]\n", (2, 23), "listed twice"),
            ("[group.a]\n[[group.a.controllers]]\n", (2, 1), "controller names in quotes, not a table"),
            ("[group.a]\n\"cpu.x\" = 1979-05-27\n", (2, 11), "`cpu.x` is a date-time"),
            ("[group.a]\nmemory = { swap.max = true }\n", (2, 23), "`memory.swap.max` is a boolean"),
            ("[group.a]\n\"cpu.shares\" = 1\ncpu.shares = 2\n", (3, 1), "`cpu.shares` is set twice in group `a` (first at line 2, column 1)"),
            ("[group.a.perm]\ntask = { fperm = \"680\" }\n", (2, 18), "`fperm` value `680` is not an octal mode"),
            ("[group.a.perm]\ntask = { fperm = 690 }\n", (2, 18), "`fperm` value `690` is not an octal mode"),
            ("[group.a.perm]\ntask = { dperm = \"755\" }\n", (2, 10), "`dperm` is not allowed in `task`"),
            ("[group.a.perm]\nadmin = { mode = \"755\" }\n", (2, 11), "unknown key `mode` in `admin`: expected `uid`, `gid`, `dperm` or `fperm`"),
            ("[group.a.perm]\nowner = { }\n", (2, 1), "expected `task` or `admin`"),
            ("[group.a.perm]\ntask = { uid = true }\n", (2, 16), "`uid` is a boolean"),
            ("[group.a.perm]\ntask = \"root\"\n", (2, 1), "`task` must be a table"),
            ("[group.\"\"]\n\"cpu.shares\" = 1\n", (1, 8), "empty group name"),
            ("group = 1\n", (1, 1), "`group` must be a table of groups"),
            ("[group]\na = 1\n", (2, 1), "`a` must be a group table"),
        ];
        for (text, position, fragment) in cases {
            let err = error(text);
            assert!(
                matches!(err, ConfigError::Invalid { .. }),
                "{text:?}: {err:?}"
            );
            assert_eq!(at(err.span().unwrap()), *position, "{text:?}: {err}");
            assert!(
                err.to_string().contains(fragment),
                "{text:?}: wanted {fragment:?} in {err}"
            );
        }
    }
}

mod enforce {
    use super::*;

    use std::net::{IpAddr, Ipv4Addr};
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::counters::Counter;

    fn parse(text: &str) -> Policy {
        match parse_toml(text, Path::new("p.toml")) {
            Ok(policy) => policy,
            Err(err) => panic!("{text:?}: {err}"),
        }
    }

    fn at(span: &Span) -> (u32, u32) {
        (span.line, span.column)
    }

    /// Line and column of the first `needle` in `text`.
    fn locate(text: &str, needle: &str) -> (u32, u32) {
        let offset = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not found"));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line as u32, column as u32)
    }

    fn group<'p>(policy: &'p Policy, name: &str) -> &'p GroupSpec {
        policy.groups.iter().find(|g| g.name == name).unwrap()
    }

    /// (entry, canonical spelling, ports, protocol)
    type RuleCase = (&'static str, &'static str, Option<(u16, u16)>, Proto);
    /// (rule body, metric, compare, threshold, `for` in ms, `until` in s)
    type WhenCase = (&'static str, Metric, Compare, f64, u64, Option<u64>);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The schema example as first specified, unchanged: it must parse.
    const SPECIFIED: &str = r#"[agent]
metrics = "127.0.0.1:9750"   # SocketAddr
interval = "1s"              # duration: 100ms, 1s, 2m; must be >= 10ms
on_exit = "keep"             # keep | detach
audit_log = "/var/log/enforcer/audit.jsonl"   # optional
observe = false              # also account every other group

[group."web"]
"memory.max" = "512M"        # controller settings as today
priority = "high"            # high | normal | low  (later: cpu weight + skb priority)

[group."web".network]
connect_deny  = ["10.0.0.0/8", "127.0.0.2/32:9", "::1/128:9000-9100", "[::1]:80", "127.0.0.1:8080/udp"]
connect_allow = []           # non-empty: everything else is denied
bind_deny     = ["0.0.0.0/0:1-1023"]
bind_allow    = []
egress_rate   = "10Mbit"
ingress_rate  = "100Mbit"
egress_budget = "10G/1d"
ingress_budget = "1G/1h"

[group."web".syscalls]
deny   = ["ptrace", "personality"]
action = "kill"                       # log | kill | deny

[[group."web".when]]
metric = "egress_bytes_per_sec"
above  = "50M"
for    = "5s"
then   = ["throttle egress 5Mbit", "set cpu.weight=50", "freeze", "kill", "log"]
until  = "30s"
"#;

    #[test]
    fn specified_example() {
        let policy = parse(SPECIFIED);
        let agent = policy.agent.as_ref().unwrap();
        assert_eq!(at(&agent.span), (1, 2));
        let metrics = agent.metrics.as_ref().unwrap();
        assert_eq!(metrics.value, "127.0.0.1:9750".parse().unwrap());
        assert_eq!(at(&metrics.span), (2, 11));
        assert_eq!(agent.interval.as_ref().unwrap().value, secs(1));
        assert_eq!(agent.on_exit.as_ref().unwrap().value, OnExit::Keep);
        assert_eq!(
            agent.audit_log.as_ref().unwrap().value,
            PathBuf::from("/var/log/enforcer/audit.jsonl")
        );
        assert!(!agent.observe.as_ref().unwrap().value);

        let web = group(&policy, "web");
        assert_eq!(web.controllers[0].settings[0].key, "memory.max");
        let priority = web.priority.as_ref().unwrap();
        assert_eq!(
            (priority.value, at(&priority.span)),
            (Priority::HIGH, (10, 12))
        );

        let network = web.network.as_ref().unwrap();
        assert_eq!(at(&network.span), (12, 14));
        let connect = network.connect.as_ref().unwrap();
        assert_eq!((connect.mode, at(&connect.span)), (Access::Deny, (13, 1)));
        let rules: Vec<String> = connect.rules.iter().map(ToString::to_string).collect();
        assert_eq!(
            rules,
            [
                "10.0.0.0/8",
                "127.0.0.2/32:9",
                "[::1/128]:9000-9100",
                "[::1/128]:80",
                "127.0.0.1/32:8080/udp"
            ]
        );
        let columns: Vec<u32> = connect.rules.iter().map(|r| r.span.column).collect();
        assert_eq!(columns, [18, 32, 50, 71, 83]);
        let bind = network.bind.as_ref().unwrap();
        assert_eq!(bind.mode, Access::Deny);
        assert_eq!(bind.rules[0].ports, Some((1, 1023)));
        assert_eq!(network.egress_rate.as_ref().unwrap().value, 1_250_000);
        assert_eq!(network.ingress_rate.as_ref().unwrap().value, 12_500_000);
        let egress = network.egress_budget.as_ref().unwrap();
        assert_eq!((egress.bytes, egress.window), (10 << 30, secs(86_400)));
        assert_eq!(at(&egress.span), (19, 17));
        let ingress = network.ingress_budget.as_ref().unwrap();
        assert_eq!((ingress.bytes, ingress.window), (1 << 30, secs(3600)));
        // The empty allow lists are accepted, with a warning each.
        let warned: Vec<(u32, u32)> = policy.warnings.iter().map(|(s, _)| at(s)).collect();
        assert_eq!(warned, [(14, 1), (16, 1)]);
        assert!(
            policy.warnings[0]
                .1
                .contains("`connect_allow = []` has no effect")
        );

        let syscalls = web.syscalls.as_ref().unwrap();
        let denied: Vec<&str> = syscalls.deny.iter().map(|s| s.value.name()).collect();
        assert_eq!(denied, ["ptrace", "personality"]);
        assert_eq!(at(&syscalls.deny[1].span), (23, 21));
        assert_eq!(syscalls.action.value, SyscallAction::Kill);

        assert_eq!(web.when.len(), 1);
        let rule = &web.when[0];
        assert_eq!(at(&rule.span), (26, 1));
        assert_eq!(rule.metric.value, Metric::Rate(Counter::EgressBytes));
        assert_eq!(rule.compare, Compare::Above);
        assert_eq!(rule.threshold.value, 52_428_800.0);
        assert_eq!(at(&rule.threshold.span), (28, 10));
        assert_eq!(rule.hold.value, secs(5));
        let then: Vec<&Action> = rule.then.iter().map(|a| &a.value).collect();
        assert_eq!(
            then,
            [
                &Action::Throttle {
                    dir: Direction::Egress,
                    bytes_per_sec: 625_000
                },
                &Action::SetKey {
                    key: "cpu.weight".to_owned(),
                    value: "50".to_owned()
                },
                &Action::Freeze,
                &Action::Kill,
                &Action::Log,
            ]
        );
        assert_eq!(at(&rule.then[1].span), (30, 36));
        assert_eq!(rule.until.as_ref().unwrap().value, secs(30));
    }

    #[test]
    fn example_policy_file() {
        let text = include_str!("../../../../examples/policy.toml");
        let policy = parse(text);
        assert!(policy.warnings.is_empty(), "{:?}", policy.warnings);
        let names: Vec<&str> = policy.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["web", "batch/worker"]);

        let web = group(&policy, "web");
        let connect = web.network.as_ref().unwrap().connect.as_ref().unwrap();
        assert_eq!(connect.rules.len(), 5);
        assert_eq!(at(&connect.rules[3].span), locate(text, "\"[::1]:80\""));
        assert_eq!(
            web.network
                .as_ref()
                .unwrap()
                .ingress_rate
                .as_ref()
                .unwrap()
                .value,
            12_500_000
        );
        assert_eq!(web.when.len(), 2);
        assert_eq!(
            at(&web.when[1].span),
            locate(text, "[[group.\"web\".when]]\nmetric = \"memory")
        );
        assert_eq!(web.when[1].hold.value, Duration::ZERO);

        let batch = group(&policy, "batch/worker");
        assert_eq!(batch.priority.as_ref().unwrap().value, Priority::LOW);
        let connect = batch.network.as_ref().unwrap().connect.as_ref().unwrap();
        assert_eq!(connect.mode, Access::Allow);
        assert_eq!(connect.rules[1].to_string(), "[fd00:10::5/128]:5432/tcp");
        let syscalls = batch.syscalls.as_ref().unwrap();
        assert_eq!(syscalls.action.value, SyscallAction::Deny);
        let oom = &batch.when[0];
        assert_eq!(
            (oom.metric.value, oom.threshold.value),
            (Metric::OomKills, 3.0)
        );
        assert_eq!(at(&oom.threshold.span), locate(text, "3\nthen"));
        assert_eq!(batch.when[1].threshold.value, 150.0);
        assert_eq!(batch.when[1].hold.value, secs(60));
    }

    #[test]
    fn cgconfig_and_plain_groups_have_no_enforcement() {
        let policy = crate::config::parse_cgconfig(
            "group foo {\n  cpu { cpu.shares = 100; }\n}\n",
            Path::new("c.conf"),
        )
        .unwrap();
        let foo = &policy.groups[0];
        assert!(policy.agent.is_none());
        assert!(foo.priority.is_none() && foo.network.is_none() && foo.syscalls.is_none());
        assert!(foo.when.is_empty());

        let policy = parse("[group.a]\n\"cpu.shares\" = 1\n");
        assert!(policy.agent.is_none());
        assert!(policy.groups[0].network.is_none() && policy.groups[0].when.is_empty());
    }

    #[test]
    fn agent_forms() {
        let policy = parse("[agent]\n");
        let agent = policy.agent.unwrap();
        assert_eq!(agent.metrics, None);
        assert_eq!(
            (agent.interval, agent.on_exit, agent.observe),
            (None, None, None)
        );

        let policy = parse(
            "agent = { metrics = \"[::1]:9000\", interval = \"10ms\", on_exit = \"detach\", \
             observe = true }\n",
        );
        let agent = policy.agent.unwrap();
        assert_eq!(agent.metrics.unwrap().value, "[::1]:9000".parse().unwrap());
        let interval = agent.interval.unwrap();
        assert_eq!(
            (interval.value, at(&interval.span)),
            (Duration::from_millis(10), (1, 46))
        );
        assert_eq!(agent.on_exit.unwrap().value, OnExit::Detach);
        assert!(agent.observe.unwrap().value);
        assert_eq!(agent.audit_log, None);

        let policy = parse("[agent]\ninterval = \"1m30s\"\n");
        assert_eq!(policy.agent.unwrap().interval.unwrap().value, secs(90));

        let policy = parse(
            "[agent]\nmetrics_depth = 4\nmetrics_max_groups = 200\naudit_max_size = \"10M\"\n",
        );
        let agent = policy.agent.unwrap();
        assert_eq!(agent.metrics_depth.unwrap().value, 4);
        assert_eq!(agent.metrics_max_groups.unwrap().value, 200);
        assert_eq!(agent.audit_max_size.unwrap().value, 10 << 20);
        let policy = parse("[agent]\naudit_max_size = 65536\n");
        assert_eq!(policy.agent.unwrap().audit_max_size.unwrap().value, 65536);

        let policy = parse(
            "[agent]\nmetrics_depth = 4\nmetrics_max_groups = 200\naudit_max_size = \"10M\"\n",
        );
        let agent = policy.agent.unwrap();
        assert_eq!(agent.metrics_depth.unwrap().value, 4);
        assert_eq!(agent.metrics_max_groups.unwrap().value, 200);
        assert_eq!(agent.audit_max_size.unwrap().value, 10 << 20);
        let policy = parse("[agent]\naudit_max_size = 65536\n");
        assert_eq!(policy.agent.unwrap().audit_max_size.unwrap().value, 65536);
    }

    #[test]
    fn arbiter_and_floors() {
        let policy = parse(
            "[agent]\negress_capacity = \"200Mbit\"\n\n[arbiter]\ninterval = \"100ms\"\n\
             resources = [\"cpu\", \"egress\"]\ncpu_pressure = \"20%\"\nstep = 25\n\
             restore_after = \"2s\"\n\n[group.b]\npriority = \"low\"\nmin_cpu = \"30%\"\n\
             min_memory = \"64M\"\nmin_io_weight = 10\nmin_egress = \"10Mbit\"\n",
        );
        let agent = policy.agent.as_ref().unwrap();
        assert_eq!(agent.egress_capacity.as_ref().unwrap().value, 25_000_000);
        let arbiter = policy.arbiter.as_ref().unwrap();
        assert_eq!(
            arbiter.interval.as_ref().unwrap().value,
            Duration::from_millis(100)
        );
        assert_eq!(
            arbiter.resources.as_ref().unwrap().value,
            [
                crate::config::Resource::Cpu,
                crate::config::Resource::Egress
            ]
        );
        assert_eq!(arbiter.cpu_pressure.as_ref().unwrap().value, 20.0);
        assert_eq!(arbiter.step.as_ref().unwrap().value, 25.0);
        let f = &policy.groups[0].floors;
        assert_eq!(f.cpu.as_ref().unwrap().value, 30.0);
        assert_eq!(f.memory.as_ref().unwrap().value, 64 << 20);
        assert_eq!(f.io_weight.as_ref().unwrap().value, 10);
        assert_eq!(f.egress.as_ref().unwrap().value, 1_250_000);
        // Printed back, it reads the same.
        let again = parse(&crate::config::to_toml(&policy));
        assert_eq!(
            again.arbiter.map(|a| a.step.map(|s| s.value)),
            Some(Some(25.0))
        );
        assert_eq!(
            again.groups[0].floors.egress.as_ref().map(|e| e.value),
            Some(1_250_000)
        );
        assert_eq!(
            again.agent.unwrap().egress_capacity.map(|c| c.value),
            Some(25_000_000)
        );
    }

    #[test]
    fn priorities() {
        for (text, priority) in [
            ("high", Priority::HIGH),
            ("normal", Priority::NORMAL),
            ("low", Priority::LOW),
        ] {
            let policy = parse(&format!("[group.a]\npriority = \"{text}\"\n"));
            let spec = policy.groups[0].priority.as_ref().unwrap();
            assert_eq!((spec.value, at(&spec.span)), (priority, (2, 12)));
            // `priority` is not a controller setting.
            assert!(policy.groups[0].controllers.is_empty());
        }
        let policy = parse("[group.a]\npriority = 60\n");
        let spec = policy.groups[0].priority.as_ref().unwrap();
        assert_eq!((spec.value.level(), at(&spec.span)), (60, (2, 12)));
    }

    #[test]
    fn network_rule_forms() {
        use Proto::*;
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        #[rustfmt::skip]
        let cases: &[RuleCase] = &[
            ("10.0.0.0/8", "10.0.0.0/8", None, Any),
            ("127.0.0.1", "127.0.0.1/32", None, Any),
            ("127.0.0.2/32:9", "127.0.0.2/32:9", Some((9, 9)), Any),
            ("127.0.0.1:8080/udp", "127.0.0.1/32:8080/udp", Some((8080, 8080)), Udp),
            ("0.0.0.0/0:1-1023", "0.0.0.0/0:1-1023", Some((1, 1023)), Any),
            ("10.0.0.0/8/tcp", "10.0.0.0/8/tcp", None, Tcp),
            ("::1", "::1/128", None, Any),
            ("::/0", "::/0", None, Any),
            ("::1/128:9000-9100", "[::1/128]:9000-9100", Some((9000, 9100)), Any),
            ("[::1]:80", "[::1/128]:80", Some((80, 80)), Any),
            ("[::1/128]:80", "[::1/128]:80", Some((80, 80)), Any),
            ("[fd00::/8]:53/udp", "[fd00::/8]:53/udp", Some((53, 53)), Udp),
            ("fe80::/10/tcp", "fe80::/10/tcp", None, Tcp),
        ];
        for hook in ["connect_deny", "connect_allow", "bind_deny", "bind_allow"] {
            for (text, canonical, ports, proto) in cases {
                let source = format!("[group.a.network]\n{hook} = [\"{text}\"]\n");
                let policy = parse(&source);
                let network = policy.groups[0].network.as_ref().unwrap();
                let list = if hook.starts_with("connect") {
                    assert!(network.bind.is_none());
                    network.connect.as_ref().unwrap()
                } else {
                    assert!(network.connect.is_none());
                    network.bind.as_ref().unwrap()
                };
                let mode = if hook.ends_with("allow") {
                    Access::Allow
                } else {
                    Access::Deny
                };
                assert_eq!(list.mode, mode);
                let rule = &list.rules[0];
                assert_eq!(rule.to_string(), *canonical, "{text}");
                assert_eq!((rule.ports, rule.proto), (*ports, *proto), "{text}");
                let column = u32::try_from(hook.len()).unwrap() + 5;
                assert_eq!(at(&rule.span), (2, column), "{text}");
                // The canonical spelling reads back as the same rule.
                let again = parse(&format!("[group.a.network]\n{hook} = [\"{canonical}\"]\n"));
                let network = again.groups[0].network.as_ref().unwrap();
                let list = network.connect.as_ref().or(network.bind.as_ref()).unwrap();
                assert_eq!(
                    (list.rules[0].net, list.rules[0].ports),
                    (rule.net, rule.ports)
                );
            }
        }
        let policy = parse("[group.a.network]\nconnect_allow = [\"127.0.0.0/8\"]\n");
        let rule = &policy.groups[0]
            .network
            .as_ref()
            .unwrap()
            .connect
            .as_ref()
            .unwrap()
            .rules[0];
        assert!(rule.net.contains(&localhost));
        assert!(!rule.net.contains(&IpAddr::V4(Ipv4Addr::new(128, 0, 0, 1))));
        assert!(!rule.net.contains(&"::1".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn rates_and_budgets() {
        #[rustfmt::skip]
        let rates: &[(&str, u64)] = &[
            ("10Mbit", 1_250_000), ("100Mbit", 12_500_000), ("1Gbit", 125_000_000),
            ("800Kbit", 100_000), ("64kbit", 8_000), ("1000bit", 125), ("1.5Mbit", 187_500),
            ("10Mbit/s", 1_250_000), ("1Mibit", 131_072), ("100B/s", 100), ("5KB/s", 5_000),
            ("5MB/s", 5_000_000), ("1GB/s", 1_000_000_000), ("4KiB/s", 4096),
            ("2MiB/s", 2 << 20), ("1GiB/s", 1 << 30),
        ];
        for (text, bytes) in rates {
            for key in ["egress_rate", "ingress_rate"] {
                let policy = parse(&format!("[group.a.network]\n{key} = \"{text}\"\n"));
                let network = policy.groups[0].network.as_ref().unwrap();
                let rate = network
                    .egress_rate
                    .as_ref()
                    .or(network.ingress_rate.as_ref())
                    .unwrap();
                assert_eq!(rate.value, *bytes, "{text}");
                let column = u32::try_from(key.len()).unwrap() + 4;
                assert_eq!(at(&rate.span), (2, column));
            }
        }
        #[rustfmt::skip]
        let budgets: &[(&str, u64, u64)] = &[
            ("10G/1d", 10 << 30, 86_400), ("1G/1h", 1 << 30, 3_600), ("500M/30m", 500 << 20, 1_800),
            ("1T/d", 1 << 40, 86_400), ("64K/1s", 64 << 10, 1), ("1000000/2h", 1_000_000, 7_200),
            ("1.5G/1d", 3 << 29, 86_400), ("2GiB/7d", 2 << 30, 604_800),
        ];
        for (text, bytes, window) in budgets {
            let policy = parse(&format!(
                "[group.a.network]\negress_budget = \"{text}\"\ningress_budget = \"{text}\"\n"
            ));
            let network = policy.groups[0].network.as_ref().unwrap();
            for budget in [&network.egress_budget, &network.ingress_budget] {
                let budget = budget.as_ref().unwrap();
                assert_eq!(
                    (budget.bytes, budget.window),
                    (*bytes, secs(*window)),
                    "{text}"
                );
            }
            assert_eq!(at(&network.ingress_budget.as_ref().unwrap().span), (3, 18));
        }
    }

    #[test]
    fn syscall_forms() {
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], SyscallAction)] = &[
            ("deny = [\"ptrace\"]\naction = \"log\"", &["ptrace"], SyscallAction::Log),
            ("deny = [\"ptrace\", \"personality\"]\naction = \"kill\"", &["ptrace", "personality"], SyscallAction::Kill),
            ("action = \"deny\"\ndeny = [\"connect\", \"bind\", \"socket\", \"listen\", \"accept\", \"accept4\", \"execve\", \"execveat\", \"setsockopt\"]",
             &["connect", "bind", "socket", "listen", "accept", "accept4", "execve", "execveat", "setsockopt"], SyscallAction::Deny),
            ("deny = [\"kexec_load\", \"init_module\", \"bpf\"]\naction = \"kill\"", &["kexec_load", "init_module", "bpf"], SyscallAction::Kill),
        ];
        for (body, names, action) in cases {
            let policy = parse(&format!("[group.a.syscalls]\n{body}\n"));
            let spec = policy.groups[0].syscalls.as_ref().unwrap();
            let denied: Vec<&str> = spec.deny.iter().map(|s| s.value.name()).collect();
            assert_eq!(&denied, names);
            assert_eq!(spec.action.value, *action);
            assert_eq!(at(&spec.span), (1, 10));
            assert!(policy.warnings.is_empty());
        }
        let policy = parse("[group.a.syscalls]\ndeny = [\"ptrace\"]\naction = \"kill\"\n");
        let spec = policy.groups[0].syscalls.as_ref().unwrap();
        assert_eq!(spec.deny[0].value.name(), "ptrace");
        assert_eq!(at(&spec.deny[0].span), (2, 9));
        assert_eq!(at(&spec.action.span), (3, 10));
    }

    #[test]
    fn action_forms() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Action)> = vec![
            ("log", Action::Log),
            ("kill", Action::Kill),
            ("freeze", Action::Freeze),
            (" freeze ", Action::Freeze),
            ("set cpu.weight=50", Action::SetKey { key: "cpu.weight".into(), value: "50".into() }),
            ("set cpu.max = 50000 100000", Action::SetKey { key: "cpu.max".into(), value: "50000 100000".into() }),
            ("set memory.high=400M", Action::SetKey { key: "memory.high".into(), value: "400M".into() }),
            ("throttle egress 5Mbit", Action::Throttle { dir: Direction::Egress, bytes_per_sec: 625_000 }),
            ("throttle ingress 1MB/s", Action::Throttle { dir: Direction::Ingress, bytes_per_sec: 1_000_000 }),
            ("throttle  egress   2MiB/s", Action::Throttle { dir: Direction::Egress, bytes_per_sec: 2 << 20 }),
        ];
        for (text, action) in cases {
            assert_eq!(parse_action(text), Ok(action.clone()), "{text}");
            let reversible = matches!(
                action,
                Action::SetKey { .. } | Action::Throttle { .. } | Action::Freeze
            );
            assert_eq!(action.is_reversible(), reversible);
        }
    }

    #[test]
    fn when_forms() {
        #[rustfmt::skip]
        let cases: &[WhenCase] = &[
            ("metric = \"egress_bytes\"\nabove = \"10G\"", Metric::Total(Counter::EgressBytes), Compare::Above, 10_737_418_240.0, 0, None),
            ("metric = \"egress_bytes\"\nabove = 1000", Metric::Total(Counter::EgressBytes), Compare::Above, 1000.0, 0, None),
            ("metric = \"egress_bytes_per_sec\"\nabove = \"50M\"\nfor = \"5s\"\nuntil = \"30s\"", Metric::Rate(Counter::EgressBytes), Compare::Above, 52_428_800.0, 5_000, Some(30)),
            ("metric = \"egress_bytes_per_sec\"\nabove = \"400Mbit\"", Metric::Rate(Counter::EgressBytes), Compare::Above, 50_000_000.0, 0, None),
            ("metric = \"ingress_bytes\"\nabove = \"1T\"", Metric::Total(Counter::IngressBytes), Compare::Above, 1_099_511_627_776.0, 0, None),
            ("metric = \"ingress_bytes_per_sec\"\nbelow = \"1MB/s\"\nfor = \"1m\"", Metric::Rate(Counter::IngressBytes), Compare::Below, 1_000_000.0, 60_000, None),
            ("metric = \"egress_packets_per_sec\"\nabove = 10000", Metric::Rate(Counter::EgressPackets), Compare::Above, 10_000.0, 0, None),
            ("metric = \"ingress_packets_per_sec\"\nabove = \"2500.5\"", Metric::Rate(Counter::IngressPackets), Compare::Above, 2_500.5, 0, None),
            ("metric = \"connect_attempts_per_sec\"\nabove = 100\nfor = \"100ms\"", Metric::Rate(Counter::ConnectAttempts), Compare::Above, 100.0, 100, None),
            ("metric = \"syscalls_per_sec\"\nabove = 1e5", Metric::Rate(Counter::Syscalls), Compare::Above, 100_000.0, 0, None),
            ("metric = \"memory_usage_bytes\"\nabove = \"500M\"\nuntil = \"0s\"", Metric::MemoryUsageBytes, Compare::Above, 524_288_000.0, 0, Some(0)),
            ("metric = \"oom_kills\"\nabove = 0", Metric::OomKills, Compare::Above, 0.0, 0, None),
            ("metric = \"cpu_usage_percent\"\nabove = \"150%\"\nfor = \"1m30s\"", Metric::CpuUsagePercent, Compare::Above, 150.0, 90_000, None),
            ("metric = \"cpu_usage_percent\"\nbelow = 0.5", Metric::CpuUsagePercent, Compare::Below, 0.5, 0, None),
        ];
        for (body, metric, compare, threshold, hold, until) in cases {
            let source = format!("[group.a]\n[[group.a.when]]\n{body}\nthen = [\"freeze\"]\n");
            let policy = parse(&source);
            let rule = &policy.groups[0].when[0];
            assert_eq!(
                (rule.metric.value, rule.compare),
                (*metric, *compare),
                "{body}"
            );
            assert_eq!(rule.threshold.value, *threshold, "{body}");
            assert_eq!(rule.hold.value.as_millis(), u128::from(*hold), "{body}");
            assert_eq!(
                rule.until.as_ref().map(|u| u.value.as_secs()),
                *until,
                "{body}"
            );
            assert_eq!(at(&rule.span), (2, 1));
            assert_eq!(at(&rule.metric.span), (3, 10));
            assert_eq!(at(&rule.threshold.span), (4, 9));
            assert!(policy.warnings.is_empty());
        }
        // Every metric has a name that reads back.
        for metric in Metric::ALL {
            assert_eq!(Metric::from_name(metric.name()), Some(metric));
        }

        // Inline tables, a single action without brackets, several rules in order.
        let policy = parse(
            "[group.a]\nwhen = [\n  { metric = \"oom_kills\", above = 1, then = \"kill\" },\n  \
             { metric = \"syscalls_per_sec\", below = 1, then = [\"log\"] },\n]\n",
        );
        let rules = &policy.groups[0].when;
        assert_eq!(rules.len(), 2);
        assert_eq!(at(&rules[0].span), (3, 3));
        assert_eq!(rules[0].then[0].value, Action::Kill);
        assert_eq!(at(&rules[0].then[0].span), (3, 45));
        // No `for`: zero, pointing at the rule.
        assert_eq!(at(&rules[0].hold.span), (3, 3));
        assert_eq!(rules[1].metric.value, Metric::Rate(Counter::Syscalls));
        assert_eq!(rules[1].compare, Compare::Below);
    }

    #[test]
    fn warnings_for_settings_without_effect() {
        #[rustfmt::skip]
        let cases: &[(&str, (u32, u32), &str)] = &[
            ("[group.a.network]\nconnect_allow = []\n", (2, 1), "`connect_allow = []` has no effect (an empty allow list restricts nothing): remove it; to refuse every address write `connect_deny = [\"0.0.0.0/0\", \"::/0\"]`"),
            ("[group.a.network]\nbind_deny = []\n", (2, 1), "`bind_deny = []` has no effect: remove it"),
            ("[group.a.syscalls]\ndeny = []\naction = \"log\"\n", (2, 1), "`syscalls` denies no syscall, so it has no effect"),
            ("[group.a.syscalls]\n", (1, 10), "`syscalls` denies no syscall"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"kill\", \"log\"]\nuntil = \"1m\"\n", (5, 9), "`until` has no effect: none of this rule's actions can be undone"),
        ];
        for (text, position, fragment) in cases {
            let policy = parse(text);
            assert_eq!(policy.warnings.len(), 1, "{text:?}");
            let (span, message) = &policy.warnings[0];
            assert_eq!(at(span), *position, "{text:?}: {message}");
            assert!(
                message.contains(fragment),
                "{text:?}: wanted {fragment:?} in {message}"
            );
        }
        let policy =
            parse("[group.a.network]\nconnect_allow = []\nconnect_deny = [\"10.0.0.0/8\"]\n");
        let connect = policy.groups[0]
            .network
            .as_ref()
            .unwrap()
            .connect
            .as_ref()
            .unwrap();
        assert_eq!(connect.mode, Access::Deny);
        let policy = parse("[group.a.syscalls]\n");
        assert_eq!(
            policy.groups[0].syscalls.as_ref().unwrap().action.value,
            SyscallAction::Log
        );
    }

    #[test]
    fn rejections() {
        #[rustfmt::skip]
        let cases: &[(&str, (u32, u32), &str)] = &[
            // [agent]
            ("agent = 1\n", (1, 1), "`agent` must be a table: write an `[agent]` header"),
            ("[agnet]\n", (1, 2), "unknown table `[agnet]`: did you mean `[agent]`?"),
            ("[agent]\nmetric = \"127.0.0.1:1\"\n", (2, 1), "unknown key `metric` in `[agent]` (did you mean `metrics`?): expected `metrics`, `interval`, `on_exit`, `audit_log`, `audit_group`, `observe`, `parent`, `egress_capacity`, `ingress_capacity`, `metrics_depth`, `metrics_max_groups` or `audit_max_size`"),
            ("[agent]\ncolour = true\n", (2, 1), "unknown key `colour` in `[agent]`: expected `metrics`"),
            ("[agent]\nmetrics = 9750\n", (2, 11), "`metrics` is an integer: write it as a string, such as `metrics = \"127.0.0.1:9750\"`"),
            ("[agent]\nmetrics = \"localhost:9750\"\n", (2, 11), "`metrics` value `localhost:9750` is not an address and port: write one such as `\"127.0.0.1:9750\"`"),
            ("[agent]\nmetrics = \"::1:9750\"\n", (2, 11), "`\"[::1]:9750\"`"),
            ("[agent]\nmetrics = \"0.0.0.0:0\"\n", (2, 11), "`metrics` needs a fixed port for scrapers to find, not 0: write one such as `\"0.0.0.0:9750\"`"),
            ("[agent]\ninterval = \"5ms\"\n", (2, 12), "`interval` is shorter than 10ms"),
            ("[agent]\nmetrics_depth = \"3\"\n", (2, 17), "`metrics_depth` must be a whole number of at least 0 (no quotes)"),
            ("[agent]\nmetrics_max_groups = 0\n", (2, 22), "`metrics_max_groups` must be a whole number of at least 1"),
            ("[agent]\naudit_max_size = \"1K\"\n", (2, 18), "`audit_max_size` must be a size of at least 4K"),
            ("[agent]\naudit_max_size = \"10MB\"\n", (2, 18), "`audit_max_size`: `10MB` is ambiguous"),
            ("[agent]\nmetrics_depth = \"3\"\n", (2, 17), "`metrics_depth` must be a whole number of at least 0 (no quotes)"),
            ("[agent]\nmetrics_max_groups = 0\n", (2, 22), "`metrics_max_groups` must be a whole number of at least 1"),
            ("[agent]\naudit_max_size = \"1K\"\n", (2, 18), "`audit_max_size` must be a size of at least 4K"),
            ("[agent]\ninterval = \"0\"\n", (2, 12), "write at least `interval = \"10ms\"`"),
            ("[agent]\ninterval = 1\n", (2, 12), "`interval` needs a unit: write it as a string, such as `interval = \"1s\"`"),
            ("[agent]\ninterval = 0.5\n", (2, 12), "such as `interval = \"0.5s\"`"),
            ("[agent]\ninterval = \"1 sec\"\n", (2, 12), "`interval`: unknown unit `sec` in `1 sec` (write `s`)"),
            ("[agent]\ninterval = \"1\"\n", (2, 12), "`interval`: `1` has no unit: write `1s`"),
            ("[agent]\non_exit = \"stop\"\n", (2, 11), "`on_exit` cannot be `stop`: write `keep` or `detach`"),
            ("[agent]\non_exit = \"kep\"\n", (2, 11), "`on_exit` cannot be `kep` (did you mean `keep`?)"),
            ("[agent]\non_exit = true\n", (2, 11), "`on_exit` is a boolean: write it as a string, such as `on_exit = \"keep\"`"),
            ("[agent]\naudit_log = \"audit.jsonl\"\n", (2, 13), "`audit_log` must be an absolute path"),
            ("[agent]\naudit_log = 1\n", (2, 13), "`audit_log` is an integer"),
            ("[agent]\nobserve = \"yes\"\n", (2, 11), "`observe` is a string: write `observe = true` or `observe = false` (no quotes)"),
            // priority and group keys
            ("[group.a]\npriority = \"urgent\"\n", (2, 12), "`priority` cannot be `urgent`: write `high`, `normal` or `low`, or a level from 1 to 100"),
            ("[group.a]\npriority = \"hihg\"\n", (2, 12), "(did you mean `high`?)"),
            ("[group.a]\npriority = 101\n", (2, 12), "`priority = 101` is off the scale: write a level from 1 (lowest) to 100 (highest)"),
            ("[group.a]\npriority = \"60\"\n", (2, 12), "`priority` is the string \"60\": write a level without quotes, `priority = 60`"),
            ("[group.a]\npriority = 1.5\n", (2, 12), "`priority` is a float: write `\"high\"`, `\"normal\"` or `\"low\"`, or a level from 1 to 100"),
            ("[group.a]\npriorty = \"high\"\n", (2, 1), "unknown key `priorty` in group `a`: expected a controller file such as `memory.max`, or `controllers`/`perm`/`priority`/`network`/`syscalls`/`when`, or a floor (`min_cpu`, `min_memory`, `min_io_weight`, `min_egress`, `min_ingress`) (did you mean `priority`?)"),
            ("[group.a.netwrok]\nconnect_deny = []\n", (1, 10), "unknown table `netwrok` in group `a`: did you mean `network`?"),
            ("[group.a.syscall]\ndeny = []\n", (1, 10), "did you mean `syscalls`?"),
            // network: shape and keys
            ("[group.a]\nnetwork = 1\n", (2, 1), "`network` must be a table: write a `[group.\"NAME\".network]` header"),
            ("[group.a.network]\nconnect_block = []\n", (2, 1), "unknown key `connect_block` in `network`: expected `connect_allow`, `connect_deny`, `bind_allow`, `bind_deny`, `egress_rate`, `ingress_rate`, `egress_budget` or `ingress_budget`"),
            ("[group.a.network]\negress = \"1Mbit\"\n", (2, 1), "unknown key `egress` in `network`"),
            ("[group.a.network]\nconnect_deny = \"10.0.0.0/8\"\n", (2, 16), "`connect_deny` is a string: write an array of strings, such as `connect_deny = [\"10.0.0.0/8\", \"[::1]:80\"]`"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.0/8\", 10]\n", (2, 31), "`connect_deny` entries must be strings in quotes, not an integer"),
            // network: addresses, at the element
            ("[group.a.network]\nconnect_deny = [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n", (2, 31), "in `connect_deny`: `10.0.0.1/8` has host bits set beyond /8: write the network `10.0.0.0/8`, or `10.0.0.1/32` for the single address"),
            ("[group.a.network]\nbind_deny = [\"192.168.1.7/24:80\"]\n", (2, 14), "write the network `192.168.1.0/24`"),
            ("[group.a.network]\nconnect_allow = [\"fd00::1/8\"]\n", (2, 18), "write the network `fd00::/8`, or `fd00::1/128` for the single address"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.0/33\"]\n", (2, 17), "prefix `/33` is too long for an IPv4 address: use /0 to /32"),
            ("[group.a.network]\nconnect_deny = [\"::/129\"]\n", (2, 17), "prefix `/129` is too long for an IPv6 address: use /0 to /128"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.0/8x\"]\n", (2, 17), "`/8x` is not a prefix length"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.1:0\"]\n", (2, 17), "port 0 is not a real port: write a port from 1 to 65535, or leave the port off"),
            ("[group.a.network]\nconnect_deny = [\"[::1]:0\"]\n", (2, 17), "port 0 is not a real port"),
            ("[group.a.network]\nbind_allow = [\"0.0.0.0/0:0-1023\"]\n", (2, 15), "port 0 is not a real port"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.1:90000\"]\n", (2, 17), "port 90000 is too large"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.1:9100-9000\"]\n", (2, 17), "port range `9100-9000` is backwards: write the lower port first, `9000-9100`"),
            ("[group.a.network]\nconnect_deny = [\"::1/128:2-1\"]\n", (2, 17), "backwards"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.1:80/icmp\"]\n", (2, 17), "unknown protocol `icmp`: write `/tcp` or `/udp`, or leave it off for both"),
            ("[group.a.network]\nconnect_deny = [\"example.com:443\"]\n", (2, 17), "`example.com` in `example.com:443` is not an IP address (host names are not resolved)"),
            ("[group.a.network]\nconnect_deny = [\"::1:80:x\"]\n", (2, 17), "for an IPv6 address with a port, write it in brackets, such as `[::1]:80`"),
            ("[group.a.network]\nconnect_deny = [\"[::1]80\"]\n", (2, 17), "after `]` write `:PORT`"),
            ("[group.a.network]\nconnect_deny = [\"\"]\n", (2, 17), "empty address"),
            ("[group.a.network]\nconnect_deny = [\"10.0.0.0/8\", \"10.0.0.0/8\"]\n", (2, 31), "`10.0.0.0/8` is listed twice in `connect_deny` (first at line 2, column 17): remove one"),
            // network: allow and deny together
            ("[group.a.network]\nconnect_deny = [\"10.0.0.0/8\"]\nconnect_allow = [\"10.1.0.0/16\"]\n", (2, 1), "`connect_deny` cannot be combined with `connect_allow` (at line 3, column 1): an allow list already refuses everything it does not list, so keep `connect_allow` and remove `connect_deny`"),
            ("[group.a.network]\nbind_allow = [\"0.0.0.0/0:8080\"]\nbind_deny = [\"0.0.0.0/0:22\"]\n", (3, 1), "`bind_deny` cannot be combined with `bind_allow` (at line 2, column 1)"),
            // network: rates and budgets
            ("[group.a.network]\negress_rate = 10\n", (2, 15), "`egress_rate` needs a unit: write `\"10Mbit\"` for megabits per second or `\"10MB/s\"`"),
            ("[group.a.network]\negress_rate = \"10Mbps\"\n", (2, 15), "`egress_rate`: `10Mbps` is ambiguous (tc reads `bps` as bytes per second, most people as bits): write `10Mbit` for bits per second or `10MB/s` for bytes per second"),
            ("[group.a.network]\ningress_rate = \"10M\"\n", (2, 16), "`ingress_rate`: `10M` has no rate unit: write `10Mbit` for bits per second or `10MB/s`"),
            ("[group.a.network]\ningress_rate = \"10MB\"\n", (2, 16), "`10MB` is a size, not a rate: write `10MB/s`"),
            ("[group.a.network]\ningress_rate = \"10Mb/s\"\n", (2, 16), "write `10Mbit` for bits per second or `10MB/s`"),
            ("[group.a.network]\negress_rate = \"0bit\"\n", (2, 15), "less than one byte per second"),
            ("[group.a.network]\negress_rate = \"fast\"\n", (2, 15), "`fast` does not start with a number"),
            ("[group.a.network]\negress_rate = \"5Xbit\"\n", (2, 15), "unknown unit `Xbit`"),
            ("[group.a.network]\negress_budget = \"10G\"\n", (2, 17), "`egress_budget`: `10G` has no window: write `SIZE/WINDOW`, such as `10G/1d`"),
            ("[group.a.network]\negress_budget = \"10GB/1d\"\n", (2, 17), "`10GB` is ambiguous: sizes use binary units, so write `10G` or `10GiB`"),
            ("[group.a.network]\ningress_budget = \"1G/100ms\"\n", (2, 18), "the window of `1G/100ms` is shorter than a second"),
            ("[group.a.network]\ningress_budget = \"0/1d\"\n", (2, 18), "allows no bytes at all"),
            ("[group.a.network]\ningress_budget = \"1G/1w\"\n", (2, 18), "unknown unit `w`"),
            ("[group.a.network]\negress_budget = 5\n", (2, 17), "`egress_budget` is an integer: write it as a string, such as `egress_budget = \"10G/1d\"`"),
            // syscalls
            ("[group.a]\nsyscalls = [\"ptrace\"]\n", (2, 1), "`syscalls` must be a table: write a `[group.\"NAME\".syscalls]` header"),
            ("[group.a.syscalls]\nallow = [\"read\"]\n", (2, 1), "unknown key `allow` in `syscalls`: expected `deny` or `action`"),
            ("[group.a.syscalls]\ndeny = [\"ptrace\", \"ptrac\"]\naction = \"log\"\n", (2, 19), "unknown syscall `ptrac` (did you mean `ptrace`?): write a name from the"),
            ("[group.a.syscalls]\ndeny = [\"sys_ptrace\"]\naction = \"log\"\n", (2, 9), "unknown syscall `sys_ptrace` (did you mean `ptrace`?)"),
            ("[group.a.syscalls]\ndeny = [\"PTRACE\"]\naction = \"log\"\n", (2, 9), "(did you mean `ptrace`?)"),
            ("[group.a.syscalls]\ndeny = [\"frobnicate\"]\naction = \"log\"\n", (2, 9), "unknown syscall `frobnicate`: write a name from the"),
            ("[group.a.syscalls]\ndeny = [\"ptrace\", \"ptrace\"]\naction = \"log\"\n", (2, 19), "`ptrace` is listed twice in `deny` (first at line 2, column 9): remove one"),
            ("[group.a.syscalls]\ndeny = [101]\naction = \"log\"\n", (2, 9), "`deny` entries must be strings in quotes, not an integer"),
            ("[group.a.syscalls]\ndeny = \"ptrace\"\naction = \"log\"\n", (2, 8), "`deny` is a string: write an array of strings"),
            ("[group.a.syscalls]\ndeny = [\"ptrace\"]\n", (1, 10), "`syscalls` has a `deny` list but no `action`: add `action = \"log\"`"),
            ("[group.a.syscalls]\ndeny = [\"ptrace\"]\naction = \"block\"\n", (3, 10), "`action` cannot be `block`: write `log`, `kill` or `deny`"),
            // when: shape
            ("[group.a.when]\nmetric = \"oom_kills\"\n", (1, 10), "`when` must be an array of rules: write the header with double brackets, `[[group.\"a\".when]]`"),
            ("[group.a]\nwhen = 1\n", (2, 8), "`when` is an integer: write an array of rules: write each rule under its own `[[group.\"NAME\".when]]` header"),
            ("[group.a]\nwhen = [1]\n", (2, 9), "`when` entries must be tables, not an integer"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"log\"]\nthreshold = 1\n", (5, 1), "unknown key `threshold` in a `when` rule: expected `metric`, `above`, `below`, `for`, `then` or `until`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"log\"]\nduring = \"1s\"\n", (5, 1), "unknown key `during` in a `when` rule"),
            // when: metric and condition
            ("[group.a]\n[[group.a.when]]\nabove = 1\nthen = [\"log\"]\n", (2, 1), "this rule has no `metric`: add `metric = \"NAME\"` with one of `egress_bytes`, `egress_bytes_per_sec`"),
            ("[[group.a.when]]\nmetric = \"egress_bytes_per_second\"\nabove = 1\nthen = [\"log\"]\n", (2, 10), "unknown metric `egress_bytes_per_second` (did you mean `egress_bytes_per_sec`?): write one of `egress_bytes`"),
            ("[[group.a.when]]\nmetric = \"load\"\nabove = 1\nthen = [\"log\"]\n", (2, 10), "unknown metric `load`: write one of"),
            ("[[group.a.when]]\nmetric = 1\nabove = 1\nthen = [\"log\"]\n", (2, 10), "`metric` is an integer: write it as a string, such as `metric = \"egress_bytes_per_sec\"`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nthen = [\"log\"]\n", (1, 1), "this rule has no condition: add `above = ...` or `below = ...`, such as `above = 100`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nbelow = 1\nabove = 2\nthen = [\"log\"]\n", (4, 1), "a rule has either `above` or `below`, not both (`below` is at line 3, column 1): keep one, and write a second `when` rule for the other"),
            ("[[group.a.when]]\nmetric = \"egress_bytes\"\nabove = \"50Q\"\nthen = [\"log\"]\n", (3, 9), "`above` for `egress_bytes`: unknown unit `Q` in the size `50Q`"),
            ("[[group.a.when]]\nmetric = \"egress_bytes\"\nabove = \"50MB\"\nthen = [\"log\"]\n", (3, 9), "sizes use binary units, so write `50M` or `50MiB`"),
            ("[[group.a.when]]\nmetric = \"egress_bytes_per_sec\"\nabove = \"50Mbps\"\nthen = [\"log\"]\n", (3, 9), "`50Mbps` is ambiguous"),
            ("[[group.a.when]]\nmetric = \"egress_bytes\"\nabove = 1.5\nthen = [\"log\"]\n", (3, 9), "`above` for `egress_bytes`: the value is a float: write a size such as `\"1G\"` or a number of bytes"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = -1\nthen = [\"log\"]\n", (3, 9), "`above` for `oom_kills`: `-1` is negative: write 0 or more"),
            ("[[group.a.when]]\nmetric = \"cpu_usage_percent\"\nabove = -0.5\nthen = [\"log\"]\n", (3, 9), "`-0.5` is not a number of 0 or more"),
            ("[[group.a.when]]\nmetric = \"syscalls_per_sec\"\nbelow = \"5k\"\nthen = [\"log\"]\n", (3, 9), "`below` for `syscalls_per_sec`: `5k` is not a plain number"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = true\nthen = [\"log\"]\n", (3, 9), "the value is a boolean: write a number such as `100`"),
            ("[[group.a.when]]\nmetric = \"cpu_usage_percent\"\nabove = \"lots\"\nthen = [\"log\"]\n", (3, 9), "`lots` is not a percentage"),
            // when: for, until
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nfor = \"5\"\nthen = [\"log\"]\n", (4, 7), "`for`: `5` has no unit: write `5s`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nfor = 5\nthen = [\"log\"]\n", (4, 7), "`for` needs a unit: write it as a string, such as `for = \"5s\"`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"freeze\"]\nuntil = \"soon\"\n", (5, 9), "`until`: `soon` is not a duration"),
            // when: then
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\n", (1, 1), "this rule has no `then`: add what to do, such as `then = [\"log\"]`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = []\n", (4, 8), "`then` is empty, so the rule would do nothing"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"log\", 1]\n", (4, 16), "`then` entries must be strings in quotes, not an integer"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"log\", \"explode\"]\n", (4, 16), "unknown action `explode`: write `log`, `kill`, `freeze`, `set KEY=VALUE` (such as `set cpu.weight=50`) or `throttle egress|ingress RATE`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"lgo\"]\n", (4, 9), "unknown action `lgo` (did you mean `log`?)"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"thaw\"]\n", (4, 9), "(undoing is automatic: add `until = \"30s\"` to the rule)"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"kill -9\"]\n", (4, 9), "`kill` takes nothing after it, but `kill -9` has `-9`: write `kill`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"set cpu.weight\"]\n", (4, 9), "`set cpu.weight` has no `=`: write `set CONTROLLER.FILE=VALUE`, such as `set cpu.weight=50`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"set weight=5\"]\n", (4, 9), "`weight` in `set weight=5` is not a controller file"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"set cpu.weight=\"]\n", (4, 9), "`set cpu.weight=` has no value after `=`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"throttle\"]\n", (4, 9), "`throttle` has no direction: write `throttle egress RATE` or `throttle ingress RATE`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"throttle egress\"]\n", (4, 9), "`throttle egress` has no rate"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"throttle egres 1Mbit\"]\n", (4, 9), "`egres` in `throttle egres 1Mbit` is not a direction (did you mean `egress`?)"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"throttle egress 5Mbps\"]\n", (4, 9), "in `throttle egress 5Mbps`: `5Mbps` is ambiguous"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"log\", \"log\"]\n", (4, 16), "`log` repeats `log` (first at line 4, column 9): keep only one"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"throttle egress 1Mbit\", \"throttle egress 2Mbit\"]\n", (4, 34), "repeats `throttle egress`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"set cpu.weight=1\", \"set cpu.weight = 2\"]\n", (4, 29), "repeats `set cpu.weight`"),
            ("[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = { log = true }\n", (4, 8), "`then` is a table: write an array of strings, such as `then = [\"log\"]`"),
            ("[group.a]\nwhen = [{ metric = \"oom_kills\", above = 0 }]\n", (2, 9), "this rule has no `then`"),
            // the arbiter and the floors
            ("[arbiter]\nstep = \"100%\"\n", (2, 8), "`step` is 100%: write a value above 0% and below 100%"),
            ("[arbiter]\ncpu_pressure = 0\n", (2, 16), "`cpu_pressure` is 0%: write a value above 0% and at most 100%"),
            ("[arbiter]\nresources = [\"cpu\", \"disk\"]\n", (2, 21), "unknown resource `disk`: write `cpu`, `memory`, `io`, `egress` or `ingress`"),
            ("[arbiter]\nresources = [\"cpu\", \"cpu\"]\n", (2, 21), "`cpu` is listed twice in `resources` (first at line 2, column 14)"),
            ("[arbiter]\nresources = []\n", (2, 13), "`resources = []` leaves the arbiter nothing to do"),
            ("[arbiter]\ninterval = \"1ms\"\n", (2, 12), "the arbiter's `interval` is shorter than 10ms"),
            ("[arbiter]\nenabled = \"yes\"\n", (2, 11), "`enabled` is a string: write `enabled = true`"),
            ("[arbiter]\nenabeld = true\n", (2, 1), "unknown key `enabeld` in `[arbiter]` (did you mean `enabled`?)"),
            ("[agent]\negress_capacity = 1000\n", (2, 19), "`egress_capacity` needs a unit: write `\"1000Mbit\"`"),
            ("[group.a]\nmin_cpu = \"-5%\"\n", (2, 11), "`min_cpu`: `-5%` is negative"),
            ("[group.a]\nmin_cpu = 0\n", (2, 11), "`min_cpu` is 0%: write a value above 0% (100% is one whole CPU)"),
            ("[group.a]\nmin_io_weight = 0\n", (2, 17), "`min_io_weight = 0` is outside io.weight's range: write 1 to 10000"),
            ("[group.a]\nmin_io_weight = \"50\"\n", (2, 17), "`min_io_weight` is a string: write a weight from 1 to 10000 without quotes"),
            ("[group.a]\nmin_memory = \"1MB\"\n", (2, 14), "`min_memory`: `1MB` is ambiguous"),
            ("[group.a]\nmin_egress = \"10M\"\n", (2, 14), "`min_egress`: `10M` has no rate unit"),
        ];
        // Every case is checked before failing, so one run shows all mismatches.
        let mut failures = Vec::new();
        for (text, position, fragment) in cases {
            let err = match parse_toml(text, Path::new("p.toml")) {
                Ok(_) => {
                    failures.push(format!("{text:?}: accepted"));
                    continue;
                }
                Err(err) => err,
            };
            if !matches!(err, ConfigError::Invalid { .. }) {
                failures.push(format!("{text:?}: not Invalid: {err:?}"));
            } else if at(err.span().unwrap()) != *position {
                failures.push(format!("{text:?}: wanted {position:?}, got {err}"));
            } else if !err.to_string().contains(fragment) {
                failures.push(format!("{text:?}: wanted {fragment:?} in {err}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }
}

/// The committed schema and reference are what the model generates; rewrite
/// them with `UPDATE_POLICY_DOCS=1 cargo test -p enforcer --lib policy_docs`.
#[test]
fn policy_docs_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, want) in [
        (
            "docs/policy.schema.json",
            super::reference::policy_schema_text(),
        ),
        ("docs/policy.md", super::reference::policy_reference()),
    ] {
        let path = root.join(file);
        if std::env::var_os("UPDATE_POLICY_DOCS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{file} is stale: run `UPDATE_POLICY_DOCS=1 cargo test -p enforcer --lib policy_docs` \
             and commit it"
        );
    }
}

/// `examples/policy.toml` and the default policy `dist/policy.toml` validate
/// against the committed schema, and a policy with a misspelt key does not
/// (the schema refuses what the reader refuses).
#[test]
fn the_example_validates_against_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("docs/policy.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for file in ["examples/policy.toml", "dist/policy.toml"] {
        let example: serde_json::Value =
            toml::from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&example)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:#?}");
    }
    let bad: serde_json::Value =
        toml::from_str("[agent]\nintervall = \"1s\"\n[group.web.syscalls]\naction = \"maybe\"\n")
            .unwrap();
    assert!(!validator.is_valid(&bad));
}

/// The group keys the reader treats as its own are the ones the schema lists.
#[test]
fn group_keys_match_the_schema() {
    let schema = super::reference::policy_schema();
    let properties = schema
        .pointer("/$defs/GroupTable/properties")
        .and_then(|p| p.as_object())
        .unwrap();
    let mut listed: Vec<&str> = properties.keys().map(String::as_str).collect();
    let mut keys = super::file::GroupTable::KEYS.to_vec();
    listed.sort_unstable();
    keys.sort_unstable();
    assert_eq!(listed, keys);
}
