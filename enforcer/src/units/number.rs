//! Decimal numbers as people write them in front of a unit (`1.5` in `1.5G`),
//! kept as integers so that scaling by a unit is exact.

/// `"12"`, `"1.5"` -> (digits as an integer, digits after the point). No sign, no
/// exponent, at most 30 digits (so that scaling cannot overflow silently).
pub(super) fn decimal(text: &str) -> Option<(u128, u32)> {
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
pub(super) fn scale(
    (mantissa, places): (u128, u32),
    numerator: u128,
    denominator: u128,
) -> Option<u64> {
    let value = mantissa.checked_mul(numerator)? / (10u128.pow(places) * denominator);
    u64::try_from(value).ok()
}

/// Splits `"10 Mbit"` into `("10", "Mbit")`.
pub(super) fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

/// A number at the start of `text` and the rest (its unit), or a message about
/// `text` that offers `forms`.
pub(super) fn leading_number<'t>(
    text: &'t str,
    forms: &str,
) -> Result<((u128, u32), &'t str), String> {
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

/// A plain non-negative number: `"5"`, `"2.5"`.
pub fn parse_plain(text: &str) -> Result<f64, String> {
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
