//! `cgcreate`: create groups (libcgroup 3.x `cgcreate.c`).
//!
//! `-g CONTROLLERS:PATH` (repeatable; `*` for every mounted controller,
//! `:PATH` for the cgroup2 tree alone), `-t UID:GID` (owner of the tasks
//! file), `-a UID:GID` (owner of the rest), `-d`/`-f`/`-s MODE`, `-b`
//! (accepted; no default systemd slice). Owners are names, as in libcgroup.
//! The systemd scope options (`-c`, `-S`, `-p`) are refused with a message:
//! enforcer does not create systemd scopes. On hybrid hosts the group is
//! also made in the cgroup2 mirror.

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::mirror;
use crate::cgroup::lcg::ops::{Perms, create};
use crate::cgroup::lcg::spec::{Spec, parse_mode, parse_spec, parse_uid_gid};
use crate::cgroup::lcg::{EXIT_BADARGS, Ecg, Group, LcgError, Table};

const LONG: &[LongOpt] = &[
    long("help", HasArg::No, 'h'),
    long("task", HasArg::Required, 't'),
    long("admin", HasArg::Required, 'a'),
    long("", HasArg::Required, 'g'),
    long("dperm", HasArg::Required, 'd'),
    long("fperm", HasArg::Required, 'f'),
    long("tperm", HasArg::Required, 's'),
    long("scope", HasArg::No, 'c'),
    long("setdefault", HasArg::No, 'S'),
    long("pid", HasArg::Required, 'p'),
];

fn usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} -h for more information.\n"
        ));
        return;
    }
    io.out(&format!("Usage: {p} [-h] [-f mode] [-d mode] [-s mode] "));
    io.out("[-t <tuid>:<tgid>] [-a <agid>:<auid>] -g <controllers>:<path> [-g ...]\n");
    io.out("Create control group(s)\n");
    io.out("  -a <tuid>:<tgid>\t\tOwner of the group and all its files\n");
    io.out("  -d, --dperm=mode\t\tGroup directory permissions\n");
    io.out("  -f, --fperm=mode\t\tGroup file permissions\n");
    io.out("  -g <controllers>:<path>\tControl group which should be added\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -s, --tperm=mode\t\tTasks file permissions\n");
    io.out("  -t <tuid>:<tgid>\t\tOwner of the tasks file\n");
    io.out("  -b\t\t\t\tIgnore default systemddelegate hierarchy\n");
    io.out("  -c, --scope\t\t\tCreate a delegated systemd scope\n");
    io.out("  -p, --pid=pid\t\t\tTask pid to use to create systemd scope\n");
    io.out("  -S, --setdefault\t\tSet this scope as the default scope delegate hierarchy\n");
}

/// What the options ask for.
struct Options {
    specs: Vec<Spec>,
    perms: Perms,
    /// `-c`: refused later, per group, with libcgroup's message.
    scope: bool,
}

