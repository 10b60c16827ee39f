//! Byte budgets: `"SIZE/WINDOW"`, a size (as for memory limits) per duration.

use std::time::Duration;

use super::duration::parse_duration;
use super::size::parse_size;

/// `"SIZE/WINDOW"` -> (bytes, window): `"10G/1d"`, `"1G/h"`.
pub fn parse_budget(text: &str) -> Result<(u64, Duration), String> {
    const FORM: &str = "write `SIZE/WINDOW`, such as `10G/1d` or `500M/1h`";
    let Some((size, window)) = text.split_once('/') else {
        return Err(format!("`{text}` has no window: {FORM}"));
    };
    // The part's own message, with the whole budget it came from named.
    let in_budget = |e: String| format!("in the budget `{text}`: {e}");
    let bytes = parse_size(size).map_err(in_budget)?;
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
    let window = parse_duration(&window_text).map_err(in_budget)?;
    if window < Duration::from_secs(1) {
        return Err(format!(
            "the window of `{text}` is shorter than a second: use `s`, `m`, `h` or `d`, such as \
             `{}/1s` (for a rate, use `egress_rate` or `ingress_rate`)",
            size.trim()
        ));
    }
    Ok((bytes, window))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
