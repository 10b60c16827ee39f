//! The human table of `enforcer stats` and the agent's live summary.

use std::fmt::Write as _;

use crate::collect::GroupReport;
use crate::counters::{ColumnDef, Counter, Unit, columns};
use crate::units::human_bytes;

fn total(col: ColumnDef, v: u64) -> String {
    match col.unit() {
        Unit::Bytes => human_bytes(v),
        Unit::Count => v.to_string(),
    }
}

fn rate(col: ColumnDef, per_sec: Option<f64>) -> String {
    match (col.unit(), per_sec) {
        (_, None) => "-".into(),
        (_, Some(v)) if v < 1.0 => "-".into(),
        (Unit::Bytes, Some(v)) => format!("{}/s", human_bytes(v as u64)),
        (Unit::Count, Some(v)) => format!("{v:.0}"),
    }
}

/// Room for the header and a typical value.
fn width(header: &str, unit: Unit, is_rate: bool) -> usize {
    let value = match (unit, is_rate) {
        (Unit::Bytes, true) => 11,
        (Unit::Bytes, false) => 10,
        (Unit::Count, _) => 7,
    };
    value.max(header.chars().count())
}

/// `text` in at most `width` characters: the end kept (the leaf of a path
/// says most), `…` for what was cut. Counts characters, never slices bytes,
/// so any UTF-8 name is safe.
pub fn fit(text: &str, width: usize) -> String {
    let n = text.chars().count();
    if n <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = text.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

/// Busiest groups first (by traffic then syscalls), at most `limit` rows:
/// each column of the counter table, its rate where it has one, memory and
/// OOM kills.
pub fn table(groups: &[GroupReport], limit: usize) -> String {
    let mut rows: Vec<&GroupReport> = groups.iter().collect();
    rows.sort_by_key(|g| {
        let c = &g.counts;
        std::cmp::Reverse((
            c[Counter::EgressBytes].saturating_add(c[Counter::IngressBytes]),
            c[Counter::Syscalls],
        ))
    });
    let cols = columns();
    let rated: Vec<ColumnDef> = cols.iter().copied().filter(|c| c.has_rate()).collect();
    // (header, width) then each row's cells, in the same order.
    let mut heads: Vec<(String, usize)> = vec![("GROUP".into(), 40)];
    heads.extend(
        cols.iter()
            .map(|c| (c.header.to_string(), width(c.header, c.unit(), false))),
    );
    heads.extend(rated.iter().map(|c| {
        let h = format!("{}/s", c.header);
        let w = width(&h, c.unit(), true);
        (h, w)
    }));
    heads.extend([("MEMORY".into(), 10), ("OOM".into(), 4)]);
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, (_, w))) in cells.iter().zip(&heads).enumerate() {
            if i == 0 {
                let _ = write!(text, "{cell:<w$}");
            } else {
                let _ = write!(text, " {cell:>w$}");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    let mut out = String::new();
    line(
        &mut out,
        &heads.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>(),
    );
    for g in rows.iter().take(limit) {
        let mut cells = vec![fit(&crate::escape::human(&g.group), 40)];
        cells.extend(cols.iter().map(|c| total(*c, c.total(&g.counts))));
        cells.extend(
            rated
                .iter()
                .map(|c| rate(*c, g.rates.as_ref().and_then(|r| c.rate(&r.per_sec)))),
        );
        cells.push(human_bytes(g.memory.usage_bytes));
        cells.push(g.memory.oom_kills.to_string());
        line(&mut out, &cells);
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
    fn long_non_ascii_names_are_cut_by_characters() {
        let name = format!("{}/é€😀", "ü".repeat(60));
        let cut = fit(&name, 40);
        assert_eq!(cut.chars().count(), 40);
        assert!(cut.starts_with('…') && cut.ends_with("é€😀"));
        assert_eq!(fit("short", 40), "short");
        let mut g = GroupReport::empty(&name);
        g.counts[Counter::EgressBytes] = 1;
        assert!(table(&[g], 5).contains("é€😀"));
    }

    #[test]
    fn every_column_of_the_counter_table_is_shown() {
        let mut g = GroupReport::empty("web");
        g.counts[Counter::EventsLost] = 7;
        g.counts[Counter::SyscallsKilled] = 2;
        g.counts[Counter::ConnectDenied] = 3;
        let t = table(&[g], 5);
        let (head, row) = t.split_once('\n').unwrap();
        // Cells are right-aligned under their header.
        let under = |h: &str| {
            let end = head.find(&format!(" {h} ")).unwrap() + 1 + h.len();
            row[..end].rsplit(' ').next().unwrap().to_string()
        };
        assert_eq!(under("LOST"), "7", "{t}");
        assert_eq!(under("DENIED"), "5", "killed and denied: {t}");
        for c in columns() {
            assert!(head.contains(c.header), "{}: {t}", c.header);
        }
    }
}
