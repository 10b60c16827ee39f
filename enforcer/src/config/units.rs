//! Numbers with units in the TOML policy: durations, sizes, rates, budgets and
//! `when` thresholds.
//!
//! Each parser takes the text inside the quotes and returns either the value in
//! base units or a message saying what is wrong and what to write instead; the
//! caller adds the span and the key. Arithmetic is done on integers, so
//! `"1.5Mbit"` is exactly 187500 bytes per second.

use std::time::Duration;

use super::model::MetricUnit;

/// What every duration message offers as examples.
const DURATION_FORMS: &str = "such as `100ms`, `5s`, `2m`, `1h` or `1d`";

/// `"12"`, `"1.5"` -> (digits as an integer, digits after the point). No sign, no
/// exponent, at most 30 digits (so that scaling cannot overflow silently).
fn decimal(text: &str) -> Option<(u128, u32)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = whole.len() + fraction.len();
    let all_digits = whole
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit());
    if whole.is_empty() || digits > 30 || !all_digits || text.ends_with('.') {
        return None;
    }
    let mantissa = whole
        .bytes()
        .chain(fraction.bytes())
        .fold(0u128, |n, b| n * 10 + u128::from(b - b'0'));
    Some((mantissa, u32::try_from(fraction.len()).ok()?))
}

/// `mantissa / 10^places * numerator / denominator`, rounded down; `None` if it
/// does not fit in a `u64`.
fn scale((mantissa, places): (u128, u32), numerator: u128, denominator: u128) -> Option<u64> {
    let value = mantissa.checked_mul(numerator)? / (10u128.pow(places) * denominator);
    u64::try_from(value).ok()
}

/// Splits `"10 Mbit"` into `("10", "Mbit")`.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

/// A number at the start of `text`, or a message about `text`.
fn leading_number<'t>(text: &'t str, forms: &str) -> Result<((u128, u32), &'t str), String> {
    let (number, unit) = split_number(text.trim());
    let Some(number) = decimal(number) else {
        return Err(if text.trim_start().starts_with('-') {
            format!("`{text}` is negative: write {forms}")
        } else {
            format!("`{text}` does not start with a number: write {forms}")
        });
    };
    Ok((number, unit))
}

/// A duration: one or more `NUMBER UNIT` parts (`"1m30s"`), units `ms`, `s`, `m`,
/// `h`, `d`; or `"0"`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() {
        return Err(format!("empty duration: write one {DURATION_FORMS}"));
    }
    let mut rest = trimmed;
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let (number, after) = leading_number(rest, DURATION_FORMS)
            .map_err(|_| format!("`{text}` is not a duration: write one {DURATION_FORMS}"))?;
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            "" => {
                return Err(format!(
                    "`{text}` has no unit: write `{}s` for seconds (units: `ms`, `s`, `m`, `h`, \
                     `d`)",
                    split_number(rest).0
                ));
            }
            other => {
                let hint = match other {
                    "sec" | "secs" | "second" | "seconds" => " (write `s`)",
                    "min" | "mins" | "minute" | "minutes" => " (write `m`)",
                    "hr" | "hour" | "hours" => " (write `h`)",
                    "day" | "days" => " (write `d`)",
                    "us" | "µs" | "ns" => " (the shortest unit is `ms`)",
                    _ => "",
                };
                return Err(format!(
                    "unknown unit `{other}` in `{text}`{hint}: write a duration {DURATION_FORMS}"
                ));
            }
        };
        let part = scale(number, unit_nanos, 1)
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        nanos += u128::from(part);
        rest = after.trim_start();
    }
    let nanos = u64::try_from(nanos).map_err(|_| format!("`{text}` is too long a duration"))?;
    Ok(Duration::from_nanos(nanos))
}

