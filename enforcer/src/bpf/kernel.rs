//! [`Kernel`]: the loaded object with pinned maps, attached to groups and
//! tracepoints, read by the agent.

use std::collections::{BTreeSet, HashMap as StdHashMap};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use aya::maps::{Array, HashMap, MapData, MapError, PerCpuHashMap, RingBuf};
use aya::programs::links::FdLink;
use aya::programs::{CgroupAttachMode, CgroupSkb, CgroupSockAddr, RawTracePoint, TracePoint};
use aya::{Btf, Ebpf};
use enforcer_common::{EnforceCounter, NetCounter, SockCounter, SyscallKey, scope};

use super::BpfError;
use super::events::{self, Event};
use super::held::{Held, Restored};
use super::layout::Capacity;
use super::layout::{
    ENFORCE_COUNTS, EVENTS, GROUP_PROGRAMS, Hook, NET_EGRESS, NET_INGRESS, ProgramSpec,
    SOCK_ATTEMPTS, SYSCALL_GROUPS, SYSCALL_SCOPE, SYSCALLS, TRACING_PROGRAMS, maps_dir,
};
use super::layout::{PINNED_MAPS, map_pin};
use super::object::{self, LogReader, open_cgroup2_dir};
use super::pins::{
    adopt_link, check_bpffs, check_pinned_maps, global_links_dir, group_links_dir, pin_link,
    pinned_capacity, unpin_links_in,
};
use super::rules::GroupRules;
use super::snapshot::{self, CounterMaps, Snapshot};
use super::tracefs;
use super::trust::{check_ancestors, check_tree, create_private_dir};

/// Which cgroups `count_syscalls` counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallScope {
    /// Every cgroup on the host (including processes enforcer does not manage).
    All,
    /// Only these cgroup2 ids and their descendants (to 16 levels below the
    /// root), each counted under its own id.
    Groups(Vec<u64>),
}

/// enforcer's kernel side, loaded: the embedded object with its maps pinned
/// under a pin directory, ready to attach to groups, load rules and read
/// counters and events.
///
/// Attachments are pinned links, so they outlive this value: dropping a `Kernel`
/// (or killing the process) leaves every program attached, counting into the
/// pinned maps and enforcing the rules in them; the next [`Kernel::open`] on the
/// same pin directory adopts them. Only [`unpin_all`](super::unpin_all) detaches.
///
/// Enforcement methods ([`attach_enforcement`](Self::attach_enforcement),
/// [`set_group_rules`](Self::set_group_rules), [`set_rate`](Self::set_rate), ...)
/// are in `enforcement.rs`.
pub struct Kernel {
    pub(super) pin_dir: PathBuf,
    /// Taken out of `ebpf` so it can be polled and drained while `ebpf` is
    /// borrowed elsewhere.
    events: RingBuf<MapData>,
    logs: Option<LogReader>,
    pub(super) ebpf: Ebpf,
    /// The kernel's BTF, read when the first BPF-LSM program is loaded.
    pub(super) btf: Option<Btf>,
    /// The rules this process loaded per group, to name the rule of a network
    /// denial in its event (the maps hold only its index).
    pub(super) rules: StdHashMap<u64, GroupRules>,
    /// Whether `ENFORCE_SCOPE`'s compat-syscall fields were written.
    pub(super) compat_known: bool,
    /// Whether BPF-LSM programs can be loaded here (`Err`: why not); `None`
    /// until first needed.
    pub(super) lsm: Option<Result<(), String>>,
    /// fds of every map and link pinned by this process or adopted: while it
    /// runs, removing a pin detaches nothing (see [`Kernel::restore_pins`]).
    pub(super) held: Held,
    /// Links attached since [`Kernel::begin_journal`], if journaling.
    pub(super) journal: Option<Vec<PathBuf>>,
    /// What this kernel refuses ([`Kernel::degrade_to`]): programs of refused
    /// features are left out instead of failing the whole attach.
    pub(super) features: Option<super::FeatureReport>,
    /// Owners of subtree quotas and their quotas ([`Kernel::set_owners`]).
    pub(super) quotas: std::collections::BTreeMap<u64, u32>,
}

// The agent moves the kernel into async tasks.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Kernel>();
};

