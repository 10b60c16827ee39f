//! The plan against a fake host: one `validate` judges everything, at load.

use std::fs;
use std::path::Path;

use crate::bpf::{Feature, FeatureReport, FeatureStatus, Refusal};
use crate::cgroup::Cgroups;

use super::*;

/// A pure v2 host with cpu, memory and pids, CPUs 0-1.
fn fake_v2() -> (tempfile::TempDir, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cg");
    fs::create_dir_all(&root).unwrap();
    for (file, content) in [
        ("cgroup.controllers", "cpuset cpu io memory pids\n"),
        ("cgroup.subtree_control", "\n"),
        ("cgroup.procs", ""),
        ("cpuset.cpus.effective", "0-1\n"),
        ("cpuset.mems.effective", "0\n"),
    ] {
        fs::write(root.join(file), content).unwrap();
    }
    let mi = format!(
        "29 1 0:26 / {} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        root.display()
    );
    (tmp, Cgroups::from_mountinfo(&mi).unwrap())
}

fn policy(text: &str) -> crate::config::Policy {
    crate::config::parse_toml(text, Path::new("p.toml")).unwrap()
}

fn refused(text: &str, kernel: Kernel<'_>) -> PlanError {
    let (_t, cg) = fake_v2();
    validate(&cg, policy(text), None, kernel).unwrap_err()
}

/// Issue 11: `when` actions were checked only when the rule fired. A `set`
/// in `then` is now judged at load exactly as the same `[group]` setting.
#[test]
fn when_set_actions_are_checked_at_load() {
    let rule = |then: &str| {
        format!(
            "[group.web]\n\"memory.max\" = \"1G\"\n\n[[group.web.when]]\nmetric = \"oom_kills\"\n\
             above = 0\nthen = [\"log\", {then}]\n"
        )
    };
    let err = refused(&rule("\"set memory.max=10XB\""), Kernel::Unchecked);
    assert!(err.is_user_error(), "{err}");
    let message = err.to_string();
    assert!(message.starts_with("p.toml:7:16: "), "{message}");
    assert!(
        message.contains("10XB") && message.contains("unknown unit `XB`"),
        "{message}"
    );

    let err = refused(&rule("\"set nosuch.key=5\""), Kernel::Unchecked);
    let message = err.to_string();
    assert!(message.starts_with("p.toml:7:16: "), "{message}");
    assert!(message.contains("nosuch"), "{message}");

    let (_t, cg) = fake_v2();
    let plan = validate(
        &cg,
        policy(&rule("\"set memory.max=512M\"")),
        None,
        Kernel::Unchecked,
    )
    .unwrap();
    assert_eq!(plan.groups[0].control.len(), 1);
    assert_eq!(plan.groups[0].control[0].origin, "p.toml:4:1");
}

fn report_refusing(feature: Feature) -> FeatureReport {
    FeatureReport {
        kernel: "6.18-test".into(),
        features: Feature::ALL
            .into_iter()
            .map(|f| FeatureStatus {
                feature: f,
                what: "",
                refused: (f == feature).then(|| Refusal {
                    program: "lsm_bprm",
                    reason: "EPERM".into(),
                    verifier: Vec::new(),
                    inert: false,
                }),
            })
            .collect(),
    }
}

/// Issue 11: `reload --config` accepted what `run` refused, and `run` named
/// a cgroup id. Every caller now goes through this one check, which names the
/// group and the line, and is not the policy's fault (exit 1).
#[test]
fn kernel_refusals_name_the_group_and_the_line() {
    let text = "[group.web]\n\"pids.max\" = 10\n\n[group.web.syscalls]\ndeny = [\"ptrace\", \"execve\"]\naction = \"deny\"\n";
    let ptrace_denied = refused(text, Kernel::Unchecked);
    assert!(
        ptrace_denied
            .to_string()
            .contains("`ptrace` cannot be denied")
    );

    let text = text.replace("\"ptrace\", ", "");
    let report = report_refusing(Feature::LsmDeny);
    let err = refused(&text, Kernel::Report(&report));
    assert!(!err.is_user_error(), "a kernel's refusal exits 1: {err}");
    let message = err.to_string();
    assert!(
        message.starts_with("p.toml:5:9: group \"web\": "),
        "{message}"
    );
    assert!(message.contains("execve"), "{message}");
    assert!(!message.contains("cgroup "), "{message}");

    // The same policy on a kernel that loads BPF-LSM programs.
    let (_t, cg) = fake_v2();
    let fine = report_refusing(Feature::OomEvents);
    let plan = validate(&cg, policy(&text), None, Kernel::Report(&fine)).unwrap();
    assert!(plan.kernel_checked);
}

