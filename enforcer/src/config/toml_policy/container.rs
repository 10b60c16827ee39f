//! `[[container]]` tables into [`ContainerRule`]s: what selects the
//! containers (read as `[[classify]]` keys are), and their `network` and
//! `syscalls` tables (read as a group's).

use toml::Spanned;

use super::file::ContainerTable;
use super::read::Reader;
use crate::config::container::{ContainerRule, RUNTIMES};
use crate::config::error::ConfigError;
use crate::config::model::{GroupSpec, Span};
use crate::config::suggest::one_of;

type Warnings = Vec<(Span, String)>;

impl Reader<'_, '_> {
    pub(super) fn container(
        &self,
        table: &Spanned<ContainerTable>,
        number: usize,
        warnings: &mut Warnings,
    ) -> Result<ContainerRule, ConfigError> {
        let t = table.get_ref();
        let span = self.table_at(table);
        let runtime = self.rule_string("runtime", &t.runtime)?;
        if let Some(r) = &runtime
            && !RUNTIMES.contains(&r.value.as_str())
        {
            return Err(ConfigError::invalid(
                r.span.clone(),
                format!("unknown runtime `{}`: write {}", r.value, one_of(&RUNTIMES)),
            ));
        }
        let name = self.rule_string("name", &t.name)?;
        let id = self.rule_string("id", &t.id)?;
        if let Some(i) = &id
            && !i
                .value
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(ConfigError::invalid(
                i.span.clone(),
                "`id` is the start of a container id: lowercase hex digits, such as \"3f2a9c\"",
            ));
        }
        if runtime.is_none() && name.is_none() && id.is_none() {
            return Err(ConfigError::invalid(
                span,
                "this `[[container]]` selects every container: give `runtime`, `name` or `id`",
            ));
        }
        let mut rules = GroupSpec::new(format!("container[{number}]"), span.clone());
        if let Some(network) = &t.network {
            rules.network = Some(self.network(network, warnings)?);
        }
        if let Some(syscalls) = &t.syscalls {
            rules.syscalls = Some(self.syscalls(syscalls, warnings)?);
        }
        if rules.network.is_none() && rules.syscalls.is_none() {
            return Err(ConfigError::invalid(
                span,
                "this `[[container]]` has no rules: add a `[container.network]` or \
                 `[container.syscalls]` table below it",
            ));
        }
        Ok(ContainerRule {
            span,
            runtime,
            name,
            id,
            rules,
        })
    }
}
