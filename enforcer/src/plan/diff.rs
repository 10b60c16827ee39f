//! What carrying out a plan would change, section by section: `apply
//! --dry-run` and `reload --dry-run` print it (or, with `--json`, serialise
//! it). Controller files are compared with what the groups hold now; network,
//! syscall and `when` rules with what the running agent enforces ([`InForce`],
//! which the agent writes after every install).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bpf::GroupRules;
use crate::cgroup::Cgroups;

use super::control::ControlRule;
use super::model::{Plan, PlannedGroup};
use crate::words::{Access, AccessList};
use crate::words::{Action, Compare, Direction};

/// The rules a running agent enforces, one line per rule, per group: what a
/// dry run compares a new policy with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InForce {
    /// The policy file the agent runs.
    pub policy: Option<PathBuf>,
    pub groups: BTreeMap<String, GroupInForce>,
}

/// One group's rules, each section as the lines a dry run shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupInForce {
    pub network: Vec<String>,
    pub syscalls: Vec<String>,
    pub when: Vec<String>,
}

impl InForce {
    /// What `plan` puts in force.
    pub fn of(plan: &Plan, policy: Option<&Path>) -> Self {
        InForce {
            policy: policy.map(Path::to_path_buf),
            groups: plan
                .groups
                .iter()
                .map(|g| (g.path.as_str().to_owned(), GroupInForce::of(g)))
                .collect(),
        }
    }

    /// Where the agent whose pid file is `pid_file` keeps it.
    pub fn path(pid_file: &Path) -> PathBuf {
        pid_file.with_extension("in-force.json")
    }

    /// What the agent of `pid_file` last put in force; empty if no agent has
    /// (or the record cannot be read, or is not root's alone: a dry run then
    /// shows every rule as new).
    pub fn read(pid_file: &Path) -> Self {
        crate::trust::read_private(&Self::path(pid_file))
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }
}

impl GroupInForce {
    fn of(g: &PlannedGroup) -> Self {
        GroupInForce {
            network: network_lines(&g.rules),
            syscalls: syscall_lines(&g.rules),
            when: g.control.iter().map(when_line).collect(),
        }
    }
}

fn list_lines(hook: &str, list: &Option<AccessList>, out: &mut Vec<String>) {
    if let Some(list) = list {
        let mode = match list.mode {
            Access::Allow => "allow",
            Access::Deny => "deny",
        };
        out.extend(list.rules.iter().map(|r| format!("{hook}_{mode} {r}")));
    }
}

fn network_lines(r: &GroupRules) -> Vec<String> {
    let mut out = Vec::new();
    list_lines("connect", &r.connect, &mut out);
    list_lines("bind", &r.bind, &mut out);
    for (dir, limits) in [("egress", r.egress), ("ingress", r.ingress)] {
        if let Some(rate) = limits.rate {
            out.push(format!("{dir}_rate {rate} B/s"));
        }
        if let Some((bytes, window)) = limits.budget {
            out.push(format!("{dir}_budget {bytes} B per {}s", window.as_secs()));
        }
    }
    if let Some(p) = r.priority {
        out.push(format!("packet priority {p}"));
    }
    if let Some(level) = r.share_level {
        out.push(format!("network share level {level}"));
    }
    out
}

fn syscall_lines(r: &GroupRules) -> Vec<String> {
    let Some(s) = &r.syscalls else {
        return Vec::new();
    };
    let action = format!("{:?}", s.action).to_lowercase();
    s.syscalls
        .iter()
        .map(|nr| format!("{} -> {action}", nr.name()))
        .collect()
}

fn action_text(a: &Action) -> String {
    match a {
        Action::Log => "log".into(),
        Action::Kill => "kill".into(),
        Action::Freeze => "freeze".into(),
        Action::SetKey { key, value } => format!("set {key}={value}"),
        Action::Throttle { dir, bytes_per_sec } => {
            let dir = match dir {
                Direction::Egress => "egress",
                Direction::Ingress => "ingress",
            };
            format!("throttle {dir} {bytes_per_sec} B/s")
        }
    }
}

fn when_line(r: &ControlRule) -> String {
    let cmp = match r.compare {
        Compare::Above => ">",
        Compare::Below => "<",
    };
    let then: Vec<String> = r.then.iter().map(action_text).collect();
    let until = r
        .until
        .map(|u| format!(", until {}", humantime(u)))
        .unwrap_or_default();
    format!(
        "{} {cmp} {} for {}: {}{until}",
        r.metric,
        r.threshold,
        humantime(r.hold),
        then.join(", ")
    )
}

fn humantime(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One line of a section that changes: `current` -> `new` (None: absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub item: String,
    pub current: Option<String>,
    pub new: Option<String>,
}

/// Everything that changes for one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupDiff {
    pub group: String,
    /// Where the group is written (`file:line:column`); None for a group the
    /// agent enforces that the new policy drops.
    pub at: Option<String>,
    /// `create`, `configure`, or `drop` (rules removed, the group kept).
    pub action: &'static str,
    pub hierarchies: Vec<String>,
    /// Controllers enabled in the parents' `cgroup.subtree_control` (v2).
    pub enable: Vec<String>,
    /// Controller files: item `KEY (HIERARCHY:FILE)`.
    pub settings: Vec<Change>,
    pub network: Vec<Change>,
    pub syscalls: Vec<Change>,
    pub when: Vec<Change>,
}

