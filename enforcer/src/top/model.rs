//! What `enforcer top` shows, independent of the screen: rows from group
//! reports, sorted by a column, narrowed by a filter, flat or as a tree
//! folded below a depth (as systemd-cgtop's `--depth`).

use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::collect::GroupReport;
use crate::counters::{ColumnDef, Counts, EGRESS, PerSec, columns};

/// A column to sort by: the group, a column of the counter table, memory or
/// CPU; each has a key in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Group,
    Counter(ColumnDef),
    Memory,
    Cpu,
}

impl Column {
    /// In the order their numbers (1-9) pick them: usage, then what was
    /// refused or lost (as the screen shows them).
    pub fn all() -> Vec<Column> {
        let (alert, usage): (Vec<ColumnDef>, Vec<ColumnDef>) =
            columns().into_iter().partition(|c| c.alert);
        let mut out = vec![Column::Group];
        out.extend(usage.into_iter().map(Column::Counter));
        out.extend([Column::Memory, Column::Cpu]);
        out.extend(alert.into_iter().map(Column::Counter));
        out
    }

    pub fn name(self) -> &'static str {
        match self {
            Column::Group => "group",
            Column::Counter(c) => c.name,
            Column::Memory => "memory",
            Column::Cpu => "cpu",
        }
    }

    /// The key that sorts by this column.
    pub fn key(self) -> char {
        match self {
            Column::Group => 'n',
            Column::Counter(c) => c.key,
            Column::Memory => 'm',
            Column::Cpu => 'c',
        }
    }

    pub fn parse(s: &str) -> Option<Column> {
        Column::all().into_iter().find(|c| c.name() == s)
    }

    pub fn from_key(k: char) -> Option<Column> {
        let all = Column::all();
        if let Some(d) = k.to_digit(10) {
            return all.get((d as usize).checked_sub(1)?).copied();
        }
        all.into_iter().find(|c| c.key() == k)
    }

    /// Names sort A-Z; numbers biggest first.
    pub fn descending(self) -> bool {
        self != Column::Group
    }
}

/// How the table is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub sort: Column,
    /// Reverse of the column's natural order.
    pub reversed: bool,
    /// Case-insensitive substring of the group path or its workload labels.
    pub filter: String,
    /// 0: flat. N: a tree of groups at most N deep, deeper ones folded in.
    pub tree_depth: usize,
}

impl Default for View {
    fn default() -> Self {
        View {
            sort: Column::Counter(EGRESS),
            reversed: false,
            filter: String::new(),
            tree_depth: 0,
        }
    }
}

/// One line of the table (`top --once --json` prints these: a key per
/// column of the counter table, its `json` and `rate_json`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The group's path (`/` for the root).
    pub group: String,
    /// Indentation level in the tree view (0 when flat).
    pub indent: usize,
    /// Unit, container or pod (see [`Workload::short`](crate::collect::Workload::short)).
    pub workload: String,
    /// The unit, container id and pod UID in full, for the filter (the
    /// column shows them cut short).
    pub ids: String,
    /// Every counter, its folded descendants' included.
    pub counts: Counts,
    /// Every counter's rate; None before the second sample.
    pub rates: Option<PerSec>,
    pub memory_bytes: u64,
    pub cpu_percent: Option<f64>,
    /// Groups folded into this row in the tree view (besides itself).
    pub folded: usize,
    /// False for a tree row made for an ancestor nothing counted: its
    /// memory and CPU were not read.
    pub measured: bool,
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("group", &self.group)?;
        m.serialize_entry("indent", &self.indent)?;
        m.serialize_entry("workload", &self.workload)?;
        let cols = columns();
        for c in &cols {
            m.serialize_entry(c.json, &self.total(*c))?;
        }
        for c in &cols {
            if let Some(key) = c.rate_json {
                m.serialize_entry(key, &self.rate(*c))?;
            }
        }
        m.serialize_entry("memory_bytes", &self.memory_bytes)?;
        m.serialize_entry("cpu_percent", &self.cpu_percent)?;
        m.serialize_entry("folded", &self.folded)?;
        m.serialize_entry("measured", &self.measured)?;
        m.end()
    }
}

impl Row {
    pub fn of(g: &GroupReport) -> Row {
        let r = g.rates.as_ref();
        Row {
            group: g.group.clone(),
            indent: 0,
            workload: g.workload.short(),
            ids: [
                &g.workload.unit,
                &g.workload.container_id,
                &g.workload.pod_uid,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" "),
            counts: g.counts,
            rates: r.map(|r| r.per_sec),
            memory_bytes: g.memory.usage_bytes,
            cpu_percent: r.map(|r| r.cpu_percent),
            folded: 0,
            measured: true,
        }
    }

    pub fn total(&self, c: ColumnDef) -> u64 {
        c.total(&self.counts)
    }

    /// None before the second sample, or for a column without a rate.
    pub fn rate(&self, c: ColumnDef) -> Option<f64> {
        self.rates.as_ref().and_then(|r| c.rate(r))
    }

