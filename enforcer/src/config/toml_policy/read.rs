//! Parsing a TOML policy: toml reads the text into the typed tables of
//! `file.rs`; its errors (syntax, unknown keys, wrong shapes) become located
//! messages with a remedy; then each table is converted into the model.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::file::PolicyFile;
use super::raw::Raw;
use crate::config::error::ConfigError;
use crate::config::model::{Policy, Span};
use crate::config::position::SourceMap;
use crate::config::suggest::{closest, one_of};

/// Parses a TOML policy; `file` is only used in spans.
pub fn parse_toml(text: &str, file: &Path) -> Result<Policy, ConfigError> {
    let source = SourceMap::new(text, file);
    let parsed: PolicyFile = toml::from_str(text).map_err(|err| translate(&err, &source))?;
    let reader = Reader { source: &source };
    let mut policy = Policy::default();
    if let Some(agent) = &parsed.agent {
        policy.agent = Some(reader.agent(agent)?);
    }
    if let Some(arbiter) = &parsed.arbiter {
        policy.arbiter = Some(reader.arbiter(arbiter)?);
    }
    if let Some(groups) = &parsed.group {
        for (name, body) in &groups.get_ref().0 {
            let group = reader.group(name, body, &mut policy.warnings)?;
            policy.groups.push(group);
        }
    }
    for rule in parsed.classify.iter().flatten() {
        policy.classify.push(reader.classify(rule)?);
    }
    for (i, rule) in parsed.container.iter().flatten().enumerate() {
        let c = reader.container(rule, i + 1, &mut policy.warnings)?;
        policy.containers.push(c);
    }
    Ok(policy)
}

/// toml's error as a located message that says what to write.
fn translate(err: &toml::de::Error, source: &SourceMap<'_>) -> ConfigError {
    let offset = err.span().map_or(0, |range| range.start);
    let span = source.span(offset);
    let message = err.message().trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        return unknown_key(span, rest, source, err.span());
    }
    if message.contains("$__toml_private_datetime") {
        let what = key_before(source, offset)
            .map(|k| format!("`{k}` is "))
            .unwrap_or_default();
        return ConfigError::invalid(
            span,
            format!("{what}a date-time: write the value as a single string or integer"),
        );
    }
    let shape = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid length "));
    if let Some(rest) = shape
        && let Some((found, expected)) = rest.split_once(", expected ")
    {
        return wrong_shape(source, offset, found, expected);
    }
    let found = source.describe(offset);
    if message.contains("string") && matches!(found.as_str(), "end of line" | "end of file") {
        return ConfigError::syntax(span, "a closing quote", found);
    }
    if message.starts_with("string values must be quoted") {
        let written = err
            .span()
            .map(|r| source.text(r))
            .unwrap_or_default()
            .trim();
        if written.is_empty() {
            return ConfigError::syntax(span, "a value", found);
        }
        if let Some(gap) = written.find(char::is_whitespace) {
            let next = offset + gap + (written[gap..].len() - written[gap..].trim_start().len());
            return ConfigError::syntax(
                source.span(next),
                "newline or `#` after the value",
                source.describe(next),
            );
        }
        return ConfigError::invalid(
            span,
            format!(
                "`{written}` is not a TOML value: write text in quotes, such as `\"{written}\"`"
            ),
        );
    }
    if message.starts_with("duplicate key") {
        let key = err
            .span()
            .map(|r| source.text(r))
            .unwrap_or_default()
            .trim();
        let table = table_of(source, offset);
        return ConfigError::invalid(
            span,
            format!(
                "invalid TOML: duplicate key `{}` in {table}: remove or merge the repeated key",
                key.trim_matches('"')
            ),
        );
    }
    // toml's messages read "unclosed table, expected `]`".
    if let Some((what, expected)) = message.split_once(", expected ") {
        return ConfigError::syntax(span, format!("{} ({what})", or_list(expected)), found);
    }
    if let Some(expected) = message.strip_prefix("expected ") {
        return ConfigError::syntax(span, or_list(expected), found);
    }
    let message = message.replace('\n', ": ");
    let message = if message.is_empty() {
        "invalid TOML: the syntax is incomplete here (is a value missing?)".to_owned()
    } else {
        format!("invalid TOML: {message}; see https://toml.io for the syntax")
    };
    ConfigError::invalid(span, message)
}

