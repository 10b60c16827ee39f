//! The arbiter's part of a TOML policy into the model: the `[arbiter]` table
//! and a group's floors (`min_cpu`, `min_memory`, `min_io_weight`,
//! `min_egress`, `min_ingress`). Each value is judged with its grammar (a
//! percentage, a size, a rate, a duration), and every error points at the
//! value and says what to write instead. Whether the values fit this host
//! (CPUs, capacities) is the plan's business.

use toml::Spanned;

use super::file::{ArbiterTable, GroupTable};
use super::raw::Raw;
use super::read::Reader;
use crate::config::error::{ConfigError, position};
use crate::config::model::{ArbiterSpec, Floors, Resource, Spanned as Sp};
use crate::config::suggest::{did_you_mean, one_of};
use crate::units::{parse_percent, parse_size};

/// The shortest arbiter interval (as `[agent] interval`).
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

fn spanned<T>(value: T, span: crate::config::model::Span) -> Sp<T> {
    Sp { value, span }
}

/// What a percentage key may hold.
#[derive(Clone, Copy)]
enum Range {
    /// Above 0, at most 100 (a share of time or of demand).
    Share,
    /// Above 0, below 100 (a step: taking everything is not a step).
    Step,
    /// Above 0 (a share of one CPU; more than 100 on several CPUs).
    Cpus,
}

impl Reader<'_, '_> {
    pub(super) fn arbiter(
        &self,
        table: &Spanned<ArbiterTable>,
    ) -> Result<ArbiterSpec, ConfigError> {
        let t = table.get_ref();
        let mut spec = ArbiterSpec {
            span: self.table_at(table),
            enabled: None,
            interval: None,
            resources: None,
            cpu_pressure: None,
            memory_pressure: None,
            io_pressure: None,
            network_pressure: None,
            step: None,
            memory_step: None,
            restore_after: None,
            probe_after: None,
        };
        if let Some(value) = &t.enabled {
            let Raw::Boolean(on) = value.get_ref() else {
                return Err(ConfigError::invalid(
                    self.at(value),
                    format!(
                        "`enabled` is {}: write `enabled = true` or `enabled = false` (no quotes)",
                        value.get_ref().kind()
                    ),
                ));
            };
            spec.enabled = Some(spanned(*on, self.at(value)));
        }
        if let Some(value) = &t.interval {
            let interval = self.duration("interval", value)?;
            if interval.value < MIN_INTERVAL {
                return Err(ConfigError::invalid(
                    interval.span,
                    "the arbiter's `interval` is shorter than 10ms: write at least `interval = \
                     \"10ms\"` (the default, `\"250ms\"`, reacts within a second)",
                ));
            }
            spec.interval = Some(interval);
        }
        if let Some(value) = &t.resources {
            spec.resources = Some(self.resources(value)?);
        }
        let pct = |key, value: &Option<Spanned<Raw>>, range| {
            value
                .as_ref()
                .map(|v| self.percent(key, v, range))
                .transpose()
        };
        spec.cpu_pressure = pct("cpu_pressure", &t.cpu_pressure, Range::Share)?;
        spec.memory_pressure = pct("memory_pressure", &t.memory_pressure, Range::Share)?;
        spec.io_pressure = pct("io_pressure", &t.io_pressure, Range::Share)?;
        spec.network_pressure = pct("network_pressure", &t.network_pressure, Range::Share)?;
        spec.step = pct("step", &t.step, Range::Step)?;
        spec.memory_step = pct("memory_step", &t.memory_step, Range::Step)?;
        spec.restore_after = t
            .restore_after
            .as_ref()
            .map(|v| self.duration("restore_after", v))
            .transpose()?;
        spec.probe_after = t
            .probe_after
            .as_ref()
            .map(|v| self.duration("probe_after", v))
            .transpose()?;
        Ok(spec)
    }

