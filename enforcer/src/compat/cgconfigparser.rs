//! `cgconfigparser`: create the groups of cgconfig.conf files (libcgroup
//! 3.x `cgconfig.c`, `config.c`).
//!
//! `-l FILE` and `-L DIR` (its `*.conf` files, sorted) are loaded in order;
//! `-a`/`-t UID:GID` and `-d`/`-f`/`-s MODE` are the defaults for groups
//! without a `perm` block. The file is read by enforcer's cgconfig.conf
//! reader; groups are created and their values written as libcgroup does
//! (a group whose values fail is retried with its values converted between
//! cgroup v1 and v2, and if a group still fails, every group of that file is
//! removed again). A group may have several blocks (cgsnapshot writes one
//! per hierarchy). `mount` blocks are checked against what is mounted:
//! where the controller is mounted at that path already they are
//! satisfied (libcgroup tries to mount it again and fails with EBUSY, so it
//! cannot load its own snapshots on a running host); enforcer mounts no
//! hierarchies, so any other mount is refused as libcgroup's failed mount
//! is. `template` blocks are for the rules daemon.

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::log::{Level, line};
use crate::cgroup::lcg::mirror;
use crate::cgroup::lcg::ops::{DeleteFlags, Perms, create, delete};
use crate::cgroup::lcg::spec::{parse_mode, parse_uid_gid};
use crate::cgroup::lcg::{CgVersion, EXIT_BADARGS, Ecg, Group, LcgError, Table};
use crate::config::{Owner, Policy};

const LONG: &[LongOpt] = &[
    long("help", HasArg::No, 'h'),
    long("load", HasArg::Required, 'l'),
    long("load-directory", HasArg::Required, 'L'),
    long("task", HasArg::Required, 't'),
    long("admin", HasArg::Required, 'a'),
    long("dperm", HasArg::Required, 'd'),
    long("fperm", HasArg::Required, 'f'),
    long("tperm", HasArg::Required, 's'),
];

fn usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} '-h' for more information.\n"
        ));
        return;
    }
    io.out(&format!("Usage: {p} [-h] [-f mode] [-d mode] [-s mode] "));
    io.out("[-t <tuid>:<tgid>] [-a <agid>:<auid>] [-l FILE] [-L DIR] ...\n");
    io.out("Parse and load the specified cgroups configuration file\n");
    io.out("  -a <tuid>:<tgid>\t\tDefault owner of groups files and directories\n");
    io.out("  -d, --dperm=mode\t\tDefault group directory permissions\n");
    io.out("  -f, --fperm=mode\t\tDefault group file permissions\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -l, --load=FILE\t\tParse and load the cgroups configuration file\n");
    io.out("  -L, --load-directory=DIR\tParse and load the cgroups configuration files from a directory\n");
    io.out("  -s, --tperm=mode\t\tDefault tasks file permissions\n");
    io.out("  -t <tuid>:<tgid>\t\tDefault owner of the tasks file\n");
}

