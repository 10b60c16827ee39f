//! Parser for libcgroup's cgconfig.conf, read unchanged (see `man cgconfig.conf`).
//!
//! ```text
//! file       := ( group | template | default | mount )*
//! group      := "group" NAME "{" ( perm | controller )* "}"
//! template   := "template" NAME "{" ( perm | controller )* "}"    -- checked, then ignored
//! default    := "default" "{" perm "}"
//! mount      := "mount" "{" ( KEY "=" VALUE ";" )* "}"            -- checked, then ignored
//! perm       := "perm" "{" ( ("task" | "admin") "{" ( FIELD "=" VALUE ";" )* "}" )* "}"
//! controller := NAME "{" ( KEY "=" VALUE ";" )* "}"
//! ```
//!
//! Names, keys and values are words or quoted strings. Only the syntax is checked
//! here; whether a controller or key exists on this host is decided later, using
//! the spans recorded in the model.

use std::collections::HashMap;
use std::path::Path;

use super::error::{ConfigError, position};
use super::lexer::{Lexer, Token, TokenKind};
use super::model::{ControllerSpec, GroupSpec, Owner, Perm, Policy, Setting, Span};
use super::perm::{self, DPERM_IN_TASK, FieldError, OwnerKind};

/// Parses cgconfig.conf text; `file` is only used in spans.
pub fn parse_cgconfig(text: &str, file: &Path) -> Result<Policy, ConfigError> {
    Parser {
        lexer: Lexer::new(text, file),
        policy: Policy::default(),
        default_perm: None,
        seen: HashMap::new(),
    }
    .file()
}

/// The statements allowed at the top of the file.
#[derive(Clone, Copy)]
enum TopLevel {
    Group,
    Template,
    Default,
    Mount,
    Namespace,
}

