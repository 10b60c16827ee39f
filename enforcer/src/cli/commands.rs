//! The verbs' dispatch and exit statuses: each verb is one function, in a
//! file by what it acts on (`cgroupfs.rs`, `policy.rs`, `stats.rs`, ...), that
//! validates its input, calls the library and prints the outcome.

use anyhow::Result;

use super::args::{Cli, Command, RunArgs};
use super::{cgroupfs, policy, print};
use crate::cgroup::CgroupError;
use crate::config::ConfigError;

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
        } => policy::reload_dry_run(config, &pid_file, json),
        Command::Reload {
            config, pid_file, ..
        } => policy::reload(config.as_deref(), &pid_file),
        Command::Stop { pin_dir, pid_file } => policy::stop(&pin_dir, &pid_file),
        Command::Stats {
            groups,
            json,
            watch,
            rows,
            pin_dir,
            pid_file,
        } => super::stats::stats(&groups, json, watch, rows, &pin_dir, &pid_file),
        Command::Create {
            groups,
            task,
            admin,
            dperm,
            fperm,
            tperm,
        } => cgroupfs::create(
            &groups,
            cgroupfs::CreateOwners {
                task,
                admin,
                dperm,
                fperm,
                tperm,
            },
        ),
        Command::Set {
            settings,
            copy_from,
            paths,
            json,
        } => cgroupfs::set(&settings, copy_from.as_deref(), &paths, json),
        Command::Get {
            keys,
            controllers,
            paths,
            json,
        } => cgroupfs::get(&keys, &controllers, &paths, json),
        Command::Exec { groups, command } => cgroupfs::exec(&groups, &command),
        Command::Classify { groups, pids } => cgroupfs::classify(&groups, &pids),
        Command::Delete {
            recursive,
            mut groups,
            positional,
        } => {
            groups.extend(positional);
            cgroupfs::delete(recursive, &groups)
        }
        Command::List { filter, json } => cgroupfs::list(&filter, json),
        Command::Which { pid, json } => cgroupfs::which(pid, json),
        Command::Freeze { path } => cgroupfs::freeze(&path, true),
        Command::Thaw { path } => cgroupfs::freeze(&path, false),
        Command::Kill { signal, path } => cgroupfs::kill(&signal, &path),
        Command::Compat { action } => policy::compat(action),
        Command::Apply {
            file,
            dry_run,
            json,
            arch,
        } => policy::apply(&file, dry_run, json, arch),
    }
}
