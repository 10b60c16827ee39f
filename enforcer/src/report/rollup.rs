//! Bounded metrics cardinality: groups deeper than the export depth are
//! summed into their ancestor at that depth, so a host with thousands of
//! containers exports one series set per group near the top of the tree
//! (a pod, a service) rather than one per leaf, and no traffic is lost.
//!
//! The kernel counts per cgroup (a socket's own group), so an ancestor's
//! exported counters are its own plus those of every descendant folded into
//! it, plus what descendants deleted since had counted (kept here), so the
//! exported counters never go down. Memory and CPU come from cgroupfs, which
//! is hierarchical already: the ancestor's own values are used.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::collect::{EnforcementReport, GroupReport, NetReport, SyscallReport};

/// Which groups get series of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Groups at most this deep (the root is 0, `system.slice` 1) are
    /// exported; deeper ones are summed into their ancestor at this depth.
    pub depth: usize,
    /// At most this many groups besides `always` (shallowest first, then by
    /// name); the others are left out and counted in
    /// `enforcer_metrics_groups{state="omitted"}`.
    pub max_groups: usize,
    /// Exported as themselves whatever their depth: the policy's groups.
    pub always: BTreeSet<String>,
}

/// `metrics_depth` default: `kubepods.slice/kubepods-burstable.slice/<pod>`,
/// `system.slice/<unit>/<child>`.
pub const DEFAULT_DEPTH: usize = 3;
/// `metrics_max_groups` default: with about 40 series per group, a busy host
/// stays under some 20,000 series.
pub const DEFAULT_MAX_GROUPS: usize = 500;

impl Default for Selection {
    fn default() -> Self {
        Selection {
            depth: DEFAULT_DEPTH,
            max_groups: DEFAULT_MAX_GROUPS,
            always: BTreeSet::new(),
        }
    }
}

fn depth(label: &str) -> usize {
    if label == "/" {
        0
    } else {
        label.split('/').count()
    }
}

/// The counters a folded descendant adds to its ancestor.
#[derive(Debug, Clone, Default, PartialEq)]
struct Folded {
    net: NetReport,
    syscalls: SyscallReport,
    enforcement: EnforcementReport,
}

impl Folded {
    fn of(g: &GroupReport) -> Self {
        Folded {
            net: g.net.clone(),
            syscalls: g.syscalls.clone(),
            enforcement: g.enforcement.clone(),
        }
    }

    fn add_to(&self, g: &mut GroupReport) {
        let (n, m) = (&mut g.net, &self.net);
        n.egress_bytes += m.egress_bytes;
        n.egress_packets += m.egress_packets;
        n.ingress_bytes += m.ingress_bytes;
        n.ingress_packets += m.ingress_packets;
        n.connect_attempts += m.connect_attempts;
        n.bind_attempts += m.bind_attempts;
        g.syscalls.total += self.syscalls.total;
        for (name, v) in &self.syscalls.by_name {
            *g.syscalls.by_name.entry(name.clone()).or_default() += v;
        }
        let (e, f) = (&mut g.enforcement, &self.enforcement);
        e.connect_denied += f.connect_denied;
        e.bind_denied += f.bind_denied;
        e.sendmsg_denied += f.sendmsg_denied;
        e.syscalls_denied += f.syscalls_denied;
        e.syscalls_killed += f.syscalls_killed;
        e.syscalls_logged += f.syscalls_logged;
        e.egress_dropped_packets += f.egress_dropped_packets;
        e.egress_dropped_bytes += f.egress_dropped_bytes;
        e.ingress_dropped_packets += f.ingress_dropped_packets;
        e.ingress_dropped_bytes += f.ingress_dropped_bytes;
        e.events_lost += f.events_lost;
    }

    fn absorb(&mut self, other: &Folded) {
        let mut g = GroupReport::empty("");
        g.net = self.net.clone();
        g.syscalls = self.syscalls.clone();
        g.enforcement = self.enforcement.clone();
        other.add_to(&mut g);
        *self = Folded::of(&g);
    }
}

/// Keeps, between collections, what folded descendants counted.
#[derive(Debug, Default)]
pub struct Rollup {
    /// Folded descendant (cgroup id) -> (its exported ancestor, its counters).
    last: HashMap<u64, (String, Folded)>,
    /// Exported label -> the counters of its deleted descendants.
    retired: HashMap<String, Folded>,
}

