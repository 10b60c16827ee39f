//! `lscgroup` and `lssubsys`: list groups and controllers (libcgroup 3.x
//! `lscgroup.c`, `lssubsys.c`).
//!
//! lscgroup walks each mounted hierarchy (controllers that share a mount
//! are listed together, `cpu,cpuacct:/`), groups in directory order, parent
//! first; with specs it lists the first hierarchy holding one of a spec's
//! controllers. The cgroup2 mirror of a hybrid host is not a libcgroup
//! hierarchy (its cgroup2 mount has no controllers) and is not listed.
//!
//! lssubsys lists the v1 hierarchies of `/proc/cgroups` ("currently
//! supported on cgroups v1 only", as its usage says). libcgroup 3.2 (and
//! 2.0) stops with exit status 82 and no output on any host where
//! `/proc/cgroups` names a controller that nothing mounts (net_cls,
//! perf_event, … on a typical hybrid host), because it asks each such
//! controller's version, and would otherwise append every cgroup2
//! controller to every v1 hierarchy's line; here an unmounted controller is
//! simply in no hierarchy and cgroup2 controllers in none of the v1 ones,
//! so the tool prints what its man page describes.

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::spec::{Spec, parse_spec};
use crate::cgroup::lcg::{CgVersion, EXIT_BADARGS, Ecg, LcgError, Table};

const LS_LONG: &[LongOpt] = &[
    long("help", HasArg::No, 'h'),
    long("group", HasArg::Required, 'g'),
];

fn ls_usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} -h' for more information.\n"
        ));
        return;
    }
    io.out(&format!(
        "Usage: {p} [-h] [[-g] <controllers>:<path>] [...]\n"
    ));
    io.out("List all cgroups\n");
    io.out("  -g <controllers>:<path>\tControl group to be displayed (-g is optional)\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -b\t\t\t\tIgnore default systemd delegate hierarchy\n");
    io.out("(Note: currently supported on cgroups v1 only)\n");
}

/// `cg_build_path(name)` for a walk: the mount, the name without a leading
/// slash, and a trailing slash unless the name ends in one.
fn walk_root(mount: &std::path::Path, name: &str) -> String {
    let pref = format!("{}/", mount.display());
    let suf = name.strip_prefix('/').unwrap_or(name);
    if name.ends_with('/') || (name.is_empty() && pref.ends_with('/')) {
        format!("{pref}{suf}")
    } else {
        format!("{pref}{suf}/")
    }
}

/// `display_controller_data`: the groups under `input` in one hierarchy
/// (enforcer's cgroup2 mirrors left out).
fn display(io: &mut Io, table: &Table, mount: &std::path::Path, input: &str, label: &str) {
    let root = walk_root(mount, input);
    let cgrp_dir = root.trim_end_matches('/');
    let input_dir = input.trim_end_matches('/');
    let cut = cgrp_dir.len().saturating_sub(input_dir.len());
    let print = |io: &mut Io, full: &str| {
        let rest = full.get(cut..).unwrap_or("");
        if rest.starts_with('/') {
            io.out(&format!("{label}:{rest}\n"));
        } else {
            io.out(&format!("{label}:/{rest}\n"));
        }
    };
    let root_path = std::path::Path::new(&root);
    if !root_path.is_dir() || table.is_mirror(root_path) {
        return;
    }
    print(io, &root);
    fn rec(io: &mut Io, table: &Table, dir: &str, print: &dyn Fn(&mut Io, &str)) {
        let base = dir.trim_end_matches('/');
        for d in crate::cgroup::lcg::fs::dir_subdirs(std::path::Path::new(dir)) {
            let child = format!("{base}/{d}");
            if table.is_mirror(std::path::Path::new(&child)) {
                continue;
            }
            print(io, &child);
            rec(io, table, &child, print);
        }
    }
    rec(io, table, &root, &print);
}

/// Hierarchies as `cgroup_get_controller_begin/next` shows them: (mount,
/// first controller, all controllers joined by commas).
fn hierarchies(table: &Table) -> Vec<(std::path::PathBuf, Vec<String>)> {
    let mut out: Vec<(std::path::PathBuf, Vec<String>)> = Vec::new();
    for e in table.controllers() {
        match out.last_mut() {
            Some((p, names)) if *p == e.path => names.push(e.name.clone()),
            _ => out.push((e.path.clone(), vec![e.name.clone()])),
        }
    }
    out
}

/// `print_cgroup`: Err(ECGEOF) when no hierarchy has the spec's controllers.
fn print_spec(io: &mut Io, table: &Table, spec: Option<&Spec>) -> Result<(), Ecg> {
    let mut printed = false;
    for (mount, names) in hierarchies(table) {
        let wanted = match spec {
            None => true,
            Some(s) => names.iter().any(|n| s.controllers.contains(n)),
        };
        if !wanted {
            continue;
        }
        let path = spec.map_or("", |s| s.path.as_str());
        display(io, table, &mount, path, &names.join(","));
        printed = true;
        if spec.is_some() {
            break;
        }
    }
    if printed { Ok(()) } else { Err(Ecg::Eof) }
}

