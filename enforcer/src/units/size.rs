//! Sizes in bytes: memory limits, byte budgets, byte thresholds. One grammar for
//! all of them (see the module docs of `units` for the decimal/binary decision).

use super::number::{leading_number, scale, split_number};

/// What every size message offers.
const FORMS: &str = "a number of bytes, optionally with a binary unit K, M, G, T, P or E \
                     (1K = 1024; `KiB` also works), such as `512M`";

/// A byte size or "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Bytes(u64),
    Max,
}

/// A size in bytes: `"512"`, `"512M"`, `"1.5G"`, `"10GiB"`, `"4k"`. The unit
/// letters are binary, as the kernel's memparse reads them; `KB`, `MB`, ... are
/// refused as ambiguous. Fractions are rounded down to a byte.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = leading_number(text, FORMS)?;
    let shift = match binary_shift(unit) {
        Ok(shift) => shift,
        Err(UnitError::Ambiguous(letter)) => {
            let number = split_number(text.trim()).0;
            return Err(format!(
                "`{text}` is ambiguous: sizes use binary units, so write `{number}{letter}` or \
                 `{number}{letter}iB` (1K = 1024), or the exact number of bytes"
            ));
        }
        Err(UnitError::Unknown) => {
            return Err(format!(
                "unknown unit `{unit}` in the size `{text}`: write {FORMS}"
            ));
        }
    };
    scale(number, 1u128 << shift, 1).ok_or_else(|| format!("`{text}` is too large"))
}

/// A limit: a size, or `max` (v1's `-1`) for no limit.
pub fn parse_limit(text: &str) -> Result<Size, String> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("max") || trimmed == "-1" {
        return Ok(Size::Max);
    }
    if trimmed.starts_with('-') {
        return Err(format!(
            "`{text}`: a size cannot be negative; write `max` for no limit"
        ));
    }
    if !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "`{text}` is not a size: expected a number of bytes such as `50000000`, `50M` or \
             `1G`, or `max`"
        ));
    }
    parse_size(text).map(Size::Bytes)
}

enum UnitError {
    /// `KB`-style: the letter, for the message.
    Ambiguous(char),
    Unknown,
}

/// The power of two of a size unit: `""`/`B` bytes, `K`/`Ki`/`KiB` (any case) 10,
/// and so on up to `E`.
fn binary_shift(unit: &str) -> Result<u32, UnitError> {
    if unit.is_empty() || unit == "B" {
        return Ok(0);
    }
    let mut chars = unit.chars();
    let letter = chars.next().unwrap_or_default().to_ascii_uppercase();
    let shift = match letter {
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        'P' => 50,
        'E' => 60,
        _ => return Err(UnitError::Unknown),
    };
    match chars.as_str() {
        "" | "i" | "iB" | "ib" => Ok(shift),
        "B" | "b" => Err(UnitError::Ambiguous(letter)),
        _ => Err(UnitError::Unknown),
    }
}

/// Bytes in human units for reports (`47.7 MiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        #[rustfmt::skip]
        let cases: &[(&str, u64)] = &[
            ("0", 0), ("512", 512), ("1B", 1), ("1K", 1024), ("1k", 1024), ("2KiB", 2048),
            ("50M", 50 << 20), ("1.5G", 3 << 29), ("10G", 10 << 30), ("1T", 1 << 40),
            ("1P", 1 << 50), ("1E", 1 << 60), ("10 Gi", 10 << 30), ("2MiB", 2 << 20),
            ("50000000", 50_000_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(*bytes), "{text}");
        }
        #[rustfmt::skip]
        let bad: &[(&str, &str)] = &[
            ("10GB", "`10GB` is ambiguous: sizes use binary units, so write `10G` or `10GiB`"),
            ("1kb", "write `1K` or `1KiB` (1K = 1024)"),
            ("512MB", "`512MB` is ambiguous"),
            ("10X", "unknown unit `X` in the size"),
            ("10XB", "unknown unit `XB` in the size"),
            ("G", "does not start with a number"),
            ("-1G", "is negative"),
            ("16E", "too large"),
            ("99999999999999999999", "too large"),
            ("", "does not start with a number"),
        ];
        for (text, fragment) in bad {
            let message = parse_size(text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("max"), Ok(Size::Max));
        assert_eq!(parse_limit("-1"), Ok(Size::Max));
        assert_eq!(parse_limit("50M"), Ok(Size::Bytes(50 << 20)));
        assert!(
            parse_limit("-5")
                .unwrap_err()
                .contains("cannot be negative")
        );
        assert!(
            parse_limit("abc")
                .unwrap_err()
                .contains("expected a number")
        );
        assert!(parse_limit("512MB").unwrap_err().contains("ambiguous"));
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(50 << 20), "50.0 MiB");
    }
}
