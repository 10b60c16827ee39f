//! `[[classify]]` tables into [`ClassifyRule`]s (the classify engine runs
//! them; users and groups are looked up when it loads them).

use toml::Spanned;

use super::file::{ClassifyTable, Leaf};
use super::raw::Raw;
use super::read::Reader;
use crate::config::ClassifyRule;
use crate::config::error::ConfigError;
use crate::config::model::Spanned as Sp;

impl Reader<'_, '_> {
    /// A non-empty string key of a rule.
    pub(super) fn rule_string(
        &self,
        key: &str,
        value: &Leaf,
    ) -> Result<Option<Sp<String>>, ConfigError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let (text, span) = self.string(key, value, "\"NAME\"")?;
        if text.is_empty() {
            return Err(ConfigError::invalid(
                span,
                format!("`{key}` is empty: name one, or leave the key out"),
            ));
        }
        Ok(Some(Sp {
            value: text.to_string(),
            span,
        }))
    }

    fn rule_bool(&self, key: &str, value: &Leaf) -> Result<bool, ConfigError> {
        match value {
            None => Ok(false),
            Some(v) => match v.get_ref() {
                Raw::Boolean(b) => Ok(*b),
                other => Err(ConfigError::invalid(
                    self.at(v),
                    format!(
                        "`{key}` is {}: write `{key} = true` or `{key} = false` (no quotes)",
                        other.kind()
                    ),
                )),
            },
        }
    }

    pub(super) fn classify(
        &self,
        table: &Spanned<ClassifyTable>,
    ) -> Result<ClassifyRule, ConfigError> {
        let t = table.get_ref();
        let span = self.table_at(table);
        let comm = self.rule_string("comm", &t.comm)?;
        if let Some(c) = &comm
            && c.value.contains('/')
        {
            return Err(ConfigError::invalid(
                c.span.clone(),
                "`comm` is a program's base name, without `/`: use `exe` for a path",
            ));
        }
        let mut controllers = Vec::new();
        if let Some(value) = &t.controllers {
            let list = self.strings("controllers", value, "[\"cpu\", \"memory\"]")?;
            if list.is_empty() {
                return Err(ConfigError::invalid(
                    self.at(value),
                    "`controllers` is empty: name some, or leave the key out for all",
                ));
            }
            for (c, at) in list {
                if c.is_empty() || c.contains([',', ' ']) {
                    return Err(ConfigError::invalid(
                        at,
                        "`controllers` entries are controller names in quotes, such as \"cpu\", or \"*\"",
                    ));
                }
                controllers.push(c.to_string());
            }
        }
        let rule = ClassifyRule {
            span: span.clone(),
            user: self.rule_string("user", &t.user)?,
            group: self.rule_string("group", &t.group)?,
            exe: self.rule_string("exe", &t.exe)?,
            comm,
            controllers,
            destination: self
                .rule_string("destination", &t.destination)?
                .unwrap_or(Sp {
                    value: String::new(),
                    span: span.clone(),
                }),
            ignore: self.rule_bool("ignore", &t.ignore)?,
            hold: self.rule_bool("hold", &t.hold)?,
        };
        if let (Some(_), Some(g)) = (&rule.user, &rule.group) {
            return Err(ConfigError::invalid(
                g.span.clone(),
                "a rule matches a `user` or a `group`, not both: write two rules",
            ));
        }
        if let (Some(_), Some(c)) = (&rule.exe, &rule.comm) {
            return Err(ConfigError::invalid(
                c.span.clone(),
                "a rule matches an `exe` or a `comm`, not both: write two rules",
            ));
        }
        if let Some(why) = crate::cgroup::destination_problem(&rule.destination.value) {
            return Err(ConfigError::invalid(
                rule.destination.span.clone(),
                format!(
                    "`destination` has {why}: name the group by its path below the hierarchy's \
                     root, such as `destination = \"users/%u\"`"
                ),
            ));
        }
        if t.destination.is_none() && !rule.ignore {
            return Err(ConfigError::invalid(
                span,
                "this `[[classify]]` rule has no `destination`: name the group matching processes \
                 go to, such as `destination = \"batch\"`",
            ));
        }
        Ok(rule)
    }
}
