//! The journal fields the agent sends under systemd are the ones README
//! names (`GROUP=`, `KIND=`, `RULE=`, `WHY=`, ...), without a prefix. This
//! host runs no systemd: in a private mount namespace, a small journald
//! stand-in (Python, the native protocol's datagrams) listens at
//! /run/systemd/journal/socket and the agent runs with JOURNAL_STREAM naming
//! its stderr, as systemd starts a service. (`cargo xtask vmtest` runs the
//! unit under a real systemd.) Each test makes the situation a field is
//! about happen for real (a rule firing and undone, a reload, a removed pin,
//! a full map, a full ring buffer, a rotated audit log, a subtree beyond
//! its quota, too few file descriptors, an OOM kill) and reads the field
//! off the line it produced.

use std::net::UdpSocket;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enforcer_tests::layout::{skip_without_cgroup2, spec, v2_dir};
use enforcer_tests::{AgentRun, GroupGuard, helper_bin};
use serde_json::Value;

/// Receives journald datagrams until /run/done exists; writes each one's
/// fields as a JSON object per line to argv[1].
const JOURNALD: &str = r#"
import json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('/run/systemd/journal/socket')
open('/run/ready', 'w').close()
s.settimeout(0.2)
out = open(sys.argv[1], 'w')
while not os.path.exists('/run/done'):
    try:
        data = s.recv(1 << 20)
    except socket.timeout:
        continue
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b'\n', i)
        line = data[i:nl]
        if b'=' in line:
            k, v = line.split(b'=', 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack('<Q', data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode('utf-8', 'replace')
    out.write(json.dumps(fields) + '\n')
    out.flush()
"#;

/// Runs the agent ("$@", its log filter $FILTER) under the stand-in until
/// the test creates $STOP or $LIMIT seconds have passed, then stops it with
/// SIGINT as systemd would (a SIGCONT first: a test may have stopped it).
/// Every wait is bounded: an agent that ignores SIGINT for 20 s is killed
/// and the script fails, saying so, instead of hanging the suite.
const SCRIPT: &str = r#"
set -e
mount -t tmpfs none /run
mkdir -p /run/systemd/journal
/usr/bin/python3 -c "$JOURNALD" "$OUT" &
journald=$!
i=0
while [ ! -e /run/ready ]; do
    sleep 0.05
    i=$((i + 1))
    if [ $i -gt $((LIMIT * 20)) ]; then echo "the journald stand-in did not start" >&2; exit 1; fi
done
exec 2>"$ERR"
JOURNAL_STREAM=$(stat -c %d:%i "$ERR") ENFORCER_LOG="$FILTER" "$@" &
agent=$!
i=0
while [ $i -lt $((LIMIT * 20)) ] && [ ! -e "$STOP" ] && kill -0 $agent 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
kill -CONT $agent 2>/dev/null || true
kill -INT $agent 2>/dev/null || true
i=0
while kill -0 $agent 2>/dev/null && [ $i -lt 400 ]; do
    sleep 0.05
    i=$((i + 1))
done
stopped=yes
if kill -0 $agent 2>/dev/null; then
    stopped=no
    kill -KILL $agent || true
fi
wait $agent || true
touch /run/done
wait $journald || true
if [ $stopped = no ]; then echo "the agent ignored SIGINT for 20 s" >&2; exit 1; fi
"#;

/// One agent under the journald stand-in: the lines it sent so far, waits
/// for one (bounded), and a stop that checks what every line carries.
/// Dropped (also on panic), it stops the agent and waits for the script,
/// a bounded time.
struct Journal {
    script: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    stop: PathBuf,
}

impl Journal {
    /// Starts `agent` (a command of `run`) with `ENFORCER_LOG=filter`.
    fn start(run: &AgentRun, agent: &Command, filter: &str) -> Journal {
        let (out, err, stop) = (
            run.file("journal.jsonl"),
            run.file("stderr"),
            run.file("stop"),
        );
        let script = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                SCRIPT,
                "sh",
            ])
            .arg(agent.get_program())
            .args(agent.get_args())
            .env("JOURNALD", JOURNALD)
            .env("OUT", &out)
            .env("ERR", &err)
            .env("STOP", &stop)
            .env("FILTER", filter)
            .env("LIMIT", (120 * enforcer_tests::time_scale()).to_string())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Journal {
            script: Some(script),
            out,
            err,
            stop,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Every line the stand-in has written whole (the last one may still be
    /// being written), without tracing-journald's empty probe datagram.
    fn entries(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        whole
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()))
            .collect()
    }

    /// Calls `poke` and looks for a line `pred` accepts, as [`poll`](Self::poll).
    fn wait_doing(
        &mut self,
        what: &str,
        mut poke: impl FnMut(),
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        self.poll(
            what,
            || {
                poke();
                None
            },
            pred,
        )
    }

    /// Until `check` says yes or a line `pred` accepts has come (that line,
    /// or Null), every 100 ms, for at most 60 s (times the time scale);
    /// fails, with what was sent, if the agent exits or neither comes.
    fn poll(
        &mut self,
        what: &str,
        mut check: impl FnMut() -> Option<Value>,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60) * enforcer_tests::time_scale();
        loop {
            if let Some(v) = check() {
                return v;
            }
            if let Some(e) = self.entries().into_iter().find(|e| pred(e)) {
                return e;
            }
            if let Some(st) = self.script.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "the agent's script ended ({st}) before {what}; its stderr:\n{}\nsent:\n{:#?}",
                    self.stderr(),
                    self.entries()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; sent:\n{:#?}",
                self.entries()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_doing(what, || {}, pred)
    }

    /// Creates the stop file and waits (bounded) for the script; whether it
    /// ended and how.
    fn end(&mut self) -> Option<std::process::ExitStatus> {
        let _ = std::fs::write(&self.stop, "");
        let mut script = self.script.take()?;
        let deadline = Instant::now() + Duration::from_secs(60) * enforcer_tests::time_scale();
        while Instant::now() < deadline {
            if let Some(st) = script.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = script.kill();
        let _ = script.wait();
        None
    }

    /// Stops the agent; every line it sent, each checked for what every
    /// line carries: SYSLOG_IDENTIFIER=enforcer, no `F_` prefix, journald's
    /// own MESSAGE, PRIORITY (one digit), TARGET, CODE_FILE and CODE_LINE.
    fn finish(mut self) -> Vec<Value> {
        let st = self.end();
        assert!(
            st.is_some_and(|s| s.success()),
            "the namespace script failed: {st:?}; the agent's stderr:\n{}",
            self.stderr()
        );
        let entries = self.entries();
        assert!(
            !entries.is_empty(),
            "the agent sent nothing to the journal; its stderr:\n{}",
            self.stderr()
        );
        for e in &entries {
            assert_eq!(e["SYSLOG_IDENTIFIER"], "enforcer", "{e}");
            let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
            assert!(
                keys.iter().all(|k| !k.starts_with("F_")),
                "fields carry no prefix: {e}"
            );
            for key in ["MESSAGE", "PRIORITY", "TARGET", "CODE_FILE", "CODE_LINE"] {
                assert!(e.get(key).is_some_and(|v| v != ""), "{key} in {e}");
            }
            assert!(
                e["PRIORITY"]
                    .as_str()
                    .is_some_and(|p| p.len() == 1 && p.as_bytes()[0].is_ascii_digit()),
                "{e}"
            );
        }
        entries
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.end();
    }
}

/// A whole number field (journald fields are text).
/// Whether `test` cannot run here: no cgroup2, or no python3 for the
/// journald stand-in (the arm64 guest's sysroot has none); said, not hung on.
fn skip(test: &str) -> bool {
    if skip_without_cgroup2(test) {
        return true;
    }
    if !Path::new("/usr/bin/python3").is_file() {
        enforcer_tests::skipped(test, "no /usr/bin/python3 for the journald stand-in");
        return true;
    }
    false
}

fn number(e: &Value, key: &str) -> u64 {
    e[key]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key}= a whole number: {e}"))
}

fn write_policy(run: &AgentRun, text: &str) -> PathBuf {
    let p = run.file("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `enforcer exec -g GROUP -- helper ARGS`.
fn helper_in(group: &str, args: &[&str]) -> std::process::Output {
    Command::new(enforcer_tests::enforcer_bin())
        .args(["exec", "-g", &spec(group), "--"])
        .arg(helper_bin())
        .args(args)
        .output()
        .unwrap()
}

/// Waits until the agent serves metrics: its signal handlers and pins are
/// in place.
fn wait_serving(run: &AgentRun, journal: &mut Journal) {
    journal.poll(
        "the agent to serve metrics",
        || run.metrics().map(|_| Value::Null),
        |_| false,
    );
}

fn agent_pid(run: &AgentRun) -> nix::unistd::Pid {
    // Its first line (the second names the policy).
    let text = std::fs::read_to_string(run.pid_file()).unwrap();
    let first = text.lines().next().unwrap_or_default();
    nix::unistd::Pid::from_raw(
        first
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}: {text:?}", run.pid_file().display())),
    )
}

/// SIGCONT for a stopped agent when dropped, also on panic.
struct Stopped(nix::unistd::Pid);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

#[test]
fn journal_fields_are_the_documented_names() {
    if skip("journal_fields_are_the_documented_names") {
        return;
    }
    let g = GroupGuard::new("journal");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{0}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[group.\"{0}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &["--no-metrics"]);
    let mut journal = Journal::start(&run, &agent, "info,enforcer=debug");
    // Denied connects while the agent runs (one every 100 ms): once it is
    // up, one is an event with a group and comm (decisions are logged at
    // debug level, the agent runs with it here).
    journal.wait_doing(
        "a connect_denied line",
        || {
            let _ = helper_in(&g.name, &["try-connect", "tcp", "127.0.0.2:9"]);
        },
        |e| e["GROUP"] == g.name.as_str() && e["KIND"] == "connect_denied",
    );
    let entries = journal.finish();
    let text = format!("{entries:#?}");
    let denied = entries
        .iter()
        .find(|e| e["GROUP"] == g.name.as_str() && e["KIND"] == "connect_denied")
        .unwrap();
    assert!(
        denied["PID"]
            .as_str()
            .is_some_and(|p| p.parse::<u32>().is_ok()),
        "PID: {denied}"
    );
    assert!(
        denied["COMM"].as_str().is_some_and(|c| !c.is_empty()),
        "COMM: {denied}"
    );
    assert!(denied.get("DETAILS").is_some(), "DETAILS: {denied}");
    // What a line is about: the directory of a group made for the policy.
    assert!(
        entries.iter().any(|e| e["DIR"]
            .as_str()
            .is_some_and(|d| d.ends_with(&format!("/{}", g.name)))),
        "a DIR= line for the group's directory: {text}"
    );
    // A kernel feature left out at start (said once, at info for an
    // enforcement feature no rule needs): FEATURE names it, as `enforcer
    // status` does. A kernel that loads every program leaves nothing out.
    let report = enforcer::bpf::features().expect("the kernel's features");
    let refused: Vec<String> = report
        .features
        .iter()
        .filter(|f| f.refused.is_some())
        .map(|f| f.feature.to_string())
        .collect();
    if refused.is_empty() {
        enforcer_tests::skipped(
            "journal_fields_are_the_documented_names (FEATURE)",
            "this kernel loads every program: no feature is left out to name",
        );
    }
    for f in &refused {
        let lines = entries
            .iter()
            .filter(|e| e["FEATURE"] == f.as_str())
            .count();
        assert_eq!(lines, 1, "one FEATURE={f} line: {text}");
    }
}

/// RULE, PHASE and ACTION: a `when` rule firing (a burst of syscalls over
/// a low rate) and undone once the group is idle for `until`.
#[test]
fn a_when_rule_firing_and_undone_names_rule_phase_and_action() {
    if skip("a_when_rule_firing_and_undone_names_rule_phase_and_action") {
        return;
    }
    let g = GroupGuard::new("jrule");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{n}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[[group.\"{n}\".when]]\n\
             metric = \"syscalls_per_sec\"\nabove = 1000\n\
             then = [\"throttle egress 1Mbit\"]\nuntil = \"1s\"\n",
            n = g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &[]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    // Half a second of getppid calls: millions per second, then none.
    let out = helper_in(&g.name, &["spin", "0.5"]);
    assert!(out.status.success(), "{out:?}");
    let of_rule = |phase: &'static str| {
        let name = g.name.clone();
        move |e: &Value| e["GROUP"] == name.as_str() && e["PHASE"] == phase
    };
    let fired = journal.wait("the rule firing", of_rule("fired"));
    let undone = journal.wait("the rule undone", of_rule("undone"));
    journal.finish();
    for e in [&fired, &undone] {
        assert!(
            e["RULE"]
                .as_str()
                .is_some_and(|r| r.starts_with("syscalls_per_sec > 1000")),
            "RULE: {e}"
        );
    }
    assert_eq!(fired["ACTION"], "throttle egress 125000 B/s", "{fired}");
    assert_eq!(undone["ACTION"], "lift throttle", "{undone}");
}

/// WHY (and FILE, the policy file): a reload by `enforcer reload` (SIGHUP)
/// and one because the policy file changed (the agent watches it).
#[test]
fn a_reload_says_why_and_which_file() {
    if skip("a_reload_says_why_and_which_file") {
        return;
    }
    let g = GroupGuard::new("jreload");
    let run = AgentRun::new();
    let policy_text = |limit: &str| {
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"{limit}\"\n",
            g.name
        )
    };
    let policy = write_policy(&run, &policy_text("64M"));
    let agent = run.command(None, Some(&policy), &[]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    let file = policy.to_str().unwrap();
    let out = enforcer_tests::enforcer(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    journal.wait("a reload for SIGHUP", |e| {
        e["WHY"] == "SIGHUP" && e["FILE"] == file
    });
    // Another size: a change however coarse the file's time stamps.
    std::fs::write(&policy, policy_text("128M")).unwrap();
    journal.wait("a reload for the changed file", |e| {
        e["WHY"] == "file changed" && e["FILE"] == file
    });
    journal.finish();
}

/// PIN: a pin of the agent removed while it runs is pinned again within an
/// interval, and the line names it.
#[test]
fn a_restored_pin_is_named() {
    if skip("a_restored_pin_is_named") {
        return;
    }
    let g = GroupGuard::new("jpin");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{0}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[group.\"{0}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &[]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    let pin = run.pin_dir.join("maps/GROUP_RULES");
    assert!(pin.exists(), "{} pinned", pin.display());
    std::fs::remove_file(&pin).unwrap();
    let path = pin.to_str().unwrap();
    journal.wait("the pin restored", |e| e["PIN"] == path);
    assert!(pin.exists(), "{} pinned again", pin.display());
    journal.finish();
}

/// MAP, MISSED and TOTAL: a syscall counting map with room for 8 (group,
/// syscall) pairs, which the group's syscalls overflow.
#[test]
fn a_full_map_names_the_map_and_the_events_missed() {
    if skip("a_full_map_names_the_map_and_the_events_missed") {
        return;
    }
    let g = GroupGuard::new("jfull");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n",
            g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &["--max-syscall-keys", "8"]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    let out = helper_in(&g.name, &["sockaddr", "2"]);
    assert!(out.status.success(), "{out:?}");
    let full = journal.wait("the full map's warning", |e| e["MAP"] == "SYSCALLS");
    journal.finish();
    let (missed, total) = (number(&full, "MISSED"), number(&full, "TOTAL"));
    assert!(missed > 0 && missed <= total, "{full}");
}

/// LOST: the agent stopped (it reads nothing), 6,000 denials of 88 bytes
/// each do not fit the 256 KiB ring buffer; once it runs again it says how
/// many the kernel dropped.
#[test]
fn events_the_kernel_dropped_are_counted_in_lost() {
    if skip("events_the_kernel_dropped_are_counted_in_lost") {
        return;
    }
    let g = GroupGuard::new("jlost");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{0}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[group.\"{0}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &[]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    let pid = agent_pid(&run);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let stopped = Stopped(pid);
    let out = helper_in(&g.name, &["connect-loop", "127.0.0.2:9", "6000"]);
    drop(stopped);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("eperm 6000"),
        "{out:?}"
    );
    let lost = journal.wait("the lost events' warning", |e| e.get("LOST").is_some());
    journal.finish();
    let (n, total) = (number(&lost, "LOST"), number(&lost, "TOTAL"));
    assert!(n > 0 && n <= total && total < 6000, "{lost}");
}

/// PATH: the audit log rotated past `--audit-max-size` (4K: a few dozen
/// denials' lines) names the log.
#[test]
fn a_rotated_audit_log_is_named_in_path() {
    if skip("a_rotated_audit_log_is_named_in_path") {
        return;
    }
    let g = GroupGuard::new("jpath");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{0}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[group.\"{0}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &["--audit-max-size", "4K"]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    let out = helper_in(&g.name, &["connect-loop", "127.0.0.2:9", "100"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("eperm 100"),
        "{out:?}"
    );
    let log = run.file("audit.jsonl");
    let path = log.to_str().unwrap();
    journal.wait("the rotation's line", |e| e["PATH"] == path);
    journal.finish();
    assert!(
        Path::new(&format!("{path}.1")).exists(),
        "{path}.1 after a rotation"
    );
}

/// A field's name and what its value must satisfy.
type FieldCheck<'a> = (&'a str, &'a dyn Fn(&str) -> bool);

/// What is wrong with line `e`'s fields, each `(key, check)` judged on its
/// own so one failure names every field that is missing or wrong.
fn field_problems(e: &Value, checks: &[FieldCheck]) -> Vec<String> {
    checks
        .iter()
        .filter_map(|(key, ok)| match e[*key].as_str() {
            None => Some(format!("{key}= missing")),
            Some(v) if !ok(v) => Some(format!("{key}={v:?} is wrong")),
            Some(_) => None,
        })
        .collect()
}

fn assert_fields(e: &Value, checks: &[FieldCheck]) {
    let problems = field_problems(e, checks);
    assert!(problems.is_empty(), "{}: {e}", problems.join(", "));
}

/// A message's text, "" without one.
fn message(e: &Value) -> &str {
    e["MESSAGE"].as_str().unwrap_or_default()
}

/// QUOTA, ADMITTED and FOLDED: a policy group with a subtree quota of 2
/// (`--max-subgroups 2`) and 4 new subgroups below it that each send a
/// datagram: two are admitted, the others' events are folded into it.
#[test]
fn a_subtree_beyond_its_quota_names_quota_admitted_and_folded() {
    if skip("a_subtree_beyond_its_quota_names_quota_admitted_and_folded") {
        return;
    }
    let g = GroupGuard::new("jquota");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n",
            g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &["--max-subgroups", "2"]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    for i in 0..4 {
        let dir = v2_dir(&g.name).join(format!("sub{i}"));
        std::fs::create_dir(&dir).unwrap();
        let out = in_v2_dir(&dir, &["udp-send", &to, "1", "16"]);
        assert!(out.status.success(), "{out:?}");
    }
    let name = g.name.clone();
    let line = journal.wait("the quota's warning", move |e| {
        e["GROUP"] == name.as_str() && message(e).contains("than its quota")
    });
    journal.finish();
    assert_fields(
        &line,
        &[
            ("QUOTA", &|v| v == "2"),
            ("ADMITTED", &|v| v == "2"),
            ("FOLDED", &|v| v.parse::<u64>().is_ok_and(|n| n > 0)),
        ],
    );
}

/// `helper ARGS` as root, first moved into the cgroup2 directory `dir`.
fn in_v2_dir(dir: &Path, args: &[&str]) -> std::process::Output {
    let procs = std::ffi::CString::new(dir.join("cgroup.procs").to_str().unwrap()).unwrap();
    let mut c = Command::new(helper_bin());
    c.args(args);
    // SAFETY: between fork and exec the child only opens, writes and closes
    // a file, async-signal-safe calls all.
    unsafe {
        c.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(fd);
            Ok(())
        });
    }
    c.output().unwrap()
}

/// LIMIT, OPEN and CONNECTIONS: the agent started with an open files limit
/// of 640 (soft and hard, by prlimit) keeps 512 in reserve and has about
/// 100 open (its maps and programs), so its metrics endpoint serves fewer
/// than 64 connections at a time, and it says so.
#[test]
fn too_few_file_descriptors_name_limit_open_and_connections() {
    if skip("too_few_file_descriptors_name_limit_open_and_connections") {
        return;
    }
    const LIMIT: u64 = 640;
    let g = GroupGuard::new("jnofile");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n",
            g.name
        ),
    );
    let inner = run.command(None, Some(&policy), &[]);
    let mut agent = Command::new("prlimit");
    agent
        .arg(format!("--nofile={LIMIT}:{LIMIT}"))
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args());
    let mut journal = Journal::start(&run, &agent, "info");
    // It serves all the same, a connection at a time at least.
    wait_serving(&run, &mut journal);
    let line = journal.wait("the few descriptors' warning", |e| {
        message(e).starts_with("few file descriptors")
    });
    journal.finish();
    let open = line["OPEN"].as_str().and_then(|v| v.parse::<u64>().ok());
    // What the agent computes from the two: the limit less the reserve and
    // what is open, between 1 and 64.
    let expected = open.map(|o| LIMIT.saturating_sub(o + 512).clamp(1, 64).to_string());
    assert_fields(
        &line,
        &[
            ("LIMIT", &|v| v == LIMIT.to_string()),
            ("OPEN", &|v| v.parse::<u64>().is_ok_and(|n| n >= 3)),
            ("CONNECTIONS", &|v| {
                expected.as_deref().is_none_or(|x| v == x) && v != "64"
            }),
        ],
    );
}

/// KIND=oom_kill: a process of a group limited to 20M that allocates
/// 100M is OOM-killed; the agent warns (PRIORITY 4) with the kernel
/// event's kind, group, pid and comm.
#[test]
fn an_oom_kill_is_a_warning_of_kind_oom_kill() {
    if skip("an_oom_kill_is_a_warning_of_kind_oom_kill") {
        return;
    }
    let report = enforcer::bpf::features().expect("the kernel's features");
    if report
        .features
        .iter()
        .any(|f| f.feature == enforcer::bpf::Feature::OomEvents && f.refused.is_some())
    {
        enforcer_tests::skipped(
            "an_oom_kill_is_a_warning_of_kind_oom_kill",
            "this kernel refuses the OOM events program",
        );
        return;
    }
    let g = GroupGuard::new("joom");
    let run = AgentRun::new();
    let policy = write_policy(
        &run,
        &format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"20M\"\n",
            g.name
        ),
    );
    let agent = run.command(None, Some(&policy), &[]);
    let mut journal = Journal::start(&run, &agent, "info");
    wait_serving(&run, &mut journal);
    let out = helper_in(&g.name, &["alloc", &(100u64 << 20).to_string()]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "OOM-killed: {out:?}"
    );
    let name = g.name.clone();
    // At info level the only kernel events logged are OOM kills.
    let line = journal.wait("the OOM kill's warning", move |e| {
        e["GROUP"] == name.as_str() && message(e) == "kernel event"
    });
    journal.finish();
    assert_fields(
        &line,
        &[
            ("KIND", &|v| v == "oom_kill"),
            ("PRIORITY", &|v| v == "4"),
            ("PID", &|v| v.parse::<u32>().is_ok_and(|p| p > 0)),
            // The helper, its name cut to the kernel's 15 bytes.
            ("COMM", &|v| v == "enforcer-test-h"),
        ],
    );
}
