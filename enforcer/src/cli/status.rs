//! `enforcer status`: the cgroup layout, the kernel's eBPF feature table and
//! the host checks (`doctor`), each problem with its fix. Exits 1 when
//! something needed (for counting at all, or by --config's policy) is missing.

use std::path::Path;

use anyhow::Result;

use super::print::{self, outln};
use crate::cgroup::{Cgroups, Version};
use crate::doctor::Check;

fn version(v: Version) -> &'static str {
    match v {
        Version::V1 => "v1",
        Version::V2 => "v2",
    }
}

/// Features as probed, or why they could not be.
type Probed = Result<crate::bpf::FeatureReport, crate::bpf::BpfError>;

pub(super) fn status(json: bool, config: Option<&Path>, pin_dir: &Path) -> Result<()> {
    let cg = Cgroups::discover()?;
    let features = crate::bpf::probe_features();
    let report = features.as_ref().ok();
    let needs = config
        .map(|f| crate::agent::policy_needs(f, report))
        .transpose()?
        .unwrap_or_default();
    let probe_error = features.as_ref().err().map(|e| e.to_string());
    let mut checks = crate::doctor::checks(
        &cg,
        pin_dir,
        report,
        probe_error.as_deref(),
        needs.lsm,
        needs.parent.as_deref(),
    );
    if let Some(file) = config {
        checks.extend(policy_checks(file, &needs));
    }
    if json {
        print_json(&cg, &features, &checks)?;
    } else {
        print_text(&cg, &features, &checks)?;
    }
    let problems: Vec<&Check> = checks.iter().filter(|c| !c.ok && c.needed).collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(anyhow::anyhow!(
        "{} needed check{} failed: {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems
            .iter()
            .map(|c| format!("{} ({})", c.name, c.fix.as_deref().unwrap_or(&c.detail)))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// With --config: what the agent would refuse before anything else (a file
/// others can write), then whether this kernel can enforce the policy.
fn policy_checks(file: &Path, needs: &crate::agent::PolicyNeeds) -> [Check; 2] {
    let trusted = crate::trust::check_path(file, crate::trust::Want::File);
    let trust = Check {
        name: "policy-file",
        ok: trusted.is_ok(),
        needed: true,
        detail: match &trusted {
            Ok(_) => format!(
                "{}, its directories and symlinks are root's alone",
                file.display()
            ),
            Err(e) => format!("the agent would refuse it: {e}"),
        },
        fix: trusted.err().map(|_| {
            "make the file and every directory on the way to it root's and not writable \
             by others, as the message says"
                .to_string()
        }),
    };
    let enforceable = Check {
        name: "policy",
        ok: needs.refused.is_none(),
        needed: true,
        detail: match &needs.refused {
            None if needs.warnings.is_empty() => {
                format!("{} can be enforced on this kernel", file.display())
            }
            None => format!(
                "{} can be enforced on this kernel, with warnings: {}",
                file.display(),
                needs.warnings.join("; ")
            ),
            Some(why) => why.clone(),
        },
        fix: needs
            .refused
            .as_ref()
            .map(|_| "change the rule as the message says, or run on a kernel that loads the program (see the feature table)".to_string()),
    };
    [trust, enforceable]
}

fn print_json(cg: &Cgroups, features: &Probed, checks: &[Check]) -> Result<()> {
    let hierarchies: Vec<serde_json::Value> = cg
        .hierarchies()
        .iter()
        .map(|h| {
            serde_json::json!({
                "version": version(h.version),
                "mount_point": h.mount_point,
                "controllers": h.controllers,
            })
        })
        .collect();
    let v = serde_json::json!({
        "layout": cg.layout().to_string(),
        "hierarchies": hierarchies,
        "mirror": cg.mirror().map(|m| cg.hierarchy(m).mount_point.clone()),
        "ebpf": match features {
            Ok(r) => serde_json::to_value(r)?,
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        },
        "checks": checks,
        "healthy": crate::doctor::healthy(checks),
    });
    super::print::json_text(&serde_json::to_string_pretty(&v)?)?;
    Ok(())
}

fn print_text(cg: &Cgroups, features: &Probed, checks: &[Check]) -> Result<()> {
    outln!("cgroup layout: {}", cg.layout())?;
    for h in cg.hierarchies() {
        outln!(
            "  {:<8} {:<28} {}",
            version(h.version),
            h.mount_point.display(),
            if h.controllers.is_empty() {
                "(no controllers enabled)".to_string()
            } else {
                h.controllers.join(",")
            }
        )?;
    }
    if let Some(m) = cg.mirror() {
        outln!(
            "  groups are mirrored into {} so eBPF programs can see them",
            cg.hierarchy(m).mount_point.display()
        )?;
    }
    let f = cg.facts();
    outln!(
        "  online CPUs {}, memory nodes {}, page size {}",
        crate::units::format_list(&f.online_cpus),
        crate::units::format_list(&f.online_mems),
        f.page_size
    )?;
    match features {
        Ok(r) => print::out(format_args!("eBPF features on {r}"))?,
        Err(e) => outln!("eBPF: not available: {e}")?,
    }
    outln!("checks:")?;
    for c in checks {
        let mark = match (c.ok, c.needed) {
            (true, _) => "ok     ",
            (false, true) => "PROBLEM",
            (false, false) => "note   ",
        };
        outln!("  {mark} {:<13} {}", c.name, c.detail)?;
        if let Some(fix) = &c.fix {
            outln!("          {:<13} fix: {fix}", "")?;
        }
    }
    Ok(())
}
