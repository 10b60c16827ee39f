//! Why a policy cannot be planned. Every variant about the policy's contents
//! names the place in the file; [`PlanError::is_user_error`] separates the
//! policy's mistakes (exit 2, nothing changed) from what this host or kernel
//! cannot do (exit 1).

use crate::bpf::BpfError;
use crate::cgroup::CgroupError;
use crate::config::ConfigError;

use crate::words::Span;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read, or does not follow the grammar.
    #[error(transparent)]
    Policy(#[from] ConfigError),

    /// The host refuses what the policy asks at `span` (an unknown controller
    /// or key, a value out of range, a CPU it does not have).
    #[error("{span}: {source}")]
    Host {
        span: Span,
        /// Boxed: cgroup errors are large and this is on every plan path.
        #[source]
        source: Box<CgroupError>,
    },

    /// `--parent` on the command line names no valid group.
    #[error("--parent: {0}")]
    Parent(Box<CgroupError>),

    /// The policy asks for something no kernel rule table can hold as written
    /// (too many overlapping address rules, `deny` of a syscall no hook
    /// covers); the message says what to change.
    #[error("{span}: {message}")]
    Rule { span: Span, message: String },

    /// A valid policy that this kernel cannot enforce: the program a rule needs
    /// is refused here. The input is fine; the host lacks a feature (exit 1).
    #[error("{span}: {message}")]
    Unenforceable { span: Span, message: String },

    /// The kernel's features could not be probed at all. Boxed: aya's errors
    /// are large.
    #[error(transparent)]
    Probe(Box<BpfError>),
}

impl PlanError {
    /// True when the policy is at fault (exit 2, host untouched).
    pub fn is_user_error(&self) -> bool {
        match self {
            PlanError::Policy(e) => !matches!(e, ConfigError::Io { .. }),
            PlanError::Host { source, .. } => source.is_user_error(),
            PlanError::Parent(e) => e.is_user_error(),
            PlanError::Rule { .. } => true,
            PlanError::Unenforceable { .. } | PlanError::Probe(_) => false,
        }
    }

    /// Where in the policy the problem is, if it is about a place in it.
    pub fn span(&self) -> Option<&Span> {
        match self {
            PlanError::Policy(e) => e.span(),
            PlanError::Host { span, .. }
            | PlanError::Rule { span, .. }
            | PlanError::Unenforceable { span, .. } => Some(span),
            PlanError::Parent(_) | PlanError::Probe(_) => None,
        }
    }

    pub(crate) fn host(span: &Span, source: CgroupError) -> Self {
        PlanError::Host {
            span: span.clone(),
            source: Box::new(source),
        }
    }
}