/// What a plan changes on this host, compared with what is there now.
#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub groups: Vec<GroupDiff>,
    pub warnings: Vec<String>,
    /// False when kernel features were not checked (not root).
    pub kernel_checked: bool,
}

/// Lines of a rule section: those only in `current` are removed, those only
/// in `new` added; those in both do not change and are not listed.
fn section(current: &[String], new: &[String]) -> Vec<Change> {
    let removed = current.iter().filter(|c| !new.contains(c)).map(|c| Change {
        item: c.clone(),
        current: Some(c.clone()),
        new: None,
    });
    let added = new.iter().filter(|n| !current.contains(n)).map(|n| Change {
        item: n.clone(),
        current: None,
        new: Some(n.clone()),
    });
    removed.chain(added).collect()
}

impl Diff {
    /// Compares `plan` with the host (`cg`) and what the agent enforces (`now`).
    pub fn new(cg: &Cgroups, plan: &Plan, now: &InForce) -> Self {
        let empty = GroupInForce::default();
        let mut groups = Vec::with_capacity(plan.groups.len());
        for (g, c) in plan.groups.iter().zip(&plan.cgroups.groups) {
            let before = now.groups.get(g.path.as_str()).unwrap_or(&empty);
            let after = GroupInForce::of(g);
            let present: Vec<usize> = c
                .targets
                .hiers
                .iter()
                .copied()
                .filter(|&h| cg.exists(h, &c.path))
                .collect();
            let exists = present.len() == c.targets.hiers.len();
            let settings = c
                .writes
                .iter()
                .map(|w| {
                    // A group not there yet has no current value to read.
                    let current = present
                        .contains(&w.hier)
                        .then(|| std::fs::read_to_string(cg.dir(w.hier, &c.path).join(&w.file)))
                        .and_then(Result::ok)
                        .map(|v| v.trim().to_owned());
                    Change {
                        item: format!("{} ({}:{})", w.key, cg.hierarchy(w.hier).label(), w.file),
                        current,
                        new: Some(w.write.to_string()),
                    }
                })
                .filter(|ch| ch.current != ch.new)
                .collect();
            groups.push(GroupDiff {
                group: g.path.as_str().to_owned(),
                at: Some(g.span.to_string()),
                action: if exists { "configure" } else { "create" },
                hierarchies: c
                    .targets
                    .hiers
                    .iter()
                    .map(|&h| {
                        let label = cg.hierarchy(h).label();
                        // Not merely a mirror where it holds a controller to enable.
                        if Some(h) == cg.mirror() && c.targets.v2_enable.is_empty() {
                            format!("{label} (mirror for eBPF)")
                        } else {
                            label
                        }
                    })
                    .collect(),
                enable: c.targets.v2_enable.clone(),
                settings,
                network: section(&before.network, &after.network),
                syscalls: section(&before.syscalls, &after.syscalls),
                when: section(&before.when, &after.when),
            });
        }
        // A set, so that a dry run stays linear in the number of groups.
        let planned: std::collections::HashSet<&str> =
            plan.groups.iter().map(|g| g.path.as_str()).collect();
        for (name, before) in &now.groups {
            if planned.contains(name.as_str()) {
                continue;
            }
            groups.push(GroupDiff {
                group: name.clone(),
                at: None,
                action: "drop",
                hierarchies: Vec::new(),
                enable: Vec::new(),
                settings: Vec::new(),
                network: section(&before.network, &[]),
                syscalls: section(&before.syscalls, &[]),
                when: section(&before.when, &[]),
            });
        }
        Diff {
            groups,
            warnings: plan.warnings.clone(),
            kernel_checked: plan.kernel_checked,
        }
    }

    /// The text `--dry-run` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        for g in &self.groups {
            let _ = match (&g.at, g.action) {
                (Some(at), action) => writeln!(
                    out,
                    "{action} {} in {}  [{at}]",
                    g.group,
                    g.hierarchies.join("; ")
                ),
                (None, _) => writeln!(
                    out,
                    "drop {}: no longer in the policy; its rules are removed, the group is kept",
                    g.group
                ),
            };
            if !g.enable.is_empty() {
                let _ = writeln!(
                    out,
                    "  enable {} in the parents' cgroup.subtree_control",
                    g.enable.join(" ")
                );
            }
            for c in &g.settings {
                let _ = writeln!(
                    out,
                    "  {}: {} -> {}",
                    c.item,
                    value(&c.current),
                    value(&c.new)
                );
            }
            for (name, changes) in [
                ("network", &g.network),
                ("syscalls", &g.syscalls),
                ("when", &g.when),
            ] {
                for c in changes {
                    let sign = if c.new.is_some() { "+" } else { "-" };
                    let _ = writeln!(out, "  {name}: {sign} {}", c.item);
                }
            }
        }
        if !self.kernel_checked {
            out.push_str(
                "(kernel features not checked: that needs root; run as root to see whether \
                 this kernel enforces every rule)\n",
            );
        }
        out
    }
}
