//! The agent's side of the arbiter (`control::arbiter`): the node's shares
//! written with every install, the arbiter started for a policy that has
//! one and ticked on its own interval, every change audited, and what it
//! changed given back on a reload, a clean stop, and (from its record on
//! disk) at the start after a crash, before it acts again.

use std::time::Instant;

use super::Agent;
use crate::control::arbiter::{Arbiter, CgroupHost, Change, Record};
use crate::plan::{Direction, Plan};

impl Agent {
    /// Where the arbiter records what it changed.
    fn arbiter_record(&self) -> std::path::PathBuf {
        Record::path(&self.opts.pid_file)
    }

    /// After a crash: what the previous agent's arbiter left yielded is put
    /// back (each file only if it still holds what the arbiter wrote, and
    /// only the control files of the policy's groups), and the record
    /// removed. A record that is not root's alone is not acted on. Runs
    /// before the first install.
    pub(super) fn recover_arbiter(&mut self) {
        let path = self.arbiter_record();
        let record = match Record::read_trusted(&path) {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::error!("the arbiter's record is not used: {e}");
                self.audit.note(
                    "arbiter_record_refused",
                    &format!("the arbiter's record is not used: {e}"),
                );
                return;
            }
        };
        let managed: std::collections::BTreeSet<String> = self
            .current
            .iter()
            .flat_map(|plan| plan.groups.iter().map(|g| g.path.as_str().to_string()))
            .collect();
        let mut host = CgroupHost {
            cg: &self.cg,
            kernel: &mut self.kernel,
        };
        for line in crate::control::arbiter::recover(&record, &mut host, &|g| managed.contains(g)) {
            tracing::warn!("arbiter recovery: {line}");
            self.audit.note("arbiter_recovered", &line);
        }
        if let Err(e) = Record::default().save(&path) {
            tracing::warn!(file = %path.display(), "could not remove the arbiter's record: {e}");
        }
    }

    /// Gives back everything the running arbiter yielded (a reload, a stop)
    /// and stops it.
    pub(super) fn stop_arbiter(&mut self) {
        let Some(mut arbiter) = self.arbiter.take() else {
            return;
        };
        let mut host = CgroupHost {
            cg: &self.cg,
            kernel: &mut self.kernel,
        };
        let changes = arbiter.undo_all(&mut host);
        self.audit_changes(&changes);
    }

    /// The node's shares as `plan` sets them (none in observe mode), and the
    /// arbiter for it, if it has one. Runs once the groups are installed.
    pub(super) fn start_arbiter(&mut self, plan: Option<&Plan>) -> Result<(), super::AgentError> {
        let shares = plan.map(|p| p.shares.clone()).unwrap_or_default();
        for (dir, s) in [Direction::Egress, Direction::Ingress]
            .into_iter()
            .zip(&shares)
        {
            self.kernel.set_shares(dir, s)?;
        }
        let Some(arbiter) = plan.and_then(|p| p.arbiter.clone()) else {
            return Ok(());
        };
        let ids = arbiter
            .groups
            .iter()
            .map(|g| self.groups.get(g.path.as_str()).map_or(0, |m| m.id))
            .collect();
        tracing::info!(
            interval = ?arbiter.interval,
            resources = ?arbiter.resources,
            "arbiter started"
        );
        self.arbiter = Some(Arbiter::new(arbiter, ids, Some(self.arbiter_record())));
        self.arbiter_due = Some(Instant::now());
        Ok(())
    }

    /// One arbiter interval.
    pub(super) fn arbitrate(&mut self) {
        let Some(arbiter) = self.arbiter.as_mut() else {
            return;
        };
        let mut host = CgroupHost {
            cg: &self.cg,
            kernel: &mut self.kernel,
        };
        let now = Instant::now();
        let changes = arbiter.tick(now, &mut host);
        self.arbiter_due = Some(now + arbiter.interval());
        self.audit_changes(&changes);
    }

    fn audit_changes(&mut self, changes: &[Change]) {
        for c in changes {
            match &c.result {
                Ok(()) => tracing::info!(
                    group = c.group.as_str(),
                    resource = c.resource.name(),
                    to = c.cause.as_deref().unwrap_or("-"),
                    "{}: {}",
                    c.phase.name(),
                    c.detail
                ),
                Err(e) => tracing::warn!(
                    group = c.group.as_str(),
                    resource = c.resource.name(),
                    "{} failed: {}: {e}",
                    c.phase.name(),
                    c.detail
                ),
            }
            self.audit.arbiter(c);
        }
    }
}