/// A value or table of the wrong shape (toml's "invalid type: FOUND,
/// expected EXPECTED"), pointed at its key, with what to write instead.
fn wrong_shape(source: &SourceMap<'_>, offset: usize, found: &str, expected: &str) -> ConfigError {
    let expected = expected.split(" with ").next().unwrap_or(expected);
    // A `[header]`'s table is named by the header's last part.
    let line_before =
        &source.text(0..offset)[source.text(0..offset).rfind('\n').map_or(0, |i| i + 1)..];
    let header = source.text(offset..offset + 1) == "[" && line_before.trim().is_empty();
    let in_array = !header
        && line_before
            .rsplit_once('=')
            .is_some_and(|(_, v)| v.contains('['));
    let (key, offset) = if header {
        let line = source.rest(offset).lines().next().unwrap_or_default();
        let head = line.split(']').next().unwrap_or(line);
        let start = last_part_start(head);
        (
            Some(head[start..].trim().trim_matches('"').to_owned()),
            offset + start,
        )
    } else {
        (key_before(source, offset), offset)
    };
    // A wrong shape for a table is the key's mistake; point at the key.
    let span = if header {
        source.span(offset)
    } else {
        source.span(key_start(source.text(0..offset)).unwrap_or(offset))
    };
    let what = key
        .as_ref()
        .map(|k| format!("`{k}` is "))
        .unwrap_or_default();
    let found_kind = kind_word(found);
    let name = key.clone().unwrap_or_else(|| "this".to_owned());
    if let Some(table) = expected.strip_prefix("struct ") {
        let header = table_header(table);
        if in_array {
            return ConfigError::invalid(
                source.span(offset),
                format!(
                    "`{name}` entries must be tables, not {found_kind}: write each under its \
                     own `{header}` header"
                ),
            );
        }
        let article = if header.starts_with("[a") { "an" } else { "a" };
        return ConfigError::invalid(
            span,
            format!(
                "`{name}` must be a table: write {article} `{header}` header followed by its keys"
            ),
        );
    }
    if expected.starts_with("a table") || expected.starts_with("a group table") {
        return ConfigError::invalid(span, format!("`{name}` must be {expected}"));
    }
    let span = source.span(offset);
    if header && key.as_deref() == Some("when") {
        let head = source.text(0..offset);
        let head = &head[head.rfind('[').map_or(0, |i| i + 1)..];
        let group = head
            .trim_end_matches(['.', ' '])
            .strip_prefix("group.")
            .unwrap_or("NAME")
            .trim_matches('"');
        return ConfigError::invalid(
            span,
            format!(
                "`when` must be an array of rules: write the header with double brackets, \
                 `[[group.\"{group}\".when]]`, once per rule"
            ),
        );
    }
    ConfigError::invalid(span, format!("{what}{found_kind}: write {expected}"))
}

/// serde's name for the kind of a value, as a policy's author says it.
fn kind_word(found: &str) -> &str {
    match found.split(' ').next().unwrap_or(found) {
        "map" => "a table",
        "sequence" => "an array",
        "string" => "a string",
        "integer" => "an integer",
        "floating" => "a float",
        "boolean" => "a boolean",
        other => other,
    }
}

/// The header of the table a typed struct stands for.
fn table_header(name: &str) -> &'static str {
    match name {
        "AgentTable" => "[agent]",
        "ArbiterTable" => "[arbiter]",
        "PermTable" => "[group.\"NAME\".perm]",
        "NetworkTable" => "[group.\"NAME\".network]",
        "SyscallsTable" => "[group.\"NAME\".syscalls]",
        "WhenTable" => "[[group.\"NAME\".when]]",
        "OwnerTable" => "[group.\"NAME\".perm.task]",
        _ => "[group.\"NAME\"]",
    }
}

