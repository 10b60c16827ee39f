//! cgrules.conf: libcgroup's rules that place processes by user and command.
//!
//! ```text
//! # <user>[:<process>]  <controllers>  <destination>  [<options>]
//! student          cpu,memory   students/
//! @admin:ssh       *            admin/ssh
//! *:sleep          cpu          sleepers/%u
//! %                memory       sleepers/mem     # continues the rule above
//! root             *            *                ignore
//! ```
//!
//! Read as libcgroup 3.x reads `/etc/cgrules.conf` and then every regular
//! file of `/etc/cgrules.d/` (directory order): `#` starts a comment
//! anywhere, fields are separated by blanks, the user and destination may be
//! quoted to hold blanks, a user that does not exist skips its rule (and the
//! `%` lines after it) with a warning, and any other malformed line makes the
//! whole file invalid. One deliberate difference: libcgroup 3.2 no longer
//! recognises `%` continuation lines (a regression of its quoted-field
//! parser, which looks them up as a user named `%`); here they continue the
//! rule above, as the man page says and libcgroup 2.0 did.
//!
//! A rule's destination may use `%u` (user name), `%U` (uid), `%g`, `%G`,
//! `%p` (process name) and `%P` (pid); missing groups are then created.
//! A destination never leaves the hierarchy it names a group of: one with a
//! `.` or `..` component is refused when read, and again after expanding
//! (whatever a substitution brings), where libcgroup would follow it.

use std::path::{Path, PathBuf};

use crate::cgroup::destination_problem;
use crate::cgroup::lcg::ops::{Perms, change_path, create};
use crate::cgroup::lcg::{Ecg, Group, LcgError, Table};

/// libcgroup's rules file and directory.
pub const RULES_FILE: &str = "/etc/cgrules.conf";
pub const RULES_DIR: &str = "/etc/cgrules.d";

/// The rules files to read: libcgroup's, or those named by
/// `ENFORCER_CGRULES_CONF` / `ENFORCER_CGRULES_DIR` (for tests and for a
/// second rules set beside a running libcgroup).
pub fn rules_paths() -> (PathBuf, PathBuf) {
    let file = std::env::var_os("ENFORCER_CGRULES_CONF")
        .map_or_else(|| PathBuf::from(RULES_FILE), PathBuf::from);
    let dir = std::env::var_os("ENFORCER_CGRULES_DIR")
        .map_or_else(|| PathBuf::from(RULES_DIR), PathBuf::from);
    (file, dir)
}

/// Who a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    User(u32),
    /// `@group`: its gid, its name, and the uids of its listed members
    /// (read when the rules are loaded: libcgroup looks them up at every
    /// match, which costs an /etc/group and /etc/passwd read per exec).
    Group {
        gid: u32,
        name: String,
        members: Vec<u32>,
    },
    /// `*`
    Any,
    /// `%`: more groups for the rule above.
    Continuation,
}

/// `ignore` / `ignore_rt` options.
pub const IGNORE: u8 = 1;
pub const IGNORE_RT: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub who: Who,
    /// The user field as written (`alice`, `@staff`, `*`, `%`).
    pub user: String,
    /// The process name to match: a full path or a base name, optionally
    /// ending in `*` (a prefix).
    pub procname: Option<String>,
    pub controllers: Vec<String>,
    pub destination: String,
    pub ignore: u8,
    /// `file:line`, for messages.
    pub origin: String,
}