impl Kernel {
    /// Loads the embedded object, re-using maps pinned under `pin_dir/maps`
    /// (creating and pinning them on first start), so counts survive agent
    /// restarts, even SIGKILL. All programs are loaded (verified); nothing new is
    /// attached yet.
    ///
    /// `pin_dir` (created if missing, mode 0700) must be on bpffs, and it and
    /// everything under it must be root's alone
    /// ([`BpfError::UntrustedPin`]): a pin someone else can remove is
    /// enforcement someone else can switch off. A map pinned there by a build
    /// with another layout is refused ([`BpfError::PinnedMapMismatch`]).
    pub fn open(pin_dir: &Path) -> Result<Kernel, BpfError> {
        Self::open_with(pin_dir, &Capacity::default())
    }

    /// [`open`](Self::open) with maps sized by `capacity`. Maps already pinned
    /// keep the capacity they were made with (said once, as a warning).
    pub fn open_with(pin_dir: &Path, capacity: &Capacity) -> Result<Kernel, BpfError> {
        // Nothing is made below a directory someone else could rename.
        check_ancestors(pin_dir)?;
        create_private_dir(pin_dir)?;
        check_bpffs(pin_dir)?;
        check_ancestors(pin_dir)?;
        check_tree(pin_dir)?;
        create_private_dir(&maps_dir(pin_dir))?;
        check_pinned_maps(pin_dir)?;
        for spec in &PINNED_MAPS {
            let wanted = capacity.entries_of(spec);
            if let Some(pinned) = pinned_capacity(pin_dir, spec)?
                && pinned != wanted
            {
                tracing::warn!(
                    map = spec.name,
                    pinned,
                    wanted,
                    "the pinned map keeps its capacity; `enforcer stop` and start again to change it"
                );
            }
        }
        let (mut ebpf, logs) = object::load_with(Some(pin_dir), capacity)?;
        let mut held = Held::default();
        for spec in &PINNED_MAPS {
            held.hold(&map_pin(pin_dir, spec.name))?;
        }
        let events = ebpf.take_map(EVENTS).ok_or(BpfError::MapMissing(EVENTS))?;
        let events = RingBuf::try_from(events).map_err(|source| BpfError::Map {
            map: EVENTS,
            source,
        })?;
        Ok(Kernel {
            pin_dir: pin_dir.to_path_buf(),
            events,
            logs,
            ebpf,
            btf: None,
            rules: StdHashMap::new(),
            compat_known: false,
            lsm: None,
            held,
            journal: None,
            features: None,
            quotas: std::collections::BTreeMap::new(),
        })
    }

    /// Pins again every map and link of this process whose pin disappeared
    /// (they stayed attached meanwhile: this process holds them). Returns what
    /// was restored; the agent calls it every interval and audits each one.
    pub fn restore_pins(&mut self) -> Vec<Restored> {
        self.held.restore_missing()
    }

    /// Loads every program of this object through the verifier (once; they
    /// stay loaded for attaching) and reports, per feature, what this kernel
    /// refuses. From then on, programs of refused features are not attached
    /// (a syscall counter the verifier rejects costs syscall counts, not the
    /// agent): a policy must have been checked not to need them. Without it
    /// every attach needs every program.
    pub fn probe_and_degrade(&mut self) -> super::FeatureReport {
        let report = super::features::probe_in(&mut self.ebpf, &mut self.btf);
        self.features = Some(report.clone());
        report
    }

    /// The report of [`probe_and_degrade`](Self::probe_and_degrade), if run.
    pub fn feature_report(&self) -> Option<&super::FeatureReport> {
        self.features.as_ref()
    }

    /// Whether `program` is to be attached (see [`degrade_to`](Self::degrade_to)).
    pub(super) fn wanted(&self, program: &str) -> bool {
        self.features
            .as_ref()
            .is_none_or(|f| f.program_available(program))
    }

    /// Holds a pin this process just made, noting it in the journal if one
    /// is open ([`begin_journal`](Self::begin_journal)).
    pub(super) fn hold_new(&mut self, path: &Path) -> Result<(), BpfError> {
        self.held.hold(path)?;
        if let Some(journal) = &mut self.journal {
            journal.push(path.to_path_buf());
        }
        Ok(())
    }

