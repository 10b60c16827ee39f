//! `[[classify]]`: rules that place new processes, the TOML form of
//! cgrules.conf lines (see `classify::rules`).
//!
//! ```toml
//! [[classify]]
//! user = "alice"                  # or group = "staff"; neither: every user
//! exe = "/usr/bin/python3"        # or comm = "python3"; neither: every program
//! controllers = ["cpu", "memory"] # default: every controller ("*")
//! destination = "users/%u"        # %u %U %g %G %p %P as in cgrules.conf
//! ```
//!
//! `exe` matches the process's executable path (or a script's path), `comm`
//! its base name; either may end in `*` to match a prefix. `ignore = true`
//! makes a rule that leaves matching processes where they are. The rules are
//! tried in file order after `/etc/cgrules.conf`'s; the first match wins.
//! `hold = true` (on any rule) stops each process a rule may concern at exec
//! until it is placed, so it runs nothing in its old group; see README for
//! what that costs (a parent watching its children sees the stop).

use toml_edit::{Item, Key, TableLike, Value};

use super::error::ConfigError;
use super::model::{Span, Spanned};
use super::toml_policy::{Reader, entries, kind, value_kind};

/// One `[[classify]]` table, syntax-checked (users and groups are looked
/// up when the rules are loaded).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyRule {
    /// Where the table starts.
    pub span: Span,
    pub user: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
    pub exe: Option<Spanned<String>>,
    pub comm: Option<Spanned<String>>,
    /// Empty for every controller.
    pub controllers: Vec<String>,
    pub destination: Spanned<String>,
    pub ignore: bool,
    pub hold: bool,
}

const KEYS: [&str; 8] = [
    "user",
    "group",
    "exe",
    "comm",
    "controllers",
    "destination",
    "ignore",
    "hold",
];

fn invalid(span: Span, message: impl Into<String>) -> ConfigError {
    ConfigError::invalid(span, message)
}