/// The diff of a dry run covers every section, not only target values.
#[test]
fn dry_run_diff_covers_every_section() {
    let text = "[group.web]\n\"memory.max\" = \"1G\"\n\n[group.web.network]\n\
                connect_deny = [\"10.0.0.0/8\"]\negress_rate = \"10Mbit\"\n\n\
                [group.web.syscalls]\ndeny = [\"ptrace\"]\naction = \"kill\"\n\n\
                [[group.web.when]]\nmetric = \"egress_bytes_per_sec\"\nabove = \"50M\"\n\
                then = [\"throttle egress 5Mbit\"]\nuntil = \"30s\"\n";
    let (_t, cg) = fake_v2();
    let plan = validate(&cg, policy(text), None, Kernel::Unchecked).unwrap();
    let diff = Diff::new(&cg, &plan, &InForce::default());
    let web = &diff.groups[0];
    assert_eq!(web.action, "create");
    assert_eq!(web.settings[0].new.as_deref(), Some("1073741824"));
    assert_eq!(web.settings[0].current, None);
    let added = |c: &Vec<diff::Change>| c.iter().map(|c| c.item.clone()).collect::<Vec<_>>();
    assert_eq!(
        added(&web.network),
        ["connect_deny 10.0.0.0/8", "egress_rate 1250000 B/s"]
    );
    assert_eq!(added(&web.syscalls), ["ptrace -> kill"]);
    assert_eq!(
        added(&web.when),
        ["egress_bytes_per_sec > 52428800 for 0s: throttle egress 625000 B/s, until 30s"]
    );
    let text_out = diff.render();
    assert!(
        text_out.contains("  network: + connect_deny 10.0.0.0/8"),
        "{text_out}"
    );
    assert!(
        text_out.contains("kernel features not checked"),
        "{text_out}"
    );
    let json = serde_json::to_value(&diff).unwrap();
    assert_eq!(
        json["groups"][0]["when"][0]["current"],
        serde_json::Value::Null
    );

    // Against what is in force: unchanged rules are not listed, removed ones are.
    let mut now = InForce::of(&plan, None);
    let web_now = now.groups.get_mut("web").unwrap();
    web_now.network.push("bind_deny 0.0.0.0/0".into());
    now.groups.insert("old".into(), Default::default());
    now.groups
        .get_mut("old")
        .unwrap()
        .syscalls
        .push("ptrace -> log".into());
    let diff = Diff::new(&cg, &plan, &now);
    assert_eq!(diff.groups[0].network.len(), 1);
    assert_eq!(
        diff.groups[0].network[0].current.as_deref(),
        Some("bind_deny 0.0.0.0/0")
    );
    assert!(diff.groups[0].when.is_empty() && diff.groups[0].syscalls.is_empty());
    assert_eq!(diff.groups[1].action, "drop");
    assert!(diff.render().contains("drop old: no longer in the policy"));
}

/// Issue 11: `group ../relesc {` in a cgconfig.conf was read as broken TOML
/// ("expected `.` or `=`, found `.`"). It is a cgconfig.conf group whose path
/// is refused as a path.
#[test]
fn a_dotted_group_name_is_a_bad_path_not_bad_toml() {
    let (_t, cg) = fake_v2();
    let policy = crate::config::parse_policy(
        b"group ../relesc {\n  pids { pids.max = 5; }\n}\n",
        Path::new("x.conf"),
    )
    .unwrap();
    let err = validate(&cg, policy, None, Kernel::Unchecked).unwrap_err();
    assert!(err.is_user_error());
    assert_eq!(
        err.to_string(),
        "x.conf:1:7: invalid group path \"../relesc\": `.` and `..` components are not \
         allowed; name the group from the hierarchy root"
    );
}

