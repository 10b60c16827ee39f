//! The journal fields the agent sends under systemd are the ones README
//! names (`GROUP=`, `KIND=`, ...), without a prefix. This host runs no
//! systemd: in a private mount namespace, a small journald stand-in (Python,
//! the native protocol's datagrams) listens at /run/systemd/journal/socket
//! and the agent runs with JOURNAL_STREAM naming its stderr, as systemd
//! starts a service. (`cargo xtask vmtest` runs the unit under a real
//! systemd.)

use std::process::Command;

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::{AgentRun, GroupGuard, helper_bin};

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

/// Runs the agent ("$@") under the stand-in until a denied connect's line
/// has reached it (the connects below make one) or $LIMIT seconds
/// have passed, then stops it with SIGINT as systemd would. Every wait is
/// bounded: an agent that ignores SIGINT for 20 s is killed and the script
/// fails, saying so, instead of hanging the suite.
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
JOURNAL_STREAM=$(stat -c %d:%i "$ERR") ENFORCER_LOG=info,enforcer=debug "$@" &
agent=$!
i=0
while [ $i -lt $((LIMIT * 20)) ] && ! grep -q '"KIND": "connect_denied"' "$OUT" 2>/dev/null; do
    sleep 0.05
    i=$((i + 1))
done
kill -INT $agent || true
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

#[test]
fn journal_fields_are_the_documented_names() {
    if skip_without_cgroup2("journal_fields_are_the_documented_names") {
        return;
    }
    let g = GroupGuard::new("journal");
    let run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{0}\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[group.\"{0}\".network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            g.name
        ),
    )
    .unwrap();
    let agent = run.command(None, Some(&policy), &["--no-metrics"]);
    let out_file = run.file("journal.jsonl");
    let err_file = run.file("stderr");
    // Denied connects while the agent runs (one every 200 ms, at most 300,
    // until the agent has been stopped): once it is up, one is an event with
    // a group and comm.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deny = std::thread::spawn({
        let (name, stop) = (g.name.clone(), stop.clone());
        move || {
            for _ in 0..300 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let _ = Command::new(enforcer_tests::enforcer_bin())
                    .args(["exec", "-g", &spec(&name), "--"])
                    .arg(helper_bin())
                    .args(["try-connect", "tcp", "127.0.0.2:9"])
                    .output();
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    });
    let st = Command::new("unshare")
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
        .env("OUT", &out_file)
        .env("ERR", &err_file)
        .env("LIMIT", (60 * enforcer_tests::time_scale()).to_string())
        .status()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    deny.join().unwrap();
    assert!(
        st.success(),
        "the namespace script failed: {st}; the agent's stderr:\n{}",
        std::fs::read_to_string(&err_file).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        // tracing-journald probes the socket with an empty datagram.
        .filter(|e| e.as_object().is_some_and(|o| !o.is_empty()))
        .collect();
    assert!(
        !entries.is_empty(),
        "the agent sent nothing to the journal; its stderr:\n{}",
        std::fs::read_to_string(&err_file).unwrap_or_default()
    );
    for e in &entries {
        assert_eq!(e["SYSLOG_IDENTIFIER"], "enforcer", "{e}");
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert!(
            keys.iter().all(|k| !k.starts_with("F_")),
            "fields carry no prefix: {e}"
        );
    }
    // journald's own fields on every line, as tracing-journald writes them.
    for e in &entries {
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
    // A kernel event's line (decisions are logged at debug level, the
    // agent runs with it here): the group, the kind, the process, details.
    let denied = entries
        .iter()
        .find(|e| e["GROUP"] == g.name.as_str() && e["KIND"] == "connect_denied")
        .unwrap_or_else(|| panic!("a connect_denied line with GROUP={}: {text}", g.name));
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
}
