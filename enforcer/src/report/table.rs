//! The human table of `enforcer stats` and the agent's live summary.

use std::fmt::Write as _;

use crate::collect::GroupReport;
use crate::units::human_bytes;

fn rate(bytes_per_sec: f64) -> String {
    if bytes_per_sec < 1.0 {
        "-".into()
    } else {
        format!("{}/s", human_bytes(bytes_per_sec as u64))
    }
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

/// Busiest groups first (by traffic then syscalls), at most `limit` rows.
pub fn table(groups: &[GroupReport], limit: usize) -> String {
    let mut rows: Vec<&GroupReport> = groups.iter().collect();
    rows.sort_by_key(|g| {
        std::cmp::Reverse((g.net.egress_bytes + g.net.ingress_bytes, g.syscalls.total))
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>10} {:>10} {:>11} {:>11} {:>7} {:>10} {:>10} {:>4} {:>7} {:>8}",
        "GROUP",
        "EGRESS",
        "INGRESS",
        "EGRESS/s",
        "INGRESS/s",
        "CONN",
        "SYSCALLS",
        "MEMORY",
        "OOM",
        "DENIED",
        "DROPPED"
    );
    for g in rows.iter().take(limit) {
        let label = fit(&g.group, 40);
        let (er, ir) = g
            .rates
            .as_ref()
            .map(|r| (rate(r.egress_bytes_per_sec), rate(r.ingress_bytes_per_sec)))
            .unwrap_or_else(|| ("-".into(), "-".into()));
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>10} {:>11} {:>11} {:>7} {:>10} {:>10} {:>4} {:>7} {:>8}",
            label,
            human_bytes(g.net.egress_bytes),
            human_bytes(g.net.ingress_bytes),
            er,
            ir,
            g.net.connect_attempts,
            g.syscalls.total,
            human_bytes(g.memory.usage_bytes),
            g.memory.oom_kills,
            g.enforcement.connect_denied
                + g.enforcement.bind_denied
                + g.enforcement.sendmsg_denied
                + g.enforcement.syscalls_denied
                + g.enforcement.syscalls_killed,
            g.enforcement.egress_dropped_packets + g.enforcement.ingress_dropped_packets
        );
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
        g.net.egress_bytes = 1;
        assert!(table(&[g], 5).contains("é€😀"));
    }
}
