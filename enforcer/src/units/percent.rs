//! Percentages: `"10%"`, `"12.5 %"` or a plain number (`10`), as written in
//! `when` thresholds on CPU and in the arbiter's knobs. The value is returned
//! as written (10 for 10%); the caller judges the range.

use super::number::parse_plain;

/// A non-negative percentage, `%` optional.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let number = trimmed.strip_suffix('%').unwrap_or(trimmed);
    parse_plain(number).map_err(|_| {
        if number.trim_start().starts_with('-') {
            format!("`{text}` is negative: write 0 or more")
        } else {
            format!(
                "`{text}` is not a percentage: write a number with or without `%`, such as \
                 `10%` or `12.5`"
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        for (text, value) in [
            ("10%", 10.0),
            ("12.5 %", 12.5),
            ("150", 150.0),
            (" 0 ", 0.0),
        ] {
            assert_eq!(parse_percent(text), Ok(value), "{text}");
        }
        for (text, fragment) in [
            ("50%%", "is not a percentage"),
            ("-5%", "is negative"),
            ("ten", "is not a percentage"),
            ("", "is not a percentage"),
        ] {
            let message = parse_percent(text).unwrap_err();
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
    }
}
