//! `enforcer events [-f] [--json] [GROUP...]`: the audit log's events, as
//! lines for people or as the JSON the log holds; -f follows it.

use std::path::Path;

use anyhow::Result;

use super::print::outln;
use crate::events::{Filter, Reader};

pub(super) fn events(
    groups: &[String],
    follow: bool,
    json: bool,
    lines: Option<usize>,
    audit_log: &Path,
) -> Result<()> {
    let filter = Filter {
        groups: crate::agent::wanted(groups)?,
    };
    let mut reader = Reader::open(audit_log)?;
    // Following starts, as tail -f does, with the last 10 lines.
    if let Some(n) = lines.or(follow.then_some(10)) {
        reader.tail(n)?;
    }
    reader.run::<anyhow::Error>(follow, |v| {
        if !filter.wants(v) {
            return Ok(());
        }
        if json {
            super::print::json_text(&v.to_string())
        } else {
            outln!("{}", crate::events::human(v))
        }
    })
}
