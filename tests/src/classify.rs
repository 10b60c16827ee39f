//! Support for the classification tests: throwaway users and groups (removed
//! with their processes when dropped), a rules daemon of our own with its
//! rules file, programs with unique names, and waiting for a process to
//! reach a group.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{enforcer_bin, unique_name};

fn short_name(prefix: &str) -> String {
    // Login names are at most 32 bytes: prefix, pid and a counter.
    let u = unique_name("x");
    let tail: String = u.rsplit('-').take(2).collect::<Vec<_>>().join("");
    format!("{prefix}{tail}")
}

/// Whether users and groups can be made here (`useradd`, `groupadd`): a
/// `cargo xtask vmtest` guest has busybox only, and the test says so.
pub fn can_add_users(test: &str) -> bool {
    let found = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
    };
    if found("useradd") && found("groupadd") {
        return true;
    }
    crate::skipped(
        test,
        "no useradd/groupadd to create test users on this host",
    );
    false
}

/// A user created for the test (no home, no login shell).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl TestUser {
    /// A user, optionally also a member of `group`.
    pub fn new(group: Option<&TestGroup>) -> TestUser {
        let name = short_name("enfu");
        let mut cmd = Command::new("useradd");
        cmd.args(["-M", "-s", "/usr/sbin/nologin", "-U"]);
        if let Some(g) = group {
            cmd.args(["-G", &g.name]);
        }
        let st = cmd.arg(&name).status().expect("useradd");
        assert!(st.success(), "useradd {name} failed");
        let u = nix::unistd::User::from_name(&name).unwrap().unwrap();
        TestUser {
            name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // A killed process outlives pkill for a moment (and an orphan's
        // zombie until init reaps it): userdel refuses a user still running.
        for _ in 0..100 {
            let _ = Command::new("pkill")
                .args(["-KILL", "-U", &self.uid.to_string()])
                .status();
            // Exit status 8: the user still runs something.
            let busy = Command::new("userdel")
                .arg(&self.name)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.code() == Some(8));
            if !busy {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("groupdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
    }
}

/// A group created for the test.
pub struct TestGroup {
    pub name: String,
    pub gid: u32,
}

impl TestGroup {
    pub fn new() -> TestGroup {
        let name = short_name("enfg");
        let st = Command::new("groupadd")
            .arg(&name)
            .status()
            .expect("groupadd");
        assert!(st.success(), "groupadd {name} failed");
        let g = nix::unistd::Group::from_name(&name).unwrap().unwrap();
        TestGroup {
            name,
            gid: g.gid.as_raw(),
        }
    }
}

impl Default for TestGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

/// A scratch directory everyone may read (test users run programs from it).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        let d = std::env::temp_dir().join(unique_name("classify"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(d)
    }

    /// `enforcer-test-cgself` copied here as `name` (a rule matches it).
    pub fn program(&self, name: &str) -> PathBuf {
        let src = enforcer_bin().with_file_name("enforcer-test-cgself");
        let dst = self.0.join(name);
        std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        dst
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Our `cgrulesengd -n` on `rules`, logging to a file; SIGTERM when dropped.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(scratch: &Scratch, rules: &Path, extra: &[&str]) -> Daemon {
        let log = scratch.0.join("cgrulesengd.log");
        let link = scratch.0.join("cgrulesengd");
        let _ = std::os::unix::fs::symlink(enforcer_bin(), &link);
        let child = Command::new(&link)
            .args(["-n", "-v", "-v", "-f"])
            .arg(&log)
            .args(extra)
            .env("ENFORCER_CGRULES_CONF", rules)
            .env("ENFORCER_CGRULES_DIR", scratch.0.join("no-rules.d"))
            .stdin(Stdio::null())
            .spawn()
            .expect("starting cgrulesengd");
        let mut d = Daemon { child, log };
        let deadline = Instant::now() + Duration::from_secs(20) * crate::time_scale();
        while !d
            .log_text()
            .contains("Started the CGroup Rules Engine Daemon.")
        {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("cgrulesengd exited with {st}: {}", d.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "cgrulesengd did not start: {}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The group `pid` is in in the hierarchy holding `controller` (`/path`),
/// if any: its v1 hierarchy's line of /proc/PID/cgroup, or the cgroup2 line
/// (`0::/path`) where the controller is on cgroup2 (pure v2).
pub fn group_of(pid: u32, controller: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    group_in(&text, controller)
}

/// The group in `controller`'s hierarchy in /proc/PID/cgroup text (lines,
/// or joined with `;` as `enforcer-test-cgself` prints them).
pub fn group_in(text: &str, controller: &str) -> Option<String> {
    let v1 = crate::layout::is_v1(controller);
    text.split(['\n', ';']).find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (id, c, p) = (f.next()?, f.next()?, f.next()?);
        let hit = if v1 {
            c.split(',').any(|x| x == controller)
        } else {
            id == "0" && c.is_empty()
        };
        hit.then(|| p.to_string())
    })
}

/// Whether /proc/PID/cgroup text shows group `group` in `controller`'s
/// hierarchy (`N:cpu:/group` on v1, `0::/group` on pure v2).
pub fn shows(text: &str, controller: &str, group: &str) -> bool {
    group_in(text, controller).is_some_and(|p| p == format!("/{group}"))
}

/// Waits up to 10 s (times [`crate::time_scale`]) for `pid` to be in `/group` of `controller`.
pub fn reaches(pid: u32, controller: &str, group: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10) * crate::time_scale();
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if shows(&text, controller, group) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A running process, killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