/// The `` `x` `` and `"x"` tokens of a message.
fn quoted(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['`', '"'] {
        let parts: Vec<&str> = message.split(quote).collect();
        out.extend(
            parts
                .iter()
                .skip(1)
                .step_by(2)
                .filter(|t| t.len() > 1)
                .map(|t| (*t).to_owned()),
        );
    }
    out
}

/// Issue 11: many messages said their reason twice (`invalid value "10XB" for
/// memory.max: unknown unit ... in `10XB``). Over a corpus of mistakes in
/// every section, no message quotes the same thing twice.
#[test]
fn messages_say_each_thing_once() {
    let corpus = [
        "[group.a]\n\"memory.max\" = \"10XB\"\n",
        "[group.a]\n\"memory.max\" = \"-5\"\n",
        "[group.a]\n\"memory.max\" = \"512MB\"\n",
        "[group.a]\n\"cpu.weight\" = \"0\"\n",
        "[group.a]\n\"pids.max\" = \"abc\"\n",
        "[group.a]\n\"cpu.max\" = \"abc\"\n",
        "[group.a]\n\"cpuset.cpus\" = \"0-5\"\n",
        "[group.a]\n\"memory.nosuch\" = \"1\"\n",
        "[group.\"../x\"]\n\"pids.max\" = 1\n",
        "[group.a.network]\nconnect_deny = [\"300.0.0.1\"]\n",
        "[group.a.network]\nconnect_deny = [\"10.0.0.1/8\"]\n",
        "[group.a.network]\negress_rate = \"10Mbps\"\n",
        "[group.a.network]\negress_budget = \"10G\"\n",
        "[group.a.syscalls]\ndeny = [\"ptrace\"]\naction = \"deny\"\n",
        "[group.a.syscalls]\ndeny = [\"ptrce\"]\naction = \"kill\"\n",
        "[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = \"set cpu.weight=abc\"\n",
        "[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = \"set memory.max=10XB\"\n",
        "[[group.a.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = \"throttle egress 10\"\n",
        "[agent]\ninterval = \"5x\"\n",
        "[agent]\nparent = \"../x\"\n",
    ];
    let (_t, cg) = fake_v2();
    for text in corpus {
        let err = match crate::config::parse_toml(text, Path::new("p.toml")) {
            Ok(policy) => validate(&cg, policy, None, Kernel::Unchecked)
                .map(drop)
                .expect_err(text)
                .to_string(),
            Err(e) => e.to_string(),
        };
        let tokens = quoted(&err);
        for (i, t) in tokens.iter().enumerate() {
            assert!(
                !tokens[i + 1..].contains(t),
                "{text:?}: `{t}` twice in {err}"
            );
        }
    }
}

/// A policy group with no settings (`[group."x"]` alone, or rules only) was
/// created nowhere on a pure cgroup2 host (a hybrid host's mirror hid it),
/// and the agent then failed to open its cgroup2 directory. Every policy
/// group lives in the cgroup2 tree wherever there is one.
#[test]
fn a_group_without_settings_is_created_in_the_cgroup2_tree() {
    let (_t, cg) = fake_v2();
    let text = "[group.bare]\n\n[group.rules.network]\nconnect_deny = [\"10.0.0.0/8\"]\n";
    let plan = validate(&cg, policy(text), None, Kernel::Unchecked).unwrap();
    let v2 = cg.v2().unwrap();
    for g in &plan.cgroups.groups {
        assert!(
            g.targets.hiers.contains(&v2),
            "{} is not planned in the cgroup2 tree: {:?}",
            g.path,
            g.targets
        );
    }
    let applied = cg.apply(&plan.cgroups).unwrap();
    for g in &plan.cgroups.groups {
        assert!(cg.exists(v2, &g.path), "{} was not created", g.path);
    }
    assert_eq!(applied.created.len(), 2);
}

fn planned(text: &str) -> Plan {
    let (_t, cg) = fake_v2();
    validate(&cg, policy(text), None, Kernel::Unchecked).unwrap()
}

