//! The enforcement part of a TOML policy into the model: `[agent]`, and a
//! group's `priority`, `network`, `syscalls` and `[[when]]` rules. Which keys
//! exist is the typed tables' business (`file.rs`); here each value is judged
//! with its grammar, and every error points at the value and says what to
//! write instead. Values that are accepted but change nothing (an empty list,
//! `until` without a reversible action) become warnings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;

use super::file::{AgentTable, NetworkTable, SyscallsTable, WhenRules, WhenTable};
use super::raw::Raw;
use super::read::Reader;
use crate::config::error::{ConfigError, position};
use crate::config::model::{
    Access, AccessList, Action, AgentSpec, Budget, Compare, Direction, Metric, MetricUnit, NetRule,
    NetworkSpec, OnExit, Priority, Span, Spanned as Sp, SyscallAction, SyscallName, SyscallSpec,
    WhenRule,
};
use crate::config::netrule::parse_net_rule;
use crate::config::suggest::{did_you_mean, one_of};
use crate::config::threshold::parse_threshold;
use crate::units::{parse_budget, parse_duration, parse_rate};

/// The shortest `[agent] interval`.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

type Warnings = Vec<(Span, String)>;

fn spanned<T>(value: T, span: Span) -> Sp<T> {
    Sp { value, span }
}

/// One `connect_*`/`bind_*` list as read, before the allow/deny check.
struct List {
    mode: Access,
    name: String,
    span: Span,
    rules: Vec<NetRule>,
}

impl Reader<'_, '_> {
    /// A string that must be one of `choices`.
    pub(super) fn keyword<T: Copy>(
        &self,
        key: &str,
        value: &Spanned<Raw>,
        choices: &[(&str, T)],
    ) -> Result<Sp<T>, ConfigError> {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let example = format!("\"{}\"", names[0]);
        let (text, span) = self.string(key, value, &example)?;
        match choices.iter().find(|(name, _)| *name == text) {
            Some((_, choice)) => Ok(spanned(*choice, span)),
            None => Err(ConfigError::invalid(
                span,
                format!(
                    "`{key}` cannot be `{text}`{}: write {}",
                    did_you_mean(text, names.iter().copied()),
                    one_of(&names)
                ),
            )),
        }
    }

    pub(super) fn duration(
        &self,
        key: &str,
        value: &Spanned<Raw>,
    ) -> Result<Sp<Duration>, ConfigError> {
        if let Raw::Integer(_) | Raw::Float(_) = value.get_ref() {
            let written = self.source.text(value.span());
            return Err(ConfigError::invalid(
                self.at(value),
                format!(
                    "`{key}` needs a unit: write it as a string, such as `{key} = \"{written}s\"` \
                     (units: `ms`, `s`, `m`, `h`, `d`)"
                ),
            ));
        }
        let (text, span) = self.string(key, value, "\"5s\"")?;
        parse_duration(text)
            .map(|duration| spanned(duration, span.clone()))
            .map_err(|message| ConfigError::invalid(span, format!("`{key}`: {message}")))
    }

    // ----- [agent] --------------------------------------------------------

    pub(super) fn agent(&self, table: &Spanned<AgentTable>) -> Result<AgentSpec, ConfigError> {
        let t = table.get_ref();
        let on_exit = [("keep", OnExit::Keep), ("detach", OnExit::Detach)];
        // Fields in the order of the table's keys: the first bad one is the
        // one reported.
        Ok(AgentSpec {
            span: self.table_at(table),
            metrics: t.metrics.as_ref().map(|v| self.metrics(v)).transpose()?,
            interval: t.interval.as_ref().map(|v| self.interval(v)).transpose()?,
            on_exit: (t.on_exit.as_ref())
                .map(|v| self.keyword("on_exit", v, &on_exit))
                .transpose()?,
            audit_log: t
                .audit_log
                .as_ref()
                .map(|v| self.audit_log(v))
                .transpose()?,
            audit_group: (t.audit_group.as_ref())
                .map(|v| self.audit_group(v))
                .transpose()?,
            observe: t.observe.as_ref().map(|v| self.observe(v)).transpose()?,
            parent: (t.parent.as_ref())
                .map(|v| {
                    let (text, span) =
                        self.string("parent", v, "\"system.slice/enforcer-groups.service\"")?;
                    Ok(spanned(text.to_owned(), span))
                })
                .transpose()?,
            egress_capacity: (t.egress_capacity.as_ref())
                .map(|v| self.rate("egress_capacity", v))
                .transpose()?,
            ingress_capacity: (t.ingress_capacity.as_ref())
                .map(|v| self.rate("ingress_capacity", v))
                .transpose()?,
            metrics_depth: (t.metrics_depth.as_ref())
                .map(|v| self.count("metrics_depth", v, 0))
                .transpose()?,
            metrics_max_groups: (t.metrics_max_groups.as_ref())
                .map(|v| self.count("metrics_max_groups", v, 1))
                .transpose()?,
            audit_max_size: (t.audit_max_size.as_ref())
                .map(|v| self.audit_max_size(v))
                .transpose()?,
        })
    }

