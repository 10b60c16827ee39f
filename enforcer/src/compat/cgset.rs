//! `cgset` and `cgxset`: write parameters of groups (libcgroup 3.x
//! `cgset.c`, `cgxset.c`). cgxset adds `-1`/`-2` (the values are in cgroup
//! v1 or v2 terms) and `-i` (skip what cannot be converted), and converts
//! with libcgroup's tables (`convert`) before writing.
//!
//! Silent on success. `-r NAME=VALUE` (repeatable; an empty value is
//! refused), `--copy-from SRC` (every writable value of SRC), `-R` (the
//! group and every group below it, parent first), `-b` (accepted; enforcer
//! keeps no default systemd slice). Values are written as given, one
//! `write(2)` per line, to the file of that name: no unit or v1/v2
//! translation (that is `cgxset`'s job). Exit status and messages are
//! libcgroup's, including its exit status 0 when a `-r` names a controller
//! that is not mounted.

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::fs::{dir_subdirs, get_cgroup, modify_cgroup};
use crate::cgroup::lcg::{CgVersion, EXIT_BADARGS, Ecg, Group, SetupMode, Table};

const LONG: &[LongOpt] = &[
    long("rule", HasArg::Required, 'r'),
    long("help", HasArg::No, 'h'),
    long("copy-from", HasArg::Required, 'C'),
];

const XLONG: &[LongOpt] = &[
    long("v1", HasArg::No, '1'),
    long("v2", HasArg::No, '2'),
    long("ignore-unmappable", HasArg::No, 'i'),
    long("rule", HasArg::Required, 'r'),
    long("help", HasArg::No, 'h'),
    long("copy-from", HasArg::Required, 'C'),
];

/// cgxset's conversion: the version the values are written in (None: the
/// host's) and whether unmappable settings are skipped.
#[derive(Debug, Clone, Copy)]
struct Convert {
    version: Option<CgVersion>,
    ignore_unmappable: bool,
}

fn xusage(io: &mut Io) {
    let p = io.prog.clone();
    io.out(&format!("Usage: {p} [-r <name=value>] <cgroup_path> ...\n"));
    io.out(&format!(
        "   or: {p} --copy-from <source_cgroup_path> <cgroup_path> ...\n"
    ));
    io.out("Set the parameters of given cgroup(s)\n");
    io.out("  -1, --v1                                Provided parameters are in v1 format\n");
    io.out("  -2, --v2                                Provided parameters are in v2 format\n");
    io.out("  -i, --ignore-unmappable                 Do not return an error for settings that cannot be converted\n");
    io.out("  -r, --variable <name>                   Define parameter to set\n");
    io.out(
        "  --copy-from <source_cgroup_path>        Control group whose parameters will be copied\n",
    );
    io.out("  -b                                      Ignore default systemd delegate hierarchy\n");
    io.out("  -R                                      Recursively set variable(s) for cgroups under <cgroup_path>\n");
}

fn usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err("Wrong input parameters, ");
        io.err(&format!("try {p} --help' for more information.\n"));
        return;
    }
    io.out(&format!("Usage: {p} [-r <name=value>] <cgroup_path> ...\n"));
    io.out(&format!(
        "   or: {p} --copy-from <source_cgroup_path> <cgroup_path> ...\n"
    ));
    io.out("Set the parameters of given cgroup(s)\n");
    io.out("  -r, --variable <name>\t\t\tDefine parameter to set\n");
    io.out("  --copy-from <source_cgroup_path>\tControl group whose parameters will be copied\n");
    io.out("  -b\t\t\t\t\tIgnore default systemd delegate hierarchy\n");
    io.out("  -R\t\t\t\t\tRecursively set variable(s) for cgroups under <cgroup_path>\n");
}

