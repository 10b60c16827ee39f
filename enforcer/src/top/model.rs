//! What `enforcer top` shows, independent of the screen: rows from group
//! reports, sorted by a column, narrowed by a filter, flat or as a tree
//! folded below a depth (as systemd-cgtop's `--depth`).

use std::collections::BTreeMap;

use crate::collect::GroupReport;

/// A column to sort by; each has a key in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Group,
    Egress,
    Ingress,
    Syscalls,
    Memory,
    Cpu,
    Denied,
    Dropped,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Group,
        Column::Egress,
        Column::Ingress,
        Column::Syscalls,
        Column::Memory,
        Column::Cpu,
        Column::Denied,
        Column::Dropped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Group => "group",
            Column::Egress => "egress",
            Column::Ingress => "ingress",
            Column::Syscalls => "syscalls",
            Column::Memory => "memory",
            Column::Cpu => "cpu",
            Column::Denied => "denied",
            Column::Dropped => "dropped",
        }
    }

    /// The key that sorts by this column (also its number, 1-8).
    pub fn key(self) -> char {
        match self {
            Column::Group => 'n',
            Column::Egress => 'e',
            Column::Ingress => 'i',
            Column::Syscalls => 'y',
            Column::Memory => 'm',
            Column::Cpu => 'c',
            Column::Denied => 'd',
            Column::Dropped => 'p',
        }
    }

    pub fn parse(s: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == s)
    }

    pub fn from_key(k: char) -> Option<Column> {
        if let Some(d) = k.to_digit(10) {
            return Column::ALL.get((d as usize).checked_sub(1)?).copied();
        }
        Column::ALL.into_iter().find(|c| c.key() == k)
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
            sort: Column::Egress,
            reversed: false,
            filter: String::new(),
            tree_depth: 0,
        }
    }
}

/// One line of the table (`top --once --json` prints these).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Row {
    /// The group's path (`/` for the root).
    pub group: String,
    /// Indentation level in the tree view (0 when flat).
    pub indent: usize,
    /// Unit, container or pod (see [`Workload::short`](crate::collect::Workload::short)).
    pub workload: String,
    pub egress_bytes: u64,
    pub ingress_bytes: u64,
    /// None before the second sample.
    pub egress_rate: Option<f64>,
    pub ingress_rate: Option<f64>,
    pub syscalls: u64,
    pub syscall_rate: Option<f64>,
    pub memory_bytes: u64,
    pub cpu_percent: Option<f64>,
    pub denied: u64,
    pub dropped: u64,
    /// Groups folded into this row in the tree view (besides itself).
    pub folded: usize,
    /// False for a tree row made for an ancestor nothing counted: its
    /// memory and CPU were not read.
    pub measured: bool,
}

fn denied(g: &GroupReport) -> u64 {
    let e = &g.enforcement;
    e.connect_denied + e.bind_denied + e.sendmsg_denied + e.syscalls_denied + e.syscalls_killed
}

fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

impl Row {
    pub fn of(g: &GroupReport) -> Row {
        let r = g.rates.as_ref();
        Row {
            group: g.group.clone(),
            indent: 0,
            workload: g.workload.short(),
            egress_bytes: g.net.egress_bytes,
            ingress_bytes: g.net.ingress_bytes,
            egress_rate: r.map(|r| r.egress_bytes_per_sec),
            ingress_rate: r.map(|r| r.ingress_bytes_per_sec),
            syscalls: g.syscalls.total,
            syscall_rate: r.map(|r| r.syscalls_per_sec),
            memory_bytes: g.memory.usage_bytes,
            cpu_percent: r.map(|r| r.cpu_percent),
            denied: denied(g),
            dropped: g.enforcement.egress_dropped_packets + g.enforcement.ingress_dropped_packets,
            folded: 0,
            measured: true,
        }
    }

    /// Adds a descendant's kernel counts (memory and CPU are hierarchical in
    /// cgroupfs already).
    fn fold(&mut self, d: &Row) {
        self.add_counts(d);
        self.folded += 1;
    }

    fn add_counts(&mut self, d: &Row) {
        self.egress_bytes += d.egress_bytes;
        self.ingress_bytes += d.ingress_bytes;
        self.egress_rate = add(self.egress_rate, d.egress_rate);
        self.ingress_rate = add(self.ingress_rate, d.ingress_rate);
        self.syscalls += d.syscalls;
        self.syscall_rate = add(self.syscall_rate, d.syscall_rate);
        self.denied += d.denied;
        self.dropped += d.dropped;
    }

    fn matches(&self, filter: &str) -> bool {
        filter.is_empty()
            || self.group.to_lowercase().contains(filter)
            || self.workload.to_lowercase().contains(filter)
    }

    fn cmp_by(&self, other: &Row, col: Column) -> std::cmp::Ordering {
        let f = |v: Option<f64>| v.unwrap_or(0.0);
        let o = match col {
            Column::Group => other.group.cmp(&self.group),
            Column::Egress => f(self.egress_rate)
                .total_cmp(&f(other.egress_rate))
                .then(self.egress_bytes.cmp(&other.egress_bytes)),
            Column::Ingress => f(self.ingress_rate)
                .total_cmp(&f(other.ingress_rate))
                .then(self.ingress_bytes.cmp(&other.ingress_bytes)),
            Column::Syscalls => f(self.syscall_rate)
                .total_cmp(&f(other.syscall_rate))
                .then(self.syscalls.cmp(&other.syscalls)),
            Column::Memory => self.memory_bytes.cmp(&other.memory_bytes),
            Column::Cpu => f(self.cpu_percent).total_cmp(&f(other.cpu_percent)),
            Column::Denied => self.denied.cmp(&other.denied),
            Column::Dropped => self.dropped.cmp(&other.dropped),
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

    fn g(label: &str, egress: u64) -> GroupReport {
        let mut r = GroupReport::empty(label);
        r.net.egress_bytes = egress;
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
        assert_eq!((sa.egress_bytes, sa.folded), (70, 2));
        // Subtree totals: s has its own 2 and s/a's 70; the root everything.
        let total = |g: &str| r.iter().find(|r| r.group == g).unwrap().egress_bytes;
        assert_eq!((total("s"), total("/")), (72, 173));
        let only = View {
            filter: "deep".into(),
            ..v
        };
        assert_eq!(names(&rows(&gs, &only)), [(0, "/"), (1, "s"), (2, "s/a")]);
    }

    #[test]
    fn keys_pick_columns() {
        assert_eq!(Column::from_key('2'), Some(Column::Egress));
        assert_eq!(Column::from_key('m'), Some(Column::Memory));
        assert_eq!(Column::from_key('9'), None);
        assert_eq!(Column::parse("cpu"), Some(Column::Cpu));
    }
}