    /// Adds a descendant's kernel counts (memory and CPU are hierarchical in
    /// cgroupfs already).
    fn fold(&mut self, d: &Row) {
        self.add_counts(d);
        self.folded += 1;
    }

    fn add_counts(&mut self, d: &Row) {
        self.counts.add(&d.counts);
        if let Some(theirs) = &d.rates {
            self.rates.get_or_insert_with(PerSec::default).add(theirs);
        }
    }

    fn matches(&self, filter: &str) -> bool {
        filter.is_empty()
            || self.group.to_lowercase().contains(filter)
            || self.workload.to_lowercase().contains(filter)
            || self.ids.to_lowercase().contains(filter)
    }

    fn cmp_by(&self, other: &Row, col: Column) -> std::cmp::Ordering {
        let f = |v: Option<f64>| v.unwrap_or(0.0);
        let o = match col {
            Column::Group => other.group.cmp(&self.group),
            Column::Counter(c) => f(self.rate(c))
                .total_cmp(&f(other.rate(c)))
                .then(self.total(c).cmp(&other.total(c))),
            Column::Memory => self.memory_bytes.cmp(&other.memory_bytes),
            Column::Cpu => f(self.cpu_percent).total_cmp(&f(other.cpu_percent)),
        };
        // Biggest (or A) first; ties by name.
        o.reverse().then_with(|| self.group.cmp(&other.group))
    }
}

fn depth(group: &str) -> usize {
    if group == "/" {
        0
    } else {
        group.split('/').count()
    }
}

fn parent(group: &str) -> Option<String> {
    if group == "/" || group.is_empty() {
        return None;
    }
    match group.rsplit_once('/') {
        Some((p, _)) if !p.is_empty() => Some(p.to_string()),
        _ => Some("/".to_string()),
    }
}

