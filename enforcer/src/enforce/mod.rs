//! Enforcement in userspace: the closed-loop rules engine and the host effects
//! it drives. Kernel-side rules (network, budgets, syscalls) live in `bpf`.

pub mod effects;
pub mod engine;

pub use effects::{HostEffects, RateControl};
pub use engine::{Decision, Effects, Engine, Undo, metric_value};
