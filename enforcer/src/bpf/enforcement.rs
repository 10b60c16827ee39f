//! Enforcement on [`Kernel`]: attaching the `enforce_*` programs to the
//! policy's groups and loading each group's rules into the maps.
//!
//! Map design (layouts in `enforcer_common::enforce`):
//!
//! * `GROUP_RULES` (hash, cgroup id -> `GroupPolicy`): list kinds and the
//!   address-list generation, limits per direction, syscall bitmaps and LSM
//!   deny bits. Replaced as a whole value, so a program sees old or new rules,
//!   never a mix.
//! * `NET_RULES` (LPM trie): the address lists, see `rules.rs`.
//! * `NET_LIMIT_STATE` (hash, shared by CPUs, atomics): limiter state.
//! * `ENFORCE_COUNTS` (per-CPU hash): decisions per group.
//! * `ENFORCE_SCOPE` (array): whether any group has syscall kill/log rules,
//!   the generation that invalidates `enforce_syscalls`' owner caches, and the
//!   compat-syscall check's offset and mask.

use std::collections::BTreeSet;
use std::path::Path;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, HashMap, MapData};
use aya::programs::links::FdLink;
use std::os::fd::AsFd as _;

use aya::programs::{LsmCgroup, RawTracePoint};
use enforcer_common::enforce::{compat, enforce_scope, hook, policy_flags};
use enforcer_common::{ENFORCE_MAX_LEVEL, GroupPolicy, LimitKey, LimitState, NetKey, NetRuleSet};

use super::features::bpf_lsm_inactive;
use super::kernel::{Kernel, is_absent, remove_absent_ok};
use super::layout::{
    ENFORCE_SCOPE, ENFORCE_SYSCALLS, GROUP_RULES, Hook, NET_LIMIT_STATE, NET_RULES,
    enforce_programs,
};
use super::object::{cgroup_level, ensure_loaded, lsm_refusal, open_cgroup2_dir};
use super::pins::{adopt_link, global_enforce_dir, group_enforce_dir, pin_link};
use super::rules::{Caps, GroupRules, dir_index, limit_conf};
use super::trust::create_private_dir;
use super::{BpfError, rawlink};
use crate::words::Direction;

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> BpfError {
    move |source| BpfError::Map { map, source }
}

