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
/// may panic; each refusal names what it refuses; whatever is accepted reads
/// back to the same value from a canonical spelling (bytes, ms, B/s, bit).
pub(crate) fn run_all(text: &str) {
    // A refusal says what was refused: the text, or (for a budget) the part
    // of it that is wrong.
    let said = |r: Result<(), String>| {
        if let Err(message) = r {
            assert!(!message.is_empty(), "an empty message for {text:?}");
            let t = text.trim();
            let named = t.is_empty()
                || message.contains(t)
                || t.split('/')
                    .any(|part| !part.trim().is_empty() && message.contains(part.trim()));
            assert!(named, "{message:?} does not name {text:?}");
        }
    };
    // What a reader accepts, written back in a canonical form, reads back to
    // the same value.
    if let Ok(n) = parse_size(text) {
        assert_eq!(parse_size(&n.to_string()), Ok(n), "{text:?}");
        if n > 0 && n % 1024 == 0 {
            assert_eq!(parse_size(&format!("{}K", n >> 10)), Ok(n), "{text:?}");
        }
    }
    match parse_limit(text) {
        Ok(Size::Bytes(n)) => assert_eq!(parse_limit(&n.to_string()), Ok(Size::Bytes(n))),
        Ok(Size::Max) => assert_eq!(parse_limit("max"), Ok(Size::Max)),
        Err(_) => {}
    }
    if let Ok(d) = parse_duration(text)
        && d.subsec_nanos() % 1_000_000 == 0
    {
        let back = if d.is_zero() {
            "0".to_string()
        } else {
            format!("{}ms", d.as_millis())
        };
        assert_eq!(parse_duration(&back), Ok(d), "{text:?}");
    }
    if let Ok(r) = parse_rate(text) {
        assert!(r >= 1, "{text:?}: at least a byte per second");
        assert_eq!(parse_rate(&format!("{r}B/s")), Ok(r), "{text:?}");
        if let Some(bits) = r.checked_mul(8) {
            assert_eq!(parse_rate(&format!("{bits}bit")), Ok(r), "{text:?}");
        }
    }
    if let Ok((bytes, window)) = parse_budget(text) {
        assert!(
            bytes > 0 && window >= std::time::Duration::from_secs(1),
            "{text:?}"
        );
        if window.subsec_nanos() % 1_000_000 == 0 {
            assert_eq!(
                parse_budget(&format!("{bytes}/{}ms", window.as_millis())),
                Ok((bytes, window)),
                "{text:?}"
            );
        }
    }
    for (parsed, reread) in [
        (
            parse_plain(text),
            parse_plain as fn(&str) -> Result<f64, String>,
        ),
        (parse_percent(text), parse_percent),
    ] {
        if let Ok(x) = parsed {
            assert!(x.is_finite() && x >= 0.0, "{text:?} -> {x}");
            assert_eq!(reread(&x.to_string()), Ok(x), "{text:?}");
        }
    }
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