/// The options, or the exit status when they end the program, with
/// libcgroup's messages (its `-t`/`-a` errors exit 0, as its do).
fn parse(io: &mut Io, args: &[String]) -> Result<Options, i32> {
    let p = io.prog.clone();
    let mut specs: Vec<Spec> = Vec::new();
    let mut perms = Perms::default();
    let (mut scope, mut set_default, mut scope_pid, mut ignore_default) =
        (false, false, None, false);
    let mut g = Getopt::new(&p, args, "a:t:g:hd:f:s:bcp:S", LONG);
    while let Some(item) = g.next() {
        match item {
            Item::Opt('h', _) => {
                usage(io, true);
                return Err(0);
            }
            Item::Opt(c @ ('a' | 't'), Some(a)) => match parse_uid_gid(&a, &p) {
                Ok((u, gid)) if c == 'a' => {
                    perms.control_uid = u;
                    perms.control_gid = gid;
                }
                Ok((u, gid)) => {
                    perms.tasks_uid = u;
                    perms.tasks_gid = gid;
                }
                // libcgroup goes to its exit with ret still 0.
                Err(m) => {
                    io.err(&format!("{m}\n"));
                    return Err(0);
                }
            },
            Item::Opt('g', Some(a)) => match parse_spec(&a) {
                Some(s) => specs.push(s),
                None => {
                    // libcgroup names the argument after the option's.
                    let next = g.peek_arg().unwrap_or_else(|| "(null)".into());
                    io.err(&format!(
                        "{p}: cgroup controller and path parsing failed ({next})\n"
                    ));
                    return Err(EXIT_BADARGS);
                }
            },
            Item::Opt(c @ ('d' | 'f' | 's'), Some(a)) => match parse_mode(&a) {
                Some(m) => match c {
                    'd' => perms.dperm = Some(m),
                    'f' => perms.fperm = Some(m),
                    _ => perms.tperm = Some(m),
                },
                None => {
                    io.out(&format!("{p} wrong mode format {a}\n"));
                    return Err(-1);
                }
            },
            Item::Opt('b', _) => ignore_default = true,
            Item::Opt('c', _) => scope = true,
            Item::Opt('S', _) => set_default = true,
            Item::Opt('p', Some(a)) => {
                let (pid, _) = crate::cgroup::lcg::spec::strtol(&a, 10);
                if pid <= 1 {
                    io.err(&format!("{p}: Invalid pid {a}\n"));
                    return Err(EXIT_BADARGS);
                }
                scope_pid = Some(pid);
            }
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                usage(io, false);
                return Err(EXIT_BADARGS);
            }
        }
    }
    let conflict = if ignore_default && scope {
        Some("\"-b\" and \"-c\" are mutually exclusive")
    } else if set_default && !scope {
        Some("\"-S\" requires \"-c\" to be provided")
    } else if !scope && scope_pid.is_some() {
        Some("\"-p\" requires \"-c\" to be provided")
    } else {
        None
    };
    if let Some(conflict) = conflict {
        io.err(&format!("{p}: {conflict}\n"));
        return Err(EXIT_BADARGS);
    }
    if let Some(extra) = g.operands().first() {
        io.err(&format!("{p}: wrong arguments ({extra})\n"));
        return Err(EXIT_BADARGS);
    }
    Ok(Options {
        specs,
        perms,
        scope,
    })
}

pub(crate) fn main(io: &mut Io, args: &[String]) -> i32 {
    let p = io.prog.clone();
    if args.is_empty() {
        usage(io, false);
        return EXIT_BADARGS;
    }
    let o = match parse(io, args) {
        Ok(o) => o,
        Err(status) => return status,
    };
    let table = match super::mounted(io) {
        Ok(t) => t,
        Err(status) => return status,
    };
    for s in &o.specs {
        let mut grp = match group_of(io, &table, s) {
            Ok(grp) => grp,
            Err(status) => return status,
        };
        if o.scope {
            io.err(&format!(
                "{p}: can't create cgroup {}: {} (enforcer does not create systemd scopes; create the group without -c)\n",
                s.path,
                LcgError::new(Ecg::Inval)
            ));
            return Ecg::Inval as i32;
        }
        if crate::cgroup::lcg::table::escapes(&s.path) {
            io.err(&format!(
                "{p}: can't create cgroup {}: {}\n",
                s.path,
                LcgError::new(Ecg::Inval)
            ));
            return Ecg::Inval as i32;
        }
        if let Err(e) = create(&table, &mut grp, &o.perms) {
            io.err(&format!("{p}: can't create cgroup {}: {e}\n", s.path));
            return e.ret();
        }
        if !grp.controllers.is_empty() {
            mirror::create(&table, &s.path, &o.perms);
        }
    }
    0
}

/// The group of one `-g`, with its controllers: `*` is every mounted one
/// (cgroup2's list on a unified host, else the attached ones in
/// /proc/cgroups order). A controller that cannot be added ends the program.
fn group_of(io: &mut Io, table: &Table, s: &Spec) -> Result<Group, i32> {
    let p = io.prog.clone();
    let mut grp = Group::new(&s.path);
    for c in &s.controllers {
        if c == "*" {
            let all: Vec<String> = if table.setup_mode() == crate::cgroup::lcg::SetupMode::Unified {
                table.controllers().map(|e| e.name.clone()).collect()
            } else {
                table
                    .proc_cgroups
                    .iter()
                    .filter(|pc| pc.hierarchy != 0 && table.get(&pc.name).is_some())
                    .map(|pc| pc.name.clone())
                    .collect()
            };
            for name in all {
                if grp.add_controller(table, &name).is_none() {
                    io.err(&format!("controller {name} can't be added\n"));
                    io.err(&format!("{p}: can't add all controllers\n"));
                    return Err(Ecg::Inval as i32);
                }
            }
            continue;
        }
        if grp.add_controller(table, c).is_none() {
            io.err(&format!("{p}: controller {c} can't be add\n"));
            return Err(Ecg::Inval as i32);
        }
    }
    Ok(grp)
}
