//! The agent (`enforcer run`): applies the policy's groups, loads and attaches
//! the counting and enforcing programs, runs the closed-loop rules and reports
//! usage until stopped.
//!
//! Maps and links are pinned under the pin directory, so a crash or SIGKILL of
//! the agent loses no count and leaves rules enforced; the next start adopts what
//! is pinned instead of attaching twice. `enforcer stop` detaches and unpins.

mod arbiter;
mod audit;
mod claims;
mod containers;
mod error;
mod http;
mod lock;
mod notify;
mod quota;
mod settings;
mod start;
mod torn;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub use audit::DEFAULT_AUDIT_MAX_SIZE;
pub use error::AgentError;
pub use settings::{
    AgentOptions, DEFAULT_AUDIT_LOG, DEFAULT_INTERVAL, DEFAULT_METRICS, DEFAULT_PID_FILE, Settings,
    StopHandle,
};
pub use start::run;

use crate::bpf::{Kernel, SyscallScope};
use crate::cgroup::{Cgroups, GroupPath};
use crate::collect::Collector;
use crate::plan::{Direction, InForce, Plan};

use crate::enforce::{Engine, HostEffects, RateControl};
use crate::report::{AgentMetrics, MetricsState, Rollup, RulesLoaded};

/// A group the policy names, as the kernel sees it.
#[derive(Debug, Clone)]
struct Managed {
    dir: PathBuf,
    id: u64,
}

/// What the kernel enforces for one policy group.
struct KernelRules {
    label: String,
    id: u64,
    dir: PathBuf,
    rules: crate::bpf::GroupRules,
    /// A closed-loop throttle needs the enforcing programs in place even
    /// when the group has no network rules of its own.
    throttles: bool,
}

/// An error about one group's kernel side, naming the group (not its
/// cgroup id).
fn in_group(label: &str, e: crate::bpf::BpfError) -> AgentError {
    AgentError::InGroup {
        group: label.to_string(),
        source: Box::new(e),
    }
}

/// Throttling from the closed loop goes to the kernel's rate limiter.
struct KernelRates<'a> {
    kernel: &'a mut Kernel,
    groups: &'a BTreeMap<String, Managed>,
}

impl RateControl for KernelRates<'_> {
    fn set_rate(
        &mut self,
        group: &str,
        dir: Direction,
        bytes_per_sec: Option<u64>,
    ) -> Result<(), String> {
        let id = self
            .groups
            .get(group)
            .map(|m| m.id)
            .ok_or_else(|| format!("group {group} is not managed by this agent"))?;
        self.kernel
            .set_rate(id, dir, bytes_per_sec)
            .map_err(|e| e.to_string())
    }
}

struct Agent {
    /// Locked for the agent's life; removed when it ends.
    _pid_file: lock::PidFile,
    /// No second agent manages the same pins.
    _pin_lock: lock::PinDirLock,
    /// No second agent manages the same groups.
    claims: claims::Claims,
    cg: Cgroups,
    v2: usize,
    kernel: Kernel,
    opts: AgentOptions,
    settings: Settings,
    groups: BTreeMap<String, Managed>,
    engine: Engine,
    /// The policy in force, to put back if a reload fails halfway.
    current: Option<Plan>,
    collector: Collector,
    audit: audit::Audit,
    events: u64,
    /// Events the kernel could not queue, over all groups, at the last tick.
    events_lost: u64,
    /// Uncounted events per full map, at the last tick.
    map_full: BTreeMap<&'static str, u64>,
    /// The policy file as last loaded (None in observe mode).
    watch: Option<watch::PolicyWatch>,
    /// Folds deep groups into their ancestors for the metrics.
    rollup: Rollup,
    /// What the metrics say about the agent itself.
    health: AgentMetrics,
    /// `syscall` label values of the metrics.
    syscall_labels: Vec<String>,
    /// The arbiter of the policy in force, if it has one.
    arbiter: Option<crate::control::arbiter::Arbiter>,
    /// When the arbiter's next interval is due.
    arbiter_due: Option<Instant>,
    /// Groups reclaimed since freed heap was last given back to the system
    /// (after a collection has dropped their reports).
    reclaimed: usize,
    /// `[[container]]` rules and the containers that have them.
    containers: containers::ContainerRules,
    /// Per subtree-quota owner: folds reported so far, and when.
    folds_reported: BTreeMap<u64, (u64, Instant)>,
    /// cgrules.conf and the policy's `[[classify]]` rules: new processes
    /// placed at exec. Started once the first policy is installed.
    classifier: Option<crate::classify::agent::Classifier>,
}

