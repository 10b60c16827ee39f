//! A `[group."NAME"]` table into the model: controller settings (quoted keys,
//! dotted keys and per-controller sub-tables alike), `controllers` and `perm`.
//! The enforcement keys are read by `enforce.rs`.

use toml::Spanned;

use super::file::{GroupTable, OwnerTable, PermTable};
use super::raw::Raw;
use super::read::{Reader, dotted_key_start};
use crate::config::error::{ConfigError, position};
use crate::config::model::{ControllerSpec, GroupSpec, Owner, Setting, Span};
use crate::config::perm::{DPERM_IN_TASK, OwnerKind, PermField};
use crate::config::suggest::{closest, did_you_mean};

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

type Warnings = Vec<(Span, String)>;

impl Reader<'_, '_> {
    pub(super) fn group(
        &self,
        name: &Spanned<String>,
        body: &Spanned<GroupTable>,
        warnings: &mut Warnings,
    ) -> Result<GroupSpec, ConfigError> {
        let span = self.at(name);
        if name.get_ref().is_empty() {
            return Err(ConfigError::invalid(
                span,
                "empty group name: write the group's path, such as `[group.\"web/api\"]`",
            ));
        }
        let table = body.get_ref();
        let mut group = GroupSpec::new(name.get_ref().clone(), span);
        if let Some(controllers) = &table.controllers {
            self.controllers(&mut group, controllers)?;
        }
        for (key, value) in &table.settings {
            self.group_entry(&mut group, key, value)?;
        }
        if let Some(perm) = &table.perm {
            self.perm(&mut group, perm)?;
        }
        if let Some(priority) = &table.priority {
            group.priority = Some(self.priority(priority)?);
        }
        group.floors = self.floors(table)?;
        if let Some(network) = &table.network {
            group.network = Some(self.network(network, warnings)?);
        }
        if let Some(syscalls) = &table.syscalls {
            group.syscalls = Some(self.syscalls(syscalls, warnings)?);
        }
        if let Some(when) = &table.when {
            group.when = self.when(when, warnings)?;
        }
        Ok(group)
    }

    /// A key of the group that is not one of its own: a setting, or a table
    /// of settings named after a controller.
    fn group_entry(
        &self,
        group: &mut GroupSpec,
        key: &Spanned<String>,
        value: &Spanned<Raw>,
    ) -> Result<(), ConfigError> {
        let name = key.get_ref().as_str();
        let key_span = self.at(key);
        match value.get_ref() {
            Raw::Table(entries) => {
                let misspelt = (!name.contains('.') && !CONTROLLERS.contains(&name))
                    .then(|| closest(name, GroupTable::KEYS))
                    .flatten();
                if let Some(known) = misspelt {
                    return Err(ConfigError::invalid(
                        key_span,
                        format!(
                            "unknown table `{name}` in group `{}`: did you mean `{known}`? \
                             (`{name}` is not a cgroup controller either)",
                            group.name
                        ),
                    ));
                }
                let controller = name.split('.').next().unwrap_or_default();
                self.controller(group, controller, &key_span)?;
                self.flatten(group, name, entries)
            }
            _ if name.contains('.') => self.setting(group, name.to_owned(), key_span, value),
            _ => Err(ConfigError::invalid(
                key_span,
                format!(
                    "unknown key `{name}` in group `{}`: expected a controller file such as \
                     `memory.max`, or `controllers`/`perm`/`priority`/`network`/`syscalls`/\
                     `when`, or a floor (`min_cpu`, `min_memory`, `min_io_weight`, \
                     `min_egress`, `min_ingress`){}",
                    group.name,
                    did_you_mean(name, GroupTable::KEYS),
                ),
            )),
        }
    }

    /// Settings from the sub-table `prefix`.
    fn flatten(
        &self,
        group: &mut GroupSpec,
        prefix: &str,
        entries: &[(Spanned<String>, Spanned<Raw>)],
    ) -> Result<(), ConfigError> {
        for (key, value) in entries {
            let name = format!("{prefix}.{}", key.get_ref());
            match value.get_ref() {
                Raw::Table(inner) => self.flatten(group, &name, inner)?,
                _ => {
                    let span = self.dotted_key_span(key);
                    self.setting(group, name, span, value)?;
                }
            }
        }
        Ok(())
    }

