//! `cgexec` and `cgclassify`: run a command in groups, or move running
//! processes (libcgroup 3.x `cgexec.c`, `cgclassify.c`).
//!
//! Both stop reading options at the first operand (`getopt` with `+`), so
//! `cgexec -g cpu:G sh -c 'x'` needs no `--`. Without `-g` the groups come
//! from the cgrules.conf rules (`classify::rules`). `--sticky` registers the
//! process with a running rules daemon (enforcer's agent or `cgrulesengd`,
//! libcgroup's too: the `/var/run/cgred.socket` protocol is the same) so it
//! and its children keep their groups; `--cancel-sticky` undoes that.

use std::os::unix::process::CommandExt as _;

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::cgroup::lcg::mirror;
use crate::cgroup::lcg::ops::change_path;
use crate::cgroup::lcg::spec::{Spec, parse_spec};
use crate::cgroup::lcg::{EXIT_BADARGS, Ecg, LcgError, Table};
use crate::classify::{self, sticky};

const EXEC_LONG: &[LongOpt] = &[
    long("sticky", HasArg::No, 's'),
    long("help", HasArg::No, 'h'),
];

const CLASSIFY_LONG: &[LongOpt] = &[
    long("sticky", HasArg::No, 's'),
    long("cancel-sticky", HasArg::No, 'u'),
    long("help", HasArg::No, 'h'),
];

fn exec_usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} --help for more information.\n"
        ));
        return;
    }
    io.out(&format!(
        "Usage: {p} [-h] [-g <controllers>:<path>] [--sticky] "
    ));
    io.out("command [arguments] ...\n");
    io.out("Run the task in given control group(s)\n");
    io.out("  -g <controllers>:<path>\tControl group which should be added\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  --sticky\t\t\tcgred daemon does not change pidlist and children tasks\n");
    io.out("  -b\t\t\t\tIgnore default systemd delegate hierarchy\n");
    io.out("  -r\t\t\t\tReplace the default idle_thread spawned for the systemd scope\n");
}

fn classify_usage(io: &mut Io, ok: bool) {
    let p = io.prog.clone();
    if !ok {
        io.err(&format!(
            "Wrong input parameters, try {p} '-h' for more information.\n"
        ));
        return;
    }
    io.out(&format!("Usage: {p} [[-g] <controllers>:<path>] "));
    io.out("[--sticky | --cancel-sticky] <list of pids>\n");
    io.out("Move running task(s) to given cgroups\n");
    io.out("  -h, --help\t\t\tDisplay this help\n");
    io.out("  -g <controllers>:<path>\tControl group to be used as target\n");
    io.out("  --cancel-sticky\t\tcgred daemon change pidlist and children tasks\n");
    io.out("  --sticky\t\t\tcgred daemon does not change pidlist and children tasks\n");
    io.out("  -b\t\t\t\tIgnore default systemd delegate hierarchy\n");
    io.out("  -r\t\t\t\tReplace the default idle_thread spawned for the systemd scope\n");
}

fn init(io: &mut Io, with_prog: bool) -> Result<Table, i32> {
    let table = Table::discover();
    if table.is_empty() {
        let e = LcgError::new(Ecg::NotMounted);
        if with_prog {
            let p = io.prog.clone();
            io.err(&format!("{p}: libcgroup initialization failed: {e}\n"));
        } else {
            io.err(&format!("libcgroup initialization failed: {e}\n"));
        }
        return Err(e.ret());
    }
    Ok(table)
}

/// Moves `pid` to every spec's group, keeping the cgroup2 mirror in step.
fn place(table: &Table, specs: &[Spec], pid: i32) -> Result<(), LcgError> {
    for s in specs {
        change_path(table, &s.path, pid, &s.controllers)?;
        if !s.controllers.is_empty() {
            mirror::place(table, &s.path, pid);
        }
    }
    Ok(())
}

/// libcgroup's systemd idle thread of a scope created with `cgcreate -c`.
const IDLE_THREAD: &str = "libcgroup_systemd_idle_thread";

/// `-r`: the idle process of the systemd scope `pid` is in, if any.
fn find_scope_idle(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let table = Table::discover();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        if !(path.contains(".scope") && path.contains(".slice")) {
            continue;
        }
        let dir = if ctrl.is_empty() {
            table.v2_group_dir(path)?
        } else {
            let first = ctrl.split(',').next()?;
            table.group_dir(path, first)?
        };
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for p in procs
            .split_whitespace()
            .filter_map(|s| s.parse::<i32>().ok())
        {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let first = cmd.split(|&b| b == 0).next().unwrap_or(&[]);
            if first == IDLE_THREAD.as_bytes() {
                return Some(p);
            }
        }
    }
    None
}