/// The `[[classify]]` rules of a validated policy (none in observe mode).
fn classify_rules(validated: Option<&Plan>) -> Vec<crate::config::ClassifyRule> {
    validated.map_or_else(Vec::new, |plan| plan.classify.clone())
}

/// Reclaiming at least this many groups gives freed memory back.
const TRIM_AFTER_GROUPS: usize = 64;

/// Returns freed heap pages to the system. glibc keeps what a burst of
/// groups used (their reports, series, index entries) in its arenas after
/// they are freed, so without this the agent's RSS stays at its peak after a
/// bulk delete of thousands of groups.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Groups in the maps checked for deletion per collection (see
/// `CgroupIndex::sweep`): one open by handle each, some 2 us; 4,096
/// groups in four intervals.
const SWEEP_PER_TICK: usize = 1024;

/// Ring buffer records handled per wake-up before the loop gives the timer
/// and signals a turn (a flood of denials must not starve collection).
const EVENTS_PER_TURN: usize = 4096;

/// Validate a policy completely, against the host and (as `kernel` says)
/// against what this kernel can enforce (the plan layer's one `validate`);
/// changes nothing.
fn validate(
    cg: &Cgroups,
    file: &Path,
    parent: Option<&str>,
    kernel: crate::plan::Kernel<'_>,
) -> Result<Plan, AgentError> {
    Ok(crate::plan::validate_file(cg, file, parent, kernel)?)
}

/// A process may not stay in a cgroup2 group whose children get controllers
/// (no internal processes). When the agent runs in the delegated parent itself,
/// as a systemd service with `Delegate=yes` does, it moves into a leaf of its own.
fn leave_parent(cg: &Cgroups, v2: usize, parent: &GroupPath) -> Result<(), AgentError> {
    let me = crate::cgroup::memberships(std::process::id() as i32)?;
    if crate::cgroup::v2_path(&me) != Some(parent.to_string().as_str()) {
        return Ok(());
    }
    let leaf = parent.join("enforcer-agent");
    let targets = crate::cgroup::Targets {
        hiers: [v2].into_iter().collect(),
        v2_enable: Vec::new(),
    };
    cg.create_in(
        &targets,
        &leaf,
        &Default::default(),
        &mut Default::default(),
    )?;
    cg.classify(
        &[crate::cgroup::GroupSpec {
            controllers: vec!["cgroup2".into()],
            path: leaf.clone(),
        }],
        &[std::process::id() as i32],
    )?;
    tracing::info!(leaf = %leaf, "moved the agent out of the delegated parent into its own leaf");
    Ok(())
}

/// What `enforcer_rules_loaded` says of a plan.
fn rules_loaded(plan: &Plan) -> RulesLoaded {
    let c = plan.rule_counts;
    RulesLoaded {
        network: c.network,
        syscall: c.syscall,
        when: c.when,
    }
}

impl Agent {
    /// Judged against the features this agent probed at start (its own
    /// programs, loaded once).
    fn validate(&self, file: &Path) -> Result<Plan, AgentError> {
        check_policy_file(file)?;
        let kernel = match self.kernel.feature_report() {
            Some(report) => crate::plan::Kernel::Report(report),
            None => crate::plan::Kernel::Probe,
        };
        validate(&self.cg, file, self.opts.parent.as_deref(), kernel)
    }

