//! `cgsnapshot`: print the current groups as a cgconfig.conf (libcgroup 3.x
//! `cgsnapshot.c`), which `cgconfigparser -l` reads back.
//!
//! `-s` silences the per-variable warnings, `-b FILE`/`-w FILE` set the
//! deny list (default `/etc/cgsnapshot_denylist.conf`, which must exist, as
//! in libcgroup) and allow list, `-t` keeps only allow-listed variables,
//! `-f FILE` writes to a file; operands limit the controllers. Only
//! variables writable in the hierarchy's root are written; `devices.list`
//! becomes `devices.deny`/`devices.allow`.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::fs::{get_cgroup, walk_preorder};
use crate::cgroup::lcg::{EXIT_BADARGS, Ecg, Group, Table};

const DENYLIST: &str = "/etc/cgsnapshot_denylist.conf";

const LONG: &[LongOpt] = &[
    long("help", HasArg::No, 'h'),
    long("silent", HasArg::No, 's'),
    long("denylist", HasArg::Required, 'b'),
    long("allowlist", HasArg::Required, 'w'),
    long("strict", HasArg::No, 't'),
    long("file", HasArg::Required, 'f'),
];

fn usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} -h' for more information.\n"
        ));
        return;
    }
    io.out(&format!(
        "Usage: {p} [-h] [-s] [-b FILE] [-w FILE] [-f FILE] [controller] [...]\n"
    ));
    io.out("Generate the configuration file for given controllers\n");
    io.out(&format!(
        "  -b, --denylist=FILE\t\tSet the denylist configuration file (default {DENYLIST})\n"
    ));
    io.out("  -f, --file=FILE\t\tRedirect the output to output_file\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -s, --silent\t\t\tIgnore all warnings\n");
    io.out("  -t, --strict\t\t\tDon't show variables which are not on the allowlist\n");
    io.out(
        "  -w, --allowlist=FILE\t\tSet the allowlist configuration file (don't used by default)\n",
    );
}

/// `load_list`: the first word of each line not starting with `#`.
fn load_list(io: &mut Io, path: &str) -> Result<Vec<String>, ()> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t
            .lines()
            .map(|l| l.trim_start_matches([' ', '\n']))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()),
        Err(e) => {
            io.err(&format!(
                "ERROR: Failed to open file {path}: {}\n",
                crate::cgroup::lcg::error::strerror(e.raw_os_error().unwrap_or(libc::EIO))
            ));
            Err(())
        }
    }
}

struct Opts {
    silent: bool,
    strict: bool,
    deny: Vec<String>,
    allow: Vec<String>,
    wanted: Vec<String>,
}