/// Issue 13: priorities as levels, the node's shares among the leaves, and
/// the arbiter's floors judged at load.
#[test]
fn arbiter_shares_and_floors() {
    let plan = planned(
        "[agent]\negress_capacity = \"200Mbit\"\n\n[arbiter]\n\n[group.web]\npriority = \"high\"\n\
         \n[group.batch]\npriority = \"low\"\nmin_egress = \"40Mbit\"\nmin_cpu = \"25%\"\n\
         \n[group.\"batch/sub\"]\npriority = 10\n",
    );
    let levels: Vec<Option<u32>> = plan.groups.iter().map(|g| g.rules.share_level).collect();
    // batch has a policy group below it: its packets are charged there.
    assert_eq!(levels, [Some(75), None, Some(10)]);
    let shares = &plan.shares[0];
    assert_eq!(shares.capacity, Some(25_000_000));
    assert_eq!(plan.shares[1], NetShares::default(), "no ingress capacity");
    // batch's floor belongs to no leaf: the rest is split by weight.
    let total: u64 = shares.levels.iter().map(|l| l.assured).sum();
    assert_eq!(total, 25_000_000);
    let arbiter = plan.arbiter.as_ref().unwrap();
    assert_eq!(
        arbiter.resources,
        [
            Resource::Cpu,
            Resource::Memory,
            Resource::Io,
            Resource::Egress
        ]
    );
    assert_eq!(arbiter.interval, std::time::Duration::from_millis(250));
    assert_eq!(arbiter.groups[1].floors.cpu, 0.25);
    assert_eq!(arbiter.groups[1].floors.rate, [5_000_000, 1]);
    assert_eq!(
        arbiter.groups[0].floors.rate[0], 250_000,
        "1% of the capacity"
    );
    assert_eq!(plan.groups[2].priority.level(), 10);

    // Without [arbiter], the shares stay and the floors the arbiter alone
    // uses are said to do nothing.
    let plan = planned(
        "[agent]\negress_capacity = \"1Gbit\"\n\n[group.a]\npriority = 80\nmin_cpu = \"50%\"\n",
    );
    assert!(plan.arbiter.is_none());
    assert_eq!(plan.groups[0].rules.share_level, Some(80));
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.starts_with("p.toml:6:11: `min_cpu` has no effect without the arbiter")),
        "{:?}",
        plan.warnings
    );
    // `enabled = false` keeps the table but not the arbiter.
    let plan = planned("[arbiter]\nenabled = false\n[group.a]\n");
    assert!(plan.arbiter.is_none());
    let plan = planned("[arbiter]\n[group.a]\n[group.b]\n");
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("every group has the same priority")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn arbiter_floors_that_do_not_fit_are_refused_where_written() {
    let err = refused(
        "[agent]\negress_capacity = \"100Mbit\"\n[group.a]\nmin_egress = \"60Mbit\"\n\
         [group.b]\nmin_egress = \"60Mbit\"\n",
        Kernel::Unchecked,
    );
    assert!(err.is_user_error());
    assert!(
        err.to_string().starts_with(
            "p.toml:6:14: the groups' `min_egress` floors add up to 15000000 bytes/s, more than \
             the node's capacity of 12500000 bytes/s (at p.toml:2:19)"
        ),
        "{err}"
    );
    let err = refused(
        "[arbiter]\n[group.a]\nmin_cpu = \"300%\"\n",
        Kernel::Unchecked,
    );
    assert!(
        err.to_string().starts_with(
            "p.toml:3:11: `min_cpu = \"300%\"` is more than this host's 2 CPUs (200%)"
        ),
        "{err}"
    );
    let err = refused(
        "[arbiter]\nresources = [\"cpu\", \"ingress\"]\n[group.a]\n",
        Kernel::Unchecked,
    );
    assert!(
        err.to_string().starts_with(
            "p.toml:2:13: `resources` lists `ingress`, but the node has no `ingress_capacity`"
        ),
        "{err}"
    );
    let plan = planned("[group.a]\nmin_ingress = \"1Mbit\"\n");
    assert!(
        plan.warnings.iter().any(|w| w.starts_with(
            "p.toml:2:15: `min_ingress` has no effect without `[agent] ingress_capacity`"
        )),
        "{:?}",
        plan.warnings
    );
}

