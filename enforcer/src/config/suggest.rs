//! "Did you mean ...?" for misspelt names (keys, metrics, syscalls).

/// Edit distance: insertions, deletions, substitutions, and swaps of two
/// neighbouring characters each count 1 (Damerau-Levenshtein, from strsim).
fn distance(a: &str, b: &str) -> usize {
    strsim::damerau_levenshtein(a, b)
}

/// The candidate closest to `input` (ignoring case, `-` vs `_`, and a `sys_` or
/// `__NR_` prefix), if it is close enough to be a likely typo: at most one edit
/// per four characters (at least one), or `input` is the start of the candidate.
pub(crate) fn closest<'c>(
    input: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let normal = input.trim().to_ascii_lowercase().replace('-', "_");
    let normal = normal
        .strip_prefix("__nr_")
        .or_else(|| normal.strip_prefix("sys_"))
        .unwrap_or(&normal);
    let length = normal.chars().count();
    let limit = (length / 4).max(1);
    candidates
        .into_iter()
        .map(|candidate| (distance(normal, candidate), candidate))
        .filter(|&(d, candidate)| d <= limit || (length >= 3 && candidate.starts_with(normal)))
        .min_by_key(|&(d, _)| d)
        .map(|(_, candidate)| candidate)
}

/// `" (did you mean `x`?)"`, or `""`.
pub(crate) fn did_you_mean<'c>(
    input: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> String {
    closest(input, candidates)
        .map(|name| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default()
}

/// "`a`, `b` or `c`".
pub(crate) fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, head)) => format!("{} or {last}", head.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("ptrace", "ptrace"), 0);
        assert_eq!(distance("ptrce", "ptrace"), 1);
        assert_eq!(distance("ptarce", "ptrace"), 1);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let names = ["metrics", "interval", "on_exit", "audit_log", "observe"];
        assert_eq!(closest("metric", names), Some("metrics"));
        assert_eq!(closest("on-exit", names), Some("on_exit"));
        assert_eq!(closest("Interval", names), Some("interval"));
        assert_eq!(closest("auditlog", names), Some("audit_log"));
        assert_eq!(closest("colour", names), None);
        assert_eq!(closest("inter", names), Some("interval"));
        assert_eq!(closest("in", names), None);
        assert_eq!(closest("frobnicate", ["truncate"]), None);
        assert_eq!(closest("sys_ptrace", ["ptrace", "read"]), Some("ptrace"));
        assert_eq!(closest("__NR_read", ["ptrace", "read"]), Some("read"));
        assert_eq!(did_you_mean("x", names), "");
        assert_eq!(did_you_mean("observ", names), " (did you mean `observe`?)");
    }

    #[test]
    fn lists() {
        assert_eq!(one_of(&[]), "");
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
