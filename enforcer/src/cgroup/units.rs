//! Parsing the values people write: sizes (`50M`), CPU and node lists (`0-1,3`).

/// A byte size or "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Bytes(u64),
    Max,
}

/// Parse a size the way the kernel's memparse reads it: decimal digits with an
/// optional binary suffix K, M, G, T, P or E (any case, an optional trailing `B`
/// or `iB`). `max` (or v1's `-1`) is no limit. Errors say what was wrong.
pub fn parse_size(input: &str) -> Result<Size, String> {
    let s = input.trim();
    if s.eq_ignore_ascii_case("max") || s == "-1" {
        return Ok(Size::Max);
    }
    if s.starts_with('-') {
        return Err("a size cannot be negative; write `max` for no limit".into());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(split);
    if digits.is_empty() {
        return Err("expected a number of bytes such as 50000000, 50M or 1G, or `max`".into());
    }
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        "P" | "PB" | "PIB" => 50,
        "E" | "EB" | "EIB" => 60,
        _ => {
            return Err(format!(
                "unknown unit {suffix:?}; use K, M, G, T, P or E (powers of 1024), or plain bytes"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "the number is too large".to_string())?;
    n.checked_mul(1u64 << shift)
        .map(Size::Bytes)
        .ok_or_else(|| "the size does not fit in 64 bits".into())
}

/// Parse a kernel list such as `0-1,3` into its members, sorted and deduplicated.
pub fn parse_list(input: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    let s = input.trim();
    if s.is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let part = part.trim();
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("{part:?} is not a number or range like 0-3"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("range {part:?} runs backwards"));
                }
                if b - a > 65_536 {
                    return Err(format!("range {part:?} is implausibly large"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Render members back into kernel list syntax (`0-1,3`).
pub fn format_list(items: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut iter = items.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
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
        assert_eq!(parse_size("50000000"), Ok(Size::Bytes(50_000_000)));
        assert_eq!(parse_size("50M"), Ok(Size::Bytes(50 << 20)));
        assert_eq!(parse_size("1G"), Ok(Size::Bytes(1 << 30)));
        assert_eq!(parse_size("4k"), Ok(Size::Bytes(4096)));
        assert_eq!(parse_size("2MiB"), Ok(Size::Bytes(2 << 20)));
        assert_eq!(parse_size("max"), Ok(Size::Max));
        assert_eq!(parse_size("-1"), Ok(Size::Max));
        assert!(parse_size("10XB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("-5").unwrap_err().contains("negative"));
        assert!(parse_size("M").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("16E").unwrap_err().contains("64 bits"));
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("0-1,3"), Ok(vec![0, 1, 3]));
        assert_eq!(parse_list(" 3,1-2,2 "), Ok(vec![1, 2, 3]));
        assert_eq!(parse_list(""), Ok(vec![]));
        assert!(parse_list("2-1").is_err());
        assert!(parse_list("a").is_err());
        assert_eq!(format_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_list(&[]), "");
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(50 << 20), "50.0 MiB");
    }
}