/// Issue 18, finding 10: `deny = ["socket"]` with `action = "deny"` refused
/// AF_INET sockets only (the cgroup hook sees no other family) and said
/// nothing. Each deny rule whose hook covers only some sockets says which.
#[test]
fn deny_rules_name_the_sockets_their_hook_cannot_see() {
    let (_t, cg) = fake_v2();
    let text = "[group.web.syscalls]\ndeny = [\"socket\", \"connect\", \"bind\", \"setsockopt\"]\n\
                action = \"deny\"\n";
    let plan = validate(&cg, policy(text), None, Kernel::Unchecked).unwrap();
    let coverage: Vec<&String> = plan
        .warnings
        .iter()
        .filter(|w| w.contains("AF_INET and AF_INET6 only"))
        .collect();
    assert_eq!(coverage.len(), 3, "{:?}", plan.warnings);
    assert!(coverage[0].starts_with("p.toml:2:9: "), "{}", coverage[0]);
    assert!(
        coverage[0].contains("AF_UNIX") && coverage[0].contains("action = \"kill\""),
        "{}",
        coverage[0]
    );
    // `kill` stops the call itself, whatever the family.
    let text = "[group.web.syscalls]\ndeny = [\"socket\"]\naction = \"kill\"\n";
    let plan = validate(&cg, policy(text), None, Kernel::Unchecked).unwrap();
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

/// Issue 22: a policy written with x86_64 syscall names, validated for an
/// aarch64 node, is refused at the first name aarch64 lacks, naming the
/// architecture and the call to write instead; for x86_64 it is accepted.
#[test]
fn x86_only_syscall_names_are_refused_for_aarch64_nodes() {
    let text = "[group.web]\n\"pids.max\" = 10\n\n[group.web.syscalls]\n\
                deny = [\"ptrace\", \"poll\", \"fork\"]\naction = \"log\"\n";
    let (_t, cg) = fake_v2();
    let err = validate_for(
        &cg,
        policy(text),
        None,
        Kernel::Unchecked,
        crate::arch::Arch::Aarch64,
    )
    .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert_eq!(
        err.to_string(),
        "p.toml:5:19: \"poll\" does not exist on aarch64; use \"ppoll\""
    );
    let plan = validate_for(
        &cg,
        policy(text),
        None,
        Kernel::Unchecked,
        crate::arch::Arch::X86_64,
    )
    .expect("x86_64 has every name");
    let rules = plan.groups[0].rules.syscalls.as_ref().unwrap();
    assert_eq!(rules.arch, crate::arch::Arch::X86_64);
}

/// Issue 19: the agent runs by the plan alone. What it read from the policy
/// beside the plan (its `[agent]` settings, the parent, the `[[classify]]`
/// rules, the rule counts and syscall names the metrics show) is in the
/// plan, as `validate` judged it.
#[test]
fn the_plan_carries_what_the_agent_runs_by() {
    let (_t, cg) = fake_v2();
    let text = "[agent]\ninterval = \"2s\"\nparent = \"deleg\"\n\n\
                [group.web.network]\negress_rate = \"10Mbit\"\n\n\
                [group.web.syscalls]\ndeny = [\"ptrace\", \"mount\"]\naction = \"log\"\n\n\
                [[group.web.when]]\nmetric = \"oom_kills\"\nabove = 0\nthen = [\"log\"]\n\n\
                [group.batch.syscalls]\ndeny = [\"reboot\"]\naction = \"log\"\n\n\
                [[classify]]\ncomm = \"worker\"\ncontrollers = [\"cpu\"]\ndestination = \"web\"\n";
    let plan = validate(&cg, policy(text), None, Kernel::Unchecked).unwrap();
    assert_eq!(
        plan.agent
            .as_ref()
            .and_then(|a| a.interval.as_ref())
            .map(|i| i.value),
        Some(std::time::Duration::from_secs(2))
    );
    assert_eq!(plan.parent.as_ref().map(|p| p.as_str()), Some("deleg"));
    assert_eq!(plan.groups[0].path.as_str(), "deleg/web");
    assert_eq!(plan.classify.len(), 1);
    assert_eq!(plan.classify[0].destination.value, "web");
    assert_eq!(
        plan.rule_counts,
        RuleCounts {
            network: 1,
            syscall: 3,
            when: 1
        }
    );
    assert_eq!(plan.syscall_names, ["ptrace", "mount", "reboot"]);
    // `--parent` wins over the file's.
    let plan = validate(&cg, policy(text), Some("other"), Kernel::Unchecked).unwrap();
    assert_eq!(plan.parent.as_ref().map(|p| p.as_str()), Some("other"));
    assert_eq!(plan.groups[0].path.as_str(), "other/web");
}