    /// Starts noting every link this process attaches, so that a start or
    /// reload that fails halfway can take them off again
    /// ([`undo_journal`](Self::undo_journal)).
    pub fn begin_journal(&mut self) {
        self.journal = Some(Vec::new());
    }

    /// Stops noting; what was attached stays.
    pub fn end_journal(&mut self) {
        self.journal = None;
    }

    /// Detaches and unpins every link attached since
    /// [`begin_journal`](Self::begin_journal) (links adopted from pins are
    /// left alone). Returns how many were removed.
    pub fn undo_journal(&mut self) -> usize {
        let Some(paths) = self.journal.take() else {
            return 0;
        };
        let mut removed = 0;
        for path in paths.iter().rev() {
            if std::fs::remove_file(path).is_ok() {
                removed += 1;
            }
            self.held.release(path);
        }
        removed
    }

    /// How many pinned objects this process holds.
    pub fn held_pins(&self) -> usize {
        self.held.len()
    }

    /// The pin directory this kernel was opened on.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Attaches the six counting programs (`count_egress`, `count_ingress`,
    /// `count_connect4`, `count_connect6`, `count_bind4`, `count_bind6`) to the
    /// cgroup2 directory `cgroup2_dir`, each link pinned under
    /// `pin_dir/links/<cgroup id>/<program>`. A link already pinned there (by a
    /// previous run) is adopted, not attached twice. Returns how many links were
    /// newly attached (0..=6).
    ///
    /// The programs see the group *and its descendants*; every packet and call
    /// is charged to its own cgroup. Attach to disjoint subtrees: with links on a
    /// cgroup and on its ancestor, the programs run twice and count twice
    /// ([`count_at`](Self::count_at) chooses such a set).
    pub fn attach_group(&mut self, cgroup2_dir: &Path) -> Result<usize, BpfError> {
        let (cgroup, cgroup_id) = open_cgroup2_dir(cgroup2_dir)?;
        let dir = group_links_dir(&self.pin_dir, cgroup_id);
        create_private_dir(&dir)?;
        let target = cgroup2_dir.display().to_string();
        let mut attached = 0;
        for spec in &GROUP_PROGRAMS {
            let path = dir.join(spec.name);
            if adopt_link(&path, spec)? {
                self.held.hold(&path)?;
            } else {
                let link = self.attach_one(spec, &target, |hook, program| {
                    attach_to_cgroup(hook, program, &cgroup)
                })?;
                pin_link(link, &path, spec)?;
                self.hold_new(&path)?;
                attached += 1;
            }
        }
        Ok(attached)
    }

    /// Detaches the six per-group programs from `cgroup2_dir` by unpinning
    /// its links (attached by this or an earlier run). Its counters stay until
    /// [`forget`](Self::forget). Returns how many links were removed (0 if the
    /// group was not attached).
    pub fn detach_group(&mut self, cgroup2_dir: &Path) -> Result<usize, BpfError> {
        let (_, cgroup_id) = open_cgroup2_dir(cgroup2_dir)?;
        self.unpin_and_release(&group_links_dir(&self.pin_dir, cgroup_id))
    }

    /// Unpins the links of `dir` and lets go of this process's fds of them:
    /// only then are they detached.
    pub(super) fn unpin_and_release(&mut self, dir: &Path) -> Result<usize, BpfError> {
        let removed = unpin_links_in(dir);
        self.held.release_dir(dir);
        removed
    }

