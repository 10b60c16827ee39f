//! What every row of the table must keep: what makes its JSON, metrics,
//! columns and `when` names valid and distinct.

use std::collections::{BTreeMap, BTreeSet};

use enforcer_common::{EnforceCounter, NetCounter};

use super::*;
use crate::bpf::GroupCounters;

fn snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__")
        && !s.ends_with('_')
}

#[test]
fn a_variant_is_its_row() {
    for (i, d) in COUNTERS.iter().enumerate() {
        assert_eq!(d.counter as usize, i, "{:?}", d.counter);
        assert_eq!(d.counter.def().json, d.json);
    }
    assert_eq!(Counter::all().count(), Counter::COUNT);
}

#[test]
fn json_names_are_unique_and_snake_case() {
    let mut seen = BTreeSet::new();
    for d in COUNTERS {
        let (section, key) = d.json;
        assert!(snake_case(section) && snake_case(key), "{section}.{key}");
        assert!(seen.insert(d.json), "{section}.{key} twice");
        // The section's other keys in `stats --json`.
        assert!(
            ![
                "memory",
                "cpu",
                "rates",
                "workload",
                "limits",
                "group",
                "cgroup_id"
            ]
            .contains(&section),
            "{section}"
        );
        assert_ne!((section, key), ("syscalls", "by_name"));
    }
}

#[test]
fn every_counter_has_one_series_of_a_prometheus_counter_family() {
    let mut series = BTreeSet::new();
    let mut families: BTreeMap<&str, &CounterDef> = BTreeMap::new();
    for d in COUNTERS {
        let name = d.metric.name;
        assert!(
            snake_case(name) && name.starts_with("enforcer_"),
            "{name}: snake_case, enforcer_ prefix"
        );
        // Counters end in `_total`, once; base units only, and bytes named.
        let base = name
            .strip_suffix("_total")
            .unwrap_or_else(|| panic!("{name}: a counter ends in _total"));
        assert!(!base.ends_with("_total"), "{name}");
        for unit in [
            "_kib",
            "_kb",
            "_mb",
            "_bits",
            "_ms",
            "_usec",
            "_nanoseconds",
        ] {
            assert!(!base.contains(unit), "{name}: base units only");
        }
        assert_eq!(
            base.ends_with("_bytes"),
            d.unit == Unit::Bytes,
            "{name}: bytes are named _bytes_total, only bytes"
        );
        assert!(!d.metric.help.trim().is_empty(), "{name}: help");
        for (k, v) in d.labels {
            assert!(snake_case(k) && *k != "group", "{name}: label {k}");
            assert!(!v.is_empty(), "{name}: label {k}");
        }
        let mut labels: Vec<_> = d.labels.to_vec();
        labels.sort();
        assert!(series.insert((name, labels)), "{name}{:?} twice", d.labels);
        // A family's counters agree on all but their label values.
        let first = *families.entry(name).or_insert(d);
        assert_eq!(first.metric, d.metric, "{name}: one help");
        assert_eq!(first.unit, d.unit, "{name}: one unit");
        let keys = |d: &CounterDef| d.labels.iter().map(|(k, _)| *k).collect::<Vec<_>>();
        assert_eq!(keys(first), keys(d), "{name}: one label set");
    }
    // The families agent self-metrics and cgroupfs use are not counters'.
    for name in [
        "enforcer_syscall_calls_total",
        "enforcer_oom_kills_total",
        "enforcer_cpu_usage_seconds_total",
        "enforcer_events_total",
        "enforcer_map_full_total",
    ] {
        assert!(!families.contains_key(name), "{name} is hand-written");
    }
}

#[test]
fn rates_and_when_names_are_unique_and_keep_the_documented_vocabulary() {
    let mut rates = BTreeSet::new();
    for d in COUNTERS {
        if let Some(rate) = d.rate {
            assert!(snake_case(rate) && rate.ends_with("_per_sec"), "{rate}");
            assert!(rates.insert(rate), "{rate} twice");
        }
        assert_ne!(d.rate, Some("cpu_percent"));
    }
    let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    for m in Metric::ALL {
        assert!(snake_case(m.name()), "{m}");
        assert_eq!(Metric::from_name(m.name()), Some(m));
        if let Metric::Rate(c) = m {
            assert_eq!(c.def().rate, Some(m.name()));
        }
    }
    // Policies written against earlier versions keep parsing, and messages
    // list these in this order; new metrics may come between them.
    let documented = [
        "egress_bytes",
        "egress_bytes_per_sec",
        "ingress_bytes",
        "ingress_bytes_per_sec",
        "egress_packets_per_sec",
        "ingress_packets_per_sec",
        "connect_attempts_per_sec",
        "syscalls_per_sec",
        "memory_usage_bytes",
        "oom_kills",
        "cpu_usage_percent",
    ];
    let kept: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| documented.contains(n))
        .collect();
    assert_eq!(kept, documented);
}

