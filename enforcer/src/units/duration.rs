//! Durations: `"100ms"`, `"5s"`, `"1m30s"`, `"1d"`; `"0"` is zero.

use std::time::Duration;

use super::number::{leading_number, scale, split_number};

/// What every duration message offers as examples.
const DURATION_FORMS: &str = "such as `100ms`, `5s`, `2m`, `1h` or `1d`";

/// A duration: one or more `NUMBER UNIT` parts (`"1m30s"`), units `ms`, `s`, `m`,
/// `h`, `d`; or `"0"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
}
