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
    /// Show the cgroup layout, the kernel's eBPF features and what is missing.
    ///
    /// Lists the host's cgroup hierarchies, which eBPF features this kernel
    /// allows (each program loaded through the verifier; refusals with the
    /// verifier's last lines) and a check of what enforcer needs (bpffs, BTF,
    /// BPF-LSM, cgroup2, delegation, capabilities) with a fix per problem.
    /// Exits 1 if something needed (by --config's policy, or for counting at
    /// all) cannot load.
    Status {
        #[arg(long)]
        json: bool,
        /// Check what this policy needs, too.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(long, default_value = crate::bpf::DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
    },
    /// A live, sortable table of groups (as systemd-cgtop).
    ///
    /// Traffic, syscalls, memory, CPU, denials, drops and lost events per
    /// group, rates and totals, read from the pinned maps, with or without a
    /// running agent.
    /// Keys: arrows or j/k move; n e i y m c d p l (or 1-9) sort by a column,
    /// the same key again reverses (r too, s cycles); / filters by path, unit,
    /// container or pod; t toggles the tree, + and - change its depth; Enter
    /// shows a group's detail (top syscalls, denials, drops, limits, budget
    /// left); q quits. Colour follows NO_COLOR. Not on a terminal, or with
    /// --once, one plain table without escape codes.
    Top(TopArgs),
    /// Print decision and OOM events from the audit log; -f follows it.
    ///
    /// Lines for people (UTC time, kind, group, pid, details) or, with
    /// --json, the log's own JSON lines. Following survives the log's
    /// rotation.
    Events {
        /// Only these groups (and their subgroups).
        groups: Vec<String>,
        /// Keep printing new events as they are written (across rotations).
        #[arg(short = 'f', long)]
        follow: bool,
        /// One JSON object per line, as the audit log has them.
        #[arg(long)]
        json: bool,
        /// Only the last N events before following [default: all].
        #[arg(short = 'n', long, value_name = "N")]
        lines: Option<usize>,
        #[arg(long, default_value = crate::agent::DEFAULT_AUDIT_LOG)]
        audit_log: PathBuf,
    },
    /// Print a shell completion script.
    ///
    /// For example `enforcer completions bash >
    /// /etc/bash_completion.d/enforcer`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Show the manual page of enforcer or of one verb.
    ///
    /// Shown with man(1) on a terminal, roff into a pipe; --out-dir writes
    /// every page there (section 8).
    Man {
        verb: Option<String>,
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
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
    /// Make this binary answer as libcgroup's tools (cgget, cgset, cgexec,
    /// cgrulesengd, ...) through symlinks, or remove those links.
    Compat {
        #[command(subcommand)]
        action: CompatAction,
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
        /// With --dry-run: judge the policy's syscall names for nodes of
        /// this architecture (x86_64 or amd64, aarch64 or arm64) instead of
        /// this host's; this kernel's features are then not checked.
        #[arg(long, requires = "dry_run", value_parser = parse_arch)]
        arch: Option<crate::arch::Arch>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CompatAction {
    /// Link each libcgroup tool name to this binary (PREFIX/bin, PREFIX/sbin).
    Install {
        #[arg(long, default_value = "/usr/local", value_name = "DIR")]
        prefix: PathBuf,
    },
    /// Remove the links that point at enforcer (nothing else).
    Uninstall {
        #[arg(long, default_value = "/usr/local", value_name = "DIR")]
        prefix: PathBuf,
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
    /// detach: a clean stop removes everything [policy: agent.on_exit; default
    /// keep with a policy, detach in observe mode].
    #[arg(long, value_parser = parse_on_exit, conflicts_with = "keep")]
    pub on_exit: Option<crate::config::OnExit>,
    /// Leave the counting programs attached after a clean exit of observe
    /// mode (same as --on-exit keep).
    #[arg(long)]
    pub keep: bool,
    /// Print a live per-group table every interval.
    #[arg(long)]
    pub summary: bool,
    /// Groups deeper than this are summed into their ancestor in the metrics
    /// [policy: agent.metrics_depth; default 3].
    #[arg(long, value_name = "N")]
    pub metrics_depth: Option<usize>,
    /// At most N groups besides the policy's get metrics [policy:
    /// agent.metrics_max_groups; default 500].
    #[arg(long, value_name = "N")]
    pub metrics_max_groups: Option<usize>,
    /// Rotate the audit log past this size, e.g. 100M [policy:
    /// agent.audit_max_size; default 100M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub audit_max_size: Option<u64>,
    #[arg(long, default_value = crate::agent::DEFAULT_PID_FILE)]
    pub pid_file: PathBuf,
    /// How many groups the counting maps hold (none is preallocated: a
    /// ceiling, not a cost) [default 65536].
    #[arg(long, value_name = "N")]
    pub max_groups: Option<u32>,
    /// How many (group, syscall) pairs the syscall counters hold [default 1048576].
    #[arg(long, value_name = "N")]
    pub max_syscall_keys: Option<u32>,
    /// How many descendants of each policy group (of the root in observe
    /// mode) get counters of their own; the rest are counted in their
    /// nearest counted ancestor, so no subtree can fill the maps [default 4096].
    #[arg(long, value_name = "N")]
    pub max_subgroups: Option<u32>,
    /// Create the policy's groups below this group, a subtree delegated to
    /// enforcer (e.g. `system.slice/enforcer-groups.service`) [policy: agent.parent].
    #[arg(long, value_name = "PATH")]
    pub parent: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct TopArgs {
    /// Print one plain table and exit (also when stdout is not a terminal).
    #[arg(long)]
    pub once: bool,
    /// With --once: the rows as JSON.
    #[arg(long)]
    pub json: bool,
    /// Refresh period, e.g. 1s, 500ms.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub interval: std::time::Duration,
    /// Start in the tree view, this deep (0: the flat table).
    #[arg(long, value_name = "DEPTH", default_value_t = 0)]
    pub tree: usize,
    /// Initial sort column: group, egress, ingress, syscalls, memory, cpu,
    /// denied, dropped, lost.
    #[arg(long, default_value = "egress")]
    pub sort: String,
    /// Initial filter (a substring of the group or its unit/container/pod).
    #[arg(long)]
    pub filter: Option<String>,
    /// Rows in the plain table.
    #[arg(long, default_value_t = 40)]
    pub rows: usize,
    #[arg(long, default_value = crate::bpf::DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
}

/// A size with binary units (`100M`).
fn parse_arch(s: &str) -> Result<crate::arch::Arch, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<u64, String> {
    match crate::units::parse_size(s)? {
        n if n >= 4096 => Ok(n),
        _ => Err(format!("{s:?}: give a size of at least 4K, such as 100M")),
    }
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