    /// `interval`: a duration of at least 10ms.
    fn interval(&self, value: &Spanned<Raw>) -> Result<Sp<Duration>, ConfigError> {
        let interval = self.duration("interval", value)?;
        if interval.value < MIN_INTERVAL {
            return Err(ConfigError::invalid(
                interval.span,
                "`interval` is shorter than 10ms: counters are read and rules checked once \
                 per interval; write at least `interval = \"10ms\"`",
            ));
        }
        Ok(interval)
    }

    /// `audit_log`: an absolute path.
    fn audit_log(&self, value: &Spanned<Raw>) -> Result<Sp<PathBuf>, ConfigError> {
        let example = "\"/var/log/enforcer/audit.jsonl\"";
        let (text, span) = self.string("audit_log", value, example)?;
        let path = PathBuf::from(text);
        if !path.is_absolute() {
            return Err(ConfigError::invalid(
                span,
                format!(
                    "`audit_log` must be an absolute path (the agent does not run in your \
                     directory): write it from `/`, such as `audit_log = {example}`"
                ),
            ));
        }
        Ok(spanned(path, span))
    }

    /// `audit_group`: a group of this host, as its gid.
    fn audit_group(&self, value: &Spanned<Raw>) -> Result<Sp<u32>, ConfigError> {
        let (text, span) = self.string("audit_group", value, "\"adm\"")?;
        let Ok(Some(group)) = nix::unistd::Group::from_name(text) else {
            return Err(ConfigError::invalid(
                span,
                format!(
                    "`audit_group` names {text:?}, which is not a group on this host: name \
                     an existing group (see /etc/group), such as `audit_group = \"adm\"`, or \
                     leave it out to keep the audit log readable by root only"
                ),
            ));
        };
        Ok(spanned(group.gid.as_raw(), span))
    }

    /// `observe`: a boolean, without quotes.
    fn observe(&self, value: &Spanned<Raw>) -> Result<Sp<bool>, ConfigError> {
        let Raw::Boolean(observe) = value.get_ref() else {
            return Err(ConfigError::invalid(
                self.at(value),
                format!(
                    "`observe` is {}: write `observe = true` or `observe = false` (no quotes)",
                    value.get_ref().kind()
                ),
            ));
        };
        Ok(spanned(*observe, self.at(value)))
    }

    /// `audit_max_size`: a size of at least 4K.
    fn audit_max_size(&self, value: &Spanned<Raw>) -> Result<Sp<u64>, ConfigError> {
        let span = self.at(value);
        let size = match value.get_ref() {
            Raw::Integer(n) => u64::try_from(*n).ok(),
            Raw::String(text) => match crate::units::parse_size(text) {
                Ok(n) => Some(n),
                Err(why) => {
                    return Err(ConfigError::invalid(
                        span,
                        format!("`audit_max_size`: {why}"),
                    ));
                }
            },
            _ => None,
        };
        match size {
            Some(n) if n >= 4096 => Ok(spanned(n, span)),
            _ => Err(ConfigError::invalid(
                span,
                "`audit_max_size` must be a size of at least 4K, such as \
                 `audit_max_size = \"100M\"` (the audit log is rotated when it grows \
                 past it)",
            )),
        }
    }

    /// A whole number of at least `min`, written without quotes.
    fn count(&self, key: &str, value: &Spanned<Raw>, min: i64) -> Result<Sp<u64>, ConfigError> {
        match value.get_ref() {
            Raw::Integer(n) if *n >= min => Ok(spanned(*n as u64, self.at(value))),
            _ => Err(ConfigError::invalid(
                self.at(value),
                format!(
                    "`{key}` must be a whole number of at least {min} (no quotes), such as \
                     `{key} = 3`"
                ),
            )),
        }
    }