/// `parse_r_flag`: NAME=VALUE with a non-empty value. The name is the first
/// `strtok(…, "=")` token, the value everything after the first `=`.
pub(crate) fn parse_r(io: &mut Io, arg: &str) -> Result<(String, String), i32> {
    let bad = |io: &mut Io| {
        let p = io.prog.clone();
        io.err(&format!("{p}: wrong parameter of option -r: {arg}\n"));
        EXIT_BADARGS
    };
    let Some((_, value)) = arg.split_once('=') else {
        return Err(bad(io));
    };
    let Some(name) = arg.split('=').find(|t| !t.is_empty()) else {
        return Err(bad(io));
    };
    if value.is_empty() {
        return Err(bad(io));
    }
    Ok((name.to_string(), value.to_string()))
}

/// `create_cgroup_from_name_value_pairs`: None after printing why.
pub(crate) fn group_from_pairs(
    io: &mut Io,
    table: &Table,
    name: &str,
    pairs: &[(String, String)],
) -> Option<Group> {
    let mut g = Group::new(name);
    for (k, v) in pairs {
        let Some((ctl, _)) = k.split_once('.') else {
            io.err(&format!("wrong -r  parameter ({k}={v})\n"));
            return None;
        };
        let ctl = ctl.split('.').next().unwrap_or(ctl);
        let Some(c) = g.get_or_add(table, ctl) else {
            io.err(&format!("controller {ctl} can't be add\n"));
            return None;
        };
        if c.add_value(k, Some(v)).is_err() {
            io.err(&format!("name-value pair {k}={v} can't be set\n"));
            return None;
        }
    }
    Some(g)
}

/// `cgroup_set_cgroup_values`: the values of `src` written into group
/// `name` (cgxset: converted to the host's versions first; a conversion
/// failure is the exit status, with no message, as in libcgroup).
fn set_values(
    io: &mut Io,
    table: &Table,
    src: &Group,
    name: &str,
    conv: Option<Convert>,
) -> Result<(), i32> {
    let mut g = Group::new(name);
    g.copy_from(src);
    if let Some(c) = conv {
        let (mut converted, r) =
            super::convert::to_disk(table, std::slice::from_ref(&g), c.version);
        if let Err(e) = r
            && (e.code != Ecg::NoVersionConvert || !c.ignore_unmappable)
        {
            return Err(e.ret());
        }
        g = converted.pop().unwrap_or_else(|| Group::new(name));
        for ctl in &mut g.controllers {
            for v in &mut ctl.values {
                v.dirty = true;
            }
        }
    }
    modify_cgroup(table, &mut g).map_err(|e| {
        let p = io.prog.clone();
        io.err(&format!("{p}: cgroup modify error: {e}\n"));
        e.ret()
    })
}

/// Group names below `name` in the hierarchy mounted at `mount`, parent
/// first, children in directory order (as fts walks them).
fn subtree(mount: &std::path::Path, name: &str) -> Vec<String> {
    let base = crate::cgroup::lcg::table::join_group(mount, name);
    let trimmed = name.trim_end_matches('/');
    crate::cgroup::lcg::fs::walk_preorder(&base)
        .into_iter()
        .map(|rel| {
            if rel.is_empty() {
                name.to_string()
            } else {
                format!("{trimmed}/{rel}")
            }
        })
        .collect()
}

/// `-R`: per controller (each hierarchy may differ below the group), the
/// group first and then every group below it.
fn set_recursive(
    io: &mut Io,
    table: &Table,
    src: &Group,
    subtree_ctl: Option<&str>,
    name: &str,
    conv: Option<Convert>,
) -> Result<(), i32> {
    if let Some(list) = subtree_ctl {
        subtree_control(io, table, list, name)?;
    }
    let unified = table.setup_mode() == SetupMode::Unified;
    let parts: Vec<Group> = if unified {
        if src.controllers.is_empty() {
            return Ok(());
        }
        vec![src.clone()]
    } else {
        src.controllers
            .iter()
            .map(|c| Group {
                name: src.name.clone(),
                controllers: vec![c.clone()],
            })
            .collect()
    };
    for part in parts {
        let Some(first) = part.controllers.first() else {
            continue;
        };
        let Some(e) = table.entry_for(&first.name) else {
            let p = io.prog.clone();
            io.err(&format!(
                "{p}: failed to walk the tree for cgroup {name} controller {}\n",
                first.name
            ));
            return Err(Ecg::Other as i32);
        };
        for g in subtree(&e.path, name) {
            set_values(io, table, &part, &g, conv)?;
        }
    }
    Ok(())
}

