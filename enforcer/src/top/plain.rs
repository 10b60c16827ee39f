//! The plain table of `top --once` and of `top` into a pipe: fixed columns,
//! human units, no escape codes.

use std::fmt::Write as _;

use super::model::Row;
use crate::report::{fit, human_bytes};

pub(super) const HEADERS: [&str; 11] = [
    "GROUP",
    "EGRESS/s",
    "INGRESS/s",
    "EGRESS",
    "INGRESS",
    "SYSCALLS/s",
    "MEMORY",
    "CPU%",
    "DENIED",
    "DROPPED",
    "WORKLOAD",
];

/// Width of the GROUP column.
pub(super) const GROUP_WIDTH: usize = 40;

pub(super) fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v < 1.0 => "0".into(),
        Some(v) => format!("{}/s", human_bytes(v as u64)),
    }
}

pub(super) fn count_rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 10_000.0 => format!("{:.0}k", v / 1000.0),
        Some(v) => format!("{v:.0}"),
    }
}

pub(super) fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// The group cell: the full path when flat, the last part indented in a tree.
pub(super) fn group_cell(r: &Row, tree: bool, width: usize) -> String {
    let text = if tree {
        let leaf = r.group.rsplit('/').next().filter(|l| !l.is_empty());
        let mut t = format!("{}{}", "  ".repeat(r.indent), leaf.unwrap_or("/"));
        if r.folded > 0 {
            t.push_str(&format!(" (+{})", r.folded));
        }
        t
    } else {
        r.group.clone()
    };
    fit(&text, width)
}

/// The cells of one row, in [`HEADERS`] order.
pub(super) fn cells(r: &Row, tree: bool) -> [String; 11] {
    [
        group_cell(r, tree, GROUP_WIDTH),
        rate(r.egress_rate),
        rate(r.ingress_rate),
        human_bytes(r.egress_bytes),
        human_bytes(r.ingress_bytes),
        count_rate(r.syscall_rate),
        if r.measured {
            human_bytes(r.memory_bytes)
        } else {
            "-".into()
        },
        percent(r.cpu_percent),
        r.denied.to_string(),
        r.dropped.to_string(),
        r.workload.clone(),
    ]
}

/// At most `limit` rows, then a line saying how many more there are.
pub fn table(rows: &[Row], tree: bool, limit: usize) -> String {
    let mut out = String::new();
    let line = |out: &mut String, c: &[String]| {
        let _ = writeln!(
            out,
            "{:<40} {:>11} {:>11} {:>10} {:>10} {:>10} {:>10} {:>6} {:>7} {:>8} {}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]
        );
    };
    line(&mut out, &HEADERS.map(String::from));
    for r in rows.iter().take(limit) {
        line(&mut out, &cells(r, tree));
    }
    if rows.len() > limit {
        let _ = writeln!(out, "… and {} more groups", rows.len() - limit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rows_in_human_units_without_escapes() {
        let r = Row {
            group: "système/ünït".into(),
            egress_bytes: 3 << 20,
            egress_rate: Some(2048.0),
            workload: "nginx.service".into(),
            ..Row::default()
        };
        let t = table(&[r.clone(), r], false, 1);
        assert!(t.contains("système/ünït"), "{t}");
        assert!(t.contains("3.0 MiB") && t.contains("2.0 KiB/s"), "{t}");
        assert!(t.contains("… and 1 more groups"), "{t}");
        assert!(!t.contains('\x1b'));
    }
}