    /// Attaches `count_syscalls` (raw tracepoint `sys_enter`) and `oom_kill`
    /// (tracepoint `oom/mark_victim`) host-wide, pinned under
    /// `pin_dir/links/global/`, adopted on restart. Returns how many links were
    /// newly attached (0..=2).
    ///
    /// Mounts tracefs at /sys/kernel/tracing if no tracefs is mounted (needed to
    /// attach a tracepoint), and refuses to attach `oom_kill` if the kernel's
    /// `mark_victim` record layout differs from the one it was written for.
    /// `count_syscalls` counts nothing until [`set_syscall_scope`](Self::set_syscall_scope)
    /// names groups (or all).
    pub fn attach_tracing(&mut self) -> Result<usize, BpfError> {
        let dir = global_links_dir(&self.pin_dir);
        create_private_dir(&dir)?;
        if self.wanted("count_syscalls") {
            // 32-bit calls are counted by their compat table's numbers.
            self.ensure_compat_check()?;
        }
        let mut attached = 0;
        for spec in &TRACING_PROGRAMS {
            if !self.wanted(spec.name) {
                continue;
            }
            let path = dir.join(spec.name);
            if adopt_link(&path, spec)? {
                self.held.hold(&path)?;
                continue;
            }
            if let Hook::Tracepoint(category, name) = spec.hook {
                let label = match (category, name) {
                    ("oom", "mark_victim") => "oom/mark_victim",
                    ("cgroup", "cgroup_rmdir") => "cgroup/cgroup_rmdir",
                    ("cgroup", "cgroup_attach_task") => "cgroup/cgroup_attach_task",
                    _ => "a tracepoint",
                };
                let tracefs = tracefs::ensure_tracefs(label)?;
                match (category, name) {
                    ("oom", "mark_victim") => tracefs::check_mark_victim(&tracefs)?,
                    ("cgroup", "cgroup_rmdir") => tracefs::check_cgroup_rmdir(&tracefs)?,
                    _ => {}
                }
            }
            let target = match spec.hook {
                Hook::RawTracepoint(tp) => format!("raw tracepoint {tp}"),
                Hook::Tracepoint(category, name) => format!("tracepoint {category}/{name}"),
                _ => String::new(),
            };
            let link = self.attach_one(spec, &target, |hook, program| match hook {
                Hook::RawTracepoint(tp) => {
                    let p: &mut RawTracePoint = program.try_into()?;
                    let id = p.attach(tp)?;
                    Ok(Ok(FdLink::from(p.take_link(id)?)))
                }
                Hook::Tracepoint(category, name) => {
                    let p: &mut TracePoint = program.try_into()?;
                    let id = p.attach(category, name)?;
                    Ok(FdLink::try_from(p.take_link(id)?))
                }
                _ => Err(aya::programs::ProgramError::UnexpectedProgramType),
            })?;
            pin_link(link, &path, spec)?;
            self.hold_new(&path)?;
            attached += 1;
        }
        Ok(attached)
    }

    /// Runs `attach` on the loaded program of `spec`, mapping errors.
    pub(super) fn attach_one(
        &mut self,
        spec: &ProgramSpec,
        target: &str,
        attach: impl FnOnce(
            Hook,
            &mut aya::programs::Program,
        ) -> Result<
            Result<FdLink, aya::programs::links::LinkError>,
            aya::programs::ProgramError,
        >,
    ) -> Result<FdLink, BpfError> {
        object::ensure_loaded(&mut self.ebpf, *spec, &mut self.btf)?;
        let program = self
            .ebpf
            .program_mut(spec.name)
            .ok_or(BpfError::ProgramMissing(spec.name))?;
        attach(spec.hook, program)
            .map_err(|source| BpfError::Attach {
                program: spec.name,
                target: target.to_owned(),
                source,
            })?
            .map_err(|source| BpfError::Unpinnable {
                program: spec.name,
                source,
            })
    }

    /// Chooses which cgroups `count_syscalls` counts. `Groups` replaces the
    /// previous list. Takes effect on every CPU at its next syscall (the per-CPU
    /// decision caches are invalidated through a generation counter).
    pub fn set_syscall_scope(&mut self, scope: SyscallScope) -> Result<(), BpfError> {
        let mode = match &scope {
            SyscallScope::All => scope::ALL,
            SyscallScope::Groups(ids) => {
                self.sync_syscall_groups(ids)?;
                scope::GROUPS
            }
        };
        let mut array = self.scope_array()?;
        let map_err = |source| BpfError::Map {
            map: SYSCALL_SCOPE,
            source,
        };
        array.set(scope::MODE, mode, 0).map_err(map_err)?;
        bump_generation(&mut array)
    }

