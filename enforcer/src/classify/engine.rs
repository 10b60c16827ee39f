//! The rules engine: exec events from the kernel in, processes moved to
//! their rule's groups out. Run by the agent (on a thread of its own) and
//! by `cgrulesengd`.
//!
//! For each reported exec the rules are matched against the process's
//! effective ids (from the kernel's record) and its name (the executable the
//! kernel ran, see `procfs`), the first matching rule is applied (its groups
//! created first when the destination is a template), and the processes it
//! forked before it was moved follow it: the kernel marks every descendant
//! of a reported process pending (`EXEC_PENDING`, whoever its parent is by
//! then), so a double fork and `setsid` cannot outrun the move. `--sticky`
//! processes are skipped in the kernel.
//!
//! A held process (`hold`) is continued whatever happens, and so are its
//! ancestors that stopped in the two seconds after: `su`, `runuser` and
//! `sudo` stop themselves when they see their child stop (to pass a job
//! control stop on to their shell), and with nobody to continue them they
//! would stay stopped for good.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::procfs;
use super::rules::{Facts, RuleSet, Who, apply};
use super::sticky;
use crate::bpf::exec::{ExecError, ExecFilter, ExecStats, ExecWatch};
use crate::cgroup::lcg::{Ecg, Table};

/// How often sticky entries of processes that exited are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// How long a placed process's new descendants are still followed: a child
/// forked just before the move is reported by `task_newtask` a moment later
/// (after the fork has released the cgroup lock).
const FOLLOW_GRACE: Duration = Duration::from_millis(500);

/// How long the ancestors of a continued held process are watched for a
/// stop in reaction to its hold.
const STOPPED_WATCH: Duration = Duration::from_secs(2);

/// How many ancestors of a held process are watched (its parent first).
const STOPPED_DEPTH: usize = 4;

/// The poll timeout while descendants are followed or ancestors watched.
const BUSY_POLL: Duration = Duration::from_millis(20);

/// A reported process, for following its descendants: the rule it was
/// placed by (None: it was not moved, so they need nothing) and when.
struct Root {
    placed: Option<(usize, Facts)>,
    at: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Kernel(#[from] ExecError),
    #[error("listening on {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no cgroup hierarchies are mounted (nothing of type cgroup or cgroup2 in /proc/self/mounts)"
    )]
    NoHierarchies,
}

/// Log levels of the engine's messages (syslog's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

pub type Logger = Box<dyn FnMut(Level, &str) + Send>;

/// What the engine did, for reports and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub events: u64,
    pub placed: u64,
    pub unmatched: u64,
    pub failed: u64,
    /// Descendants moved with the process they descend from.
    pub followed: u64,
    /// Ancestors of held processes continued after they stopped in reaction.
    pub continued: u64,
    /// Exec to placed, the largest seen (kernel time stamps).
    pub max_latency_ns: u64,
    pub kernel: ExecStats,
}

/// Where to serve libcgroup's sticky socket and who owns it (uid, gid;
/// None keeps root).
pub type SocketSpec = (PathBuf, (Option<u32>, Option<u32>));

pub struct EngineOptions {
    /// Stop each reported process at exec until it is placed.
    pub hold: bool,
    /// Serve libcgroup's sticky socket.
    pub socket: Option<SocketSpec>,
}

pub struct Engine {
    table: Table,
    rules: RuleSet,
    watch: ExecWatch,
    listener: Option<UnixListener>,
    log: Logger,
    stats: EngineStats,
    last_prune: Instant,
    /// Reported processes whose descendants are followed, by pid.
    roots: HashMap<u32, Root>,
    /// Pending processes whose root is not known (yet), since when.
    unknown: HashMap<u32, Instant>,
    /// Ancestors (pid, start time) of continued held processes, and when.
    released: Vec<(Vec<(i32, u64)>, Instant)>,
}

