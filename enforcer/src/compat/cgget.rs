//! `cgget` and `cgxget`: print the parameters of groups.
//!
//! Both follow libcgroup 3.x's `cgget.c`/`cgxget.c`: the first group is a
//! "dummy" that `-r`/`-g CONTROLLER`/`-a` fill and the first operand names;
//! further operands copy it; `-g CONTROLLERS:PATH` adds groups of its own.
//! A read failure prints nothing on stdout (values are printed only once all
//! were read), and the exit status is the libcgroup error code.

use super::convert;
use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::fs::{fill_controller, read_value_lines};
use crate::cgroup::lcg::{CgVersion, EXIT_BADARGS, Ecg, Group, LcgError, SetupMode, Table};

const SHOW_HEADERS: u32 = 1;
const SHOW_NAMES: u32 = 2;

const CGGET_LONG: &[LongOpt] = &[
    long("variable", HasArg::Required, 'r'),
    long("help", HasArg::No, 'h'),
    long("all", HasArg::No, 'a'),
    long("values-only", HasArg::No, 'v'),
];

const CGXGET_LONG: &[LongOpt] = &[
    long("v1", HasArg::No, '1'),
    long("v2", HasArg::No, '2'),
    long("ignore-unmappable", HasArg::No, 'i'),
    long("variable", HasArg::Required, 'r'),
    long("help", HasArg::No, 'h'),
    long("all", HasArg::No, 'a'),
    long("values-only", HasArg::No, 'v'),
];

fn usage(io: &mut Io, ok: bool, x: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} -h' for more information.\n"
        ));
        return;
    }
    io.out(&format!(
        "Usage: {p} [-nv] [-r <name>] [-g <controllers>] [-a] <path> ...\n"
    ));
    if x {
        io.out(&format!(
            "   or: {p} [-nv] [-r <name>] -g <controllers>:<path> ...\n"
        ));
    }
    io.out("Print parameter(s) of given group(s).\n");
    if x {
        io.out("  -1, --v1\t\t\tProvided parameters are in v1 format\n");
        io.out("  -2, --v2\t\t\tProvided parameters are in v2 format\n");
        io.out("  -i, --ignore-unmappable       Do not return an error for settings that cannot be converted\n");
    }
    io.out("  -a, --all\t\t\tPrint info about all relevant controllers\n");
    io.out("  -g <controllers>\t\tController which info should be displayed\n");
    io.out("  -g <controllers>:<path>\tControl group which info should be displayed\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -n\t\t\t\tDo not print headers\n");
    if x {
        io.out("  -r, --variable  <name>\tDefine parameter to display\n");
        io.out("  -v, --values-only\t\tPrint only values, not parameter names\n");
    } else {
        io.out("  -r, --variable <name>\t\tDefine parameter to display\n");
        io.out("  -v, --values-only\t\tPrint only values, not parameter names\n");
        io.out("  -m\t\t\t\tDisplay the cgroup mode\n");
    }
    io.out("  -b\t\t\t\tIgnore default systemd delegate hierarchy\n");
    if !x {
        io.out("  -c\t\t\t\tDisplay controller version\n");
    }
}

/// What option parsing ended in.
enum Parsed {
    Run,
    Exit(i32),
}

struct State {
    list: Vec<Group>,
    mode: u32,
    version: Option<CgVersion>,
    ignore_unmappable: bool,
}

/// A controller could not be added: cgget says so and fails with ECGOTHER,
/// cgxget fails quietly with ECGCONTROLLERCREATEFAILED.
fn cannot_add(io: &mut Io, x: bool, name: &str) -> i32 {
    if x {
        return Ecg::ControllerCreateFailed as i32;
    }
    io.err(&format!("cgget: cannot find controller '{name}'\n"));
    Ecg::Other as i32
}

fn first(st: &mut State) -> &mut Group {
    if st.list.is_empty() {
        st.list.push(Group::new(""));
    }
    &mut st.list[0]
}

fn add_all(st: &mut State, table: &Table, io: &mut Io, x: bool) -> Result<(), i32> {
    let names: Vec<String> = table.controllers().map(|e| e.name.clone()).collect();
    let g = first(st);
    for n in names {
        if g.get_or_add(table, &n).is_none() {
            return Err(cannot_add(io, x, &n));
        }
    }
    Ok(())
}