    /// Makes `SYSCALL_GROUPS` hold exactly `ids`.
    fn sync_syscall_groups(&mut self, ids: &[u64]) -> Result<(), BpfError> {
        let map_err = |source| BpfError::Map {
            map: SYSCALL_GROUPS,
            source,
        };
        let map = self
            .ebpf
            .map_mut(SYSCALL_GROUPS)
            .ok_or(BpfError::MapMissing(SYSCALL_GROUPS))?;
        let mut groups: HashMap<_, u64, u8> = HashMap::try_from(map).map_err(map_err)?;
        let wanted: BTreeSet<u64> = ids.iter().copied().collect();
        let present: BTreeSet<u64> = groups.keys().collect::<Result<_, _>>().map_err(map_err)?;
        for id in wanted.difference(&present) {
            groups.insert(id, 1, 0).map_err(map_err)?;
        }
        for id in present.difference(&wanted) {
            remove_absent_ok(groups.remove(id)).map_err(map_err)?;
        }
        Ok(())
    }

    fn scope_array(&mut self) -> Result<Array<&mut MapData, u32>, BpfError> {
        let map = self
            .ebpf
            .map_mut(SYSCALL_SCOPE)
            .ok_or(BpfError::MapMissing(SYSCALL_SCOPE))?;
        Array::try_from(map).map_err(|source| BpfError::Map {
            map: SYSCALL_SCOPE,
            source,
        })
    }

    /// Per-group totals, summed over CPUs.
    pub fn snapshot(&self) -> Result<Snapshot, BpfError> {
        self.read_counters(snapshot::ReadMode::Batch)
    }

    /// [`snapshot`](Self::snapshot) read entry by entry, as on a kernel
    /// without `BPF_MAP_LOOKUP_BATCH` (to check that the two paths agree).
    pub fn snapshot_per_entry(&self) -> Result<Snapshot, BpfError> {
        self.read_counters(snapshot::ReadMode::PerEntry)
    }

    fn read_counters(&self, mode: snapshot::ReadMode) -> Result<Snapshot, BpfError> {
        let get = |name: &'static str| self.ebpf.map(name).ok_or(BpfError::MapMissing(name));
        snapshot::read(
            &CounterMaps {
                egress: get(NET_EGRESS)?,
                ingress: get(NET_INGRESS)?,
                sock: get(SOCK_ATTEMPTS)?,
                syscalls: get(SYSCALLS)?,
                enforce: get(ENFORCE_COUNTS)?,
                full: get(super::layout::MAP_FULL)?,
            },
            mode,
        )
    }

    /// Removes everything kept for these cgroups (ids of groups that no longer
    /// exist): their entries in every counter map and in `SYSCALL_GROUPS`,
    /// their quota admissions, their rules and limiter state, and their
    /// pinned links (counting and enforcement; detached already if the
    /// cgroup was removed). Unknown ids are fine. Finding their `SYSCALLS`
    /// keys reads the whole map; [`forget_with`](Self::forget_with) takes
    /// them from a snapshot instead.
    pub fn forget(&mut self, cgroup_ids: &[u64]) -> Result<(), BpfError> {
        self.forget_keys(cgroup_ids, None)
    }

    /// [`forget`](Self::forget), with the `SYSCALLS` keys the groups have in
    /// `known` (a snapshot of the maps): work bounded by the groups, not by
    /// the map. Keys made since `known` was read stay until the next call.
    pub fn forget_with(&mut self, cgroup_ids: &[u64], known: &Snapshot) -> Result<(), BpfError> {
        self.forget_keys(cgroup_ids, Some(known))
    }

