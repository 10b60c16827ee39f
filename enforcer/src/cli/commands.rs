//! One function per verb: validate input, call the library, print the outcome.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use super::args::{Cli, Command, CompatAction, RunArgs};
use super::print::{self, outln};
use crate::cgroup::{CgroupError, Cgroups, GroupPath, GroupSpec, Ownership, parse_owner};
use crate::config::{self, ConfigError};
use crate::plan::Kernel;

/// Exit status for an error: 2 when the input was wrong (nothing was changed),
/// 1 when the host failed while acting.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<CgroupError>() {
        return if e.is_user_error() { 2 } else { 1 };
    }
    if let Some(e) = err.downcast_ref::<crate::plan::PlanError>() {
        return if e.is_user_error() { 2 } else { 1 };
    }
    if let Some(e) = err.downcast_ref::<crate::agent::AgentError>() {
        return if e.is_user_error() { 2 } else { 1 };
    }
    if let Some(e) = err.downcast_ref::<crate::compat::install::InstallError>() {
        return if e.is_user_error() { 2 } else { 1 };
    }
    if let Some(e) = err.downcast_ref::<ConfigError>() {
        return if matches!(e, ConfigError::Io { .. }) {
            1
        } else {
            2
        };
    }
    1
}

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
    let (_, plan) = validated?;
    warn_all(&plan.warnings);
    Ok(crate::plan::Diff::new(cg, &plan, now))
}

fn show_diff(diff: &crate::plan::Diff, json: bool) -> Result<()> {
    if json {
        print::json(diff)
    } else {
        print::out(format_args!("{}", diff.render()))
    }
}

fn warn_all(warnings: &[String]) {
    for w in warnings {
        print::warn(w);
    }
}

/// With no arguments: the agent in observe mode, shown by `top` on a
/// terminal, with a live plain summary otherwise.
pub(super) fn default_run() -> RunArgs {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        run: RunArgs,
    }
    let mut d = Defaults::parse_from(["enforcer"]).run;
    d.summary = true;
    d
}

