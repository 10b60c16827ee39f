//! End to end: the `count_egress` cgroup_skb program counts exactly the bytes and
//! packets a process in a cgroup sends. Needs root and a cgroup2 mount.
//!
//! The test creates its own cgroup2 directory, attaches only there, and removes it
//! afterwards (also on panic), so it never touches cgroups it did not create.

use std::ffi::CString;
use std::fs;
use std::io;
use std::net::UdpSocket;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use enforcer::bpf::{EgressCounter, cgroup_id};

const DATAGRAMS: u64 = 1000;
const PAYLOAD: u64 = 100;
/// IPv4 header (20) + UDP header (8), counted by `skb->len` at the egress hook.
const HEADERS: u64 = 28;

/// Undoes the `\NNN` octal escapes mountinfo uses for spaces, tabs, newlines and
/// backslashes in paths.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// The first cgroup2 mount point in /proc/self/mountinfo (`/sys/fs/cgroup/unified`
/// on a hybrid host, `/sys/fs/cgroup` on a pure cgroup2 host).
fn cgroup2_mount() -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    mountinfo
        .lines()
        .find_map(|line| {
            // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> <source> <super opts>"
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let mount_point = left.split_whitespace().nth(4)?;
            (fstype == "cgroup2").then(|| unescape_mountinfo(mount_point))
        })
        .expect("no cgroup2 filesystem is mounted (see /proc/self/mountinfo); eBPF cgroup accounting needs one")
}

/// A cgroup2 directory this test created. Dropping it kills whatever is still in
/// it and removes it, also when the test panics.
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn create(parent: &Path, prefix: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = parent.join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("mkdir {}: {e} (run as root)", path.display()));
        Self { path }
    }

    fn procs(&self) -> Vec<i32> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
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
                // cgroup.kill (5.14+) kills the whole group atomically; fall back
                // to signalling each listed process.
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

/// `enforcer-test-helper ARGS`, moved into `cgroup` between fork and exec, so
/// everything it does (including creating its socket) happens inside the group.
fn helper_in_cgroup(cgroup: &TestCgroup, args: &[&str]) -> Command {
    let procs = CString::new(cgroup.path.join("cgroup.procs").as_os_str().as_bytes())
        .expect("cgroup path has no NUL bytes");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_enforcer-test-helper"));
    cmd.args(args);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (open, write, close) on memory prepared before the
    // fork; it allocates nothing.
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

#[test]
fn counts_udp_egress_of_a_cgroup_exactly() {
    let mount = cgroup2_mount();
    // Declared before the counter so it is dropped after it: links detach first,
    // then the directory is removed.
    let cgroup = TestCgroup::create(&mount, "enf-test-egress");
    let id = cgroup_id(&cgroup.path).expect("cgroup2 id of the test cgroup");

    let mut counter = EgressCounter::load().expect("load the eBPF object");
    counter
        .attach(&cgroup.path)
        .expect("attach count_egress to the test cgroup");
    // Attaching twice must not double-count.
    counter
        .attach(&cgroup.path)
        .expect("second attach is a no-op");

    let before = counter.counts(id).expect("read NET_EGRESS");
    assert_eq!(
        (before.bytes, before.packets),
        (0, 0),
        "a fresh cgroup has sent nothing"
    );

    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind UDP receiver");
    let addr = receiver.local_addr().expect("receiver address").to_string();

    let status = helper_in_cgroup(
        &cgroup,
        &[
            "udp-send",
            &addr,
            &DATAGRAMS.to_string(),
            &PAYLOAD.to_string(),
        ],
    )
    .status()
    .expect("run enforcer-test-helper udp-send");
    assert!(status.success(), "udp-send failed: {status}");

    let counts = counter.counts(id).expect("read NET_EGRESS");
    assert_eq!(counts.packets, DATAGRAMS, "packets counted for cgroup {id}");
    assert_eq!(
        counts.bytes,
        DATAGRAMS * (PAYLOAD + HEADERS),
        "bytes counted for cgroup {id}"
    );

    // The test process itself is not in the group: its traffic is not charged to it.
    let self_send = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    self_send
        .send_to(&[0u8; 10], &addr)
        .expect("send from the test process");
    let after = counter.counts(id).expect("read NET_EGRESS");
    assert_eq!(
        after, counts,
        "traffic from outside the group must not be counted"
    );

    counter.forget(id).expect("forget the group's counts");
    let forgotten = counter.counts(id).expect("read NET_EGRESS");
    assert_eq!((forgotten.bytes, forgotten.packets), (0, 0));
}

#[test]
fn probe_reports_the_egress_program_and_map() {
    let report = enforcer::bpf::probe().expect("probe the embedded eBPF object");
    assert!(report.object_bytes > 0);
    assert!(
        report.programs.iter().any(|p| p == "count_egress"),
        "programs: {:?}",
        report.programs
    );
    assert!(
        report.maps.iter().any(|m| m == "NET_EGRESS"),
        "maps: {:?}",
        report.maps
    );
}

#[test]
fn refuses_directories_outside_cgroup2() {
    let err = cgroup_id(Path::new("/proc")).expect_err("/proc is not a cgroup2 directory");
    assert!(
        matches!(err, enforcer::bpf::BpfError::NotCgroup2 { .. }),
        "{err}"
    );
}