    fn forget_keys(
        &mut self,
        cgroup_ids: &[u64],
        known: Option<&Snapshot>,
    ) -> Result<(), BpfError> {
        if cgroup_ids.is_empty() {
            return Ok(());
        }
        let ids: BTreeSet<u64> = cgroup_ids.iter().copied().collect();
        for name in [NET_EGRESS, NET_INGRESS] {
            let mut map = self.per_cpu_mut::<u64, NetCounter>(name)?;
            for id in &ids {
                remove_absent_ok(map.remove(id))
                    .map_err(|source| BpfError::Map { map: name, source })?;
            }
        }
        {
            let mut map = self.per_cpu_mut::<u64, EnforceCounter>(ENFORCE_COUNTS)?;
            for id in &ids {
                remove_absent_ok(map.remove(id)).map_err(|source| BpfError::Map {
                    map: ENFORCE_COUNTS,
                    source,
                })?;
            }
        }
        for id in &ids {
            self.clear_group_rules(*id)?;
            self.detach_enforcement_id(*id)?;
        }
        {
            let mut map = self.per_cpu_mut::<u64, SockCounter>(SOCK_ATTEMPTS)?;
            for id in &ids {
                remove_absent_ok(map.remove(id)).map_err(|source| BpfError::Map {
                    map: SOCK_ATTEMPTS,
                    source,
                })?;
            }
        }
        {
            let map_err = |source| BpfError::Map {
                map: SYSCALLS,
                source,
            };
            let doomed: Vec<SyscallKey> = match known {
                Some(snap) => ids
                    .iter()
                    .filter_map(|id| snap.groups.get(id).map(|g| (id, g)))
                    .flat_map(|(id, g)| g.syscalls.keys().map(|s| s.key(*id)))
                    .collect(),
                None => {
                    let mut keys = Vec::new();
                    let map = self
                        .ebpf
                        .map(SYSCALLS)
                        .ok_or(BpfError::MapMissing(SYSCALLS))?;
                    let m: PerCpuHashMap<&MapData, SyscallKey, u64> =
                        PerCpuHashMap::try_from(map).map_err(map_err)?;
                    snapshot::for_each_key(&m, SYSCALLS, |k: SyscallKey| {
                        if ids.contains(&k.cgroup_id) {
                            keys.push(k);
                        }
                    })?;
                    keys
                }
            };
            let mut map = self.per_cpu_mut::<SyscallKey, u64>(SYSCALLS)?;
            for key in &doomed {
                remove_absent_ok(map.remove(key)).map_err(map_err)?;
            }
        }
        self.forget_quota(&ids)?;
        let mut scope_changed = false;
        {
            let map_err = |source| BpfError::Map {
                map: SYSCALL_GROUPS,
                source,
            };
            let map = self
                .ebpf
                .map_mut(SYSCALL_GROUPS)
                .ok_or(BpfError::MapMissing(SYSCALL_GROUPS))?;
            let mut groups: HashMap<_, u64, u8> = HashMap::try_from(map).map_err(map_err)?;
            for id in &ids {
                match groups.remove(id) {
                    Ok(()) => scope_changed = true,
                    Err(e) if is_absent(&e) => {}
                    Err(source) => return Err(map_err(source)),
                }
            }
        }
        if scope_changed {
            bump_generation(&mut self.scope_array()?)?;
        }
        for id in &ids {
            let dir = group_links_dir(&self.pin_dir, *id);
            self.unpin_and_release(&dir)?;
        }
        Ok(())
    }

    fn per_cpu_mut<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<PerCpuHashMap<&mut MapData, K, V>, BpfError> {
        let map = self.ebpf.map_mut(name).ok_or(BpfError::MapMissing(name))?;
        PerCpuHashMap::try_from(map).map_err(|source| BpfError::Map { map: name, source })
    }

    /// Drains pending events from the `EVENTS` ring buffer without blocking.
    /// Records of unknown kinds are skipped. A network denial by rules this
    /// process loaded names the rule as written (`rule_text`).
    pub fn drain_events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while self.for_each_event(usize::MAX, |e| out.push(e)) > 0 {}
        out
    }

    /// Hands up to `max` pending events to `f`, one at a time, releasing each
    /// record from the ring buffer only after `f` returns: a process killed
    /// while `f` writes an event down finds it again on restart rather than
    /// losing it. Returns how many records were taken (including skipped
    /// ones); `max` means more may be pending.
    pub fn for_each_event(&mut self, max: usize, mut f: impl FnMut(Event)) -> usize {
        self.for_each_event_until(max, |e| {
            f(e);
            true
        })
    }

    /// [`for_each_event`](Self::for_each_event), where `f` may refuse an
    /// event (return false: it could not be written down): that record is
    /// not released, stays first in the ring buffer, and the next call
    /// offers it again. Returns how many records were taken and released.
    pub fn for_each_event_until(&mut self, max: usize, mut f: impl FnMut(Event) -> bool) -> usize {
        let Kernel { events, rules, .. } = self;
        let mut taken = 0;
        while taken < max {
            let Some(item) = events.next() else { break };
            if let Some(mut event) = events::parse(&item) {
                if let Event::NetDenied {
                    op,
                    cgroup_id,
                    rule: Some(index),
                    rule_text,
                    ..
                } = &mut event
                {
                    *rule_text = rules.get(cgroup_id).and_then(|r| {
                        r.rule(*op == events::NetOp::Bind, *index)
                            .map(ToString::to_string)
                    });
                }
                if !f(event) {
                    // Not released: the consumer position stays before it.
                    std::mem::forget(item);
                    break;
                }
            }
            taken += 1;
            // Released here, after `f`.
            drop(item);
        }
        taken
    }

    /// The ring buffer's fd, for polling: it becomes readable when events are
    /// pending (e.g. with tokio's `AsyncFd`; then [`drain_events`](Self::drain_events)
    /// and clear the readiness). Valid as long as this `Kernel` lives. `Kernel`
    /// also implements [`AsFd`]/[`AsRawFd`] with the same fd.
    pub fn events_fd(&self) -> RawFd {
        self.events.as_raw_fd()
    }

    /// Writes pending aya-log records of the kernel programs to the `log` crate's
    /// logger. A no-op: the programs do not log (hot paths must not).
    pub fn flush_logs(&mut self) {
        if let Some(logs) = &mut self.logs {
            logs.flush();
        }
    }
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("pin_dir", &self.pin_dir)
            .field("events_fd", &self.events_fd())
            .finish_non_exhaustive()
    }
}