/// The rows to show for `groups` under `view`.
pub fn rows(groups: &[GroupReport], view: &View) -> Vec<Row> {
    let filter = view.filter.to_lowercase();
    let order = |a: &Row, b: &Row| {
        let o = a.cmp_by(b, view.sort);
        if view.reversed { o.reverse() } else { o }
    };
    if view.tree_depth == 0 {
        let mut out: Vec<Row> = groups
            .iter()
            .map(Row::of)
            .filter(|r| r.matches(&filter))
            .collect();
        out.sort_by(order);
        return out;
    }
    // Tree: every group at most `tree_depth` deep, with the counts of its
    // deeper descendants folded in; ancestors a shown group needs are made.
    let mut nodes: BTreeMap<String, Row> = BTreeMap::new();
    let mut deep: Vec<Row> = Vec::new();
    // Rows that match the filter themselves or through a folded descendant.
    let mut keep: Vec<String> = Vec::new();
    for g in groups {
        let r = Row::of(g);
        if r.matches(&filter) {
            let parts: Vec<&str> = r.group.split('/').collect();
            keep.push(parts[..parts.len().min(view.tree_depth)].join("/"));
        }
        if depth(&r.group) <= view.tree_depth {
            nodes.insert(r.group.clone(), r);
        } else {
            deep.push(r);
        }
    }
    for d in &deep {
        let parts: Vec<&str> = d.group.split('/').collect();
        let top = parts[..view.tree_depth].join("/");
        nodes
            .entry(top.clone())
            .or_insert_with(|| Row {
                group: top,
                ..Row::default()
            })
            .fold(d);
    }
    let labels: Vec<String> = nodes.keys().cloned().collect();
    for l in labels {
        let mut p = parent(&l);
        while let Some(up) = p {
            p = parent(&up);
            nodes.entry(up.clone()).or_insert_with(|| Row {
                group: up,
                ..Row::default()
            });
        }
    }
    // Each row counts its whole subtree, as systemd-cgtop shows it: the
    // kernel counts per cgroup, so children are added to their parents,
    // deepest first.
    let mut by_depth: Vec<String> = nodes.keys().cloned().collect();
    by_depth.sort_by_key(|l| std::cmp::Reverse(depth(l)));
    for l in by_depth {
        if let (Some(p), Some(child)) = (parent(&l), nodes.get(&l).cloned())
            && let Some(up) = nodes.get_mut(&p)
        {
            up.add_counts(&child);
        }
    }
    // A row is shown if it, an ancestor or a descendant matches the filter.
    let shown = |g: &str| {
        filter.is_empty()
            || keep.iter().any(|k| {
                k == g
                    || g == "/"
                    || k.starts_with(&format!("{g}/"))
                    || g.starts_with(&format!("{k}/"))
            })
    };
    let mut children: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (label, r) in nodes {
        if !shown(&label) {
            continue;
        }
        match parent(&label) {
            Some(p) => children.entry(p).or_default().push(r),
            None => roots.push(r),
        }
    }
    let mut out = Vec::new();
    fn walk(
        rows: &mut Vec<Row>,
        indent: usize,
        children: &mut BTreeMap<String, Vec<Row>>,
        out: &mut Vec<Row>,
        order: &dyn Fn(&Row, &Row) -> std::cmp::Ordering,
    ) {
        rows.sort_by(order);
        for mut r in rows.drain(..) {
            r.indent = indent;
            let mut kids = children.remove(&r.group).unwrap_or_default();
            out.push(r);
            walk(&mut kids, indent + 1, children, out, order);
        }
    }
    walk(&mut roots, 0, &mut children, &mut out, &order);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counter;

    fn g(label: &str, egress: u64) -> GroupReport {
        let mut r = GroupReport::empty(label);
        r.counts[Counter::EgressBytes] = egress;
        r
    }

    fn names(rows: &[Row]) -> Vec<(usize, &str)> {
        rows.iter().map(|r| (r.indent, r.group.as_str())).collect()
    }

    #[test]
    fn sort_filter_and_reverse() {
        let gs = [g("b", 10), g("a", 5), g("c/x", 99)];
        let mut v = View::default();
        assert_eq!(names(&rows(&gs, &v)), [(0, "c/x"), (0, "b"), (0, "a")]);
        v.sort = Column::Group;
        assert_eq!(names(&rows(&gs, &v)), [(0, "a"), (0, "b"), (0, "c/x")]);
        v.reversed = true;
        assert_eq!(names(&rows(&gs, &v))[0].1, "c/x");
        v.filter = "B".into();
        assert_eq!(names(&rows(&gs, &v)), [(0, "b")]);
    }

    #[test]
    fn tree_folds_below_the_depth_and_keeps_ancestors() {
        let gs = [
            g("/", 1),
            g("s", 2),
            g("s/a/deep", 30),
            g("s/a/deep/er", 40),
            g("t", 100),
        ];
        let v = View {
            tree_depth: 2,
            ..View::default()
        };
        let r = rows(&gs, &v);
        assert_eq!(
            names(&r),
            [(0, "/"), (1, "t"), (1, "s"), (2, "s/a")],
            "{r:?}"
        );
        let sa = r.iter().find(|r| r.group == "s/a").unwrap();
        assert_eq!((sa.total(EGRESS), sa.folded), (70, 2));
        // Subtree totals: s has its own 2 and s/a's 70; the root everything.
        let total = |g: &str| r.iter().find(|r| r.group == g).unwrap().total(EGRESS);
        assert_eq!((total("s"), total("/")), (72, 173));
        let only = View {
            filter: "deep".into(),
            ..v
        };
        assert_eq!(names(&rows(&gs, &only)), [(0, "/"), (1, "s"), (2, "s/a")]);
    }

    #[test]
    fn keys_pick_columns() {
        assert_eq!(Column::from_key('2'), Some(Column::Counter(EGRESS)));
        assert_eq!(Column::from_key('m'), Some(Column::Memory));
        // The numbers `top` had before the counter table keep their columns.
        let numbered = |d: char| Column::from_key(d).map(Column::name);
        assert_eq!(
            ['1', '2', '3', '4', '5', '6', '7', '8', '9'].map(numbered),
            [
                "group", "egress", "ingress", "syscalls", "memory", "cpu", "denied", "dropped",
                "lost"
            ]
            .map(Some)
        );
        assert_eq!(Column::from_key('0'), None);
        assert_eq!(Column::parse("cpu"), Some(Column::Cpu));
        let lost = Column::parse("lost").unwrap();
        assert_eq!(Column::from_key('l'), Some(lost));
        // Every key sorts by one column, and none is taken by another command.
        let all = Column::all();
        assert!(all.len() <= 9, "each column has a number: {all:?}");
        for (i, c) in all.iter().enumerate() {
            assert_eq!(Column::from_key(c.key()), Some(*c), "{c:?}");
            assert!(
                !"qjkgGtrs/+-".contains(c.key()),
                "{c:?} takes a command key"
            );
            assert!(all[i + 1..].iter().all(|o| o.name() != c.name()), "{c:?}");
        }
    }

    #[test]
    fn counters_fold_into_rows_and_rows_into_json_columns() {
        let mut a = g("s/a", 1);
        a.counts[Counter::EventsLost] = 2;
        a.rates = Some(crate::collect::Rates::default());
        let mut b = g("s/a/b", 10);
        b.counts[Counter::EventsLost] = 3;
        let v = View {
            tree_depth: 2,
            sort: Column::parse("lost").unwrap(),
            ..View::default()
        };
        let r = rows(&[a, b], &v);
        let sa = r.iter().find(|r| r.group == "s/a").unwrap();
        let json = serde_json::to_value(sa).unwrap();
        assert_eq!(json["lost"], 5, "{json}");
        // The keys `top --json` had before the counter table.
        assert_eq!(json["egress_bytes"], 11, "{json}");
        assert_eq!(json["egress_rate"], 0.0, "{json}");
        for key in [
            "group",
            "indent",
            "workload",
            "egress_bytes",
            "ingress_bytes",
            "egress_rate",
            "ingress_rate",
            "syscalls",
            "syscall_rate",
            "memory_bytes",
            "cpu_percent",
            "denied",
            "dropped",
            "folded",
            "measured",
        ] {
            assert!(json.get(key).is_some(), "{key} missing: {json}");
        }
    }
}
