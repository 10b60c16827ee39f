//! Programs that do nothing, as baselines for benchmarks (see xtask bench accounting).
