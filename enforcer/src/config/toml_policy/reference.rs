//! The policy's JSON Schema (`docs/policy.schema.json`) and its reference
//! page (`docs/policy.md`), both made from the file's types and the
//! per-field schemas of `schema.rs`.

use serde_json::Value;

use super::file::PolicyFile;
use crate::counters::Metric;

/// The policy's JSON Schema, as committed in `docs/policy.schema.json`.
pub fn policy_schema() -> Value {
    let mut schema = schemars::schema_for!(PolicyFile).to_value();
    // A controller setting (`"memory.max" = "1G"`, or a table of them such as
    // `[group."web".memory]`): any key that is not one of the group's own.
    if let Some(group) = schema.pointer_mut("/$defs/GroupTable") {
        group["additionalProperties"] = serde_json::json!({
            "description": "A controller setting: `\"CONTROLLER.FILE\" = VALUE` (a string or integer, as the kernel file takes it; sizes such as \"512M\" are binary, KB/MB are refused), or a table of them named after the controller.",
            "type": ["string", "integer", "object"]
        });
    }
    schema
}

/// The schema as the committed file holds it.
pub fn policy_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&policy_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// Where each table of the file is documented, in order.
const TABLES: [(&str, &str); 10] = [
    ("[agent]", "AgentTable"),
    ("[arbiter]", "ArbiterTable"),
    ("[group.\"NAME\"]", "GroupTable"),
    ("[group.\"NAME\".perm]", "PermTable"),
    ("task = { ... } and admin = { ... }", "OwnerTable"),
    ("[group.\"NAME\".network]", "NetworkTable"),
    ("[group.\"NAME\".syscalls]", "SyscallsTable"),
    ("[[group.\"NAME\".when]]", "WhenTable"),
    ("[[classify]]", "ClassifyTable"),
    ("[[container]]", "ContainerTable"),
];

/// How a property's values are written, from its schema.
fn shape(property: &Value) -> String {
    if let Some(names) = property.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        return names.join(", ");
    }
    if property.get("$ref").is_some() || property.pointer("/anyOf/0/$ref").is_some() {
        return "table".to_owned();
    }
    if let Some(any) = property.get("anyOf").and_then(Value::as_array) {
        let shapes: Vec<String> = any.iter().map(shape).filter(|s| s != "null").collect();
        return shapes.join(" or ");
    }
    let types: Vec<String> = match property.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    let types: Vec<String> = types
        .into_iter()
        .filter(|t| t != "null")
        .map(|t| match t.as_str() {
            "array" => format!(
                "array of {}",
                property.get("items").map(shape).unwrap_or_default()
            ),
            "object" => "table".to_owned(),
            _ => t,
        })
        .collect();
    types.join(" or ")
}

/// `docs/policy.md`: every table and key of the policy, from the schema.
pub fn policy_reference() -> String {
    let schema = policy_schema();
    let mut out = String::from(
        "# The policy file\n\n\
         <!-- Generated from enforcer/src/config/toml_policy/file.rs by a test; do not edit: \
         change the doc comments there and run \
         `UPDATE_POLICY_DOCS=1 cargo test -p enforcer --lib policy_docs`. -->\n\n",
    );
    if let Some(about) = schema.get("description").and_then(Value::as_str) {
        out.push_str(about);
        out.push_str("\n\n");
    }
    out.push_str(
        "`enforcer run --config POLICY.toml` applies it; `enforcer apply --dry-run \
         POLICY.toml` shows what it would change. `examples/policy.toml` is a complete \
         example, and `docs/policy.schema.json` is its JSON Schema for editors.\n\n\
         Values: sizes use binary units as the kernel reads memory limits (`K` = 1024, `M`, \
         `G`, `T`, `P`, `E`; `KiB`... the same); `KB`, `MB`, ... are refused as ambiguous. \
         Rates name their convention as tc does: `Mbit` and `MB/s` are decimal, `Mibit` and \
         `MiB/s` binary. Durations are a number and a unit `ms`, `s`, `m`, `h` or `d`, \
         possibly several (`\"1m30s\"`).\n",
    );
    for (title, name) in TABLES {
        let Some(def) = schema.pointer(&format!("/$defs/{name}")) else {
            continue;
        };
        out.push_str(&format!("\n## `{title}`\n\n"));
        if let Some(about) = def.get("description").and_then(Value::as_str) {
            out.push_str(about);
            out.push_str("\n\n");
        }
        out.push_str("| key | value | meaning |\n|---|---|---|\n");
        let Some(properties) = def.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (key, property) in properties {
            let about = property
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .replace('\n', " ");
            out.push_str(&format!("| `{key}` | {} | {about} |\n", shape(property)));
        }
        if name == "GroupTable" {
            out.push_str(
                "| `\"CONTROLLER.FILE\"` | string or integer | A controller setting, as for \
                 `apply` (v1 or v2 spelling; the host decides which file is written). |\n",
            );
        }
    }
    out.push_str("\n## `when` metrics\n\n| metric | unit |\n|---|---|\n");
    for m in Metric::ALL {
        out.push_str(&format!("| `{}` | {:?} |\n", m.name(), m.unit()));
    }
    out
}
