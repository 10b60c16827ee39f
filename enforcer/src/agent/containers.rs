//! `[[container]]` rules in force: every interval the agent looks at the
//! container groups in the cgroup2 tree, gives each new one that matches a
//! rule (the first that does) that rule's kernel tables and enforcing
//! programs, and lets the ones that went be reclaimed with their groups
//! (`Kernel::forget`, as for any removed group).
//!
//! A container is governed from the first interval after its group appears:
//! what it does before that (at most one interval) is counted, not enforced.

use std::collections::BTreeMap;
use std::path::Path;

use crate::bpf::Kernel;
use crate::collect::Collector;
use crate::plan::PlannedContainers;

#[derive(Default)]
pub(super) struct ContainerRules {
    rules: Vec<PlannedContainers>,
    /// Container group (cgroup id) -> the index of the rule it has.
    applied: BTreeMap<u64, usize>,
}

impl ContainerRules {
    /// A new set of rules (a policy installed or reloaded): the old ones are
    /// taken off every container now; the new ones go on at the next
    /// [`apply`](Self::apply).
    pub(super) fn replace(&mut self, kernel: &mut Kernel, rules: Vec<PlannedContainers>) {
        for (&id, _) in std::mem::take(&mut self.applied).iter() {
            if let Err(e) = kernel.clear_group_rules(id) {
                tracing::warn!("taking container rules off cgroup {id}: {e}");
            }
            if let Err(e) = kernel.detach_enforcement_id(id) {
                tracing::warn!("detaching enforcement from cgroup {id}: {e}");
            }
        }
        self.rules = rules;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Gives each container group that matches a rule and has none yet the
    /// rule's tables and programs; forgets groups that are gone. Returns
    /// what it did, for the log and the audit log.
    pub(super) fn apply(
        &mut self,
        kernel: &mut Kernel,
        collector: &mut Collector,
        cgroup2_root: &Path,
    ) -> Vec<String> {
        if self.rules.is_empty() {
            return Vec::new();
        }
        let mut notes = Vec::new();
        let found = collector.containers();
        let present: std::collections::BTreeSet<u64> = found.iter().map(|(id, ..)| *id).collect();
        self.applied.retain(|id, _| present.contains(id));
        for (id, label, w) in found {
            if self.applied.contains_key(&id) {
                continue;
            }
            let Some(cid) = w.container_id.as_deref() else {
                continue;
            };
            let Some(i) = self.rules.iter().position(|r| {
                r.selector
                    .matches(w.runtime.as_deref(), cid, w.container_name.as_deref())
            }) else {
                continue;
            };
            let rule = &self.rules[i];
            let dir = cgroup2_root.join(&label);
            let done = kernel
                .set_group_rules(id, &rule.rules)
                .and_then(|()| kernel.attach_enforcement(&dir));
            let who = format!(
                "container {} ({})",
                w.container_name.as_deref().unwrap_or(cid),
                crate::escape::human(&label)
            );
            match done {
                Ok(_) => {
                    self.applied.insert(id, i);
                    tracing::info!(
                        group = label.as_str(),
                        rule = rule.label.as_str(),
                        "container rules in force"
                    );
                    notes.push(format!("{who}: the rules of {} are in force", rule.label));
                }
                Err(e) => {
                    // Tried again next interval; said once per container.
                    self.applied.insert(id, usize::MAX);
                    let _ = kernel.clear_group_rules(id);
                    tracing::error!(
                        group = label.as_str(),
                        rule = rule.label.as_str(),
                        "container rules could not be applied: {e}"
                    );
                    notes.push(format!(
                        "{who}: the rules of {} could not be applied: {e}",
                        rule.label
                    ));
                }
            }
        }
        notes
    }
}
