//! Per-subtree quotas of the counting maps, userspace's part (the kernel's
//! and the why are in `enforcer_common::quota`): name the owners, reserve
//! their entries, keep each owner's allowance at what its quota leaves, and
//! report who was folded.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::maps::{HashMap, MapData, PerCpuHashMap, PerCpuValues};
use enforcer_common::{NetCounter, SockCounter};

use super::BpfError;
use super::kernel::{Kernel, remove_absent_ok};
use super::layout::{
    COUNT_ADMITTED, COUNT_FOLDED, COUNT_FOLDS, COUNT_OWNERS, COUNT_TAKEN, NET_EGRESS, NET_INGRESS,
    SOCK_ATTEMPTS,
};

/// One owner's subtree: its quota, the descendants counted as themselves
/// now, and how many events of others were charged to an ancestor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaReport {
    pub quota: u32,
    pub admitted: u64,
    pub folded: u64,
}

/// `BPF_NOEXIST`: insert only if absent.
const BPF_NOEXIST: u64 = 1;

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> BpfError {
    move |source| BpfError::Map { map, source }
}

impl Kernel {
    fn hash_mut(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<&mut MapData, u64, u64>, BpfError> {
        let map = self.ebpf.map_mut(name).ok_or(BpfError::MapMissing(name))?;
        HashMap::try_from(map).map_err(map_err(name))
    }

    /// Makes `owners` (cgroup2 id -> quota: descendants with counters of
    /// their own) the groups whose subtrees are bounded: each gets its
    /// entries in the counting maps now, before anything can fill them;
    /// groups no longer owners lose their admissions (their descendants are
    /// admitted again under their new owner as they count).
    pub fn set_owners(&mut self, owners: &BTreeMap<u64, u32>) -> Result<(), BpfError> {
        let before: BTreeSet<u64> = self
            .hash_mut(COUNT_OWNERS)?
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err(COUNT_OWNERS))?;
        let gone: BTreeSet<u64> = before
            .iter()
            .filter(|id| !owners.contains_key(id))
            .copied()
            .collect();
        for id in owners.keys() {
            let mut taken = self.hash_mut(COUNT_TAKEN)?;
            if taken.get(id, 0).is_err() {
                taken.insert(id, 0, 0).map_err(map_err(COUNT_TAKEN))?;
            }
            self.reserve(*id)?;
        }
        for id in &gone {
            remove_absent_ok(self.hash_mut(COUNT_OWNERS)?.remove(id))
                .map_err(map_err(COUNT_OWNERS))?;
            remove_absent_ok(self.hash_mut(COUNT_TAKEN)?.remove(id))
                .map_err(map_err(COUNT_TAKEN))?;
        }
        if !gone.is_empty() {
            let admitted = self.admitted()?;
            let mut map = self.hash_mut(COUNT_ADMITTED)?;
            for (id, owner) in admitted {
                if gone.contains(&owner) {
                    remove_absent_ok(map.remove(&id)).map_err(map_err(COUNT_ADMITTED))?;
                }
            }
            self.clear_folded()?;
        }
        self.quotas = owners.clone();
        self.quota_sweep().map(|_| ())
    }

    /// An owner's zeroed entries in the maps keyed by group alone, where
    /// missing.
    fn reserve(&mut self, id: u64) -> Result<(), BpfError> {
        let cpus = super::batch::cpus()?;
        fn put<V: aya::Pod + Default>(
            k: &mut Kernel,
            name: &'static str,
            id: u64,
            cpus: usize,
        ) -> Result<(), BpfError> {
            let map = k.ebpf.map_mut(name).ok_or(BpfError::MapMissing(name))?;
            let mut m: PerCpuHashMap<&mut MapData, u64, V> =
                PerCpuHashMap::try_from(map).map_err(map_err(name))?;
            if m.get(&id, 0).is_ok() {
                return Ok(());
            }
            let zeros =
                PerCpuValues::try_from(vec![V::default(); cpus]).map_err(|e| BpfError::Map {
                    map: name,
                    source: aya::maps::MapError::SyscallError(aya::sys::SyscallError {
                        call: "PerCpuValues",
                        io_error: e,
                    }),
                })?;
            match m.insert(id, zeros, BPF_NOEXIST) {
                // A program made it meanwhile: just as good.
                Err(_) if m.get(&id, 0).is_ok() => Ok(()),
                other => other.map_err(map_err(name)),
            }
        }
        put::<NetCounter>(self, NET_EGRESS, id, cpus)?;
        put::<NetCounter>(self, NET_INGRESS, id, cpus)?;
        put::<SockCounter>(self, SOCK_ATTEMPTS, id, cpus)
    }

