//! enforcer under libcgroup's tool names against Debian's cgroup-tools
//! (2.0.2), side by side on this host: one table of invocations per tool.
//!
//! `Same`: stdout, stderr, exit status and the state left behind are equal.
//! `V3`: libcgroup 3.x (the reference) differs from 2.0.2 here; enforcer's
//! result is checked against what 3.x's source does. `Fixed`: libcgroup has
//! a bug that leaves the host in a state the command did not ask for;
//! enforcer does what the man page says, and the test checks that.
//! Each case prints one line (`--nocapture` shows the table).

use enforcer_tests::GroupGuard;
use enforcer_tests::compat::{
    Run, Side, Sleeper, fresh, norm, real_create, run, v1_mounts, v1_state,
};

#[derive(Clone, Copy)]
enum Setup {
    None,
    /// A cgconfig.conf `{CONF}` with this text (`{G}` replaced); no groups.
    Conf(&'static str),
    /// `cpu,memory:G` made by libcgroup's cgcreate.
    Group,
    /// `G` and `G/sub`.
    GroupSub,
    /// `G` and a sleeping process `{P}`.
    Sleeper,
}

#[derive(Clone, Copy)]
enum State {
    None,
    /// v1 directories of G with owners and modes.
    Dirs,
    /// `cgget -n -v -r KEY...` of G (and G/sub if it exists), by libcgroup.
    Values(&'static [&'static str]),
    /// The sleeper's v1 groups.
    Sleeper,
}

#[derive(Clone, Copy)]
enum Expect {
    Same,
    /// 3.x behaviour: (status, stdout, stderr) after normalisation, and why.
    V3(i32, &'static str, &'static str, &'static str),
    /// libcgroup's bug fixed: a check of enforcer's run and state, and why.
    Fixed(fn(&Outcome), &'static str),
}

struct Case {
    tool: &'static str,
    args: &'static [&'static str],
    setup: Setup,
    state: State,
    expect: Expect,
}

const fn case(
    tool: &'static str,
    args: &'static [&'static str],
    setup: Setup,
    state: State,
    expect: Expect,
) -> Case {
    Case {
        tool,
        args,
        setup,
        state,
        expect,
    }
}

/// One side's run and the state after it, normalised (`G`, `PID`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    run: Run,
    state: String,
}

fn deny_file() -> String {
    let p = std::env::temp_dir().join(format!("enf-compat-deny-{}.conf", std::process::id()));
    let _ = std::fs::write(&p, "# deny\nmemory.force_empty\n");
    p.display().to_string()
}

fn values(name: &str, keys: &[&str]) -> String {
    let mut out = String::new();
    for g in [name.to_string(), format!("{name}/sub")] {
        let mut args = vec!["-n".to_string(), "-v".to_string()];
        for k in keys {
            args.push("-r".into());
            args.push((*k).into());
        }
        args.push(g);
        let side = if std::path::Path::new("/usr/bin/cgget").exists() {
            Side::Real
        } else {
            Side::Ours
        };
        let r = run(side, "cgget", &args);
        if r.status == 0 {
            out.push_str(&r.out);
        }
    }
    out
}