/// Run one verb. A reader closing our stdout early ends it quietly (status 0).
pub fn run(cli: Cli) -> Result<()> {
    match dispatch(cli) {
        Err(e) if e.is::<print::StdoutClosed>() => Ok(()),
        other => other,
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        return super::top::embedded(default_run());
    };
    match command {
        Command::Status {
            json,
            config,
            pin_dir,
        } => super::status::status(json, config.as_deref(), &pin_dir),
        Command::Top(args) => super::top::top(args),
        Command::Events {
            groups,
            follow,
            json,
            lines,
            audit_log,
        } => super::events::events(&groups, follow, json, lines, &audit_log),
        Command::Completions { shell } => super::docs::completions(shell),
        Command::Man { verb, out_dir } => super::docs::man(verb.as_deref(), out_dir.as_deref()),
        Command::Run(args) => super::run::agent(args),
        Command::Reload {
            config,
            pid_file,
            dry_run: true,
            json,
        } => {
            let file = match config {
                Some(file) => file,
                None => crate::agent::policy_of_agent(&pid_file)?,
            };
            let cg = Cgroups::discover()?;
            let diff = plan_diff(&cg, &file, &crate::plan::InForce::read(&pid_file), None)?;
            show_diff(&diff, json)
        }
        Command::Reload {
            config, pid_file, ..
        } => {
            if let Some(file) = config {
                warn_all(&crate::agent::check_policy(&file, &pid_file)?);
            }
            let pid = crate::agent::reload(&pid_file)?;
            outln!("asked the agent (PID {pid}) to reload its policy")
        }
        Command::Stop { pin_dir, pid_file } => {
            let (agent, n) = crate::agent::stop(&pin_dir, &pid_file)?;
            if let Some(pid) = agent {
                outln!("stopped the agent (PID {pid})")?;
            }
            outln!("removed {n} pins under {}", pin_dir.display())
        }
        Command::Stats {
            groups,
            json,
            watch,
            rows,
            pin_dir,
            pid_file,
        } => stats(&groups, json, watch, rows, &pin_dir, &pid_file),
        Command::Create {
            groups,
            task,
            admin,
            dperm,
            fperm,
            tperm,
        } => {
            let specs = specs(&groups)?;
            let own = Ownership {
                task: task.as_deref().map(parse_owner).transpose()?,
                admin: admin.as_deref().map(parse_owner).transpose()?,
                dperm: mode(&dperm, "directory mode")?,
                fperm: mode(&fperm, "file mode")?,
                tperm: mode(&tperm, "tasks file mode")?,
            };
            let cg = Cgroups::discover()?;
            // Resolve everything before creating anything.
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
        Command::Set {
            settings,
            copy_from,
            paths: raw_paths,
            json,
        } => {
            let targets = paths(&raw_paths)?;
            let cg = Cgroups::discover()?;
            let pairs = match copy_from {
                Some(src) => cg.settings_of(&GroupPath::parse(&src)?)?,
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
            warn_all(&warnings);
            print::set_outcomes(&outcomes, json)
        }
        Command::Get {
            keys,
            controllers,
            paths: raw_paths,
            json,
        } => {
            let targets = paths(&raw_paths)?;
            let cg = Cgroups::discover()?;
            let values = targets
                .iter()
                .map(|p| cg.get(p, &keys, &controllers))
                .collect::<Result<Vec<_>, _>>()?;
            print::group_values(&values, json)
        }
        Command::Exec { groups, command } => {
            let specs = specs(&groups)?;
            let cg = Cgroups::discover()?;
            cg.enter(&specs)?;
            let (prog, args) = command.split_first().context("no command given")?;
            let err = std::process::Command::new(prog).args(args).exec();
            Err(anyhow::Error::new(err).context(format!("could not run {prog:?}")))
        }
        Command::Classify { groups, pids } => {
            let specs = specs(&groups)?;
            Cgroups::discover()?.classify(&specs, &pids)?;
            Ok(())
        }
        Command::Delete {
            recursive,
            mut groups,
            positional,
        } => {
            groups.extend(positional);
            if groups.is_empty() {
                return Err(CgroupError::Usage(
                    "nothing to delete: give -g CONTROLLERS:PATH".into(),
                )
                .into());
            }
            let specs = specs(&groups)?;
            Cgroups::discover()?.delete(&specs, recursive)?;
            Ok(())
        }
        Command::List { filter, json } => {
            let specs = specs(&filter)?;
            let listed = Cgroups::discover()?.list(&specs)?;
            print::listed(&listed, json)
        }
        Command::Which { pid, json } => {
            let m = crate::cgroup::memberships(pid)?;
            print::memberships(&m, json)
        }
        Command::Freeze { path } => {
            let p = GroupPath::parse(&path)?;
            let took = Cgroups::discover()?.set_frozen(&p, true)?;
            outln!("{p}: frozen (took {} ms)", took.as_millis())
        }
        Command::Thaw { path } => {
            let p = GroupPath::parse(&path)?;
            let took = Cgroups::discover()?.set_frozen(&p, false)?;
            outln!("{p}: thawed (took {} ms)", took.as_millis())
        }
        Command::Kill { signal: s, path } => {
            let sig = signal(&s)?;
            let p = GroupPath::parse(&path)?;
            let n = Cgroups::discover()?.kill(&p, sig)?;
            outln!(
                "{p}: sent {sig} to {n} process{}",
                if n == 1 { "" } else { "es" }
            )
        }
        Command::Compat { action } => match action {
            CompatAction::Install { prefix } => {
                for l in crate::compat::install::install(&prefix)? {
                    outln!("linked {}", l.display())?;
                }
                Ok(())
            }
            CompatAction::Uninstall { prefix } => {
                for l in crate::compat::install::uninstall(&prefix)? {
                    outln!("removed {}", l.display())?;
                }
                Ok(())
            }
        },
        Command::Apply {
            file,
            dry_run,
            json,
            arch,
        } => {
            let cg = Cgroups::discover()?;
            if dry_run {
                let pid_file = Path::new(crate::agent::DEFAULT_PID_FILE);
                let diff = plan_diff(&cg, &file, &crate::plan::InForce::read(pid_file), arch)?;
                return show_diff(&diff, json);
            }
            // `apply` only touches cgroupfs: the kernel's features do not matter.
            let (_, plan) = crate::plan::validate_file(&cg, &file, None, Kernel::Unchecked)?;
            warn_all(&plan.warnings);
            let applied = cg.apply(&plan.cgroups)?;
            print::applied(&applied, json)
        }
    }
}

fn stats(
    groups: &[String],
    json: bool,
    watch: Option<f64>,
    rows: usize,
    pin_dir: &std::path::Path,
    pid_file: &std::path::Path,
) -> Result<()> {
    let wanted = crate::agent::wanted(groups)?;
    crate::agent::require_root("reading the agent's pinned counters")?;
    let cg = Cgroups::discover()?;
    let v2 = cg.v2().ok_or(crate::agent::AgentError::NoCgroup2)?;
    let mut collector = crate::collect::Collector::new(crate::collect::CgroupIndex::new(
        &cg.hierarchy(v2).mount_point,
    ));
    loop {
        let snap = crate::bpf::snapshot_pinned(pin_dir)?;
        // A group with a budget is reported even with nothing counted in it
        // itself: on pure cgroup2 a policy group with subgroups holds no
        // processes, and its budget charges what is below it.
        let limits = crate::bpf::limits_pinned(pin_dir).unwrap_or_default();
        let budgeted: Vec<u64> = limits.keys().copied().collect();
        let mut reports = collector.collect_with(&snap, &cg, &budgeted).groups;
        crate::collect::with_limits(&mut reports, &limits);
        if !wanted.is_empty() {
            reports.retain(|r| wanted.contains(&r.group));
            for w in &wanted {
                if !reports.iter().any(|r| &r.group == w) && collector.index().id_of(w).is_none() {
                    return Err(CgroupError::NotFound {
                        path: format!("/{w}"),
                        hierarchy: "cgroup2".into(),
                    }
                    .into());
                }
            }
        }
        // Who yields to whom, as the arbiter recorded it.
        let yielding =
            crate::control::arbiter::Record::read(&crate::control::arbiter::Record::path(pid_file))
                .unwrap_or_default();
        let table = || {
            let mut text = crate::report::table(&reports, rows);
            for line in yielding.lines() {
                text.push_str(&line);
                text.push('\n');
            }
            text
        };
        let value = || -> Result<serde_json::Value> {
            let mut v = serde_json::to_value(&reports)?;
            for group in v.as_array_mut().into_iter().flatten() {
                let record = group["group"].as_str().and_then(|g| yielding.groups.get(g));
                if let Some(r) = record {
                    group["yielding"] = serde_json::to_value(r)?;
                }
            }
            Ok(v)
        };
        match (json, watch) {
            (true, None) => print::json_text(&serde_json::to_string_pretty(&value()?)?)?,
            (true, Some(_)) => print::json_text(&serde_json::to_string(&value()?)?)?,
            (false, None) => print::out(format_args!("{}", table()))?,
            // `enforcer top` is the live view; --watch appends tables.
            (false, Some(_)) => print::out(format_args!("{}\n", table()))?,
        }
        let Some(secs) = watch else { return Ok(()) };
        std::thread::sleep(std::time::Duration::from_secs_f64(secs.max(0.1)));
    }
}