    /// Make the host match a validated policy (or observe mode when None):
    /// groups and limits, programs attached, kernel rules swapped in place,
    /// closed-loop rules re-armed (unchanged ones keep their state). Groups
    /// dropped from the policy lose their programs and rules but are not
    /// deleted.
    ///
    /// All or nothing: if a step fails, the links attached and the groups
    /// created by this call are removed again and overwritten values
    /// restored; a reload then puts the previous policy back.
    ///
    /// Every group it manages is claimed first ([`claims`]): one held by
    /// another agent fails the install before anything changes (a group it
    /// creates is claimed once made, before anything is attached to it).
    fn install(&mut self, validated: Option<Plan>) -> Result<(), AgentError> {
        // What the arbiter yielded goes back first: the new policy starts
        // from the values its groups were given, not from a yield.
        self.stop_arbiter();
        let wanted = claims::wanted(&self.cg, self.v2, validated.as_ref(), self.settings.observe);
        let mut taken = Vec::new();
        let result = self.install_claimed(validated, &wanted, &mut taken);
        match &result {
            Ok(()) => self
                .claims
                .keep_only(&wanted.into_iter().map(|(_, d)| d).collect::<Vec<_>>()),
            Err(_) => self.claims.release(&taken),
        }
        result
    }

    fn install_claimed(
        &mut self,
        validated: Option<Plan>,
        wanted: &[(String, PathBuf)],
        taken: &mut Vec<PathBuf>,
    ) -> Result<(), AgentError> {
        self.claims.claim_all(wanted, taken)?;
        let applied = match &validated {
            Some(plan) => {
                for w in &plan.warnings {
                    tracing::warn!("{w}");
                }
                let applied = self.cg.apply(&plan.cgroups)?;
                for d in &applied.created {
                    tracing::info!(dir = %d.display(), "created");
                }
                Some(applied)
            }
            None => None,
        };
        self.kernel.begin_journal();
        let plan = validated.as_ref();
        let result = self
            .claims
            .claim_all(wanted, taken)
            .and_then(|()| self.install_kernel(plan))
            .and_then(|()| self.start_arbiter(plan));
        if result.is_ok() {
            self.record_in_force(plan);
            self.health.rules = plan.map(rules_loaded).unwrap_or_default();
            self.syscall_labels = crate::report::syscall_labels(
                plan.map(|p| p.syscall_names.clone()).unwrap_or_default(),
            );
        }
        if let Err(e) = &result {
            let links = self.kernel.undo_journal();
            let failed = applied
                .as_ref()
                .map(|a| self.cg.undo(a))
                .unwrap_or_default();
            tracing::error!(
                links,
                groups = applied.as_ref().map_or(0, |a| a.created.len()),
                "installing the policy failed: {e}; took off what this attempt attached and created"
            );
            for f in failed {
                tracing::error!("could not undo: {f}");
            }
        }
        self.kernel.end_journal();
        result
    }