impl Kernel {
    /// Attaches the enforcement programs to the cgroup2 directory of a policy
    /// group: address lists and syscall `deny` of connect/bind
    /// (`cgroup/connect4/6`, `sendmsg4/6`, `bind4/6`), rate limits and budgets
    /// (`cgroup_skb` egress and ingress), syscall `deny` of `socket` and
    /// `setsockopt` (`cgroup/sock_create`, `cgroup/setsockopt`), and, where the
    /// kernel loads BPF-LSM programs, of `listen`, `accept` and `execve`
    /// (`lsm_cgroup` `socket_listen`, `socket_accept`, `bprm_check_security`):
    /// 10 links, or 13 with BPF-LSM, pinned under
    /// `pin_dir/enforce/<cgroup id>/`, adopted if already pinned. Returns how
    /// many were newly attached. Where BPF-LSM programs cannot be loaded they
    /// are left out (see [`lsm_unavailable`](Self::lsm_unavailable)).
    ///
    /// The programs act on the group's rules
    /// ([`set_group_rules`](Self::set_group_rules)), for the group and all its
    /// descendant cgroups; until rules are set they allow everything. They
    /// never touch the counting maps, so with the counting programs also
    /// attached (here or at the root) nothing is counted twice. A group nested
    /// in another enforced group is subject to both groups' rules.
    ///
    /// Only groups at cgroup levels 1 to [`ENFORCE_MAX_LEVEL`] can be enforced
    /// ([`BpfError::EnforceLevel`]); never the cgroup2 root.
    pub fn attach_enforcement(&mut self, cgroup2_dir: &Path) -> Result<usize, BpfError> {
        let (cgroup, cgroup_id) = open_cgroup2_dir(cgroup2_dir)?;
        let level = cgroup_level(cgroup2_dir)?;
        if level == 0 || level > ENFORCE_MAX_LEVEL {
            return Err(BpfError::EnforceLevel {
                path: cgroup2_dir.to_path_buf(),
                level,
                max: ENFORCE_MAX_LEVEL,
            });
        }
        let dir = group_enforce_dir(&self.pin_dir, cgroup_id);
        create_private_dir(&dir)?;
        let target = cgroup2_dir.display().to_string();
        let mut attached = 0;
        for spec in enforce_programs(level) {
            // A feature this kernel refuses: the policy was checked not to
            // need it (see `Kernel::degrade_to`).
            if !self.wanted(spec.name) {
                continue;
            }
            let path = dir.join(spec.name);
            if adopt_link(&path, &spec)? {
                self.held.hold(&path)?;
                continue;
            }
            if let Hook::LsmCgroup(_) = spec.hook {
                if self.lsm_unavailable().is_some() {
                    continue;
                }
                ensure_loaded(&mut self.ebpf, spec, &mut self.btf)?;
                let program = self
                    .ebpf
                    .program_mut(spec.name)
                    .ok_or(BpfError::ProgramMissing(spec.name))?;
                let p: &mut LsmCgroup =
                    program.try_into().map_err(|source| BpfError::ProgramLoad {
                        name: spec.name,
                        source,
                    })?;
                let id = p.attach(&cgroup).map_err(|source| BpfError::LsmAttach {
                    program: spec.name,
                    target: target.clone(),
                    source,
                })?;
                let link = p
                    .take_link(id)
                    .map_err(|source| BpfError::Attach {
                        program: spec.name,
                        target: target.clone(),
                        source,
                    })
                    .map(FdLink::from)?;
                pin_link(link, &path, &spec)?;
                self.hold_new(&path)?;
                attached += 1;
                continue;
            }
            ensure_loaded(&mut self.ebpf, spec, &mut self.btf)?;
            if let Hook::Sockopt = spec.hook {
                // aya 0.14 cannot turn a sockopt link into a pinnable FdLink.
                let program = self
                    .ebpf
                    .program(spec.name)
                    .ok_or(BpfError::ProgramMissing(spec.name))?;
                let prog_fd = program.fd().map_err(|source| BpfError::Attach {
                    program: spec.name,
                    target: target.clone(),
                    source,
                })?;
                rawlink::create_and_pin(
                    prog_fd.as_fd(),
                    cgroup.as_fd(),
                    rawlink::BPF_CGROUP_SETSOCKOPT,
                    &path,
                )
                .map_err(|source| BpfError::PinDir {
                    op: "attaching and pinning a setsockopt link at",
                    path: path.clone(),
                    source,
                })?;
                self.hold_new(&path)?;
                attached += 1;
                continue;
            }
            let link = self.attach_one(&spec, &target, |hook, program| {
                super::kernel::attach_to_cgroup(hook, program, &cgroup)
            })?;
            pin_link(link, &path, &spec)?;
            self.hold_new(&path)?;
            attached += 1;
        }
        Ok(attached)
    }

    /// Detaches the enforcement programs from `cgroup2_dir` (unpins its
    /// enforcement links). Its rules stay in the maps until
    /// [`clear_group_rules`](Self::clear_group_rules). Returns how many links
    /// were removed.
    pub fn detach_enforcement(&mut self, cgroup2_dir: &Path) -> Result<usize, BpfError> {
        let (_, cgroup_id) = open_cgroup2_dir(cgroup2_dir)?;
        self.detach_enforcement_id(cgroup_id)
    }

    /// [`detach_enforcement`](Self::detach_enforcement) by cgroup id (the group
    /// may be gone).
    pub fn detach_enforcement_id(&mut self, cgroup_id: u64) -> Result<usize, BpfError> {
        let dir = group_enforce_dir(&self.pin_dir, cgroup_id);
        self.unpin_and_release(&dir)
    }

