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
//! Top-level tables are dispatched by name in [`parse_toml`]; a new table gets a new
//! arm there and its own reader method. Unquoted dotted keys (`memory.max = "1G"`)
//! and per-controller sub-tables (`[group."foo".memory]`) mean the same as the
//! quoted key `"memory.max"`, because that is what a TOML user will expect.

use std::ops::Range;
use std::path::Path;

use super::error::{ConfigError, position};
use super::model::{ControllerSpec, GroupSpec, Owner, Perm, Policy, Setting, Span};
use super::perm::{DPERM_IN_TASK, FieldError, OwnerKind, PermField};
use super::position::SourceMap;
use super::toml_tree::{Located, Node};

/// Parses a TOML policy; `file` is only used in spans.
pub fn parse_toml(text: &str, file: &Path) -> Result<Policy, ConfigError> {
    let source = SourceMap::new(text, file);
    let root: Located<Node> =
        toml::from_str(text).map_err(|err| toml_syntax_error(&err, &source))?;
    let reader = Reader { source: &source };
    let mut policy = Policy::default();
    let Node::Table(entries) = root.value else {
        // A TOML document is always a table; this is only a guard.
        return Err(ConfigError::invalid(
            source.span(0),
            "expected a TOML table",
        ));
    };
    for (key, value) in entries {
        match key.value.as_str() {
            "group" => reader.groups(&key, value, &mut policy)?,
            _ => return Err(reader.unknown_top_level(&key, &value)),
        }
    }
    Ok(policy)
}