impl AsFd for Kernel {
    /// The `EVENTS` ring buffer (see [`Kernel::events_fd`]).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.events.as_fd()
    }
}

impl AsRawFd for Kernel {
    /// The `EVENTS` ring buffer (see [`Kernel::events_fd`]).
    fn as_raw_fd(&self) -> RawFd {
        self.events.as_raw_fd()
    }
}

/// Increments `SYSCALL_SCOPE[GENERATION]`, invalidating every CPU's cached
/// scope decision.
fn bump_generation(array: &mut Array<&mut MapData, u32>) -> Result<(), BpfError> {
    let map_err = |source| BpfError::Map {
        map: SYSCALL_SCOPE,
        source,
    };
    let generation = array.get(&scope::GENERATION, 0).map_err(map_err)?;
    array
        .set(scope::GENERATION, generation.wrapping_add(1), 0)
        .map_err(map_err)
}

/// Treats "no such key" as success for removals.
pub(super) fn remove_absent_ok(result: Result<(), MapError>) -> Result<(), MapError> {
    match result {
        Err(e) if is_absent(&e) => Ok(()),
        other => other,
    }
}

/// Whether a map error means the key was not there. aya 0.14's `remove`
/// reports that as the raw ENOENT of `bpf_map_delete_elem`, `get` as
/// `KeyNotFound`.
pub(super) fn is_absent(error: &MapError) -> bool {
    match error {
        MapError::KeyNotFound => true,
        MapError::SyscallError(e) => e.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// Attaches a cgroup program (skb, sock_addr or sock) to a cgroup2 directory and
/// returns its link. `Single`: with bpf_link_create (used by aya on >= 5.7),
/// AllowMultiple fails with EINVAL, and links are multi-attach anyway, so other
/// programs on the cgroup are unaffected.
pub(super) fn attach_to_cgroup(
    hook: Hook,
    program: &mut aya::programs::Program,
    cgroup: &std::fs::File,
) -> Result<Result<FdLink, aya::programs::links::LinkError>, aya::programs::ProgramError> {
    match hook {
        Hook::Skb(attach_type) => {
            let p: &mut CgroupSkb = program.try_into()?;
            let id = p.attach(cgroup, attach_type, CgroupAttachMode::Single)?;
            Ok(FdLink::try_from(p.take_link(id)?))
        }
        Hook::SockAddr => {
            let p: &mut CgroupSockAddr = program.try_into()?;
            let id = p.attach(cgroup, CgroupAttachMode::Single)?;
            Ok(FdLink::try_from(p.take_link(id)?))
        }
        Hook::Sock => {
            let p: &mut aya::programs::CgroupSock = program.try_into()?;
            let id = p.attach(cgroup, CgroupAttachMode::Single)?;
            Ok(FdLink::try_from(p.take_link(id)?))
        }
        _ => Err(aya::programs::ProgramError::UnexpectedProgramType),
    }
}