/// `cgroup_string_list_add_directory`: the `NAME.conf` files, sorted.
fn conf_files(dir: &str) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = e.file_type()?;
        let regular = kind.is_file() || kind.is_symlink();
        if regular
            && name.len() > 5
            && name.ends_with(".conf")
            && name.find(".conf") == Some(name.len() - 5)
        {
            out.push(format!("{dir}/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

/// A uid or gid as the config gives it: a number, or a name.
fn resolve(value: &str, user: bool) -> Option<u32> {
    let (n, _) = crate::cgroup::lcg::spec::strtol(value, 10);
    if n != 0 {
        return Some(n as u32);
    }
    if user {
        nix::unistd::User::from_name(value)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    } else {
        nix::unistd::Group::from_name(value)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    }
}

/// A name or number resolved, None when given but unknown (libcgroup then
/// drops the group and fails the parse).
fn id(v: Option<&str>, user: bool) -> Result<Option<u32>, ()> {
    match v {
        None => Ok(None),
        Some(s) => resolve(s, user).map(Some).ok_or(()),
    }
}

fn perms_of(task: Option<&Owner>, admin: Option<&Owner>, defaults: &Perms) -> Option<Perms> {
    use nix::unistd::{Gid, Uid};
    let mut p = *defaults;
    if let Some(t) = task {
        if let Some(u) = id(t.uid.as_deref(), true).ok()? {
            p.tasks_uid = Some(Uid::from_raw(u));
        }
        if let Some(g) = id(t.gid.as_deref(), false).ok()? {
            p.tasks_gid = Some(Gid::from_raw(g));
        }
        p.tperm = t.fperm.or(p.tperm);
    }
    if let Some(a) = admin {
        if let Some(u) = id(a.uid.as_deref(), true).ok()? {
            p.control_uid = Some(Uid::from_raw(u));
        }
        if let Some(g) = id(a.gid.as_deref(), false).ok()? {
            p.control_gid = Some(Gid::from_raw(g));
        }
        p.fperm = a.fperm.or(p.fperm);
        p.dperm = a.dperm.or(p.dperm);
    }
    Some(p)
}

/// What went wrong loading one file.
enum LoadError {
    /// Parsing failed (already reported): ECGCONFIGPARSEFAIL.
    Parse,
    Lcg(LcgError),
}

/// libcgroup's parse error report: bison's on stderr, its own on stdout.
fn report_parse(io: &mut Io, path: &str, text: &str, err: &crate::config::ConfigError) {
    let (line_no, token) = match err.span() {
        Some(span) => {
            let l = text
                .lines()
                .nth(span.line.saturating_sub(1) as usize)
                .unwrap_or("");
            let rest: String = l
                .chars()
                .skip(span.column.saturating_sub(1) as usize)
                .collect();
            let tok: String = match rest.chars().next() {
                Some(c) if c.is_alphanumeric() || c == '_' || c == '"' => rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !"{};=".contains(*c))
                    .collect(),
                Some(c) => c.to_string(),
                None => String::new(),
            };
            (span.line, tok)
        }
        None => (0, String::new()),
    };
    io.err(&format!(
        "error at line number {line_no} at {token}:syntax error\n"
    ));
    if let Some(m) = line(Level::Error, &format!("failed to parse file {path}")) {
        io.out(&m);
    }
}

/// A top-level block of a cgconfig.conf: its keyword and byte range.
struct Block {
    keyword: String,
    range: std::ops::Range<usize>,
}

/// The top-level blocks (`keyword [name] { ... }`), or None when the braces
/// do not balance (the reader then reports the error).
fn blocks(text: &str) -> Option<Vec<Block>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    let mut start = None;
    let mut keyword = String::new();
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    out.push(Block {
                        keyword: std::mem::take(&mut keyword),
                        range: start.take()?..i + 1,
                    });
                }
            }
            c if depth == 0 && start.is_none() && c.is_ascii_alphabetic() => {
                start = Some(i);
                let end = text[i..]
                    .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .map_or(b.len(), |e| i + e);
                keyword = text[i..end].to_string();
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (depth == 0 && start.is_none()).then_some(out)
}

/// `text` with everything outside `keep` blanked (newlines kept), so the
/// reader's line and column numbers stay those of the file.
fn masked(text: &str, keep: &[&std::ops::Range<usize>]) -> String {
    text.char_indices()
        .map(|(i, c)| {
            if c == '\n' || keep.iter().any(|r| r.contains(&i)) {
                c
            } else {
                ' '
            }
        })
        .collect()
}