/// Which execs the kernel must report for these rules: a superset of those
/// some rule matches (users, groups and their members, program base names,
/// or all). `ignore` rules only keep processes put, so need no reports.
pub fn filter_for(rules: &RuleSet) -> ExecFilter {
    let mut f = ExecFilter::default();
    for r in &rules.rules {
        if r.ignore != 0 {
            continue;
        }
        match &r.who {
            Who::Continuation => {}
            Who::User(u) => {
                f.uids.insert(*u);
            }
            Who::Group { gid, members, .. } => {
                f.gids.insert(*gid);
                f.uids.extend(members.iter().copied());
            }
            Who::Any => match &r.procname {
                None => f.match_all = true,
                Some(p) if p.ends_with('*') => f.match_all = true,
                Some(p) => {
                    f.names
                        .insert(p.rsplit('/').next().unwrap_or(p).as_bytes().to_vec());
                }
            },
        }
    }
    f
}

impl Engine {
    /// Load the kernel side and start reporting for `rules`.
    pub fn new(rules: RuleSet, opts: EngineOptions, log: Logger) -> Result<Engine, EngineError> {
        let table = Table::discover();
        if table.is_empty() {
            return Err(EngineError::NoHierarchies);
        }
        let listener = match &opts.socket {
            Some((path, owner)) => {
                let l = sticky::listen(path, *owner).map_err(|source| EngineError::Socket {
                    path: path.clone(),
                    source,
                })?;
                l.set_nonblocking(true)
                    .map_err(|source| EngineError::Socket {
                        path: path.clone(),
                        source,
                    })?;
                Some(l)
            }
            None => None,
        };
        let mut watch = ExecWatch::open(opts.hold)?;
        watch.set_filter(&filter_for(&rules))?;
        Ok(Engine {
            table,
            rules,
            watch,
            listener,
            log,
            stats: EngineStats::default(),
            last_prune: Instant::now(),
            roots: HashMap::new(),
            unknown: HashMap::new(),
            released: Vec::new(),
        })
    }

