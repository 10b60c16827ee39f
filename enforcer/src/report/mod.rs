//! Rendering group reports: a human table, JSON, Prometheus exposition.

mod prometheus;
mod table;

pub use prometheus::{MetricsState, render as render_metrics};
pub use table::table;
