//! Rendering results as text (libcgroup-like) or JSON.
//!
//! Everything goes through [`out`], so a reader that stops reading
//! (`enforcer list | head -1`) ends the program quietly instead of a panic.

use std::io::Write as _;

use anyhow::Result;

use crate::cgroup::{Applied, GroupValues, Listed, Membership, SetOutcome, ps_format};
use crate::escape::Human;
use crate::units::human_bytes;

/// Standard output was closed by its reader. Not a failure: `cli::run` turns it
/// into a quiet exit with status 0, as `cat` and `ls` behave.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub(super) struct StdoutClosed;

/// Write text for a person to standard output, with no control character
/// but newline and tab ([`crate::escape::terminal_safe`]: the net under the
/// escaping of each name where it is formatted); a closed pipe becomes
/// [`StdoutClosed`].
pub(super) fn out(args: std::fmt::Arguments<'_>) -> Result<()> {
    let text = match args.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(args.to_string()),
    };
    write_raw(&crate::escape::terminal_safe(&text))
}

/// JSON (already escaped per JSON) and a newline, to standard output.
pub(super) fn json_text(text: &str) -> Result<()> {
    write_raw(&format!("{text}\n"))
}

fn write_raw(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                anyhow::Error::new(StdoutClosed)
            } else {
                anyhow::Error::new(e).context("writing to standard output")
            }
        })
}

/// `println!` through [`out`]: evaluates to `anyhow::Result<()>`.
macro_rules! outln {
    () => {
        $crate::cli::print::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::print::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(super) use outln;

/// Warnings go to stderr; one that cannot be written is dropped, not a panic.
pub(super) fn warn(w: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "warning: {}",
        crate::escape::terminal_safe(w)
    );
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<()> {
    json_text(&serde_json::to_string_pretty(v)?)
}

pub(super) fn set_outcomes(o: &[SetOutcome], as_json: bool) -> Result<()> {
    if as_json {
        return json(&o);
    }
    for s in o {
        let via = if s.key == s.file {
            String::new()
        } else {
            format!(" (as {})", s.key)
        };
        outln!(
            "{} {}:{} = {}{via}; reads back {}",
            s.group,
            s.hierarchy,
            s.file,
            Human(&s.written),
            Human(&s.effective)
        )?;
    }
    Ok(())
}

pub(super) fn group_values(v: &[GroupValues], as_json: bool) -> Result<()> {
    if as_json {
        return json(&v);
    }
    for g in v {
        outln!("{}:", g.group)?;
        for kv in &g.values {
            let mut lines = kv.value.lines();
            let first = lines.next().unwrap_or("");
            if kv.key == kv.file {
                outln!("{}: {}", kv.file, Human(first))?;
            } else {
                outln!("{} ({}): {}", kv.file, kv.key, Human(first))?;
            }
            for l in lines {
                outln!("\t{}", Human(l))?;
            }
        }
        if let Some(m) = &g.memory {
            outln!(
                "memory summary: usage {}, peak {}, limit {}, failcnt {}, oom_kills {}",
                human_bytes(m.usage_bytes),
                m.peak_bytes.map_or("-".into(), human_bytes),
                m.limit_bytes.map_or("max".into(), human_bytes),
                m.failcnt,
                m.oom_kills
            )?;
        }
        outln!()?;
    }
    Ok(())
}

pub(super) fn listed(l: &[Listed], as_json: bool) -> Result<()> {
    if as_json {
        return json(&l);
    }
    for x in l {
        outln!("{}:{}", x.controllers, Human(&x.path))?;
    }
    Ok(())
}

pub(super) fn memberships(m: &[Membership], as_json: bool) -> Result<()> {
    if as_json {
        return json(&m);
    }
    outln!("{}", Human(&ps_format(m)))
}

pub(super) fn applied(a: &Applied, as_json: bool) -> Result<()> {
    if as_json {
        return json(a);
    }
    outln!("created {} group directories", a.created.len())?;
    set_outcomes(&a.writes, false)
}

/// Each warning on stderr, as `warn` says one.
pub(super) fn warn_all(warnings: &[String]) {
    for w in warnings {
        warn(w);
    }
}
