//! libcgroup's tools, by name: one binary that answers as `cgcreate`,
//! `cgset`, `cgget`, `cgexec`, `cgclassify`, `cgdelete`, `lscgroup`,
//! `lssubsys`, `cgsnapshot`, `cgconfigparser`, `cgxget`, `cgxset` and
//! `cgrulesengd` when invoked under that name (a symlink made by
//! `enforcer compat install`), with libcgroup 3.x's options, output, messages
//! and exit codes.
//!
//! The native `enforcer` verbs keep their own, richer interface; this module
//! is the drop-in for scripts written against libcgroup. Where libcgroup's
//! behaviour is a plain bug that leaves the host in a state the command did
//! not ask for (for example `cgdelete -g memory,cpu:x` leaving `cpu:x`), the
//! tool does what the man page says instead, and README's comparison table
//! lists each such difference.

mod cgconfigparser;
mod cgcreate;
mod cgdelete;
mod cgexec;
mod cgget;
mod cgrulesengd;
mod cgset;
mod cgsnapshot;
mod convert;
mod getopt;
pub mod install;
mod io;
mod lscgroup;

use crate::cgroup::lcg;
use io::Io;

/// The names this binary answers to, and where `compat install` links them.
pub const TOOLS: &[(&str, Dir)] = &[
    ("cgclassify", Dir::Bin),
    ("cgcreate", Dir::Bin),
    ("cgdelete", Dir::Bin),
    ("cgexec", Dir::Bin),
    ("cgget", Dir::Bin),
    ("cgset", Dir::Bin),
    ("cgsnapshot", Dir::Bin),
    ("cgxget", Dir::Bin),
    ("cgxset", Dir::Bin),
    ("lscgroup", Dir::Bin),
    ("lssubsys", Dir::Bin),
    ("cgconfigparser", Dir::Sbin),
    ("cgrulesengd", Dir::Sbin),
];

/// `bin` or `sbin`, as libcgroup installs the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Bin,
    Sbin,
}

/// The tool `argv0` names (its file name), if it is one of [`TOOLS`].
pub fn tool_name(argv0: &std::ffi::OsStr) -> Option<&'static str> {
    let base = std::path::Path::new(argv0).file_name()?.to_str()?;
    TOOLS.iter().map(|(n, _)| *n).find(|n| *n == base)
}

/// Run `tool` with `args` (after the program name); `prog` is argv[0] as
/// invoked, which libcgroup's messages repeat. Returns the exit status.
pub fn main(tool: &str, prog: &str, args: &[String]) -> u8 {
    let mut io = Io::new(prog);
    let ret = match tool {
        "cgget" => cgget::main(&mut io, args, false),
        "cgxget" => cgget::main(&mut io, args, true),
        "cgset" => cgset::main(&mut io, args, false),
        "cgxset" => cgset::main(&mut io, args, true),
        "cgcreate" => cgcreate::main(&mut io, args),
        "cgdelete" => cgdelete::main(&mut io, args),
        "cgexec" => cgexec::exec_main(&mut io, args),
        "cgclassify" => cgexec::classify_main(&mut io, args),
        "cgsnapshot" => cgsnapshot::main(&mut io, args),
        "cgconfigparser" => cgconfigparser::main(&mut io, args),
        "cgrulesengd" => cgrulesengd::main(&mut io, args),
        "lscgroup" => lscgroup::lscgroup_main(&mut io, args),
        "lssubsys" => lscgroup::lssubsys_main(&mut io, args),
        _ => 1,
    };
    io.flush();
    lcg::error::exit_status(ret)
}

/// The mounted hierarchies, or libcgroup's "initialization failed" message
/// and exit status when none is mounted (every tool starts so).
fn mounted(io: &mut Io) -> Result<lcg::Table, i32> {
    let table = lcg::Table::discover();
    if table.is_empty() {
        let e = lcg::LcgError::new(lcg::Ecg::NotMounted);
        let p = io.prog.clone();
        io.err(&format!("{p}: libcgroup initialization failed: {e}\n"));
        return Err(e.ret());
    }
    Ok(table)
}
