//! Rule-based classification on the real kernel: processes started as a
//! given user, as a member of a group, or running a given program end up
//! in their rule's groups at exec; others stay put; `--sticky` processes and
//! their children are left alone; a rule to a missing group is a warning;
//! `hold` places a process before its program runs; the agent classifies
//! with `[[classify]]`; cgexec and cgclassify without `-g` use the rules.
//!
//! Every test makes its own users, groups, programs (unique names) and rules
//! file, and runs its own daemon on it; they run one at a time because a
//! rules daemon serves the one `/var/run/cgred.socket`.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use enforcer_tests::classify::{
    Daemon, Proc, Scratch, TestGroup, TestUser, can_add_users, group_of, reaches, shows,
};
use enforcer_tests::compat::{Side, real_create, run};
use enforcer_tests::layout;
use enforcer_tests::{AgentRun, GroupGuard};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `program ARGS` as `user` (its uid, gid and supplementary groups, as a
/// login would set them).
fn as_user(user: &TestUser, program: &std::path::Path, args: &[&str]) -> Proc {
    let mut c = Command::new(program);
    c.args(args).stdout(Stdio::null());
    let name = std::ffi::CString::new(user.name.clone()).unwrap();
    let (uid, gid) = (user.uid, user.gid);
    // SAFETY: the child only sets its own credentials before it execs
    // (initgroups reads the group database, as login does).
    unsafe {
        c.pre_exec(move || {
            if libc::initgroups(name.as_ptr(), gid) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Proc(c.spawn().expect("starting a program as the test user"))
}

fn as_root(program: &std::path::Path, args: &[&str]) -> Proc {
    Proc(
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn users_groups_and_programs_are_placed_and_others_stay() {
    let _one = serial();
    const TEST: &str = "users_groups_and_programs_are_placed_and_others_stay";
    if layout::skip_without(TEST, &["cpu", "memory"]) || !can_add_users(TEST) {
        return;
    }
    let s = Scratch::new();
    let (by_user, by_group, by_prog) = (
        GroupGuard::new("cls-user"),
        GroupGuard::new("cls-grp"),
        GroupGuard::new("cls-prog"),
    );
    for g in [&by_user, &by_group, &by_prog] {
        real_create(&format!("cpu,memory:{}", g.name));
    }
    let staff = TestGroup::new();
    let alice = TestUser::new(None);
    let bob = TestUser::new(Some(&staff));
    let carol = TestUser::new(None);
    let prog_name = format!("enfprog{}", std::process::id());
    let prog = s.program(&prog_name);
    let other = s.program("enfother");
    let rules = s.write(
        "cgrules.conf",
        &format!(
            "# test rules\n{} cpu,memory {}\n@{} memory {}\n*:{} cpu {}\n",
            alice.name, by_user.name, staff.name, by_group.name, prog_name, by_prog.name
        ),
    );
    let _d = Daemon::start(&s, &rules, &[]);
    let a = as_user(&alice, &other, &["30"]);
    assert!(
        reaches(a.pid(), "cpu", &by_user.name),
        "alice's process: {:?}",
        group_of(a.pid(), "cpu")
    );
    assert!(reaches(a.pid(), "memory", &by_user.name));
    let b = as_user(&bob, &other, &["30"]);
    assert!(
        reaches(b.pid(), "memory", &by_group.name),
        "bob (member of @{}): {:?}",
        staff.name,
        group_of(b.pid(), "memory")
    );
    let p = as_root(&prog, &["30"]);
    assert!(
        reaches(p.pid(), "cpu", &by_prog.name),
        "{prog_name}: {:?}",
        group_of(p.pid(), "cpu")
    );
    let c = as_user(&carol, &other, &["30"]);
    let before = group_of(std::process::id(), "cpu");
    // A process the rules do move, started after carol's exec: once it is
    // placed, the engine has handled every exec before it, carol's too.
    let marker = as_root(&prog, &["30"]);
    assert!(reaches(marker.pid(), "cpu", &by_prog.name));
    assert_eq!(
        group_of(c.pid(), "cpu"),
        before,
        "carol matches no rule and stays put"
    );
}

#[test]
fn sticky_processes_and_their_children_stay() {
    let _one = serial();
    let s = Scratch::new();
    let (dest, here) = (GroupGuard::new("cls-dest"), GroupGuard::new("cls-sticky"));
    real_create(&format!("cpu:{}", dest.name));
    real_create(&format!("cpu:{}", here.name));
    let prog_name = format!("enfstick{}", std::process::id());
    let prog = s.program(&prog_name);
    let rules = s.write(
        "cgrules.conf",
        &format!("*:{prog_name} cpu {}\n", dest.name),
    );
    let d = Daemon::start(&s, &rules, &[]);
    // Without --sticky, cgexec's own process stays (libcgroup registers it
    // as unchanged either way) but a child that runs the program is moved.
    let free = run_in(&here.name, false, &format!("{} 30 & wait", prog.display()));
    let free_child = wait_child(free.pid());
    assert!(
        reaches(free_child, "cpu", &dest.name),
        "{:?}",
        group_of(free_child, "cpu")
    );
    // The sticky process itself execs the program: it stays.
    let own = run_in(&here.name, true, &format!("exec {} 30", prog.display()));
    runs(own.pid(), &prog_name);
    handled_so_far(&here.name, &dest.name, &prog);
    assert_eq!(
        group_of(own.pid(), "cpu").as_deref(),
        Some(format!("/{}", here.name).as_str()),
        "{}",
        d.log_text()
    );
    // A child forked afterwards execs it: stays too.
    let parent = run_in(&here.name, true, &format!("{} 30 & wait", prog.display()));
    let child = wait_child(parent.pid());
    runs(child, &prog_name);
    handled_so_far(&here.name, &dest.name, &prog);
    assert_eq!(
        group_of(child, "cpu").as_deref(),
        Some(format!("/{}", here.name).as_str()),
        "{}",
        d.log_text()
    );
}

/// `cgexec [--sticky] -g cpu:GROUP sh -c SCRIPT`.
fn run_in(group: &str, sticky: bool, script: &str) -> Proc {
    let mut args = Vec::new();
    if sticky {
        args.push("--sticky".to_string());
    }
    args.extend([
        "-g".to_string(),
        format!("cpu:{group}"),
        "sh".into(),
        "-c".into(),
        script.into(),
    ]);
    Proc(
        enforcer_tests::compat::command(Side::Ours, "cgexec", &args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Waits until `pid` runs the program named `name` (its exec is done).
fn runs(pid: u32, name: &str) {
    enforcer_tests::wait_until(&format!("{pid} to run {name}"), || {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|p| p.file_name().is_some_and(|f| f == name))
    });
}

/// Starts a process the rules move (a non-sticky child in `here` running `prog`)
/// and waits until it reaches `dest`: the engine handles execs in order, so
/// every exec before this one has been handled too. Where a test checks that
/// something was *not* moved, this is the event that ends the wait.
fn handled_so_far(here: &str, dest: &str, prog: &std::path::Path) {
    // cgexec's own process counts as placed either way; its child is moved.
    let parent = run_in(here, false, &format!("{} 30 & wait", prog.display()));
    let marker = wait_child(parent.pid());
    assert!(
        reaches(marker, "cpu", dest),
        "the marker was not moved: {:?}",
        group_of(marker, "cpu")
    );
}

fn wait_child(pid: u32) -> u32 {
    for _ in 0..200 {
        let kids =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(k) = kids.split_whitespace().next() {
            return k.parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no child of {pid}");
}

#[test]
fn a_rule_to_a_missing_group_is_a_warning_and_the_rest_still_works() {
    let _one = serial();
    let s = Scratch::new();
    let dest = GroupGuard::new("cls-ok");
    real_create(&format!("cpu:{}", dest.name));
    let missing = format!("{}-missing", dest.name);
    let (bad, good) = (
        format!("enfbad{}", std::process::id()),
        format!("enfgood{}", std::process::id()),
    );
    let (bad_prog, good_prog) = (s.program(&bad), s.program(&good));
    let rules = s.write(
        "cgrules.conf",
        &format!("*:{bad} cpu {missing}\n*:{good} cpu {}\n", dest.name),
    );
    let mut d = Daemon::start(&s, &rules, &[]);
    let b = as_root(&bad_prog, &["30"]);
    let deadline =
        std::time::Instant::now() + Duration::from_secs(10) * enforcer_tests::time_scale();
    while !d.log_text().contains("does not exist") {
        assert!(
            std::time::Instant::now() < deadline,
            "no warning: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = d.log_text();
    assert!(
        log.contains(&format!("PID: {}", b.pid()))
            && log.contains(&missing)
            && log.contains("create the group or fix the rule"),
        "{log}"
    );
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "the daemon keeps running"
    );
    let g = as_root(&good_prog, &["30"]);
    assert!(reaches(g.pid(), "cpu", &dest.name));
}

#[test]
fn templates_create_their_groups() {
    let _one = serial();
    if !can_add_users("templates_create_their_groups") {
        return;
    }
    let s = Scratch::new();
    let base = GroupGuard::new("cls-tpl");
    real_create(&format!("cpu:{}", base.name));
    let user = TestUser::new(None);
    let prog = s.program("enftpl");
    let rules = s.write(
        "cgrules.conf",
        &format!("{} cpu {}/%u\n", user.name, base.name),
    );
    let _d = Daemon::start(&s, &rules, &[]);
    let p = as_user(&user, &prog, &["30"]);
    let want = format!("{}/{}", base.name, user.name);
    assert!(
        reaches(p.pid(), "cpu", &want),
        "{:?}",
        group_of(p.pid(), "cpu")
    );
}

/// Where the program found itself at its first instruction of `main`.
fn woke_in(prog: &std::path::Path) -> String {
    let out = Command::new(prog).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn hold_places_a_process_before_its_program_runs() {
    let _one = serial();
    let s = Scratch::new();
    let dest = GroupGuard::new("cls-hold");
    real_create(&format!("cpu:{}", dest.name));
    let name = format!("enfhold{}", std::process::id());
    let prog = s.program(&name);
    let rules = s.write("cgrules.conf", &format!("*:{name} cpu {}\n", dest.name));
    let _d = Daemon::start(&s, &rules, &["--hold"]);
    for i in 0..20 {
        let seen = woke_in(&prog);
        assert!(
            shows(&seen, "cpu", &dest.name),
            "run {i}: the program ran in its old group first: {seen}"
        );
    }
}

#[test]
fn the_agent_classifies_with_the_policy_classify_table() {
    let _one = serial();
    if layout::skip_without_cgroup2("the_agent_classifies_with_the_policy_classify_table") {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("cls-agent");
    real_create(&format!("cpu:{}", dest.name));
    let name = format!("enfagent{}", std::process::id());
    let prog = s.program(&name);
    let (agent, _) = classifying_agent(
        &format!(
            "[[classify]]\ncomm = \"{name}\"\ncontrollers = [\"cpu\"]\ndestination = \"{}\"\n",
            dest.name
        ),
        &s.0.join("none.conf"),
        &s.0.join("none.d"),
    );
    let p = as_root(&prog, &["30"]);
    assert!(reaches(p.pid(), "cpu", &dest.name), "{}", agent.log());
}

/// An agent running the policy `text` (its own file, returned), with the
/// cgrules.conf and cgrules.d at `conf` and `dir`, once it classifies at
/// exec.
fn classifying_agent(
    text: &str,
    conf: &std::path::Path,
    dir: &std::path::Path,
) -> (AgentRun, std::path::PathBuf) {
    let mut agent = AgentRun::new();
    let policy = agent.file("policy.toml");
    std::fs::write(&policy, text).unwrap();
    let log = std::fs::File::create(agent.file("agent.log")).unwrap();
    let child = agent
        .command(None, Some(&policy), &[])
        .env("ENFORCER_CGRULES_CONF", conf)
        .env("ENFORCER_CGRULES_DIR", dir)
        .env("ENFORCER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    agent.child = Some(child);
    wait_log_count(&agent, "exec classification started", 0);
    (agent, policy)
}

/// The agent's lines that contain `what`.
fn log_count(agent: &AgentRun, what: &str) -> usize {
    agent.log().matches(what).count()
}

/// Waits for the agent's log to hold more than `n` lines with `what`.
fn wait_log_count(agent: &AgentRun, what: &str, n: usize) {
    enforcer_tests::wait_for(what, Duration::from_secs(30), || log_count(agent, what) > n);
}

/// `[[classify]]` rules follow the policy the agent has in force: a policy
/// the agent refuses at reload changes no rule (the classifier re-reads
/// its sources when cgrules.conf changes, and still places by the old
/// policy's rule), and one it accepts changes them.
#[test]
fn classify_rules_follow_the_policy_in_force_not_the_file() {
    let _one = serial();
    const TEST: &str = "classify_rules_follow_the_policy_in_force_not_the_file";
    if layout::skip_without_cgroup2(TEST) || layout::skip_without(TEST, &["cpu"]) {
        return;
    }
    let s = Scratch::new();
    let first = GroupGuard::new("cls-inforce-a");
    let second = GroupGuard::new("cls-inforce-b");
    real_create(&format!("cpu:{}", first.name));
    real_create(&format!("cpu:{}", second.name));
    let name = format!("enfinforce{}", std::process::id());
    let prog = s.program(&name);
    let conf = s.write("cgrules.conf", "");
    let rule = |dest: &str| {
        format!(
            "[[classify]]\ncomm = \"{name}\"\ncontrollers = [\"cpu\"]\ndestination = \"{dest}\"\n"
        )
    };
    let (agent, policy) = classifying_agent(&rule(&first.name), &conf, &s.0.join("none.d"));

    // A policy the host refuses (no such controller): the agent keeps the
    // one in force, and so do the classification rules.
    std::fs::write(
        &policy,
        format!(
            "{}\n[group.\"{}\"]\n\"nosuchctl.weight\" = 5\n",
            rule(&second.name),
            first.name
        ),
    )
    .unwrap();
    wait_log_count(&agent, "invalid policy, keeping the current one", 0);
    let reloads = log_count(&agent, "classification rules reloaded");
    std::fs::write(&conf, "# edited\n").unwrap();
    wait_log_count(&agent, "classification rules reloaded", reloads);
    let p = as_root(&prog, &["30"]);
    assert!(
        reaches(p.pid(), "cpu", &first.name),
        "placed by the refused policy's rule:\n{}",
        agent.log()
    );

    // A policy the agent accepts: its rule is in force.
    let reloads = log_count(&agent, "classification rules reloaded");
    std::fs::write(&policy, rule(&second.name)).unwrap();
    wait_log_count(&agent, "classification rules reloaded", reloads);
    let p = as_root(&prog, &["30"]);
    assert!(
        reaches(p.pid(), "cpu", &second.name),
        "the accepted policy's rule:\n{}",
        agent.log()
    );
}

#[test]
fn cgexec_and_cgclassify_without_g_follow_the_rules() {
    let _one = serial();
    if layout::skip_without(
        "cgexec_and_cgclassify_without_g_follow_the_rules",
        &["cpu", "memory"],
    ) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("cls-tools");
    real_create(&format!("cpu,memory:{}", dest.name));
    let name = format!("enftool{}", std::process::id());
    let prog = s.program(&name);
    let rules = s.write(
        "cgrules.conf",
        &format!("*:{name} cpu,memory {}\n", dest.name),
    );
    let env = |c: &mut Command| {
        c.env("ENFORCER_CGRULES_CONF", &rules)
            .env("ENFORCER_CGRULES_DIR", s.0.join("none.d"));
    };
    // cgexec: the command's name decides.
    let mut c =
        enforcer_tests::compat::command(Side::Ours, "cgexec", &[prog.display().to_string()]);
    env(&mut c);
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        shows(&text, "cpu", &dest.name),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // cgclassify PID: the running process's name decides.
    let p = as_root(&prog, &["30"]);
    let mut c = enforcer_tests::compat::command(Side::Ours, "cgclassify", &[p.pid().to_string()]);
    env(&mut c);
    let r = c.output().unwrap();
    assert!(r.status.success(), "{r:?}");
    assert!(reaches(p.pid(), "memory", &dest.name));
    // A rules file that does not parse: libcgroup's messages and status.
    let bad = s.write("bad.conf", "root cpu\n");
    let mut c = enforcer_tests::compat::command(Side::Ours, "cgclassify", &[p.pid().to_string()]);
    c.env("ENFORCER_CGRULES_CONF", &bad)
        .env("ENFORCER_CGRULES_DIR", s.0.join("none.d"));
    let r = c.output().unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "Error: failed to parse configuration file on line 1\nError: failed to parse the configuration rules\n"
    );
    let _ = run;
}

/// `program` as `user` with argv[0] = `arg0`, stdout piped.
fn as_user_named(user: &TestUser, program: &std::path::Path, arg0: &str, args: &[&str]) -> Proc {
    let mut c = Command::new(program);
    c.arg0(arg0).args(args).stdout(Stdio::piped());
    let (uid, gid) = (user.uid, user.gid);
    c.uid(uid).gid(gid);
    Proc(c.spawn().expect("starting a program as the test user"))
}

/// A directory the test user owns (where such a user makes symlinks).
fn user_dir(s: &Scratch, user: &TestUser) -> std::path::PathBuf {
    let d = s.0.join(format!("home-{}", user.name));
    std::fs::create_dir(&d).unwrap();
    nix::unistd::chown(
        &d,
        Some(nix::unistd::Uid::from_raw(user.uid)),
        Some(nix::unistd::Gid::from_raw(user.gid)),
    )
    .unwrap();
    d
}

/// Finding 2 of issue 18: a `%p` destination took what the process said its
/// name was (argv[0], when the comm differed from the executable's name)
/// and followed its `..`: `exec -a /../../TGT/victim` put the process in
/// TGT/victim, and enough `..` made root mkdir outside cgroupfs.
#[test]
fn a_process_name_cannot_take_a_template_destination_out_of_its_subtree() {
    let _one = serial();
    const TEST: &str = "a_process_name_cannot_take_a_template_destination_out_of_its_subtree";
    if layout::skip_without(TEST, &["cpu"]) || !can_add_users(TEST) {
        return;
    }
    let s = Scratch::new();
    let (base, tgt) = (GroupGuard::new("cls-base"), GroupGuard::new("cls-tgt"));
    real_create(&format!("cpu:{}", base.name));
    real_create(&format!("cpu:{}", tgt.name));
    let user = TestUser::new(None);
    let prog = s.program(&format!("enfp{}", std::process::id()));
    // The user's own link, named as its argv[0] will end: the comm is the
    // link's name, the executable the program it points to.
    let link = user_dir(&s, &user).join("victim");
    std::os::unix::fs::symlink(&prog, &link).unwrap();
    let outside = std::env::temp_dir().join(enforcer_tests::unique_name("outside"));
    let rules = s.write(
        "cgrules.conf",
        &format!("{} cpu {}/sub/%p\n", user.name, base.name),
    );
    let d = Daemon::start(&s, &rules, &[]);
    let into_tgt = as_user_named(
        &user,
        &link,
        &format!("/../../{}/victim", tgt.name),
        &["30"],
    );
    let escape = as_user_named(
        &user,
        &link,
        &format!("/../../../../../../../..{}/victim", outside.display()),
        &["30"],
    );
    // Each is placed by what the kernel ran, below the rule's subtree.
    let want = format!("{}/sub{}", base.name, prog.display());
    for p in [&into_tgt, &escape] {
        assert!(
            reaches(p.pid(), "cpu", &want),
            "{}: {:?}\n{}",
            p.pid(),
            group_of(p.pid(), "cpu"),
            d.log_text()
        );
    }
    assert!(
        !layout::dir_of("cpu", &format!("{}/victim", tgt.name)).exists(),
        "a group was made in {}",
        tgt.name
    );
    assert!(
        !outside.exists(),
        "{} was made outside cgroupfs",
        outside.display()
    );
}

/// Finding 5 of issue 18: a full-path rule matched what `exec -a` said:
/// a link named like the privileged program, run with argv[0] set to its
/// path, was placed in the privileged group.
#[test]
fn argv0_does_not_choose_a_full_path_rule() {
    let _one = serial();
    const TEST: &str = "argv0_does_not_choose_a_full_path_rule";
    if layout::skip_without(TEST, &["cpu"]) || !can_add_users(TEST) {
        return;
    }
    let s = Scratch::new();
    let (special, plain) = (GroupGuard::new("cls-priv"), GroupGuard::new("cls-plain"));
    real_create(&format!("cpu:{}", special.name));
    real_create(&format!("cpu:{}", plain.name));
    let user = TestUser::new(None);
    let name = format!("enfspecial{}", std::process::id());
    let privileged = s.program(&name);
    let other = s.program("enfother");
    let link = user_dir(&s, &user).join(&name);
    std::os::unix::fs::symlink(&other, &link).unwrap();
    let rules = s.write(
        "cgrules.conf",
        &format!(
            "*:{} cpu {}\n*:{} cpu {}\n",
            privileged.display(),
            special.name,
            other.display(),
            plain.name
        ),
    );
    let d = Daemon::start(&s, &rules, &[]);
    let spoof = as_user_named(&user, &link, &privileged.display().to_string(), &["30"]);
    assert!(
        reaches(spoof.pid(), "cpu", &plain.name),
        "the program the kernel ran is {}: {:?}\n{}",
        other.display(),
        group_of(spoof.pid(), "cpu"),
        d.log_text()
    );
    // Running the privileged program itself still matches its rule.
    let real = as_user_named(&user, &privileged, "anything", &["30"]);
    assert!(
        reaches(real.pid(), "cpu", &special.name),
        "{:?}",
        group_of(real.pid(), "cpu")
    );
}

/// The pid the helper's grandchild printed.
fn grandchild(p: &mut Proc) -> u32 {
    use std::io::BufRead as _;
    let out = p.0.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).unwrap();
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("no pid: {line:?}"))
}

/// Finding 6 of issue 18: without `hold`, a process that forked, whose
/// child forked and exited, and whose grandchild left the session, left
/// the grandchild in its old group (5 of 5): it was nobody's child by the
/// time the daemon looked.
#[test]
fn a_double_fork_cannot_outrun_classification() {
    let _one = serial();
    const TEST: &str = "a_double_fork_cannot_outrun_classification";
    if layout::skip_without(TEST, &["cpu"]) || !can_add_users(TEST) {
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("cls-fork");
    real_create(&format!("cpu:{}", dest.name));
    let user = TestUser::new(None);
    let rules = s.write(
        "cgrules.conf",
        &format!("{} cpu {}\n", user.name, dest.name),
    );
    let d = Daemon::start(&s, &rules, &[]);
    let helper = enforcer_tests::helper_bin();
    let mut escaped = Vec::new();
    for _ in 0..5 {
        let mut p = as_user_named(&user, &helper, "helper", &["double-fork", "30"]);
        let g = grandchild(&mut p);
        if !reaches(g, "cpu", &dest.name) {
            escaped.push((g, group_of(g, "cpu")));
        }
    }
    assert!(escaped.is_empty(), "escaped: {escaped:?}\n{}", d.log_text());
}

/// Finding 6 of issue 18: with `hold`, `runuser -u USER -- PROGRAM` stayed
/// stopped for good after PROGRAM ended: runuser stops itself when it sees
/// its child stop (to pass the stop on to its shell), and nobody continued it.
#[test]
fn hold_leaves_nothing_stopped() {
    let _one = serial();
    const TEST: &str = "hold_leaves_nothing_stopped";
    if layout::skip_without(TEST, &["cpu"]) || !can_add_users(TEST) {
        return;
    }
    let runuser = std::path::Path::new("/usr/sbin/runuser");
    if !runuser.exists() {
        enforcer_tests::skipped(TEST, "no /usr/sbin/runuser here");
        return;
    }
    let s = Scratch::new();
    let dest = GroupGuard::new("cls-held");
    real_create(&format!("cpu:{}", dest.name));
    let user = TestUser::new(None);
    let prog = s.program(&format!("enfheld{}", std::process::id()));
    let rules = s.write(
        "cgrules.conf",
        &format!("{} cpu {}\n", user.name, dest.name),
    );
    let d = Daemon::start(&s, &rules, &["--hold"]);
    for run in 0..2 {
        let mut c = Proc(
            Command::new(runuser)
                .args(["-u", &user.name, "--"])
                .arg(&prog)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let deadline =
            std::time::Instant::now() + Duration::from_secs(10) * enforcer_tests::time_scale();
        let status = loop {
            if let Some(st) = c.0.try_wait().unwrap() {
                break st;
            }
            let state =
                std::fs::read_to_string(format!("/proc/{}/stat", c.pid())).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "run {run}: runuser did not finish: {state}\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "run {run}: {status}");
        let mut out = String::new();
        std::io::Read::read_to_string(&mut c.0.stdout.take().unwrap(), &mut out).unwrap();
        assert!(
            shows(&out, "cpu", &dest.name),
            "run {run}: the program ran before it was placed: {out}"
        );
    }
}