pub(crate) fn exec_main(io: &mut Io, args: &[String]) -> i32 {
    let mut specs = Vec::new();
    let (mut sticky_flag, mut replace_idle) = (0, false);
    let p = io.prog.clone();
    let mut g = Getopt::new(&p, args, "+g:shbr", EXEC_LONG);
    for item in g.by_ref() {
        match item {
            Item::Opt('g', Some(a)) => match parse_spec(&a) {
                Some(s) => specs.push(s),
                None => {
                    io.err("cgroup controller and path parsing failed\n");
                    return EXIT_BADARGS;
                }
            },
            Item::Opt('s', _) => sticky_flag |= sticky::UNCHANGE_CHILDREN,
            Item::Opt('h', _) => {
                exec_usage(io, true);
                return 0;
            }
            Item::Opt('b', _) => {}
            Item::Opt('r', _) => replace_idle = true,
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                exec_usage(io, false);
                return EXIT_BADARGS;
            }
        }
    }
    let command = g.operands().to_vec();
    let Some(prog) = command.first() else {
        exec_usage(io, false);
        return EXIT_BADARGS;
    };
    let table = match init(io, false) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let pid = std::process::id() as i32;
    if sticky::register(pid, sticky_flag) != 0 {
        io.err("registration of process failed\n");
        return 1;
    }
    if let Err(e) = nix::unistd::setresuid(uid, uid, uid) {
        io.err(&crate::cgroup::lcg::error::strerror(e as i32));
        return -1;
    }
    if let Err(e) = nix::unistd::setresgid(gid, gid, gid) {
        io.err(&crate::cgroup::lcg::error::strerror(e as i32));
        return -1;
    }
    let moved = if specs.is_empty() {
        classify::rules::change_by_rules(
            &table,
            uid.as_raw(),
            gid.as_raw(),
            Some(prog),
            pid,
            None,
            &mut |l| io.out(&l),
        )
    } else {
        place(&table, &specs, pid)
    };
    if let Err(e) = moved {
        io.err("cgroup change of group failed\n");
        return e.ret();
    }
    if replace_idle {
        let Some(idle) = find_scope_idle(pid) else {
            io.err("Failed to find idle_thread task\n");
            return -1;
        };
        if let Err(e) = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(idle),
            nix::sys::signal::Signal::SIGTERM,
        ) {
            io.err(&format!(
                "Failed to kill pid {idle}:{}\n",
                crate::cgroup::lcg::error::strerror(e as i32)
            ));
            return -1;
        }
    }
    io.flush();
    // execvp: searched in PATH, argv[0] as given.
    let err = std::process::Command::new(prog)
        .arg0(prog)
        .args(&command[1..])
        .exec();
    io.err(&format!(
        "exec failed:{}",
        crate::cgroup::lcg::error::strerror(err.raw_os_error().unwrap_or(libc::ENOENT))
    ));
    -1
}

pub(crate) fn classify_main(io: &mut Io, args: &[String]) -> i32 {
    if args.is_empty() {
        classify_usage(io, false);
        return EXIT_BADARGS;
    }
    let mut specs = Vec::new();
    let (mut flag, mut replace_idle) = (0, false);
    let p = io.prog.clone();
    let mut g = Getopt::new(&p, args, "+g:shbr", CLASSIFY_LONG);
    for item in g.by_ref() {
        match item {
            Item::Opt('h', _) => {
                classify_usage(io, true);
                return 0;
            }
            Item::Opt('g', Some(a)) => match parse_spec(&a) {
                Some(s) => specs.push(s),
                None => {
                    io.err("cgroup controller and path parsing failed\n");
                    return EXIT_BADARGS;
                }
            },
            Item::Opt('s', _) => flag |= sticky::UNCHANGE_CHILDREN,
            Item::Opt('u', _) => flag |= sticky::CANCEL_UNCHANGE,
            Item::Opt('b', _) => {}
            Item::Opt('r', _) => replace_idle = true,
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                classify_usage(io, false);
                return EXIT_BADARGS;
            }
        }
    }
    let table = match init(io, true) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let mut exit_code = 0;
    let mut replaced = false;
    for a in g.operands().to_vec() {
        let (pid, whole) = crate::cgroup::lcg::spec::strtol(&a, 10);
        if !whole {
            io.err(&format!("Error: {a} is not valid pid.\n"));
            exit_code = 2;
            continue;
        }
        let pid = pid as i32;
        if flag != 0 && sticky::register(pid, flag) != 0 {
            exit_code = 1;
        }
        let r = if specs.is_empty() {
            by_rule(io, &table, pid)
        } else {
            place(&table, &specs, pid).map_err(|e| {
                io.err(&format!("Error changing group of pid {pid}: {e}\n"));
            })
        };
        if r.is_err() {
            exit_code = 1;
        }
        if replace_idle && !replaced {
            let Some(idle) = find_scope_idle(pid) else {
                io.err("Failed to find idle_thread task\n");
                return -1;
            };
            replaced = true;
            if let Err(e) = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(idle),
                nix::sys::signal::Signal::SIGTERM,
            ) {
                io.err(&format!(
                    "Failed to kill pid {idle}:{}\n",
                    crate::cgroup::lcg::error::strerror(e as i32)
                ));
                return -1;
            }
        }
    }
    exit_code
}

/// `change_group_based_on_rule`: the process's euid, egid and name decide.
fn by_rule(io: &mut Io, table: &Table, pid: i32) -> Result<(), ()> {
    let Some((euid, egid)) = classify::procfs::euid_egid(pid) else {
        io.err(&format!("Error in determining euid/egid of pid {pid}\n"));
        return Err(());
    };
    let Some(name) = classify::procfs::procname(pid, None) else {
        io.err(&format!("Error in determining process name of pid {pid}\n"));
        return Err(());
    };
    let mut lines = Vec::new();
    let r = classify::rules::change_by_rules(table, euid, egid, Some(&name), pid, None, &mut |l| {
        lines.push(l)
    });
    for l in lines {
        io.out(&l);
    }
    r.map_err(|e| {
        io.err(&format!(
            "Error: change of cgroup failed for pid {pid}: {e}\n"
        ));
    })
}