impl TopLevel {
    fn from_token(token: &Token) -> Option<Self> {
        match &token.kind {
            TokenKind::Word(word) => match word.as_str() {
                "group" => Some(Self::Group),
                "template" => Some(Self::Template),
                "default" => Some(Self::Default),
                "mount" => Some(Self::Mount),
                "namespace" => Some(Self::Namespace),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A `key = value;` line.
struct Assignment {
    key: String,
    key_span: Span,
    value: String,
    value_span: Span,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    policy: Policy,
    /// The `default` block, applied to all groups once the whole file is read.
    default_perm: Option<(Span, Perm)>,
    /// Where each group was defined: a lookup per group keeps reading linear in
    /// the number of groups (a scan of those before was quadratic: 100,000 groups
    /// took minutes).
    seen: HashMap<String, Span>,
}

impl Parser<'_> {
    fn file(mut self) -> Result<Policy, ConfigError> {
        loop {
            let token = self.next()?;
            if token.kind == TokenKind::Eof {
                break;
            }
            match TopLevel::from_token(&token) {
                Some(TopLevel::Group) => self.group()?,
                Some(TopLevel::Template) => self.template(token)?,
                Some(TopLevel::Default) => self.default(token)?,
                Some(TopLevel::Mount) => self.mount(token)?,
                Some(TopLevel::Namespace) => {
                    return Err(ConfigError::invalid(
                        token.span,
                        "`namespace` blocks are not supported: enforcer does not remap group \
                         paths; remove the block and write each group's full path instead",
                    ));
                }
                None => {
                    return Err(ConfigError::syntax(
                        token.span.clone(),
                        "`group`, `mount`, `default` or `template`",
                        token.describe(),
                    ));
                }
            }
        }
        if let Some((_, default)) = &self.default_perm {
            perm::apply_default(&mut self.policy.groups, default);
        }
        Ok(self.policy)
    }

    fn next(&mut self) -> Result<Token, ConfigError> {
        self.lexer.next_token()
    }

    /// Consumes the next token, which must be the punctuation `kind`.
    fn expect(&mut self, kind: TokenKind, expected: &str) -> Result<Token, ConfigError> {
        let token = self.next()?;
        if token.kind == kind {
            Ok(token)
        } else {
            Err(ConfigError::syntax(
                token.span.clone(),
                expected,
                token.describe(),
            ))
        }
    }

    /// A group or template name: a word or a non-empty quoted string.
    fn name(&mut self, expected: &str) -> Result<(String, Span), ConfigError> {
        let token = self.next()?;
        match token.text() {
            Some(name) if !name.is_empty() => Ok((name.to_owned(), token.span)),
            _ => Err(ConfigError::syntax(
                token.span.clone(),
                expected,
                token.describe(),
            )),
        }
    }

    fn group(&mut self) -> Result<(), ConfigError> {
        let (name, span) = self.name("a group name after `group`")?;
        if let Some(first) = self.seen.get(&name) {
            return Err(ConfigError::invalid(
                span,
                format!(
                    "group `{name}` is defined twice (first at {}): merge the two blocks into one",
                    position(first)
                ),
            ));
        }
        self.seen.insert(name.clone(), span.clone());
        let group = self.group_body(name, span)?;
        self.policy.groups.push(group);
        Ok(())
    }

    /// Templates are only used by cgrulesengd, which enforcer does not replace. They
    /// are parsed like groups, so a broken template is still reported, then dropped.
    fn template(&mut self, keyword: Token) -> Result<(), ConfigError> {
        let (name, span) = self.name("a template name after `template`")?;
        self.group_body(name.clone(), span)?;
        self.policy.warnings.push((
            keyword.span,
            format!(
                "template `{name}` ignored: templates are used only by cgrulesengd, which \
                 enforcer does not provide; remove the block to silence this warning"
            ),
        ));
        Ok(())
    }

    /// Hierarchies are found in /proc/self/mountinfo, so `mount` only gets checked.
    fn mount(&mut self, keyword: Token) -> Result<(), ConfigError> {
        self.expect(TokenKind::Open, "`{` after `mount`")?;
        loop {
            let token = self.next()?;
            match token.kind {
                TokenKind::Close => break,
                TokenKind::Word(_) | TokenKind::Quoted(_) => {
                    self.assignment(token)?;
                }
                TokenKind::Eof => return Err(unclosed(&token, "the `mount` block")),
                _ => {
                    return Err(ConfigError::syntax(
                        token.span.clone(),
                        "`CONTROLLER = PATH;` or `}`",
                        token.describe(),
                    ));
                }
            }
        }
        self.policy.warnings.push((
            keyword.span,
            "`mount` block ignored: enforcer uses the cgroup hierarchies already mounted \
             (read from /proc/self/mountinfo); mount them before running, and remove this \
             block to silence this warning"
                .to_owned(),
        ));
        Ok(())
    }

    fn default(&mut self, keyword: Token) -> Result<(), ConfigError> {
        if let Some((first, _)) = &self.default_perm {
            return Err(ConfigError::invalid(
                keyword.span,
                format!(
                    "second `default` block (the first is at {}): merge them into one",
                    position(first)
                ),
            ));
        }
        self.expect(TokenKind::Open, "`{` after `default`")?;
        let token = self.next()?;
        if token.kind != TokenKind::Word("perm".to_owned()) {
            return Err(ConfigError::syntax(
                token.span.clone(),
                "`perm` (a `default` block holds only `perm { ... }`)",
                token.describe(),
            ));
        }
        let perm = self.perm()?;
        self.expect(TokenKind::Close, "`}` to close the `default` block")?;
        self.default_perm = Some((keyword.span, perm));
        Ok(())
    }

    /// Everything from the `{` after a group's (or template's) name to its `}`.
    fn group_body(&mut self, name: String, span: Span) -> Result<GroupSpec, ConfigError> {
        self.expect(TokenKind::Open, &format!("`{{` after group name `{name}`"))?;
        let mut group = GroupSpec::new(name, span);
        let mut perm_at: Option<Span> = None;
        loop {
            let token = self.next()?;
            match &token.kind {
                TokenKind::Close => return Ok(group),
                TokenKind::Word(word) if word == "perm" => {
                    if let Some(first) = &perm_at {
                        return Err(ConfigError::invalid(
                            token.span,
                            format!(
                                "group `{}` has a second `perm` block (the first is at {}): \
                                 merge them into one",
                                group.name,
                                position(first)
                            ),
                        ));
                    }
                    group.perm = self.perm()?;
                    perm_at = Some(token.span);
                }
                TokenKind::Word(_) | TokenKind::Quoted(_) => self.controller(&mut group, token)?,
                TokenKind::Eof => {
                    return Err(unclosed(&token, &format!("group `{}`", group.name)));
                }
                _ => {
                    return Err(ConfigError::syntax(
                        token.span.clone(),
                        "a controller block such as `cpu { ... }`, `perm { ... }` or `}`",
                        token.describe(),
                    ));
                }
            }
        }
    }

    /// `NAME { key = value; ... }` inside a group; `name_token` is already read.
    fn controller(&mut self, group: &mut GroupSpec, name_token: Token) -> Result<(), ConfigError> {
        let name = name_token.text().unwrap_or_default().to_owned();
        if name.is_empty() {
            return Err(ConfigError::syntax(
                name_token.span.clone(),
                "a controller name",
                name_token.describe(),
            ));
        }
        let token = self.next()?;
        match token.kind {
            TokenKind::Open => {}
            // The classic mistake: a setting written directly in the group.
            TokenKind::Equals => {
                let controller = name.split_once('.').map_or("CONTROLLER", |(c, _)| c);
                return Err(ConfigError::invalid(
                    name_token.span,
                    format!(
                        "setting `{name}` is outside any controller block: put it inside one, \
                         e.g. `{controller} {{ {name} = ...; }}`"
                    ),
                ));
            }
            _ => {
                return Err(ConfigError::syntax(
                    token.span.clone(),
                    format!("`{{` to open the `{name}` controller block"),
                    token.describe(),
                ));
            }
        }
        if let Some(first) = group.controllers.iter().find(|c| c.name == name) {
            return Err(ConfigError::invalid(
                name_token.span,
                format!(
                    "controller `{name}` appears twice in group `{}` (first at {}): merge the \
                     two blocks into one",
                    group.name,
                    position(&first.span)
                ),
            ));
        }
        let mut spec = ControllerSpec {
            name,
            span: name_token.span,
            settings: Vec::new(),
        };
        loop {
            let token = self.next()?;
            match token.kind {
                TokenKind::Close => break,
                TokenKind::Word(_) | TokenKind::Quoted(_) => {
                    let line = self.assignment(token)?;
                    if let Some(first) = spec.settings.iter().find(|s| s.key == line.key) {
                        return Err(ConfigError::invalid(
                            line.key_span,
                            format!(
                                "`{}` is set twice in group `{}` (first at {}): keep only one",
                                line.key,
                                group.name,
                                position(&first.span)
                            ),
                        ));
                    }
                    spec.settings.push(Setting {
                        key: line.key,
                        value: line.value,
                        span: line.key_span,
                        value_span: line.value_span,
                    });
                }
                TokenKind::Eof => {
                    return Err(unclosed(&token, &format!("the `{}` block", spec.name)));
                }
                _ => {
                    return Err(ConfigError::syntax(
                        token.span.clone(),
                        format!("a `{}` setting such as `KEY = VALUE;`, or `}}`", spec.name),
                        token.describe(),
                    ));
                }
            }
        }
        group.controllers.push(spec);
        Ok(())
    }

    /// `= VALUE ;` after `key_token`, which is already read.
    fn assignment(&mut self, key_token: Token) -> Result<Assignment, ConfigError> {
        let key = match key_token.text() {
            Some(key) if !key.is_empty() => key.to_owned(),
            _ => {
                return Err(ConfigError::syntax(
                    key_token.span.clone(),
                    "a setting name",
                    key_token.describe(),
                ));
            }
        };
        self.expect(TokenKind::Equals, &format!("`=` after `{key}`"))?;
        let token = self.next()?;
        let Some(value) = token.text().map(str::to_owned) else {
            return Err(ConfigError::syntax(
                token.span.clone(),
                format!("a value for `{key}`"),
                token.describe(),
            ));
        };
        self.expect(
            TokenKind::Semicolon,
            &format!("`;` after the value of `{key}`"),
        )?;
        Ok(Assignment {
            key,
            key_span: key_token.span,
            value,
            value_span: token.span,
        })
    }

    /// `{ task { ... } admin { ... } }` after the word `perm`.
    fn perm(&mut self) -> Result<Perm, ConfigError> {
        self.expect(TokenKind::Open, "`{` after `perm`")?;
        let mut perm = Perm::default();
        loop {
            let token = self.next()?;
            let kind = match &token.kind {
                TokenKind::Close => return Ok(perm),
                TokenKind::Word(word) => OwnerKind::from_keyword(word),
                TokenKind::Eof => return Err(unclosed(&token, "the `perm` block")),
                _ => None,
            };
            let Some(kind) = kind else {
                return Err(ConfigError::syntax(
                    token.span.clone(),
                    "`task`, `admin` or `}`",
                    token.describe(),
                ));
            };
            if let Some(first) = kind.slot(&mut perm) {
                return Err(ConfigError::invalid(
                    token.span,
                    format!(
                        "`{}` appears twice in this `perm` block (first at {}): merge them into one",
                        kind.keyword(),
                        position(&first.span)
                    ),
                ));
            }
            *kind.slot(&mut perm) = Some(self.owner(kind, token.span)?);
        }
    }

    /// `{ uid = ...; gid = ...; fperm = ...; dperm = ...; }` after `task`/`admin`.
    fn owner(&mut self, kind: OwnerKind, span: Span) -> Result<Owner, ConfigError> {
        self.expect(TokenKind::Open, &format!("`{{` after `{}`", kind.keyword()))?;
        let mut owner = Owner {
            uid: None,
            gid: None,
            fperm: None,
            dperm: None,
            span,
        };
        loop {
            let token = self.next()?;
            let field = match &token.kind {
                TokenKind::Close => return Ok(owner),
                TokenKind::Eof => {
                    return Err(unclosed(&token, &format!("the `{}` block", kind.keyword())));
                }
                TokenKind::Word(word) => kind.field(word),
                _ => Err(FieldError::Unknown),
            };
            let field = match field {
                Ok(field) => field,
                Err(FieldError::DpermInTask) => {
                    return Err(ConfigError::invalid(token.span, DPERM_IN_TASK));
                }
                Err(FieldError::Unknown) => {
                    return Err(ConfigError::syntax(
                        token.span.clone(),
                        kind.expected_fields_or_close(),
                        token.describe(),
                    ));
                }
            };
            if field.is_set(&owner) {
                return Err(ConfigError::invalid(
                    token.span,
                    format!(
                        "`{}` is set twice in `{}`: keep only one",
                        field.name(),
                        kind.keyword()
                    ),
                ));
            }
            let line = self.assignment(token)?;
            field
                .set(&mut owner, &line.value)
                .map_err(|message| ConfigError::invalid(line.value_span, message))?;
        }
    }
}

/// End of file inside a block.
fn unclosed(eof: &Token, what: &str) -> ConfigError {
    ConfigError::syntax(
        eof.span.clone(),
        format!("`}}` to close {what}"),
        eof.describe(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "#
# Copyright IBM Corporation. 2007
#
group foo {
cpu {
cpu.shares = 100;
}
memory {
memory.limit_in_bytes = 5000000;
}
}
";

    fn parse(text: &str) -> Policy {
        parse_cgconfig(text, Path::new("/etc/cgconfig.conf")).unwrap()
    }

    fn error(text: &str) -> String {
        parse_cgconfig(text, Path::new("t.conf"))
            .unwrap_err()
            .to_string()
    }

    fn at(span: &Span) -> (u32, u32) {
        (span.line, span.column)
    }

    #[test]
    fn seed_example() {
        let policy = parse(SEED);
        assert!(policy.warnings.is_empty());
        assert_eq!(policy.groups.len(), 1);
        let group = &policy.groups[0];
        assert_eq!(group.name, "foo");
        assert_eq!(at(&group.span), (4, 7));
        assert_eq!(group.span.file.as_path(), Path::new("/etc/cgconfig.conf"));
        assert!(group.perm.task.is_none() && group.perm.admin.is_none());

        let names: Vec<_> = group.controllers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpu", "memory"]);
        assert_eq!(at(&group.controllers[0].span), (5, 1));

        let shares = &group.controllers[0].settings[0];
        assert_eq!(
            (shares.key.as_str(), shares.value.as_str()),
            ("cpu.shares", "100")
        );
        assert_eq!(at(&shares.span), (6, 1));
        assert_eq!(at(&shares.value_span), (6, 14));

        let limit = &group.controllers[1].settings[0];
        assert_eq!(limit.key, "memory.limit_in_bytes");
        assert_eq!(limit.value, "5000000");
        assert_eq!(at(&limit.span), (9, 1));
        assert_eq!(at(&limit.value_span), (9, 25));
    }

    #[test]
    fn seed_example_with_cpuset() {
        let text = SEED.replacen(
            "group foo {\n",
            "group foo {\ncpuset { cpuset.cpus=\"0-5\"; }\n",
            1,
        );
        let policy = parse(&text);
        let group = &policy.groups[0];
        let names: Vec<_> = group.controllers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpuset", "cpu", "memory"]);
        let cpus = &group.controllers[0].settings[0];
        assert_eq!(
            (cpus.key.as_str(), cpus.value.as_str()),
            ("cpuset.cpus", "0-5")
        );
        assert_eq!(at(&cpus.span), (5, 10));
        // The value span points at the opening quote.
        assert_eq!(at(&cpus.value_span), (5, 22));
    }

    #[test]
    fn empty_blocks_quoted_names_and_bare_values() {
        let policy = parse(
            "group \"web/api\" {\n  cpuset { }\n  name=systemd { }\n  memory { memory.max = 50M; \
             memory.swap.max = max; }\n}\ngroup a/b { cpu { cpu.max = \"max 100000\"; } }\n",
        );
        let names: Vec<_> = policy.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["web/api", "a/b"]);
        let web = &policy.groups[0];
        assert_eq!(web.controllers[0].name, "cpuset");
        assert!(web.controllers[0].settings.is_empty());
        assert_eq!(web.controllers[1].name, "name=systemd");
        let values: Vec<_> = web.controllers[2]
            .settings
            .iter()
            .map(|s| s.value.as_str())
            .collect();
        assert_eq!(values, ["50M", "max"]);
        assert_eq!(
            policy.groups[1].controllers[0].settings[0].value,
            "max 100000"
        );
    }

    #[test]
    fn perm_blocks() {
        let policy = parse(
            "group foo {
  perm {
    task { uid = alice; gid = \"users\"; fperm = 660; }
    admin { uid = 0; gid = root; dperm = 775; fperm = 0644; }
  }
  cpu { }
}
group bar { perm { admin { uid = bob; } } cpu { } }
",
        );
        let foo = &policy.groups[0].perm;
        let task = foo.task.as_ref().unwrap();
        assert_eq!(task.uid.as_deref(), Some("alice"));
        assert_eq!(task.gid.as_deref(), Some("users"));
        assert_eq!(task.fperm, Some(0o660));
        assert_eq!(task.dperm, None);
        assert_eq!(at(&task.span), (3, 5));
        let admin = foo.admin.as_ref().unwrap();
        assert_eq!(admin.uid.as_deref(), Some("0"));
        assert_eq!(admin.dperm, Some(0o775));
        assert_eq!(admin.fperm, Some(0o644));
        assert_eq!(at(&admin.span), (4, 5));

        let bar = &policy.groups[1].perm;
        assert!(bar.task.is_none());
        let admin = bar.admin.as_ref().unwrap();
        assert_eq!(admin.uid.as_deref(), Some("bob"));
        assert_eq!(
            (admin.gid.as_ref(), admin.fperm, admin.dperm),
            (None, None, None)
        );
    }

    #[test]
    fn default_perm_fills_what_groups_leave_unset() {
        let policy = parse(
            "group plain { cpu { } }
group partial { perm { admin { uid = bob; } } cpu { } }
default {
  perm {
    task { uid = root; gid = root; fperm = 660; }
    admin { uid = root; gid = wheel; dperm = 775; fperm = 644; }
  }
}
",
        );
        let plain = &policy.groups[0].perm;
        let task = plain.task.as_ref().unwrap();
        assert_eq!(task.uid.as_deref(), Some("root"));
        assert_eq!(task.fperm, Some(0o660));
        // Taken whole from `default`, so it points there.
        assert_eq!(at(&task.span), (5, 5));
        assert_eq!(plain.admin.as_ref().unwrap().dperm, Some(0o775));

        // libcgroup merges field by field: the group's own uid wins.
        let partial = &policy.groups[1].perm;
        let admin = partial.admin.as_ref().unwrap();
        assert_eq!(admin.uid.as_deref(), Some("bob"));
        assert_eq!(admin.gid.as_deref(), Some("wheel"));
        assert_eq!(admin.dperm, Some(0o775));
        assert_eq!(at(&admin.span), (2, 24));
        assert_eq!(partial.task.as_ref().unwrap().gid.as_deref(), Some("root"));
    }

    #[test]
    fn mount_and_template_blocks_are_ignored_with_warnings() {
        let policy = parse(
            "mount {
  cpu = /sys/fs/cgroup/cpu;
  name=systemd = /sys/fs/cgroup/systemd;
}
template users/%u {
  perm { task { uid = %u; } }
  cpu { cpu.shares = 10; }
}
group foo { cpu { } }
",
        );
        assert_eq!(policy.groups.len(), 1);
        assert_eq!(policy.warnings.len(), 2);
        let (span, message) = &policy.warnings[0];
        assert_eq!(at(span), (1, 1));
        assert!(message.contains("`mount` block ignored"), "{message}");
        assert!(message.contains("/proc/self/mountinfo"), "{message}");
        let (span, message) = &policy.warnings[1];
        assert_eq!(at(span), (5, 1));
        assert!(message.contains("template `users/%u` ignored"), "{message}");
        assert!(message.contains("cgrulesengd"), "{message}");
    }

    #[test]
    fn empty_file_is_an_empty_policy() {
        let policy = parse("# nothing here\n\n");
        assert!(policy.groups.is_empty() && policy.warnings.is_empty());
    }

    #[test]
    fn syntax_errors_point_at_the_offending_token() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            // missing `;`
            ("group foo {\n cpu {\n  cpu.shares = 100\n }\n}\n", "t.conf:4:2", "expected `;` after the value of `cpu.shares`, found `}`"),
            // missing `{` after the group name
            ("group foo\n cpu { }\n}\n", "t.conf:2:2", "expected `{` after group name `foo`, found `cpu`"),
            // missing `{` after a controller name
            ("group foo {\n cpu\n  cpu.shares = 1;\n }\n}\n", "t.conf:3:3", "expected `{` to open the `cpu` controller block, found `cpu.shares`"),
            // missing `=`
            ("group foo { cpu { cpu.shares 100; } }", "t.conf:1:30", "expected `=` after `cpu.shares`, found `100`"),
            // missing value
            ("group foo { cpu { cpu.shares = ; } }", "t.conf:1:32", "expected a value for `cpu.shares`, found `;`"),
            // unterminated quote
            ("group foo {\n cpuset { cpuset.cpus = \"0-5; }\n}\n", "t.conf:2:25", "expected a closing `\"`"),
            // unexpected end of file
            ("group foo {\n  cpu {\n", "t.conf:3:1", "expected `}` to close the `cpu` block, found end of file"),
            ("group foo {\n  cpu { }", "t.conf:2:10", "expected `}` to close group `foo`, found end of file"),
            ("group foo { perm { task { uid = a;", "t.conf:1:35", "expected `}` to close the `task` block, found end of file"),
            ("group", "t.conf:1:6", "expected a group name after `group`, found end of file"),
            // empty group name
            ("group \"\" { }", "t.conf:1:7", "expected a group name after `group`, found an empty string `\"\"`"),
            ("group { }", "t.conf:1:7", "expected a group name after `group`, found `{`"),
            // stray `}` and unknown statements
            ("}\n", "t.conf:1:1", "expected `group`, `mount`, `default` or `template`, found `}`"),
            ("\n\n  cgroup foo { }", "t.conf:3:3", "found `cgroup`"),
            // a perm field that is not uid/gid/fperm/dperm
            ("group foo {\n perm {\n  admin { mode = 644; }\n }\n}\n", "t.conf:3:11", "expected `uid`, `gid`, `dperm`, `fperm` or `}`, found `mode`"),
            ("group foo { perm { owner { } } }", "t.conf:1:20", "expected `task`, `admin` or `}`, found `owner`"),
            ("default { task { } }", "t.conf:1:11", "expected `perm` (a `default` block holds only `perm { ... }`), found `task`"),
            ("group foo { ; }", "t.conf:1:13", "expected a controller block such as `cpu { ... }`, `perm { ... }` or `}`, found `;`"),
            ("mount { cpu /sys/fs/cgroup/cpu; }", "t.conf:1:13", "expected `=` after `cpu`, found `/sys/fs/cgroup/cpu`"),
        ];
        for (text, position, fragment) in cases {
            let message = error(text);
            assert!(
                message.starts_with(&format!("{position}: ")),
                "{text:?}: wanted position {position}, got {message}"
            );
            assert!(
                message.contains(fragment),
                "{text:?}: wanted {fragment:?} in {message}"
            );
        }
    }

    #[test]
    fn invalid_contents_point_at_the_offending_token() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            // a key outside a controller block
            ("group foo {\n  cpu.shares = 100;\n}\n", "t.conf:2:3", "setting `cpu.shares` is outside any controller block: put it inside one, e.g. `cpu { cpu.shares = ...; }`"),
            // non-octal modes
            ("group foo { perm { task { fperm = 680; } } }", "t.conf:1:35", "`fperm` value `680` is not an octal mode"),
            ("group foo { perm { admin { dperm = rwx; } } }", "t.conf:1:36", "`dperm` value `rwx` is not an octal mode"),
            ("group foo { perm { task { dperm = 775; } } }", "t.conf:1:27", "`dperm` is not allowed in `task`"),
            // duplicates
            ("group foo { cpu { } }\ngroup foo { memory { } }", "t.conf:2:7", "group `foo` is defined twice (first at line 1, column 7)"),
            ("group foo {\n cpu { }\n memory { }\n cpu { cpu.shares = 1; }\n}", "t.conf:4:2", "controller `cpu` appears twice in group `foo` (first at line 2, column 2)"),
            ("group foo { cpu { cpu.shares = 1; cpu.shares = 2; } }", "t.conf:1:35", "`cpu.shares` is set twice in group `foo`"),
            ("group foo { perm { } perm { } }", "t.conf:1:22", "second `perm` block"),
            ("group foo { perm { task { } task { } } }", "t.conf:1:29", "`task` appears twice"),
            ("group foo { perm { task { uid = a; uid = b; } } }", "t.conf:1:36", "`uid` is set twice in `task`"),
            ("default { perm { } }\ndefault { perm { } }", "t.conf:2:1", "second `default` block"),
            ("namespace { cpu = /x; }", "t.conf:1:1", "`namespace` blocks are not supported"),
        ];
        for (text, position, fragment) in cases {
            let err = parse_cgconfig(text, Path::new("t.conf")).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { .. }),
                "{text:?}: {err:?}"
            );
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("{position}: ")),
                "{text:?}: wanted position {position}, got {message}"
            );
            assert!(
                message.contains(fragment),
                "{text:?}: wanted {fragment:?} in {message}"
            );
        }
    }
}
