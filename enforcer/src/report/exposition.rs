//! The two exposition formats a scraper may ask for.
//!
//! `prometheus-client` encodes OpenMetrics text only. A Prometheus server
//! asks for it (`Accept: application/openmetrics-text`), but other readers
//! (promtool, older servers, a person with curl) read the Prometheus text
//! format 0.0.4, where OpenMetrics text is wrong: a counter's `# HELP` and
//! `# TYPE` name the family (`enforcer_net_bytes`) while its samples are
//! `enforcer_net_bytes_total`, so 0.0.4 readers see counters without help
//! and untyped samples, and `# UNIT` and `# EOF` are not part of it.
//! [`to_text_004`] rewrites the metadata lines; samples (names, label
//! escaping, values) are the same in both formats.

/// How a metrics response is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics text 1.0.0.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text004,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics only when named
    /// (as Prometheus does), 0.0.4 otherwise (no header, `text/plain`,
    /// `*/*`).
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a)
                if a.split(',').any(|part| {
                    let mut it = part.split(';');
                    let media = it.next().unwrap_or("").trim();
                    let refused = it.any(|p| {
                        p.trim()
                            .strip_prefix("q=")
                            .is_some_and(|q| q.trim().parse::<f64>().is_ok_and(|q| q <= 0.0))
                    });
                    media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
                }) =>
            {
                Format::OpenMetrics
            }
            _ => Format::Text004,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// OpenMetrics text (as `prometheus-client` writes it: per family `# HELP`,
/// `# TYPE`, optionally `# UNIT`, then samples; `# EOF` last) as Prometheus
/// text 0.0.4: counter families' metadata named after their `_total`
/// samples, `info` families as gauges named `_info`, `# UNIT` and `# EOF`
/// dropped.
pub fn to_text_004(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // A family's HELP line waits for its TYPE, which says the sample name.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (sample, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((h, text)) = help.take()
                && h == name
            {
                out.push_str(&format!("# HELP {sample} {}\n", help_004(text)));
            }
            out.push_str(&format!("# TYPE {sample} {kind}\n"));
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
        } else {
            if let Some((name, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {}\n", help_004(text)));
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// OpenMetrics escapes `"` in help text, 0.0.4 only `\` and newline.
fn help_004(text: &str) -> String {
    text.replace("\\\"", "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_info_and_units_become_004() {
        let om = "# HELP enforcer_net_bytes Bytes sent \\\"and\\\" received.\n\
                  # TYPE enforcer_net_bytes counter\n\
                  # UNIT enforcer_net_bytes bytes\n\
                  enforcer_net_bytes_total{group=\"a\\\"b\\nc\",direction=\"egress\"} 5\n\
                  # HELP enforcer_build Build.\n\
                  # TYPE enforcer_build info\n\
                  enforcer_build_info{version=\"0.1.0\"} 1\n\
                  # HELP enforcer_map_entries Entries.\n\
                  # TYPE enforcer_map_entries gauge\n\
                  enforcer_map_entries{map=\"X\"} 3\n\
                  # EOF\n";
        assert_eq!(
            to_text_004(om),
            "# HELP enforcer_net_bytes_total Bytes sent \"and\" received.\n\
             # TYPE enforcer_net_bytes_total counter\n\
             enforcer_net_bytes_total{group=\"a\\\"b\\nc\",direction=\"egress\"} 5\n\
             # HELP enforcer_build_info Build.\n\
             # TYPE enforcer_build_info gauge\n\
             enforcer_build_info{version=\"0.1.0\"} 1\n\
             # HELP enforcer_map_entries Entries.\n\
             # TYPE enforcer_map_entries gauge\n\
             enforcer_map_entries{map=\"X\"} 3\n"
        );
    }

    #[test]
    fn openmetrics_only_when_asked() {
        use Format::*;
        assert_eq!(Format::negotiate(None), Text004);
        assert_eq!(Format::negotiate(Some("text/plain")), Text004);
        assert_eq!(Format::negotiate(Some("*/*")), Text004);
        // What Prometheus 2.x sends.
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Text004
        );
    }
}
