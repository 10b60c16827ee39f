//! Kernel lists such as `cpuset.cpus = "0-1,3"`.

/// More CPUs or nodes than any host has.
const MAX_MEMBERS: u64 = 65_536;

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
                // The whole list is bounded, not each range: the kernel's
                // spelling of an accepted list merges adjacent ranges and
                // must read back.
                if u64::from(b - a) + out.len() as u64 > MAX_MEMBERS {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Found by the property tests: two adjacent ranges each under the bound
    /// were accepted, but their kernel spelling (one range) was refused.
    #[test]
    fn adjacent_ranges_read_back() {
        let list = parse_list("0-40000,40001-65535").unwrap();
        assert_eq!(parse_list(&format_list(&list)), Ok(list));
        assert!(parse_list("6-65000,65001-70005").is_err());
    }
}