/// Why a rules file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(
        "{origin}: expected `<user>[:<process>] <controllers> <destination> [options]`; fix or remove the line"
    )]
    Syntax { origin: String },
    #[error("{origin}: unsupported option {option:?}; the options are `ignore` and `ignore_rt`")]
    Option { origin: String, option: String },
    #[error(
        "{origin}: destination {dest:?} has a `.` or `..` component; name the group by its path \
         below the hierarchy's root"
    )]
    Destination { origin: String, dest: String },
    #[error("{origin}: too many controllers (at most 16); list fewer or use `*`")]
    TooManyControllers { origin: String },
    #[error("{origin}: no {what} named {name:?} on this host: create it or correct the name")]
    Unknown {
        origin: String,
        what: &'static str,
        name: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RulesError {
    /// What libcgroup logs (as `Error: …`) for this failure, if anything.
    pub fn libcgroup_line(&self) -> Option<String> {
        match self {
            RulesError::Syntax { origin }
            | RulesError::TooManyControllers { origin }
            | RulesError::Destination { origin, .. } => {
                let line = origin.rsplit(':').next().unwrap_or("0");
                Some(format!("failed to parse configuration file on line {line}"))
            }
            RulesError::Option { option, .. } => Some(format!("Unsupported option: {option}")),
            RulesError::Read { .. } | RulesError::Unknown { .. } => None,
        }
    }
}

/// The rules of one or more files, in order, plus the warnings reading them gave.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub warnings: Vec<String>,
}

/// `get_next_rule_field`: the next blank-separated field (quotes allowed
/// when `quotes`), and how many bytes it took; 0 bytes means none.
fn next_field(s: &str, quotes: bool) -> Result<(String, usize), ()> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    let start = i;
    let mut quote = None;
    while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n') {
        if b[i] == b'"' {
            quote = Some(i);
            i += 1;
            break;
        }
        i += 1;
    }
    if let Some(q) = quote {
        if !quotes {
            return Err(());
        }
        while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'"' {
            return Err(());
        }
        let field = s[q + 1..i].to_string();
        return Ok((field, i + 1));
    }
    Ok((s[start..i].to_string(), i))
}

fn parse_options(options: &str, origin: &str) -> Result<u8, RulesError> {
    let mut flags = 0;
    for o in options.split(',').filter(|o| !o.is_empty()) {
        flags |= match o {
            "ignore" => IGNORE,
            "ignore_rt" => IGNORE_RT,
            _ => {
                return Err(RulesError::Option {
                    origin: origin.to_string(),
                    option: o.to_string(),
                });
            }
        };
    }
    if flags == 0 {
        return Err(RulesError::Option {
            origin: origin.to_string(),
            option: options.to_string(),
        });
    }
    Ok(flags)
}

/// Parse one file's text. `name` is used in origins and warnings.
pub fn parse(text: &str, name: &str, out: &mut RuleSet) -> Result<(), RulesError> {
    let mut skipped = false;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let origin = format!("{name}:{line}");
        let content = raw.split('#').next().unwrap_or("");
        let itr = content.trim_start_matches([' ', '\t']);
        if itr.is_empty() {
            continue;
        }
        if skipped && itr.starts_with('%') {
            out.warnings
                .push(format!("skipped child of invalid rule, line {line}."));
            continue;
        }
        skipped = false;
        let syntax = || RulesError::Syntax {
            origin: origin.clone(),
        };
        let (key, used) = next_field(itr, true).map_err(|()| syntax())?;
        if used == 0 {
            return Err(syntax());
        }
        let rest = &itr[used..];
        let (controllers, used) = next_field(rest, false).map_err(|()| syntax())?;
        if used == 0 {
            return Err(syntax());
        }
        let rest = &rest[used..];
        let (destination, used) = next_field(rest, true).map_err(|()| syntax())?;
        if used == 0 {
            return Err(syntax());
        }
        let rest = &rest[used..];
        let options = match next_field(rest, false) {
            Ok((o, u)) if u > 0 && !o.is_empty() => Some(o),
            _ => None,
        };
        let (user, procname) = match key.split_once(':') {
            Some((u, p)) => (u.to_string(), (!p.is_empty()).then(|| p.to_string())),
            None => (key.clone(), None),
        };
        let who = if let Some(g) = user.strip_prefix('@') {
            match nix::unistd::Group::from_name(g).ok().flatten() {
                Some(gr) => Who::Group {
                    gid: gr.gid.as_raw(),
                    name: g.to_string(),
                    members: member_uids(&gr),
                },
                None => {
                    out.warnings.push(format!(
                        "Entry for {g} not found. Skipping rule on line {line}."
                    ));
                    skipped = true;
                    continue;
                }
            }
        } else if user.starts_with('*') {
            Who::Any
        } else if user.starts_with('%') {
            Who::Continuation
        } else {
            match nix::unistd::User::from_name(&user).ok().flatten() {
                Some(pw) => Who::User(pw.uid.as_raw()),
                None => {
                    out.warnings.push(format!(
                        "Entry for {user} not found. Skipping rule on line {line}."
                    ));
                    skipped = true;
                    continue;
                }
            }
        };
        let ignore = match &options {
            Some(o) => parse_options(o, &origin)?,
            None => 0,
        };
        let ctrls: Vec<String> = controllers
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        if ctrls.is_empty() {
            return Err(syntax());
        }
        if ctrls.len() > 16 {
            return Err(RulesError::TooManyControllers { origin });
        }
        if destination_problem(&destination).is_some() {
            return Err(RulesError::Destination {
                origin,
                dest: destination,
            });
        }
        out.rules.push(Rule {
            who,
            user: user.clone(),
            procname,
            controllers: ctrls,
            destination,
            ignore,
            origin,
        });
    }
    Ok(())
}

