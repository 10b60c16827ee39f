//! `when` thresholds: a number in the base unit of the rule's metric, written with
//! the grammar of that kind of value (a size, a rate, a plain number).

use super::model::MetricUnit;
use crate::units::{parse_percent, parse_plain, parse_rate, parse_size};

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
        MetricUnit::Percent => parse_percent(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            (Percent, "50%%", "is not a percentage"),
            (BytesPerSec, "50Q", "a rate such as `400Mbit` or `50MB/s` also works"),
            (BytesPerSec, "50Mbps", "ambiguous"),
            (Bytes, "1Mbit", "unknown unit `Mbit` in the size"),
        ];
        for (unit, text, fragment) in bad {
            let message = parse_threshold(*unit, text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }
}