/// "unknown key `x` (did you mean `y`?): expected `a`, `b` or `c`", from
/// serde's "unknown field `x`, expected one of `a`, `b`, `c`".
fn unknown_key(
    span: Span,
    rest: &str,
    source: &SourceMap<'_>,
    range: Option<Range<usize>>,
) -> ConfigError {
    let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let place = range
        .clone()
        .map(|r| table_of(source, r.start))
        .filter(|t| !t.is_empty())
        .map(|t| format!(" in {t}"))
        .unwrap_or_default();
    if known == ["agent", "group", "arbiter", "classify", "container"] {
        let offset = range.map_or(0, |r| r.start);
        let is_table = source.text(0..offset).trim_end().ends_with('[');
        let what = if is_table {
            format!("unknown table `[{name}]`")
        } else {
            format!("unknown top-level key `{name}`")
        };
        return ConfigError::invalid(
            span,
            match closest(name, known.iter().copied()) {
                Some(k) => format!(
                    "{what}: did you mean `[{k}]`? (the known tables are `[agent]`, \
                     `[arbiter]`, `[group.\"NAME\"]`, `[[classify]]` and `[[container]]`)"
                ),
                None => format!(
                    "{what}: this version supports only `[agent]`, `[arbiter]`, \
                     `[group.\"NAME\"]`, `[[classify]]` and `[[container]]` tables; remove \
                     it or move its settings into a group"
                ),
            },
        );
    }
    let hint = closest(name, known.iter().copied())
        .map(|k| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    ConfigError::invalid(
        span,
        format!(
            "unknown key `{name}`{place}{hint}: expected {}",
            one_of(&known)
        ),
    )
}

/// How to name the table that the byte `offset` is in: "`[agent]`",
/// "`network`" (the last part of its header), "a `when` rule", or the key of
/// the inline table it is in ("`admin`").
fn table_of(source: &SourceMap<'_>, offset: usize) -> String {
    let before = source.text(0..offset);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = &before[line_start..];
    if let Some(open) = line.rfind('{') {
        return key_before(source, line_start + open)
            .map(|k| format!("`{k}`"))
            .unwrap_or_default();
    }
    let Some(header) = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
    else {
        return String::new();
    };
    let header = header.split(']').next().unwrap_or(header);
    let last = header[last_part_start(header)..].trim().trim_matches('"');
    let start = last_part_start(header);
    if header.starts_with("[[") {
        format!("a `{last}` rule")
    } else if header.contains('.') && header[..start].trim() != "[group." {
        format!("`{last}`")
    } else {
        format!("`{header}]`")
    }
}

/// The key of `KEY = ...` whose value starts at `offset`, if on its line.
fn key_before(source: &SourceMap<'_>, offset: usize) -> Option<String> {
    let before = source.text(0..offset);
    let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
    let (key, _) = line.rsplit_once('=')?;
    let key = key.trim().trim_matches('"');
    let key = key.rsplit(['{', ',']).next().unwrap_or(key).trim();
    (!key.is_empty()).then(|| key.to_owned())
}

/// `before` ends with `KEY =` (and blanks): where KEY starts.
fn key_start(before: &str) -> Option<usize> {
    let text = before.trim_end_matches([' ', '\t']);
    let text = text.strip_suffix('=')?.trim_end_matches([' ', '\t']);
    let end = text.len();
    let start = if let Some(rest) = text.strip_suffix('"') {
        rest.rfind('"')?
    } else if let Some(rest) = text.strip_suffix('\'') {
        rest.rfind('\'')?
    } else {
        let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let start = text.trim_end_matches(bare).len();
        if start == end {
            return None;
        }
        start
    };
    Some(dotted_key_start(&text[..start]).unwrap_or(start))
}

/// In `[a."b".c` (a header without its `]`), where the last part starts.
fn last_part_start(header: &str) -> usize {
    let mut quoted = None;
    let mut last = header.trim_start_matches('[').len();
    last = header.len() - last;
    for (i, c) in header.char_indices() {
        match (quoted, c) {
            (None, '"' | '\'') => quoted = Some(c),
            (Some(q), c) if c == q => quoted = None,
            (None, '.') => last = i + 1,
            _ => {}
        }
    }
    last + (header[last..].len() - header[last..].trim_start().len())
}

/// "`.`, `]`" -> "`.` or `]`".
fn or_list(list: &str) -> String {
    match list.rsplit_once(", ") {
        Some((head, last)) => format!("{head} or {last}"),
        None => list.to_owned(),
    }
}

/// Turns the typed tables into the model; the methods live in `group.rs` and
/// `enforce.rs`.
pub(super) struct Reader<'s, 'a> {
    pub(super) source: &'s SourceMap<'a>,
}

impl Reader<'_, '_> {
    /// Where a value (or key) from toml starts.
    pub(super) fn at<T>(&self, value: &Spanned<T>) -> Span {
        self.source.span(value.span().start)
    }

    /// Where the key of the value at `value` starts (`KEY = VALUE`, dotted or
    /// quoted keys too), or the value itself if no key precedes it there.
    pub(super) fn key_of<T>(&self, value: &Spanned<T>) -> Span {
        let start = value.span().start;
        self.source
            .span(key_start(self.source.text(0..start)).unwrap_or(start))
    }

    /// Where a table is named: the last part of its `[header]` (`network` in
    /// `[group."web".network]`), or the key of an inline table.
    pub(super) fn table_at<T>(&self, table: &Spanned<T>) -> Span {
        let range = table.span();
        let text = self.source.text(range.clone());
        if text.starts_with('[') {
            let header = text.split(']').next().unwrap_or_default();
            return self.source.span(range.start + last_part_start(header));
        }
        self.key_of(table)
    }

    /// The text of a string value, or an error at the value showing `example`.
    pub(super) fn string<'v>(
        &self,
        key: &str,
        value: &'v Spanned<Raw>,
        example: &str,
    ) -> Result<(&'v str, Span), ConfigError> {
        let span = self.at(value);
        match value.get_ref().as_str() {
            Some(text) => Ok((text, span)),
            None => Err(ConfigError::invalid(
                span,
                format!(
                    "`{key}` is {}: write it as a string, such as `{key} = {example}`",
                    value.get_ref().kind()
                ),
            )),
        }
    }

    /// An array of strings, each with its own span. `[]` is allowed.
    pub(super) fn strings<'v>(
        &self,
        key: &str,
        value: &'v Spanned<Raw>,
        example: &str,
    ) -> Result<Vec<(&'v str, Span)>, ConfigError> {
        let Raw::Array(items) = value.get_ref() else {
            return Err(ConfigError::invalid(
                self.at(value),
                format!(
                    "`{key}` is {}: write an array of strings, such as `{key} = {example}`",
                    value.get_ref().kind()
                ),
            ));
        };
        items
            .iter()
            .map(|item| match item.get_ref().as_str() {
                Some(text) => Ok((text, self.at(item))),
                None => Err(ConfigError::invalid(
                    self.at(item),
                    format!(
                        "`{key}` entries must be strings in quotes, not {}: such as `{key} = \
                         {example}`",
                        item.get_ref().kind()
                    ),
                )),
            })
            .collect()
    }
}

/// `before` is the text up to the last part of a key; if that part follows a
/// `.`, the offset at which the whole dotted key starts.
pub(super) fn dotted_key_start(before: &str) -> Option<usize> {
    let blank = [' ', '\t'];
    let mut start = before.len();
    let mut moved = false;
    loop {
        let text = before[..start].trim_end_matches(blank);
        let Some(text) = text.strip_suffix('.') else {
            return moved.then_some(start);
        };
        let text = text.trim_end_matches(blank);
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
        moved = true;
    }
}
