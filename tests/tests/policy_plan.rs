//! One judgement of a policy (issue 11), end to end: `apply --dry-run`,
//! `reload --config` and `run` refuse the same policies with the same message
//! and exit status, before anything changes; a dry run shows every section.

use std::path::PathBuf;
use std::process::Output;

use enforcer_tests::layout::skip_without_cgroup2;
use enforcer_tests::{AgentRun, GroupGuard, enforcer, enforcer_ok};

fn write_policy(run: &AgentRun, text: &str) -> PathBuf {
    let p = run.file("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The three ways in, each with its exit status and message.
fn judged(run: &AgentRun, policy: &str) -> Vec<(&'static str, Option<i32>, String)> {
    let pid_file = run.pid_file();
    let pid_file = pid_file.to_str().unwrap();
    let dry = enforcer(&["apply", "--dry-run", policy]);
    let reload = enforcer(&["reload", "--config", policy, "--pid-file", pid_file]);
    let started = run.run_expecting_exit(Some(std::path::Path::new(policy)), &[]);
    vec![
        ("apply --dry-run", dry.status.code(), stderr(&dry)),
        ("reload --config", reload.status.code(), stderr(&reload)),
        ("run", started.status.code(), stderr(&started)),
    ]
}

/// The `error:` line of an output.
fn error_line(text: &str) -> String {
    text.lines()
        .find(|l| l.contains("error: "))
        .map(|l| l[l.find("error: ").unwrap()..].to_owned())
        .unwrap_or_else(|| panic!("no error line in {text}"))
}

/// Before: `then = ["set memory.max=10XB"]` passed `reload --config` and `run`
/// and failed only when the rule fired.
#[test]
fn a_bad_when_action_is_refused_everywhere_at_load() {
    if skip_without_cgroup2("a_bad_when_action_is_refused_everywhere_at_load") {
        return;
    }
    let g = GroupGuard::new("plan-when");
    let run = AgentRun::new();
    for then in ["set memory.max=10XB", "set nosuch.key=5"] {
        let p = write_policy(
            &run,
            &format!(
                "[group.\"{n}\"]\n\"pids.max\" = 50\n\n[[group.\"{n}\".when]]\n\
                 metric = \"oom_kills\"\nabove = 0\nthen = [\"log\", \"{then}\"]\n",
                n = g.name
            ),
        );
        let results = judged(&run, p.to_str().unwrap());
        let first = error_line(&results[0].2);
        for (how, code, err) in &results {
            assert_eq!(*code, Some(2), "{how} {then:?}: {err}");
            assert_eq!(error_line(err), first, "{how} says something else");
            assert!(err.contains(":7:16: "), "{how}: {err}");
        }
        assert!(
            enforcer_tests::layout::dir_of("pids", &g.name)
                .symlink_metadata()
                .is_err(),
            "a refused policy created its group"
        );
    }
}

/// Before: `reload --config` accepted `deny = ["execve"]` with `action =
/// "deny"` on a kernel without BPF-LSM, which `run` refused, naming a cgroup
/// id. Now all three refuse it (exit 1: the kernel lacks a feature), naming
/// the group and the line of `execve`.
#[test]
fn a_rule_this_kernel_cannot_enforce_is_refused_everywhere() {
    if skip_without_cgroup2("a_rule_this_kernel_cannot_enforce_is_refused_everywhere") {
        return;
    }
    let g = GroupGuard::new("plan-lsm");
    let run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!(
            "[group.\"{n}\"]\n\"pids.max\" = 50\n\n[group.\"{n}\".syscalls]\n\
             deny = [\"execve\"]\naction = \"deny\"\n",
            n = g.name
        ),
    );
    let results = judged(&run, p.to_str().unwrap());
    if results[2].1 != Some(1) {
        enforcer_tests::skipped(
            "a_rule_this_kernel_cannot_enforce_is_refused_everywhere",
            "`run` accepts the policy here (a kernel that loads BPF-LSM programs)",
        );
        return;
    }
    let first = error_line(&results[0].2);
    for (how, code, err) in &results {
        assert_eq!(*code, Some(1), "{how}: {err}");
        assert_eq!(error_line(err), first, "{how} says something else");
        assert!(err.contains(":5:9: "), "{how}: {err}");
        assert!(
            err.contains(&format!("group \"{}\"", g.name)),
            "{how}: {err}"
        );
        assert!(
            !err.contains("cgroup 2") && !err.contains("cgroup 1"),
            "{how}: {err}"
        );
    }
}

/// Before: `apply --dry-run` showed target values only and skipped the
/// network, syscalls and when sections.
#[test]
fn a_dry_run_shows_every_section_as_current_and_new() {
    if skip_without_cgroup2("a_dry_run_shows_every_section_as_current_and_new") {
        return;
    }
    let g = GroupGuard::new("plan-diff");
    let run = AgentRun::new();
    let p = write_policy(
        &run,
        &format!(
            "[group.\"{n}\"]\n\"pids.max\" = 50\n\n[group.\"{n}\".network]\n\
             connect_deny = [\"10.0.0.0/8\"]\negress_rate = \"10Mbit\"\n\n\
             [group.\"{n}\".syscalls]\ndeny = [\"ptrace\"]\naction = \"kill\"\n\n\
             [[group.\"{n}\".when]]\nmetric = \"egress_bytes_per_sec\"\nabove = \"50M\"\n\
             then = [\"throttle egress 5Mbit\"]\nuntil = \"30s\"\n",
            n = g.name
        ),
    );
    let p = p.to_str().unwrap();
    let text = enforcer_ok(&["apply", "--dry-run", p]);
    for want in [
        format!("create {} in ", g.name),
        // `pids:` on a v1 pids hierarchy, `cgroup2:` where pids is on cgroup2.
        format!(
            "pids.max ({}:pids.max): (none) -> 50",
            enforcer_tests::layout::label_of("pids")
        ),
        "network: + connect_deny 10.0.0.0/8".to_owned(),
        "network: + egress_rate 1250000 B/s".to_owned(),
        "syscalls: + ptrace -> kill".to_owned(),
        "when: + egress_bytes_per_sec > 52428800 for 0s: throttle egress 625000 B/s, until 30s"
            .to_owned(),
    ] {
        assert!(text.contains(&want), "{want:?} missing from:\n{text}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&enforcer_ok(&["apply", "--dry-run", "--json", p])).unwrap();
    let group = &json["groups"][0];
    assert_eq!(group["action"], "create");
    assert_eq!(group["settings"][0]["new"], "50");
    assert_eq!(group["network"].as_array().unwrap().len(), 2);
    assert_eq!(group["syscalls"][0]["item"], "ptrace -> kill");
    assert!(group["when"][0]["current"].is_null());
    assert!(
        enforcer_tests::layout::dir_of("pids", &g.name)
            .symlink_metadata()
            .is_err(),
        "--dry-run created the group"
    );
}

/// `reload --dry-run` compares with what the running agent enforces: rules
/// it keeps are not listed, removed ones are `-`, new ones `+`; nothing is
/// signalled.
#[test]
fn reload_dry_run_diffs_against_the_rules_in_force() {
    if skip_without_cgroup2("reload_dry_run_diffs_against_the_rules_in_force") {
        return;
    }
    let g = GroupGuard::new("plan-reload");
    let mut run = AgentRun::new();
    let policy = |deny: &str| {
        format!(
            "[group.\"{n}\"]\n\"pids.max\" = 50\n\n[group.\"{n}\".network]\n\
             connect_deny = [\"10.0.0.0/8\", \"{deny}\"]\n",
            n = g.name
        )
    };
    let running = write_policy(&run, &policy("192.168.0.0/16"));
    run.start(&running);
    let next = run.file("next.toml");
    std::fs::write(&next, policy("172.16.0.0/12")).unwrap();
    let pid_file = run.pid_file();
    let out = enforcer_ok(&[
        "reload",
        "--dry-run",
        "--config",
        next.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    assert!(
        out.contains("network: - connect_deny 192.168.0.0/16"),
        "{out}"
    );
    assert!(
        out.contains("network: + connect_deny 172.16.0.0/12"),
        "{out}"
    );
    assert!(
        !out.contains("10.0.0.0/8"),
        "an unchanged rule is listed: {out}"
    );
    // Without --config: the agent's own file, unchanged, so no rule changes.
    let same = enforcer_ok(&[
        "reload",
        "--dry-run",
        "--pid-file",
        pid_file.to_str().unwrap(),
    ]);
    assert!(!same.contains("network:"), "{same}");
    assert!(
        run.audit_lines().iter().all(|l| l["kind"] != "reload"),
        "a dry run reloaded the agent"
    );
}
