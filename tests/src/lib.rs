//! Support for the end-to-end tests: unique group names, guards that remove
//! everything a test made even when it panics, and running the real binaries.
//!
//! Every test runs as root against the real kernel. Nothing here touches a
//! cgroup the test did not create.

pub mod agent_run;
pub mod classify;
pub mod compat;
pub mod layout;
pub mod manifests;
pub mod tmpfs;
pub mod tmux;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use agent_run::AgentRun;

use enforcer::cgroup::{Cgroups, GroupPath};

/// Path of the `enforcer` binary built next to this test binary
/// (`cargo xtask test` builds it first; ENFORCER_BIN overrides).
pub fn enforcer_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ENFORCER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/enforcer
    exe.parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("enforcer"))
        .expect("test binary lives in target/<profile>/deps")
}

/// Run `enforcer ARGS` and capture its output.
pub fn enforcer(args: &[&str]) -> Output {
    let bin = enforcer_bin();
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo xtask test` does)",
        bin.display()
    );
    Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

/// Run `enforcer ARGS` with extra environment variables (`ENFORCER_LOG=info`).
pub fn enforcer_env(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(enforcer_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running enforcer: {e}"))
}

/// Run `enforcer ARGS`, assert success and return stdout.
pub fn enforcer_ok(args: &[&str]) -> String {
    let out = enforcer(args);
    assert!(
        out.status.success(),
        "enforcer {args:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test or run uses: `enf-test-<what>-<pid>-<n>`.
pub fn unique_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "enf-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes a test's group from every hierarchy when dropped, killing anything
/// left inside first. Runs on panic too.
pub struct GroupGuard {
    pub name: String,
}

impl GroupGuard {
    pub fn new(what: &str) -> Self {
        GroupGuard {
            name: unique_name(what),
        }
    }

    pub fn path(&self) -> GroupPath {
        GroupPath::parse(&self.name).expect("unique names are valid")
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Ok(cg) = Cgroups::discover() else { return };
        let path = self.path();
        for h in cg.present_in(&path) {
            remove_tree(&cg.dir(h, &path));
        }
    }
}

/// Kill what is inside, then remove directories bottom-up.
fn remove_tree(dir: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path());
        }
    }
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        for pid in &pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        // A frozen v1 group must thaw for SIGKILL to land.
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Path of the test helper binary (built with the tests).
pub fn helper_bin() -> PathBuf {
    enforcer_bin().with_file_name("enforcer-test-helper")
}

/// A 32-bit (arm32) helper for aarch64 hosts, named by
/// `ENFORCER_TEST_COMPAT32` (`cargo xtask vmtest --arch arm64` builds and
/// ships it: tests/compat32/compat32.c): `getppid K` makes K getppid calls,
/// `personality` calls personality(PER_LINUX32) and prints `alive`.
pub fn compat32_bin() -> Option<PathBuf> {
    std::env::var_os("ENFORCER_TEST_COMPAT32")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
}

/// Polls `f` every 50 ms until it holds; panics after 10 s naming `what`.
pub fn wait_until(what: &str, f: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(10), f);
}

/// Says that `test` did not test what it is for here, and why: on stderr
/// (`SKIPPED test: why`, shown with `--nocapture`), and as a line appended to
/// the file `ENFORCER_TEST_SKIPS` names, if set: `cargo xtask vmtest` sets it
/// and reports the skips of each configuration beside its pass count, since
/// libtest counts a test that returned early as passed.
pub fn skipped(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("ENFORCER_TEST_SKIPS") {
        use std::io::Write as _;
        // One short write with O_APPEND: lines of parallel tests stay whole.
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{test}: {why}\n").as_bytes()));
    }
}

/// A loopback TCP listener that takes one connection and reads it to the
/// end: its address, and the thread that returns the bytes it read. A read
/// that stalls for two minutes ends it (a test fails instead of hanging).
pub fn tcp_sink() -> (String, std::thread::JoinHandle<u64>) {
    use std::io::Read as _;
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    let addr = l.local_addr().expect("the listener's address").to_string();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = l.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("a read timeout");
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        while let Ok(k) = conn.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    (addr, reader)
}

/// How much slower than the build host the machine under test runs:
/// `ENFORCER_TEST_TIME_SCALE` (a whole number), set by `cargo xtask vmtest`
/// for a guest under TCG emulation; 1 elsewhere. Time limits of the tests
/// (waits, "within N seconds") are multiplied by it, so they stay exact on
/// the host and do not fail an emulated guest for being emulated.
pub fn time_scale() -> u32 {
    std::env::var("ENFORCER_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// [`wait_until`] with another limit (times [`time_scale`]).
pub fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit * time_scale();
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The overall exposure `systemd-analyze security` prints for a unit
/// (`→ Overall exposure level for enforcer.service: 3.4 OK 🙂`).
pub fn exposure(report: &str) -> Option<f64> {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level for"))?;
    line.rsplit_once(": ")?
        .1
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The unprivileged user the tests act as (`nobody`).
pub const NOBODY: u32 = 65534;

/// `program ARGS` run as `nobody` (uid and gid 65534, no supplementary
/// groups), as an ordinary local user would.
pub fn as_nobody(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(program);
    // std drops the supplementary groups (setgroups(0)) when root sets a uid.
    cmd.args(args).uid(NOBODY).gid(NOBODY).env_clear();
    // A binary just copied (see `public_enforcer` in the tests) may still be
    // open for writing in a child another test thread is forking: ETXTBSY
    // for a moment.
    for _ in 0..50 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                return other
                    .unwrap_or_else(|e| panic!("running {:?} as nobody: {e}", cmd.get_program()));
            }
        }
    }
    panic!("{:?} stayed busy (ETXTBSY)", cmd.get_program())
}

/// The known work of the `i`th group of the helper's `scale-worker`: `(syscall
/// number, calls)` pairs (1 to 5 distinct cheap syscalls) and how many 64-byte
/// datagrams it sends. The scale test checks every count against this.
pub fn scale_pattern(i: usize) -> (Vec<(libc::c_long, u64)>, u64) {
    const CHEAP: [libc::c_long; 5] = [
        libc::SYS_getppid,
        libc::SYS_getuid,
        libc::SYS_getgid,
        libc::SYS_geteuid,
        libc::SYS_getegid,
    ];
    let kinds = i % CHEAP.len() + 1;
    let calls = CHEAP
        .iter()
        .take(kinds)
        .enumerate()
        .map(|(k, &nr)| (nr, (k + 1 + i % 3) as u64))
        .collect();
    (calls, (i % 4 + 1) as u64)
}

/// The helper's `syscall-sequence`: `(name, this architecture's number,
/// calls)`. Each name has another number on x86_64 than on aarch64, and
/// each number names another syscall in the other table (x86_64's 110
/// `getppid` is aarch64's `getpgid`... and aarch64's 173 `getppid` is
/// x86_64's `ioperm`), so a report naming calls with the wrong table shows.
pub const SYSCALL_SEQUENCE: [(&str, libc::c_long, u64); 4] = [
    ("getppid", libc::SYS_getppid, 300),
    ("getuid", libc::SYS_getuid, 200),
    ("sched_yield", libc::SYS_sched_yield, 100),
    ("umask", libc::SYS_umask, 50),
];

/// The lines of a child's output, read on a thread of their own, so a test
/// waits for each with a deadline: a hung process fails the test that waits
/// for it instead of hanging the suite.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
}

impl Lines {
    pub fn new(r: impl std::io::Read + Send + 'static) -> Self {
        use std::io::BufRead as _;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(r).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines { rx }
    }

    /// The next line within `limit` (times [`time_scale`]), or None at the
    /// deadline or when the output ended.
    pub fn within(&self, limit: Duration) -> Option<String> {
        self.rx.recv_timeout(limit * time_scale()).ok()
    }

    /// The next line; panics naming `what` if none comes within 10 s (times
    /// [`time_scale`]).
    pub fn next(&self, what: &str) -> String {
        self.within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no line of {what} within 10 s (or it ended)"))
    }
}
