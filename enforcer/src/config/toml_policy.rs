//! The project's own TOML policy format, read into the same model as cgconfig.conf.
//!
//! ```toml
//! [group."foo"]
//! controllers = ["cpuset"]          # create the group in these even without settings
//! "cpu.shares" = 100                # CONTROLLER.FILE = value
//! "cpuset.cpus" = "0-1"
//!
//! [group."foo".perm]
//! task  = { uid = "root", gid = "root", fperm = "660" }
//! admin = { uid = "root", gid = "root", dperm = "775", fperm = "644" }
//! ```
//!
//! Enforcement (`[agent]`, and a group's `priority`, `network`, `syscalls` and
//! `[[when]]` rules) is read by `toml_enforce.rs`; see the types in `model.rs`.
//!
//! Top-level tables are dispatched by name in [`parse_toml`]; a new table gets a new
//! arm there and its own reader method. Unquoted dotted keys (`memory.max = "1G"`)
//! and per-controller sub-tables (`[group."foo".memory]`) mean the same as the
//! quoted key `"memory.max"`, because that is what a TOML user will expect.
//!
//! The document is read with `toml_edit`, which keeps the byte range of every key
//! and value. Tables made by dotted keys (`memory` in `memory.max = 1`) and by
//! headers (`group` in `[group."foo"]`) have no range of their own; we point at
//! their keys instead.

use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, Key, Table, TableLike, TomlError, Value};

use super::error::{ConfigError, position};
use super::model::{ControllerSpec, GroupSpec, Owner, Policy, Setting, Span};
use super::perm::{DPERM_IN_TASK, FieldError, OwnerKind, PermField};
use super::position::SourceMap;
use super::suggest::{closest, did_you_mean};

/// The keys of a group that are not controller settings.
const GROUP_KEYS: [&str; 6] = [
    "controllers",
    "perm",
    "priority",
    "network",
    "syscalls",
    "when",
];

/// Controller names (v1 and v2), which are never taken for a misspelt group key.
const CONTROLLERS: [&str; 15] = [
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "io",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// The group key that a sub-table named `name` was probably meant to be, if it is
/// not a controller's name.
fn misspelt_group_table(name: &str) -> Option<&'static str> {
    if name.contains('.') || CONTROLLERS.contains(&name) {
        return None;
    }
    closest(name, GROUP_KEYS)
}

/// Parses a TOML policy; `file` is only used in spans.
pub fn parse_toml(text: &str, file: &Path) -> Result<Policy, ConfigError> {
    let source = SourceMap::new(text, file);
    let document = ImDocument::parse(text).map_err(|err| toml_syntax_error(&err, &source))?;
    let reader = Reader { source: &source };
    let mut policy = Policy::default();
    for (key, value) in entries(document.as_table()) {
        match key.get() {
            "group" => reader.groups(key, value, &mut policy)?,
            "agent" => policy.agent = Some(reader.agent(key, value)?),
            "classify" => policy.classify = reader.classify(key, value)?,
            _ => return Err(reader.unknown_top_level(key, value)),
        }
    }
    Ok(policy)
}

/// Turns the parser's error (message plus byte range) into a located error.
fn toml_syntax_error(err: &TomlError, source: &SourceMap<'_>) -> ConfigError {
    let offset = err.span().map_or(0, |range| range.start);
    let span = source.span(offset);
    let found = source.describe(offset);
    let message = err.message().trim();
    // The parser's messages read "invalid table header\nexpected `.`, `]`", or
    // just "expected newline, `#`".
    if let Some((what, expected)) = message.split_once("\nexpected ") {
        return ConfigError::syntax(span, format!("{} ({what})", or_list(expected)), found);
    }
    if let Some(expected) = message.strip_prefix("expected ") {
        return ConfigError::syntax(span, or_list(expected), found);
    }
    // "invalid basic string" at the end of a line: the closing quote is missing.
    if message.contains("string") && matches!(found.as_str(), "end of line" | "end of file") {
        return ConfigError::syntax(span, "a closing quote", found);
    }
    let message = message.replace('\n', ": ");
    let message = if message.is_empty() {
        "invalid TOML: the syntax is incomplete here (is a value missing?)".to_owned()
    } else if message.contains("duplicate key") {
        format!("invalid TOML: {message}: remove or merge the repeated key")
    } else {
        format!("invalid TOML: {message}; see https://toml.io for the syntax")
    };
    ConfigError::invalid(span, message)
}

