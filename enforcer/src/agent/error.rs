//! Errors of the agent.

use std::path::PathBuf;

use crate::bpf::BpfError;
use crate::cgroup::CgroupError;
use crate::config::ConfigError;
use crate::plan::PlanError;
use crate::trust::TrustError;

/// Another agent, as far as the kernel tells: the PID holding a lock, and
/// the pin directory and pid file it holds locked.
#[derive(Debug, Clone, Default)]
pub struct OtherAgent {
    pub pid: Option<i32>,
    pub pin_dir: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
}

impl OtherAgent {
    /// ` (PID 42, pin directory /sys/fs/bpf/x, pid file /run/x.pid)`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.pid {
            parts.push(format!("PID {p}"));
        }
        if let Some(d) = &self.pin_dir {
            parts.push(format!("pin directory {}", d.display()));
        }
        if let Some(f) = &self.pid_file {
            parts.push(format!("pid file {}", f.display()));
        }
        if parts.is_empty() {
            // Its PID is in another PID namespace.
            " (in another PID namespace)".to_string()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    /// The command that stops it: read from its own command line when its
    /// PID is known (see `stop_command`), else from the paths it holds.
    fn stop_hint(&self) -> String {
        if self.pid.is_some() {
            return stop_command(self.pid);
        }
        let mut s = String::from("enforcer stop");
        if let Some(f) = &self.pid_file {
            s.push_str(&format!(" --pid-file {}", f.display()));
        }
        if let Some(d) = &self.pin_dir {
            s.push_str(&format!(" --pin-dir {}", d.display()));
        }
        format!("`{}`", crate::escape::human(&s))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The policy cannot be planned here: its own mistake (exit 2) or a
    /// feature this kernel lacks (exit 1), see [`PlanError::is_user_error`].
    /// Boxed: it carries a cgroup error and a span.
    #[error(transparent)]
    Plan(Box<PlanError>),
    /// Boxed: aya's errors are large and every agent function returns this.
    #[error(transparent)]
    Bpf(Box<BpfError>),
    #[error(
        "eBPF accounting needs a cgroup2 mount (none in /proc/self/mountinfo); mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`"
    )]
    NoCgroup2,
    #[error(
        "could not serve metrics on {addr}: {source}; choose another address with --metrics ADDR:PORT"
    )]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{given} is valid, but the agent runs {running}: `reload` makes it re-read that file, \
         so nothing was signalled. Copy the new policy over it (the agent also reloads on \
         its own when the file changes), or restart the agent with --config {given}"
    )]
    OtherPolicy { given: PathBuf, running: PathBuf },
    #[error(
        "this kernel cannot run enforcer's counting programs ({0}); enforcer needs \
         CONFIG_CGROUP_BPF and cgroup_skb/sock_addr programs (`enforcer status` shows what loads)"
    )]
    NoAccounting(String),
    #[error("group {group:?}: {source}")]
    InGroup {
        group: String,
        #[source]
        source: Box<BpfError>,
    },
    #[error("no agent is running (nothing holds the lock of {0})")]
    NotRunning(PathBuf),
    #[error(
        "another agent{} is running (it holds the lock of the {what} {path}); stop it \
         first with {}, or give this one its own --pid-file and --pin-dir",
        pid.map(|p| format!(" (PID {p})")).unwrap_or_default(),
        stop_command(*pid)
    )]
    AlreadyRunning {
        pid: Option<i32>,
        what: &'static str,
        path: PathBuf,
    },
    #[error(
        "refusing to use the {what} {path}: {why}; it must be a regular file of root's \
         (remove it, or choose another path)"
    )]
    UnsafeFile {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    /// A file the agent manages (pid file, audit log, arbiter's record), or
    /// a directory on the way to it, that someone other than root could
    /// write or replace.
    #[error("refusing to use the {what}: {source}")]
    Untrusted {
        what: &'static str,
        #[source]
        source: TrustError,
    },
    /// The policy file, or a directory or symlink on the way to it, that
    /// someone other than root could write: they would choose what the agent
    /// does as root. Bad input (exit 2).
    #[error(
        "refusing to use the policy file: {0} (the agent acts on it as root, so the file, \
         every directory on the way to it and every symlink must be root's alone)"
    )]
    PolicyUntrusted(#[source] TrustError),
    #[error(
        "{} is managed by another agent{}: one agent per group, or both would \
         enforce and count it. Stop that agent first ({}), or leave the \
         group out of this one's policy",
        if group == "/" { "the cgroup2 root (observe mode)".to_string() } else { format!("group {group:?}") },
        other.describe(),
        other.stop_hint()
    )]
    GroupClaimed { group: String, other: OtherAgent },
    #[error("permission denied: {action} needs root; run it as root (e.g. with sudo)")]
    NeedsRoot { action: &'static str },
    #[error(
        "the agent (PID {pid}) did not exit within {secs} s of SIGTERM; nothing was \
         unpinned. Try again, or end it with `kill -9 {pid}` and run `enforcer stop` again"
    )]
    StillRunning { pid: i32, secs: u64 },
}