    fn metrics(&self, value: &Spanned<Raw>) -> Result<Sp<SocketAddr>, ConfigError> {
        let (text, span) = self.string("metrics", value, "\"127.0.0.1:9750\"")?;
        let Ok(addr) = SocketAddr::from_str(text.trim()) else {
            return Err(ConfigError::invalid(
                span,
                format!(
                    "`metrics` value `{text}` is not an address and port: write one such as \
                     `\"127.0.0.1:9750\"`, `\"0.0.0.0:9750\"` or `\"[::1]:9750\"`"
                ),
            ));
        };
        if addr.port() == 0 {
            return Err(ConfigError::invalid(
                span,
                format!(
                    "`metrics` needs a fixed port for scrapers to find, not 0: write one such as \
                     `\"{}\"`",
                    SocketAddr::new(addr.ip(), 9750)
                ),
            ));
        }
        Ok(spanned(addr, span))
    }

    // ----- priority -------------------------------------------------------

    pub(super) fn priority(&self, value: &Spanned<Raw>) -> Result<Sp<Priority>, ConfigError> {
        if let Raw::Integer(level) = value.get_ref() {
            return u8::try_from(*level)
                .ok()
                .and_then(Priority::new)
                .map(|p| spanned(p, self.at(value)))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        self.at(value),
                        format!(
                            "`priority = {level}` is off the scale: write a level from {} \
                             (lowest) to {} (highest), or `\"low\"` (25), `\"normal\"` \
                             (50) or `\"high\"` (75)",
                            Priority::MIN,
                            Priority::MAX
                        ),
                    )
                });
        }
        if let Raw::String(text) = value.get_ref()
            && let Ok(level) = text.trim().parse::<u8>()
            && let Some(p) = Priority::new(level)
        {
            return Err(ConfigError::invalid(
                self.at(value),
                format!(
                    "`priority` is the string {text:?}: write a level without quotes, \
                     `priority = {}`, or a name such as `priority = \"high\"`",
                    p.level()
                ),
            ));
        }
        if let Raw::String(text) = value.get_ref() {
            let names = Priority::NAMES.map(|(name, _)| name);
            return match Priority::NAMES.iter().find(|(name, _)| name == text) {
                Some((_, p)) => Ok(spanned(*p, self.at(value))),
                None => Err(ConfigError::invalid(
                    self.at(value),
                    format!(
                        "`priority` cannot be `{text}`{}: write {}, or a level from 1 to 100 \
                         such as `priority = 60`",
                        did_you_mean(text, names),
                        one_of(&names)
                    ),
                )),
            };
        }
        Err(ConfigError::invalid(
            self.at(value),
            format!(
                "`priority` is {}: write `\"high\"`, `\"normal\"` or `\"low\"`, or a level \
                 from 1 to 100 such as `priority = 60`",
                value.get_ref().kind()
            ),
        ))
    }

    // ----- network --------------------------------------------------------

    pub(super) fn network(
        &self,
        table: &Spanned<NetworkTable>,
        warnings: &mut Warnings,
    ) -> Result<NetworkSpec, ConfigError> {
        let t = table.get_ref();
        let mut connect = Vec::new();
        let mut bind = Vec::new();
        for (name, value, mode, is_bind) in [
            ("connect_allow", &t.connect_allow, Access::Allow, false),
            ("connect_deny", &t.connect_deny, Access::Deny, false),
            ("bind_allow", &t.bind_allow, Access::Allow, true),
            ("bind_deny", &t.bind_deny, Access::Deny, true),
        ] {
            if let Some(value) = value {
                let list = self.list(name, value, mode)?;
                if is_bind {
                    bind.push(list)
                } else {
                    connect.push(list)
                }
            }
        }
        // Lists in file order, so "cannot be combined" points at the later one.
        connect.sort_by_key(|l| (l.span.line, l.span.column));
        bind.sort_by_key(|l| (l.span.line, l.span.column));
        let rate = |key, value: &Option<Spanned<Raw>>| {
            value.as_ref().map(|v| self.rate(key, v)).transpose()
        };
        let budget = |key, value: &Option<Spanned<Raw>>| {
            value.as_ref().map(|v| self.budget(key, v)).transpose()
        };
        Ok(NetworkSpec {
            span: self.table_at(table),
            connect: one_list(connect, "connect", warnings)?,
            bind: one_list(bind, "bind", warnings)?,
            egress_rate: rate("egress_rate", &t.egress_rate)?,
            ingress_rate: rate("ingress_rate", &t.ingress_rate)?,
            egress_budget: budget("egress_budget", &t.egress_budget)?,
            ingress_budget: budget("ingress_budget", &t.ingress_budget)?,
        })
    }

    fn list(&self, key: &str, value: &Spanned<Raw>, mode: Access) -> Result<List, ConfigError> {
        let example = "[\"10.0.0.0/8\", \"[::1]:80\"]";
        let mut rules: Vec<NetRule> = Vec::new();
        for (text, span) in self.strings(key, value, example)? {
            let (net, ports, proto) = parse_net_rule(text).map_err(|message| {
                ConfigError::invalid(span.clone(), format!("in `{key}`: {message}"))
            })?;
            let rule = NetRule {
                net,
                ports,
                proto,
                span,
            };
            let same = |r: &&NetRule| (r.net, r.ports, r.proto) == (net, ports, proto);
            if let Some(first) = rules.iter().find(same) {
                return Err(ConfigError::invalid(
                    rule.span,
                    format!(
                        "`{text}` is listed twice in `{key}` (first at {}): remove one",
                        position(&first.span)
                    ),
                ));
            }
            rules.push(rule);
        }
        Ok(List {
            mode,
            name: key.to_owned(),
            span: self.key_of(value),
            rules,
        })
    }

    pub(super) fn rate(&self, key: &str, value: &Spanned<Raw>) -> Result<Sp<u64>, ConfigError> {
        if let Raw::Integer(number) = value.get_ref() {
            return Err(ConfigError::invalid(
                self.at(value),
                format!(
                    "`{key}` needs a unit: write `\"{number}Mbit\"` for megabits per second or \
                     `\"{number}MB/s\"` for megabytes per second, as a string"
                ),
            ));
        }
        let (text, span) = self.string(key, value, "\"10Mbit\"")?;
        parse_rate(text)
            .map(|rate| spanned(rate, span.clone()))
            .map_err(|message| ConfigError::invalid(span, format!("`{key}`: {message}")))
    }

    fn budget(&self, key: &str, value: &Spanned<Raw>) -> Result<Budget, ConfigError> {
        let (text, span) = self.string(key, value, "\"10G/1d\"")?;
        match parse_budget(text) {
            Ok((bytes, window)) => Ok(Budget {
                bytes,
                window,
                span,
            }),
            Err(message) => Err(ConfigError::invalid(span, format!("`{key}`: {message}"))),
        }
    }

    // ----- syscalls -------------------------------------------------------

    pub(super) fn syscalls(
        &self,
        table: &Spanned<SyscallsTable>,
        warnings: &mut Warnings,
    ) -> Result<SyscallSpec, ConfigError> {
        let span = self.table_at(table);
        let t = table.get_ref();
        let (deny, deny_span) = match &t.deny {
            Some(value) => (self.syscall_list(value)?, self.key_of(value)),
            None => (Vec::new(), span.clone()),
        };
        let action = match &t.action {
            Some(value) => {
                let choices = [
                    ("log", SyscallAction::Log),
                    ("kill", SyscallAction::Kill),
                    ("deny", SyscallAction::Deny),
                ];
                Some(self.keyword("action", value, &choices)?)
            }
            None => None,
        };
        if deny.is_empty() {
            warnings.push((
                deny_span,
                "`syscalls` denies no syscall, so it has no effect: list some, such as \
                 `deny = [\"ptrace\"]`, or remove the table"
                    .to_owned(),
            ));
        }
        let action = match action {
            Some(action) => action,
            None if deny.is_empty() => spanned(SyscallAction::Log, span.clone()),
            None => {
                return Err(ConfigError::invalid(
                    span,
                    "`syscalls` has a `deny` list but no `action`: add `action = \"log\"` (record \
                     the call), `\"kill\"` (kill the caller) or `\"deny\"` (make it fail; only \
                     for socket and exec calls)",
                ));
            }
        };
        Ok(SyscallSpec { span, deny, action })
    }

    fn syscall_list(&self, value: &Spanned<Raw>) -> Result<Vec<Sp<SyscallName>>, ConfigError> {
        let mut list: Vec<Sp<SyscallName>> = Vec::new();
        for (text, span) in self.strings("deny", value, "[\"ptrace\", \"personality\"]")? {
            let Ok(sysno) = SyscallName::from_str(text) else {
                let hint = did_you_mean(text, SyscallName::all());
                let example = if hint.is_empty() {
                    ", such as `ptrace`"
                } else {
                    ""
                };
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "unknown syscall `{text}`{hint}: write a name from the {} syscall \
                         table (lower case, no `sys_` prefix){example}",
                        crate::arch::ARCHES
                            .map(crate::arch::Arch::name)
                            .join(" or "),
                    ),
                ));
            };
            if let Some(first) = list.iter().find(|s| s.value == sysno) {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "`{text}` is listed twice in `deny` (first at {}): remove one",
                        position(&first.span)
                    ),
                ));
            }
            list.push(spanned(sysno, span));
        }
        Ok(list)
    }

    // ----- when -----------------------------------------------------------

    pub(super) fn when(
        &self,
        rules: &Spanned<WhenRules>,
        warnings: &mut Warnings,
    ) -> Result<Vec<WhenRule>, ConfigError> {
        rules
            .get_ref()
            .0
            .iter()
            .map(|rule| self.when_rule(rule, warnings))
            .collect()
    }

    fn when_rule(
        &self,
        rule: &Spanned<WhenTable>,
        warnings: &mut Warnings,
    ) -> Result<WhenRule, ConfigError> {
        let span = self.line_start_of(rule);
        let t = rule.get_ref();
        let metric_names = Metric::ALL.map(Metric::name);

        let Some(metric_value) = &t.metric else {
            return Err(ConfigError::invalid(
                span,
                format!(
                    "this rule has no `metric`: add `metric = \"NAME\"` with one of {}",
                    one_of(&metric_names)
                ),
            ));
        };
        let (name, metric_span) =
            self.string("metric", metric_value, "\"egress_bytes_per_sec\"")?;
        let Some(metric) = Metric::from_name(name) else {
            return Err(ConfigError::invalid(
                metric_span,
                format!(
                    "unknown metric `{name}`{}: write one of {}",
                    did_you_mean(name, metric_names),
                    one_of(&metric_names)
                ),
            ));
        };

        let (compare, key, threshold_value) = match (&t.above, &t.below) {
            (Some(above), None) => (Compare::Above, "above", above),
            (None, Some(below)) => (Compare::Below, "below", below),
            (Some(above), Some(below)) => {
                let (first, second, name) = if above.span().start < below.span().start {
                    (above, below, "above")
                } else {
                    (below, above, "below")
                };
                return Err(ConfigError::invalid(
                    self.key_of(second),
                    format!(
                        "a rule has either `above` or `below`, not both (`{name}` is at {}): \
                         keep one, and write a second `when` rule for the other",
                        position(&self.key_of(first))
                    ),
                ));
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "this rule has no condition: add `above = ...` or `below = ...`, such as \
                         `above = {}`",
                        threshold_literal(metric.unit())
                    ),
                ));
            }
        };
        let threshold = self.threshold(metric, key, threshold_value)?;

        let hold = match &t.hold {
            Some(value) => self.duration("for", value)?,
            None => spanned(Duration::ZERO, span.clone()),
        };

        let Some(then_value) = &t.then else {
            return Err(ConfigError::invalid(
                span,
                "this rule has no `then`: add what to do, such as `then = [\"log\"]` or `then = \
                 [\"throttle egress 5Mbit\", \"log\"]`",
            ));
        };
        let then = self.actions(then_value)?;

        let until = t
            .until
            .as_ref()
            .map(|value| self.duration("until", value))
            .transpose()?;
        let reversible = then.iter().any(|action| action.value.is_reversible());
        if let Some(until) = until.as_ref().filter(|_| !reversible) {
            warnings.push((
                until.span.clone(),
                "`until` has no effect: none of this rule's actions can be undone (only `set`, \
                 `throttle` and `freeze` are); remove it"
                    .to_owned(),
            ));
        }

        Ok(WhenRule {
            span,
            metric: spanned(metric, metric_span),
            compare,
            threshold,
            hold,
            then,
            until,
        })
    }

    /// Where a `[[...when]]` rule is written: its header (the line before its
    /// first key), or its inline table.
    fn line_start_of<T>(&self, rule: &Spanned<T>) -> Span {
        self.at(rule)
    }

    fn threshold(
        &self,
        metric: Metric,
        key: &str,
        value: &Spanned<Raw>,
    ) -> Result<Sp<f64>, ConfigError> {
        let span = self.at(value);
        let unit = metric.unit();
        let bytes = matches!(unit, MetricUnit::Bytes | MetricUnit::BytesPerSec);
        let invalid = |message: String| {
            ConfigError::invalid(span.clone(), format!("`{key}` for `{metric}`: {message}"))
        };
        let number = match value.get_ref() {
            Raw::String(text) => parse_threshold(unit, text).map_err(invalid)?,
            Raw::Integer(number) => {
                if *number < 0 {
                    return Err(invalid(format!("`{number}` is negative: write 0 or more")));
                }
                *number as f64
            }
            Raw::Float(number) if !bytes => {
                if !number.is_finite() || *number < 0.0 {
                    return Err(invalid(format!("`{number}` is not a number of 0 or more")));
                }
                *number
            }
            other => {
                return Err(invalid(format!(
                    "the value is {}: write {}",
                    other.kind(),
                    threshold_example(unit)
                )));
            }
        };
        Ok(spanned(number, span))
    }

    fn actions(&self, value: &Spanned<Raw>) -> Result<Vec<Sp<Action>>, ConfigError> {
        let items = match value.get_ref().as_str() {
            // A single action may be written without the brackets.
            Some(text) => vec![(text, self.at(value))],
            None => self.strings("then", value, "[\"log\"]")?,
        };
        if items.is_empty() {
            return Err(ConfigError::invalid(
                self.at(value),
                "`then` is empty, so the rule would do nothing: list at least one action, such \
                 as `then = [\"log\"]`",
            ));
        }
        let mut actions: Vec<Sp<Action>> = Vec::new();
        for (text, span) in items {
            let action = parse_action(text)
                .map_err(|message| ConfigError::invalid(span.clone(), message))?;
            let slot = action_slot(&action);
            if let Some(first) = actions.iter().find(|a| action_slot(&a.value) == slot) {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "`{text}` repeats `{slot}` (first at {}): keep only one",
                        position(&first.span)
                    ),
                ));
            }
            actions.push(spanned(action, span));
        }
        Ok(actions)
    }
}

