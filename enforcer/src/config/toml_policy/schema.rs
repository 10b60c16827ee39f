//! The JSON Schema of each kind of value in the TOML policy, named by the
//! typed tables in `file.rs` (`#[schemars(schema_with = ...)]`); the whole
//! schema and `docs/policy.md` are made in `reference.rs`. Both are
//! committed (editors such as taplo / Even Better TOML read the schema:
//! `#:schema ./policy.schema.json` or their settings); a test fails when
//! either is stale, with the command that rewrites them.

use schemars::{Schema, SchemaGenerator, json_schema};

use crate::counters::Metric;

// ----- schemas of leaves judged by the conversions --------------------------

fn strings(names: &[&str]) -> Schema {
    json_schema!({ "type": "string", "enum": names })
}

pub(super) fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^\\s*(0|([0-9]+(\\.[0-9]+)?\\s*(ms|s|m|h|d)\\s*)+)$",
        "examples": ["100ms", "5s", "1m30s", "1d"]
    })
}

pub(super) fn on_exit(_: &mut SchemaGenerator) -> Schema {
    strings(&["keep", "detach"])
}

pub(super) fn priority(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            { "type": "string", "enum": ["high", "normal", "low"] },
            { "type": "integer", "minimum": 1, "maximum": 100 }
        ]
    })
}

pub(super) fn percent(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "number"], "examples": ["10%", 12.5] })
}

pub(super) fn size(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "integer"], "examples": ["256M", "1G"] })
}

/// From [`Resource::ALL`](crate::words::Resource::ALL).
pub(super) fn resources(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = crate::words::Resource::ALL
        .iter()
        .map(|r| r.name())
        .collect();
    json_schema!({ "type": "array", "items": { "type": "string", "enum": names } })
}

pub(super) fn syscall_action(_: &mut SchemaGenerator) -> Schema {
    strings(&["log", "kill", "deny"])
}

/// From [`Metric::ALL`], the one list of what a rule can watch.
pub(super) fn metric(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    strings(&names)
}

pub(super) fn name_or_id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "integer"], "minimum": 0 })
}

pub(super) fn mode(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "integer"], "pattern": "^[0-7]{1,4}$", "minimum": 0 })
}

pub(super) fn audit_size(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "integer"], "minimum": 4096, "examples": ["100M", "1G"] })
}

pub(super) fn rate(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "examples": ["10Mbit", "12.5MB/s", "10MiB/s"] })
}

pub(super) fn budget(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "pattern": "/", "examples": ["10G/1d", "500M/1h"] })
}

pub(super) fn threshold(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "number"], "examples": ["1G", "50M", "400Mbit", 100, "80%"] })
}

pub(super) fn actions(_: &mut SchemaGenerator) -> Schema {
    let action = json_schema!({
        "type": "string",
        "pattern": "^\\s*(log|kill|freeze|set\\s+\\S+\\s*=.*|throttle\\s+(egress|ingress)\\s+\\S+)\\s*$",
        "examples": ["log", "set cpu.weight=50", "throttle egress 5Mbit"]
    });
    json_schema!({ "anyOf": [action, { "type": "array", "items": action, "minItems": 1 }] })
}