    /// Loads (or replaces) the rules of the group with cgroup2 id `cgroup_id`.
    /// They act where [`attach_enforcement`](Self::attach_enforcement)
    /// attached the programs (the order of the two calls does not matter);
    /// syscall `kill`/`log` rules act host-wide on the group's tasks (the
    /// `enforce_syscalls` program is attached on first need, pinned under
    /// `pin_dir/enforce/global/`).
    ///
    /// A replacement is atomic for the programs: the new address lists are
    /// written under a new generation, then the group's one `GROUP_RULES`
    /// value is replaced, then the old generation is deleted, shortest prefix
    /// first; a program that read the old generation and finds it gone looks
    /// again (see `enforcer-ebpf/src/netrules.rs`). So no call is ever decided
    /// without rules or by a mix of old and new. A throttle set with
    /// [`set_rate`](Self::set_rate) stays in force; limiter state (budget used
    /// in this window) is kept.
    ///
    /// Fails with [`BpfError::Rules`] if the rules do not fit the kernel maps
    /// ([`GroupRules::check`]); the old rules then stay.
    pub fn set_group_rules(&mut self, cgroup_id: u64, rules: &GroupRules) -> Result<(), BpfError> {
        let old = self.read_policy(cgroup_id)?;
        let generation = old.map_or(1, |p| p.net_generation.wrapping_add(1));
        let compiled = rules
            .compile(cgroup_id, generation)
            .map_err(|detail| BpfError::Rules { cgroup_id, detail })?;
        let mut policy = compiled.policy;
        if policy.deny_hooks & hook::NEEDS_LSM != 0
            && let Some(why) = self.lsm_unavailable()
        {
            return Err(BpfError::Rules {
                cgroup_id,
                detail: format!(
                    "`listen`, `accept`, `accept4`, `execve` and `execveat` can only be denied \
                     by BPF-LSM programs, and {why}; use action = \"kill\" or \"log\" for them \
                     (socket, connect, bind and setsockopt can be denied without BPF-LSM)"
                ),
            });
        }
        for dir in [Direction::Egress, Direction::Ingress] {
            let i = dir_index(dir);
            let caps = old
                .and_then(|p| p.limits.get(i).map(Caps::of))
                .unwrap_or_default();
            let limits = rules.limits(dir);
            if let Some(slot) = policy.limits.get_mut(i) {
                *slot = limit_conf(limits.rate, caps, limits.budget);
            }
        }
        if policy.flags & policy_flags::SYSCALLS != 0 {
            self.ensure_compat_check()?;
            self.attach_enforce_syscalls()?;
        }

        // 1. The new generation's address lists.
        {
            let mut trie = self.net_rules()?;
            for (i, (key, set)) in compiled.net.iter().enumerate() {
                if let Err(source) = trie.insert(key, set, 0) {
                    for (key, _) in compiled.net.iter().take(i) {
                        let _ = trie.remove(key);
                    }
                    return Err(
                        if matches!(&source, aya::maps::MapError::SyscallError(e) if e.io_error.raw_os_error() == Some(libc::ENOSPC))
                        {
                            BpfError::Rules {
                                cgroup_id,
                                detail:
                                    "the address-list map is full (too many rules over all groups)"
                                        .into(),
                            }
                        } else {
                            BpfError::Map {
                                map: NET_RULES,
                                source,
                            }
                        },
                    );
                }
            }
        }
        // 2. The flip.
        self.group_rules()?
            .insert(cgroup_id, policy, 0)
            .map_err(map_err(GROUP_RULES))?;
        // 3. Who has syscall rules changed: re-resolve every cgroup's owners.
        let had = old.is_some_and(|p| p.flags & policy_flags::SYSCALLS != 0);
        if had != (policy.flags & policy_flags::SYSCALLS != 0) {
            self.refresh_syscall_scope()?;
        }
        // 4. The old generations' address lists.
        self.delete_net_rules(cgroup_id, Some(generation))?;
        self.rules.insert(cgroup_id, rules.clone());
        Ok(())
    }

