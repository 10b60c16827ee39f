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
    /// Show the host's cgroup layout and check that the eBPF programs load.
    Status,
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