/// Read `file` and every regular file (or symlink) in `dir`, as libcgroup
/// does: a missing `file` is an error, a missing `dir` is not.
pub fn load(file: &Path, dir: &Path) -> Result<RuleSet, RulesError> {
    let mut set = RuleSet::default();
    let text = std::fs::read_to_string(file).map_err(|source| RulesError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    parse(&text, &file.display().to_string(), &mut set)?;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if !(t.is_file() || t.is_symlink()) {
                continue;
            }
            let path = e.path();
            let text = std::fs::read_to_string(&path).map_err(|source| RulesError::Read {
                path: path.clone(),
                source,
            })?;
            parse(&text, &path.display().to_string(), &mut set)?;
        }
    }
    Ok(set)
}

/// The policy's `[[classify]]` rules as cgrules.conf rules. Unknown users
/// and groups are errors here (a policy is checked before it is used),
/// where cgrules.conf merely skips such a line.
pub fn from_policy(rules: &[crate::config::ClassifyRule]) -> Result<RuleSet, RulesError> {
    let mut set = RuleSet::default();
    for r in rules {
        let origin = r.span.to_string();
        let who = if let Some(u) = &r.user {
            match nix::unistd::User::from_name(&u.value).ok().flatten() {
                Some(pw) => Who::User(pw.uid.as_raw()),
                None => {
                    return Err(RulesError::Unknown {
                        origin: u.span.to_string(),
                        what: "user",
                        name: u.value.clone(),
                    });
                }
            }
        } else if let Some(g) = &r.group {
            match nix::unistd::Group::from_name(&g.value).ok().flatten() {
                Some(gr) => Who::Group {
                    gid: gr.gid.as_raw(),
                    name: g.value.clone(),
                    members: member_uids(&gr),
                },
                None => {
                    return Err(RulesError::Unknown {
                        origin: g.span.to_string(),
                        what: "group",
                        name: g.value.clone(),
                    });
                }
            }
        } else {
            Who::Any
        };
        let procname = r.exe.as_ref().or(r.comm.as_ref()).map(|p| p.value.clone());
        let user = match (&r.user, &r.group) {
            (Some(u), _) => u.value.clone(),
            (None, Some(g)) => format!("@{}", g.value),
            (None, None) => "*".to_string(),
        };
        set.rules.push(Rule {
            who,
            user,
            procname,
            controllers: if r.controllers.is_empty() {
                vec!["*".to_string()]
            } else {
                r.controllers.clone()
            },
            destination: if r.ignore && r.destination.value.is_empty() {
                "*".to_string()
            } else {
                r.destination.value.clone()
            },
            ignore: if r.ignore { IGNORE | IGNORE_RT } else { 0 },
            origin,
        });
    }
    Ok(set)
}

