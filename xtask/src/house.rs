//! The house plan, checked (README, "Architecture: the layers"): enforcer's
//! modules sit in layers, each importing only its own layer or the ones below;
//! no two modules import each other; no product function is over 120 lines.
//!
//! Read as text, as the import graph is drawn: `crate::NAME` in the product
//! code of each top-level module of `enforcer/src` (test files and
//! `#[cfg(test)]` items left out, comments too). A new top-level module must be
//! given its layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::workspace::workspace_root;

/// Bottom first. The names are `enforcer/src`'s top-level modules.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "words",
        &["words", "units", "arch", "escape", "trust", "logging"],
    ),
    ("mechanisms", &["bpf", "cgroup", "counters"]),
    ("config", &["config"]),
    ("plan", &["plan"]),
    (
        "loops and reports",
        &["classify", "collect", "enforce", "control", "report"],
    ),
    (
        "front ends",
        &[
            "agent", "top", "compat", "cli", "doctor", "events", "fuzzing",
        ],
    ),
];

/// The most lines a product function may have, its signature and closing
/// brace included.
const MAX_FUNCTION_LINES: usize = 120;

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Whether a whole file is test code by its name.
fn is_test_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name == "tests.rs"
        || name == "proptests.rs"
        || name.ends_with("_tests.rs")
        || p.components().any(|c| c.as_os_str() == "tests")
}