    /// Replace the rules (the kernel filter follows).
    pub fn set_rules(&mut self, rules: RuleSet) -> Result<(), EngineError> {
        self.watch.set_filter(&filter_for(&rules))?;
        self.rules = rules;
        // Rule indexes of the old set mean nothing in the new one.
        for r in self.roots.values_mut() {
            r.placed = None;
        }
        Ok(())
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn stats(&mut self) -> EngineStats {
        self.stats.kernel = self.watch.stats();
        self.stats
    }

    /// Mark `pid` sticky (its children too with `children`), as `--sticky` does.
    pub fn add_sticky(&mut self, pid: u32, children: bool) -> Result<(), EngineError> {
        Ok(self.watch.add_sticky(pid, children)?)
    }

    /// Classify every running process once, as cgrulesengd does at start.
    /// Kernel threads (no executable) and this process are left alone.
    pub fn classify_running(&mut self) {
        let me = std::process::id() as i32;
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
        let pids: Vec<i32> = rd
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        for pid in pids {
            if pid == me || std::fs::read_link(format!("/proc/{pid}/exe")).is_err() {
                continue;
            }
            let Some((uid, gid)) = procfs::euid_egid(pid) else {
                continue;
            };
            self.place(pid, uid, gid, None, false, None);
        }
    }

    /// Wait up to `timeout` for exec events or sticky requests and handle
    /// them. Returns how many events were handled.
    pub fn poll_once(&mut self, timeout: Duration) -> usize {
        let ring = self.watch.as_raw_fd();
        let sock = self.listener.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        // SAFETY: both fds are owned by `self` and outlive this call.
        let ring_fd = unsafe { BorrowedFd::borrow_raw(ring) };
        let mut fds = vec![PollFd::new(ring_fd, PollFlags::POLLIN)];
        let sock_fd;
        if let Some(s) = sock {
            // SAFETY: as above.
            sock_fd = unsafe { BorrowedFd::borrow_raw(s) };
            fds.push(PollFd::new(sock_fd, PollFlags::POLLIN));
        }
        let timeout =
            if self.roots.is_empty() && self.unknown.is_empty() && self.released.is_empty() {
                timeout
            } else {
                timeout.min(BUSY_POLL)
            };
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let _ = poll(&mut fds, PollTimeout::from(ms));
        let sock_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if sock_ready {
            self.serve_sticky();
        }
        let n = self.drain();
        if self.last_prune.elapsed() >= PRUNE_EVERY {
            self.prune_sticky();
        }
        n
    }

    /// Handle every waiting exec event.
    pub fn drain(&mut self) -> usize {
        let mut events = Vec::new();
        self.watch.read_events(&mut events);
        for ev in &events {
            self.stats.events += 1;
            let held = ev.flags & enforcer_common::exec::EXEC_HELD != 0;
            let exec = ev.path().map(|path| procfs::Exec { path, held });
            let placed = self.place(ev.pid as i32, ev.uid, ev.gid, Some(ev.ktime_ns), held, exec);
            self.roots.insert(
                ev.pid,
                Root {
                    placed,
                    at: Instant::now(),
                },
            );
        }
        self.follow_pending();
        self.continue_stopped_ancestors();
        events.len()
    }

    /// Moves the descendants of placed processes after them (see the
    /// module docs), and stops following them once the grace has passed.
    fn follow_pending(&mut self) {
        if self.roots.is_empty() && self.unknown.is_empty() {
            // Nothing reported since the last pass: nothing pending either
            // (an entry is made before its exec is reported).
            return;
        }
        let entries = match self.watch.pending() {
            Ok(e) => e,
            Err(e) => {
                (self.log)(Level::Warning, &format!("Warning: {e}\n"));
                return;
            }
        };
        let now = Instant::now();
        let mut done = Vec::new();
        for (pid, root) in entries {
            let Some(r) = self.roots.get(&root) else {
                // Its root's event is not read yet, or was lost: wait a
                // grace for it, then let go.
                let first = *self.unknown.entry(pid).or_insert(now);
                if now.duration_since(first) >= FOLLOW_GRACE {
                    done.push(pid);
                }
                continue;
            };
            self.unknown.remove(&pid);
            if pid != root
                && let Some((rule, facts)) = &r.placed
            {
                let f = Facts {
                    pid: pid as i32,
                    ..facts.clone()
                };
                // A moved child forked after its parent's move is in place
                // already; moving it again changes nothing.
                if apply(&self.table, &self.rules, *rule, &f).is_ok() {
                    self.stats.followed += 1;
                }
            }
            if now.duration_since(r.at) >= FOLLOW_GRACE {
                done.push(pid);
            }
        }
        for p in &done {
            self.unknown.remove(p);
        }
        if let Err(e) = self.watch.release_pending(&done) {
            (self.log)(Level::Warning, &format!("Warning: {e}\n"));
        }
        // Kept one grace longer than their entries: a child reported just
        // before its parent's entry went still finds its root.
        self.roots
            .retain(|_, r| now.duration_since(r.at) < FOLLOW_GRACE * 2);
        self.unknown
            .retain(|_, at| now.duration_since(*at) < FOLLOW_GRACE * 2);
    }

    /// Continues the ancestors of recently continued held processes that
    /// are stopped (see the module docs).
    fn continue_stopped_ancestors(&mut self) {
        let now = Instant::now();
        self.released
            .retain(|(_, at)| now.duration_since(*at) < STOPPED_WATCH);
        for (chain, _) in &self.released {
            for &(pid, start) in chain {
                let Some(st) = procfs::stat(pid) else {
                    continue;
                };
                if st.start == start && st.state == 'T' {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGCONT,
                    );
                    self.stats.continued += 1;
                    (self.log)(
                        Level::Info,
                        &format!(
                            "Continued PID: {pid}, stopped after its child was held at exec\n"
                        ),
                    );
                }
            }
        }
    }