    /// Removes the group's rules: its programs (if attached) allow everything
    /// from now on; its limiter state goes too. Counters stay until
    /// [`forget`](Self::forget). Unknown ids are fine.
    pub fn clear_group_rules(&mut self, cgroup_id: u64) -> Result<(), BpfError> {
        let old = self.read_policy(cgroup_id)?;
        if old.is_some() {
            remove_absent_ok(self.group_rules()?.remove(&cgroup_id))
                .map_err(map_err(GROUP_RULES))?;
        }
        if old.is_some_and(|p| p.flags & policy_flags::SYSCALLS != 0) {
            self.refresh_syscall_scope()?;
        }
        self.delete_net_rules(cgroup_id, None)?;
        {
            let map = self
                .ebpf
                .map_mut(NET_LIMIT_STATE)
                .ok_or(BpfError::MapMissing(NET_LIMIT_STATE))?;
            let mut state: HashMap<_, LimitKey, LimitState> =
                HashMap::try_from(map).map_err(map_err(NET_LIMIT_STATE))?;
            for dir in [Direction::Egress, Direction::Ingress] {
                let key = LimitKey::new(cgroup_id, dir_index(dir) as u32);
                remove_absent_ok(state.remove(&key)).map_err(map_err(NET_LIMIT_STATE))?;
            }
        }
        self.rules.remove(&cgroup_id);
        Ok(())
    }

    /// Sets (`Some`) or lifts (`None`) a throttle on the group's rate in one
    /// direction, bytes per second: the effective limit is the lowest of the
    /// throttle, the arbiter's yield and the rate the rules configure. What
    /// the agent's closed loop uses; it survives
    /// [`set_group_rules`](Self::set_group_rules). Takes effect only where
    /// [`attach_enforcement`](Self::attach_enforcement) attached the programs.
    /// A zero rate is refused (use a freeze instead).
    pub fn set_rate(
        &mut self,
        cgroup_id: u64,
        dir: Direction,
        bytes_per_sec: Option<u64>,
    ) -> Result<(), BpfError> {
        self.set_cap(
            cgroup_id,
            dir,
            |caps| caps.throttle = bytes_per_sec,
            bytes_per_sec,
        )
    }

    /// Sets (`Some`) or lifts (`None`) the rate the arbiter holds the group
    /// to while it yields to a higher-priority group. Independent of
    /// [`set_rate`](Self::set_rate): lifting one never lifts the other.
    pub fn set_yield_rate(
        &mut self,
        cgroup_id: u64,
        dir: Direction,
        bytes_per_sec: Option<u64>,
    ) -> Result<(), BpfError> {
        self.set_cap(
            cgroup_id,
            dir,
            |caps| caps.yielded = bytes_per_sec,
            bytes_per_sec,
        )
    }

    /// The arbiter's yield rate of the group in `dir`, as the kernel holds it
    /// (for recovery after a crash).
    pub fn yield_rate(&mut self, cgroup_id: u64, dir: Direction) -> Result<Option<u64>, BpfError> {
        Ok(self
            .read_policy(cgroup_id)?
            .and_then(|p| p.limits.get(dir_index(dir)).map(|l| l.yield_rate))
            .filter(|&r| r > 0))
    }

    fn set_cap(
        &mut self,
        cgroup_id: u64,
        dir: Direction,
        change: impl FnOnce(&mut Caps),
        bytes_per_sec: Option<u64>,
    ) -> Result<(), BpfError> {
        if bytes_per_sec == Some(0) {
            return Err(BpfError::Rules {
                cgroup_id,
                detail: "a rate limit must be at least 1 byte per second".into(),
            });
        }
        let old = self.read_policy(cgroup_id)?;
        if old.is_none() && bytes_per_sec.is_none() {
            return Ok(());
        }
        let mut policy = old.unwrap_or_default();
        if let Some(slot) = policy.limits.get_mut(dir_index(dir)) {
            let rule_rate = Some(slot.rule_rate).filter(|&r| r > 0);
            let budget = (slot.budget_bytes > 0).then(|| {
                (
                    slot.budget_bytes,
                    std::time::Duration::from_nanos(slot.window_ns),
                )
            });
            let mut caps = Caps::of(slot);
            change(&mut caps);
            *slot = limit_conf(rule_rate, caps, budget);
        }
        self.group_rules()?
            .insert(cgroup_id, policy, 0)
            .map_err(map_err(GROUP_RULES))
    }