/// Checks that a hook has at most one non-empty list, and warns about empty ones.
fn one_list(
    lists: Vec<List>,
    hook: &str,
    warnings: &mut Warnings,
) -> Result<Option<AccessList>, ConfigError> {
    let mut kept: Option<List> = None;
    for list in lists {
        if list.rules.is_empty() {
            let message = match list.mode {
                Access::Allow => format!(
                    "`{} = []` has no effect (an empty allow list restricts nothing): remove it; \
                     to refuse every address write `{hook}_deny = [\"0.0.0.0/0\", \"::/0\"]`",
                    list.name
                ),
                Access::Deny => format!("`{} = []` has no effect: remove it", list.name),
            };
            warnings.push((list.span, message));
            continue;
        }
        if let Some(other) = kept.take() {
            let (allow, deny) = match list.mode {
                Access::Allow => (list, other),
                Access::Deny => (other, list),
            };
            return Err(ConfigError::invalid(
                deny.span,
                format!(
                    "`{hook}_deny` cannot be combined with `{hook}_allow` (at {}): an allow list \
                     already refuses everything it does not list, so keep `{hook}_allow` and \
                     remove `{hook}_deny` (to carve an exception out of an allowed network, \
                     allow only its other parts)",
                    position(&allow.span)
                ),
            ));
        }
        kept = Some(list);
    }
    Ok(kept.map(|list| AccessList {
        mode: list.mode,
        rules: list.rules,
        span: list.span,
    }))
}

