//! Every value parser: sizes, rates, durations, budgets, thresholds, network
//! rules, modes, actions, group paths, CPU lists, owners, keys and values.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| enforcer::fuzzing::values(text));
