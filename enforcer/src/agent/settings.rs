//! The agent's settings: command-line flags over the policy's `[agent]` table over
//! built-in defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::OnExit;
use crate::plan::Plan;

pub const DEFAULT_METRICS: &str = "127.0.0.1:9750";
pub const DEFAULT_PID_FILE: &str = "/run/enforcer.pid";
pub const DEFAULT_AUDIT_LOG: &str = "/var/log/enforcer/audit.jsonl";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// What the command line says; `None` leaves the choice to the policy file.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Policy whose groups are created, limited, accounted and enforced; None
    /// means observe mode.
    pub policy: Option<PathBuf>,
    /// Also attach counting at the cgroup2 root and count every group.
    pub observe: bool,
    pub metrics: Option<SocketAddr>,
    pub no_metrics: bool,
    pub interval: Option<Duration>,
    pub pin_dir: PathBuf,
    pub audit_log: Option<PathBuf>,
    /// Group (gid) that may read the audit log (mode 0640); root only without.
    pub audit_group: Option<u32>,
    /// Sizes of the counting maps.
    pub capacity: crate::bpf::Capacity,
    pub on_exit: Option<OnExit>,
    /// Print a live per-group table every interval.
    pub summary: bool,
    pub summary_rows: usize,
    pub pid_file: PathBuf,
    /// Place the policy's groups below this group (overrides `[agent] parent`).
    pub parent: Option<String>,
    /// Groups deeper than this are summed into their ancestor in the metrics.
    pub metrics_depth: Option<usize>,
    /// At most this many groups (besides the policy's) in the metrics.
    pub metrics_max_groups: Option<usize>,
    /// Rotate the audit log past this size.
    pub audit_max_size: Option<u64>,
    /// Ends the agent as SIGTERM does (the embedded view's `q`).
    pub stop: Option<StopHandle>,
}

/// Asks a running [`run`](super::run) to end cleanly, from another thread.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(std::sync::Arc<tokio::sync::Notify>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.notify_one();
    }

    pub(super) async fn stopped(&self) {
        self.0.notified().await;
    }
}

/// Settings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub metrics: Option<SocketAddr>,
    pub interval: Duration,
    pub audit_log: PathBuf,
    pub audit_group: Option<u32>,
    pub on_exit: OnExit,
    /// Whether `on_exit` was chosen (flag or policy) rather than defaulted.
    pub on_exit_chosen: bool,
    pub observe: bool,
    /// Which groups the metrics export.
    pub export: crate::report::Selection,
    pub audit_max_size: u64,
}

pub(super) fn resolve(opts: &AgentOptions, policy: Option<&Plan>) -> Settings {
    let file = policy.and_then(|p| p.agent.as_ref());
    let metrics = if opts.no_metrics {
        None
    } else {
        Some(
            opts.metrics
                .or_else(|| file.and_then(|a| a.metrics.as_ref()).map(|m| m.value))
                .unwrap_or_else(|| {
                    DEFAULT_METRICS
                        .parse()
                        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 9750)))
                }),
        )
    };
    Settings {
        metrics,
        interval: opts
            .interval
            .or_else(|| file.and_then(|a| a.interval.as_ref()).map(|i| i.value))
            .unwrap_or(DEFAULT_INTERVAL),
        audit_log: opts
            .audit_log
            .clone()
            .or_else(|| {
                file.and_then(|a| a.audit_log.as_ref())
                    .map(|p| p.value.clone())
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_LOG)),
        audit_group: opts
            .audit_group
            .or_else(|| file.and_then(|a| a.audit_group.as_ref()).map(|g| g.value)),
        // Observe mode enforces nothing: a clean exit takes its counting
        // programs off again unless told to keep them. A policy keeps its
        // rules enforced while no agent runs (fail closed).
        on_exit: opts
            .on_exit
            .or_else(|| file.and_then(|a| a.on_exit.as_ref()).map(|o| o.value))
            .unwrap_or(if policy.is_none() {
                OnExit::Detach
            } else {
                OnExit::Keep
            }),
        on_exit_chosen: opts.on_exit.is_some() || file.is_some_and(|a| a.on_exit.is_some()),
        export: crate::report::Selection {
            depth: opts
                .metrics_depth
                .or_else(|| {
                    file.and_then(|a| a.metrics_depth.as_ref())
                        .map(|d| d.value as usize)
                })
                .unwrap_or(crate::report::DEFAULT_DEPTH),
            max_groups: opts
                .metrics_max_groups
                .or_else(|| {
                    file.and_then(|a| a.metrics_max_groups.as_ref())
                        .map(|d| d.value as usize)
                })
                .unwrap_or(crate::report::DEFAULT_MAX_GROUPS),
            always: Default::default(),
        },
        audit_max_size: opts
            .audit_max_size
            .or_else(|| {
                file.and_then(|a| a.audit_max_size.as_ref())
                    .map(|d| d.value)
            })
            .unwrap_or(super::audit::DEFAULT_AUDIT_MAX_SIZE),
        observe: policy.is_none()
            || opts.observe
            || file
                .and_then(|a| a.observe.as_ref())
                .is_some_and(|o| o.value),
    }
}