/// A threshold for `unit` as it would be written after `above = `.
fn threshold_literal(unit: MetricUnit) -> &'static str {
    match unit {
        MetricUnit::Bytes => "\"1G\"",
        MetricUnit::BytesPerSec => "\"50M\"",
        MetricUnit::Count | MetricUnit::PerSec => "100",
        MetricUnit::Percent => "80",
    }
}

/// What a threshold for `unit` looks like, for messages.
fn threshold_example(unit: MetricUnit) -> &'static str {
    match unit {
        MetricUnit::Bytes => "a size such as `\"1G\"` or a number of bytes",
        MetricUnit::BytesPerSec => {
            "a size per second such as `\"50M\"`, or a rate such as `\"400Mbit\"`"
        }
        MetricUnit::Count | MetricUnit::PerSec => "a number such as `100`",
        MetricUnit::Percent => "a percentage such as `80` or `\"80%\"`",
    }
}

/// Two actions with the same slot in one rule conflict (or repeat).
fn action_slot(action: &Action) -> String {
    match action {
        Action::Log => "log".to_owned(),
        Action::Kill => "kill".to_owned(),
        Action::Freeze => "freeze".to_owned(),
        Action::SetKey { key, .. } => format!("set {key}"),
        Action::Throttle { dir, .. } => match dir {
            Direction::Egress => "throttle egress".to_owned(),
            Direction::Ingress => "throttle ingress".to_owned(),
        },
    }
}