/// Turns the `toml` crate's error (message plus byte range) into a located error.
fn toml_syntax_error(err: &toml::de::Error, source: &SourceMap<'_>) -> ConfigError {
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

struct Reader<'s, 'a> {
    source: &'s SourceMap<'a>,
}

impl Reader<'_, '_> {
    fn span(&self, range: Option<&Range<usize>>, fallback: &Span) -> Span {
        range.map_or_else(|| fallback.clone(), |range| self.source.span(range.start))
    }

    /// Keys always have a position; the fallback only guards against surprises.
    fn key_span(&self, key: &Located<String>) -> Span {
        self.span(key.span.as_ref(), &self.source.span(0))
    }

    fn unknown_top_level(&self, key: &Located<String>, value: &Located<Node>) -> ConfigError {
        let name = &key.value;
        let what = match value.value {
            Node::Table(_) => format!("unknown table `[{name}]`"),
            _ => format!("unknown top-level key `{name}`"),
        };
        ConfigError::invalid(
            self.key_span(key),
            format!(
                "{what}: this version supports only `[group.\"NAME\"]` tables; remove it or \
                 move its settings into a group"
            ),
        )
    }

    /// The `group` table: one entry per group, in file order.
    fn groups(
        &self,
        key: &Located<String>,
        value: Located<Node>,
        policy: &mut Policy,
    ) -> Result<(), ConfigError> {
        let Node::Table(groups) = value.value else {
            return Err(ConfigError::invalid(
                self.key_span(key),
                "`group` must be a table of groups: write a `[group.\"NAME\"]` header per group",
            ));
        };
        for (name, body) in groups {
            let span = self.key_span(&name);
            if name.value.is_empty() {
                return Err(ConfigError::invalid(
                    span,
                    "empty group name: write the group's path, such as `[group.\"web/api\"]`",
                ));
            }
            let Node::Table(entries) = body.value else {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "group `{0}` must be a table: write a `[group.\"{0}\"]` header followed \
                         by its settings",
                        name.value
                    ),
                ));
            };
            let mut group = GroupSpec {
                name: name.value,
                span,
                perm: Perm::default(),
                controllers: Vec::new(),
            };
            for (key, value) in entries {
                self.group_entry(&mut group, key, value)?;
            }
            policy.groups.push(group);
        }
        Ok(())
    }

    fn group_entry(
        &self,
        group: &mut GroupSpec,
        key: Located<String>,
        value: Located<Node>,
    ) -> Result<(), ConfigError> {
        let key_span = self.key_span(&key);
        match (key.value.as_str(), value.value) {
            ("controllers", value) => self.controllers(group, &key_span, value),
            ("perm", value) => self.perm(group, &key_span, value),
            (name, Node::Table(entries)) => {
                // `memory.max = 1` arrives as `memory = { max = 1 }`, a table with no
                // span of its own (an implicit one).
                let controller = name.split('.').next().unwrap_or_default();
                self.controller(group, controller, &key_span)?;
                let depth = usize::from(value.span.is_none());
                self.flatten(group, name, depth, entries)
            }
            (name, node) if name.contains('.') => {
                let value_span = self.span(value.span.as_ref(), &key_span);
                self.setting(group, name.to_owned(), key_span, node, value_span)
            }
            (name, _) => Err(ConfigError::invalid(
                key_span,
                format!(
                    "unknown key `{name}` in group `{}`: expected a controller file such as \
                     `memory.max`, or `controllers`/`perm`",
                    group.name
                ),
            )),
        }
    }

    /// Settings from the sub-table `prefix`. `depth` counts the implicit tables we
    /// are in, i.e. how many dotted-key parts precede the keys of `entries`.
    fn flatten(
        &self,
        group: &mut GroupSpec,
        prefix: &str,
        depth: usize,
        entries: Vec<(Located<String>, Located<Node>)>,
    ) -> Result<(), ConfigError> {
        for (key, value) in entries {
            let name = format!("{prefix}.{}", key.value);
            match value.value {
                Node::Table(inner) => {
                    let depth = if value.span.is_none() { depth + 1 } else { 0 };
                    self.flatten(group, &name, depth, inner)?;
                }
                node => {
                    let span = self.dotted_key_span(&key, depth);
                    let value_span = self.span(value.span.as_ref(), &span);
                    self.setting(group, name, span, node, value_span)?;
                }
            }
        }
        Ok(())
    }

    /// Where the whole dotted key ending in `last` starts. The parts before it have
    /// spans too, but an implicit table shared by several dotted keys
    /// (`memory.max`, `memory.high`) only remembers its first mention, so we walk
    /// back from `last` over `parents` parts in the text instead.
    fn dotted_key_span(&self, last: &Located<String>, parents: usize) -> Span {
        let start = last
            .span
            .as_ref()
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
        value: Node,
        value_span: Span,
    ) -> Result<(), ConfigError> {
        let value = match value {
            Node::String(text) => text,
            Node::Integer(number) => number.to_string(),
            Node::Float(number) => {
                return Err(ConfigError::invalid(
                    value_span,
                    format!("`{key}` is a float: write it as a string, such as `\"{number}\"`"),
                ));
            }
            Node::Boolean(_) => {
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
                        other.kind()
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
        value: Node,
    ) -> Result<(), ConfigError> {
        let Node::Array(items) = value else {
            return Err(ConfigError::invalid(
                key_span.clone(),
                "`controllers` must be an array of controller names, such as \
                 `controllers = [\"cpuset\"]`",
            ));
        };
        let mut listed: Vec<String> = Vec::new();
        for item in items {
            let span = self.span(item.span.as_ref(), key_span);
            let Node::String(name) = item.value else {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "`controllers` entries must be controller names in quotes, not {}",
                        item.value.kind()
                    ),
                ));
            };
            if listed.contains(&name) {
                return Err(ConfigError::invalid(
                    span,
                    format!("controller `{name}` is listed twice in `controllers`: remove one"),
                ));
            }
            self.controller(group, &name, &span)?;
            listed.push(name);
        }
        Ok(())
    }

    /// `perm = { task = { ... }, admin = { ... } }`, usually written as a
    /// `[group."NAME".perm]` table.
    fn perm(&self, group: &mut GroupSpec, key_span: &Span, value: Node) -> Result<(), ConfigError> {
        let Node::Table(entries) = value else {
            return Err(ConfigError::invalid(
                key_span.clone(),
                "`perm` must be a table with `task` and/or `admin`, such as \
                 `[group.\"NAME\".perm]` followed by `task = { uid = \"root\" }`",
            ));
        };
        for (key, value) in entries {
            let span = self.key_span(&key);
            let Some(kind) = OwnerKind::from_keyword(&key.value) else {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "unknown key `{}` in the `perm` of group `{}`: expected `task` or `admin`",
                        key.value, group.name
                    ),
                ));
            };
            let owner = self.owner(kind, span, value.value)?;
            *kind.slot(&mut group.perm) = Some(owner);
        }
        Ok(())
    }

    fn owner(&self, kind: OwnerKind, span: Span, value: Node) -> Result<Owner, ConfigError> {
        let name = kind.keyword();
        let Node::Table(fields) = value else {
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
        for (key, value) in fields {
            let key_span = self.key_span(&key);
            let field = match kind.field(&key.value) {
                Ok(field) => field,
                Err(FieldError::DpermInTask) => {
                    return Err(ConfigError::invalid(key_span, DPERM_IN_TASK));
                }
                Err(FieldError::Unknown) => {
                    return Err(ConfigError::invalid(
                        key_span,
                        format!(
                            "unknown key `{}` in `{name}`: expected {}",
                            key.value,
                            kind.expected_fields()
                        ),
                    ));
                }
            };
            let value_span = self.span(value.span.as_ref(), &key_span);
            let text = self.perm_text(field, &value, &value_span)?;
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
        value: &Located<Node>,
        span: &Span,
    ) -> Result<String, ConfigError> {
        let is_mode = matches!(field, PermField::Fperm | PermField::Dperm);
        match &value.value {
            Node::String(text) => Ok(text.clone()),
            Node::Integer(number) if is_mode => {
                let literal = value
                    .span
                    .clone()
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
            Node::Integer(number) if *number >= 0 => Ok(number.to_string()),
            other => {
                let example = if is_mode { "\"660\"" } else { "\"root\"" };
                Err(ConfigError::invalid(
                    span.clone(),
                    format!(
                        "`{}` is {}: write it as a string or integer, such as `{} = {example}`",
                        field.name(),
                        other.kind(),
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
