//! Rendering group reports: a human table, JSON, Prometheus exposition.

mod exposition;
mod prometheus;
mod rollup;
mod table;

pub use crate::units::human_bytes;
pub use exposition::{Format, to_text_004};
pub use prometheus::{
    AgentMetrics, FIXED_SYSCALLS, MetricsState, RulesLoaded, render as render_metrics,
    syscall_labels,
};
pub use rollup::{DEFAULT_DEPTH, DEFAULT_MAX_GROUPS, Rollup, Selection};
pub use table::{fit, table};