    /// Where the whole dotted key ending in `last` starts (`memory.max`
    /// points at `memory`); a key of a `[header]` or inline table points at
    /// itself. A dotted table shared by several keys (`memory.max`,
    /// `memory.high`) only remembers its first mention, so we walk back over
    /// the text instead.
    fn dotted_key_span(&self, last: &Spanned<String>) -> Span {
        let start = last.span().start;
        let before = self.source.text(0..start);
        self.source.span(dotted_key_start(before).unwrap_or(start))
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
        value: &Spanned<Raw>,
    ) -> Result<(), ConfigError> {
        let value_span = self.at(value);
        let text = match value.get_ref() {
            Raw::String(text) => text.clone(),
            Raw::Integer(number) => number.to_string(),
            Raw::Float(number) => {
                return Err(ConfigError::invalid(
                    value_span,
                    format!("`{key}` is a float: write it as a string, such as `\"{number}\"`"),
                ));
            }
            Raw::Boolean(_) => {
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
                    "`{key}` is set twice in group `{}` (first at {first}): keep only one",
                    group.name
                ),
            ));
        }
        let controller = key.split('.').next().unwrap_or_default().to_owned();
        self.controller(group, &controller, &span)?
            .settings
            .push(Setting {
                key,
                value: text,
                span,
                value_span,
            });
        Ok(())
    }

    /// `controllers = ["cpuset", ...]`: controllers to create the group in.
    fn controllers(&self, group: &mut GroupSpec, value: &Spanned<Raw>) -> Result<(), ConfigError> {
        let Raw::Array(items) = value.get_ref() else {
            return Err(ConfigError::invalid(
                self.key_of(value),
                "`controllers` must be an array of controller names, such as \
                 `controllers = [\"cpuset\"]`",
            ));
        };
        let mut listed: Vec<&str> = Vec::new();
        for item in items {
            let span = self.at(item);
            let Some(name) = item.get_ref().as_str() else {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "`controllers` entries must be controller names in quotes, not {}",
                        item.get_ref().kind()
                    ),
                ));
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

    fn perm(&self, group: &mut GroupSpec, perm: &Spanned<PermTable>) -> Result<(), ConfigError> {
        let table = perm.get_ref();
        for (kind, owner) in [
            (OwnerKind::Task, &table.task),
            (OwnerKind::Admin, &table.admin),
        ] {
            if let Some(owner) = owner {
                *kind.slot(&mut group.perm) = Some(self.owner(kind, owner)?);
            }
        }
        Ok(())
    }

    fn owner(&self, kind: OwnerKind, table: &Spanned<OwnerTable>) -> Result<Owner, ConfigError> {
        let span = self.line_start(table);
        let mut owner = Owner {
            uid: None,
            gid: None,
            fperm: None,
            dperm: None,
            span,
        };
        let t = table.get_ref();
        for (field, value) in [
            (PermField::Uid, &t.uid),
            (PermField::Gid, &t.gid),
            (PermField::Fperm, &t.fperm),
            (PermField::Dperm, &t.dperm),
        ] {
            let Some(value) = value else { continue };
            if kind == OwnerKind::Task && field == PermField::Dperm {
                return Err(ConfigError::invalid(self.key_of(value), DPERM_IN_TASK));
            }
            let text = self.perm_text(field, value)?;
            field
                .set(&mut owner, &text)
                .map_err(|message| ConfigError::invalid(self.at(value), message))?;
        }
        Ok(owner)
    }

    /// Where the line holding `value` starts: an inline owner table is
    /// reported at its key (`task = { ... }`).
    fn line_start<T>(&self, value: &Spanned<T>) -> Span {
        let start = value.span().start;
        let before = self.source.text(0..start);
        let line = before.rfind('\n').map_or(0, |i| i + 1);
        let indent = before[line..].len() - before[line..].trim_start().len();
        self.source.span(line + indent)
    }

    /// A perm value as cgconfig.conf would have written it. Integers count as the
    /// digits they are written with (`fperm = 660` is mode 0o660), except TOML's own
    /// radix literals (`fperm = 0o660`), which already are the mode.
    fn perm_text(&self, field: PermField, value: &Spanned<Raw>) -> Result<String, ConfigError> {
        let is_mode = matches!(field, PermField::Fperm | PermField::Dperm);
        match value.get_ref() {
            Raw::String(text) => Ok(text.clone()),
            Raw::Integer(number) if is_mode => {
                let literal = self.source.text(value.span()).trim_start_matches('+');
                let radix_literal = ["0o", "0x", "0b"].iter().any(|p| literal.starts_with(p));
                Ok(if radix_literal {
                    format!("{number:o}")
                } else {
                    number.to_string()
                })
            }
            Raw::Integer(number) if *number >= 0 => Ok(number.to_string()),
            other => {
                let example = if is_mode { "\"660\"" } else { "\"root\"" };
                Err(ConfigError::invalid(
                    self.at(value),
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
