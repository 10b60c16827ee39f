//! Command-line syntax: flat verbs with libcgroup's option spelling.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "enforcer",
    version,
    about = "Create and limit cgroups (as libcgroup's tools do), count and enforce with eBPF",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The agent: account every group's traffic and syscalls in the kernel and
    /// report them. Without --config it observes the whole host (counts only).
    Run(RunArgs),
    /// Ask the running agent to re-read its policy (as SIGHUP does). With
    /// --config the file is validated here first, and an invalid one is refused.
    Reload {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Show what reloading would change (against the rules the agent
        /// enforces now); signal nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: the changes as JSON.
        #[arg(long, requires = "dry_run")]
        json: bool,
        #[arg(long, default_value = crate::agent::DEFAULT_PID_FILE)]
        pid_file: PathBuf,
    },
    /// Stop a running agent, detach its programs and remove its pins.
    Stop {
        #[arg(long, default_value = crate::bpf::DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        #[arg(long, default_value = crate::agent::DEFAULT_PID_FILE)]
        pid_file: PathBuf,
    },
    /// Per-group counters from the pinned kernel maps (the agent must have run).
    Stats {
        /// Groups to show (paths below the cgroup2 root); all when none.
        groups: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Refresh every SECS seconds, with rates.
        #[arg(long, value_name = "SECS")]
        watch: Option<f64>,
        /// Rows in the table.
        #[arg(long, default_value_t = 40)]
        rows: usize,
        #[arg(long, default_value = crate::bpf::DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
        /// The agent's pid file (what its arbiter yields is kept beside it).
        #[arg(long, default_value = crate::agent::DEFAULT_PID_FILE)]
        pid_file: PathBuf,
    },
    /// Show the host's cgroup layout and which eBPF features this kernel
    /// allows (each program loaded through the verifier; refusals with the
    /// verifier's last lines). Exits 1 if enforcer cannot count at all here.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Create groups (cgcreate).
    Create {
        /// CONTROLLERS:PATH, e.g. memory,cpu:foo; `*` for every controller.
        #[arg(short = 'g', required = true, value_name = "CONTROLLERS:PATH")]
        groups: Vec<String>,
        /// Owner of the tasks files (cgroup.procs, tasks).
        #[arg(short = 't', value_name = "UID:GID")]
        task: Option<String>,
        /// Owner of the group directory and its other files.
        #[arg(short = 'a', value_name = "UID:GID")]
        admin: Option<String>,
        /// Mode of the group directory (octal).
        #[arg(short = 'd', long = "dperm", value_name = "MODE")]
        dperm: Option<String>,
        /// Mode of the group's files (octal).
        #[arg(short = 'f', long = "fperm", value_name = "MODE")]
        fperm: Option<String>,
        /// Mode of the tasks files (octal).
        #[arg(short = 's', long = "tperm", value_name = "MODE")]
        tperm: Option<String>,
    },
    /// Set controller values (cgset). Keys in v1 or v2 spelling.
    Set {
        #[arg(short = 'r', value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// Copy every setting of this group instead.
        #[arg(long = "copy-from", value_name = "PATH", conflicts_with = "settings")]
        copy_from: Option<String>,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Read controller values and usage (cgget).
    Get {
        #[arg(short = 'r', value_name = "KEY")]
        keys: Vec<String>,
        #[arg(short = 'g', value_name = "CONTROLLER")]
        controllers: Vec<String>,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside groups (cgexec); it replaces enforcer, keeping the PID.
    Exec {
        #[arg(short = 'g', required = true, value_name = "CONTROLLERS:PATH")]
        groups: Vec<String>,
        #[arg(required = true, last = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Move running processes into groups (cgclassify).
    Classify {
        #[arg(short = 'g', required = true, value_name = "CONTROLLERS:PATH")]
        groups: Vec<String>,
        #[arg(required = true, value_name = "PID")]
        pids: Vec<i32>,
    },
    /// Delete groups (cgdelete) from every controller named.
    Delete {
        /// Delete subgroups too.
        #[arg(short = 'r', long)]
        recursive: bool,
        #[arg(short = 'g', value_name = "CONTROLLERS:PATH")]
        groups: Vec<String>,
        /// CONTROLLERS:PATH given without -g, as cgdelete also accepts.
        #[arg(value_name = "CONTROLLERS:PATH")]
        positional: Vec<String>,
    },
    /// List groups (lscgroup).
    List {
        #[arg(value_name = "CONTROLLERS:PATH")]
        filter: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show which groups a process is in (ps -o cgroup).
    Which {
        pid: i32,
        #[arg(long)]
        json: bool,
    },
    /// Freeze every process in a group; returns once the kernel reports it frozen.
    Freeze { path: String },
    /// Thaw a frozen group.
    Thaw { path: String },
    /// Signal every process in a group and its subgroups.
    Kill {
        /// Signal name or number (default KILL).
        #[arg(short = 's', long = "signal", default_value = "KILL")]
        signal: String,
        path: String,
    },
    /// Create and configure groups from a cgconfig.conf or enforcer TOML file
    /// (cgconfigparser). Validates everything first; rolls back on failure.
    Apply {
        file: PathBuf,
        /// Print what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Policy file (TOML, or cgconfig.conf): its groups are created, limited,
    /// accounted and enforced. Without it: observe mode over the whole host.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// With --config, also account every other group (attach at the cgroup2 root).
    #[arg(long)]
    pub observe: bool,
    /// Prometheus endpoint address [policy: agent.metrics; default 127.0.0.1:9750].
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Do not serve metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Collection and control-loop period, e.g. 1s, 100ms [policy: agent.interval].
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<std::time::Duration>,
    #[arg(long, default_value = crate::bpf::DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
    /// JSON-lines audit log [policy: agent.audit_log; default /var/log/enforcer/audit.jsonl].
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Let this group read the audit log (mode 0640); without it, root only
    /// (0600) [policy: agent.audit_group].
    #[arg(long, value_name = "GROUP", value_parser = parse_group)]
    pub audit_group: Option<u32>,
    /// keep: programs and rules stay enforced after the agent exits (fail closed);
    /// detach: a clean stop removes everything [policy: agent.on_exit; default keep].
    #[arg(long, value_parser = parse_on_exit)]
    pub on_exit: Option<crate::config::OnExit>,
    /// Print a live per-group table every interval.
    #[arg(long)]
    pub summary: bool,
    /// Syscall series per group in the metrics (bounds cardinality).
    #[arg(long, default_value_t = 10)]
    pub top_syscalls: usize,
    #[arg(long, default_value = crate::agent::DEFAULT_PID_FILE)]
    pub pid_file: PathBuf,
    /// How many groups the counting maps hold (none is preallocated: a
    /// ceiling, not a cost) [default 65536].
    #[arg(long, value_name = "N")]
    pub max_groups: Option<u32>,
    /// How many (group, syscall) pairs the syscall counters hold [default 1048576].
    #[arg(long, value_name = "N")]
    pub max_syscall_keys: Option<u32>,
    /// Create the policy's groups below this group, a subtree delegated to
    /// enforcer (e.g. `system.slice/enforcer.service`) [policy: agent.parent].
    #[arg(long, value_name = "PATH")]
    pub parent: Option<String>,
}

/// A group number, or a name that exists on this host, as its gid.
fn parse_group(s: &str) -> Result<u32, String> {
    if let Ok(gid) = s.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(s) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        _ => Err(format!(
            "{s:?} is not a group on this host: name one from /etc/group, such as adm"
        )),
    }
}

fn parse_on_exit(s: &str) -> Result<crate::config::OnExit, String> {
    match s {
        "keep" => Ok(crate::config::OnExit::Keep),
        "detach" => Ok(crate::config::OnExit::Detach),
        _ => Err(format!("{s:?}: expected keep or detach")),
    }
}

/// A positive duration as the policy file writes it (`100ms`, `1s`, `1m30s`).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    match crate::units::parse_duration(s)? {
        d if d.is_zero() => Err(format!("duration {s:?} must be positive")),
        d => Ok(d),
    }
}