fn parse_r(st: &mut State, table: &Table, io: &mut Io, x: bool, name: &str) -> Result<(), i32> {
    let Some((ctl, _)) = name.split_once('.') else {
        if x {
            io.err(&format!("cgxget: error parsing parameter name\n '{name}'"));
        } else {
            io.err(&format!("cgget: error parsing parameter name '{name}'"));
        }
        return Err(Ecg::Inval as i32);
    };
    let g = first(st);
    let Some(c) = g.get_or_add(table, ctl) else {
        return Err(cannot_add(io, x, ctl));
    };
    c.add_value(name, None).map_err(LcgError::ret)
}

fn parse_g(st: &mut State, table: &Table, io: &mut Io, x: bool, arg: &str) -> Result<bool, i32> {
    let Some((ctrls, path)) = arg.split_once(':') else {
        if st.list.len() > 1 {
            return Err(Ecg::MaxValuesExceeded as i32);
        }
        let g = first(st);
        if g.get_or_add(table, arg).is_none() {
            return Err(cannot_add(io, x, arg));
        }
        return Ok(true);
    };
    let mut g = Group::new(path);
    for c in ctrls.split(',').filter(|c| !c.is_empty()) {
        if g.get_or_add(table, c).is_none() {
            return Err(cannot_add(io, x, c));
        }
    }
    st.list.push(g);
    Ok(false)
}

fn mount_type(io: &mut Io, table: &Table) -> i32 {
    match table.setup_mode() {
        SetupMode::Legacy => io.out("Legacy Mode (Cgroup v1 only).\n"),
        SetupMode::Hybrid => io.out("Hybrid mode (Cgroup v1/v2).\n"),
        SetupMode::Unified => io.out("Unified Mode (Cgroup v2 only).\n"),
        SetupMode::Unknown => {
            io.err("Unable to determine the Cgroup setup mode.\n");
            return 1;
        }
    }
    0
}

/// `-c`: the controllers and their versions. libcgroup 3.x returns the
/// iterator's ECGEOF from here, so `cgget -c` exits 103 after printing.
fn controller_versions(io: &mut Io, table: &Table) -> i32 {
    io.out(&format!("{:<11}\t{:<7}\n", "#Controller", "Version"));
    for e in table.controllers() {
        let v = match e.version {
            CgVersion::V1 => 1,
            CgVersion::V2 => 2,
        };
        io.out(&format!("{:<11}\t{v}\n", e.name));
    }
    Ecg::Eof as i32
}

fn parse(io: &mut Io, table: &Table, args: &[String], x: bool, st: &mut State) -> Parsed {
    let (optstring, longs) = if x {
        ("r:hnvg:a12ib", CGXGET_LONG)
    } else {
        ("r:hnvg:ambc", CGGET_LONG)
    };
    let prog = io.prog.clone();
    let mut g = Getopt::new(&prog, args, optstring, longs);
    let (mut fill, mut no_fill, mut dummy, mut mount, mut ver) =
        (false, false, false, false, false);
    for item in g.by_ref() {
        let r = match item {
            Item::Error(m) => {
                io.err(&format!("{m}\n"));
                usage(io, false, x);
                return Parsed::Exit(EXIT_BADARGS);
            }
            Item::Opt('h', _) => {
                usage(io, true, x);
                return Parsed::Exit(0);
            }
            Item::Opt('n', _) => {
                st.mode &= !SHOW_HEADERS;
                Ok(())
            }
            Item::Opt('v', _) => {
                st.mode &= !SHOW_NAMES;
                Ok(())
            }
            Item::Opt('r', Some(a)) => {
                no_fill = true;
                dummy = true;
                parse_r(st, table, io, x, &a)
            }
            Item::Opt('g', Some(a)) => {
                fill = true;
                parse_g(st, table, io, x, &a).map(|d| dummy |= d)
            }
            Item::Opt('a', _) => {
                fill = true;
                add_all(st, table, io, x)
            }
            Item::Opt('m', _) => {
                mount = true;
                Ok(())
            }
            Item::Opt('c', _) => {
                ver = true;
                Ok(())
            }
            Item::Opt('1', _) => {
                st.version = Some(CgVersion::V1);
                Ok(())
            }
            Item::Opt('2', _) => {
                st.version = Some(CgVersion::V2);
                Ok(())
            }
            Item::Opt('i', _) => {
                st.ignore_unmappable = true;
                Ok(())
            }
            // -b: there is no default systemd delegate slice to ignore.
            Item::Opt(_, _) => Ok(()),
        };
        if let Err(code) = r {
            return Parsed::Exit(code);
        }
    }
    let operands = g.operands().to_vec();
    if (fill && no_fill) || ((mount || ver) && (fill || no_fill)) {
        usage(io, false, x);
        return Parsed::Exit(EXIT_BADARGS);
    }
    if mount {
        let r = mount_type(io, table);
        if r != 0 {
            return Parsed::Exit(r);
        }
    }
    if ver {
        return Parsed::Exit(controller_versions(io, table));
    }
    if operands.is_empty() && dummy {
        usage(io, false, x);
        return Parsed::Exit(EXIT_BADARGS);
    }
    if !operands.is_empty() && st.list.first().is_some_and(|g| !g.name.is_empty()) {
        usage(io, false, x);
        return Parsed::Exit(EXIT_BADARGS);
    }
    for op in operands {
        if st.list.is_empty() {
            if let Err(code) = add_all(st, table, io, x) {
                return Parsed::Exit(code);
            }
            st.list[0].name = op;
        } else if st.list.last().is_some_and(|g| g.name.is_empty()) {
            if let Some(g) = st.list.last_mut() {
                g.name = op;
            }
        } else {
            let mut g = Group::new(&op);
            if let Some(prev) = st.list.last() {
                g.copy_from(prev);
            }
            st.list.push(g);
        }
    }
    Parsed::Run
}