#[test]
fn columns_are_distinct_and_sum_counters_of_one_unit() {
    let cols = columns();
    for (i, c) in cols.iter().enumerate() {
        assert!(snake_case(c.name), "{c:?}");
        assert!(!c.header.is_empty() && c.header == c.header.to_uppercase());
        assert_eq!(c.rate_json.is_some(), c.has_rate(), "{c:?}: rate_json");
        let keys = |c: &ColumnDef| [Some(c.json), c.rate_json].into_iter().flatten();
        for key in keys(c) {
            assert!(snake_case(key), "{c:?}");
            // The other keys of a `top --json` row.
            assert!(
                ![
                    "group",
                    "indent",
                    "workload",
                    "memory_bytes",
                    "cpu_percent",
                    "folded",
                    "measured"
                ]
                .contains(&key),
                "{c:?}: {key}"
            );
        }
        for o in &cols[i + 1..] {
            assert!(
                c.name != o.name && c.header != o.header && c.key != o.key,
                "{c:?} and {o:?}"
            );
            for key in keys(c) {
                assert!(keys(o).all(|k| k != key), "{c:?} and {o:?}: {key}");
            }
        }
        // Group, memory, CPU and the view's own keys are taken.
        assert!(!["group", "memory", "cpu"].contains(&c.name), "{c:?}");
        assert!(!"nmcqjkgGtrs/+-0123456789".contains(c.key), "{c:?}");
        let units: BTreeSet<_> = COUNTERS
            .iter()
            .filter(|d| d.column == Some(*c))
            .map(|d| d.unit == Unit::Bytes)
            .collect();
        assert_eq!(units.len(), 1, "{c:?}: one unit");
    }
    assert!(cols.contains(&EGRESS));
}

/// Every field of the kernel's per-group enforcement counter is some
/// counter's: its name is in a row's JSON key (`egress_dropped` in
/// `egress_dropped_bytes`). A new kernel field without a row fails here.
#[test]
fn every_kernel_enforcement_field_has_a_row() {
    let text = format!("{:?}", EnforceCounter::default());
    let mut depth = 0;
    let mut fields = Vec::new();
    let mut word = String::new();
    for ch in text.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ':' if depth == 1 => fields.push(std::mem::take(&mut word)),
            c if c.is_alphanumeric() || c == '_' => {
                word.push(c);
                continue;
            }
            _ => {}
        }
        word.clear();
    }
    assert!(fields.len() >= 9, "{fields:?} from {text}");
    for f in fields.iter().filter(|f| !f.starts_with('_')) {
        assert!(
            COUNTERS
                .iter()
                .any(|d| d.json.0 == "enforcement" && d.json.1.contains(f.as_str())),
            "EnforceCounter.{f} has no row in the counter table"
        );
    }
}

/// No two rows read the same kernel value (a copy-pasted reader): with
/// every field a distinct power of two, every counter reads a distinct
/// value.
#[test]
fn readers_read_distinct_fields() {
    let bit = |i: u32| 1u64 << i;
    // Field by field, so a new kernel field needs no change here.
    let net = |bytes, packets| {
        let mut n = NetCounter::default();
        (n.bytes, n.packets) = (bytes, packets);
        n
    };
    let mut c = GroupCounters {
        egress: net(bit(0), bit(1)),
        ingress: net(bit(2), bit(3)),
        syscalls: [
            (crate::arch::SyscallId::native(0), bit(8)),
            (crate::arch::SyscallId::compat(1), bit(9)),
        ]
        .into(),
        ..GroupCounters::default()
    };
    let s = &mut c.sock;
    (s.connect4, s.connect6, s.bind4, s.bind6) = (bit(4), bit(5), bit(6), bit(7));
    let e = &mut c.enforce;
    e.connect_denied = bit(10);
    e.bind_denied = bit(11);
    e.sendmsg_denied = bit(12);
    e.syscalls_denied = bit(13);
    e.syscalls_killed = bit(14);
    e.syscalls_logged = bit(15);
    e.egress_dropped = net(bit(16), bit(17));
    e.ingress_dropped = net(bit(18), bit(19));
    e.events_lost = bit(20);
    e.egress_marked = bit(21);
    let counts = Counts::read(&c);
    let mut seen = BTreeMap::new();
    for (d, v) in counts.iter().filter(|(_, v)| *v != 0) {
        if let Some(other) = seen.insert(v, d.counter) {
            panic!("{:?} and {other:?} read the same value", d.counter);
        }
    }
    assert_eq!(counts[Counter::ConnectAttempts], bit(4) | bit(5));
    assert_eq!(counts[Counter::Syscalls], bit(8) | bit(9));
    assert_eq!(counts[Counter::EventsLost], bit(20));
}