impl Reader<'_, '_> {
    /// The `classify` key: an array of tables.
    pub(super) fn classify(
        &self,
        key: &Key,
        value: &Item,
    ) -> Result<Vec<ClassifyRule>, ConfigError> {
        let key_span = self.key_span(key);
        let tables: Vec<(&dyn TableLike, Span)> = match value {
            Item::ArrayOfTables(t) => t
                .iter()
                .map(|t| (t as &dyn TableLike, self.span(t.span(), &key_span)))
                .collect(),
            Item::Value(Value::Array(a)) => a
                .iter()
                .map(|item| {
                    let span = self.span(item.span(), &key_span);
                    item.as_inline_table()
                        .map(|t| (t as &dyn TableLike, span.clone()))
                        .ok_or_else(|| {
                            invalid(
                                span,
                                format!(
                                    "`classify` entries must be tables, not {}: write each rule \
                                     under its own `[[classify]]` header",
                                    value_kind(item)
                                ),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(invalid(
                    self.value_span(other, &key_span),
                    format!(
                        "`classify` is {}: write each rule under its own `[[classify]]` header \
                         (double brackets)",
                        kind(other)
                    ),
                ));
            }
        };
        tables
            .into_iter()
            .map(|(t, span)| self.classify_rule(t, span))
            .collect()
    }

    fn classify_string(&self, key: &Key, value: &Item) -> Result<Spanned<String>, ConfigError> {
        let span = self.value_span(value, &self.key_span(key));
        match value.as_str() {
            Some(s) if !s.is_empty() => Ok(Spanned {
                value: s.to_string(),
                span,
            }),
            Some(_) => Err(invalid(
                span,
                format!("`{}` is empty: name one, or leave the key out", key.get()),
            )),
            None => Err(invalid(
                span,
                format!(
                    "`{}` is {}: write it as a string in quotes",
                    key.get(),
                    kind(value)
                ),
            )),
        }
    }

    fn classify_rule(
        &self,
        table: &dyn TableLike,
        span: Span,
    ) -> Result<ClassifyRule, ConfigError> {
        let mut rule = ClassifyRule {
            span: span.clone(),
            user: None,
            group: None,
            exe: None,
            comm: None,
            controllers: Vec::new(),
            destination: Spanned {
                value: String::new(),
                span: span.clone(),
            },
            ignore: false,
            hold: false,
        };
        let mut has_destination = false;
        for (key, value) in entries(table) {
            match key.get() {
                "user" => rule.user = Some(self.classify_string(key, value)?),
                "group" => rule.group = Some(self.classify_string(key, value)?),
                "exe" => rule.exe = Some(self.classify_string(key, value)?),
                "comm" => {
                    let c = self.classify_string(key, value)?;
                    if c.value.contains('/') {
                        return Err(invalid(
                            c.span,
                            "`comm` is a program's base name, without `/`: use `exe` for a path",
                        ));
                    }
                    rule.comm = Some(c);
                }
                "destination" => {
                    rule.destination = self.classify_string(key, value)?;
                    has_destination = true;
                }
                "controllers" => {
                    let span = self.value_span(value, &self.key_span(key));
                    let list = value.as_array().ok_or_else(|| {
                        invalid(
                            span.clone(),
                            "`controllers` must be an array of strings, such as `[\"cpu\", \"memory\"]`",
                        )
                    })?;
                    for item in list {
                        match item.as_str() {
                            Some(c) if !c.is_empty() && !c.contains([',', ' ']) => {
                                rule.controllers.push(c.to_string())
                            }
                            _ => {
                                return Err(invalid(
                                    self.span(item.span(), &span),
                                    "`controllers` entries are controller names in quotes, such as \"cpu\", or \"*\"",
                                ));
                            }
                        }
                    }
                    if rule.controllers.is_empty() {
                        return Err(invalid(
                            span,
                            "`controllers` is empty: name some, or leave the key out for all",
                        ));
                    }
                }
                "ignore" => {
                    rule.ignore = value.as_bool().ok_or_else(|| {
                        invalid(
                            self.value_span(value, &self.key_span(key)),
                            "`ignore` is true or false",
                        )
                    })?;
                }
                other => {
                    return Err(invalid(
                        self.key_span(key),
                        format!(
                            "unknown key `{other}` in `[[classify]]`: expected one of {}",
                            KEYS.iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
        if let (Some(_), Some(g)) = (&rule.user, &rule.group) {
            return Err(invalid(
                g.span.clone(),
                "a rule matches a `user` or a `group`, not both: write two rules",
            ));
        }
        if let (Some(_), Some(c)) = (&rule.exe, &rule.comm) {
            return Err(invalid(
                c.span.clone(),
                "a rule matches an `exe` or a `comm`, not both: write two rules",
            ));
        }
        if !has_destination && !rule.ignore {
            return Err(invalid(
                span,
                "this `[[classify]]` rule has no `destination`: name the group matching processes \
                 go to, such as `destination = \"batch\"`",
            ));
        }
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse_toml;

    #[test]
    fn classify_tables() {
        let p = parse_toml(
            "[[classify]]\nuser = \"alice\"\nexe = \"/usr/bin/python3\"\ncontrollers = [\"cpu\"]\n\
             destination = \"u/%u\"\n\n[[classify]]\ngroup = \"staff\"\ncomm = \"make\"\ndestination = \"b\"\n",
            Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(p.classify.len(), 2);
        assert_eq!(p.classify[0].user.as_ref().unwrap().value, "alice");
        assert_eq!(p.classify[0].controllers, vec!["cpu"]);
        assert_eq!(p.classify[1].comm.as_ref().unwrap().value, "make");
        assert!(p.classify[1].controllers.is_empty());
    }

    #[test]
    fn classify_errors_point_at_the_problem() {
        let cases = [
            ("[[classify]]\nuser = \"a\"\n", "no `destination`"),
            (
                "[[classify]]\nuser = \"a\"\ngroup = \"b\"\ndestination = \"x\"\n",
                "not both",
            ),
            (
                "[[classify]]\ncomm = \"a/b\"\ndestination = \"x\"\n",
                "without `/`",
            ),
            ("[[classify]]\nuser = 3\ndestination = \"x\"\n", "string"),
            (
                "[[classify]]\nusr = \"a\"\ndestination = \"x\"\n",
                "unknown key `usr`",
            ),
            ("[classify]\nuser = \"a\"\n", "double brackets"),
        ];
        for (text, want) in cases {
            let e = parse_toml(text, Path::new("p.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.starts_with("p.toml:"),
                "{text:?}: {e}"
            );
        }
    }
}
