//! `cgdelete`: remove groups (libcgroup 3.x `cgdelete.c`).
//!
//! `[-r] [-g] CONTROLLERS:PATH ...`: processes still inside move to the
//! parent; `-r` removes subgroups first. Every named controller is removed
//! (libcgroup 3.2 removes only the first of `-g memory,cpu:x` because of a
//! bug in its duplicate check, leaving `cpu:x` behind with exit status 0).
//! Errors are reported per group and the first one is the exit status; the
//! cgroup2 mirror goes once no v1 hierarchy holds the group.

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::mirror;
use crate::cgroup::lcg::ops::{DeleteFlags, delete};
use crate::cgroup::lcg::spec::parse_spec;
use crate::cgroup::lcg::{EXIT_BADARGS, Ecg, Group, LcgError};

const LONG: &[LongOpt] = &[
    long("recursive", HasArg::No, 'r'),
    long("help", HasArg::No, 'h'),
    long("group", HasArg::Required, 'g'),
];

fn usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err("Wrong input parameters,");
        io.err(&format!(" try {p} --help' for more information.\n"));
        return;
    }
    io.out(&format!(
        "Usage: {p} [-h] [-r] [[-g] <controllers>:<path>] ...\n"
    ));
    io.out("Remove control group(s)\n");
    io.out("  -g <controllers>:<path>\tControl group to be removed (-g is optional)\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -r, --recursive\t\tRecursively remove all subgroups\n");
    io.out("  -b\t\t\t\tIgnore default systemd delegate hierarchy\n");
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
    let mut flags = DeleteFlags::NONE;
    let mut specs = Vec::new();
    let mut g = Getopt::new(&p, args, "rhg:b", LONG);
    for item in g.by_ref() {
        match item {
            Item::Opt('r', _) => flags = flags.with(DeleteFlags::RECURSIVE),
            Item::Opt('g', Some(a)) => match parse_spec(&a) {
                Some(s) => specs.push(s),
                None => {
                    io.err(&format!("{p}: error parsing cgroup '{a}'"));
                    return EXIT_BADARGS;
                }
            },
            Item::Opt('h', _) => {
                usage(io, true);
                return 0;
            }
            Item::Opt('b', _) => {}
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                usage(io, false);
                return EXIT_BADARGS;
            }
        }
    }
    for a in g.operands() {
        match parse_spec(a) {
            Some(s) => specs.push(s),
            None => {
                io.err(&format!("{p}: error parsing cgroup '{a}'\n"));
                return EXIT_BADARGS;
            }
        }
    }
    let mut final_ret = 0;
    for s in &specs {
        let mut grp = Group::new(&s.path);
        for c in &s.controllers {
            if grp.controller(c).is_some() {
                continue;
            }
            if grp.add_controller(&table, c).is_none() {
                io.err(&format!("{p}: controller {c} can't be added\n"));
                return Ecg::Fail as i32;
            }
        }
        let r = if crate::cgroup::lcg::table::escapes(&s.path) {
            Err(LcgError::new(Ecg::Inval))
        } else {
            delete(&table, &grp, flags)
        };
        match r {
            Ok(()) => mirror::remove_unused(&table, &s.path, flags == DeleteFlags::RECURSIVE),
            Err(e) => {
                io.err(&format!("{p}: cannot remove group '{}': {e}\n", s.path));
                final_ret = e.ret();
            }
        }
    }
    final_ret
}
