//! One `enforcer run` of a test: its own pin directory, pid file, audit log,
//! metrics port and scratch directory, all removed (and the agent killed,
//! its pins unpinned) when dropped, also on panic.
//!
//! An agent in observe mode claims the cgroup2 root, and a second one there
//! is refused (one agent per set of groups): observe-mode runs of every test
//! binary take [`observe_lock`] first, so they take turns.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{enforcer, enforcer_bin, enforcer_ok, unique_name, wait_for};

pub struct AgentRun {
    pub pin_dir: PathBuf,
    pub scratch: PathBuf,
    pub port: u16,
    pub child: Option<Child>,
    /// Held while this run may have an agent in observe mode.
    observe: Option<std::fs::File>,
    /// `ENFORCER_LOG` for the agent (its default, `warn`, when `None`).
    pub log_filter: Option<String>,
}

/// Where observe-mode agents of the tests take turns: a file every test
/// binary (and every concurrent `cargo test`) on this host agrees on.
fn observe_lock_path() -> PathBuf {
    std::env::temp_dir().join("enforcer-tests-observe.lock")
}

/// Waits until no other test runs an agent in observe mode and holds that
/// turn until the returned file is dropped. [`AgentRun`] takes it for its
/// observe-mode starts; a test that starts one another way (the embedded
/// default of `enforcer` with no verb) takes it itself.
pub fn observe_lock() -> std::fs::File {
    use std::os::fd::AsRawFd as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(observe_lock_path())
        .unwrap_or_else(|e| panic!("{}: {e}", observe_lock_path().display()));
    // Polled with a deadline rather than blocking: a test that took a turn
    // twice (two observing runs at once) fails, naming the lock, instead of
    // hanging.
    let deadline = Instant::now() + Duration::from_secs(600) * crate::time_scale();
    loop {
        // SAFETY: flock on a valid fd; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return file;
        }
        assert!(
            Instant::now() < deadline,
            "waited 10 minutes for {} (another test's observing agent, or this test \
             observing twice at once)",
            observe_lock_path().display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Default for AgentRun {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentRun {
    /// Pins under `/sys/fs/bpf/<unique name>`.
    pub fn new() -> Self {
        let name = unique_name("agent");
        Self::with_pin_dir(PathBuf::from("/sys/fs/bpf").join(&name))
    }

    pub fn with_pin_dir(pin_dir: PathBuf) -> Self {
        let name = unique_name("agent");
        let scratch = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&scratch).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        AgentRun {
            pin_dir,
            scratch,
            port,
            child: None,
            observe: None,
            log_filter: None,
        }
    }

    pub fn pin(&self) -> &str {
        self.pin_dir.to_str().unwrap()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    pub fn pid_file(&self) -> PathBuf {
        self.file("agent.pid")
    }

    /// The agent's command line: `run [--config POLICY] EXTRA` with this run's
    /// pin dir, 100 ms interval, metrics port, audit log and pid file, unless
    /// `extra` gives that flag itself.
    pub fn command(&self, group: Option<&str>, policy: Option<&Path>, extra: &[&str]) -> Command {
        let mut cmd = Command::new(enforcer_bin());
        if let Some(spec) = group {
            cmd.args(["exec", "-g", spec, "--"]).arg(enforcer_bin());
        }
        cmd.arg("run");
        if let Some(p) = policy {
            cmd.arg("--config").arg(p);
        }
        let metrics = format!("127.0.0.1:{}", self.port);
        let audit = self.file("audit.jsonl");
        let pid_file = self.pid_file();
        let defaults = [
            ("--pin-dir", self.pin()),
            ("--interval", "100ms"),
            ("--metrics", metrics.as_str()),
            ("--audit-log", audit.to_str().unwrap()),
            ("--pid-file", pid_file.to_str().unwrap()),
        ];
        for (flag, value) in defaults {
            let overridden =
                extra.contains(&flag) || (flag == "--metrics" && extra.contains(&"--no-metrics"));
            if !overridden {
                cmd.args([flag, value]);
            }
        }
        cmd.args(extra);
        if let Some(filter) = &self.log_filter {
            cmd.env("ENFORCER_LOG", filter);
        }
        cmd
    }

    pub fn start(&mut self, policy: &Path) {
        self.start_with(policy, &[]);
    }

    /// Start with extra flags; the agent's log goes to `agent.log`.
    pub fn start_with(&mut self, policy: &Path, extra: &[&str]) {
        self.start_in(None, Some(policy), extra);
    }

    /// Observe mode: no policy.
    pub fn start_observe(&mut self, extra: &[&str]) {
        self.start_in(None, None, extra);
    }

    /// Start, optionally inside a group (`enforcer exec -g SPEC -- enforcer run`),
    /// and wait until it serves metrics.
    pub fn start_in(&mut self, group: Option<&str>, policy: Option<&Path>, extra: &[&str]) {
        if (policy.is_none() || extra.contains(&"--observe")) && self.observe.is_none() {
            self.observe = Some(observe_lock());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.file("agent.log"))
            .unwrap();
        let child = self
            .command(group, policy, extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for(
            "the agent to serve metrics",
            Duration::from_secs(60),
            || {
                if let Some(c) = self.child.as_mut()
                    && let Ok(Some(st)) = c.try_wait()
                {
                    panic!(
                        "the agent exited with {st}:\n{}",
                        std::fs::read_to_string(self.file("agent.log")).unwrap_or_default()
                    );
                }
                self.metrics().is_some()
            },
        );
    }

    /// Runs an agent expected to refuse to start: its output, once it exits
    /// (killed after 20 s if it does not). It takes no [`observe_lock`]: it
    /// is not meant to run.
    pub fn run_expecting_exit(&self, policy: Option<&Path>, extra: &[&str]) -> Output {
        let mut child = self
            .command(None, policy, extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20) * crate::time_scale();
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    pub fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// One scrape of the metrics endpoint, or None if it does not answer
    /// within 10 s (times the time scale): a hung agent fails the waiting
    /// test instead of hanging it.
    pub fn metrics(&self) -> Option<String> {
        self.metrics_accepting(None)
    }

    /// A scrape (head and body) with this `Accept` header, if any; None if
    /// the endpoint does not answer within 10 s (times the time scale).
    pub fn metrics_accepting(&self, accept: Option<&str>) -> Option<String> {
        let limit = Duration::from_secs(10) * crate::time_scale();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, limit).ok()?;
        s.set_read_timeout(Some(limit)).ok()?;
        s.set_write_timeout(Some(limit)).ok()?;
        let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
        s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{accept}\r\n").as_bytes())
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1.1 200").then_some(out)
    }

    /// The value of an unlabelled sample of the metrics (`enforcer_collections_total`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let m = self.metrics()?;
        m.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(' ')?;
            rest.split_whitespace().next()?.parse().ok()
        })
    }

    /// Collections the agent has completed (one per interval).
    pub fn collections(&self) -> u64 {
        self.metric("enforcer_collections_total")
            .expect("the agent serves enforcer_collections_total") as u64
    }

    /// Waits until the agent has completed `n` more collections than now:
    /// the event that shows it has looked at the host (and acted) that many
    /// times since, where a test checks that something did *not* happen.
    pub fn wait_collections(&self, n: u64) {
        let start = self.collections();
        wait_for(
            &format!("{n} more collections by the agent"),
            Duration::from_secs(10) + Duration::from_millis(500) * u32::try_from(n).unwrap_or(1000),
            || {
                self.metric("enforcer_collections_total")
                    .is_some_and(|c| c as u64 >= start + n)
            },
        );
    }

    /// `enforcer stats --json GROUP`: the group's object, or null.
    pub fn stats(&self, group: &str) -> serde_json::Value {
        let out = enforcer_ok(&["stats", "--json", "--pin-dir", self.pin(), group]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .and_then(|a| a.first().cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Every whole line of the audit log; panics on a whole line that is not
    /// JSON. The agent may be writing while this reads: write(2) to a file
    /// copies page by page and readers take no lock, so the last line can be
    /// half there. Only lines ended by their newline are read (a line the
    /// agent finished is whole; one a SIGKILL tore it mends at its next start).
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        whole_lines(&std::fs::read(self.file("audit.jsonl")).unwrap_or_default())
            .into_iter()
            .map(|l| {
                serde_json::from_str(&l)
                    .unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l:?}"))
            })
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.file("agent.log")).unwrap_or_default()
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        self.sigkill();
        let _ = enforcer(&[
            "stop",
            "--pin-dir",
            self.pin(),
            "--pid-file",
            self.pid_file().to_str().unwrap(),
        ]);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The lines of `bytes` that end with a newline (without it); a last line
/// still being written is left out.
pub fn whole_lines(bytes: &[u8]) -> Vec<String> {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end])
        .lines()
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::whole_lines;

    #[test]
    fn a_line_still_being_written_is_not_read() {
        assert_eq!(whole_lines(b"{\"a\":1}\n{\"b\":"), ["{\"a\":1}"]);
        assert_eq!(whole_lines(b"{\"a\":1}\n"), ["{\"a\":1}"]);
        assert!(whole_lines(b"{\"a\"").is_empty());
        assert!(whole_lines(b"").is_empty());
    }
}
