//! README's promises and the tests that guard them: `tests/claims.toml` must
//! account for every word of README.md, so a new promise without a test fails
//! `cargo xtask test`.
//!
//! README is split into units (a paragraph, a list item, a table row, a fenced
//! block; headings and table headers are skipped). Every entry quotes a piece of
//! one unit (whitespace-normalised substring): a `[[claim]]` names the tests that
//! fail if the promise breaks, a `[[not_a_promise]]` says why the text promises
//! nothing, an `[[untested]]` is a promise known to lack its test (who owes it).
//! Every non-punctuation character of every unit must lie in some quote, every
//! quote must still be in README, and every named test must exist.
//! `CLAIMS_SKELETON=1 cargo test -p xtask claims` prints stubs for what is missing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Registry {
    #[serde(default)]
    claim: Vec<Claim>,
    #[serde(default)]
    not_a_promise: Vec<Note>,
    #[serde(default)]
    untested: Vec<Note>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Claim {
    quote: String,
    tests: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    quote: String,
    reason: String,
}

#[derive(Debug)]
struct Unit {
    line: usize,
    kind: &'static str,
    section: String,
    text: String,
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_table_separator(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|') && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

fn is_list_item(line: &str) -> bool {
    let t = line.trim_start();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    t.starts_with("- ") || t.starts_with("* ") || (digits > 0 && t[digits..].starts_with(". "))
}

/// README's units, in order.
fn units(readme: &str) -> Vec<Unit> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut section = String::new();
    // (first line, kind, text) of the unit being gathered.
    let mut open: Option<(usize, &'static str, String)> = None;
    let mut flush = |open: &mut Option<(usize, &'static str, String)>, section: &str| {
        if let Some((line, kind, text)) = open.take() {
            let text = normalise(&text);
            if !text.is_empty() {
                out.push(Unit {
                    line,
                    kind,
                    section: section.to_string(),
                    text,
                });
            }
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        let n = i + 1;
        if t.starts_with("```") {
            flush(&mut open, &section);
            let mut body = String::new();
            i += 1;
            while i < lines.len() && !lines[i].trim().starts_with("```") {
                body.push_str(lines[i]);
                body.push('\n');
                i += 1;
            }
            open = Some((n, "fenced block", body));
            flush(&mut open, &section);
        } else if t.starts_with('#') {
            flush(&mut open, &section);
            section = t.trim_start_matches('#').trim().to_string();
        } else if t.is_empty() {
            flush(&mut open, &section);
        } else if t.starts_with('|') {
            flush(&mut open, &section);
            let header = lines.get(i + 1).is_some_and(|l| is_table_separator(l));
            if !header && !is_table_separator(line) {
                open = Some((n, "table row", line.to_string()));
                flush(&mut open, &section);
            }
        } else if is_list_item(line) {
            flush(&mut open, &section);
            let t = line.trim_start();
            let body = t.split_once(' ').map_or("", |(_, rest)| rest);
            open = Some((n, "list item", body.to_string()));
        } else {
            match open.as_mut() {
                Some((_, _, text)) => {
                    text.push(' ');
                    text.push_str(line);
                }
                None => open = Some((n, "paragraph", line.to_string())),
            }
        }
        i += 1;
    }
    flush(&mut open, &section);
    out
}

/// Characters a quote may leave out: formatting and punctuation around quotes.
fn ignorable(c: char) -> bool {
    c.is_whitespace() || ".,;:!?()[]{}|*-–—\"'`".contains(c)
}

/// Pieces of `text` no mask byte covers, trimmed, each with something besides
/// punctuation in it.
fn uncovered(text: &str, covered: &[bool]) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = None;
    for (at, _) in text.char_indices().chain([(text.len(), ' ')]) {
        let gap = at < text.len() && !covered[at];
        match (gap, start) {
            (true, None) => start = Some(at),
            (false, Some(s)) => {
                let piece = &text[s..at];
                if !piece.chars().all(ignorable) {
                    out.push(piece.trim().to_string());
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `file` (below the workspace root) has a `#[test]` function `name`.
fn has_test(
    root: &Path,
    cache: &mut HashMap<String, Option<String>>,
    file: &str,
    name: &str,
) -> bool {
    let text = cache
        .entry(file.to_string())
        .or_insert_with(|| std::fs::read_to_string(root.join(file)).ok());
    let Some(text) = text else { return false };
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().enumerate().any(|(i, l)| {
        let l = l.trim_start();
        let l = l.strip_prefix("async ").unwrap_or(l);
        let is_fn = l
            .strip_prefix("fn ")
            .and_then(|r| r.strip_prefix(name))
            .is_some_and(|r| r.starts_with('(') || r.starts_with('<'));
        is_fn
            && lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim())
                .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
                .any(|l| l.starts_with("#[test]") || l.starts_with("#[tokio::test"))
    })
}

const TEST_ROOTS: [&str; 4] = [
    "tests/tests/",
    "enforcer/src/",
    "enforcer-common/src/",
    "xtask/src/",
];

struct Report {
    problems: Vec<String>,
    skeleton: String,
    summary: String,
}

fn check(root: &Path, readme: &str, registry: &str) -> Report {
    let mut problems = Vec::new();
    let mut skeleton = String::new();
    let reg: Registry = match toml::from_str(registry) {
        Ok(r) => r,
        Err(e) => {
            return Report {
                problems: vec![format!("tests/claims.toml does not parse: {e}")],
                skeleton,
                summary: String::new(),
            };
        }
    };
    let units = units(readme);
    let mut masks: Vec<Vec<bool>> = units.iter().map(|u| vec![false; u.text.len()]).collect();
    let entries = reg
        .claim
        .iter()
        .map(|c| ("claim", &c.quote))
        .chain(
            reg.not_a_promise
                .iter()
                .map(|n| ("not_a_promise", &n.quote)),
        )
        .chain(reg.untested.iter().map(|n| ("untested", &n.quote)));
    for (kind, quote) in entries {
        let q = normalise(quote);
        if q.chars().all(ignorable) {
            problems.push(format!("a [[{kind}]] has an empty quote: {quote:?}"));
            continue;
        }
        let mut found = false;
        for (u, mask) in units.iter().zip(masks.iter_mut()) {
            for (at, _) in u.text.match_indices(&q) {
                found = true;
                mask[at..at + q.len()].iter_mut().for_each(|b| *b = true);
            }
        }
        if !found {
            problems.push(format!(
                "tests/claims.toml: this [[{kind}]] quote is no longer in README.md (no single \
                 paragraph, list item, table row or fenced block contains it, whitespace aside):\n    \
                 {q:?}\n  Fix: quote README's current wording, or remove the entry if README stopped \
                 saying it."
            ));
        }
    }
    let mut cache = HashMap::new();
    for c in &reg.claim {
        if c.tests.is_empty() {
            problems.push(format!(
                "tests/claims.toml: the [[claim]] {:?} names no test: add tests = [\"FILE::TEST\"], \
                 or make it an [[untested]] entry saying who owes the test",
                normalise(&c.quote)
            ));
        }
        for t in &c.tests {
            let known = t.split_once("::").filter(|(file, name)| {
                TEST_ROOTS.iter().any(|r| file.starts_with(r))
                    && file.ends_with(".rs")
                    && has_test(root, &mut cache, file, name)
            });
            if known.is_none() {
                problems.push(format!(
                    "tests/claims.toml: the [[claim]] {:?} names {t:?}, which is no #[test] function: \
                     write it as \"PATH::NAME\" with PATH below one of {TEST_ROOTS:?} (e.g. \
                     \"tests/tests/top.rs::NAME\") holding `#[test] fn NAME`",
                    normalise(&c.quote)
                ));
            }
        }
    }
    for n in reg.not_a_promise.iter().chain(&reg.untested) {
        if n.reason.trim().is_empty() || n.reason.contains('\n') {
            problems.push(format!(
                "tests/claims.toml: the entry {:?} needs a one-line reason",
                normalise(&n.quote)
            ));
        }
    }
    for (u, mask) in units.iter().zip(&masks) {
        for piece in uncovered(&u.text, mask) {
            problems.push(format!(
                "README.md:{} ({} in \"{}\") says what tests/claims.toml does not classify:\n    \
                 {piece:?}\n  Fix: add a [[claim]] whose quote is this text (or the part that \
                 promises) with tests = [\"tests/tests/FILE.rs::TEST\"] naming a test that fails \
                 if the promise breaks, or a [[not_a_promise]] with the quote and a one-line \
                 reason (explanation, how-to, an example's setup, a pointer elsewhere).",
                u.line, u.kind, u.section
            ));
            let _ = writeln!(
                skeleton,
                "\n# README.md:{} ({}, \"{}\")\n[[claim]]\nquote = {}\ntests = []",
                u.line,
                u.kind,
                u.section,
                toml_string(&piece)
            );
        }
    }
    let summary = format!(
        "README.md: {} units; tests/claims.toml: {} claims naming {} tests, {} not a promise, {} untested",
        units.len(),
        reg.claim.len(),
        reg.claim.iter().map(|c| c.tests.len()).sum::<usize>(),
        reg.not_a_promise.len(),
        reg.untested.len()
    );
    Report {
        problems,
        skeleton,
        summary,
    }
}

#[test]
fn every_readme_promise_names_a_test_that_exists() {
    let root = crate::workspace::workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let registry =
        std::fs::read_to_string(root.join("tests/claims.toml")).expect("tests/claims.toml");
    let report = check(&root, &readme, &registry);
    eprintln!("{}", report.summary);
    if std::env::var_os("CLAIMS_SKELETON").is_some() {
        println!("{}", report.skeleton);
    }
    let reg: Option<Registry> = toml::from_str(&registry).ok();
    for n in reg.iter().flat_map(|r| &r.untested) {
        eprintln!(
            "untested README promise: {:?} ({})",
            normalise(&n.quote),
            n.reason
        );
    }
    assert!(
        report.problems.is_empty(),
        "{} problem(s) between README.md and tests/claims.toml:\n\n{}\n",
        report.problems.len(),
        report.problems.join("\n\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const README: &str = "# T\n\nIntro line one\nline two.\n\n```sh\nrun x   # prints y\n```\n\n\
        | a | b |\n|---|---|\n| r1 | yes |\n\n- item one\n  goes on.\n- item two\n";

    #[test]
    fn units_are_paragraphs_items_rows_and_blocks_without_headings() {
        let u = units(README);
        let got: Vec<(usize, &str, &str)> = u
            .iter()
            .map(|u| (u.line, u.kind, u.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (3, "paragraph", "Intro line one line two."),
                (6, "fenced block", "run x # prints y"),
                (12, "table row", "| r1 | yes |"),
                (14, "list item", "item one goes on."),
                (16, "list item", "item two"),
            ]
        );
    }

    #[test]
    fn uncovered_new_text_stale_quotes_and_missing_tests_are_each_reported() {
        let root = crate::workspace::workspace_root();
        let reg = r#"
            [[claim]]
            quote = "Intro line one line two"
            tests = ["xtask/src/claims.rs::units_are_paragraphs_items_rows_and_blocks_without_headings"]
            [[not_a_promise]]
            quote = "run x   # prints y"
            reason = "example"
            [[not_a_promise]]
            quote = "| r1 | yes |"
            reason = "example"
            [[claim]]
            quote = "item one goes on"
            tests = ["tests/tests/top.rs::no_such_test"]
            [[untested]]
            quote = "gone from README"
            reason = "x"
        "#;
        let r = check(&root, README, reg);
        let all = r.problems.join("\n");
        assert_eq!(r.problems.len(), 3, "{all}");
        assert!(
            all.contains("README.md:16 (list item in \"T\")") && all.contains("\"item two\""),
            "{all}"
        );
        assert!(
            all.contains("\"gone from README\"") && all.contains("no longer in README"),
            "{all}"
        );
        assert!(
            all.contains("no_such_test") && all.contains("no #[test] function"),
            "{all}"
        );
        assert!(
            r.skeleton.contains("quote = \"item two\""),
            "{}",
            r.skeleton
        );
    }
}
