//! The argument parsers every libcgroup tool shares (`tools-common.c`):
//! `CONTROLLERS:PATH`, octal modes and `user:group`, with C's `strtok` and
//! `strtol` behaviour, because that is what decides which inputs are accepted.

use nix::unistd::{Gid, Group, Uid, User};

/// `-g CONTROLLERS:PATH` as `parse_cgroup_spec` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Empty for `:PATH` (no controller given).
    pub(crate) controllers: Vec<String>,
    pub(crate) path: String,
}

/// `strtok`'s tokens: the non-empty pieces between delimiters.
pub(crate) fn tokens<'a>(s: &'a str, delims: &'a [char]) -> impl Iterator<Item = &'a str> {
    s.split(delims).filter(|t| !t.is_empty())
}

/// `parse_cgroup_spec`: None where libcgroup returns -1.
pub(crate) fn parse_spec(arg: &str) -> Option<Spec> {
    let mut toks = tokens(arg, &[':']);
    let (ctrls, path) = if arg.starts_with(':') {
        (None, toks.next()?)
    } else {
        let c = toks.next()?;
        (Some(c), toks.next()?)
    };
    let controllers = ctrls
        .map(|c| tokens(c, &[',']).map(str::to_string).collect())
        .unwrap_or_default();
    Some(Spec {
        controllers,
        path: path.to_string(),
    })
}

/// C's `strtol(s, &end, base)`: leading blanks, a sign, digits; the value and
/// whether the whole string was consumed.
pub(crate) fn strtol(s: &str, base: u32) -> (i64, bool) {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .find(|c: char| !c.is_digit(base))
        .unwrap_or(digits.len());
    if end == 0 {
        return (0, s.is_empty());
    }
    let v = i64::from_str_radix(&digits[..end], base).unwrap_or(i64::MAX);
    (if neg { -v } else { v }, end == digits.len())
}

/// `parse_mode`: three or four octal digits. The error text is printed to
/// stdout by libcgroup (`<prog> wrong mode format <mode>`).
pub(crate) fn parse_mode(s: &str) -> Option<u32> {
    if !(3..=4).contains(&s.len()) {
        return None;
    }
    let (v, whole) = strtol(s, 8);
    whole.then_some(v as u32)
}

/// `parse_uid_gid`: `user:group`, `user`, `:group`, by name only (getpwnam,
/// getgrnam). `Err` carries libcgroup's message (without the newline).
pub(crate) fn parse_uid_gid(s: &str, prog: &str) -> Result<(Option<Uid>, Option<Gid>), String> {
    let mut toks = tokens(s, &[':']);
    let (user, group) = if s.starts_with(':') {
        (None, toks.next())
    } else {
        let u = toks.next();
        (u, u.and(toks.next()))
    };
    let uid = match user {
        Some(u) => match User::from_name(u).ok().flatten() {
            Some(pw) => Some(pw.uid),
            None => return Err(format!("{prog}: can't find uid of user {u}.")),
        },
        None => None,
    };
    let gid = match group {
        Some(g) => match Group::from_name(g).ok().flatten() {
            Some(gr) => Some(gr.gid),
            None => return Err(format!("{prog}: can't find gid of group {g}.")),
        },
        None => None,
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(c: &[&str], p: &str) -> Option<Spec> {
        Some(Spec {
            controllers: c.iter().map(|s| s.to_string()).collect(),
            path: p.to_string(),
        })
    }

    #[test]
    fn specs_as_strtok_reads_them() {
        assert_eq!(
            parse_spec("cpu,memory:/a/b"),
            spec(&["cpu", "memory"], "/a/b")
        );
        assert_eq!(parse_spec(":/x"), spec(&[], "/x"));
        assert_eq!(parse_spec("cpu::x:y"), spec(&["cpu"], "x"));
        assert_eq!(parse_spec(",,cpu,:x"), spec(&["cpu"], "x"));
        assert_eq!(parse_spec("cpu:"), None);
        assert_eq!(parse_spec("cpu"), None);
        assert_eq!(parse_spec(""), None);
        assert_eq!(parse_spec("*:x"), spec(&["*"], "x"));
    }

    #[test]
    fn modes_like_strtol() {
        assert_eq!(parse_mode("755"), Some(0o755));
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("75"), None);
        assert_eq!(parse_mode("789"), None);
        assert_eq!(parse_mode("12345"), None);
        assert_eq!(strtol(" 12x", 10), (12, false));
        assert_eq!(strtol("-7", 10), (-7, true));
    }

    #[test]
    fn owners_by_name() {
        assert_eq!(
            parse_uid_gid("root:root", "t"),
            Ok((Some(Uid::from_raw(0)), Some(Gid::from_raw(0))))
        );
        assert_eq!(
            parse_uid_gid(":root", "t"),
            Ok((None, Some(Gid::from_raw(0))))
        );
        assert_eq!(
            parse_uid_gid("root", "t"),
            Ok((Some(Uid::from_raw(0)), None))
        );
        assert_eq!(
            parse_uid_gid("no-such-user-x:root", "t"),
            Err("t: can't find uid of user no-such-user-x.".to_string())
        );
    }
}