    fn resources(&self, value: &Spanned<Raw>) -> Result<Sp<Vec<Resource>>, ConfigError> {
        let names = Resource::ALL.map(Resource::name);
        let mut out: Vec<Sp<Resource>> = Vec::new();
        for (text, span) in self.strings("resources", value, "[\"cpu\", \"egress\"]")? {
            let Some(resource) = Resource::from_name(text) else {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "unknown resource `{text}`{}: write {}",
                        did_you_mean(text, names),
                        one_of(&names)
                    ),
                ));
            };
            if let Some(first) = out.iter().find(|r| r.value == resource) {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "`{text}` is listed twice in `resources` (first at {}): remove one",
                        position(&first.span)
                    ),
                ));
            }
            out.push(spanned(resource, span));
        }
        if out.is_empty() {
            return Err(ConfigError::invalid(
                self.at(value),
                "`resources = []` leaves the arbiter nothing to do: list what lower groups yield, \
                 such as `resources = [\"cpu\", \"egress\"]`, or write `enabled = false`",
            ));
        }
        Ok(spanned(
            out.into_iter().map(|r| r.value).collect(),
            self.at(value),
        ))
    }

    /// A percentage (`"10%"`, `10`, `12.5`), as written, in `range`.
    fn percent(
        &self,
        key: &str,
        value: &Spanned<Raw>,
        range: Range,
    ) -> Result<Sp<f64>, ConfigError> {
        let span = self.at(value);
        let number = match value.get_ref() {
            Raw::String(text) => parse_percent(text)
                .map_err(|m| ConfigError::invalid(span.clone(), format!("`{key}`: {m}")))?,
            Raw::Integer(n) => *n as f64,
            Raw::Float(f) if f.is_finite() => *f,
            other => {
                return Err(ConfigError::invalid(
                    span,
                    format!(
                        "`{key}` is {}: write a percentage such as `{key} = \"10%\"`",
                        other.kind()
                    ),
                ));
            }
        };
        let ok = match range {
            Range::Share => number > 0.0 && number <= 100.0,
            Range::Step => number > 0.0 && number < 100.0,
            Range::Cpus => number > 0.0,
        };
        if !ok {
            let want = match range {
                Range::Share => "above 0% and at most 100%",
                Range::Step => {
                    "above 0% and below 100% (a step that takes everything is not a step)"
                }
                Range::Cpus => "above 0% (100% is one whole CPU)",
            };
            return Err(ConfigError::invalid(
                span,
                format!("`{key}` is {number}%: write a value {want}"),
            ));
        }
        Ok(spanned(number, span))
    }

    /// The group's floors.
    pub(super) fn floors(&self, t: &GroupTable) -> Result<Floors, ConfigError> {
        let mut floors = Floors::default();
        if let Some(value) = &t.min_cpu {
            floors.cpu = Some(self.percent("min_cpu", value, Range::Cpus)?);
        }
        if let Some(value) = &t.min_memory {
            let span = self.at(value);
            let bytes = match value.get_ref() {
                Raw::Integer(n) if *n >= 0 => *n as u64,
                Raw::String(text) => parse_size(text).map_err(|m| {
                    ConfigError::invalid(span.clone(), format!("`min_memory`: {m}"))
                })?,
                other => {
                    return Err(ConfigError::invalid(
                        span,
                        format!(
                            "`min_memory` is {}: write a size such as `min_memory = \"256M\"`",
                            other.kind()
                        ),
                    ));
                }
            };
            floors.memory = Some(spanned(bytes, span));
        }
        if let Some(value) = &t.min_io_weight {
            let span = self.at(value);
            match value.get_ref() {
                Raw::Integer(n) if (1..=10_000).contains(n) => {
                    floors.io_weight = Some(spanned(*n as u64, span));
                }
                Raw::Integer(n) => {
                    return Err(ConfigError::invalid(
                        span,
                        format!(
                            "`min_io_weight = {n}` is outside io.weight's range: write 1 to 10000"
                        ),
                    ));
                }
                other => {
                    return Err(ConfigError::invalid(
                        span,
                        format!(
                            "`min_io_weight` is {}: write a weight from 1 to 10000 without \
                             quotes, such as `min_io_weight = 50`",
                            other.kind()
                        ),
                    ));
                }
            }
        }
        if let Some(value) = &t.min_egress {
            floors.egress = Some(self.rate("min_egress", value)?);
        }
        if let Some(value) = &t.min_ingress {
            floors.ingress = Some(self.rate("min_ingress", value)?);
        }
        Ok(floors)
    }
}