pub(crate) fn lscgroup_main(io: &mut Io, args: &[String]) -> i32 {
    let p = io.prog.clone();
    let mut specs = Vec::new();
    let mut g = Getopt::new(&p, args, "hg:b", LS_LONG);
    for item in g.by_ref() {
        match item {
            Item::Opt('h', _) => {
                ls_usage(io, true);
                return 0;
            }
            Item::Opt('g', Some(a)) => match parse_spec(&a) {
                Some(s) => specs.push(s),
                None => {
                    io.err(&format!(
                        "{p}: cgroup controller and path parsing failed ({a})\n"
                    ));
                    return -1;
                }
            },
            Item::Opt('b', _) => {}
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                ls_usage(io, false);
                return EXIT_BADARGS;
            }
        }
    }
    let table = match super::mounted(io) {
        Ok(t) => t,
        Err(status) => return status,
    };
    for a in g.operands() {
        match parse_spec(a) {
            Some(s) => specs.push(s),
            None => {
                io.err(&format!(
                    "{p}: cgroup controller an path parsing failed ({a})\n"
                ));
                return -1;
            }
        }
    }
    if specs.is_empty() {
        let _ = print_spec(io, &table, None);
        return 0;
    }
    let mut final_ret = 0;
    for s in &specs {
        if print_spec(io, &table, Some(s)).is_err() {
            final_ret = Ecg::Fail as i32;
            let first = s.controllers.first().map_or("(null)", String::as_str);
            io.err(&format!(
                "{p}: cannot find group {first}..:{}: {}\n",
                s.path,
                LcgError::new(Ecg::Fail)
            ));
            break;
        }
    }
    final_ret
}

const SUBSYS_LONG: &[LongOpt] = &[
    long("help", HasArg::No, 'h'),
    long("mount-points", HasArg::No, 'm'),
    long("all-mount-points", HasArg::No, 'M'),
    long("all", HasArg::No, 'a'),
    long("hierarchies", HasArg::No, 'i'),
];

fn subsys_usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} -h' for more information.\n"
        ));
        return;
    }
    io.out(&format!("Usage: {p} [-i] [-m] [-M] [controller] [...]\n"));
    io.out(&format!("   or: {p} [-a] [-i] [-m] [-M]\n"));
    io.out("List information about given controller(s) If no controller is set list information about all mounted controllers.\n");
    io.out(
        "  -a, --all\t\t\tDisplay information about all controllers (including not mounted ones)\n",
    );
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -i, --hierarchies\t\tDisplay information about hierarchies\n");
    io.out("  -m, --mount-points\t\tDisplay mount points\n");
    io.out("  -M, --all-mount-points\tDisplay all mount points\n");
    io.out("(Note: currently supported on cgroups v1 only)\n");
}

pub(crate) fn lssubsys_main(io: &mut Io, args: &[String]) -> i32 {
    let p = io.prog.clone();
    let (mut mount, mut all_mounts, mut all, mut hier) = (false, false, false, false);
    let mut g = Getopt::new(&p, args, "mMhai", SUBSYS_LONG);
    for item in g.by_ref() {
        match item {
            Item::Opt('h', _) => {
                subsys_usage(io, true);
                return 0;
            }
            Item::Opt('m', _) => mount = true,
            Item::Opt('M', _) => {
                mount = true;
                all_mounts = true;
            }
            Item::Opt('a', _) => all = true,
            Item::Opt('i', _) => hier = true,
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                subsys_usage(io, false);
                return EXIT_BADARGS;
            }
        }
    }
    let mut wanted: Vec<String> = g.operands().to_vec();
    if wanted.len() >= 99 {
        io.err("Warning: too many parameters\n");
        wanted.truncate(99);
    }
    let listed = !wanted.is_empty();
    let table = Table::discover();
    let mut h_list: Vec<i32> = Vec::new();
    for c in &table.proc_cgroups {
        if c.hierarchy == 0 && all {
            io.out(&format!("{}\n", c.name));
        }
        let on_list = wanted.contains(&c.name);
        if c.hierarchy != 0 && (all || !listed || on_list) && !h_list.contains(&c.hierarchy) {
            h_list.push(c.hierarchy);
        }
    }
    for h in h_list {
        let names: Vec<&str> = table
            .proc_cgroups
            .iter()
            .filter(|c| {
                table
                    .get(&c.name)
                    .is_some_and(|e| e.version == CgVersion::V1 && c.hierarchy == h)
            })
            .map(|c| c.name.as_str())
            .collect();
        let Some(first) = names.first() else { continue };
        let joined = names.join(",");
        if !mount {
            if hier {
                io.out(&format!("{joined} {h}\n"));
            } else {
                io.out(&format!("{joined}\n"));
            }
            continue;
        }
        if let Some(e) = table.get(first) {
            io.out(&format!("{joined} {}\n", e.path.display()));
            if all_mounts {
                for m in &e.more {
                    io.out(&format!("{joined} {}\n", m.display()));
                }
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_roots_follow_cg_concat_path() {
        let m = std::path::Path::new("/sys/fs/cgroup/cpu");
        assert_eq!(walk_root(m, ""), "/sys/fs/cgroup/cpu/");
        assert_eq!(walk_root(m, "/"), "/sys/fs/cgroup/cpu/");
        assert_eq!(walk_root(m, "a"), "/sys/fs/cgroup/cpu/a/");
        assert_eq!(walk_root(m, "/a"), "/sys/fs/cgroup/cpu/a/");
        assert_eq!(walk_root(m, "a/"), "/sys/fs/cgroup/cpu/a/");
    }
}