fn user(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

fn group(gid: u32) -> Option<String> {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

/// `display_permissions`: a perm block when the directory or its tasks file
/// is not root's.
fn permissions(out: &mut String, io: &mut Io, dir: &Path, tasks: &Path) -> Result<(), ()> {
    let Ok(a) = std::fs::metadata(dir) else {
        io.err(&format!(
            "ERROR: can't read statistics about {}\n",
            dir.display()
        ));
        return Err(());
    };
    let Ok(t) = std::fs::metadata(tasks) else {
        io.err(&format!(
            "ERROR: can't read statistics about {}\n",
            tasks.display()
        ));
        return Err(());
    };
    if a.uid() == 0 && a.gid() == 0 && t.uid() == 0 && t.gid() == 0 {
        return Ok(());
    }
    out.push_str("\tperm {\n");
    let names = |u: u32, g: u32, io: &mut Io, out: &mut String| -> Result<(String, String), ()> {
        let Some(un) = user(u) else {
            io.err(&format!("ERROR: can't get {u} user name\n"));
            out.push_str("}\n}\n");
            return Err(());
        };
        let Some(gn) = group(g) else {
            io.err(&format!("ERROR: can't get {g} group name\n"));
            out.push_str("}\n}\n");
            return Err(());
        };
        Ok((un, gn))
    };
    let (au, ag) = names(a.uid(), a.gid(), io, out)?;
    out.push_str(&format!(
        "\t\tadmin {{\n\t\t\tuid = {au};\n\t\t\tgid = {ag};\n\t\t}}\n"
    ));
    let (tu, tg) = names(t.uid(), t.gid(), io, out)?;
    out.push_str(&format!(
        "\t\ttask {{\n\t\t\ttuid = {tu};\n\t\t\ttgid = {tg};\n\t\t}}\n"
    ));
    out.push_str("\t}\n");
    Ok(())
}

/// One hierarchy being written: its controllers and root directory, and
/// whether the group is its first (only that one's variables are warned of).
struct Hier<'a> {
    ctrls: &'a [String],
    root: &'a Path,
    first: bool,
}

/// `display_cgroup_data`: one `group NAME { … }` for the controllers of one
/// hierarchy.
fn group_block(
    out: &mut String,
    io: &mut Io,
    table: &Table,
    g: &Group,
    h: &Hier<'_>,
    o: &Opts,
) -> i32 {
    let (ctrls, root, first) = (h.ctrls, h.root, h.first);
    let start = out.len();
    out.push_str(&format!("group {} {{\n", g.name));
    let mut ret = 0;
    for c in ctrls {
        let Some(e) = table.entry_for(c) else {
            continue;
        };
        let dir = crate::cgroup::lcg::table::join_group(&e.path, &g.name);
        let tasks = dir.join(match e.version {
            crate::cgroup::lcg::CgVersion::V1 => "tasks",
            crate::cgroup::lcg::CgVersion::V2 => "cgroup.procs",
        });
        // A group removed since the walk listed it (a busy host creates and
        // removes groups all the time) is left out, not an error.
        if !dir.exists() {
            out.truncate(start);
            return 0;
        }
        if permissions(out, io, &dir, &tasks).is_err() {
            return -1;
        }
        let Some(ctl) = g.controller(c) else {
            io.out(&format!(
                "cannot find controller '{c}' in group '{}'\n",
                g.name
            ));
            ret = -1;
            continue;
        };
        if c.starts_with("name=") {
            out.push_str(&format!("\t\"{c}\" {{\n"));
        } else {
            out.push_str(&format!("\t{c} {{\n"));
        }
        for v in &ctl.values {
            let name = v.name.as_str();
            if let Ok(md) = std::fs::metadata(root.join(name))
                && md.mode() & 0o200 == 0
                && name != "devices.list"
            {
                continue;
            }
            let allowed = o.allow.iter().any(|a| a == name);
            if o.deny.iter().any(|d| d == name) || (!allowed && o.strict) {
                continue;
            }
            if !allowed && !o.silent && first {
                io.err(&format!(
                    "WARNING: variable {name} is neither deny nor allow list\n"
                ));
            }
            if name == "devices.deny" || name == "devices.allow" {
                continue;
            }
            let mut out_name = name;
            if name == "devices.list" {
                out_name = "devices.allow";
                out.push_str("\t\tdevices.deny=\"a *:* rwm\";\n");
            }
            out.push_str(&format!("\t\t{out_name}=\"{}\";\n", v.value));
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n\n");
    ret
}

/// The options and the output file, or the exit status when they end the
/// program (`-h`, a bad option, a file or list that cannot be read).
fn parse(io: &mut Io, args: &[String]) -> Result<(Opts, Option<std::fs::File>), i32> {
    let p = io.prog.clone();
    let mut o = Opts {
        silent: false,
        strict: false,
        deny: Vec::new(),
        allow: Vec::new(),
        wanted: Vec::new(),
    };
    let (mut deny_file, mut allow_file, mut out_file) = (None, None, None);
    let mut g = Getopt::new(&p, args, "hsb:w:tf:", LONG);
    for item in g.by_ref() {
        match item {
            Item::Opt('h', _) => {
                usage(io, true);
                return Err(0);
            }
            Item::Opt('s', _) => o.silent = true,
            Item::Opt('b', Some(a)) => deny_file = Some(a),
            Item::Opt('w', Some(a)) => allow_file = Some(a),
            Item::Opt('t', _) => o.strict = true,
            Item::Opt('f', Some(a)) => match std::fs::File::create(&a) {
                Ok(f) => out_file = Some(f),
                Err(_) => {
                    io.err(&format!("{p}: Failed to open file {a}\n"));
                    return Err(Ecg::Other as i32);
                }
            },
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                usage(io, false);
                return Err(EXIT_BADARGS);
            }
        }
    }
    o.wanted = g.operands().to_vec();
    o.deny = load_list(io, deny_file.as_deref().unwrap_or(DENYLIST)).map_err(|()| EXIT_BADARGS)?;
    if let Some(w) = &allow_file {
        o.allow = load_list(io, w).map_err(|()| EXIT_BADARGS)?;
    }
    Ok((o, out_file))
}

pub(crate) fn main(io: &mut Io, args: &[String]) -> i32 {
    let (o, out_file) = match parse(io, args) {
        Ok(parsed) => parsed,
        Err(status) => return status,
    };
    let mut out = String::from("# Configuration file generated by cgsnapshot\n");
    let table = Table::discover();
    let mut ret = 0;
    if !table.is_empty() {
        mount_section(&mut out, io, &table, &o);
        ret = group_sections(&mut out, io, &table, &o);
    }
    match out_file {
        Some(mut f) => {
            let _ = f.write_all(out.as_bytes());
        }
        None => io.out(&out),
    }
    ret
}

/// The mount section: attached controllers, then named hierarchies (only
/// the controllers asked for, when some were).
fn mount_section(out: &mut String, io: &mut Io, table: &Table, o: &Opts) {
    let listed = !o.wanted.is_empty();
    out.push_str("mount {\n");
    let mounted = |out: &mut String, io: &mut Io, name: &str| {
        if listed && !o.wanted.iter().any(|w| w == name) {
            return;
        }
        match table.get(name) {
            Some(e) => {
                for m in std::iter::once(&e.path).chain(&e.more) {
                    if name.starts_with("name=") {
                        out.push_str(&format!("\t\"{name}\" = {};\n", m.display()));
                    } else {
                        out.push_str(&format!("\t{name} = {};\n", m.display()));
                    }
                }
            }
            None if !o.silent => io.err(&format!("ERROR: {name} hierarchy not mounted\n")),
            None => {}
        }
    };
    for c in &table.proc_cgroups {
        if c.hierarchy != 0 {
            mounted(out, io, &c.name);
        }
    }
    let named: Vec<String> = table
        .controllers()
        .filter(|e| e.name.starts_with("name="))
        .map(|e| e.name.clone())
        .collect();
    for n in named {
        mounted(out, io, &n);
    }
    out.push_str("}\n\n");
}

/// The groups, per hierarchy (controllers sharing a mount together); the
/// exit status of the last group that could not be written.
fn group_sections(out: &mut String, io: &mut Io, table: &Table, o: &Opts) -> i32 {
    let listed = !o.wanted.is_empty();
    let mut ret = 0;
    let mut hiers: Vec<(std::path::PathBuf, Vec<String>)> = Vec::new();
    for e in table.controllers() {
        match hiers.last_mut() {
            Some((pth, names)) if *pth == e.path => names.push(e.name.clone()),
            _ => hiers.push((e.path.clone(), vec![e.name.clone()])),
        }
    }
    for (mount, names) in hiers {
        let ctrls: Vec<String> = if listed {
            names
                .iter()
                .filter(|n| o.wanted.contains(n))
                .cloned()
                .collect()
        } else {
            names
        };
        if ctrls.is_empty() {
            continue;
        }
        let mut first = true;
        for rel in walk_preorder(&mount).into_iter().skip(1) {
            if table.is_mirror(&mount.join(&rel)) {
                continue;
            }
            let mut grp = Group::new(&rel);
            match get_cgroup(table, &mut grp) {
                Ok(()) => {
                    let h = Hier {
                        ctrls: &ctrls,
                        root: &mount,
                        first,
                    };
                    let r = group_block(out, io, table, &grp, &h, o);
                    if r != 0 {
                        ret = r;
                    }
                }
                Err(e) if e.code == Ecg::NotExist => {}
                // Removed while the snapshot walked the tree (a busy host
                // creates and removes groups all the time): not part of
                // the state being saved. libcgroup fails the whole
                // snapshot here; a snapshot of what exists is more useful.
                Err(_) if !mount.join(&rel).exists() => {}
                Err(e) => {
                    io.out(&format!("cannot read group '{rel}': {e} {}\n", e.ret()));
                    ret = e.ret();
                    break;
                }
            }
            first = false;
        }
    }
    ret
}
