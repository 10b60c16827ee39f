//! The verbs that act on a policy or on the agent that runs one: `apply`,
//! `reload`, `stop`, and `compat` (the libcgroup tool links).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::args::CompatAction;
use super::print::{self, outln};
use crate::cgroup::Cgroups;
use crate::plan::Kernel;

/// What carrying out `file` would change, judged as `run` judges it. Kernel
/// features are checked when we may load programs (root); without root, or
/// when probing fails, the diff says they were not.
fn plan_diff(
    cg: &Cgroups,
    file: &Path,
    now: &crate::plan::InForce,
    arch: Option<crate::arch::Arch>,
) -> Result<crate::plan::Diff> {
    let validated = if let Some(arch) = arch.filter(|&a| a != crate::arch::Arch::host()) {
        // Another architecture's node: its kernel is not this one.
        crate::config::load(file)
            .map_err(crate::plan::PlanError::from)
            .and_then(|policy| crate::plan::validate_for(cg, policy, None, Kernel::Unchecked, arch))
    } else if nix::unistd::Uid::effective().is_root() {
        match crate::plan::validate_file(cg, file, None, Kernel::Probe) {
            Err(crate::plan::PlanError::Probe(e)) => {
                print::warn(&format!("kernel features not checked: {e}"));
                crate::plan::validate_file(cg, file, None, Kernel::Unchecked)
            }
            other => other,
        }
    } else {
        crate::plan::validate_file(cg, file, None, Kernel::Unchecked)
    };
    let plan = validated?;
    print::warn_all(&plan.warnings);
    Ok(crate::plan::Diff::new(cg, &plan, now))
}

fn show_diff(diff: &crate::plan::Diff, json: bool) -> Result<()> {
    if json {
        print::json(diff)
    } else {
        print::out(format_args!("{}", diff.render()))
    }
}

/// `reload --dry-run`: what reloading `config` (or the agent's own file)
/// would change against the rules the agent enforces now.
pub(super) fn reload_dry_run(config: Option<PathBuf>, pid_file: &Path, json: bool) -> Result<()> {
    let file = match config {
        Some(file) => file,
        None => crate::agent::policy_of_agent(pid_file)?,
    };
    let cg = Cgroups::discover()?;
    let diff = plan_diff(&cg, &file, &crate::plan::InForce::read(pid_file), None)?;
    show_diff(&diff, json)
}

/// `reload`: validates `config` as the agent would (it must be the agent's
/// own file), then signals the agent.
pub(super) fn reload(config: Option<&Path>, pid_file: &Path) -> Result<()> {
    if let Some(file) = config {
        print::warn_all(&crate::agent::check_policy(file, pid_file)?);
    }
    let pid = crate::agent::reload(pid_file)?;
    outln!("asked the agent (PID {pid}) to reload its policy")
}

/// `stop`: the agent, then every pin.
pub(super) fn stop(pin_dir: &Path, pid_file: &Path) -> Result<()> {
    let (agent, n) = crate::agent::stop(pin_dir, pid_file)?;
    if let Some(pid) = agent {
        outln!("stopped the agent (PID {pid})")?;
    }
    outln!("removed {n} pins under {}", pin_dir.display())
}

/// `apply` (cgconfigparser): validate everything, then create and configure
/// the groups, rolling back on failure; `--dry-run` shows the diff.
pub(super) fn apply(
    file: &Path,
    dry_run: bool,
    json: bool,
    arch: Option<crate::arch::Arch>,
) -> Result<()> {
    let cg = Cgroups::discover()?;
    if dry_run {
        let pid_file = Path::new(crate::agent::DEFAULT_PID_FILE);
        let diff = plan_diff(&cg, file, &crate::plan::InForce::read(pid_file), arch)?;
        return show_diff(&diff, json);
    }
    // `apply` only touches cgroupfs: the kernel's features do not matter.
    let plan = crate::plan::validate_file(&cg, file, None, Kernel::Unchecked)?;
    print::warn_all(&plan.warnings);
    let applied = cg.apply(&plan.cgroups)?;
    print::applied(&applied, json)
}

/// `compat install|uninstall`: the libcgroup tool names as links to this
/// binary.
pub(super) fn compat(action: CompatAction) -> Result<()> {
    let (links, verb) = match action {
        CompatAction::Install { prefix } => (crate::compat::install::install(&prefix)?, "linked"),
        CompatAction::Uninstall { prefix } => {
            (crate::compat::install::uninstall(&prefix)?, "removed")
        }
    };
    for l in links {
        outln!("{verb} {}", l.display())?;
    }
    Ok(())
}