/// What a process is matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The process name (`procfs::procname`), or None.
    pub procname: Option<String>,
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// `cgroup_compare_wildcard_procname`: `prefix*` matches names starting so.
fn wildcard(rule: &str, name: &str) -> bool {
    rule.strip_suffix('*')
        .is_some_and(|pre| name.starts_with(pre))
}

/// The uids of a group's listed members (names that are no user are skipped).
fn member_uids(g: &nix::unistd::Group) -> Vec<u32> {
    g.mem
        .iter()
        .filter_map(|m| nix::unistd::User::from_name(m).ok().flatten())
        .map(|u| u.uid.as_raw())
        .collect()
}

/// Whether the user part of `r` covers this uid/gid: the user, the group
/// as effective gid, or a member of the group.
fn user_matches(r: &Rule, uid: u32, gid: u32) -> bool {
    match &r.who {
        Who::Any => true,
        Who::User(u) => *u == uid,
        Who::Group {
            gid: g, members, ..
        } => *g == gid || members.contains(&uid),
        Who::Continuation => false,
    }
}

/// Whether the process is real-time (an `ignore`/`ignore_rt` decision).
fn is_rt(pid: i32) -> bool {
    // SAFETY: sched_getscheduler has no memory-safety preconditions.
    let policy = unsafe { libc::sched_getscheduler(pid) };
    policy == libc::SCHED_FIFO || policy == libc::SCHED_RR
}

/// `cgroup_compare_ignore_rule`: an ignore rule matches when the process is
/// already in its destination (any group for `*`) and its name fits.
fn ignore_matches(r: &Rule, f: &Facts) -> bool {
    if r.ignore == 0 {
        return false;
    }
    let rt = is_rt(f.pid);
    if r.ignore == IGNORE && rt {
        return false;
    }
    if r.ignore == IGNORE_RT && !rt {
        return false;
    }
    if r.destination != "*" {
        let text = std::fs::read_to_string(format!("/proc/{}/cgroup", f.pid)).unwrap_or_default();
        let dest = r.destination.as_str();
        let found = text
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .any(|path| {
                let path = path.trim_start_matches('/');
                match dest.strip_suffix('/') {
                    Some(pre) => {
                        (path.len() < dest.len() || path.as_bytes()[dest.len() - 1] == b'/')
                            && path.starts_with(pre)
                    }
                    None => path.starts_with(dest),
                }
            });
        if !found {
            return false;
        }
    }
    // A base name matches as it does in every other rule (cgrules.conf(5));
    // libcgroup compares an ignore rule with the full path only, so
    // `user:sleep * * ignore` (or `comm = "sleep"` with `ignore = true`)
    // never matched /usr/bin/sleep.
    match (&r.procname, &f.procname) {
        (None, _) => true,
        (Some(rp), Some(p)) => rp == p || rp == basename(p) || wildcard(rp, p),
        (Some(_), None) => false,
    }
}

impl RuleSet {
    /// `cgroup_print_rules_config`: the rules as cgrulesengd logs them.
    pub fn describe(&self) -> String {
        if self.rules.is_empty() {
            return "The rules table is empty.\n\n".to_string();
        }
        let mut out = String::new();
        let mut last = (None, None);
        for r in &self.rules {
            out.push_str(&format!("Rule: {}", r.user));
            if let Some(p) = &r.procname {
                out.push_str(&format!(":{p}"));
            }
            out.push('\n');
            let (uid, gid) = match &r.who {
                Who::User(u) => (Some(u.to_string()), None),
                Who::Group { gid, .. } => (None, Some(gid.to_string())),
                Who::Any => (Some("any".to_string()), Some("any".to_string())),
                Who::Continuation => last.clone(),
            };
            last = (uid.clone(), gid.clone());
            out.push_str(&format!("  UID: {}\n", uid.as_deref().unwrap_or("N/A")));
            out.push_str(&format!("  GID: {}\n", gid.as_deref().unwrap_or("N/A")));
            out.push_str(&format!("  DEST: {}\n", r.destination));
            out.push_str("  CONTROLLERS:\n");
            for c in &r.controllers {
                out.push_str(&format!("    {c}\n"));
            }
            out.push_str("  OPTIONS:\n");
            out.push_str(if r.ignore != 0 {
                "    IS_IGNORE: True\n"
            } else {
                "    IS_IGNORE: False\n"
            });
            out.push('\n');
        }
        out
    }