/// `-R -r cgroup.subtree_control=+a -b`: enable (`+`, parents first) or
/// disable (`-`, children first) each controller in every group of the
/// subtree that has subgroups.
fn subtree_control(io: &mut Io, table: &Table, list: &str, name: &str) -> Result<(), i32> {
    let Some(v2) = table.entries.iter().find(|e| e.version == CgVersion::V2) else {
        return Err(Ecg::SubsysNotMounted as i32);
    };
    for tok in list.split(' ').filter(|t| !t.is_empty()) {
        if !(tok.starts_with('+') || tok.starts_with('-')) {
            return Err(Ecg::Fail as i32);
        }
        let mut groups = subtree(&v2.path, name);
        if tok.starts_with('-') {
            groups.reverse();
        }
        for (i, g) in groups.iter().enumerate() {
            let dir = crate::cgroup::lcg::table::join_group(&v2.path, g);
            // The leaves are skipped (the group itself never is).
            if i > 0 && dir_subdirs(&dir).is_empty() {
                continue;
            }
            let mut one = Group::new(g);
            if let Some(c) = one.add_controller(table, "cgroup") {
                let _ = c.add_value("cgroup.subtree_control", Some(tok));
            }
            modify_cgroup(table, &mut one).map_err(|e| {
                let p = io.prog.clone();
                io.err(&format!("{p}: cgroup modify error: {e}\n"));
                e.ret()
            })?;
        }
    }
    Ok(())
}

/// What the options ask for.
struct Options {
    /// `-r` given (it and `--copy-from` exclude each other).
    rules: bool,
    copy: Option<String>,
    recursive: bool,
    pairs: Vec<(String, String)>,
    /// `-r cgroup.subtree_control=...`, written before the other values.
    subtree_val: Option<String>,
    conv: Option<Convert>,
    operands: Vec<String>,
}

/// The options, or the exit status when they end the program, with
/// libcgroup's messages.
fn parse(io: &mut Io, args: &[String], x: bool) -> Result<Options, i32> {
    let p = io.prog.clone();
    let mut o = Options {
        rules: false,
        copy: None,
        recursive: false,
        pairs: Vec::new(),
        subtree_val: None,
        conv: x.then_some(Convert {
            version: None,
            ignore_unmappable: false,
        }),
        operands: Vec::new(),
    };
    let mut g = if x {
        Getopt::new(&p, args, "r:h12ibR", XLONG)
    } else {
        Getopt::new(&p, args, "r:hbR", LONG)
    };
    for item in g.by_ref() {
        match item {
            Item::Opt('h', _) => {
                if x {
                    xusage(io);
                } else {
                    usage(io, true);
                }
                return Err(0);
            }
            Item::Opt(c @ ('1' | '2' | 'i'), _) => {
                if let Some(cv) = o.conv.as_mut() {
                    match c {
                        '1' => cv.version = Some(CgVersion::V1),
                        '2' => cv.version = Some(CgVersion::V2),
                        _ => cv.ignore_unmappable = true,
                    }
                }
            }
            Item::Opt('r', Some(a)) => {
                if o.copy.is_some() {
                    usage(io, false);
                    return Err(EXIT_BADARGS);
                }
                o.rules = true;
                let (k, v) = parse_r(io, &a)?;
                if k == "cgroup.subtree_control" {
                    if o.subtree_val.is_some() {
                        io.err(&format!("{p}: duplicate -r {k} option found\n"));
                        return Err(Ecg::Fail as i32);
                    }
                    o.subtree_val = Some(v);
                } else {
                    o.pairs.push((k, v));
                }
            }
            Item::Opt('C', Some(a)) => {
                if o.rules || o.copy.is_some() {
                    usage(io, false);
                    return Err(EXIT_BADARGS);
                }
                o.copy = Some(a);
            }
            Item::Opt('R', _) => o.recursive = true,
            Item::Opt('b', _) => {}
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                usage(io, false);
                return Err(EXIT_BADARGS);
            }
        }
    }
    o.operands = g.operands().to_vec();
    if o.operands.is_empty() {
        io.err(&format!("{p}: no cgroup specified\n"));
        return Err(EXIT_BADARGS);
    }
    if !o.rules && o.copy.is_none() {
        io.err(&format!("{p}: no name-value pair was set\n"));
        return Err(EXIT_BADARGS);
    }
    Ok(o)
}

