//! The plain table of `top --once` and of `top` into a pipe: fixed columns,
//! human units, no escape codes.

use std::fmt::Write as _;

use super::model::{Column, Row};
use crate::counters::{ColumnDef, Unit, columns};
use crate::report::{fit, human_bytes};

/// What a cell shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shows {
    Group,
    Rate(ColumnDef),
    Total(ColumnDef),
    Memory,
    Cpu,
    Workload,
}

/// One column of the screen.
#[derive(Debug, Clone)]
pub(super) struct Spec {
    pub header: String,
    /// In characters (the group's is [`GROUP_WIDTH`] here; the screen fits
    /// it to the terminal).
    pub width: usize,
    pub shows: Shows,
    /// The sort column whose marker this header carries.
    pub sorts: Option<Column>,
}

/// The columns: the group; the rates of the counter table's columns that
/// have one, then the usage columns' totals; memory and CPU; the columns of
/// what was refused or lost; the workload (the order `top` always had).
pub(super) fn layout() -> Vec<Spec> {
    let spec = |header: String, least: usize, shows, sorts| Spec {
        // Room for the sort marker after the header.
        width: least.max(header.chars().count() + 1),
        header,
        shows,
        sorts,
    };
    let total = |c: ColumnDef| {
        let least = if c.unit() == Unit::Bytes { 10 } else { 7 };
        // A column without a rate carries its marker on its total.
        let sorts = (!c.has_rate()).then_some(Column::Counter(c));
        spec(c.header.to_string(), least, Shows::Total(c), sorts)
    };
    let (alert, usage): (Vec<ColumnDef>, Vec<ColumnDef>) =
        columns().into_iter().partition(|c| c.alert);
    let mut out = vec![spec(
        "GROUP".into(),
        GROUP_WIDTH,
        Shows::Group,
        Some(Column::Group),
    )];
    for c in columns().into_iter().filter(|c| c.has_rate()) {
        let least = if c.unit() == Unit::Bytes { 11 } else { 10 };
        let sorts = Some(Column::Counter(c));
        out.push(spec(
            format!("{}/s", c.header),
            least,
            Shows::Rate(c),
            sorts,
        ));
    }
    out.extend(usage.into_iter().map(total));
    out.push(spec(
        "MEMORY".into(),
        10,
        Shows::Memory,
        Some(Column::Memory),
    ));
    out.push(spec("CPU%".into(), 6, Shows::Cpu, Some(Column::Cpu)));
    out.extend(alert.into_iter().map(total));
    out.push(spec("WORKLOAD".into(), 0, Shows::Workload, None));
    out
}

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
        let leaf = crate::escape::human(leaf.unwrap_or("/"));
        let mut t = format!("{}{leaf}", "  ".repeat(r.indent));
        if r.folded > 0 {
            t.push_str(&format!(" (+{})", r.folded));
        }
        t
    } else {
        crate::escape::human(&r.group).into_owned()
    };
    fit(&text, width)
}

/// The cells of one row, in [`layout`] order.
pub(super) fn cells(r: &Row, tree: bool, layout: &[Spec]) -> Vec<String> {
    layout
        .iter()
        .map(|spec| match spec.shows {
            Shows::Group => group_cell(r, tree, GROUP_WIDTH),
            Shows::Rate(c) => match c.unit() {
                Unit::Bytes => rate(r.rate(c)),
                Unit::Count => count_rate(r.rate(c)),
            },
            Shows::Total(c) => match c.unit() {
                Unit::Bytes => human_bytes(r.total(c)),
                Unit::Count => r.total(c).to_string(),
            },
            Shows::Memory if r.measured => human_bytes(r.memory_bytes),
            Shows::Memory => "-".into(),
            Shows::Cpu => percent(r.cpu_percent),
            Shows::Workload => crate::escape::human(&r.workload).into_owned(),
        })
        .collect()
}

/// At most `limit` rows, then a line saying how many more there are.
pub fn table(rows: &[Row], tree: bool, limit: usize) -> String {
    let layout = layout();
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (cell, spec) in cells.iter().zip(&layout) {
            let w = spec.width;
            match spec.shows {
                Shows::Group => text.push_str(&format!("{cell:<w$}")),
                Shows::Workload => text.push_str(&format!(" {cell}")),
                _ => text.push_str(&format!(" {cell:>w$}")),
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    let headers: Vec<String> = layout.iter().map(|s| s.header.clone()).collect();
    line(&mut out, &headers);
    for r in rows.iter().take(limit) {
        line(&mut out, &cells(r, tree, &layout));
    }
    if rows.len() > limit {
        let _ = writeln!(out, "… and {} more groups", rows.len() - limit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{Counter, PerSec};

    #[test]
    fn plain_rows_in_human_units_without_escapes() {
        let mut r = Row {
            group: "système/ünït".into(),
            workload: "nginx.service".into(),
            rates: Some(PerSec::default()),
            ..Row::default()
        };
        r.counts[Counter::EgressBytes] = 3 << 20;
        r.counts[Counter::EventsLost] = 4;
        if let Some(rates) = &mut r.rates {
            rates[Counter::EgressBytes] = 2048.0;
        }
        let t = table(&[r.clone(), r], false, 1);
        assert!(t.contains("système/ünït"), "{t}");
        assert!(t.contains("3.0 MiB") && t.contains("2.0 KiB/s"), "{t}");
        assert!(t.contains("… and 1 more groups"), "{t}");
        assert!(!t.contains('\x1b'));
        assert!(t.contains("LOST") && t.contains(" 4 "), "{t}");
    }
}