/// "`.`, `]`" -> "`.` or `]`".
fn or_list(list: &str) -> String {
    match list.rsplit_once(", ") {
        Some((head, last)) => format!("{head} or {last}"),
        None => list.to_owned(),
    }
}

/// The entries of a `[table]` or `{ inline table }`, in file order, with their keys
/// (which carry the spans; `TableLike::iter` only gives the names).
pub(super) fn entries(table: &dyn TableLike) -> impl Iterator<Item = (&Key, &Item)> {
    table
        .iter()
        .filter_map(|(name, value)| Some((table.key(name)?, value)))
}

/// "a string", "an array", ... for messages.
pub(super) fn kind(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(value) => value_kind(value),
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "an array",
    }
}

pub(super) fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::InlineTable(_) => "a table",
    }
}

/// Reads the document into the model. The enforcement tables (`[agent]`, and a
/// group's `priority`, `network`, `syscalls` and `when`) are read by the methods in
/// `toml_enforce.rs`.
pub(super) struct Reader<'s, 'a> {
    pub(super) source: &'s SourceMap<'a>,
}

impl Reader<'_, '_> {
    pub(super) fn span(&self, range: Option<Range<usize>>, fallback: &Span) -> Span {
        range.map_or_else(|| fallback.clone(), |range| self.source.span(range.start))
    }

    /// Keys from the parser always have a position; the fallback only guards
    /// against surprises.
    pub(super) fn key_span(&self, key: &Key) -> Span {
        self.span(key.span(), &self.source.span(0))
    }

    /// Where `value` starts, or `fallback` (its key) if it has no position.
    pub(super) fn value_span(&self, value: &Item, fallback: &Span) -> Span {
        self.span(value.span(), fallback)
    }

    fn unknown_top_level(&self, key: &Key, value: &Item) -> ConfigError {
        let name = key.get();
        let what = if value.is_table_like() {
            format!("unknown table `[{name}]`")
        } else {
            format!("unknown top-level key `{name}`")
        };
        if let Some(known) = closest(name, ["group", "agent", "classify"]) {
            return ConfigError::invalid(
                self.key_span(key),
                format!(
                    "{what}: did you mean `[{known}]`? (the known tables are `[agent]`, \
                     `[group.\"NAME\"]` and `[[classify]]`)"
                ),
            );
        }
        ConfigError::invalid(
            self.key_span(key),
            format!(
                "{what}: this version supports only `[group.\"NAME\"]` tables; remove it or \
                 move its settings into a group"
            ),
        )
    }

