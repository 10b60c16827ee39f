//! Rates in bytes per second: tc's bits per second (`"10Mbit"`, decimal) or bytes
//! per second (`"10MB/s"` decimal, `"10MiB/s"` binary). The `/s` or `bit` makes
//! the convention plain, so here SI prefixes are decimal as in tc, unlike sizes.

use super::number::{leading_number, scale, split_number};

/// A rate in bytes per second, written in tc's bits per second (`"10Mbit"`,
/// decimal; `"10Mibit"`, binary) or in bytes per second (`"10MB/s"` decimal,
/// `"10MiB/s"` binary). `/s` after `bit` is allowed. At least 1 byte per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    const FORMS: &str = "bits per second such as `10Mbit` (units `bit`, `Kbit`, `Mbit`, \
                         `Gbit`, `Tbit`) or bytes per second such as `10MB/s` or `10MiB/s`";
    let (number, unit) = leading_number(text, FORMS)?;
    let digits = split_number(text.trim()).0;
    let prefix = |p: &str| -> Option<u128> {
        Some(match p {
            "" => 1,
            "k" | "K" => 1_000,
            "m" | "M" => 1_000_000,
            "g" | "G" => 1_000_000_000,
            "t" | "T" => 1_000_000_000_000,
            "ki" | "Ki" => 1 << 10,
            "mi" | "Mi" => 1 << 20,
            "gi" | "Gi" => 1 << 30,
            "ti" | "Ti" => 1 << 40,
            _ => return None,
        })
    };
    let base = unit.strip_suffix("/s").unwrap_or(unit);
    let lower = base.to_ascii_lowercase();
    let (multiplier, divisor) = if let Some(p) = lower.strip_suffix("bit") {
        let p = &base[..p.len()];
        let multiplier =
            prefix(p).ok_or_else(|| format!("unknown unit `{unit}` in `{text}`: write {FORMS}"))?;
        (multiplier, 8)
    } else if lower.ends_with("bps") {
        let p = &base[..base.len() - 3];
        return Err(format!(
            "`{text}` is ambiguous (tc reads `bps` as bytes per second, most people as bits): \
             write `{digits}{p}bit` for bits per second or `{digits}{p}B/s` for bytes per second"
        ));
    } else if let Some(p) = base.strip_suffix('B') {
        if base.len() == unit.len() {
            return Err(format!(
                "`{text}` is a size, not a rate: write `{digits}{base}/s` for bytes per second"
            ));
        }
        let multiplier =
            prefix(p).ok_or_else(|| format!("unknown unit `{unit}` in `{text}`: write {FORMS}"))?;
        (multiplier, 1)
    } else if let Some(p) = base.strip_suffix('b') {
        return Err(format!(
            "`{text}` is ambiguous: write `{digits}{p}bit` for bits per second or `{digits}{}B/s` \
             for bytes per second",
            p.to_uppercase()
        ));
    } else if unit.is_empty() || prefix(unit).is_some() {
        return Err(format!(
            "`{text}` has no rate unit: write `{digits}{unit}bit` for bits per second or \
             `{digits}{}B/s` for bytes per second",
            unit.to_uppercase()
        ));
    } else {
        return Err(format!("unknown unit `{unit}` in `{text}`: write {FORMS}"));
    };
    let bytes =
        scale(number, multiplier, divisor).ok_or_else(|| format!("`{text}` is too large"))?;
    if bytes == 0 {
        return Err(format!(
            "`{text}` is less than one byte per second: write at least `8bit` or `1B/s` (to \
             stop traffic altogether, deny it instead)"
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        #[rustfmt::skip]
        let cases: &[(&str, u64)] = &[
            ("8bit", 1), ("10Mbit", 1_250_000), ("100Mbit", 12_500_000), ("1Gbit", 125_000_000),
            ("1kbit", 125), ("1Kbit", 125), ("1.5Mbit", 187_500), ("10Mbit/s", 1_250_000),
            ("1Tbit", 125_000_000_000), ("1Mibit", 131_072), ("1B/s", 1), ("5KB/s", 5_000),
            ("5kB/s", 5_000), ("5MB/s", 5_000_000), ("1GB/s", 1_000_000_000),
            ("1KiB/s", 1024), ("2MiB/s", 2 << 20), ("1GiB/s", 1 << 30), ("12bit", 1),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_rate(text), Ok(*bytes), "{text}");
        }
        #[rustfmt::skip]
        let bad: &[(&str, &str)] = &[
            ("10", "`10` has no rate unit: write `10bit` for bits per second or `10B/s`"),
            ("10M", "write `10Mbit` for bits per second or `10MB/s`"),
            ("10Mbps", "`10Mbps` is ambiguous (tc reads `bps` as bytes per second"),
            ("10Mb/s", "write `10Mbit` for bits per second or `10MB/s`"),
            ("10MB", "`10MB` is a size, not a rate: write `10MB/s`"),
            ("10Xbit", "unknown unit `Xbit`"),
            ("10XB/s", "unknown unit `XB/s`"),
            ("4bit", "less than one byte per second"),
            ("0Mbit", "less than one byte per second"),
            ("10furlongs", "unknown unit `furlongs`"),
            ("fast", "does not start with a number"),
        ];
        for (text, fragment) in bad {
            let message = parse_rate(text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }
}