    /// Why BPF-LSM programs cannot be used on this host (`None` if they can):
    /// found out once by loading one (not attaching it), and then by checking
    /// that `bpf` is among the active LSMs, as the feature probe does
    /// (`features::bpf_lsm_inactive`): a kernel loads and attaches BPF-LSM
    /// programs without it, but never runs them. Without them, syscall
    /// `deny` rules for `listen`, `accept`/`accept4` and `execve`/`execveat`
    /// are refused by [`set_group_rules`](Self::set_group_rules).
    pub fn lsm_unavailable(&mut self) -> Option<String> {
        if self.lsm.is_none() {
            let probe = enforce_programs(1)
                .find(|p| matches!(p.hook, Hook::LsmCgroup(_)))
                .ok_or_else(|| "the object has no BPF-LSM program".to_string())
                .and_then(|spec| {
                    ensure_loaded(&mut self.ebpf, spec, &mut self.btf).map_err(|e| lsm_refusal(&e))
                })
                .and_then(|()| bpf_lsm_inactive().map_or(Ok(()), Err))
                .and_then(|()| {
                    super::lsm_attach::attach_refused(&mut self.ebpf, &mut self.btf)
                        .map_or(Ok(()), Err)
                });
            if let Err(why) = &probe {
                tracing::warn!(
                    "{why}; syscall deny rules for listen, accept and execve are unavailable"
                );
            }
            self.lsm = Some(probe);
        }
        self.lsm.as_ref().and_then(|r| r.as_ref().err().cloned())
    }

    /// The rules this process loaded for the group, if any.
    pub fn group_rules_loaded(&self, cgroup_id: u64) -> Option<&GroupRules> {
        self.rules.get(&cgroup_id)
    }

    fn group_rules(&mut self) -> Result<HashMap<&mut MapData, u64, GroupPolicy>, BpfError> {
        let map = self
            .ebpf
            .map_mut(GROUP_RULES)
            .ok_or(BpfError::MapMissing(GROUP_RULES))?;
        HashMap::try_from(map).map_err(map_err(GROUP_RULES))
    }

    fn net_rules(&mut self) -> Result<LpmTrie<&mut MapData, NetKey, NetRuleSet>, BpfError> {
        let map = self
            .ebpf
            .map_mut(NET_RULES)
            .ok_or(BpfError::MapMissing(NET_RULES))?;
        LpmTrie::try_from(map).map_err(map_err(NET_RULES))
    }

    fn scope(&mut self) -> Result<Array<&mut MapData, u32>, BpfError> {
        let map = self
            .ebpf
            .map_mut(ENFORCE_SCOPE)
            .ok_or(BpfError::MapMissing(ENFORCE_SCOPE))?;
        Array::try_from(map).map_err(map_err(ENFORCE_SCOPE))
    }

    /// The group's current `GROUP_RULES` value.
    fn read_policy(&mut self, cgroup_id: u64) -> Result<Option<GroupPolicy>, BpfError> {
        match self.group_rules()?.get(&cgroup_id, 0) {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(source) => Err(BpfError::Map {
                map: GROUP_RULES,
                source,
            }),
        }
    }

    /// Deletes the group's `NET_RULES` entries of every generation but `keep`,
    /// shortest prefix first (see [`set_group_rules`](Self::set_group_rules)).
    fn delete_net_rules(&mut self, cgroup_id: u64, keep: Option<u32>) -> Result<(), BpfError> {
        let mut trie = self.net_rules()?;
        let mut doomed: Vec<Key<NetKey>> = trie
            .keys()
            .filter(|k| {
                k.as_ref().is_ok_and(|k| {
                    let d = k.data();
                    d.cgroup_id() == cgroup_id && Some(d.generation) != keep
                })
            })
            .collect::<Result<_, _>>()
            .map_err(map_err(NET_RULES))?;
        doomed.sort_by_key(|k| k.prefix_len());
        for key in &doomed {
            remove_absent_ok(trie.remove(key)).map_err(map_err(NET_RULES))?;
        }
        Ok(())
    }

