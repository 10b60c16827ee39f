//! `[[container]]` rules planned: which containers (a selector on what
//! `collect::Workload` reads about a group) get which kernel rule tables.
//! The agent matches running containers against them every interval.

use crate::bpf::GroupRules;
use crate::config::ContainerRule;

use super::error::PlanError;
use crate::words::Span;

/// What selects a container: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSelector {
    pub runtime: Option<String>,
    /// A glob on the name (`*`, `?`).
    pub name: Option<String>,
    /// A prefix of the id.
    pub id: Option<String>,
}

impl ContainerSelector {
    /// Whether a container of `runtime`, `id` and (if known) `name` matches.
    pub fn matches(&self, runtime: Option<&str>, id: &str, name: Option<&str>) -> bool {
        self.runtime.as_deref().is_none_or(|r| runtime == Some(r))
            && self.id.as_deref().is_none_or(|p| id.starts_with(p))
            && self
                .name
                .as_deref()
                .is_none_or(|glob| name.is_some_and(|n| wildmatch::WildMatch::new(glob).matches(n)))
    }
}

/// One `[[container]]` rule as the agent applies it.
#[derive(Debug, Clone)]
pub struct PlannedContainers {
    /// `container[N]`: the table's place in the policy (from 1).
    pub label: String,
    pub span: Span,
    pub selector: ContainerSelector,
    pub rules: GroupRules,
}

pub(super) fn plan(rule: &ContainerRule) -> Result<PlannedContainers, PlanError> {
    let text = |s: &Option<crate::config::Spanned<String>>| s.as_ref().map(|s| s.value.clone());
    Ok(PlannedContainers {
        label: rule.rules.name.clone(),
        span: rule.span.clone(),
        selector: ContainerSelector {
            runtime: text(&rule.runtime),
            name: text(&rule.name),
            id: text(&rule.id),
        },
        rules: super::group_rules(&rule.rules)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_given_field_must_match() {
        let s = ContainerSelector {
            runtime: Some("podman".into()),
            name: Some("web-*".into()),
            id: None,
        };
        assert!(s.matches(Some("podman"), "ab12", Some("web-1")));
        assert!(!s.matches(Some("docker"), "ab12", Some("web-1")));
        assert!(!s.matches(Some("podman"), "ab12", Some("db-1")));
        assert!(
            !s.matches(Some("podman"), "ab12", None),
            "no name known: no match"
        );
        let by_id = ContainerSelector {
            id: Some("ab".into()),
            ..Default::default()
        };
        assert!(by_id.matches(None, "ab12", None));
        assert!(!by_id.matches(None, "ba12", None));
        let one = ContainerSelector {
            name: Some("w?b".into()),
            ..Default::default()
        };
        assert!(one.matches(None, "x", Some("web")) && !one.matches(None, "x", Some("weeb")));
    }
}
