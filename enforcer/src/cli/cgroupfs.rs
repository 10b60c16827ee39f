//! The cgroupfs verbs (libcgroup's cgcreate, cgset, cgget, cgexec,
//! cgclassify, cgdelete, lscgroup, and freeze, thaw, kill, which): read the
//! arguments, call the cgroup layer, print.

use std::os::unix::process::CommandExt;
use std::str::FromStr;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use super::print::{self, outln};
use crate::cgroup::{CgroupError, Cgroups, GroupPath, GroupSpec, Ownership, parse_owner};
use crate::config;

fn specs(raw: &[String]) -> Result<Vec<GroupSpec>, CgroupError> {
    raw.iter().map(|s| GroupSpec::parse(s)).collect()
}

fn paths(raw: &[String]) -> Result<Vec<GroupPath>, CgroupError> {
    raw.iter().map(|s| GroupPath::parse(s)).collect()
}

/// An octal mode, read as a policy file's `fperm`/`dperm` is.
fn mode(raw: &Option<String>, what: &str) -> Result<Option<u32>, CgroupError> {
    raw.as_deref()
        .map(|m| {
            config::parse_mode(m)
                .map_err(|why| CgroupError::Usage(format!("invalid {what}: {why}")))
        })
        .transpose()
}

fn key_value(raw: &str) -> Result<(String, String), CgroupError> {
    raw.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| {
            CgroupError::Usage(format!(
                "invalid setting {raw:?}: expected KEY=VALUE, for example memory.limit_in_bytes=50M"
            ))
        })
}

fn signal(raw: &str) -> Result<Signal, CgroupError> {
    let bad = || {
        CgroupError::Usage(format!(
            "unknown signal {raw:?}: use a name such as KILL, TERM, STOP, CONT or a number"
        ))
    };
    if let Ok(n) = raw.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = raw.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

/// The owners and modes of `create`, as cgcreate's options give them.
pub(super) struct CreateOwners {
    pub task: Option<String>,
    pub admin: Option<String>,
    pub dperm: Option<String>,
    pub fperm: Option<String>,
    pub tperm: Option<String>,
}

/// `create` (cgcreate): every group resolved before any is made; a failure
/// takes back what this call made.
pub(super) fn create(groups: &[String], owners: CreateOwners) -> Result<()> {
    let specs = specs(groups)?;
    let own = Ownership {
        task: owners.task.as_deref().map(parse_owner).transpose()?,
        admin: owners.admin.as_deref().map(parse_owner).transpose()?,
        dperm: mode(&owners.dperm, "directory mode")?,
        fperm: mode(&owners.fperm, "file mode")?,
        tperm: mode(&owners.tperm, "tasks file mode")?,
    };
    let cg = Cgroups::discover()?;
    let mut todo = Vec::new();
    for s in &specs {
        if s.path.is_root() {
            return Err(CgroupError::RootForbidden { action: "created" }.into());
        }
        todo.push((cg.targets(&s.controllers)?, &s.path));
    }
    let mut created = crate::cgroup::Created::default();
    for (t, p) in &todo {
        if let Err(e) = cg.create_in(t, p, &own, &mut created) {
            created.rollback();
            return Err(e.into());
        }
    }
    Ok(())
}

/// `set` (cgset): KEY=VALUE pairs, or every setting of another group.
pub(super) fn set(
    settings: &[String],
    copy_from: Option<&str>,
    raw_paths: &[String],
    json: bool,
) -> Result<()> {
    let targets = paths(raw_paths)?;
    let cg = Cgroups::discover()?;
    let pairs = match copy_from {
        Some(src) => cg.settings_of(&GroupPath::parse(src)?)?,
        None if settings.is_empty() => {
            return Err(CgroupError::Usage(
                "nothing to set: give -r KEY=VALUE or --copy-from PATH".into(),
            )
            .into());
        }
        None => settings
            .iter()
            .map(|s| key_value(s))
            .collect::<Result<_, _>>()?,
    };
    let mut warnings = Vec::new();
    let outcomes = cg.set(&targets, &pairs, &mut warnings)?;
    print::warn_all(&warnings);
    print::set_outcomes(&outcomes, json)
}

/// `get` (cgget).
pub(super) fn get(
    keys: &[String],
    controllers: &[String],
    raw_paths: &[String],
    json: bool,
) -> Result<()> {
    let targets = paths(raw_paths)?;
    let cg = Cgroups::discover()?;
    let values = targets
        .iter()
        .map(|p| cg.get(p, keys, controllers))
        .collect::<Result<Vec<_>, _>>()?;
    print::group_values(&values, json)
}

/// `exec` (cgexec): enter the groups, then become the command.
pub(super) fn exec(groups: &[String], command: &[String]) -> Result<()> {
    let specs = specs(groups)?;
    let cg = Cgroups::discover()?;
    cg.enter(&specs)?;
    let (prog, args) = command.split_first().context("no command given")?;
    let err = std::process::Command::new(prog).args(args).exec();
    Err(anyhow::Error::new(err).context(format!("could not run {prog:?}")))
}

/// `classify` (cgclassify).
pub(super) fn classify(groups: &[String], pids: &[i32]) -> Result<()> {
    let specs = specs(groups)?;
    Cgroups::discover()?.classify(&specs, pids)?;
    Ok(())
}

/// `delete` (cgdelete): groups given with -g or bare, as cgdelete takes them.
pub(super) fn delete(recursive: bool, groups: &[String]) -> Result<()> {
    if groups.is_empty() {
        return Err(
            CgroupError::Usage("nothing to delete: give -g CONTROLLERS:PATH".into()).into(),
        );
    }
    let specs = specs(groups)?;
    Cgroups::discover()?.delete(&specs, recursive)?;
    Ok(())
}

/// `list` (lscgroup).
pub(super) fn list(filter: &[String], json: bool) -> Result<()> {
    let specs = specs(filter)?;
    let listed = Cgroups::discover()?.list(&specs)?;
    print::listed(&listed, json)
}

/// `which`: the groups a process is in.
pub(super) fn which(pid: i32, json: bool) -> Result<()> {
    let m = crate::cgroup::memberships(pid)?;
    print::memberships(&m, json)
}

/// `freeze` and `thaw`: return once the kernel reports the new state.
pub(super) fn freeze(path: &str, frozen: bool) -> Result<()> {
    let p = GroupPath::parse(path)?;
    let took = Cgroups::discover()?.set_frozen(&p, frozen)?;
    let state = if frozen { "frozen" } else { "thawed" };
    outln!("{p}: {state} (took {} ms)", took.as_millis())
}

/// `kill`: every process of the group and its subgroups.
pub(super) fn kill(raw_signal: &str, path: &str) -> Result<()> {
    let sig = signal(raw_signal)?;
    let p = GroupPath::parse(path)?;
    let n = Cgroups::discover()?.kill(&p, sig)?;
    outln!(
        "{p}: sent {sig} to {n} process{}",
        if n == 1 { "" } else { "es" }
    )
}