impl From<PlanError> for AgentError {
    fn from(e: PlanError) -> Self {
        AgentError::Plan(Box::new(e))
    }
}

impl From<BpfError> for AgentError {
    fn from(e: BpfError) -> Self {
        AgentError::Bpf(Box::new(e))
    }
}

/// A refusal of [`crate::trust`] about the agent's `what` (an I/O error
/// stays one).
pub(super) fn untrusted(what: &'static str) -> impl Fn(TrustError) -> AgentError {
    move |e| match e {
        TrustError::Io { op, path, source } => AgentError::Io { op, path, source },
        source => AgentError::Untrusted { what, source },
    }
}

impl AgentError {
    pub fn is_user_error(&self) -> bool {
        match self {
            AgentError::Config(e) => !matches!(e, ConfigError::Io { .. }),
            AgentError::Cgroup(e) => e.is_user_error(),
            AgentError::Plan(e) => e.is_user_error(),
            AgentError::Metrics { .. }
            | AgentError::OtherPolicy { .. }
            | AgentError::PolicyUntrusted(_) => true,
            _ => false,
        }
    }
}

/// The command that stops the agent `pid`, with the `--pid-file` and
/// `--pin-dir` it runs with (read from its command line; plain `enforcer
/// stop` knows only the defaults), e.g. ``"`enforcer stop --pid-file
/// /tmp/a.pid --pin-dir /sys/fs/bpf/x`"``.
fn stop_command(pid: Option<i32>) -> String {
    let args = pid
        .and_then(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
        .map(|raw| {
            raw.split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        });
    let Some(args) = args else {
        return "`enforcer stop` with the --pid-file and --pin-dir it runs with".into();
    };
    let value = |flag: &str| {
        args.iter().enumerate().find_map(|(i, a)| {
            if a == flag {
                args.get(i + 1).cloned()
            } else {
                a.strip_prefix(flag)?.strip_prefix('=').map(str::to_string)
            }
        })
    };
    let mut cmd = "enforcer stop".to_string();
    for (flag, default) in [
        ("--pid-file", super::DEFAULT_PID_FILE),
        ("--pin-dir", crate::bpf::DEFAULT_PIN_DIR),
    ] {
        if let Some(v) = value(flag).filter(|v| v != default) {
            cmd.push_str(&format!(" {flag} {}", shell_word(&v)));
        }
    }
    format!("`{}`", crate::escape::human(&cmd))
}

/// `s` as one shell word: as it is when plain, else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_command_names_this_process_flags() {
        // The test binary runs with neither flag: the defaults, said plainly.
        assert_eq!(
            stop_command(Some(std::process::id() as i32)),
            "`enforcer stop`"
        );
        assert!(stop_command(None).contains("--pid-file and --pin-dir it runs with"));
        assert_eq!(shell_word("/tmp/a b'c"), r"'/tmp/a b'\''c'");
    }
}