    /// The first rule for this process, as the rules daemon finds it
    /// (`cgroup_find_matching_rule`): user first, then name (full, base name
    /// or `prefix*`). An `ignore` rule that matches is returned too: the
    /// caller then leaves the process alone.
    pub fn find(&self, f: &Facts) -> Option<usize> {
        let mut i = 0;
        while i < self.rules.len() {
            let r = &self.rules[i];
            if r.who == Who::Continuation || !user_matches(r, f.uid, f.gid) {
                i += 1;
                continue;
            }
            if ignore_matches(r, f) {
                return Some(i);
            }
            if r.ignore != 0 {
                i += 1;
                continue;
            }
            let Some(p) = &f.procname else {
                return Some(i);
            };
            match &r.procname {
                None => return Some(i),
                Some(rp) if rp == p || rp == basename(p) || wildcard(rp, p) => return Some(i),
                Some(_) => i += 1,
            }
        }
        None
    }

    /// The first rule as `cgexec` and `cgclassify` find it without the
    /// daemon's cache (`cgroup_parse_rules(false, …)`): user, then the name
    /// in full or as a base name (no `prefix*`).
    pub fn find_uncached(&self, f: &Facts) -> Option<usize> {
        self.rules.iter().position(|r| {
            r.who != Who::Continuation
                && user_matches(r, f.uid, f.gid)
                && match (&r.procname, &f.procname) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(rp), Some(p)) => rp == p || rp == basename(p),
                }
        })
    }

    /// The rule at `i` and the `%` rules that continue it.
    pub fn with_continuations(&self, i: usize) -> impl Iterator<Item = &Rule> {
        self.rules[i..]
            .iter()
            .enumerate()
            .take_while(|(n, r)| *n == 0 || r.who == Who::Continuation)
            .map(|(_, r)| r)
    }
}

