//! `enforcer top`, and the embedded default (`enforcer` with no arguments):
//! the observe agent on a thread of its own, shown by `top` until `q`.

use std::io::IsTerminal as _;

use anyhow::{Context, Result};

use super::args::{RunArgs, TopArgs};
use super::print;
use crate::cgroup::CgroupError;
use crate::top::{Column, Source, View};

fn view(args: &TopArgs) -> Result<View, CgroupError> {
    let sort = Column::parse(&args.sort).ok_or_else(|| {
        CgroupError::Usage(format!(
            "no column {:?} to sort by: choose one of {}",
            args.sort,
            Column::all()
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    Ok(View {
        sort,
        reversed: false,
        filter: args.filter.clone().unwrap_or_default(),
        tree_depth: args.tree,
    })
}

pub(super) fn top(args: TopArgs) -> Result<()> {
    let view = view(&args)?;
    crate::agent::require_root("reading the pinned counters")?;
    let mut source = Source::new(&args.pin_dir)?;
    if args.once || args.json || !std::io::stdout().is_terminal() {
        // Rates need two samples: the plain table shows them.
        let rows = crate::top::once(&mut source, Some(args.interval), &view)?;
        if args.json {
            return print::json_text(&serde_json::to_string_pretty(&rows)?);
        }
        return print::out(format_args!(
            "{}",
            crate::top::plain_table(&rows, view.tree_depth > 0, args.rows)
        ));
    }
    crate::top::interactive(&mut source, args.interval, view, &|| false)?;
    Ok(())
}

/// `enforcer` with no arguments.
pub(super) fn embedded(run: RunArgs) -> Result<()> {
    if !std::io::stdout().is_terminal() {
        return super::run::agent(run);
    }
    crate::agent::require_root("running the agent")?;
    let pin_dir = run.pin_dir.clone();
    let interval = run.interval.unwrap_or(crate::agent::DEFAULT_INTERVAL);
    let stop = crate::agent::StopHandle::default();
    let mut opts = super::run::agent_options(run);
    opts.summary = false;
    opts.stop = Some(stop.clone());
    let agent = std::thread::Builder::new()
        .name("agent".into())
        .spawn(move || super::run::run_agent(opts))
        .context("starting the agent thread")?;
    let shown = Source::new(&pin_dir)
        .map_err(anyhow::Error::from)
        .and_then(|mut source| {
            crate::top::interactive(&mut source, interval, View::default(), &|| {
                agent.is_finished()
            })
            .map_err(anyhow::Error::from)
        });
    stop.stop();
    let ran = agent
        .join()
        .map_err(|_| anyhow::anyhow!("the agent thread panicked"))?;
    ran.and(shown)
}