const ACTION_FORMS: &str = "`log`, `kill`, `freeze`, `set KEY=VALUE` (such as `set \
                            cpu.weight=50`) or `throttle egress|ingress RATE` (such as `throttle \
                            egress 5Mbit`)";

/// One `then` entry.
pub(crate) fn parse_action(text: &str) -> Result<Action, String> {
    let trimmed = text.trim();
    let (verb, rest) = trimmed
        .split_once(char::is_whitespace)
        .map_or((trimmed, ""), |(verb, rest)| (verb, rest.trim()));
    match verb {
        "log" | "kill" | "freeze" if !rest.is_empty() => Err(format!(
            "`{verb}` takes nothing after it, but `{text}` has `{rest}`: write `{verb}`"
        )),
        "log" => Ok(Action::Log),
        "kill" => Ok(Action::Kill),
        "freeze" => Ok(Action::Freeze),
        "set" => {
            let form = "write `set CONTROLLER.FILE=VALUE`, such as `set cpu.weight=50`";
            let Some((key, value)) = rest.split_once('=') else {
                return Err(format!("`{text}` has no `=`: {form}"));
            };
            let (key, value) = (key.trim(), value.trim());
            let parts_ok = key
                .split_once('.')
                .is_some_and(|(controller, file)| !controller.is_empty() && !file.is_empty());
            if !parts_ok || key.contains(char::is_whitespace) {
                return Err(format!(
                    "`{key}` in `{text}` is not a controller file: {form}"
                ));
            }
            if value.is_empty() {
                return Err(format!("`{text}` has no value after `=`: {form}"));
            }
            Ok(Action::SetKey {
                key: key.to_owned(),
                value: value.to_owned(),
            })
        }
        "throttle" => {
            let form = "write `throttle egress RATE` or `throttle ingress RATE`, such as \
                        `throttle egress 5Mbit`";
            let (dir, rate) = rest
                .split_once(char::is_whitespace)
                .map_or((rest, ""), |(dir, rate)| (dir, rate.trim()));
            let dir = match dir {
                "egress" => Direction::Egress,
                "ingress" => Direction::Ingress,
                "" => return Err(format!("`{text}` has no direction: {form}")),
                other => {
                    return Err(format!(
                        "`{other}` in `{text}` is not a direction{}: {form}",
                        did_you_mean(other, ["egress", "ingress"])
                    ));
                }
            };
            if rate.is_empty() {
                return Err(format!("`{text}` has no rate: {form}"));
            }
            let bytes_per_sec =
                parse_rate(rate).map_err(|message| format!("in `{text}`: {message}"))?;
            Ok(Action::Throttle { dir, bytes_per_sec })
        }
        other => {
            let hint = match other {
                "thaw" | "unfreeze" | "unthrottle" | "restore" => {
                    " (undoing is automatic: add `until = \"30s\"` to the rule)"
                }
                _ => "",
            };
            let verbs = ["log", "kill", "freeze", "set", "throttle"];
            Err(format!(
                "unknown action `{text}`{}{hint}: write {ACTION_FORMS}",
                did_you_mean(other, verbs)
            ))
        }
    }
}
