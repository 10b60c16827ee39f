//! A policy file's raw bytes (UTF-8 check, format sniffing, both readers).
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| enforcer::fuzzing::policy(bytes));