    /// What is now in force, for `--dry-run` diffs; best effort (a dry run
    /// without it shows every rule as new).
    fn record_in_force(&self, plan: Option<&Plan>) {
        let in_force = plan
            .map(|p| InForce::of(p, self.opts.policy.as_deref()))
            .unwrap_or_default();
        let path = InForce::path(&self.opts.pid_file);
        let written = serde_json::to_vec_pretty(&in_force)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::trust::write_private(&path, &bytes));
        if let Err(e) = written {
            tracing::warn!(file = %path.display(), "could not record the rules in force: {e}");
        }
    }

    fn install_kernel(&mut self, validated: Option<&Plan>) -> Result<(), AgentError> {
        let mut wanted: BTreeMap<String, Managed> = BTreeMap::new();
        let mut rules = Vec::new();
        let mut kernel_rules = Vec::new();
        if let Some(plan) = validated {
            for gp in &plan.groups {
                let label = gp.path.as_str().to_string();
                let dir = self.cg.dir(self.v2, &gp.path);
                let id = crate::bpf::cgroup_id(&dir).map_err(|e| in_group(&label, e))?;
                for r in &gp.control {
                    rules.push((label.clone(), r.clone()));
                }
                kernel_rules.push(KernelRules {
                    label: label.clone(),
                    id,
                    dir: dir.clone(),
                    rules: gp.rules.clone(),
                    throttles: gp.throttles,
                });
                wanted.insert(label, Managed { dir, id });
            }
        }
        // Counting links at the topmost of the groups only (the root alone in
        // observe mode): one below another would count its packets twice.
        let mut count_at: Vec<PathBuf> = wanted.values().map(|m| m.dir.clone()).collect();
        if self.settings.observe {
            count_at.push(self.cg.hierarchy(self.v2).mount_point.clone());
        }
        let counting = self.kernel.count_at(&count_at)?;
        tracing::info!(
            at = ?counting.at,
            new_links = counting.attached,
            removed_links = counting.detached,
            "accounting attached"
        );
        self.install_kernel_rules(&kernel_rules)?;
        let container_rules = validated.map(|p| p.containers.clone()).unwrap_or_default();
        self.containers.replace(&mut self.kernel, container_rules);
        for (label, old) in &self.groups {
            if !wanted.contains_key(label) {
                self.kernel.clear_group_rules(old.id)?;
                self.kernel.detach_enforcement(&old.dir)?;
                tracing::info!(group = label.as_str(), "no longer in the policy: detached");
            }
        }
        let n = self.kernel.attach_tracing()?;
        tracing::debug!(new_links = n, "syscall and OOM tracing attached");
        self.kernel.set_syscall_scope(if self.settings.observe {
            SyscallScope::All
        } else {
            SyscallScope::Groups(wanted.values().map(|m| m.id).collect())
        })?;
        self.set_owners(&wanted)?;
        self.groups = wanted;
        self.settings.export.always = self.groups.keys().cloned().collect();
        // What every group's metrics are now: new rules act on what happens
        // from here on, not on history.
        let ids: Vec<u64> = self.groups.values().map(|m| m.id).collect();
        let snap = self.kernel.snapshot()?;
        let armed_at = self.collector.collect_with(&snap, &self.cg, &ids).groups;
        let undone = {
            let mut rates = KernelRates {
                kernel: &mut self.kernel,
                groups: &self.groups,
            };
            let mut fx = HostEffects {
                cg: &self.cg,
                rates: &mut rates,
            };
            self.engine.reload(rules, &armed_at, &mut fx)
        };
        for d in &undone {
            self.audit.decision(d);
        }
        Ok(())
    }

    /// Network, budget and syscall rules into the kernel, each group's swapped
    /// as a whole, enforcing programs attached only to the policy's groups.
    fn install_kernel_rules(&mut self, groups: &[KernelRules]) -> Result<(), AgentError> {
        for g in groups {
            let err = |e| in_group(&g.label, e);
            if g.rules.is_empty() {
                self.kernel.clear_group_rules(g.id).map_err(err)?;
            } else {
                self.kernel.set_group_rules(g.id, &g.rules).map_err(err)?;
            }
            if !g.rules.is_empty() || g.throttles {
                let n = self.kernel.attach_enforcement(&g.dir).map_err(err)?;
                tracing::info!(
                    group = g.label.as_str(),
                    new_links = n,
                    "enforcement attached"
                );
            } else {
                self.kernel.detach_enforcement(&g.dir).map_err(err)?;
            }
        }
        Ok(())
    }

    /// Re-read the policy file. An invalid policy keeps the old one in force;
    /// one that fails while being installed is taken off again and the old
    /// one re-installed.
    fn reload(&mut self, why: &str) {
        let Some(file) = self.opts.policy.clone() else {
            return;
        };
        if let Some(w) = &mut self.watch {
            w.mark();
        }
        notify::reloading();
        let ok = self.reload_from(&file, why);
        if ok {
            self.health.reloads_ok += 1;
        } else {
            self.health.reloads_failed += 1;
        }
        notify::ready(if ok {
            "policy reloaded"
        } else {
            "reload failed; the previous policy is in force"
        });
    }

    /// [`reload`](Self::reload); whether the new policy is in force.
    fn reload_from(&mut self, file: &Path, why: &str) -> bool {
        match self.validate(file) {
            Ok(v) => {
                let keep = v.clone();
                match self.install(Some(v)) {
                    Ok(()) => {
                        if let Some(c) = &self.classifier {
                            c.set_policy(classify_rules(Some(&keep)));
                        }
                        self.current = Some(keep);
                        tracing::info!(file = %file.display(), why, "policy reloaded");
                        self.audit
                            .note("reload", &format!("policy reloaded ({why})"));
                        true
                    }
                    Err(e) => {
                        tracing::error!(file = %file.display(), "reload failed while applying: {e}");
                        self.audit.note("reload_failed", &e.to_string());
                        if let Some(previous) = self.current.clone()
                            && let Err(e) = self.install(Some(previous))
                        {
                            tracing::error!("re-installing the previous policy failed too: {e}");
                            self.audit.note(
                                "reload_failed",
                                &format!("re-installing the previous policy failed: {e}"),
                            );
                        }
                        false
                    }
                }
            }
            Err(e) => {
                tracing::error!(file = %file.display(), "invalid policy, keeping the current one: {e}");
                self.audit.note("reload_rejected", &e.to_string());
                false
            }
        }
    }

    /// Pins of ours that someone removed are pinned again (they never stopped
    /// working: the agent holds every link), and each is audited.
    fn restore_pins(&mut self) {
        for r in self.kernel.restore_pins() {
            match &r.result {
                Ok(()) => {
                    tracing::warn!(pin = %r.path.display(), "a pin of the agent was removed; pinned it again");
                    self.audit.note(
                        "pin_restored",
                        &format!("{} was removed while the agent ran; pinned again (enforcement never stopped: the agent holds its links)", r.path.display()),
                    );
                }
                Err(e) => {
                    tracing::error!(pin = %r.path.display(), "a pin of the agent was removed and could not be restored: {e}");
                    self.audit.note("pin_restore_failed", e);
                }
            }
        }
    }

    /// A warning line (log and audit) when the kernel dropped events since
    /// the last tick because the ring buffer was full.
    fn report_lost_events(&mut self, snap: &crate::bpf::Snapshot) {
        let total: u64 = snap.groups.values().map(|g| g.enforce.events_lost).sum();
        if total > self.events_lost {
            let new = total - self.events_lost;
            tracing::warn!(
                lost = new,
                total,
                "the kernel dropped events because the ring buffer was full; they are missing from the audit log (counted in stats and enforcer_events_lost_total)"
            );
            self.audit.note(
                "events_lost",
                &format!(
                    "{new} events were dropped by the kernel (ring buffer full), {total} in all"
                ),
            );
        }
        self.events_lost = total;
    }

    /// A warning (log and audit) for each counting map that was full since the
    /// last tick: events went uncounted, which must never be silent.
    fn report_full_maps(&mut self, snap: &crate::bpf::Snapshot) {
        for (map, &n) in &snap.map_full {
            let before = self.map_full.insert(map, n).unwrap_or(0);
            if n > before {
                tracing::warn!(
                    map,
                    missed = n - before,
                    total = n,
                    "a counting map is full: events went uncounted (raise its capacity, \
                     see `[agent]` in README; enforcer_map_full_total counts them)"
                );
                self.audit.note(
                    "map_full",
                    &format!(
                        "{map} was full: {} events uncounted, {n} in all",
                        n - before
                    ),
                );
            }
        }
    }

    fn tick(&mut self, state: &Arc<RwLock<MetricsState>>) -> Result<(), AgentError> {
        self.restore_pins();
        // Events left waiting (the audit log could not take them): the
        // kernel wakes a reader only once it has caught up, so the tick
        // offers them again.
        self.drain_events();
        let started = Instant::now();
        let snap = self.kernel.snapshot()?;
        self.report_lost_events(&snap);
        self.report_full_maps(&snap);
        let ids: Vec<u64> = self.groups.values().map(|m| m.id).collect();
        let policy: std::collections::HashSet<u64> = ids.iter().copied().collect();
        // cgroupfs usage (a few files per group) only where it is used: the
        // closed loop's groups here, the exported ones below.
        let summary = self.opts.summary;
        let mut c = self
            .collector
            .collect_select(&snap, &self.cg, &ids, |id| summary || policy.contains(&id));
        match self.kernel.limits() {
            Ok(l) => crate::collect::with_limits(&mut c.groups, &l),
            Err(e) => tracing::debug!("reading limits: {e}"),
        }
        // Deleted groups the kernel's reports missed (a ring buffer that
        // overflowed), a bounded number checked per collection.
        let mut vanished = c.vanished.clone();
        vanished.extend(self.collector.sweep(&snap, SWEEP_PER_TICK));
        if !vanished.is_empty() {
            tracing::debug!(
                count = vanished.len(),
                "reclaiming counters of deleted groups"
            );
            self.kernel.forget_with(&vanished, &snap)?;
            self.reclaimed += vanished.len();
        }
        if !self.containers.is_empty() {
            let root = self.cg.hierarchy(self.v2).mount_point.clone();
            for note in self
                .containers
                .apply(&mut self.kernel, &mut self.collector, &root)
            {
                self.audit.note("container_rules", &note);
            }
        }
        self.sweep_quotas();
        if !self.engine.is_empty() {
            let mut rates = KernelRates {
                kernel: &mut self.kernel,
                groups: &self.groups,
            };
            let mut fx = HostEffects {
                cg: &self.cg,
                rates: &mut rates,
            };
            for d in self.engine.step(Instant::now(), &c.groups, &mut fx) {
                self.audit.decision(&d);
                self.events += 1;
            }
        }
        if self.opts.summary {
            // Redrawn in place on a terminal; appended as plain tables into a
            // pipe or file (no escape codes there).
            let clear = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                "\x1b[2J\x1b[H"
            } else {
                ""
            };
            let table = crate::report::table(&c.groups, self.opts.summary_rows);
            let mut out = std::io::stdout().lock();
            let _ = std::io::Write::write_all(&mut out, format!("{clear}{table}").as_bytes())
                .and_then(|()| std::io::Write::flush(&mut out));
        }
        let (mut exported, omitted) = self.rollup.apply(&c.groups, &self.settings.export);
        for g in exported
            .iter_mut()
            .filter(|g| g.cgroup_id == 0 || (!summary && !policy.contains(&g.cgroup_id)))
        {
            g.read_usage(&self.cg);
        }
        self.health.events = self.events;
        self.health.audit_lines_lost = self.audit.lines_lost();
        self.health.map_full = snap.map_full.clone();
        self.health.maps = snap.maps;
        self.health.groups_omitted = omitted;
        self.health.collections += 1;
        self.health.collection_seconds = started.elapsed().as_secs_f64();
        if let Ok(mut s) = state.write() {
            s.groups = exported;
            s.syscalls = self.syscall_labels.clone();
            s.agent = self.health.clone();
            s.arbiter = self.arbiter.as_ref().map(|a| a.status());
        }
        if self.reclaimed >= TRIM_AFTER_GROUPS {
            self.reclaimed = 0;
            release_freed_memory();
        }
        if self.watch.as_mut().is_some_and(|w| w.changed()) {
            self.reload("file changed");
        }
        Ok(())
    }

    /// Writes pending kernel events to the audit log, each released from
    /// the ring buffer only once written. Returns whether more may be pending.
    fn drain_events(&mut self) -> bool {
        let Agent {
            kernel,
            settings,
            groups,
            collector,
            audit,
            events,
            reclaimed,
            ..
        } = self;
        let mut removed = Vec::new();
        let taken = kernel.for_each_event_until(EVENTS_PER_TURN, |e| {
            let id = e.cgroup_id();
            if let crate::bpf::Event::CgroupRemoved { .. } = e {
                // Bookkeeping, not an audit record: its counters go below.
                removed.push(id);
                return true;
            }
            // The ring buffer sees every OOM kill on the host; outside observe
            // mode only the policy's groups are ours to report.
            let ours = groups.iter().find(|(_, m)| m.id == id).map(|(l, _)| l);
            if !settings.observe && ours.is_none() {
                return true;
            }
            let label = match ours {
                Some(l) => Some(l.clone()),
                // A group created since the last walk of the tree: walk again
                // so the event names it.
                None => collector.label_of(id).map(str::to_string),
            };
            match audit.record(&e, label.as_deref()) {
                audit::Recorded::Written => *events += 1,
                audit::Recorded::Duplicate => {}
                // The log cannot take it now (a full disk): it waits in the
                // ring buffer, and the tick offers it again.
                audit::Recorded::Failed => return false,
            }
            true
        });
        if !removed.is_empty() {
            // A removed group's counters, rules, pins, index entry and metric
            // series go now, not at some later walk of the tree.
            collector.forget(&removed);
            // Their SYSCALLS keys go at the next collection, which knows them.
            if let Err(e) = kernel.forget_with(&removed, &crate::bpf::Snapshot::default()) {
                tracing::warn!("reclaiming {} removed groups: {e}", removed.len());
            }
            tracing::debug!(count = removed.len(), "removed groups reclaimed");
            *reclaimed += removed.len();
        }
        taken >= EVENTS_PER_TURN && !audit.failing()
    }
}

