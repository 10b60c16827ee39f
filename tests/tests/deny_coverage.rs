//! What a syscall `deny` rule covers (root, real kernel). Without BPF-LSM a
//! `socket` deny runs in the kernel's `cgroup/sock_create` hook, which sees
//! AF_INET and AF_INET6 sockets only: the rule refuses those and lets
//! AF_UNIX and AF_NETLINK sockets be made. The policy is accepted, and every
//! way in says so (issue 18, finding 10: it used to say nothing, and
//! `status` called socket deny simply "available").

use std::process::Command;

use enforcer_tests::layout::skip_without_cgroup2;
use enforcer_tests::{AgentRun, GroupGuard, enforcer, enforcer_bin, helper_bin};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const NAMED: &str = "AF_INET and AF_INET6 only";

#[test]
fn socket_deny_names_the_families_it_cannot_refuse() {
    if skip_without_cgroup2("socket_deny_names_the_families_it_cannot_refuse") {
        return;
    }
    let g = GroupGuard::new("sockfam");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\".syscalls]\ndeny = [\"socket\"]\naction = \"deny\"\n",
            g.name
        ),
    )
    .unwrap();
    let p_s = p.to_str().unwrap();

    let out = enforcer(&["apply", "--dry-run", p_s]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stderr).contains(NAMED),
        "apply --dry-run: {out:?}"
    );
    let out = enforcer(&["status", "--config", p_s]);
    let said = text(&out.stdout);
    assert!(said.contains(NAMED), "status --config: {said}");
    let socket_line = said
        .lines()
        .find(|l| l.trim_start().starts_with("socket deny"))
        .unwrap_or_else(|| panic!("no socket deny line: {said}"));
    assert!(socket_line.contains("AF_INET"), "{socket_line}");

    run.start(&p);
    assert!(
        run.log().contains(NAMED),
        "the agent says it: {}",
        run.log()
    );
    let attempt = |family: &str| {
        let out = Command::new(enforcer_bin())
            .args(["exec", "-g", &format!("cgroup2:{}", g.name), "--"])
            .arg(helper_bin())
            .args(["try-socket", family])
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(attempt("inet"), "err EPERM");
    // What the warning says, as the kernel does it.
    assert_eq!(attempt("unix"), "ok");
    assert_eq!(attempt("netlink"), "ok");
}

/// `action = "kill"` acts at the syscall's entry (the raw tracepoint), not
/// in a socket hook: every family's `socket` call ends the process, where
/// `deny` could refuse AF_INET and AF_INET6 only.
#[test]
fn kill_stops_a_socket_call_of_every_family() {
    if skip_without_cgroup2("kill_stops_a_socket_call_of_every_family") {
        return;
    }
    let g = GroupGuard::new("sockkill");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{}\".syscalls]\ndeny = [\"socket\"]\naction = \"kill\"\n",
            g.name
        ),
    )
    .unwrap();
    let out = enforcer(&["apply", "--dry-run", p.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !text(&out.stderr).contains(NAMED),
        "a kill rule has no family it cannot stop: {out:?}"
    );
    run.start(&p);
    let attempt = |family: &str| {
        Command::new(enforcer_bin())
            .args(["exec", "-g", &format!("cgroup2:{}", g.name), "--"])
            .arg(helper_bin())
            .args(["try-socket", family])
            .output()
            .unwrap()
    };
    use std::os::unix::process::ExitStatusExt as _;
    for family in ["inet", "unix", "netlink"] {
        let out = attempt(family);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGKILL),
            "a {family} socket call in a kill group: {out:?}"
        );
        assert_eq!(
            text(&out.stdout).trim(),
            "",
            "{family}: the call never returned"
        );
    }
    // The same calls outside the group are untouched.
    let out = Command::new(helper_bin())
        .args(["try-socket", "unix"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), "ok", "{out:?}");
}