/// A line without its `//` comment and with its string and character
/// literals emptied, so that what is left can be searched for paths and
/// braces.
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => break,
            '"' => {
                out.push('"');
                while let Some(s) = chars.next() {
                    match s {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push('"');
            }
            '\'' => {
                // A character literal ('{', '\n', '\''), or a lifetime.
                let rest: String = chars.clone().take(3).collect();
                let mut it = rest.chars();
                match (it.next(), it.next(), it.next()) {
                    (Some('\\'), Some(_), Some('\'')) => {
                        chars.nth(2);
                        out.push_str("' '");
                    }
                    (Some(ch), Some('\''), _) if ch != '\\' => {
                        chars.nth(1);
                        out.push_str("' '");
                    }
                    _ => out.push('\''),
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The product lines of a file: each line's code (see [`code_of`]), with
/// every `#[cfg(test)]` item blanked (a `mod x;` line, or a braced item
/// to its closing brace). Line numbers are kept.
fn product_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(code_of).collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "#[cfg(test)]" {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 1;
        let mut depth = 0i64;
        let mut opened = false;
        while j < lines.len() {
            let l = &lines[j];
            if !opened && l.trim_end().ends_with(';') && !l.contains('{') {
                break;
            }
            depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
            opened |= l.contains('{');
            if opened && depth <= 0 {
                break;
            }
            j += 1;
        }
        let end = j.min(lines.len() - 1);
        for l in &mut lines[start..=end] {
            l.clear();
        }
        i = j + 1;
    }
    lines
}

/// The top-level modules a module's product code names as `crate::NAME`
/// (grouped `crate::{a, b::c}` too).
fn imports(lines: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in lines {
        let mut rest = l.as_str();
        while let Some(at) = rest.find("crate::") {
            // `$crate::` is a macro's own crate, and `foo_crate::` another.
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c == '$' || c == '_' || c.is_alphanumeric()) {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                for part in inner.split(',') {
                    let name = part.trim().split("::").next().unwrap_or_default();
                    if !name.is_empty() {
                        out.insert(name.to_string());
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Each top-level module of enforcer/src with the modules its product code
/// imports (itself left out).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace_root().join("enforcer/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let rel = f.strip_prefix(&src).unwrap_or(f);
        let first = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let mut used = imports(&product_lines(&text));
        used.remove(&module);
        graph.entry(module).or_default().extend(used);
    }
    graph
}

/// Functions of the product crates longer than the bound: "path:line name
/// (N lines)".
fn long_functions(roots: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    for r in roots {
        rust_files(&workspace_root().join(r), &mut files);
    }
    let mut long = Vec::new();
    for f in files.iter().filter(|f| !is_test_file(f)) {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let lines = product_lines(&text);
        for (i, l) in lines.iter().enumerate() {
            let Some(name) = fn_name(l) else { continue };
            let mut depth = 0i64;
            let mut opened = false;
            let mut end = None;
            for (j, m) in lines.iter().enumerate().skip(i) {
                if !opened && m.contains(';') && !m.contains('{') {
                    break;
                }
                depth += m.matches('{').count() as i64 - m.matches('}').count() as i64;
                opened |= m.contains('{');
                if opened && depth <= 0 {
                    end = Some(j);
                    break;
                }
            }
            if let Some(end) = end {
                let n = end - i + 1;
                if n > MAX_FUNCTION_LINES {
                    let rel = f.strip_prefix(workspace_root()).unwrap_or(f);
                    long.push(format!("{}:{} {name} ({n} lines)", rel.display(), i + 1));
                }
            }
        }
    }
    long
}

/// The name of the function a line declares, if it does.
fn fn_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    loop {
        let w = words.next()?;
        let qualifier = w.starts_with("pub")
            || matches!(
                w,
                "async" | "const" | "unsafe" | "extern" | "\"C\"" | "\"\""
            );
        if w == "fn" {
            let name = words.next()?;
            let end = name
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(name.len());
            return Some(&name[..end]).filter(|n| !n.is_empty());
        }
        if !qualifier {
            return None;
        }
    }
}

#[test]
fn modules_import_only_their_own_layer_or_below_and_never_each_other() {
    let graph = import_graph();
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(mine) = layer_of(module) else {
            wrong.push(format!(
                "`{module}` has no layer: add it to LAYERS in xtask/src/house.rs and to \
                 README's table"
            ));
            continue;
        };
        for u in used {
            match layer_of(u) {
                Some(theirs) if theirs > mine => wrong.push(format!(
                    "`{module}` ({}) imports `{u}` ({}), a layer above it",
                    LAYERS[mine].0, LAYERS[theirs].0
                )),
                _ => {}
            }
            if u < module && graph.get(u).is_some_and(|back| back.contains(module)) {
                wrong.push(format!("`{module}` and `{u}` import each other"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The graph was read at all: the agent stands on the plan.
    assert!(graph.get("agent").is_some_and(|a| a.contains("plan")));
}

#[test]
fn no_product_function_is_over_120_lines() {
    let long = long_functions(&["enforcer/src", "enforcer-common/src", "enforcer-ebpf/src"]);
    assert!(
        long.is_empty(),
        "split these by purpose (README, \"Architecture: the layers\"):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_readers_see_what_they_must() {
    // A function of 121 lines is found; one of 120 is not.
    let body = |n: usize| {
        let mut t = String::from("pub(crate) fn f() {\n");
        for _ in 0..n - 2 {
            t.push_str("    let s = \"}\"; let c = '{';\n");
        }
        t.push_str("}\n");
        t
    };
    let dir = std::env::temp_dir().join(format!("house-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("long.rs"), body(121)).unwrap();
    std::fs::write(src.join("short.rs"), body(120)).unwrap();
    // An absolute root: joined to the workspace's, it stays itself.
    let found = long_functions(&[src.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("long.rs:1 f (121 lines)"), "{found:?}");
    // Test items and comments are not product code; grouped imports count.
    let lines = product_lines(
        "use crate::{plan::Plan, bpf};\n// crate::agent\n#[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n$crate::words\n",
    );
    let found = imports(&lines);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["bpf", "plan"],
        "{lines:?}"
    );
}

#[test]
fn readmes_table_of_layers_is_the_one_checked() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("### Architecture: the layers")
        .nth(1)
        .expect("README has the section \"Architecture: the layers\"");
    let rows: Vec<(String, Vec<String>)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| layer |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let modules = cells
                .get(2)
                .unwrap_or(&"")
                .split(',')
                .map(|m| m.trim().trim_matches('`').to_string())
                .collect();
            (cells.get(1).unwrap_or(&"").to_string(), modules)
        })
        .collect();
    let checked: Vec<(String, Vec<String>)> = LAYERS
        .iter()
        .map(|(name, ms)| (name.to_string(), ms.iter().map(|m| m.to_string()).collect()))
        .collect();
    assert_eq!(
        rows, checked,
        "README's table and LAYERS in xtask/src/house.rs"
    );
}