    /// Recounts the groups with syscall kill/log rules into
    /// `ENFORCE_SCOPE[SYSCALL_GROUPS]` and bumps the generation, so every
    /// cgroup's rule owners are resolved again.
    fn refresh_syscall_scope(&mut self) -> Result<(), BpfError> {
        let count = self
            .group_rules()?
            .iter()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|(_, p)| p.flags & policy_flags::SYSCALLS != 0)
            })
            .count();
        let mut scope = self.scope()?;
        let err = map_err(ENFORCE_SCOPE);
        scope
            .set(
                enforce_scope::SYSCALL_GROUPS,
                u32::try_from(count).unwrap_or(u32::MAX),
                0,
            )
            .map_err(&err)?;
        let generation = scope.get(&enforce_scope::GENERATION, 0).map_err(&err)?;
        scope
            .set(enforce_scope::GENERATION, generation.wrapping_add(1), 0)
            .map_err(&err)
    }

    /// Writes the compat-syscall check's offset and mask (once per process;
    /// the array is pinned, so a restart writes the same values again). Both
    /// `sys_enter` programs use them: `enforce_syscalls` and `count_syscalls`.
    pub(super) fn ensure_compat_check(&mut self) -> Result<(), BpfError> {
        if self.compat_known {
            return Ok(());
        }
        let (offset, mask) = compat_check();
        let mut scope = self.scope()?;
        let err = map_err(ENFORCE_SCOPE);
        scope
            .set(enforce_scope::COMPAT_OFFSET, offset, 0)
            .map_err(&err)?;
        scope
            .set(enforce_scope::COMPAT_MASK, mask, 0)
            .map_err(&err)?;
        self.compat_known = true;
        Ok(())
    }

    /// Attaches `enforce_syscalls` (raw tracepoint `sys_enter`) unless its
    /// pinned link exists. Returns whether it was attached now.
    fn attach_enforce_syscalls(&mut self) -> Result<bool, BpfError> {
        let dir = global_enforce_dir(&self.pin_dir);
        create_private_dir(&dir)?;
        let spec = ENFORCE_SYSCALLS;
        let path = dir.join(spec.name);
        if adopt_link(&path, &spec)? {
            self.held.hold(&path)?;
            return Ok(false);
        }
        ensure_loaded(&mut self.ebpf, spec, &mut self.btf)?;
        let link = self.attach_one(
            &spec,
            "raw tracepoint sys_enter",
            |hook, program| match hook {
                Hook::RawTracepoint(tp) => {
                    let p: &mut RawTracePoint = program.try_into()?;
                    let id = p.attach(tp)?;
                    Ok(Ok(FdLink::from(p.take_link(id)?)))
                }
                _ => Err(aya::programs::ProgramError::UnexpectedProgramType),
            },
        )?;
        pin_link(link, &path, &spec)?;
        self.hold_new(&path)?;
        Ok(true)
    }

    /// Ids of the groups that have rules in the maps (this or an earlier run).
    pub fn groups_with_rules(&mut self) -> Result<BTreeSet<u64>, BpfError> {
        self.group_rules()?
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err(GROUP_RULES))
    }
}

/// Offset of `thread_info.status` in `task_struct` and the `TS_COMPAT` bit,
/// from the running kernel's BTF; `(0, 0)` (no compat detection) where that
/// does not apply or cannot be found. x86_64 only: on aarch64 the kernel
/// side reads the caller's saved `pstate` instead (enforcer-ebpf/src/compat.rs).
fn compat_check() -> (u32, u32) {
    if !cfg!(target_arch = "x86_64") {
        return (0, 0);
    }
    let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        tracing::warn!("no kernel BTF: syscall rules treat 32-bit (i386) syscalls as 64-bit ones");
        return (0, 0);
    };
    let task = super::btf::member_offset(&btf, "task_struct", "thread_info");
    let status = super::btf::member_offset(&btf, "thread_info", "status");
    match (task, status) {
        (Some(t), Some(s)) => (t + s, compat::TS_COMPAT),
        _ => {
            tracing::warn!(
                "thread_info.status not found in the kernel BTF: syscall rules treat 32-bit \
                 (i386) syscalls as 64-bit ones"
            );
            (0, 0)
        }
    }
}
