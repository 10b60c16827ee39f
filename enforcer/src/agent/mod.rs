//! The agent (`enforcer run`): applies the policy's groups, loads and attaches
//! the counting programs, and reports usage until stopped.
//!
//! Maps and links are pinned under the pin directory, so a crash or SIGKILL of
//! the agent loses no count and leaves accounting attached; the next start adopts
//! what is pinned instead of attaching twice. `enforcer stop` detaches and unpins.

mod audit;
mod error;
mod http;

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use error::AgentError;

use crate::bpf::{Kernel, SyscallScope};
use crate::cgroup::{Cgroups, GroupPath};
use crate::collect::{CgroupIndex, Collector};
use crate::report::MetricsState;

pub const DEFAULT_METRICS: &str = "127.0.0.1:9750";
pub const DEFAULT_PID_FILE: &str = "/run/enforcer.pid";

#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Policy whose groups are created and accounted; None means observe mode.
    pub policy: Option<PathBuf>,
    /// Attach at the cgroup2 root and count every group on the host.
    pub observe: bool,
    pub metrics: Option<SocketAddr>,
    pub interval: Duration,
    pub pin_dir: PathBuf,
    pub audit_log: Option<PathBuf>,
    /// Print a live per-group table every interval.
    pub summary: bool,
    pub summary_rows: usize,
    pub top_syscalls: usize,
    pub pid_file: PathBuf,
}

struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Groups to attach to: the policy's groups in the cgroup2 tree, or its root.
fn attach_points(opts: &AgentOptions, cg: &Cgroups, v2: usize) -> Result<Vec<PathBuf>, AgentError> {
    let Some(file) = &opts.policy else {
        return Ok(vec![cg.hierarchy(v2).mount_point.clone()]);
    };
    let policy = crate::config::load(file)?;
    let plan = cg.plan(&policy)?;
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    let applied = cg.apply(&plan)?;
    for d in &applied.created {
        tracing::info!(dir = %d.display(), "created");
    }
    let mut points: Vec<PathBuf> = plan.groups.iter().map(|g| cg.dir(v2, &g.path)).collect();
    if opts.observe {
        points.push(cg.hierarchy(v2).mount_point.clone());
    }
    Ok(points)
}

fn write_pid_file(path: &Path) {
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        tracing::warn!(path = %path.display(), "could not write pid file: {e}");
    }
}

/// Run until SIGINT or SIGTERM. Pins stay in place on exit.
pub async fn run(opts: AgentOptions) -> Result<(), AgentError> {
    let cg = Cgroups::discover()?;
    let v2 = cg.v2().ok_or(AgentError::NoCgroup2)?;
    let points = attach_points(&opts, &cg, v2)?;
    let mut kernel = Kernel::open(&opts.pin_dir)?;
    let mut ids = Vec::new();
    for p in &points {
        let n = kernel.attach_group(p)?;
        ids.push(crate::bpf::cgroup_id(p)?);
        tracing::info!(group = %p.display(), new_links = n, "accounting attached");
    }
    let n = kernel.attach_tracing()?;
    tracing::info!(new_links = n, "syscall and OOM tracing attached");
    let observe = opts.policy.is_none() || opts.observe;
    kernel.set_syscall_scope(if observe {
        SyscallScope::All
    } else {
        SyscallScope::Groups(ids.clone())
    })?;

    let state = Arc::new(RwLock::new(MetricsState {
        top_syscalls: opts.top_syscalls,
        ..Default::default()
    }));
    if let Some(addr) = opts.metrics {
        let listener = http::bind(addr)
            .await
            .map_err(|source| AgentError::Metrics { addr, source })?;
        tracing::info!(%addr, "serving metrics at http://{addr}/metrics");
        tokio::spawn(http::serve(listener, state.clone()));
    }
    write_pid_file(&opts.pid_file);
    let mut audit = audit::Audit::open(opts.audit_log.as_deref())?;
    let mut collector = Collector::new(CgroupIndex::new(&cg.hierarchy(v2).mount_point));
    // SAFETY: the ring buffer fd belongs to `kernel`, which is declared before
    // `events` and so outlives it; nothing closes or replaces the fd meanwhile.
    let events = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            Fd(kernel.events_fd()),
            tokio::io::Interest::READABLE,
        )
    }
    .map_err(|e| AgentError::Io {
        op: "polling",
        path: opts.pin_dir.clone(),
        source: std::io::Error::from(e),
    })?;
    let mut tick = tokio::time::interval(opts.interval);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| AgentError::Io {
            op: "installing a SIGTERM handler for",
            path: PathBuf::from("enforcer"),
            source,
        })?;
    let mut event_count = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let snap = kernel.snapshot()?;
                let c = collector.collect(&snap, &cg);
                if !c.vanished.is_empty() {
                    tracing::debug!(count = c.vanished.len(), "reclaiming counters of deleted groups");
                    kernel.forget(&c.vanished)?;
                }
                if opts.summary {
                    print!("\x1b[2J\x1b[H{}", crate::report::table(&c.groups, opts.summary_rows));
                }
                if let Ok(mut s) = state.write() {
                    s.groups = c.groups;
                    s.events = event_count;
                }
            }
            ready = events.readable() => {
                if let Ok(mut guard) = ready {
                    for e in kernel.drain_events() {
                        // The ring buffer sees every OOM kill on the host; outside
                        // observe mode only the policy's groups are ours to report.
                        if !observe && !ids.contains(&e.cgroup_id()) {
                            continue;
                        }
                        let label = collector.index().label(e.cgroup_id()).unwrap_or("?").to_string();
                        audit.record(&e, &label);
                        event_count += 1;
                    }
                    guard.clear_ready();
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    let _ = std::fs::remove_file(&opts.pid_file);
    tracing::info!("agent stopped; programs and counters stay pinned (enforcer stop removes them)");
    Ok(())
}

/// `enforcer stop`: end a running agent, then detach and unpin everything.
pub fn stop(pin_dir: &Path, pid_file: &Path) -> Result<usize, AgentError> {
    if let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        let p = nix::unistd::Pid::from_raw(pid);
        if nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM).is_ok() {
            for _ in 0..100 {
                if nix::sys::signal::kill(p, None).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_file(pid_file);
    }
    Ok(crate::bpf::unpin_all(pin_dir)?)
}

/// Labels for the groups a user names on the command line (`stats web db`).
pub fn wanted(groups: &[String]) -> Result<Vec<String>, AgentError> {
    groups
        .iter()
        .map(|g| {
            let p = GroupPath::parse(g)?;
            Ok(if p.is_root() {
                "/".to_string()
            } else {
                p.as_str().to_string()
            })
        })
        .collect()
}
