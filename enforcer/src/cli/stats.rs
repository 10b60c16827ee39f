//! `enforcer stats`: the counters of the pinned kernel maps, per group,
//! with the arbiter's record of who yields to whom.

use anyhow::Result;

use super::print;
use crate::cgroup::{CgroupError, Cgroups};

/// Once, or every `watch` seconds (appending tables; `top` is the live view).
pub(super) fn stats(
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