    /// The ancestors of `pid` that may stop in reaction to its hold.
    fn ancestors(pid: i32) -> Vec<(i32, u64)> {
        let me = std::process::id() as i32;
        let mut out = Vec::new();
        let mut cur = pid;
        while out.len() < STOPPED_DEPTH {
            let Some(parent) = procfs::stat(cur).map(|s| s.ppid) else {
                break;
            };
            if parent <= 1 || parent == me {
                break;
            }
            let Some(st) = procfs::stat(parent) else {
                break;
            };
            out.push((parent, st.start));
            cur = parent;
        }
        out
    }

    /// Run until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.poll_once(Duration::from_millis(200));
        }
    }

    fn serve_sticky(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((mut s, _)) = l.accept() {
            let _ = s.set_nonblocking(false);
            let Some(req) = sticky::read_request(&mut s) else {
                (self.log)(
                    Level::Warning,
                    "Warning: 'read' command error: incomplete request or no such process\n",
                );
                continue;
            };
            let pid = req.pid as u32;
            let r = if req.flags == sticky::CANCEL_UNCHANGE {
                self.watch.remove_sticky(pid)
            } else {
                self.watch
                    .add_sticky(pid, req.flags & sticky::UNCHANGE_CHILDREN != 0)
            };
            match r {
                Ok(()) => {
                    sticky::reply(&mut s);
                    (self.log)(
                        Level::Debug,
                        &format!(
                            "Store the unchanged process (PID: {}, FLAGS: {})\n",
                            req.pid, req.flags
                        ),
                    );
                }
                Err(e) => (self.log)(Level::Warning, &format!("Warning: {e}\n")),
            }
        }
    }

    fn prune_sticky(&mut self) {
        self.last_prune = Instant::now();
        if let Ok(pids) = self.watch.sticky() {
            for p in pids {
                if !procfs::alive(p as i32) {
                    let _ = self.watch.remove_sticky(p);
                }
            }
        }
    }

    /// Match and move one process; continue it if it was held. Returns
    /// the rule it was moved by, and what it was matched as.
    fn place(
        &mut self,
        pid: i32,
        uid: u32,
        gid: u32,
        ktime: Option<u64>,
        held: bool,
        exec: Option<procfs::Exec<'_>>,
    ) -> Option<(usize, Facts)> {
        let procname = procfs::procname(pid, exec);
        let placed = match procname {
            Some(name) => self.place_matched(pid, uid, gid, Some(name), ktime),
            None if procfs::alive(pid) => {
                // Not silent: out of file descriptors, say, this process
                // would otherwise stay where it is unnoticed.
                self.stats.failed += 1;
                (self.log)(
                    Level::Warning,
                    &format!(
                        "Cgroup change for PID: {pid}, UID: {uid}, GID: {gid} FAILED! (its /proc \
                         entries could not be read: {})\n",
                        std::io::Error::last_os_error()
                    ),
                );
                None
            }
            None => None,
        };
        if held {
            let chain = Self::ancestors(pid);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGCONT,
            );
            if !chain.is_empty() {
                self.released.push((chain, Instant::now()));
            }
        }
        placed
    }

    fn place_matched(
        &mut self,
        pid: i32,
        uid: u32,
        gid: u32,
        procname: Option<String>,
        ktime: Option<u64>,
    ) -> Option<(usize, Facts)> {
        let facts = Facts {
            pid,
            uid,
            gid,
            procname: procname.clone(),
        };
        let Some(i) = self.rules.find(&facts) else {
            self.stats.unmatched += 1;
            return None;
        };
        let rule = &self.rules.rules[i];
        if rule.ignore != 0 {
            return None;
        }
        let name = procname.unwrap_or_default();
        match apply(&self.table, &self.rules, i, &facts) {
            Ok(()) => {
                self.stats.placed += 1;
                if let Some(t) = ktime {
                    let now = monotonic_ns();
                    self.stats.max_latency_ns =
                        self.stats.max_latency_ns.max(now.saturating_sub(t));
                }
                (self.log)(
                    Level::Info,
                    &format!(
                        "Cgroup change for PID: {pid}, UID: {uid}, GID: {gid}, PROCNAME: {name} OK\n"
                    ),
                );
                self.follow_children(&facts, i, &mut BTreeSet::new());
                Some((i, facts))
            }
            Err(e) => {
                // A process that exited meanwhile is not a failure.
                if !procfs::alive(pid) {
                    return None;
                }
                self.stats.failed += 1;
                let missing = e.code == Ecg::NotExist || e.code == Ecg::ValueNotExist;
                let unsafe_dest = self
                    .rules
                    .with_continuations(i)
                    .map(|r| super::rules::expand(&r.destination, &facts))
                    .find(|d| crate::cgroup::destination_problem(d).is_some());
                let why = if let Some(dest) = unsafe_dest {
                    format!(
                        " (rule {} expands to {dest:?}, which has a `.` or `..` component: refused, \
                         nothing was created)",
                        rule.origin
                    )
                } else if missing {
                    format!(
                        " (rule {} sends it to {}:{}, which does not exist: create the group or fix the rule)",
                        rule.origin,
                        rule.controllers.join(","),
                        rule.destination
                    )
                } else {
                    format!(" ({e}; rule {})", rule.origin)
                };
                (self.log)(
                    Level::Warning,
                    &format!(
                        "Cgroup change for PID: {pid}, UID: {uid}, GID: {gid}, PROCNAME: {name} FAILED! (Error Code: {}){why}\n",
                        e.ret()
                    ),
                );
                None
            }
        }
    }

    /// Children forked before their parent was moved stayed behind: they
    /// get the same rule.
    fn follow_children(&mut self, parent: &Facts, rule: usize, seen: &mut BTreeSet<i32>) {
        for c in procfs::children(parent.pid) {
            if !seen.insert(c) {
                continue;
            }
            let f = Facts {
                pid: c,
                ..parent.clone()
            };
            if apply(&self.table, &self.rules, rule, &f).is_ok() {
                self.follow_children(&f, rule, seen);
            }
        }
    }
}

