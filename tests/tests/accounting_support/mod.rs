//! Shared by the eBPF accounting tests (`accounting_*.rs`, `ebpf_egress.rs`):
//! test-owned cgroup2 directories and pin directories, removed by guards even
//! when a test panics, and running the helper binary inside a group.
//!
//! Nothing here touches a cgroup or pin the test did not create: cgroups are
//! `enf-test-<what>-<pid>-<n>` under the cgroup2 mount, pin directories
//! `/sys/fs/bpf/enforcer-test-<pid>-<n>` (never the agent's `/sys/fs/bpf/enforcer`).

#![allow(dead_code, unreachable_pub, reason = "each test crate uses a subset")]

use std::ffi::CString;
use std::fs;
use std::io::{self, BufRead as _, BufReader};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use enforcer::bpf::{Event, GroupCounters, Kernel, Snapshot};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The cgroup2 mount point (`/sys/fs/cgroup/unified` on this hybrid host,
/// `/sys/fs/cgroup` on pure v2). A pure v1 host has none: tests call
/// `enforcer_tests::layout::skip_without_cgroup2` before making groups.
pub fn cgroup2_mount() -> PathBuf {
    enforcer_tests::layout::v2_mount()
}

/// A cgroup2 directory this test created. Dropping it kills whatever is still in
/// it and removes it, also when the test panics.
pub struct TestCgroup {
    pub path: PathBuf,
}

impl TestCgroup {
    pub fn create(what: &str) -> Self {
        let path = cgroup2_mount().join(unique(&format!("enf-test-{what}")));
        fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("mkdir {}: {e} (run as root)", path.display()));
        Self { path }
    }

    pub fn id(&self) -> u64 {
        enforcer::bpf::cgroup_id(&self.path).expect("cgroup2 id of a test cgroup")
    }

    fn procs(&self) -> Vec<i32> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// `enforcer-test-helper ARGS`, moved into this group between fork and exec,
    /// so everything it does (including creating its sockets) happens inside.
    pub fn helper(&self, args: &[&str]) -> Command {
        self.command(Path::new(env!("CARGO_BIN_EXE_enforcer-test-helper")), args)
    }

    /// `PROGRAM ARGS`, moved into this group as [`helper`](Self::helper) is.
    pub fn command(&self, program: &Path, args: &[&str]) -> Command {
        let procs = CString::new(self.path.join("cgroup.procs").as_os_str().as_bytes())
            .expect("cgroup path has no NUL bytes");
        let mut cmd = Command::new(program);
        cmd.args(args);
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe calls (open, write, close) on memory prepared before
        // the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // Writing "0" moves the writing process itself.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
        cmd
    }

    /// Runs the helper in this group to completion and asserts it succeeded.
    /// Runs a helper in this group to completion; returns its stdout.
    pub fn run_helper(&self, args: &[&str]) -> String {
        let out = self
            .helper(args)
            .output()
            .unwrap_or_else(|e| panic!("running helper {args:?}: {e}"));
        assert!(
            out.status.success(),
            "helper {args:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a helper in this group that announces an address on its first
    /// stdout line (`udp-recv`, `tcp-recv`); returns it with that address.
    pub fn start_server(&self, args: &[&str]) -> Server {
        let mut child = self
            .helper(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting helper {args:?}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut addr = String::new();
        stdout
            .read_line(&mut addr)
            .expect("read the server address");
        assert!(
            !addr.trim().is_empty(),
            "helper {args:?} printed no address"
        );
        Server {
            child,
            stdout,
            addr: addr.trim().to_owned(),
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let procs = self.procs();
            if procs.is_empty() {
                match fs::remove_dir(&self.path) {
                    Ok(()) => return,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                    Err(e) if Instant::now() > deadline => {
                        eprintln!("could not remove test cgroup {}: {e}", self.path.display());
                        return;
                    }
                    Err(_) => {}
                }
            } else {
                // cgroup.kill kills the whole group atomically; fall back to
                // signalling each listed process.
                if fs::write(self.path.join("cgroup.kill"), "1").is_err() {
                    for pid in procs {
                        // SAFETY: kill(2) has no memory-safety preconditions; the
                        // pids were read from this test's own cgroup.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
                if Instant::now() > deadline {
                    eprintln!("processes still in {} after SIGKILL", self.path.display());
                    return;
                }
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A helper that announced its address; killed if dropped while running.
pub struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    pub addr: String,
}

impl Server {
    /// Waits for the helper to exit successfully and returns its last line.
    pub fn finish(mut self) -> String {
        let mut last = String::new();
        let mut line = String::new();
        while self.stdout.read_line(&mut line).unwrap_or(0) > 0 {
            last = line.trim().to_owned();
            line.clear();
        }
        let status = self.child.wait().expect("wait for the server helper");
        assert!(status.success(), "server helper failed: {status}");
        last
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A pin directory of this test only, under bpffs. Dropping it detaches and
/// unpins everything in it.
pub struct PinDir {
    pub path: PathBuf,
}

impl PinDir {
    pub fn new() -> Self {
        let bpffs = Path::new("/sys/fs/bpf");
        assert!(
            bpffs.join(".").exists(),
            "bpffs is not mounted at /sys/fs/bpf (cargo xtask setup mounts it)"
        );
        Self {
            path: bpffs.join(unique("enforcer-test")),
        }
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(e) = enforcer::bpf::unpin_all(&self.path) {
            eprintln!("unpin_all {}: {e}", self.path.display());
        }
        // Anything unpin_all did not know (a half-finished test) goes too: the
        // directory is this test's own.
        if self.path.exists() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The counters of `id` in `snap` (zero if the group has none).
pub fn group(snap: &Snapshot, id: u64) -> GroupCounters {
    snap.groups.get(&id).cloned().unwrap_or_default()
}

/// Waits up to `timeout` for events matching `want`, polling the ring
/// buffer's fd as the agent does; returns all events of group `id` seen.
pub fn events_of(
    kernel: &mut Kernel,
    id: u64,
    timeout: Duration,
    want: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + timeout;
    let mut found = Vec::new();
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: kernel.events_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; the fd stays open while `kernel` lives.
        unsafe { libc::poll(&mut pfd, 1, 50) };
        found.extend(
            kernel
                .drain_events()
                .into_iter()
                .filter(|e| e.cgroup_id() == id),
        );
        if want(&found) {
            break;
        }
    }
    found
}