/// `cgset` (`x == false`) or `cgxset`.
pub(crate) fn main(io: &mut Io, args: &[String], x: bool) -> i32 {
    let p = io.prog.clone();
    if args.is_empty() {
        if x {
            io.err(&format!(
                "Usage is {p} -r <name=value> <relative path to cgroup>\n"
            ));
            return -1;
        }
        io.err(&format!(
            "Usage is {p} -r <name=value> relative path to cgroup>\n"
        ));
        return EXIT_BADARGS;
    }
    let table = match super::mounted(io) {
        Ok(t) => t,
        Err(status) => return status,
    };
    let o = match parse(io, args, x) {
        Ok(o) => o,
        Err(status) => return status,
    };
    // libcgroup ends with 0 when the values cannot be read or made.
    let Some((src, subtree_group)) = values_to_set(io, &table, &o) else {
        return 0;
    };
    for name in &o.operands {
        let r = if o.recursive {
            set_recursive(io, &table, &src, o.subtree_val.as_deref(), name, o.conv)
        } else {
            match &subtree_group {
                Some(t) => set_values(io, &table, t, name, o.conv),
                None => Ok(()),
            }
            .and_then(|()| set_values(io, &table, &src, name, o.conv))
        };
        if let Err(code) = r {
            return code;
        }
    }
    0
}

/// The values to write: another group's (`--copy-from`) or the `-r` pairs;
/// and, not recursing, `cgroup.subtree_control` as a group of its own to
/// write first.
fn values_to_set(io: &mut Io, table: &Table, o: &Options) -> Option<(Group, Option<Group>)> {
    if let Some(from) = &o.copy {
        let mut s = Group::new(from);
        if let Err(e) = get_cgroup(table, &mut s) {
            io.err(&format!("cgroup {from} error: {e}\n"));
            return None;
        }
        return Some((s, None));
    }
    let s = group_from_pairs(io, table, "tmp", &o.pairs)?;
    let mut subtree_group = None;
    if let Some(v) = &o.subtree_val
        && !o.recursive
    {
        subtree_group = Some(group_from_pairs(
            io,
            table,
            "tmp1",
            &[("cgroup.subtree_control".into(), v.clone())],
        )?);
    }
    Some((s, subtree_group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_flag_as_libcgroup_reads_it() {
        let mut io = Io::new("cgset");
        assert_eq!(parse_r(&mut io, "a.b=1"), Ok(("a.b".into(), "1".into())));
        assert_eq!(
            parse_r(&mut io, "a.b=x=y"),
            Ok(("a.b".into(), "x=y".into()))
        );
        assert_eq!(parse_r(&mut io, "=x"), Ok(("x".into(), "x".into())));
        assert_eq!(parse_r(&mut io, "a.b="), Err(EXIT_BADARGS));
        assert_eq!(parse_r(&mut io, "a.b"), Err(EXIT_BADARGS));
        assert_eq!(parse_r(&mut io, "=="), Err(EXIT_BADARGS));
    }
}
