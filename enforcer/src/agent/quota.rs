//! The agent's side of the counting maps' subtree quotas
//! (`enforcer_common::quota`): who owns a quota, and saying when a
//! subtree's groups are folded into an ancestor.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Agent, AgentError, Managed};

/// A subtree still folding is said again at most this often.
const FOLD_REPORT_EVERY: Duration = Duration::from_secs(60);

impl Agent {
    /// The policy's groups own quotas; observing, the root does too (it
    /// answers for every group on the host).
    pub(super) fn set_owners(
        &mut self,
        groups: &BTreeMap<String, Managed>,
    ) -> Result<(), AgentError> {
        let quota = self.opts.capacity.subgroups;
        let mut owners: BTreeMap<u64, u32> = groups.values().map(|m| (m.id, quota)).collect();
        if self.settings.observe {
            let root = self.cg.hierarchy(self.v2).mount_point.clone();
            owners.insert(crate::bpf::cgroup_id(&root)?, quota);
        }
        self.kernel.set_owners(&owners)?;
        Ok(())
    }

    fn owner_label(&self, id: u64) -> String {
        self.groups
            .iter()
            .find(|(_, m)| m.id == id)
            .map_or_else(|| "/".to_string(), |(l, _)| l.clone())
    }

    /// Gives deleted groups' places back to their owners' quotas, and
    /// warns (log and audit) about subtrees whose groups are being folded.
    pub(super) fn sweep_quotas(&mut self) {
        let report = match self.kernel.quota_sweep() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("updating the counting maps' subtree quotas: {e}");
                return;
            }
        };
        let now = Instant::now();
        let mut health = Vec::new();
        for (id, q) in &report {
            let label = self.owner_label(*id);
            health.push((label.clone(), *q));
            let (said, at) = self.folds_reported.get(id).copied().unwrap_or((0, now));
            let due = said == 0 || now.duration_since(at) >= FOLD_REPORT_EVERY;
            if q.folded > said && due {
                tracing::warn!(
                    group = label.as_str(),
                    quota = q.quota,
                    admitted = q.admitted,
                    folded = q.folded,
                    "more groups below this one than its quota: the others are counted in their \
                     nearest counted ancestor (raise --max-subgroups to count them apart)"
                );
                self.audit.note(
                    "quota_full",
                    &format!(
                        "{label}: {} groups below it have counters of their own (quota {}); \
                         events of the others are counted in an ancestor, {} so far",
                        q.admitted, q.quota, q.folded
                    ),
                );
                self.folds_reported.insert(*id, (q.folded, now));
            }
        }
        self.folds_reported.retain(|id, _| report.contains_key(id));
        self.health.quotas = health;
    }
}