    /// The `group` table: one entry per group, in file order.
    fn groups(&self, key: &Key, value: &Item, policy: &mut Policy) -> Result<(), ConfigError> {
        let Some(groups) = value.as_table_like() else {
            return Err(ConfigError::invalid(
                self.key_span(key),
                "`group` must be a table of groups: write a `[group.\"NAME\"]` header per group",
            ));
        };
        for (name, body) in entries(groups) {
            let span = self.key_span(name);
            if name.get().is_empty() {
                return Err(ConfigError::invalid(
                    span,
                    "empty group name: write the group's path, such as `[group.\"web/api\"]`",
                ));
            }
            let Some(body) = body.as_table_like() else {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "group `{0}` must be a table: write a `[group.\"{0}\"]` header followed \
                         by its settings",
                        name.get()
                    ),
                ));
            };
            let mut group = GroupSpec::new(name.get().to_owned(), span);
            for (key, value) in entries(body) {
                self.group_entry(&mut group, key, value, &mut policy.warnings)?;
            }
            policy.groups.push(group);
        }
        Ok(())
    }

    fn group_entry(
        &self,
        group: &mut GroupSpec,
        key: &Key,
        value: &Item,
        warnings: &mut Vec<(Span, String)>,
    ) -> Result<(), ConfigError> {
        let key_span = self.key_span(key);
        match (key.get(), value.as_table_like()) {
            ("controllers", _) => self.controllers(group, &key_span, value),
            ("perm", _) => self.perm(group, &key_span, value),
            ("priority", _) => {
                group.priority = Some(self.priority(key, value)?);
                Ok(())
            }
            ("network", _) => {
                group.network = Some(self.network(key, value, warnings)?);
                Ok(())
            }
            ("syscalls", _) => {
                group.syscalls = Some(self.syscalls(key, value, warnings)?);
                Ok(())
            }
            ("when", _) => {
                group.when = self.when(&group.name, key, value, warnings)?;
                Ok(())
            }
            (name, Some(_)) if misspelt_group_table(name).is_some() => {
                let known = misspelt_group_table(name).unwrap_or_default();
                Err(ConfigError::invalid(
                    key_span,
                    format!(
                        "unknown table `{name}` in group `{}`: did you mean `{known}`? (`{name}` \
                         is not a cgroup controller either)",
                        group.name
                    ),
                ))
            }
            (name, Some(table)) => {
                // `memory.max = 1` arrives as `memory = { max = 1 }`, a dotted table.
                let controller = name.split('.').next().unwrap_or_default();
                self.controller(group, controller, &key_span)?;
                let depth = usize::from(table.is_dotted());
                self.flatten(group, name, depth, table)
            }
            (name, None) if name.contains('.') => {
                let value_span = self.value_span(value, &key_span);
                self.setting(group, name.to_owned(), key_span, value, value_span)
            }
            (name, None) => Err(ConfigError::invalid(
                key_span,
                format!(
                    "unknown key `{name}` in group `{}`: expected a controller file such as \
                     `memory.max`, or `controllers`/`perm`/`priority`/`network`/`syscalls`/\
                     `when`{}",
                    group.name,
                    did_you_mean(name, GROUP_KEYS),
                ),
            )),
        }
    }

    /// Settings from the sub-table `prefix`. `depth` counts the dotted tables we
    /// are in, i.e. how many dotted-key parts precede the keys of `table`.
    fn flatten(
        &self,
        group: &mut GroupSpec,
        prefix: &str,
        depth: usize,
        table: &dyn TableLike,
    ) -> Result<(), ConfigError> {
        for (key, value) in entries(table) {
            let name = format!("{prefix}.{}", key.get());
            match value.as_table_like() {
                Some(inner) => {
                    let depth = if inner.is_dotted() { depth + 1 } else { 0 };
                    self.flatten(group, &name, depth, inner)?;
                }
                None => {
                    let span = self.dotted_key_span(key, depth);
                    let value_span = self.value_span(value, &span);
                    self.setting(group, name, span, value, value_span)?;
                }
            }
        }
        Ok(())
    }

    /// Where the whole dotted key ending in `last` starts. The parts before it have
    /// spans too, but a dotted table shared by several dotted keys (`memory.max`,
    /// `memory.high`) only remembers its first mention, so we walk back from `last`
    /// over `parents` parts in the text instead.
    fn dotted_key_span(&self, last: &Key, parents: usize) -> Span {
        let start = last
            .span()
            .and_then(|range| dotted_key_start(self.source.text(0..range.start), parents));
        match start {
            Some(start) => self.source.span(start),
            None => self.key_span(last),
        }
    }

    /// The spec for `name` in `group`, created at `span` on first appearance.
    fn controller<'g>(
        &self,
        group: &'g mut GroupSpec,
        name: &str,
        span: &Span,
    ) -> Result<&'g mut ControllerSpec, ConfigError> {
        if name.is_empty() {
            return Err(ConfigError::invalid(
                span.clone(),
                "missing controller name: write keys as `CONTROLLER.FILE`, such as `memory.max`",
            ));
        }
        let index = match group.controllers.iter().position(|c| c.name == name) {
            Some(index) => index,
            None => {
                group.controllers.push(ControllerSpec {
                    name: name.to_owned(),
                    span: span.clone(),
                    settings: Vec::new(),
                });
                group.controllers.len() - 1
            }
        };
        Ok(&mut group.controllers[index])
    }

    fn setting(
        &self,
        group: &mut GroupSpec,
        key: String,
        span: Span,
        value: &Item,
        value_span: Span,
    ) -> Result<(), ConfigError> {
        let value = match value {
            Item::Value(Value::String(text)) => text.value().clone(),
            Item::Value(Value::Integer(number)) => number.value().to_string(),
            Item::Value(Value::Float(number)) => {
                let number = number.value();
                return Err(ConfigError::invalid(
                    value_span,
                    format!("`{key}` is a float: write it as a string, such as `\"{number}\"`"),
                ));
            }
            Item::Value(Value::Boolean(_)) => {
                return Err(ConfigError::invalid(
                    value_span,
                    format!(
                        "`{key}` is a boolean: cgroup files take numbers or text, so write what \
                         the kernel expects, such as `1` or `0`"
                    ),
                ));
            }
            other => {
                return Err(ConfigError::invalid(
                    value_span,
                    format!(
                        "`{key}` is {}: write the value as a single string or integer",
                        kind(other)
                    ),
                ));
            }
        };
        let group_name = group.name.clone();
        let first_seen = group
            .controllers
            .iter()
            .flat_map(|c| &c.settings)
            .find(|s| s.key == key)
            .map(|s| position(&s.span));
        if let Some(first) = first_seen {
            return Err(ConfigError::invalid(
                span,
                format!(
                    "`{key}` is set twice in group `{group_name}` (first at {first}): keep only one"
                ),
            ));
        }
        let controller = key.split('.').next().unwrap_or_default().to_owned();
        self.controller(group, &controller, &span)?
            .settings
            .push(Setting {
                key,
                value,
                span,
                value_span,
            });
        Ok(())
    }

    /// `controllers = ["cpuset", ...]`: controllers to create the group in.
    fn controllers(
        &self,
        group: &mut GroupSpec,
        key_span: &Span,
        value: &Item,
    ) -> Result<(), ConfigError> {
        let not_a_name = |span, kind| {
            ConfigError::invalid(
                span,
                format!("`controllers` entries must be controller names in quotes, not {kind}"),
            )
        };
        let items = match value {
            Item::Value(Value::Array(items)) => items,
            // `[[group."NAME".controllers]]`: an array, but of tables.
            Item::ArrayOfTables(tables) => {
                let first = tables.iter().next().and_then(Table::span);
                return Err(not_a_name(self.span(first, key_span), "a table"));
            }
            _ => {
                return Err(ConfigError::invalid(
                    key_span.clone(),
                    "`controllers` must be an array of controller names, such as \
                     `controllers = [\"cpuset\"]`",
                ));
            }
        };
        let mut listed: Vec<&str> = Vec::new();
        for item in items {
            let span = self.span(item.span(), key_span);
            let Some(name) = item.as_str() else {
                return Err(not_a_name(span, value_kind(item)));
            };
            if listed.contains(&name) {
                return Err(ConfigError::invalid(
                    span,
                    format!("controller `{name}` is listed twice in `controllers`: remove one"),
                ));
            }
            self.controller(group, name, &span)?;
            listed.push(name);
        }
        Ok(())
    }

    /// `perm = { task = { ... }, admin = { ... } }`, usually written as a
    /// `[group."NAME".perm]` table.
    fn perm(
        &self,
        group: &mut GroupSpec,
        key_span: &Span,
        value: &Item,
    ) -> Result<(), ConfigError> {
        let Some(table) = value.as_table_like() else {
            return Err(ConfigError::invalid(
                key_span.clone(),
                "`perm` must be a table with `task` and/or `admin`, such as \
                 `[group.\"NAME\".perm]` followed by `task = { uid = \"root\" }`",
            ));
        };
        for (key, value) in entries(table) {
            let span = self.key_span(key);
            let Some(kind) = OwnerKind::from_keyword(key.get()) else {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "unknown key `{}` in the `perm` of group `{}`: expected `task` or `admin`",
                        key.get(),
                        group.name
                    ),
                ));
            };
            let owner = self.owner(kind, span, value)?;
            *kind.slot(&mut group.perm) = Some(owner);
        }
        Ok(())
    }

    fn owner(&self, kind: OwnerKind, span: Span, value: &Item) -> Result<Owner, ConfigError> {
        let name = kind.keyword();
        let Some(fields) = value.as_table_like() else {
            return Err(ConfigError::invalid(
                span,
                format!("`{name}` must be a table, such as `{name} = {{ uid = \"root\" }}`"),
            ));
        };
        let mut owner = Owner {
            uid: None,
            gid: None,
            fperm: None,
            dperm: None,
            span,
        };
        for (key, value) in entries(fields) {
            let key_span = self.key_span(key);
            let field = match kind.field(key.get()) {
                Ok(field) => field,
                Err(FieldError::DpermInTask) => {
                    return Err(ConfigError::invalid(key_span, DPERM_IN_TASK));
                }
                Err(FieldError::Unknown) => {
                    return Err(ConfigError::invalid(
                        key_span,
                        format!(
                            "unknown key `{}` in `{name}`: expected {}",
                            key.get(),
                            kind.expected_fields()
                        ),
                    ));
                }
            };
            let value_span = self.value_span(value, &key_span);
            let text = self.perm_text(field, value, &value_span)?;
            field
                .set(&mut owner, &text)
                .map_err(|message| ConfigError::invalid(value_span, message))?;
        }
        Ok(owner)
    }

    /// A perm value as cgconfig.conf would have written it. Integers count as the
    /// digits they are written with (`fperm = 660` is mode 0o660), except TOML's own
    /// radix literals (`fperm = 0o660`), which already are the mode.
    fn perm_text(
        &self,
        field: PermField,
        value: &Item,
        span: &Span,
    ) -> Result<String, ConfigError> {
        let is_mode = matches!(field, PermField::Fperm | PermField::Dperm);
        match value {
            Item::Value(Value::String(text)) => Ok(text.value().clone()),
            Item::Value(Value::Integer(number)) if is_mode => {
                let number = number.value();
                let literal = value
                    .span()
                    .map(|range| self.source.text(range))
                    .unwrap_or_default()
                    .trim_start_matches('+');
                let radix_literal = ["0o", "0x", "0b"].iter().any(|p| literal.starts_with(p));
                Ok(if radix_literal {
                    format!("{number:o}")
                } else {
                    number.to_string()
                })
            }
            Item::Value(Value::Integer(number)) if *number.value() >= 0 => {
                Ok(number.value().to_string())
            }
            other => {
                let example = if is_mode { "\"660\"" } else { "\"root\"" };
                Err(ConfigError::invalid(
                    span.clone(),
                    format!(
                        "`{}` is {}: write it as a string or integer, such as `{} = {example}`",
                        field.name(),
                        kind(other),
                        field.name()
                    ),
                ))
            }
        }
    }
}