/// The policy file, if it is root's alone: the file, every directory on the
/// way to it and every symlink ([`crate::trust`]). The agent acts on it as
/// root, and re-reads it whenever it changes. A missing file is the user's
/// mistake ([`ConfigError::Missing`](crate::config::ConfigError::Missing)).
fn check_policy_file(file: &Path) -> Result<(), AgentError> {
    match crate::trust::check_path(file, crate::trust::Want::File) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Err(crate::config::ConfigError::Missing {
            path: file.to_path_buf(),
        }
        .into()),
        Err(crate::trust::TrustError::Io { path, source, .. }) => {
            Err(crate::config::ConfigError::Io { path, source }.into())
        }
        Err(crate::trust::TrustError::Untrusted {
            problem: crate::trust::Problem::NotRegularFile,
            path,
            ..
        }) if path.is_dir() => Err(crate::config::ConfigError::IsDirectory { path }.into()),
        Err(e) => Err(AgentError::PolicyUntrusted(e)),
    }
}

/// Agent verbs act on root's pins and processes: say so up front rather
/// than failing later with a misleading message.
pub fn require_root(action: &'static str) -> Result<(), AgentError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(AgentError::NeedsRoot { action })
    }
}

/// `enforcer reload --config FILE`: validates FILE as the agent would, and
/// refuses (changing nothing) unless it is the file the agent runs: the
/// agent re-reads its own file, so validating another one would say nothing
/// about what gets loaded. Returns the policy's warnings.
pub fn check_policy(file: &Path, pid_file: &Path) -> Result<Vec<String>, AgentError> {
    require_root("validating a policy against the kernel")?;
    check_policy_file(file)?;
    let cg = Cgroups::discover()?;
    let warnings =
        validate(&cg, file, None, crate::plan::Kernel::Probe).map(|plan| plan.warnings)?;
    if let Some(running) = lock::agent_policy(pid_file) {
        let given = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let running_now = std::fs::canonicalize(&running).unwrap_or_else(|_| running.clone());
        if given != running_now && given != running {
            return Err(AgentError::OtherPolicy { given, running });
        }
    }
    Ok(warnings)
}

