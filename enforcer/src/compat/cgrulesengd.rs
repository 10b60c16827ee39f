//! `cgrulesengd`: the rules daemon (libcgroup 3.x `cgrulesengd.c`) on
//! enforcer's engine: exec events come from the kernel (a
//! `sched_process_exec` tracepoint program) rather than libcgroup's proc
//! connector, and the kernel reports only the execs some rule may concern.
//!
//! Options as libcgroup's: `-n` (stay in the foreground), `-f PATH` / `-f -`
//! (log to a file / stdout), `-s[FACILITY]` (syslog: `0`-`7` for local0-7,
//! `D` for daemon), `-v`/`-q`/`-Q` (more, less, no logging), `-d` (same as
//! `-v -v -n -f -`), `-u USER` / `-g GROUP` (owner of
//! `/var/run/cgred.socket`). SIGUSR2 re-reads the rules, SIGINT/SIGTERM end
//! it. One addition: `--hold` stops each matched process at exec until it is
//! placed, so it runs nothing of the new program in its old group (see
//! README for what that costs). libcgroup re-examines processes on setuid
//! and setgid too; enforcer classifies at exec (and at start), where the
//! program's name is known.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::getopt::{Getopt, HasArg, Item, LongOpt, long};
use super::io::Io;
use crate::classify::engine::{Engine, EngineOptions, Level};
use crate::classify::rules::{RuleSet, load, rules_paths};
use crate::classify::sticky;

const LONG: &[LongOpt] = &[
    long("help", HasArg::No, 'h'),
    long("verbose", HasArg::No, 'v'),
    long("quiet", HasArg::No, 'q'),
    long("logfile", HasArg::Required, 'f'),
    long("syslog", HasArg::Optional, 's'),
    long("nodaemon", HasArg::No, 'n'),
    long("debug", HasArg::No, 'd'),
    long("nolog", HasArg::No, 'Q'),
    long("socket-user", HasArg::Required, 'u'),
    long("socket-group", HasArg::Required, 'g'),
    long("hold", HasArg::No, 'H'),
];

fn usage(msg: &str) -> String {
    let mut s = format!("{msg}\n");
    s.push_str("cgrulesengd -- a daemon for the cgroups rules engine\n\n");
    s.push_str("Usage : cgrulesengd [options]\n\n");
    s.push_str("  options :\n");
    s.push_str("    -q           | --quiet\t\t  quiet mode\n");
    s.push_str("    -v           | --verbose\t\t  verbose mode\n");
    s.push_str("    -f <path>    | --logfile=<path>\t  write log to file\n");
    s.push_str("    -s[facility] | --syslog=[facility]\t  write log to syslog\n");
    s.push_str("    -n           | --nodaemon\t\t  don't fork daemon\n");
    s.push_str("    -d           | --debug\t\t  same as -v -v -n -f -\n");
    s.push_str("    -Q           | --nolog\t\t  disable logging\n");
    s.push_str("    -u <user>    | --socket-user=<user>   set /var/run/cgred.socket socket user\n");
    s.push_str(
        "    -g <group>   | --socket-group=<group> set /var/run/cgred.socket socket group\n",
    );
    s.push_str("    -h           | --help\t\t  show this help\n\n");
    s
}

/// syslog priorities by verbosity, as cgrulesengd maps `-q`/`-v`.
const LEVELS: [i32; 5] = [
    libc::LOG_EMERG,
    libc::LOG_ERR,
    libc::LOG_WARNING,
    libc::LOG_INFO,
    libc::LOG_DEBUG,
];

fn facility(arg: &str) -> Option<i32> {
    Some(match arg {
        "0" => libc::LOG_LOCAL0,
        "1" => libc::LOG_LOCAL1,
        "2" => libc::LOG_LOCAL2,
        "3" => libc::LOG_LOCAL3,
        "4" => libc::LOG_LOCAL4,
        "5" => libc::LOG_LOCAL5,
        "6" => libc::LOG_LOCAL6,
        "7" => libc::LOG_LOCAL7,
        "D" => libc::LOG_DAEMON,
        _ => return None,
    })
}