    /// `COUNT_ADMITTED` whole: group -> owner.
    fn admitted(&mut self) -> Result<Vec<(u64, u64)>, BpfError> {
        let map = self
            .ebpf
            .map(COUNT_ADMITTED)
            .ok_or(BpfError::MapMissing(COUNT_ADMITTED))?;
        let fd = match map {
            aya::maps::Map::HashMap(data) => data.fd().as_fd().as_raw_fd(),
            _ => return Err(BpfError::MapMissing(COUNT_ADMITTED)),
        };
        let mut out = Vec::new();
        match super::batch::lookup_batch::<u64, u64>(fd, 1, |k, v| {
            out.push((k, v.first().copied().unwrap_or(0)));
        }) {
            Ok(()) => Ok(out),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP)) => {
                out.clear();
                let m = self.hash_mut(COUNT_ADMITTED)?;
                for entry in m.iter() {
                    out.push(entry.map_err(map_err(COUNT_ADMITTED))?);
                }
                Ok(out)
            }
            Err(e) => Err(super::batch::syscall_err(
                COUNT_ADMITTED,
                "bpf_map_lookup_batch",
                e,
            )),
        }
    }

    /// Forgets every folded group's target (they are looked up again).
    fn clear_folded(&mut self) -> Result<(), BpfError> {
        let mut m = self.hash_mut(COUNT_FOLDED)?;
        let keys: Vec<u64> = m
            .keys()
            .collect::<Result<_, _>>()
            .map_err(map_err(COUNT_FOLDED))?;
        for k in keys {
            remove_absent_ok(m.remove(&k)).map_err(map_err(COUNT_FOLDED))?;
        }
        Ok(())
    }

    /// Drops removed groups' admissions and fold targets (part of
    /// [`forget`](Self::forget)).
    pub(super) fn forget_quota(&mut self, ids: &BTreeSet<u64>) -> Result<(), BpfError> {
        for name in [COUNT_ADMITTED, COUNT_FOLDED] {
            let mut m = self.hash_mut(name)?;
            for id in ids {
                remove_absent_ok(m.remove(id)).map_err(map_err(name))?;
            }
        }
        Ok(())
    }

    /// Sets each owner's allowance to what its quota leaves (places of
    /// deleted groups come back), and reports per owner. Work bounded by
    /// the owners and the groups admitted.
    pub fn quota_sweep(&mut self) -> Result<BTreeMap<u64, QuotaReport>, BpfError> {
        let quotas = self.quotas.clone();
        // Taken first, then counted: an admission in between is then in the
        // count and not in `taken`, which errs on the side of the quota.
        let mut taken = BTreeMap::new();
        {
            let m = self.hash_mut(COUNT_TAKEN)?;
            for id in quotas.keys() {
                taken.insert(*id, m.get(id, 0).unwrap_or(0));
            }
        }
        let mut live: BTreeMap<u64, u64> = BTreeMap::new();
        for (_, owner) in self.admitted()? {
            *live.entry(owner).or_default() += 1;
        }
        let folds = self.folds()?;
        let mut grew = false;
        let mut out = BTreeMap::new();
        let mut owners = self.hash_mut(COUNT_OWNERS)?;
        for (id, quota) in &quotas {
            let admitted = live.get(id).copied().unwrap_or(0);
            let t = taken.get(id).copied().unwrap_or(0);
            let allowance = t.saturating_add(u64::from(*quota).saturating_sub(admitted));
            let old = owners.get(id, 0).ok();
            if old != Some(allowance) {
                owners
                    .insert(id, allowance, 0)
                    .map_err(map_err(COUNT_OWNERS))?;
                // Room again where groups had been folded: they may be
                // admitted now, so their cached targets go.
                grew |= old.is_some_and(|o| o <= t) && allowance > t;
            }
            out.insert(
                *id,
                QuotaReport {
                    quota: *quota,
                    admitted,
                    folded: folds.get(id).copied().unwrap_or(0),
                },
            );
        }
        if grew {
            self.clear_folded()?;
        }
        Ok(out)
    }

    /// `COUNT_FOLDS`, summed over CPUs: owner -> events folded.
    fn folds(&mut self) -> Result<BTreeMap<u64, u64>, BpfError> {
        let map = self
            .ebpf
            .map_mut(COUNT_FOLDS)
            .ok_or(BpfError::MapMissing(COUNT_FOLDS))?;
        let m: PerCpuHashMap<&mut MapData, u64, u64> =
            PerCpuHashMap::try_from(map).map_err(map_err(COUNT_FOLDS))?;
        let mut out = BTreeMap::new();
        for entry in m.iter() {
            let (k, v) = entry.map_err(map_err(COUNT_FOLDS))?;
            out.insert(k, v.iter().fold(0u64, |s, x| s.wrapping_add(*x)));
        }
        Ok(out)
    }
}