/// The policy file the agent of `pid_file` runs (for `reload --dry-run`).
pub fn policy_of_agent(pid_file: &Path) -> Result<PathBuf, AgentError> {
    lock::agent_policy(pid_file).ok_or_else(|| AgentError::NotRunning(pid_file.to_path_buf()))
}

/// What a policy needs from the host, for `enforcer status --config`.
#[derive(Debug, Clone, Default)]
pub struct PolicyNeeds {
    /// A deny rule needs BPF-LSM.
    pub lsm: bool,
    /// The delegated group its groups go below.
    pub parent: Option<String>,
    /// Why this kernel cannot enforce it (group, rule, line and reason).
    pub refused: Option<String>,
    /// What the plan warns about (a rule enforced only in part, ...).
    pub warnings: Vec<String>,
}

/// Validates `file` against the host as `run` would (a bad policy is an
/// error, exit 2) and says what it needs from the kernel; `report` is this
/// kernel's feature table.
pub fn policy_needs(
    file: &Path,
    report: Option<&crate::bpf::FeatureReport>,
) -> Result<PolicyNeeds, AgentError> {
    let cg = Cgroups::discover()?;
    let plan = validate(&cg, file, None, crate::plan::Kernel::Unchecked)?;
    let lsm = plan.groups.iter().any(|planned| {
        crate::bpf::Feature::needed_by(&planned.rules, planned.throttles)
            .iter()
            .any(|(f, _)| *f == crate::bpf::Feature::LsmDeny)
    });
    Ok(PolicyNeeds {
        lsm,
        parent: plan.parent.as_ref().map(|p| p.to_string()),
        refused: report.and_then(|r| {
            crate::plan::check_features(&plan.groups, r)
                .err()
                .map(|e| e.to_string())
        }),
        warnings: plan.warnings.clone(),
    })
}