/// A size in bytes with binary units like memory limits: `"512"`, `"512M"`,
/// `"1.5G"`, `"10GiB"`.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    const FORMS: &str = "a number of bytes, optionally with a binary unit K, M, G, T or P \
                         (1K = 1024), such as `512M`";
    let (number, unit) = leading_number(text, FORMS)?;
    let multiplier: u128 = match unit {
        "" | "B" => 1,
        "K" | "k" | "Ki" | "KiB" => 1 << 10,
        "M" | "m" | "Mi" | "MiB" => 1 << 20,
        "G" | "g" | "Gi" | "GiB" => 1 << 30,
        "T" | "t" | "Ti" | "TiB" => 1 << 40,
        "P" | "p" | "Pi" | "PiB" => 1 << 50,
        "E" | "e" | "Ei" | "EiB" => 1 << 60,
        "KB" | "kB" | "kb" | "Kb" | "MB" | "mb" | "Mb" | "GB" | "gb" | "Gb" | "TB" | "tb"
        | "Tb" | "PB" | "pb" | "Pb" => {
            let letter = &unit[..1].to_uppercase();
            let number = split_number(text.trim()).0;
            return Err(format!(
                "`{text}` is ambiguous: sizes use binary units, so write `{number}{letter}` or \
                 `{number}{letter}iB` (1K = 1024)"
            ));
        }
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`: write {FORMS}"
            ));
        }
    };
    scale(number, multiplier, 1).ok_or_else(|| format!("`{text}` is too large"))
}

/// A rate in bytes per second, written in tc's bits per second (`"10Mbit"`,
/// decimal; `"10Mibit"`, binary) or in bytes per second (`"10MB/s"` decimal,
/// `"10MiB/s"` binary). `/s` after `bit` is allowed. At least 1 byte per second.
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
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

/// `"SIZE/WINDOW"` -> (bytes, window): `"10G/1d"`, `"1G/h"`.
pub(crate) fn parse_budget(text: &str) -> Result<(u64, Duration), String> {
    const FORM: &str = "write `SIZE/WINDOW`, such as `10G/1d` or `500M/1h`";
    let Some((size, window)) = text.split_once('/') else {
        return Err(format!("`{text}` has no window: {FORM}"));
    };
    let bytes = parse_size(size)?;
    if bytes == 0 {
        return Err(format!(
            "`{text}` allows no bytes at all: {FORM} (to stop traffic, deny it instead)"
        ));
    }
    let window = window.trim();
    let window_text = if window.starts_with(|c: char| c.is_ascii_alphabetic()) {
        format!("1{window}")
    } else {
        window.to_owned()
    };
    let window = parse_duration(&window_text)?;
    if window < Duration::from_secs(1) {
        return Err(format!(
            "the window of `{text}` is shorter than a second: use `s`, `m`, `h` or `d`, such as \
             `{}/1s` (for a rate, use `egress_rate` or `ingress_rate`)",
            size.trim()
        ));
    }
    Ok((bytes, window))
}

/// A plain non-negative number: `"5"`, `"2.5"`.
pub(crate) fn parse_plain(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let ok = decimal(trimmed).is_some();
    match trimmed.parse::<f64>() {
        Ok(value) if ok => Ok(value),
        _ if trimmed.starts_with('-') => Err(format!("`{text}` is negative: write 0 or more")),
        _ => Err(format!(
            "`{text}` is not a plain number: write digits, such as `100` or `2.5`, without a unit"
        )),
    }
}

/// A `when` threshold written as a string, in the base unit of `unit`.
pub(crate) fn parse_threshold(unit: MetricUnit, text: &str) -> Result<f64, String> {
    let lossy = |bytes: u64| bytes as f64;
    match unit {
        MetricUnit::Bytes => parse_size(text).map(lossy),
        MetricUnit::BytesPerSec => {
            let trimmed = text.trim();
            let is_rate = trimmed.contains("bit")
                || trimmed.ends_with("/s")
                || trimmed.to_ascii_lowercase().ends_with("bps");
            if is_rate {
                parse_rate(text).map(lossy)
            } else {
                parse_size(text).map(lossy).map_err(|message| {
                    format!("{message}; a rate such as `400Mbit` or `50MB/s` also works")
                })
            }
        }
        MetricUnit::Count | MetricUnit::PerSec => parse_plain(text),
        MetricUnit::Percent => {
            let number = text.trim().strip_suffix('%').unwrap_or(text);
            parse_plain(number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        #[rustfmt::skip]
        let cases: &[(&str, u64)] = &[
            ("0", 0), ("0s", 0), ("100ms", 100), ("1s", 1_000), ("2m", 120_000),
            ("1h", 3_600_000), ("1d", 86_400_000), ("1.5s", 1_500), ("1m30s", 90_000),
            ("1h 30m", 5_400_000), (" 10ms ", 10), ("0.5ms", 0),
        ];
        for (text, millis) in cases {
            let duration = parse_duration(text).unwrap();
            assert_eq!(duration.as_millis(), u128::from(*millis), "{text}");
        }
        assert_eq!(parse_duration("0.5ms").unwrap(), Duration::from_micros(500));
    }

    #[test]
    fn bad_durations() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("", "empty duration"),
            ("5", "`5` has no unit: write `5s`"),
            ("1m30", "`1m30` has no unit: write `30s`"),
            ("5sec", "unknown unit `sec` in `5sec` (write `s`)"),
            ("5us", "(the shortest unit is `ms`)"),
            ("-1s", "`-1s` is not a duration"),
            ("s", "`s` is not a duration"),
            ("1.s", "`1.s` is not a duration"),
            ("99999999999d", "too long"),
        ];
        for (text, fragment) in cases {
            let message = parse_duration(text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }

    #[test]
    fn sizes() {
        #[rustfmt::skip]
        let cases: &[(&str, u64)] = &[
            ("0", 0), ("512", 512), ("1B", 1), ("1K", 1024), ("1k", 1024), ("2KiB", 2048),
            ("50M", 50 << 20), ("1.5G", 3 << 29), ("10G", 10 << 30), ("1T", 1 << 40),
            ("1P", 1 << 50), ("1E", 1 << 60), ("10 Gi", 10 << 30),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(*bytes), "{text}");
        }
        #[rustfmt::skip]
        let bad: &[(&str, &str)] = &[
            ("10GB", "`10GB` is ambiguous: sizes use binary units, so write `10G` or `10GiB`"),
            ("1kb", "write `1K` or `1KiB` (1K = 1024)"),
            ("10X", "unknown size unit `X`"),
            ("G", "does not start with a number"),
            ("-1G", "is negative"),
            ("16E", "too large"),
        ];
        for (text, fragment) in bad {
            let message = parse_size(text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }

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

    #[test]
    fn budgets() {
        let day = Duration::from_secs(86_400);
        assert_eq!(parse_budget("10G/1d"), Ok((10 << 30, day)));
        assert_eq!(parse_budget("10G/d"), Ok((10 << 30, day)));
        assert_eq!(
            parse_budget("1G/1h"),
            Ok((1 << 30, Duration::from_secs(3600)))
        );
        assert_eq!(
            parse_budget("500M / 30m"),
            Ok((500 << 20, Duration::from_secs(1800)))
        );
        #[rustfmt::skip]
        let bad: &[(&str, &str)] = &[
            ("10G", "`10G` has no window: write `SIZE/WINDOW`"),
            ("0/1d", "allows no bytes at all"),
            ("10G/500ms", "shorter than a second"),
            ("10G/0", "shorter than a second"),
            ("10GB/1d", "sizes use binary units"),
            ("10G/1w", "unknown unit `w`"),
            ("10G/1", "has no unit"),
        ];
        for (text, fragment) in bad {
            let message = parse_budget(text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }

    #[test]
    fn thresholds() {
        use MetricUnit::*;
        #[rustfmt::skip]
        let cases: &[(MetricUnit, &str, f64)] = &[
            (Bytes, "1G", 1_073_741_824.0), (Bytes, "100", 100.0),
            (BytesPerSec, "50M", 52_428_800.0), (BytesPerSec, "400Mbit", 50_000_000.0),
            (BytesPerSec, "5MB/s", 5_000_000.0), (Count, "3", 3.0), (PerSec, "2.5", 2.5),
            (Percent, "150", 150.0), (Percent, "50%", 50.0), (Percent, "12.5 %", 12.5),
        ];
        for (unit, text, value) in cases {
            assert_eq!(parse_threshold(*unit, text), Ok(*value), "{text}");
        }
        #[rustfmt::skip]
        let bad: &[(MetricUnit, &str, &str)] = &[
            (Count, "5k", "`5k` is not a plain number"),
            (PerSec, "-1", "`-1` is negative"),
            (Percent, "50%%", "not a plain number"),
            (BytesPerSec, "50Q", "a rate such as `400Mbit` or `50MB/s` also works"),
            (BytesPerSec, "50Mbps", "ambiguous"),
            (Bytes, "1Mbit", "unknown size unit `Mbit`"),
        ];
        for (unit, text, fragment) in bad {
            let message = parse_threshold(*unit, text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }
}