fn priority(l: Level) -> i32 {
    match l {
        Level::Error => libc::LOG_ERR,
        Level::Warning => libc::LOG_WARNING,
        Level::Info => libc::LOG_INFO,
        Level::Debug => libc::LOG_DEBUG,
    }
}

/// Where log lines go: a file (or stdout) and/or syslog, up to a priority.
struct Log {
    file: Option<Box<dyn std::io::Write + Send>>,
    syslog: bool,
    max: i32,
}

impl Log {
    fn write(&mut self, l: Level, msg: &str) {
        let p = priority(l);
        if p > self.max {
            return;
        }
        if let Some(f) = self.file.as_mut() {
            let _ = f.write_all(msg.as_bytes());
            let _ = f.flush();
        }
        if self.syslog
            && let Ok(c) = std::ffi::CString::new(msg.trim_end())
        {
            // SAFETY: a NUL-terminated message with a "%s" format.
            unsafe { libc::syslog(p, c"%s".as_ptr(), c.as_ptr()) };
        }
    }
}

static RELOAD: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr2(_: libc::c_int) {
    RELOAD.store(true, Ordering::Relaxed);
}

extern "C" fn on_term(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn handle(sig: nix::sys::signal::Signal, f: extern "C" fn(libc::c_int)) {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
    let action = SigAction::new(SigHandler::Handler(f), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handlers only store to atomics.
    let _ = unsafe { sigaction(sig, &action) };
}

fn now() -> String {
    // ctime(3) text, with its newline.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as libc::time_t);
    let mut buf = [0 as libc::c_char; 32];
    // SAFETY: ctime_r writes at most 26 bytes into a 32-byte buffer.
    let p = unsafe { libc::ctime_r(&t, buf.as_mut_ptr()) };
    if p.is_null() {
        return "\n".into();
    }
    // SAFETY: ctime_r returned a NUL-terminated string in `buf`.
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

fn load_rules() -> Result<RuleSet, crate::classify::rules::RulesError> {
    let (file, dir) = rules_paths();
    load(&file, &dir)
}

/// The options as given, after libcgroup's defaults.
struct Options {
    verbosity: i32,
    /// `-f PATH`, `-` for stdout.
    logp: Option<String>,
    /// The syslog facility, 0 for none.
    fac: i32,
    daemon: bool,
    hold: bool,
    sock_user: Option<u32>,
    sock_group: Option<u32>,
}

/// The options, or the exit status when they end the program (`-h`: 0, a
/// bad option: 2, an unknown socket user or group: 3).
fn parse(io: &mut Io, args: &[String]) -> Result<Options, i32> {
    let mut o = Options {
        verbosity: 1,
        logp: None,
        fac: 0,
        daemon: true,
        hold: false,
        sock_user: None,
        sock_group: None,
    };
    if std::env::var("CGROUP_LOGLEVEL").is_ok_and(|v| v.eq_ignore_ascii_case("DEBUG") || v == "4") {
        o.verbosity = 4;
        o.logp = Some("-".into());
    }
    let p = io.prog.clone();
    let g = Getopt::new(&p, args, "hvqf:s::ndQu:g:", LONG);
    for item in g {
        match item {
            Item::Opt('h', _) => {
                io.out(&usage("Help:\n"));
                return Err(0);
            }
            Item::Opt('v', _) => o.verbosity += 1,
            Item::Opt('q', _) => o.verbosity -= 1,
            Item::Opt('Q', _) => o.verbosity = 0,
            Item::Opt('f', Some(a)) => o.logp = Some(a),
            Item::Opt('s', a) => match a {
                Some(a) => match facility(&a) {
                    Some(f) => o.fac = f,
                    None => {
                        io.err(&format!("Unknown syslog facility: {a}\n"));
                        return Err(2);
                    }
                },
                None => o.fac = libc::LOG_DAEMON,
            },
            Item::Opt('n', _) => o.daemon = false,
            Item::Opt('d', _) => {
                o.daemon = false;
                o.verbosity = 4;
                o.logp = Some("-".into());
            }
            Item::Opt('u', Some(a)) => match nix::unistd::User::from_name(&a).ok().flatten() {
                Some(u) => o.sock_user = Some(u.uid.as_raw()),
                None => {
                    io.err(&usage(&format!("Cannot find user {a}")));
                    return Err(3);
                }
            },
            Item::Opt('g', Some(a)) => match nix::unistd::Group::from_name(&a).ok().flatten() {
                Some(gr) => o.sock_group = Some(gr.gid.as_raw()),
                None => {
                    io.err(&usage(&format!("Cannot find group {a}")));
                    return Err(3);
                }
            },
            Item::Opt('H', _) => o.hold = true,
            Item::Opt(..) | Item::Error(_) => {
                if let Item::Error(m) = item {
                    io.err(&format!("{m}\n"));
                }
                io.err(&usage(""));
                return Err(2);
            }
        }
    }
    Ok(o)
}

/// The rules, or libcgroup's messages and exit status when cgroupfs is not
/// mounted or the rules do not parse.
fn first_rules(io: &mut Io) -> Result<RuleSet, i32> {
    if crate::cgroup::lcg::Table::discover().is_empty() {
        io.err("Error: libcgroup initialization failed, Cgroup is not mounted\n");
        return Err(crate::cgroup::lcg::Ecg::NotMounted as i32);
    }
    load_rules().map_err(|e| {
        let (file, _) = rules_paths();
        io.err("Error: libcgroup failed to initialize rules");
        io.err(&format!(
            "cache from {}. {}\n",
            file.display(),
            crate::cgroup::lcg::LcgError::new(crate::cgroup::lcg::Ecg::ParseFail)
        ));
        if let Some(l) = e.libcgroup_line() {
            io.err(&format!("{l}\n"));
        }
        crate::cgroup::lcg::Ecg::ParseFail as i32
    })
}

/// The log as the options ask: `-f` file or stdout (a file that cannot be
/// opened falls back to stdout, as libcgroup's does), syslog unless `-f`
/// alone was given.
fn open_log(o: &Options) -> Log {
    let logv = o.verbosity.clamp(0, 4) as usize;
    let mut fac = o.fac;
    if o.logp.is_none() && fac == 0 {
        fac = libc::LOG_DAEMON;
    }
    let file: Option<Box<dyn std::io::Write + Send>> = match o.logp.as_deref() {
        Some("-") => Some(Box::new(std::io::stdout())),
        Some(path) => match std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            Ok(f) => Some(Box::new(f)),
            Err(e) => {
                eprintln!(
                    "Failed to open log file {path}, error: {}. Continuing anyway.",
                    crate::cgroup::lcg::error::strerror(e.raw_os_error().unwrap_or(libc::EIO))
                );
                Some(Box::new(std::io::stdout()))
            }
        },
        None => None,
    };
    if fac != 0 {
        // SAFETY: a static identifier string.
        unsafe { libc::openlog(c"CGRE".as_ptr(), libc::LOG_CONS | libc::LOG_PID, fac) };
    }
    Log {
        file,
        syslog: fac != 0,
        max: LEVELS.get(logv).copied().unwrap_or(libc::LOG_DEBUG),
    }
}

/// The daemon's child leaves the terminal: a new session, `/` as its
/// directory, /dev/null for the standard descriptors (stdout kept when the
/// log goes there).
fn leave_terminal(to_stdout: bool) {
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd as _;
        for fd in [0, 1, 2] {
            if fd == 1 && to_stdout {
                continue;
            }
            // SAFETY: replaces a standard descriptor with /dev/null.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

pub(crate) fn main(io: &mut Io, args: &[String]) -> i32 {
    if !nix::unistd::getuid().is_root() {
        io.err("Error: Only root can start/stop the control group rules engine daemon\n");
        return 1;
    }
    let o = match parse(io, args) {
        Ok(o) => o,
        Err(status) => return status,
    };
    let rules = match first_rules(io) {
        Ok(r) => r,
        Err(status) => return status,
    };
    io.flush();
    if o.daemon {
        // SAFETY: no other thread exists yet (nothing has been loaded).
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { .. }) => return 0,
            Ok(nix::unistd::ForkResult::Child) => {}
            Err(e) => {
                io.err(&format!(
                    "Failed to fork(), {}\n",
                    crate::cgroup::lcg::error::strerror(e as i32)
                ));
                return 1;
            }
        }
    }
    let mut log = open_log(&o);
    log.write(Level::Debug, "CGroup Rules Engine Daemon log started\n");
    log.write(Level::Debug, &format!("Current time: {}\n", now()));
    if o.daemon {
        leave_terminal(o.logp.as_deref() == Some("-"));
    } else {
        log.write(Level::Debug, "Not using daemon mode\n");
    }
    log.write(
        Level::Info,
        &format!("Proceeding with PID {}\n", std::process::id()),
    );
    handle(nix::sys::signal::Signal::SIGUSR2, on_usr2);
    handle(nix::sys::signal::Signal::SIGINT, on_term);
    handle(nix::sys::signal::Signal::SIGTERM, on_term);
    if log.max >= libc::LOG_INFO {
        log.write(Level::Info, &rules.describe());
    }
    let log = std::sync::Arc::new(std::sync::Mutex::new(log));
    let engine_log = log.clone();
    let opts = EngineOptions {
        hold: o.hold,
        socket: Some((sticky::SOCKET.into(), (o.sock_user, o.sock_group))),
    };
    let engine = match Engine::new(
        rules,
        opts,
        Box::new(move |l, m| {
            if let Ok(mut g) = engine_log.lock() {
                g.write(l, m);
            }
        }),
    ) {
        Ok(e) => e,
        Err(e) => {
            if let Ok(mut g) = log.lock() {
                g.write(Level::Error, &format!("Error: {e}\n"));
            }
            eprintln!("{}: {e}", io.prog);
            return 1;
        }
    };
    serve(engine, &log);
    let _ = std::fs::remove_file(sticky::SOCKET);
    0
}

/// Classifies what runs, then each exec, until SIGINT or SIGTERM; SIGUSR2
/// re-reads the rules (a file that no longer parses keeps the current ones).
fn serve(mut engine: Engine, log: &std::sync::Mutex<Log>) {
    engine.classify_running();
    let say = |l: Level, m: &str| {
        if let Ok(mut g) = log.lock() {
            g.write(l, m);
        }
    };
    say(Level::Info, "Started the CGroup Rules Engine Daemon.\n");
    while !STOP.load(Ordering::Relaxed) {
        engine.poll_once(Duration::from_millis(200));
        if RELOAD.swap(false, Ordering::Relaxed) {
            say(Level::Info, "Reloading rules configuration\n");
            say(Level::Debug, &format!("Current time: {}\n", now()));
            match load_rules() {
                Ok(r) => {
                    let text = r.describe();
                    if let Err(e) = engine.set_rules(r) {
                        say(Level::Error, &format!("Error: {e}\n"));
                    } else {
                        say(Level::Info, &format!("{text}\n"));
                    }
                }
                Err(e) => say(
                    Level::Warning,
                    &format!("Warning: keeping the current rules: {e}\n"),
                ),
            }
        }
    }
    say(
        Level::Info,
        &format!("Stopped CGroup Rules Engine Daemon at {}\n", now()),
    );
    drop(engine);
}