/// A destination with `%u %U %g %G %p %P` filled in and `\x` escapes
/// resolved, as `cgroup_change_cgroup_flags` does.
pub fn expand(dest: &str, f: &Facts) -> String {
    let mut out = String::new();
    let mut it = dest.chars();
    while let Some(c) = it.next() {
        match c {
            '%' => {
                let Some(k) = it.next() else {
                    out.push('%');
                    break;
                };
                let sub = match k {
                    'U' => Some(f.uid.to_string()),
                    'u' => {
                        Some(super::procfs::user_name(f.uid).unwrap_or_else(|| f.uid.to_string()))
                    }
                    'G' => Some(f.gid.to_string()),
                    'g' => Some(
                        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(f.gid))
                            .ok()
                            .flatten()
                            .map_or_else(|| f.gid.to_string(), |g| g.name),
                    ),
                    'P' => Some(f.pid.to_string()),
                    'p' => Some(f.procname.clone().unwrap_or_else(|| f.pid.to_string())),
                    _ => None,
                };
                match sub {
                    Some(s) if !s.is_empty() => out.push_str(&s),
                    _ => {
                        out.push('%');
                        out.push(k);
                    }
                }
            }
            '\\' => {
                if let Some(n) = it.next() {
                    out.push(n);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// `cgroup_create_template_group`: every prefix of a templated destination
/// that is missing in one of the rule's controllers is created.
fn create_template(table: &Table, dest: &str, controllers: &[String]) -> Result<(), LcgError> {
    let mut prefix = String::new();
    for comp in dest.split('/') {
        if !prefix.is_empty() || dest.starts_with('/') {
            prefix.push('/');
        }
        prefix.push_str(comp);
        if comp.is_empty() {
            continue;
        }
        let mut g = Group::new(&prefix);
        for c in controllers {
            let names: Vec<String> = if c == "*" {
                table.controllers().map(|e| e.name.clone()).collect()
            } else {
                vec![c.clone()]
            };
            for n in names {
                if table.group_dir(&prefix, &n).is_some_and(|d| !d.is_dir()) {
                    g.add_controller(table, &n);
                }
            }
        }
        if !g.controllers.is_empty() {
            create(table, &mut g, &Perms::default())?;
        }
    }
    Ok(())
}

/// Apply the rule at `i` (and its `%` continuations) to the process.
pub(crate) fn apply(table: &Table, set: &RuleSet, i: usize, f: &Facts) -> Result<(), LcgError> {
    for r in set.with_continuations(i) {
        let dest = expand(&r.destination, f);
        // A substitution is the process's business (its name, its user's):
        // it may not take the destination anywhere the rule does not.
        if destination_problem(&dest).is_some() {
            return Err(LcgError::new(Ecg::NotAllowed));
        }
        if dest != r.destination {
            create_template(table, &dest, &r.controllers)?;
        }
        change_path(table, &dest, f.pid, &r.controllers)?;
        crate::cgroup::lcg::mirror::place(table, &dest, f.pid);
    }
    Ok(())
}

/// `cgroup_change_cgroup_flags` as `cgexec` and `cgclassify` use it: read
/// the rules now (or use `cached`), move `pid` by the first that matches.
/// A rules file that cannot be parsed is `ECGROUPPARSEFAIL`; no rule, or an
/// `ignore` rule, moves nothing. `log` receives libcgroup's log lines.
///
/// Unlike libcgroup, which stops reading at the first match when it does
/// not cache, the files are read whole: a syntax error below the matching
/// rule fails here too.
pub(crate) fn change_by_rules(
    table: &Table,
    uid: u32,
    gid: u32,
    procname: Option<&str>,
    pid: i32,
    cached: Option<&RuleSet>,
    log: &mut dyn FnMut(String),
) -> Result<(), LcgError> {
    use crate::cgroup::lcg::log::{Level, line};
    let f = Facts {
        pid,
        uid,
        gid,
        procname: procname.map(str::to_string),
    };
    let owned;
    let (set, found) = match cached {
        Some(s) => (s, s.find(&f)),
        None => {
            let (file, dir) = rules_paths();
            match load(&file, &dir) {
                Ok(s) => owned = s,
                Err(e) => {
                    if let Some(m) = e.libcgroup_line().and_then(|m| line(Level::Error, &m)) {
                        log(m);
                    }
                    if let Some(m) = line(Level::Error, "failed to parse the configuration rules") {
                        log(m);
                    }
                    return Err(LcgError::new(Ecg::ParseFail));
                }
            }
            for w in &owned.warnings {
                if let Some(m) = line(Level::Warning, w) {
                    log(m);
                }
            }
            (&owned, owned.find_uncached(&f))
        }
    };
    let Some(i) = found else {
        return Ok(());
    };
    if set.rules[i].ignore != 0 {
        return Ok(());
    }
    apply(table, set, i, &f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> RuleSet {
        let mut s = RuleSet::default();
        parse(text, "t", &mut s).unwrap();
        s
    }

    fn facts(uid: u32, gid: u32, name: Option<&str>) -> Facts {
        Facts {
            pid: std::process::id() as i32,
            uid,
            gid,
            procname: name.map(str::to_string),
        }
    }

    #[test]
    fn fields_comments_quotes_and_continuations() {
        let s = rules(
            "# comment\n\n  root:sleep  cpu,memory  a/b # trailing\n%\tmemory\t\"with space\"\n\
             *  *  all\n\"root:/bin/my x\" cpu dst ignore,ignore_rt\n",
        );
        assert_eq!(s.rules.len(), 4);
        assert_eq!(s.rules[0].who, Who::User(0));
        assert_eq!(s.rules[0].procname.as_deref(), Some("sleep"));
        assert_eq!(s.rules[0].controllers, vec!["cpu", "memory"]);
        assert_eq!(s.rules[1].who, Who::Continuation);
        assert_eq!(s.rules[1].destination, "with space");
        assert_eq!(s.rules[2].who, Who::Any);
        assert_eq!(s.rules[3].ignore, IGNORE | IGNORE_RT);
        assert_eq!(s.rules[3].procname.as_deref(), Some("/bin/my x"));
        assert_eq!(s.with_continuations(0).count(), 2);
        assert_eq!(s.with_continuations(2).count(), 1);
    }

    #[test]
    fn unknown_users_skip_their_rule_and_its_children() {
        let s = rules("no-such-user-zz cpu a\n% memory b\nroot cpu c\n");
        assert_eq!(s.rules.len(), 1);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("Entry for no-such-user-zz not found"));
    }

    #[test]
    fn malformed_lines_fail_the_file() {
        for bad in [
            "root cpu\n",
            "root\n",
            "root cpu dest bogus\n",
            "root \"cpu\" d\n",
            "root cpu \"open\n",
        ] {
            let mut s = RuleSet::default();
            assert!(parse(bad, "f", &mut s).is_err(), "{bad:?}");
        }
        let mut s = RuleSet::default();
        let e = parse("\n\nroot cpu\n", "/etc/cgrules.conf", &mut s).unwrap_err();
        assert!(
            e.to_string().starts_with("/etc/cgrules.conf:3: expected"),
            "{e}"
        );
    }

    #[test]
    fn matching_by_user_name_and_wildcards() {
        let s = rules("root:sleep cpu s\nroot:/usr/bin/env cpu e\n*:py* cpu p\nroot cpu r\n");
        assert_eq!(s.find(&facts(0, 0, Some("/usr/bin/sleep"))), Some(0));
        assert_eq!(s.find(&facts(0, 0, Some("/usr/bin/env"))), Some(1));
        assert_eq!(s.find(&facts(7, 7, Some("python3"))), Some(2));
        assert_eq!(s.find(&facts(0, 0, Some("/bin/true"))), Some(3));
        assert_eq!(s.find(&facts(7, 7, Some("/bin/true"))), None);
        // Without the cache, `prefix*` is not a wildcard.
        assert_eq!(s.find_uncached(&facts(7, 7, Some("python3"))), None);
        assert_eq!(
            s.find_uncached(&facts(0, 0, Some("/usr/bin/sleep"))),
            Some(0)
        );
    }

    #[test]
    fn an_ignore_rule_matches_a_base_name_as_other_rules_do() {
        let s = rules("root:sleep * * ignore\nroot cpu r\n");
        let i = s.find(&facts(0, 0, Some("/usr/bin/sleep"))).unwrap();
        assert_ne!(s.rules[i].ignore, 0, "the ignore rule, not the next one");
        assert_eq!(s.find(&facts(0, 0, Some("/usr/bin/true"))), Some(1));
    }

    #[test]
    fn templates_expand() {
        let f = Facts {
            pid: 42,
            uid: 0,
            gid: 0,
            procname: Some("/bin/sh".into()),
        };
        assert_eq!(expand("u/%u/%U/%g/%G/%P", &f), "u/root/0/root/0/42");
        assert_eq!(expand("x/%p", &f), "x//bin/sh");
        assert_eq!(expand("a\\%u%z%", &f), "a%u%z%");
    }

    #[test]
    fn destinations_stay_in_their_hierarchy() {
        for bad in ["..", "a/../b", "a/./b", "/..", "a/..", "x/%p/.."] {
            assert!(destination_problem(bad).is_some(), "{bad}");
            let mut s = RuleSet::default();
            let e = parse(&format!("root cpu {bad}\n"), "f", &mut s).unwrap_err();
            assert!(e.to_string().contains("`..` component"), "{e}");
        }
        for ok in ["a/b", "/a//b/", "a..b/.c/..d", "u/%u/%p"] {
            assert!(destination_problem(ok).is_none(), "{ok}");
        }
        // What a process's name expands to is checked again.
        let f = Facts {
            pid: 1,
            uid: 0,
            gid: 0,
            procname: Some("/../../tgt/victim".into()),
        };
        assert!(destination_problem(&expand("cls/sub/%p", &f)).is_some());
    }
}
