//! Errors of the agent.

use std::path::PathBuf;

use crate::bpf::BpfError;
use crate::cgroup::CgroupError;
use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
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
    #[error("no agent is running (no live pid in {0})")]
    NotRunning(PathBuf),
}

impl From<BpfError> for AgentError {
    fn from(e: BpfError) -> Self {
        AgentError::Bpf(Box::new(e))
    }
}

impl AgentError {
    pub fn is_user_error(&self) -> bool {
        match self {
            AgentError::Config(e) => !matches!(e, ConfigError::Io { .. }),
            AgentError::Cgroup(e) => e.is_user_error(),
            AgentError::Metrics { .. } => true,
            _ => false,
        }
    }
}