impl Drop for Engine {
    /// Stop holding and continue anything still held, so that no process
    /// stays stopped after the engine is gone.
    fn drop(&mut self) {
        let _ = self.watch.set_enabled(false);
        let mut events = Vec::new();
        self.watch.read_events(&mut events);
        for ev in events {
            if ev.flags & enforcer_common::exec::EXEC_HELD != 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(ev.pid as i32),
                    nix::sys::signal::Signal::SIGCONT,
                );
            }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds, the kernel's `bpf_ktime_get_ns` clock.
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or(nix::sys::time::TimeSpec::new(0, 0));
    (ts.tv_sec() as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::rules::parse;

    #[test]
    fn the_kernel_filter_covers_every_rule() {
        let mut s = RuleSet::default();
        parse(
            "root cpu a\n@root memory b\n*:sleep cpu c\n*:/usr/bin/python3.11 cpu d\n% cpu e\nnobody * * ignore\n",
            "t",
            &mut s,
        )
        .unwrap();
        let f = filter_for(&s);
        assert!(!f.match_all);
        assert!(f.uids.contains(&0));
        assert!(f.gids.contains(&0));
        assert!(f.names.contains(b"sleep".as_slice()));
        assert!(f.names.contains(b"python3.11".as_slice()));
        assert!(!f.uids.contains(&65534), "ignore rules need no reports");
        let mut s = RuleSet::default();
        parse("*:py* cpu a\n", "t", &mut s).unwrap();
        assert!(filter_for(&s).match_all);
    }
}