/// Read every requested value, or fill every controller given without
/// values, as `get_values()` does.
fn read_values(io: &mut Io, table: &Table, list: &mut [Group]) -> Result<(), i32> {
    for g in list.iter_mut() {
        let name = g.name.clone();
        for c in &mut g.controllers {
            if c.values.is_empty() {
                let Some(e) = table.get(&c.name) else {
                    continue;
                };
                let dir = crate::cgroup::lcg::table::join_group(&e.path, &name);
                if !dir.exists() || table.is_mirror(&dir) {
                    continue;
                }
                fill_controller(&dir, c, true).map_err(LcgError::ret)?;
                continue;
            }
            let cname = c.name.clone();
            for v in &mut c.values {
                match read_value_lines(table, &name, &cname, &v.name) {
                    Ok((value, multi)) => {
                        v.value = value;
                        v.multiline = multi;
                    }
                    Err(e) => {
                        if table.subsys_mounted(&cname) {
                            io.err(&format!("variable file read failed {e}\n"));
                        } else {
                            io.err(&format!(
                                "cgget: cannot find controller '{cname}' in group '{name}'\n"
                            ));
                        }
                        return Err(e.ret());
                    }
                }
            }
        }
    }
    Ok(())
}

fn print(io: &mut Io, list: &[Group], mode: u32) {
    for g in list {
        if mode & SHOW_HEADERS != 0 {
            io.out(&format!("{}:\n", g.name));
        }
        for c in &g.controllers {
            for v in &c.values {
                if mode & SHOW_NAMES != 0 {
                    io.out(&format!("{}: ", v.name));
                }
                io.out(&format!("{}\n", v.shown()));
            }
        }
        if mode & SHOW_HEADERS != 0 {
            io.out("\n");
        }
    }
}

/// `cgget` (`x == false`) or `cgxget` (`x == true`).
pub(crate) fn main(io: &mut Io, args: &[String], x: bool) -> i32 {
    if args.is_empty() {
        usage(io, false, x);
        return EXIT_BADARGS;
    }
    let table = match super::mounted(io) {
        Ok(t) => t,
        Err(status) => return status,
    };
    let mut st = State {
        list: Vec::new(),
        mode: SHOW_HEADERS | SHOW_NAMES,
        version: None,
        ignore_unmappable: false,
    };
    match parse(io, &table, args, x, &mut st) {
        Parsed::Exit(code) => return code,
        Parsed::Run => {}
    }
    if !x {
        if let Err(code) = read_values(io, &table, &mut st.list) {
            return code;
        }
        print(io, &st.list, st.mode);
        return 0;
    }
    // cgxget: to the host's version, read, and back to the caller's.
    let (mut on_disk, r) = convert::to_disk(&table, &st.list, st.version);
    if let Err(e) = r
        && (e.code != Ecg::NoVersionConvert || !st.ignore_unmappable)
    {
        return e.ret();
    }
    if let Err(code) = read_values(io, &table, &mut on_disk) {
        return code;
    }
    match convert::from_disk(&table, &on_disk, st.version) {
        Ok(out) => {
            print(io, &out, st.mode);
            0
        }
        Err(e) => e.ret(),
    }
}