/// Settings whose quoted value spans lines (cgsnapshot writes
/// `memory.oom_control` so) blanked out: libcgroup reads them but never
/// writes a multi-line value, and enforcer's reader takes one-line strings.
fn without_multiline_values(text: &str) -> String {
    let mut out: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut stmt_start = 0;
    while i < out.len() {
        match out[i] {
            '#' => {
                while i < out.len() && out[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ';' | '{' | '}' => stmt_start = i + 1,
            '"' => {
                let open = i;
                i += 1;
                while i < out.len() && out[i] != '"' {
                    i += 1;
                }
                if out[open..i.min(out.len())].contains(&'\n') {
                    let mut end = i;
                    while end < out.len() && out[end] != ';' && out[end] != '}' {
                        end += 1;
                    }
                    if end < out.len() && out[end] == ';' {
                        end += 1;
                    }
                    for c in &mut out[stmt_start..end] {
                        if *c != '\n' {
                            *c = ' ';
                        }
                    }
                    i = end;
                    stmt_start = end;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// `mount { CONTROLLER = PATH; ... }` pairs.
fn mount_pairs(block: &str) -> Vec<(String, String)> {
    let inner = block
        .split_once('{')
        .map_or("", |(_, r)| r.rsplit_once('}').map_or(r, |(l, _)| l));
    inner
        .split(';')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().trim_matches('"').to_string();
            let v = v.trim().trim_matches('"').to_string();
            (!k.is_empty()).then_some((k, v))
        })
        .collect()
}

/// The file's groups, in file order, read block by block.
fn read_groups(
    io: &mut Io,
    path: &str,
    text: &str,
) -> Result<(Policy, Vec<(String, String)>), LoadError> {
    let p = std::path::Path::new(path);
    let report = |io: &mut Io, e: &crate::config::ConfigError| {
        report_parse(io, path, text, e);
        LoadError::Parse
    };
    let Some(blocks) = blocks(text) else {
        return match crate::config::parse_cgconfig(text, p) {
            Err(e) => Err(report(io, &e)),
            Ok(pol) => Ok((pol, Vec::new())),
        };
    };
    let default = blocks
        .iter()
        .find(|b| b.keyword == "default")
        .map(|b| &b.range);
    let mut policy = Policy::default();
    let mut mounts = Vec::new();
    for b in &blocks {
        match b.keyword.as_str() {
            "group" => {
                let mut keep = vec![&b.range];
                keep.extend(default);
                match crate::config::parse_cgconfig(&masked(text, &keep), p) {
                    Ok(pol) => policy.groups.extend(pol.groups),
                    Err(e) => return Err(report(io, &e)),
                }
            }
            "mount" => mounts.extend(mount_pairs(&text[b.range.clone()])),
            _ => {
                if let Err(e) = crate::config::parse_cgconfig(&masked(text, &[&b.range]), p) {
                    return Err(report(io, &e));
                }
            }
        }
    }
    Ok((policy, mounts))
}

fn load(io: &mut Io, table: &Table, path: &str, defaults: &Perms) -> Result<(), LoadError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            if let Some(m) = line(Level::Error, &format!("failed to open file {path}")) {
                io.out(&m);
            }
            return Err(LoadError::Lcg(LcgError::os(&e)));
        }
    };
    let (policy, mounts) = read_groups(io, path, &without_multiline_values(&text))?;
    for (controller, at) in &mounts {
        let here = table.get(controller).is_some_and(|e| {
            std::path::Path::new(at) == e.path
                || e.more.iter().any(|m| m == std::path::Path::new(at))
        });
        if !here {
            if let Some(m) = line(
                Level::Error,
                &format!(
                    "cannot mount {controller} to {at}: enforcer does not mount hierarchies; mount it first"
                ),
            ) {
                io.out(&m);
            }
            return Err(LoadError::Lcg(LcgError::new(Ecg::MountFail)));
        }
    }
    let mut groups = Vec::new();
    for gs in &policy.groups {
        let mut g = Group::new(&gs.name);
        for c in &gs.controllers {
            let Some(ctl) = g.get_or_add(table, &c.name) else {
                if let Some(m) = line(Level::Error, &format!("failed to parse file {path}")) {
                    io.out(&m);
                }
                return Err(LoadError::Parse);
            };
            for s in &c.settings {
                if ctl.add_value(&s.key, Some(&s.value)).is_err() {
                    return Err(LoadError::Parse);
                }
            }
        }
        let Some(p) = perms_of(gs.perm.task.as_ref(), gs.perm.admin.as_ref(), defaults) else {
            return Err(LoadError::Parse);
        };
        groups.push((g, p));
    }
    let mut made: Vec<Group> = Vec::new();
    for (g, p) in &groups {
        let mut attempt = g.clone();
        let mut r = create(table, &mut attempt, p);
        if r.is_err() && !g.controllers.is_empty() {
            // The values may be written for the other cgroup version
            // (`convert_controller_versions`).
            let other = match g.controllers[0].version {
                CgVersion::V1 => CgVersion::V2,
                CgVersion::V2 => CgVersion::V1,
            };
            let (mut conv, cr) =
                super::convert::to_disk(table, std::slice::from_ref(g), Some(other));
            r = match (cr, conv.pop()) {
                (Ok(()), Some(mut c)) => {
                    for ctl in &mut c.controllers {
                        for v in &mut ctl.values {
                            v.dirty = true;
                        }
                    }
                    let made_it = create(table, &mut c, p);
                    if made_it.is_err()
                        && let Some(m) =
                            line(Level::Error, &format!("Failed to create cgroup {}", g.name))
                    {
                        io.out(&m);
                    }
                    made_it
                }
                (Err(e), _) => {
                    if let Some(m) = line(Level::Error, "Conversion of controller failed.") {
                        io.out(&m);
                    }
                    Err(e)
                }
                (Ok(()), None) => Err(LcgError::new(Ecg::Fail)),
            };
        }
        if let Err(e) = r {
            for m in made.iter().chain(std::iter::once(g)) {
                let _ = delete(
                    table,
                    m,
                    DeleteFlags::RECURSIVE.with(DeleteFlags::IGNORE_MIGRATION),
                );
            }
            return Err(LoadError::Lcg(e));
        }
        if !g.controllers.is_empty() {
            mirror::create(table, &g.name, p);
        }
        made.push(g.clone());
    }
    Ok(())
}

pub(crate) fn main(io: &mut Io, args: &[String]) -> i32 {
    let p = io.prog.clone();
    if args.is_empty() {
        usage(io, false);
        return EXIT_BADARGS;
    }
    let table = match super::mounted(io) {
        Ok(t) => t,
        Err(status) => return status,
    };
    let mut files: Vec<String> = Vec::new();
    let mut defaults = Perms::default();
    let mut g = Getopt::new(&p, args, "hl:L:t:a:d:f:s:", LONG);
    for item in g.by_ref() {
        match item {
            Item::Opt('h', _) => {
                usage(io, true);
                return 0;
            }
            Item::Opt('l', Some(a)) => files.push(a),
            Item::Opt('L', Some(a)) => match conf_files(&a) {
                Ok(f) => files.extend(f),
                Err(e) => {
                    io.err(&format!(
                        "{p}: cannot open {a}: {}\n",
                        crate::cgroup::lcg::error::strerror(e.raw_os_error().unwrap_or(libc::EIO))
                    ));
                    return 1;
                }
            },
            Item::Opt(c @ ('a' | 't'), Some(a)) => match parse_uid_gid(&a, &p) {
                Ok((u, gid)) if c == 'a' => {
                    defaults.control_uid = u;
                    defaults.control_gid = gid;
                }
                Ok((u, gid)) => {
                    defaults.tasks_uid = u;
                    defaults.tasks_gid = gid;
                }
                Err(m) => {
                    io.err(&format!("{m}\n"));
                    return -1;
                }
            },
            Item::Opt(c @ ('d' | 'f' | 's'), Some(a)) => match parse_mode(&a) {
                Some(m) => match c {
                    'd' => defaults.dperm = Some(m),
                    'f' => defaults.fperm = Some(m),
                    _ => defaults.tperm = Some(m),
                },
                None => {
                    io.out(&format!("{p} wrong mode format {a}\n"));
                    return -1;
                }
            },
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                usage(io, false);
                return EXIT_BADARGS;
            }
        }
    }
    if !g.operands().is_empty() {
        usage(io, false);
        return EXIT_BADARGS;
    }
    let mut error = 0;
    for f in &files {
        let r = load(io, &table, f, &defaults);
        let e = match r {
            Ok(()) => continue,
            Err(LoadError::Parse) => LcgError::new(Ecg::ConfigParseFail),
            Err(LoadError::Lcg(e)) => e,
        };
        io.err(&format!("{p}; error loading {f}: {e}\n"));
        if error == 0 {
            error = e.ret();
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_multiline_values() {
        let t = "# c\nmount {\n cpu = /x;\n}\ngroup a { cpu { cpu.shares = \"1\"; } }\ngroup a { memory { memory.oom_control=\"a 0\nb 1\"; memory.x=\"2\"; } }\n";
        let b = blocks(t).unwrap();
        let kinds: Vec<&str> = b.iter().map(|x| x.keyword.as_str()).collect();
        assert_eq!(kinds, vec!["mount", "group", "group"]);
        assert_eq!(
            mount_pairs(&t[b[0].range.clone()]),
            vec![("cpu".to_string(), "/x".to_string())]
        );
        let w = without_multiline_values(t);
        assert_eq!(w.lines().count(), t.lines().count());
        assert!(
            !w.contains("oom_control") && w.contains("memory.x=\"2\";"),
            "{w}"
        );
        assert!(blocks("group a {").is_none());
    }
}
