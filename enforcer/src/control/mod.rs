//! Control across groups: the [`arbiter`] enforces priorities from measured
//! usage and pressure (the per-group `when` rules live in `enforce/`).

pub mod arbiter;