/// `enforcer reload`: ask a running agent to re-read its policy. Only the
/// process holding the pid file's lock, if it is an enforcer binary, is
/// signalled.
pub fn reload(pid_file: &Path) -> Result<i32, AgentError> {
    require_root("signalling the agent")?;
    let pid = lock::running_agent(pid_file)?
        .ok_or_else(|| AgentError::NotRunning(pid_file.to_path_buf()))?;
    signal_pid(pid, nix::sys::signal::Signal::SIGHUP, pid_file)?;
    Ok(pid)
}

fn signal_pid(pid: i32, sig: nix::sys::signal::Signal, pid_file: &Path) -> Result<(), AgentError> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(|e| AgentError::Io {
        op: "signalling the agent of",
        path: pid_file.to_path_buf(),
        source: e.into(),
    })
}

/// How long `stop` waits for the agent to finish its tick and exit.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// `enforcer stop`: end the running agent (the holder of the pid file's
/// lock), then detach and unpin everything. Nothing is unpinned while an
/// agent still holds the pin directory: it would pin everything again.
pub fn stop(pin_dir: &Path, pid_file: &Path) -> Result<(Option<i32>, usize), AgentError> {
    require_root("stopping the agent and removing its pins")?;
    let agent = lock::running_agent(pid_file)?;
    if let Some(pid) = agent {
        signal_pid(pid, nix::sys::signal::Signal::SIGTERM, pid_file)?;
        let deadline = std::time::Instant::now() + STOP_WAIT;
        // The locks go with the process (also while it is a zombie not yet
        // reaped by its parent, which a PID check would count as alive); the
        // pid file's is released first, the pin directory's last.
        while lock::running_agent(pid_file)?.is_some()
            || lock::PinDirLock::holder(pin_dir) == Some(pid)
        {
            if std::time::Instant::now() > deadline {
                return Err(AgentError::StillRunning {
                    pid,
                    secs: STOP_WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    if let Some(pid) = lock::PinDirLock::holder(pin_dir) {
        return Err(AgentError::AlreadyRunning {
            pid: Some(pid),
            what: "pin directory",
            path: pin_dir.to_path_buf(),
        });
    }
    // Nothing is in force any more.
    let _ = std::fs::remove_file(InForce::path(pid_file));
    Ok((agent, crate::bpf::unpin_all(pin_dir)?))
}

/// Labels for the groups a user names on the command line (`stats web db`).
pub fn wanted(groups: &[String]) -> Result<Vec<String>, AgentError> {
    groups
        .iter()
        .map(|g| {
            let p = GroupPath::parse(g)?;
            Ok(if p.is_root() {
                "/".to_string()
            } else {
                p.as_str().to_string()
            })
        })
        .collect()
}
