//! TOML policy text: the reader, then validation against a fake host.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| enforcer::fuzzing::toml(text));
