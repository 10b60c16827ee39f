//! The engine's actions carried out on the host: cgroupfs writes, freezing and
//! killing through the control plane, throttling through the kernel maps.

use nix::sys::signal::Signal;

use super::engine::{Effects, Undo};
use crate::cgroup::{Cgroups, GroupPath};
use crate::plan::Direction;

/// Throttling a group in the kernel (the agent's `Kernel` does it). `None`
/// lifts the throttle; a rate the policy configures stays in force either way.
pub trait RateControl {
    fn set_rate(
        &mut self,
        group: &str,
        dir: Direction,
        bytes_per_sec: Option<u64>,
    ) -> Result<(), String>;
}

pub struct HostEffects<'a, R: RateControl> {
    pub cg: &'a Cgroups,
    pub rates: &'a mut R,
}

fn path(group: &str) -> Result<GroupPath, String> {
    GroupPath::parse(group).map_err(|e| e.to_string())
}

impl<R: RateControl> Effects for HostEffects<'_, R> {
    fn set_key(&mut self, group: &str, key: &str, value: &str) -> Result<Option<Undo>, String> {
        let p = path(group)?;
        // The previous value, as the kernel reports it, is what `until` restores.
        // Restored through the host's own file (`cpu.shares` for `cpu.weight` on
        // v1), so the value needs no conversion back.
        let (file, old) = self
            .cg
            .get(&p, &[key.to_string()], &[])
            .map_err(|e| e.to_string())?
            .values
            .first()
            .map(|kv| (kv.file.clone(), kv.value.clone()))
            .ok_or_else(|| format!("{key} has no value to restore"))?;
        let mut warnings = Vec::new();
        self.cg
            .set(&[p], &[(key.to_string(), value.to_string())], &mut warnings)
            .map_err(|e| e.to_string())?;
        Ok(Some(Undo::SetKey { key: file, old }))
    }

    fn throttle(
        &mut self,
        group: &str,
        dir: Direction,
        bytes_per_sec: u64,
    ) -> Result<Option<Undo>, String> {
        self.rates.set_rate(group, dir, Some(bytes_per_sec))?;
        Ok(Some(Undo::Throttle { dir }))
    }

    fn freeze(&mut self, group: &str) -> Result<Option<Undo>, String> {
        self.cg
            .set_frozen(&path(group)?, true)
            .map_err(|e| e.to_string())?;
        Ok(Some(Undo::Thaw))
    }

    fn kill(&mut self, group: &str) -> Result<(), String> {
        self.cg
            .kill(&path(group)?, Signal::SIGKILL)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn undo(&mut self, group: &str, undo: &Undo) -> Result<(), String> {
        match undo {
            Undo::SetKey { key, old } => {
                let mut w = Vec::new();
                self.cg
                    .set(&[path(group)?], &[(key.clone(), old.clone())], &mut w)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Undo::Throttle { dir } => self.rates.set_rate(group, *dir, None),
            Undo::Thaw => self
                .cg
                .set_frozen(&path(group)?, false)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }
}