impl Rollup {
    /// The exported label of `label`: itself, or its ancestor at the depth
    /// (or the deepest `always` group above it).
    fn target(sel: &Selection, label: &str) -> String {
        if label == "/" || depth(label) <= sel.depth || sel.always.contains(label) {
            return label.to_string();
        }
        let parts: Vec<&str> = label.split('/').collect();
        for n in (sel.depth + 1..parts.len()).rev() {
            let up = parts[..n].join("/");
            if sel.always.contains(&up) {
                return up;
            }
        }
        if sel.depth == 0 {
            return "/".to_string();
        }
        parts[..sel.depth].join("/")
    }

    /// The exported reports and how many groups were left out.
    pub fn apply(&mut self, groups: &[GroupReport], sel: &Selection) -> (Vec<GroupReport>, usize) {
        let mut out: BTreeMap<String, GroupReport> = BTreeMap::new();
        let mut folded: Vec<(String, &GroupReport)> = Vec::new();
        for g in groups {
            let target = Self::target(sel, &g.group);
            if target == g.group {
                out.insert(target, g.clone());
            } else {
                folded.push((target, g));
            }
        }
        let mut seen = HashMap::new();
        for (target, g) in folded {
            let f = Folded::of(g);
            let entry = out
                .entry(target.clone())
                .or_insert_with(|| GroupReport::empty(&target));
            f.add_to(entry);
            seen.insert(g.cgroup_id, (target, f));
        }
        // Descendants gone since the last collection: what they counted
        // stays in their ancestor's totals.
        for (id, (target, f)) in self.last.drain() {
            if !seen.contains_key(&id) && out.contains_key(&target) {
                self.retired.entry(target).or_default().absorb(&f);
            }
        }
        self.last = seen;
        self.retired.retain(|label, _| out.contains_key(label));
        for (label, f) in &self.retired {
            if let Some(g) = out.get_mut(label) {
                f.add_to(g);
            }
        }
        // The bound on how many groups are exported.
        let mut rest: Vec<GroupReport> = Vec::new();
        let mut kept: Vec<GroupReport> = Vec::new();
        for (_, g) in out {
            if sel.always.contains(&g.group) {
                kept.push(g);
            } else {
                rest.push(g);
            }
        }
        rest.sort_by(|a, b| {
            depth(&a.group)
                .cmp(&depth(&b.group))
                .then(a.group.cmp(&b.group))
        });
        let omitted = rest.len().saturating_sub(sel.max_groups);
        rest.truncate(sel.max_groups);
        kept.extend(rest);
        kept.sort_by(|a, b| a.group.cmp(&b.group));
        (kept, omitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(label: &str, id: u64, egress: u64) -> GroupReport {
        let mut r = GroupReport::empty(label);
        r.cgroup_id = id;
        r.net.egress_bytes = egress;
        r
    }

    #[test]
    fn deep_groups_fold_into_their_ancestor_and_never_go_down() {
        let sel = Selection {
            depth: 2,
            max_groups: 100,
            always: ["a/b/c/policy".to_string()].into(),
        };
        let mut r = Rollup::default();
        let (out, omitted) = r.apply(
            &[
                g("a", 1, 1),
                g("a/b", 2, 10),
                g("a/b/x", 3, 100),
                g("a/b/x/y", 4, 1000),
                g("a/b/c/policy", 5, 7),
                g("a/b/c/policy/kid", 6, 3),
            ],
            &sel,
        );
        assert_eq!(omitted, 0);
        let by: BTreeMap<&str, u64> = out
            .iter()
            .map(|g| (g.group.as_str(), g.net.egress_bytes))
            .collect();
        assert_eq!(by, [("a", 1), ("a/b", 1110), ("a/b/c/policy", 10)].into());
        // a/b/x/y is deleted: its 1000 bytes stay in a/b.
        let (out, _) = r.apply(&[g("a/b", 2, 10), g("a/b/x", 3, 150)], &sel);
        assert_eq!(out[0].group, "a/b");
        assert_eq!(out[0].net.egress_bytes, 1160);
        // a/b itself is deleted: its series go.
        let (out, _) = r.apply(&[g("a", 1, 1)], &sel);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn at_most_max_groups_shallowest_first() {
        let sel = Selection {
            depth: 3,
            max_groups: 2,
            always: ["z/deep".to_string()].into(),
        };
        let (out, omitted) = Rollup::default().apply(
            &[
                g("b/c", 1, 0),
                g("a", 2, 0),
                g("b", 3, 0),
                g("z/deep", 4, 0),
            ],
            &sel,
        );
        let names: Vec<&str> = out.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["a", "b", "z/deep"]);
        assert_eq!(omitted, 1);
    }
}