/// `before` is the text up to the last part of a dotted key; returns the offset at
/// which the key's first part starts, `parents` parts further back.
fn dotted_key_start(before: &str, parents: usize) -> Option<usize> {
    let blank = [' ', '\t'];
    let mut start = before.len();
    for _ in 0..parents {
        let text = before[..start].trim_end_matches(blank);
        let text = text.strip_suffix('.')?.trim_end_matches(blank);
        start = if let Some(rest) = text.strip_suffix('"') {
            rest.rfind('"')?
        } else if let Some(rest) = text.strip_suffix('\'') {
            rest.rfind('\'')?
        } else {
            let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            let part_start = text.trim_end_matches(bare).len();
            if part_start == text.len() {
                return None;
            }
            part_start
        };
    }
    Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_start_of_dotted_keys() {
        assert_eq!(dotted_key_start("x\nmemory.", 1), Some(2));
        assert_eq!(dotted_key_start("  memory . swap .  ", 2), Some(2));
        assert_eq!(dotted_key_start("\"a.b\".'c'.", 2), Some(0));
        assert_eq!(dotted_key_start("memory.", 0), Some(7));
        // Not what a dotted key looks like: give up rather than guess.
        assert_eq!(dotted_key_start("= .", 1), None);
        assert_eq!(dotted_key_start("memory", 1), None);
    }

    /// What the reader relies on from `toml_edit`; fails loudly if an upgrade
    /// changes it.
    #[test]
    fn toml_edit_keeps_key_and_value_spans() {
        let source = "[group.\"foo\"]\n\"cpu.shares\" = 100\nmemory.max = \"1G\"\n\
                      a = { y = [\"x\", 2] }\n";
        let document = ImDocument::parse(source).unwrap();
        let text = |range: Option<Range<usize>>| &source[range.unwrap()];
        let (group_key, group) = document.as_table().get_key_value("group").unwrap();
        assert_eq!(text(group_key.span()), "group");
        // An implicit table made by a header has no span of its own.
        assert_eq!(group.span(), None);
        let group = group.as_table_like().unwrap();
        let (foo_key, foo) = group.get_key_value("foo").unwrap();
        assert_eq!(text(foo_key.span()), "\"foo\"");
        let foo = foo.as_table_like().unwrap();
        let names: Vec<_> = entries(foo).map(|(key, _)| key.get()).collect();
        assert_eq!(names, ["cpu.shares", "memory", "a"]);

        let (key, value) = foo.get_key_value("cpu.shares").unwrap();
        assert_eq!(text(key.span()), "\"cpu.shares\"");
        assert_eq!(text(value.span()), "100");

        // Dotted keys make dotted tables without a span; each part keeps its own.
        let (key, memory) = foo.get_key_value("memory").unwrap();
        assert_eq!(text(key.span()), "memory");
        assert_eq!(memory.span(), None);
        let memory = memory.as_table_like().unwrap();
        assert!(memory.is_dotted());
        let (key, value) = memory.get_key_value("max").unwrap();
        assert_eq!(text(key.span()), "max");
        assert_eq!(text(value.span()), "\"1G\"");

        let (_, inline) = foo.get_key_value("a").unwrap();
        assert!(inline.span().is_some());
        assert!(!inline.as_table_like().unwrap().is_dotted());
        let array = inline.as_table_like().unwrap().get("y").unwrap();
        let items = array.as_array().unwrap();
        assert_eq!(text(items.get(1).unwrap().span()), "2");
    }

    const EXAMPLE: &str = r#"[group."foo"]
controllers = ["cpuset"]          # optional
"cpu.shares" = 100
"memory.limit_in_bytes" = "5000000"
"cpuset.cpus" = "0-1"

[group."foo".perm]
task  = { uid = "root", gid = "root", fperm = "660" }
admin = { uid = "root", gid = "root", dperm = "775", fperm = "644" }
"#;

    fn parse(text: &str) -> Policy {
        parse_toml(text, Path::new("/etc/enforcer.toml")).unwrap()
    }

    fn error(text: &str) -> ConfigError {
        parse_toml(text, Path::new("p.toml")).unwrap_err()
    }

    fn at(span: &Span) -> (u32, u32) {
        (span.line, span.column)
    }

    fn settings(group: &GroupSpec) -> Vec<(&str, &str, &str)> {
        group
            .controllers
            .iter()
            .flat_map(|c| {
                c.settings
                    .iter()
                    .map(move |s| (c.name.as_str(), s.key.as_str(), s.value.as_str()))
            })
            .collect()
    }

    #[test]
    fn example_policy() {
        let policy = parse(EXAMPLE);
        assert!(policy.warnings.is_empty());
        assert_eq!(policy.groups.len(), 1);
        let group = &policy.groups[0];
        assert_eq!(group.name, "foo");
        assert_eq!(at(&group.span), (1, 8));
        assert_eq!(group.span.file.as_path(), Path::new("/etc/enforcer.toml"));

        let names: Vec<_> = group.controllers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpuset", "cpu", "memory"]);
        assert_eq!(at(&group.controllers[0].span), (2, 16));
        assert_eq!(
            settings(group),
            [
                ("cpuset", "cpuset.cpus", "0-1"),
                ("cpu", "cpu.shares", "100"),
                ("memory", "memory.limit_in_bytes", "5000000"),
            ]
        );

        let shares = &group.controllers[1].settings[0];
        assert_eq!(at(&shares.span), (3, 1));
        assert_eq!(at(&shares.value_span), (3, 16));
        let limit = &group.controllers[2].settings[0];
        assert_eq!(at(&limit.span), (4, 1));
        assert_eq!(at(&limit.value_span), (4, 27));
    }

    #[test]
    fn example_perm() {
        let policy = parse(EXAMPLE);
        let perm = &policy.groups[0].perm;
        let task = perm.task.as_ref().unwrap();
        assert_eq!(task.uid.as_deref(), Some("root"));
        assert_eq!(task.gid.as_deref(), Some("root"));
        assert_eq!((task.fperm, task.dperm), (Some(0o660), None));
        assert_eq!(at(&task.span), (8, 1));
        let admin = perm.admin.as_ref().unwrap();
        assert_eq!((admin.dperm, admin.fperm), (Some(0o775), Some(0o644)));
        assert_eq!(at(&admin.span), (9, 1));
    }

    #[test]
    fn integer_modes_and_ids() {
        let policy = parse(
            "[group.a.perm]\ntask = { uid = 0, gid = 100, fperm = 660 }\n\
             admin = { dperm = 0o755, fperm = \"0644\" }\n",
        );
        let perm = &policy.groups[0].perm;
        let task = perm.task.as_ref().unwrap();
        assert_eq!(task.uid.as_deref(), Some("0"));
        assert_eq!(task.gid.as_deref(), Some("100"));
        assert_eq!(task.fperm, Some(0o660));
        let admin = perm.admin.as_ref().unwrap();
        assert_eq!(admin.dperm, Some(0o755));
        assert_eq!(admin.fperm, Some(0o644));
        // A group with only `perm` has no controllers; that is for `plan` to judge.
        assert!(policy.groups[0].controllers.is_empty());
    }

    #[test]
    fn dotted_keys_and_controller_tables() {
        let policy = parse(
            "[group.\"web/api\"]\nmemory.max = \"1G\"\nmemory.swap.max = 0\n\n\
             [group.\"web/api\".cpu]\nweight = 50\n\n[group.b]\ncontrollers = [\"cpuset\", \"pids\"]\n\
             \"io\" . 'cost' . max = 1\n",
        );
        let web = &policy.groups[0];
        assert_eq!(web.name, "web/api");
        assert_eq!(
            settings(web),
            [
                ("memory", "memory.max", "1G"),
                ("memory", "memory.swap.max", "0"),
                ("cpu", "cpu.weight", "50"),
            ]
        );
        let memory = &web.controllers[0];
        // Dotted keys point at their first part, sub-table keys at themselves.
        assert_eq!(at(&memory.settings[0].span), (2, 1));
        assert_eq!(at(&memory.settings[0].value_span), (2, 14));
        assert_eq!(at(&memory.settings[1].span), (3, 1));
        assert_eq!(at(&web.controllers[1].settings[0].span), (6, 1));
        assert_eq!(at(&web.controllers[1].settings[0].value_span), (6, 10));

        let b = &policy.groups[1];
        let names: Vec<_> = b.controllers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpuset", "pids", "io"]);
        assert!(b.controllers[..2].iter().all(|c| c.settings.is_empty()));
        assert_eq!(at(&b.controllers[1].span), (9, 26));
        let cost = &b.controllers[2].settings[0];
        assert_eq!(cost.key, "io.cost.max");
        assert_eq!((at(&cost.span), at(&cost.value_span)), ((10, 1), (10, 23)));
    }

    #[test]
    fn empty_file_is_an_empty_policy() {
        let policy = parse("# nothing yet\n");
        assert!(policy.groups.is_empty());
    }

    #[test]
    fn toml_syntax_errors_have_positions() {
        let err = error("[group.\"foo\"]\n\"cpu.shares\" = 100\n[group.foo\nx = 1\n");
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err:?}");
        assert_eq!(at(err.span().unwrap()), (3, 11));
        assert_eq!(
            err.to_string(),
            "p.toml:3:11: expected `.` or `]` (invalid table header), found end of line"
        );

        #[rustfmt::skip]
        let cases: &[(&str, (u32, u32), &str)] = &[
            ("[group.a]\n\"cpu.shares\" = 1\n\"cpu.shares\" = 2\n", (3, 1), "invalid TOML: duplicate key `cpu.shares` in table `group.a`: remove or merge"),
            ("[group.a]\n\"cpu.shares\" = \n", (2, 16), "found end of line"),
            ("[group.a]\n\"cpuset.cpus\" = \"0-1\n", (2, 21), "expected a closing quote, found end of line"),
            ("[group.a]\n\"cpu.shares\" = 1 2\n", (2, 18), "expected newline or `#`, found `2`"),
            ("[group.a]\ncontrollers = [\"cpu\",\n", (3, 1), "expected `]` (invalid array), found end of file"),
        ];
        for (text, position, fragment) in cases {
            let err = error(text);
            assert_eq!(at(err.span().unwrap()), *position, "{text:?}: {err}");
            assert!(
                err.to_string().contains(fragment),
                "{text:?}: wanted {fragment:?} in {err}"
            );
        }
    }

    #[test]
    fn unknown_top_level_table() {
        let err = error("[group.a]\n\"cpu.shares\" = 1\n\n[limits]\nx = 1\n");
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "p.toml:4:2: unknown table `[limits]`: this version supports only \
             `[group.\"NAME\"]` tables; remove it or move its settings into a group"
        );
        let err = error("version = 2\n");
        assert!(
            err.to_string()
                .starts_with("p.toml:1:1: unknown top-level key `version`")
        );
    }

    #[test]
    fn invalid_values_point_at_the_value() {
        #[rustfmt::skip]
        let cases: &[(&str, (u32, u32), &str)] = &[
            ("[group.a]\n\"memory.oom.group\" = true\n", (2, 22), "`memory.oom.group` is a boolean"),
            ("[group.a]\n\"cpu.max\" = [\"max\", 100000]\n", (2, 13), "`cpu.max` is an array"),
            ("[group.a]\n\"cpu.weight\" = 1.5\n", (2, 16), "write it as a string, such as `\"1.5\"`"),
            ("[group.a]\nweight = 5\n", (2, 1), "unknown key `weight` in group `a`: expected a controller file such as `memory.max`, or `controllers`/`perm`"),
            ("[group.a]\n\".max\" = 5\n", (2, 1), "missing controller name"),
            ("[group.a]\ncontrollers = \"cpu\"\n", (2, 1), "`controllers` must be an array"),
            ("[group.a]\ncontrollers = [\"cpu\", 1]\n", (2, 23), "not an integer"),
            ("[group.a]\ncontrollers = [\"cpu\", \"cpu\"]\n", (2, 23), "listed twice"),
            ("[group.a]\n[[group.a.controllers]]\n", (2, 1), "controller names in quotes, not a table"),
            ("[group.a]\n\"cpu.x\" = 1979-05-27\n", (2, 11), "`cpu.x` is a date-time"),
            ("[group.a]\nmemory = { swap.max = true }\n", (2, 23), "`memory.swap.max` is a boolean"),
            ("[group.a]\n\"cpu.shares\" = 1\ncpu.shares = 2\n", (3, 1), "`cpu.shares` is set twice in group `a` (first at line 2, column 1)"),
            ("[group.a.perm]\ntask = { fperm = \"680\" }\n", (2, 18), "`fperm` value `680` is not an octal mode"),
            ("[group.a.perm]\ntask = { fperm = 690 }\n", (2, 18), "`fperm` value `690` is not an octal mode"),
            ("[group.a.perm]\ntask = { dperm = \"755\" }\n", (2, 10), "`dperm` is not allowed in `task`"),
            ("[group.a.perm]\nadmin = { mode = \"755\" }\n", (2, 11), "unknown key `mode` in `admin`: expected `uid`, `gid`, `dperm` or `fperm`"),
            ("[group.a.perm]\nowner = { }\n", (2, 1), "expected `task` or `admin`"),
            ("[group.a.perm]\ntask = { uid = true }\n", (2, 16), "`uid` is a boolean"),
            ("[group.a.perm]\ntask = \"root\"\n", (2, 1), "`task` must be a table"),
            ("[group.\"\"]\n\"cpu.shares\" = 1\n", (1, 8), "empty group name"),
            ("group = 1\n", (1, 1), "`group` must be a table of groups"),
            ("[group]\na = 1\n", (2, 1), "group `a` must be a table"),
        ];
        for (text, position, fragment) in cases {
            let err = error(text);
            assert!(
                matches!(err, ConfigError::Invalid { .. }),
                "{text:?}: {err:?}"
            );
            assert_eq!(at(err.span().unwrap()), *position, "{text:?}: {err}");
            assert!(
                err.to_string().contains(fragment),
                "{text:?}: wanted {fragment:?} in {err}"
            );
        }
    }
}
