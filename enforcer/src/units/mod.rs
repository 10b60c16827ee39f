//! The value grammars of the tool: one parser per kind of value, used wherever
//! that kind appears (a `[group]` setting, `set -r`, a budget, a `when`
//! threshold or action, the command line).
//!
//! # Decimal or binary
//!
//! One decision, for limits, budgets and thresholds alike: a **size**'s unit
//! letters are binary, as the kernel's memparse reads `memory.max = 512M`
//! (`K` = 1024, `M` = 1024², ...; `KiB`, `MiB`, ... say the same). `KB`, `MB`,
//! `GB`, ... are refused everywhere as ambiguous (half of all readers take them
//! as powers of 1000, and the kernel refuses them), with a message that offers
//! both spellings. A **rate** names its convention in the unit itself, as tc does:
//! `Mbit` and `MB/s` are decimal, `Mibit` and `MiB/s` binary.
//!
//! Each parser takes the text inside the quotes and returns either the value in
//! base units or a message saying what is wrong and what to write instead; the
//! caller adds the span and the key. Arithmetic is done on integers, so
//! `"1.5Mbit"` is exactly 187500 bytes per second.

mod budget;
mod duration;
mod list;
mod number;
mod percent;
mod rate;
mod size;

pub use budget::parse_budget;
pub use duration::parse_duration;
pub use list::{format_list, parse_list};
pub use number::parse_plain;
pub use percent::parse_percent;
pub use rate::parse_rate;
pub use size::{Size, human_bytes, parse_limit, parse_size};

/// Runs every parser on `text` (for the fuzz targets and property tests): none
/// may panic, each error must say something, and a list reads back the same.
pub(crate) fn run_all(text: &str) {
    let said = |r: Result<(), String>| {
        if let Err(message) = r {
            assert!(!message.is_empty(), "an empty message for {text:?}");
        }
    };
    said(parse_duration(text).map(drop));
    said(parse_size(text).map(drop));
    said(parse_limit(text).map(drop));
    said(parse_rate(text).map(drop));
    said(parse_budget(text).map(drop));
    said(parse_plain(text).map(drop));
    said(parse_percent(text).map(drop));
    if let Ok(list) = parse_list(text) {
        assert!(list.windows(2).all(|w| w[0] < w[1]), "{text:?}");
        assert_eq!(parse_list(&format_list(&list)), Ok(list));
    }
}
