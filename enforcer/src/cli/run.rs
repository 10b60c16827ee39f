//! `enforcer run`: the agent, from its command-line flags (also how `top`
//! starts one of its own when nothing is pinned).

use anyhow::{Context, Result};

use super::args::RunArgs;

pub(super) fn agent_options(a: RunArgs) -> crate::agent::AgentOptions {
    crate::agent::AgentOptions {
        policy: a.config,
        observe: a.observe,
        metrics: a.metrics,
        no_metrics: a.no_metrics,
        interval: a.interval,
        pin_dir: a.pin_dir,
        audit_log: a.audit_log,
        audit_group: a.audit_group,
        capacity: crate::bpf::Capacity {
            groups: a
                .max_groups
                .unwrap_or(crate::bpf::Capacity::default().groups),
            syscall_keys: a
                .max_syscall_keys
                .unwrap_or(crate::bpf::Capacity::default().syscall_keys),
            subgroups: a
                .max_subgroups
                .unwrap_or(crate::bpf::Capacity::default().subgroups),
        },
        on_exit: a.on_exit.or(a.keep.then_some(crate::config::OnExit::Keep)),
        summary: a.summary,
        summary_rows: 30,
        pid_file: a.pid_file,
        parent: a.parent,
        metrics_depth: a.metrics_depth,
        metrics_max_groups: a.metrics_max_groups,
        audit_max_size: a.audit_max_size,
        stop: None,
    }
}

pub(super) fn agent(a: RunArgs) -> Result<()> {
    run_agent(agent_options(a))
}

/// The agent on a runtime of its own, until it ends.
pub(super) fn run_agent(opts: crate::agent::AgentOptions) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(crate::agent::run(opts))?;
    Ok(())
}