fn one(side: Side, c: &Case) -> Outcome {
    let g = fresh("compat");
    let conf = std::env::temp_dir().join(format!("enf-compat-{}.conf", g.name));
    let sleeper = match c.setup {
        Setup::None => None,
        Setup::Conf(text) => {
            std::fs::write(&conf, text.replace("{G}", &g.name)).expect("writing a cgconfig.conf");
            None
        }
        Setup::Group => {
            real_create(&format!("cpu,memory:{}", g.name));
            None
        }
        Setup::GroupSub => {
            real_create(&format!("cpu,memory:{}/sub", g.name));
            None
        }
        Setup::Sleeper => {
            real_create(&format!("cpu,memory:{}", g.name));
            Some(Sleeper::start())
        }
    };
    let pid = sleeper.as_ref().map_or(0, Sleeper::pid).to_string();
    let deny = deny_file();
    let args: Vec<String> = c
        .args
        .iter()
        .map(|a| {
            a.replace("{G}", &g.name)
                .replace("{P}", &pid)
                .replace("{DENY}", &deny)
                .replace("{CONF}", &conf.display().to_string())
        })
        .collect();
    let mut r = run(side, c.tool, &args);
    let state = match c.state {
        State::None => String::new(),
        State::Dirs => v1_state(&g.name),
        State::Values(keys) => values(&g.name, keys),
        State::Sleeper => sleeper.as_ref().map(Sleeper::v1_groups).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(&conf);
    let conf_name = conf.display().to_string();
    let fix = |s: &str| {
        let s = norm(&s.replace(&conf_name, "CONF"), &g.name, "G").replace(&deny, "DENY");
        if pid != "0" {
            s.replace(&pid, "PID")
        } else {
            s
        }
    };
    r.out = fix(&r.out);
    r.err = fix(&r.err);
    if c.tool == "cgsnapshot" {
        r.out = only_own_groups(&r.out);
    }
    Outcome {
        run: r,
        state: fix(&state),
    }
}

/// A snapshot's header, mount section and the blocks of the test's own
/// groups (`G`, `G/...`): other tests' groups come and go meanwhile, and
/// their place in the kernel's directory order depends on their names.
fn only_own_groups(text: &str) -> String {
    let mut out = String::new();
    let mut keep = true;
    for l in text.split_inclusive('\n') {
        if let Some(rest) = l.strip_prefix("group ") {
            keep = rest.starts_with("G {") || rest.starts_with("G/");
        }
        if keep {
            out.push_str(l);
        }
    }
    out
}

fn label(c: &Case) -> String {
    format!("{} {}", c.tool, c.args.join(" "))
}

fn check(cases: &[Case]) {
    if !enforcer_tests::compat::have_real_tools("compat comparison") {
        return;
    }
    let mut failures = Vec::new();
    for c in cases {
        match c.expect {
            Expect::Same => {
                // Another test's group appearing between the two runs can
                // change a whole-host listing: try again before failing.
                let mut last = None;
                for _ in 0..3 {
                    let real = one(Side::Real, c);
                    let ours = one(Side::Ours, c);
                    if real == ours {
                        last = None;
                        break;
                    }
                    last = Some((real, ours));
                }
                match last {
                    None => eprintln!("same    | {}", label(c)),
                    Some((real, ours)) => {
                        eprintln!("DIFFERS | {}", label(c));
                        failures.push(format!(
                            "{}:\n  libcgroup: {real:?}\n  enforcer:  {ours:?}",
                            label(c)
                        ));
                    }
                }
            }
            Expect::V3(status, out, err, why) => {
                let ours = one(Side::Ours, c);
                let want = Run {
                    status,
                    out: out.to_string(),
                    err: err.to_string(),
                };
                if ours.run == want {
                    eprintln!("3.x     | {} | {why}", label(c));
                } else {
                    eprintln!("DIFFERS | {}", label(c));
                    failures.push(format!(
                        "{} (3.x: {why}):\n  want {want:?}\n  got  {:?}",
                        label(c),
                        ours.run
                    ));
                }
            }
            Expect::Fixed(check, why) => {
                let ours = one(Side::Ours, c);
                check(&ours);
                eprintln!("fixed   | {} | {why}", label(c));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const WRONG_CGGET: &str = "Wrong input parameters, try cgget -h' for more information.\n";

#[test]
fn cgget() {
    use Expect::*;
    use Setup::*;
    check(&[
        case(
            "cgget",
            &["-r", "cpu.shares", "{G}"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgget",
            &["-n", "-v", "-r", "cpu.shares", "{G}"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgget",
            &["-n", "-r", "cpu.shares", "-r", "cpu.cfs_quota_us", "{G}"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgget",
            &[
                "--variable",
                "memory.limit_in_bytes",
                "--values-only",
                "{G}",
                "{G}/sub",
            ],
            GroupSub,
            State::None,
            Same,
        ),
        case("cgget", &["-g", "cpu", "{G}"], Group, State::None, Same),
        case("cgget", &["-g", "cpu:{G}"], Group, State::None, Same),
        case(
            "cgget",
            &["-g", "cpu:{G}", "-g", "memory:{G}/sub"],
            GroupSub,
            State::None,
            Same,
        ),
        case("cgget", &["-a", "{G}"], Group, State::None, Same),
        case("cgget", &["--all", "{G}"], Group, State::None, Same),
        case("cgget", &["{G}"], Group, State::None, Same),
        case(
            "cgget",
            &["-r", "cpu.stat", "{G}"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgget",
            &["-r", "cpu.shares", "{G}-missing"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgget",
            &["-r", "cpu.nofile", "{G}"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgget",
            &["-g", "cpu", "{G}-missing"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgget",
            &[],
            None,
            State::None,
            V3(
                129,
                "",
                WRONG_CGGET,
                "EXIT_BADARGS is 129 in 3.x (2.0.2: 1)",
            ),
        ),
        case(
            "cgget",
            &["-x", "{G}"],
            Group,
            State::None,
            V3(
                129,
                "",
                "cgget: invalid option -- 'x'\nWrong input parameters, try cgget -h' for more information.\n",
                "EXIT_BADARGS",
            ),
        ),
        case(
            "cgget",
            &["-r", "foo.bar", "{G}"],
            Group,
            State::None,
            V3(
                96,
                "",
                "cgget: cannot find controller 'foo'\n",
                "3.x checks the controller while parsing -r",
            ),
        ),
        case(
            "cgget",
            &["-r", "noformat", "{G}"],
            Group,
            State::None,
            V3(
                91,
                "",
                "cgget: error parsing parameter name 'noformat'",
                "3.x message (2.0.2 breaks the line)",
            ),
        ),
        case(
            "cgget",
            &["-m"],
            None,
            State::None,
            V3(
                0,
                "Hybrid mode (Cgroup v1/v2).\n",
                "",
                "-m is new in 3.x (this host is hybrid)",
            ),
        ),
        case(
            "cgget",
            &["-r", "cpu.shares", "-g", "cpu", "{G}"],
            Group,
            State::None,
            V3(
                129,
                "",
                WRONG_CGGET,
                "-r and -g together are refused in 3.x",
            ),
        ),
    ]);
}

fn shares_700_both(o: &Outcome) {
    assert_eq!(o.run.status, 0, "{o:?}");
    assert_eq!(o.state, "700\n700\n", "{o:?}");
}

#[test]
fn cgset() {
    use Expect::*;
    use Setup::*;
    const SHARES: State = State::Values(&["cpu.shares"]);
    check(&[
        case(
            "cgset",
            &["-r", "cpu.shares=512", "{G}"],
            Group,
            SHARES,
            Same,
        ),
        case(
            "cgset",
            &[
                "-r",
                "cpu.shares=600",
                "-r",
                "cpu.cfs_quota_us=50000",
                "{G}",
            ],
            Group,
            State::Values(&["cpu.shares", "cpu.cfs_quota_us"]),
            Same,
        ),
        case(
            "cgset",
            &["--rule", "memory.limit_in_bytes=10M", "{G}"],
            Group,
            State::Values(&["memory.limit_in_bytes"]),
            Same,
        ),
        case(
            "cgset",
            &["--copy-from", "{G}", "{G}/sub"],
            GroupSub,
            State::Values(&["cpu.shares", "memory.limit_in_bytes"]),
            Same,
        ),
        case(
            "cgset",
            &["-r", "cpu.shares=abc", "{G}"],
            Group,
            SHARES,
            V3(
                96,
                "",
                "cgset: cgroup modify error: Invalid argument\n",
                "no trailing blank after the message in 3.x",
            ),
        ),
        case(
            "cgset",
            &["-r", "cpu.shares=512", "{G}-missing"],
            Group,
            State::None,
            V3(
                95,
                "",
                "cgset: cgroup modify error: Cgroup, requested group parameter does not exist\n",
                "no trailing blank in 3.x",
            ),
        ),
        case(
            "cgset",
            &["-r", "memory.swappiness=", "{G}"],
            Group,
            State::None,
            V3(
                129,
                "",
                "cgset: wrong parameter of option -r: memory.swappiness=\n",
                "an empty value is refused; EXIT_BADARGS",
            ),
        ),
        case(
            "cgset",
            &["{G}"],
            Group,
            State::None,
            V3(
                129,
                "",
                "cgset: no name-value pair was set\n",
                "EXIT_BADARGS",
            ),
        ),
        case(
            "cgset",
            &["-r", "cpu.shares=5"],
            None,
            State::None,
            V3(129, "", "cgset: no cgroup specified\n", "EXIT_BADARGS"),
        ),
        case(
            "cgset",
            &["-r", "noequals", "{G}"],
            Group,
            State::None,
            V3(
                129,
                "",
                "cgset: wrong parameter of option -r: noequals\n",
                "2.0.2 crashes (SIGSEGV) here",
            ),
        ),
        case(
            "cgset",
            &["--copy-from", "{G}-missing", "{G}"],
            Group,
            State::None,
            V3(
                0,
                "",
                "cgroup G-missing error: Cgroup does not exist\n",
                "3.x message; the exit status is libcgroup's 0",
            ),
        ),
        case(
            "cgset",
            &["-r", "foo.bar=1", "{G}"],
            Group,
            State::None,
            V3(
                0,
                "",
                "controller foo can't be add\n",
                "3.x refuses the controller while parsing; exit status 0 as in 3.x",
            ),
        ),
        case(
            "cgset",
            &["-R", "-r", "cpu.shares=700", "{G}"],
            GroupSub,
            SHARES,
            Fixed(
                shares_700_both,
                "-R is new in 3.x: the group and its subgroups",
            ),
        ),
        case(
            "cgset",
            &["-x", "{G}"],
            Group,
            State::None,
            V3(
                129,
                "",
                "cgset: invalid option -- 'x'\nWrong input parameters, try cgset --help' for more information.\n",
                "EXIT_BADARGS",
            ),
        ),
    ]);
}

fn gone(o: &Outcome) {
    assert_eq!(o.run.status, 0, "{o:?}");
    assert_eq!(
        o.state, "",
        "every named hierarchy's group is removed: {o:?}"
    );
}

#[test]
fn cgcreate() {
    use Expect::*;
    use Setup::*;
    check(&[
        case(
            "cgcreate",
            &["-g", "cpu,memory:{G}"],
            None,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["-g", "cpu:{G}", "-g", "memory:{G}"],
            None,
            State::Dirs,
            Same,
        ),
        case("cgcreate", &["-g", "*:{G}"], None, State::Dirs, Same),
        case("cgcreate", &["-g", "cpu:{G}/sub"], None, State::Dirs, Same),
        case(
            "cgcreate",
            &[
                "-a",
                "nobody:nogroup",
                "-t",
                "nobody:nogroup",
                "-g",
                "cpu:{G}",
            ],
            None,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["-d", "700", "-f", "600", "-s", "640", "-g", "cpu:{G}"],
            None,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["--dperm=750", "--fperm=777", "-g", "memory:{G}"],
            None,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["-t", ":nogroup", "-g", "memory:{G}"],
            None,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["-a", "no-such-user-enf", "-g", "cpu:{G}"],
            None,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["-d", "7", "-g", "cpu:{G}"],
            None,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["-g", "cpu,memory:{G}"],
            Group,
            State::Dirs,
            Same,
        ),
        case(
            "cgcreate",
            &["-g", "cpu"],
            None,
            State::Dirs,
            V3(
                129,
                "",
                "cgcreate: cgroup controller and path parsing failed ((null))\n",
                "3.x spelling and EXIT_BADARGS",
            ),
        ),
        case(
            "cgcreate",
            &["-g", "foo:{G}"],
            None,
            State::Dirs,
            V3(
                91,
                "",
                "cgcreate: controller foo can't be add\n",
                "3.x checks the controller before creating",
            ),
        ),
        case(
            "cgcreate",
            &[],
            None,
            State::None,
            V3(
                129,
                "",
                "Wrong input parameters, try cgcreate -h for more information.\n",
                "EXIT_BADARGS",
            ),
        ),
        case(
            "cgcreate",
            &["-g", "cpu:{G}", "extra"],
            None,
            State::Dirs,
            V3(
                129,
                "",
                "cgcreate: wrong arguments (extra)\n",
                "EXIT_BADARGS",
            ),
        ),
        case(
            "cgcreate",
            &["-b", "-g", "cpu:{G}"],
            None,
            State::None,
            V3(0, "", "", "-b is a 3.x option"),
        ),
    ]);
}

#[test]
fn cgdelete() {
    use Expect::*;
    use Setup::*;
    check(&[
        case("cgdelete", &["-g", "cpu:{G}"], Group, State::Dirs, Same),
        case("cgdelete", &["memory:{G}"], Group, State::Dirs, Same),
        case(
            "cgdelete",
            &["-g", "cpu:{G}-missing"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgdelete",
            &["-r", "-g", "cpu:{G}"],
            GroupSub,
            State::Dirs,
            Same,
        ),
        case(
            "cgdelete",
            &["--recursive", "memory:{G}"],
            GroupSub,
            State::Dirs,
            Same,
        ),
        case("cgdelete", &["-g", "cpu:{G}"], GroupSub, State::Dirs, Same),
        case(
            "cgdelete",
            &["-g", "cpu:{G}/sub"],
            GroupSub,
            State::Dirs,
            Same,
        ),
        case("cgdelete", &["-g", "cpu:{G}"], Sleeper, State::Dirs, Same),
        case(
            "cgdelete",
            &["-g", "memory,cpu:{G}"],
            Group,
            State::Dirs,
            Fixed(
                gone,
                "libcgroup removes only the first controller's group (exit 0, cpu:G left behind)",
            ),
        ),
        case(
            "cgdelete",
            &["-g", "cpu:{G}", "-g", "memory:{G}"],
            Group,
            State::Dirs,
            Fixed(gone, "the same duplicate check skips the second -g"),
        ),
        case(
            "cgdelete",
            &["-r", "cpu,memory:{G}"],
            GroupSub,
            State::Dirs,
            Fixed(gone, "and with -r"),
        ),
        case(
            "cgdelete",
            &[],
            None,
            State::None,
            V3(
                129,
                "",
                "Wrong input parameters, try cgdelete --help' for more information.\n",
                "2.0.2 exits 0 silently",
            ),
        ),
        case(
            "cgdelete",
            &["-g", "cpu"],
            None,
            State::None,
            V3(
                129,
                "",
                "cgdelete: error parsing cgroup 'cpu'",
                "EXIT_BADARGS; 3.x prints no newline",
            ),
        ),
        case(
            "cgdelete",
            &["-g", "foo:{G}"],
            Group,
            State::None,
            V3(
                93,
                "",
                "cgdelete: controller foo can't be added\n",
                "3.x checks the controller first",
            ),
        ),
    ]);
}

#[test]
fn cgdelete_of_a_missing_group_reads_as_libcgroups() {
    let g = GroupGuard::new("compat");
    let missing = format!("{}-missing", g.name);
    let r = run(
        Side::Ours,
        "cgdelete",
        &["-g".into(), format!("cpu:{missing}")],
    );
    assert_eq!(r.status, 96);
    assert_eq!(
        r.err,
        format!("cgdelete: cannot remove group '{missing}': No such file or directory\n")
    );
}

#[test]
fn cgexec() {
    use Expect::*;
    use Setup::*;
    const SHOW: &str = "grep -E '^[0-9]+:(cpu|memory):' /proc/self/cgroup | sort";
    check(&[
        case(
            "cgexec",
            &["-g", "cpu:{G}", "sh", "-c", SHOW],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgexec",
            &["-g", "cpu,memory:{G}", "--", "sh", "-c", SHOW],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgexec",
            &["-g", "cpu:{G}", "-g", "memory:{G}", "sh", "-c", SHOW],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgexec",
            &["--sticky", "-g", "memory:{G}", "sh", "-c", SHOW],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgexec",
            &["-g", "cpu:{G}", "false"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgexec",
            &["-g", "cpu:{G}-missing", "true"],
            Group,
            State::None,
            Same,
        ),
        case(
            "cgexec",
            &["-g", "cpu:{G}"],
            Group,
            State::None,
            V3(
                129,
                "",
                "Wrong input parameters, try cgexec --help for more information.\n",
                "3.x spelling and EXIT_BADARGS",
            ),
        ),
        case(
            "cgexec",
            &["-g", "cpu:{G}", "/nonexistent/cmd"],
            Group,
            State::None,
            V3(
                255,
                "",
                "exec failed:No such file or directory",
                "3.x prefixes the error",
            ),
        ),
        case(
            "cgexec",
            &["-g", "foo:{G}", "true"],
            Group,
            State::None,
            V3(
                87,
                "",
                "cgroup change of group failed\n",
                "3.x: ECGROUPNOTALLOWED for an unknown controller",
            ),
        ),
        case(
            "cgexec",
            &["-g", "cpu", "true"],
            None,
            State::None,
            V3(
                129,
                "",
                "cgroup controller and path parsing failed\n",
                "3.x spelling and EXIT_BADARGS",
            ),
        ),
    ]);
}

#[test]
fn cgclassify() {
    use Expect::*;
    use Setup::*;
    check(&[
        case(
            "cgclassify",
            &["-g", "cpu:{G}", "{P}"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["-g", "cpu,memory:{G}", "{P}"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["-g", "cpu:{G}", "{P}", "999999"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["-g", "cpu:{G}", "abc"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["-g", "cpu:{G}-missing", "{P}"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["--sticky", "-g", "memory:{G}", "{P}"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["--cancel-sticky", "-g", "cpu:{G}", "{P}"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["-g", "cpu:{G}"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &["{P}", "-g", "cpu:{G}"],
            Sleeper,
            State::Sleeper,
            Same,
        ),
        case(
            "cgclassify",
            &[],
            None,
            State::None,
            V3(
                129,
                "",
                "Wrong input parameters, try cgclassify '-h' for more information.\n",
                "3.x spelling and EXIT_BADARGS",
            ),
        ),
    ]);
}

/// Whole-host listings, with enforcer's cgroup2 mirrors (which libcgroup
/// lists under a cgroup2 controller such as hugetlb when the hybrid host's
/// cgroup2 mount has one) left out of libcgroup's side.
fn without_mirrors(text: &str) -> String {
    let v1 = v1_mounts();
    let h = enforcer_tests::layout::host();
    let v2_labels: Vec<String> = h
        .hierarchies()
        .iter()
        .filter(|x| x.version == enforcer::cgroup::Version::V2)
        .flat_map(|x| x.controllers.clone())
        .collect();
    text.lines()
        .filter(|l| {
            let Some((label, path)) = l.split_once(':') else {
                return true;
            };
            let rel = path.trim_matches('/');
            !(v2_labels.iter().any(|c| c == label)
                && !rel.is_empty()
                && v1.iter().any(|m| m.join(rel).is_dir()))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn lscgroup() {
    use Expect::*;
    use Setup::*;
    check(&[
        case("lscgroup", &["-g", "cpu:{G}"], GroupSub, State::None, Same),
        case("lscgroup", &["cpu:/{G}"], GroupSub, State::None, Same),
        case("lscgroup", &["cpu:{G}/"], GroupSub, State::None, Same),
        case("lscgroup", &["cpu:/{G}/"], GroupSub, State::None, Same),
        case(
            "lscgroup",
            &["memory:/{G}", "cpu:{G}/sub"],
            GroupSub,
            State::None,
            Same,
        ),
        case(
            "lscgroup",
            &["--group", "cpu,memory:{G}"],
            GroupSub,
            State::None,
            Same,
        ),
        case("lscgroup", &["cpu:{G}-missing"], Group, State::None, Same),
        case("lscgroup", &["foo:/x"], None, State::None, Same),
        case("lscgroup", &["-g", "cpu"], None, State::None, Same),
        case(
            "lscgroup",
            &["-x"],
            None,
            State::None,
            V3(
                129,
                "",
                "lscgroup: invalid option -- 'x'\nWrong input parameters, try lscgroup -h' for more information.\n",
                "EXIT_BADARGS",
            ),
        ),
        case(
            "lscgroup",
            &[":/x"],
            None,
            State::None,
            V3(
                93,
                "",
                "lscgroup: cannot find group (null)..:/x: Cgroup operation failed\n",
                "3.x accepts a spec without controllers",
            ),
        ),
    ]);
    // The whole listing, compared without mirrors (retried: other tests
    // create groups concurrently).
    if !enforcer_tests::compat::have_real_tools("lscgroup (whole listing)") {
        return;
    }
    let mut ok = false;
    for _ in 0..5 {
        let real = run(Side::Real, "lscgroup", &[]);
        let ours = run(Side::Ours, "lscgroup", &[]);
        if without_mirrors(&real.out) == ours.out && real.status == ours.status {
            ok = true;
            break;
        }
    }
    assert!(ok, "lscgroup without arguments differs from libcgroup's");
    eprintln!("same    | lscgroup (enforcer's cgroup2 mirrors left out)");
}

/// What `lssubsys` must print here: the v1 hierarchies of /proc/cgroups.
fn lssubsys_expected(mounts: bool) -> String {
    let text = std::fs::read_to_string("/proc/cgroups").unwrap();
    let mut seen = Vec::new();
    let mut out = String::new();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (name, h) = (f[0], f[1]);
        if h == "0" || seen.contains(&h) {
            continue;
        }
        seen.push(h);
        let names: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f[1] == h)
            .map(|f| f[0])
            .collect();
        let joined = names.join(",");
        if mounts {
            let m = v1_mounts()
                .into_iter()
                .find(|m| {
                    m.file_name().is_some_and(|n| {
                        n.to_str().is_some_and(|n| n.split(',').any(|c| c == name))
                    })
                })
                .unwrap();
            out.push_str(&format!("{joined} {}\n", m.display()));
        } else {
            out.push_str(&format!("{joined}\n"));
        }
    }
    out
}

#[test]
fn lssubsys() {
    // libcgroup 2.0.2 and 3.2 print nothing and exit 82 on this host (a
    // controller listed in /proc/cgroups but not mounted stops them).
    let r = run(Side::Ours, "lssubsys", &[]);
    assert_eq!(
        (r.status, r.out.clone()),
        (0, lssubsys_expected(false)),
        "{r:?}"
    );
    eprintln!(
        "fixed   | lssubsys | libcgroup exits 82 with no output when /proc/cgroups lists an unmounted controller"
    );
    let r = run(Side::Ours, "lssubsys", &["-m".into()]);
    assert_eq!(
        (r.status, r.out.clone()),
        (0, lssubsys_expected(true)),
        "{r:?}"
    );
    eprintln!("fixed   | lssubsys -m | same");
    let r = run(Side::Ours, "lssubsys", &["-m".into(), "cpu".into()]);
    // Only v1 hierarchies are listed: nothing where cpu is on cgroup2.
    let want = if enforcer_tests::layout::is_v1("cpu") {
        format!(
            "cpu {}\n",
            enforcer_tests::layout::mount_of("cpu").display()
        )
    } else {
        String::new()
    };
    assert_eq!((r.status, r.out.clone()), (0, want), "{r:?}");
    eprintln!("fixed   | lssubsys -m cpu | same");
    let r = run(Side::Ours, "lssubsys", &["-a".into()]);
    assert!(r.out.contains("memory\n") && r.status == 0, "{r:?}");
    eprintln!("fixed   | lssubsys -a | same");
    check(&[case(
        "lssubsys",
        &["foo"],
        Setup::None,
        State::None,
        Expect::Same,
    )]);
}

#[test]
fn cgsnapshot() {
    use Expect::*;
    use Setup::*;
    check(&[
        case(
            "cgsnapshot",
            &["-s", "-b", "{DENY}", "cpu"],
            GroupSub,
            State::None,
            Same,
        ),
        case(
            "cgsnapshot",
            &["-s", "-b", "{DENY}", "-w", "{DENY}", "-t", "memory"],
            GroupSub,
            State::None,
            Same,
        ),
        case(
            "cgsnapshot",
            &["--silent", "--blacklist={DENY}", "cpuset", "cpu"],
            Group,
            State::None,
            V3(
                129,
                "",
                "cgsnapshot: unrecognized option '--blacklist=DENY'\nWrong input parameters, try cgsnapshot -h' for more information.\n",
                "3.x renamed --blacklist to --denylist",
            ),
        ),
        case(
            "cgsnapshot",
            &[],
            None,
            State::None,
            V3(
                129,
                "",
                "ERROR: Failed to open file /etc/cgsnapshot_denylist.conf: No such file or directory\n",
                "3.x's deny list (2.0.2: /etc/cgsnapshot_blacklist.conf)",
            ),
        ),
    ]);
}

const CONF: &str = "group {G} {\n\tcpu {\n\t\tcpu.shares = 300;\n\t}\n\tmemory {\n\t\tmemory.limit_in_bytes = 20M;\n\t}\n}\n\
group {G}/sub {\n\tperm {\n\t\ttask { uid = nobody; gid = nogroup; fperm = 660; }\n\t\tadmin { uid = nobody; gid = nogroup; dperm = 775; fperm = 644; }\n\t}\n\tcpu { cpu.shares = 200; }\n}\n";
const CONF_PLAIN: &str = "group {G} {\n\tcpu {\n\t\tcpu.shares = 300;\n\t}\n}\n";

fn shares_512(o: &Outcome) {
    assert_eq!((o.run.status, o.state.as_str()), (0, "512\n"), "{o:?}");
}

#[test]
fn cgconfigparser() {
    use Expect::*;
    use Setup::*;
    check(&[
        case(
            "cgconfigparser",
            &["-l", "{CONF}"],
            Conf(CONF),
            State::Values(&["cpu.shares"]),
            Same,
        ),
        case(
            "cgconfigparser",
            &["-l", "{CONF}"],
            Conf(CONF),
            State::Dirs,
            Same,
        ),
        case(
            "cgconfigparser",
            &["--load={CONF}"],
            Conf(CONF),
            State::Values(&["memory.limit_in_bytes"]),
            Same,
        ),
        case(
            "cgconfigparser",
            &["-a", "nobody:nogroup", "-d", "700", "-l", "{CONF}"],
            Conf(CONF_PLAIN),
            State::Dirs,
            Same,
        ),
        case(
            "cgconfigparser",
            &["-l", "/nonexistent/enf-cgconfig.conf"],
            None,
            State::None,
            Same,
        ),
        case(
            "cgconfigparser",
            &["-L", "/nonexistent-enf-dir"],
            None,
            State::None,
            Same,
        ),
        case(
            "cgconfigparser",
            &["-l", "{CONF}"],
            Conf("group {G} {\n cpu {\n cpu.weight = 50;\n }\n}\n"),
            State::Values(&["cpu.shares"]),
            Fixed(
                shares_512,
                "3.x converts v2 settings on a v1 host (libcgroup's table: weight * 1024 / 100)",
            ),
        ),
        case(
            "cgconfigparser",
            &["-l", "{CONF}"],
            Conf("group {G} {\n cpu {\n cpu.shares = abc;\n }\n}\n"),
            State::Dirs,
            V3(
                91,
                "Error: Conversion of controller failed.\n",
                "cgconfigparser; error loading CONF: Cgroup invalid operation\n",
                "3.x retries with converted values before failing",
            ),
        ),
        case(
            "cgconfigparser",
            &["-l", "{CONF}"],
            Conf("group {G} {\n cpu {\n cpu.shares = 300\n }\n}\n"),
            State::Dirs,
            V3(
                104,
                "Error: failed to parse file CONF\n",
                "error at line number 4 at }:syntax error\ncgconfigparser; error loading CONF: Failed to parse config file\n",
                "3.x's text for ECGCONFIGPARSEFAIL (2.0.2's table is off by one)",
            ),
        ),
        case(
            "cgconfigparser",
            &[],
            None,
            State::None,
            V3(
                129,
                "",
                "Wrong input parameters, try cgconfigparser '-h' for more information.\n",
                "3.x spelling and EXIT_BADARGS",
            ),
        ),
    ]);
}

fn out_is(o: &Outcome, want: &str) {
    assert_eq!(
        (o.run.status, o.run.out.as_str(), o.run.err.as_str()),
        (0, want, ""),
        "{o:?}"
    );
}

/// cgxget/cgxset have no 2.0.2 counterpart: their results are checked
/// against libcgroup 3.x's conversion tables.
#[test]
fn cgxget_cgxset() {
    use Expect::*;
    use Setup::*;
    check(&[
        case(
            "cgxset",
            &["-2", "-r", "cpu.weight=50", "{G}"],
            Group,
            State::Values(&["cpu.shares"]),
            Fixed(
                shares_512,
                "weight 50 is shares 512 (libcgroup's table; runc's mapping gives 1286)",
            ),
        ),
        case(
            "cgxset",
            &["--v2", "-r", "cpu.max=50000 100000", "{G}"],
            Group,
            State::Values(&["cpu.cfs_quota_us", "cpu.cfs_period_us"]),
            Fixed(
                |o| assert_eq!(o.state, "50000\n100000\n", "{o:?}"),
                "cpu.max is quota and period",
            ),
        ),
        case(
            "cgxset",
            &["-1", "-r", "cpu.shares=512", "{G}"],
            Group,
            State::Values(&["cpu.shares"]),
            Fixed(shares_512, "v1 on a v1 host: as given"),
        ),
        case(
            "cgxget",
            &["-2", "-r", "cpu.weight", "{G}"],
            Group,
            State::None,
            Fixed(
                |o| out_is(o, "G:\ncpu.weight: 100\n\n"),
                "shares 1024 read as weight 100",
            ),
        ),
        case(
            "cgxget",
            &["-2", "-r", "cpu.max", "{G}"],
            Group,
            State::None,
            Fixed(
                |o| out_is(o, "G:\ncpu.max: max 100000\n\n"),
                "quota -1 and period read as cpu.max",
            ),
        ),
        case(
            "cgxget",
            &["-1", "-n", "-v", "-r", "cpu.shares", "{G}"],
            Group,
            State::None,
            Fixed(|o| out_is(o, "1024\n"), "v1 names on a v1 host"),
        ),
        case(
            "cgxget",
            &["-2", "-r", "cpu.stat", "{G}"],
            Group,
            State::None,
            V3(
                111,
                "",
                "",
                "cpu.stat has no conversion: ECGNOVERSIONCONVERT",
            ),
        ),
        case(
            "cgxget",
            &["-2", "-i", "-r", "cpu.stat", "{G}"],
            Group,
            State::None,
            V3(0, "G:\n\n", "", "-i skips what cannot be converted"),
        ),
        case(
            "cgxset",
            &["-2", "-r", "memory.max=1G", "{G}"],
            Group,
            State::None,
            V3(91, "", "", "libcgroup 3.2 has no memory conversions"),
        ),
    ]);
}

/// cgsnapshot's output, cut to the test's groups, loaded back with
/// cgconfigparser, restores their values.
#[test]
fn cgsnapshot_then_cgconfigparser_restores_the_values() {
    if !(enforcer_tests::layout::is_v1("cpu") && enforcer_tests::layout::is_v1("memory")) {
        enforcer_tests::skipped(
            "cgsnapshot_then_cgconfigparser_restores_the_values",
            "its keys are cgroup v1's (cpu.shares, memory.limit_in_bytes)",
        );
        return;
    }
    let g = GroupGuard::new("compat");
    let n = &g.name;
    real_create(&format!("cpu,memory:{n}/sub"));
    let set = |args: &[&str]| {
        let r = run(
            Side::Ours,
            "cgset",
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        );
        assert_eq!(r.status, 0, "{r:?}");
    };
    set(&[
        "-r",
        "cpu.shares=333",
        "-r",
        "memory.limit_in_bytes=30M",
        "-r",
        "memory.swappiness=17",
        n,
    ]);
    set(&[
        "-r",
        "cpu.shares=222",
        "-r",
        "cpu.cfs_quota_us=40000",
        &format!("{n}/sub"),
    ]);
    let keys = [
        "cpu.shares",
        "cpu.cfs_quota_us",
        "memory.limit_in_bytes",
        "memory.swappiness",
    ];
    let before = values(n, &keys);
    let deny = deny_file();
    let snap = run(
        Side::Ours,
        "cgsnapshot",
        &[
            "-s".into(),
            "-b".into(),
            deny,
            "cpu".into(),
            "memory".into(),
        ],
    );
    assert_eq!(snap.status, 0, "{snap:?}");
    let mut text = String::new();
    let mut keep = true;
    for l in snap.out.split_inclusive('\n') {
        if let Some(rest) = l.strip_prefix("group ") {
            keep = rest.starts_with(&format!("{n} ")) || rest.starts_with(&format!("{n}/"));
        }
        if keep {
            text.push_str(l);
        }
    }
    assert!(
        text.contains("mount {") && text.contains(&format!("group {n}/sub {{")),
        "{text}"
    );
    let file = std::env::temp_dir().join(format!("{n}.snapshot.conf"));
    std::fs::write(&file, &text).unwrap();
    let del = run(
        Side::Ours,
        "cgdelete",
        &["-r".into(), format!("cpu,memory:{n}")],
    );
    assert_eq!(del.status, 0, "{del:?}");
    assert_eq!(values(n, &keys), "", "deleted");
    let load = run(
        Side::Ours,
        "cgconfigparser",
        &["-l".into(), file.display().to_string()],
    );
    let _ = std::fs::remove_file(&file);
    assert_eq!((load.status, load.err.as_str()), (0, ""), "{load:?}");
    assert_eq!(values(n, &keys), before);
    eprintln!(
        "round trip: cgsnapshot | cgconfigparser -l restored {}",
        before.replace('\n', " ")
    );
}
