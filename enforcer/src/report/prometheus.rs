//! Prometheus (OpenMetrics text) exposition of the latest collection, encoded
//! with the `prometheus-client` crate, after node_exporter's and cAdvisor's
//! conventions: base units (`_bytes`, `_seconds`), `_total` counters, one
//! `group` label per group series, and label sets that stay the same from one
//! scrape to the next.
//!
//! The per-group counter families come from the counter table
//! ([`crate::counters`]); every other metric is declared once, in one of the
//! `*_families` functions `Export::encode` calls, its name, type, unit, help
//! and labels next to each other (the list in README's Metrics section
//! mirrors both).
//!
//! Cardinality: which groups are exported is decided by
//! [`Rollup`](super::Rollup) (a depth and a maximum count); each exported
//! group has one series per syscall of [`syscall_labels`], a fixed set plus
//! the policy's syscalls.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::bpf::MapFill;
use crate::collect::GroupReport;
use crate::counters::{COUNTERS, CounterDef, Unit as CounterUnit};

/// Syscalls every exported group has a series for, whether it made them or
/// not: the ones a dashboard asks about (file and network I/O, process
/// creation, waiting). All others are summed under `syscall="other"`.
pub const FIXED_SYSCALLS: [&str; 16] = [
    "read",
    "write",
    "openat",
    "close",
    "mmap",
    "futex",
    "epoll_wait",
    "clone",
    "clone3",
    "execve",
    "connect",
    "accept4",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
];

/// The `syscall` label values: [`FIXED_SYSCALLS`], then the policy's own
/// (its deny lists), then `other`.
pub fn syscall_labels(policy_syscalls: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = FIXED_SYSCALLS.iter().map(|s| s.to_string()).collect();
    let extra: BTreeSet<String> = policy_syscalls
        .into_iter()
        .filter(|s| !FIXED_SYSCALLS.contains(&s.as_str()) && s != "other")
        .collect();
    out.extend(extra);
    out.push("other".into());
    out
}

/// Rules the agent has in force, per kind (`enforcer_rules_loaded`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesLoaded {
    /// Network address lists, rates and budgets: one per group that has any.
    pub network: u64,
    /// Syscall deny entries.
    pub syscall: u64,
    /// Closed-loop `when` rules.
    pub when: u64,
}

/// The agent's own health.
#[derive(Debug, Clone, Default)]
pub struct AgentMetrics {
    /// Events read from the kernel ring buffer.
    pub events: u64,
    /// How long the last collection took.
    pub collection_seconds: f64,
    pub collections: u64,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    pub rules: RulesLoaded,
    /// Per-group counter maps and how full they are.
    pub maps: Vec<MapFill>,
    /// Per counting map that was ever full: events that went uncounted.
    pub map_full: std::collections::BTreeMap<&'static str, u64>,
    /// Groups left out of the metrics by the bound on their number.
    pub groups_omitted: usize,
    /// Audit log lines of the agent's own it could not write (a full disk).
    pub audit_lines_lost: u64,
    /// Per owner of a subtree quota (a policy group, or `/` observing).
    pub quotas: Vec<(String, crate::bpf::QuotaReport)>,
}

/// What the metrics endpoint serves: the agent replaces it after each collection.
#[derive(Debug, Default)]
pub struct MetricsState {
    /// The exported groups (after [`Rollup`](super::Rollup)).
    pub groups: Vec<GroupReport>,
    /// `syscall` label values ([`syscall_labels`]); empty means the fixed set.
    pub syscalls: Vec<String>,
    pub agent: AgentMetrics,
    /// The arbiter's yields, when it runs.
    pub arbiter: Option<crate::control::arbiter::Status>,
}

#[derive(Debug)]
struct Export(Arc<RwLock<MetricsState>>);

type Labels = Vec<(&'static str, String)>;

/// Counter or gauge, integer or float.
trait Sample {
    fn encode_counter(&self, m: prometheus_client::encoding::MetricEncoder<'_>)
    -> std::fmt::Result;
    fn encode_gauge(&self, m: prometheus_client::encoding::MetricEncoder<'_>) -> std::fmt::Result;
}

impl Sample for u64 {
    fn encode_counter(
        &self,
        m: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> std::fmt::Result {
        ConstCounter::new(*self).encode(m)
    }
    fn encode_gauge(&self, m: prometheus_client::encoding::MetricEncoder<'_>) -> std::fmt::Result {
        ConstGauge::new(i64::try_from(*self).unwrap_or(i64::MAX)).encode(m)
    }
}

impl Sample for f64 {
    fn encode_counter(
        &self,
        m: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> std::fmt::Result {
        ConstCounter::new(*self).encode(m)
    }
    fn encode_gauge(&self, m: prometheus_client::encoding::MetricEncoder<'_>) -> std::fmt::Result {
        ConstGauge::new(*self).encode(m)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric family: name (without unit and `_total`), help, unit, kind.
fn family<V: Sample>(
    enc: &mut DescriptorEncoder<'_>,
    (name, kind, unit, help): (&str, Kind, Option<Unit>, &str),
    series: impl IntoIterator<Item = (Labels, V)>,
) -> std::fmt::Result {
    let t = match kind {
        Kind::Counter => ConstCounter::new(0u64).metric_type(),
        Kind::Gauge => ConstGauge::new(0i64).metric_type(),
    };
    let mut m = enc.encode_descriptor(name, help, unit.as_ref(), t)?;
    for (labels, v) in series {
        let e = m.encode_family(&labels)?;
        match kind {
            Kind::Counter => v.encode_counter(e)?,
            Kind::Gauge => v.encode_gauge(e)?,
        }
    }
    Ok(())
}

fn g(r: &GroupReport) -> Labels {
    vec![("group", r.group.clone())]
}

fn with(r: &GroupReport, more: &[(&'static str, &str)]) -> Labels {
    let mut l = g(r);
    l.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    l
}

/// Per group: `(labels, value)` for each of `f`'s outputs.
fn each<V>(gs: &[GroupReport], f: impl Fn(&GroupReport) -> Vec<(Labels, V)>) -> Vec<(Labels, V)> {
    gs.iter().flat_map(f).collect()
}

/// The name prometheus-client is given for a family exposed as `exposed`:
/// without `_total` (it adds that to counters) and without the base unit
/// (it adds the unit's).
fn base_name(exposed: &'static str, unit: CounterUnit) -> (&'static str, Option<Unit>) {
    let name = exposed.strip_suffix("_total").unwrap_or(exposed);
    match (unit, name.strip_suffix("_bytes")) {
        (CounterUnit::Bytes, Some(base)) => (base, Some(Unit::Bytes)),
        _ => (name, None),
    }
}

/// One family per distinct metric of the counter table, in table order:
/// per group one series per counter in it, told apart by its labels.
fn counter_families(enc: &mut DescriptorEncoder<'_>, gs: &[GroupReport]) -> std::fmt::Result {
    let mut done: Vec<&str> = Vec::new();
    for d in COUNTERS {
        if done.contains(&d.metric.name) {
            continue;
        }
        done.push(d.metric.name);
        let members: Vec<&CounterDef> = COUNTERS
            .iter()
            .filter(|m| m.metric.name == d.metric.name)
            .collect();
        let (name, unit) = base_name(d.metric.name, d.unit);
        family(
            enc,
            (name, C, unit, d.metric.help),
            each(gs, |r| {
                members
                    .iter()
                    .map(|m| (with(r, m.labels), r.counts[m.counter]))
                    .collect()
            }),
        )?;
    }
    Ok(())
}

const C: Kind = Kind::Counter;
const G: Kind = Kind::Gauge;

impl Collector for Export {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let state = self.0.read().map_err(|_| std::fmt::Error)?;
        let gs = &state.groups;
        let e = &mut enc;
        // Per group: the counter table (eBPF), then cgroupfs and the policy.
        counter_families(e, gs)?;
        syscall_family(e, gs, &state.syscalls)?;
        usage_families(e, gs)?;
        limit_and_label_families(e, gs)?;
        // The agent itself.
        agent_families(e, &state.agent)?;
        map_families(e, &state.agent)?;
        health_families(e, &state.agent, gs.len())?;
        if let Some(a) = &state.arbiter {
            arbiter(e, a)?;
        }
        Ok(())
    }
}

/// Calls per syscall of the label set ([`syscall_labels`]; empty means the
/// fixed set); the rest of the group's calls as `other`.
fn syscall_family(
    e: &mut DescriptorEncoder<'_>,
    gs: &[GroupReport],
    syscalls: &[String],
) -> std::fmt::Result {
    let fixed;
    let names: &[String] = if syscalls.is_empty() {
        fixed = syscall_labels([]);
        &fixed
    } else {
        syscalls
    };
    family(
        e,
        (
            "enforcer_syscall_calls",
            C,
            None,
            "Calls of each syscall of a fixed set (README) plus the policy's; all others as syscall=\"other\"",
        ),
        each(gs, |r| {
            let mut other = r.counts[crate::counters::Counter::Syscalls];
            let mut out: Vec<(Labels, u64)> = names
                .iter()
                .filter(|n| n.as_str() != "other")
                .map(|n| {
                    let v = r.syscalls_by_name.get(n).copied().unwrap_or(0);
                    other = other.saturating_sub(v);
                    (with(r, &[("syscall", n)]), v)
                })
                .collect();
            out.push((with(r, &[("syscall", "other")]), other));
            out
        }),
    )
}

/// cgroupfs usage per group: memory, OOM kills, CPU time.
fn usage_families(e: &mut DescriptorEncoder<'_>, gs: &[GroupReport]) -> std::fmt::Result {
    family(
        e,
        (
            "enforcer_memory_usage",
            G,
            Some(Unit::Bytes),
            "Memory charged to the group",
        ),
        each(gs, |r| vec![(g(r), r.memory.usage_bytes)]),
    )?;
    family(
        e,
        (
            "enforcer_memory_limit",
            G,
            Some(Unit::Bytes),
            "Memory limit of the group (limited groups only)",
        ),
        each(gs, |r| {
            (r.memory.limit_bytes > 0)
                .then(|| (g(r), r.memory.limit_bytes))
                .into_iter()
                .collect()
        }),
    )?;
    family(
        e,
        (
            "enforcer_oom_kills",
            C,
            None,
            "Processes of the group killed by the OOM killer",
        ),
        each(gs, |r| vec![(g(r), r.memory.oom_kills)]),
    )?;
    family(
        e,
        (
            "enforcer_cpu_usage",
            C,
            Some(Unit::Seconds),
            "CPU time used by the group",
        ),
        each(gs, |r| vec![(g(r), r.cpu.usage_usec as f64 / 1e6)]),
    )
}

/// Per group: the policy's budgets, and what runs in the group.
fn limit_and_label_families(e: &mut DescriptorEncoder<'_>, gs: &[GroupReport]) -> std::fmt::Result {
    let budgets = |r: &GroupReport, f: fn(&crate::bpf::BudgetReport) -> u64| {
        r.limits
            .iter()
            .filter_map(|l| {
                l.budget
                    .as_ref()
                    .map(|b| (with(r, &[("direction", l.direction)]), f(b)))
            })
            .collect::<Vec<_>>()
    };
    family(
        e,
        (
            "enforcer_budget",
            G,
            Some(Unit::Bytes),
            "Byte budget per window of the group (budgeted groups only)",
        ),
        each(gs, |r| budgets(r, |b| b.bytes)),
    )?;
    family(
        e,
        (
            "enforcer_budget_remaining",
            G,
            Some(Unit::Bytes),
            "Bytes left of the budget in the current window",
        ),
        each(gs, |r| budgets(r, |b| b.remaining_bytes)),
    )?;
    family(
        e,
        (
            "enforcer_group_info",
            G,
            None,
            "What runs in the group: systemd unit, container runtime, id and name, Kubernetes pod UID and QoS class",
        ),
        each(gs, |r| {
            let w = &r.workload;
            if w.is_empty() {
                return Vec::new();
            }
            let mut l = g(r);
            for (k, v) in [
                ("unit", &w.unit),
                ("runtime", &w.runtime),
                ("container_id", &w.container_id),
                ("container_name", &w.container_name),
                ("pod_uid", &w.pod_uid),
                ("qos_class", &w.qos_class),
            ] {
                l.push((k, v.clone().unwrap_or_default()));
            }
            vec![(l, 1u64)]
        }),
    )
}

/// The agent's build and its collections.
fn agent_families(e: &mut DescriptorEncoder<'_>, a: &AgentMetrics) -> std::fmt::Result {
    family(
        e,
        (
            "enforcer_build_info",
            G,
            None,
            "The agent's version (always 1)",
        ),
        [(
            vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            1u64,
        )],
    )?;
    family(
        e,
        (
            "enforcer_collection_duration",
            G,
            Some(Unit::Seconds),
            "How long the last collection of every counter took",
        ),
        [(vec![], a.collection_seconds)],
    )?;
    family(
        e,
        (
            "enforcer_collections",
            C,
            None,
            "Collections done since the agent started",
        ),
        [(vec![], a.collections)],
    )
}

/// The per-group kernel maps: how full, what overflowed, subtree quotas.
fn map_families(e: &mut DescriptorEncoder<'_>, a: &AgentMetrics) -> std::fmt::Result {
    family(
        e,
        (
            "enforcer_map_entries",
            G,
            None,
            "Entries in each per-group kernel map",
        ),
        a.maps
            .iter()
            .map(|m| (vec![("map", m.name.to_string())], m.entries)),
    )?;
    family(
        e,
        (
            "enforcer_map_capacity",
            G,
            None,
            "Entries each per-group kernel map can hold; a full map counts no new group",
        ),
        a.maps
            .iter()
            .map(|m| (vec![("map", m.name.to_string())], m.capacity)),
    )?;
    family(
        e,
        (
            "enforcer_map_full",
            C,
            None,
            "Events a counting map had no room for: counted in the group's nearest counted ancestor where it has one, else uncounted (raise its capacity: --max-groups, --max-syscall-keys)",
        ),
        a.map_full
            .iter()
            .map(|(m, n)| (vec![("map", (*m).to_string())], *n)),
    )?;
    family(
        e,
        (
            "enforcer_subgroups_counted",
            G,
            None,
            "Groups below this one with counters of their own",
        ),
        a.quotas
            .iter()
            .map(|(g, q)| (vec![("group", g.clone())], q.admitted)),
    )?;
    family(
        e,
        (
            "enforcer_subgroups_quota",
            G,
            None,
            "How many groups below this one may have counters of their own (--max-subgroups)",
        ),
        a.quotas
            .iter()
            .map(|(g, q)| (vec![("group", g.clone())], u64::from(q.quota))),
    )?;
    family(
        e,
        (
            "enforcer_subgroups_folded",
            C,
            None,
            "Events of groups below this one beyond its quota, counted in their nearest counted ancestor",
        ),
        a.quotas
            .iter()
            .map(|(g, q)| (vec![("group", g.clone())], q.folded)),
    )
}

/// Events, audit lines, reloads, rules in force, groups exported.
fn health_families(
    e: &mut DescriptorEncoder<'_>,
    a: &AgentMetrics,
    exported: usize,
) -> std::fmt::Result {
    family(
        e,
        (
            "enforcer_events",
            C,
            None,
            "Events read from the kernel ring buffer",
        ),
        [(vec![], a.events)],
    )?;
    family(
        e,
        (
            "enforcer_audit_lines_lost",
            C,
            None,
            "Audit log lines of the agent's own (notes, rule and arbiter changes) it could not write, e.g. with the disk full; kernel events wait in the ring buffer instead (what does not fit: enforcer_events_lost_total)",
        ),
        [(vec![], a.audit_lines_lost)],
    )?;
    family(
        e,
        ("enforcer_reloads", C, None, "Policy reloads, by result"),
        [
            (vec![("result", "success".to_string())], a.reloads_ok),
            (vec![("result", "failure".to_string())], a.reloads_failed),
        ],
    )?;
    family(
        e,
        ("enforcer_rules_loaded", G, None, "Rules in force, by kind"),
        [
            ("network", a.rules.network),
            ("syscall", a.rules.syscall),
            ("when", a.rules.when),
        ]
        .map(|(k, v)| (vec![("kind", k.to_string())], v)),
    )?;
    family(
        e,
        (
            "enforcer_metrics_groups",
            G,
            None,
            "Groups exported, and left out by metrics_max_groups",
        ),
        [
            (vec![("state", "exported".to_string())], exported as u64),
            (
                vec![("state", "omitted".to_string())],
                a.groups_omitted as u64,
            ),
        ],
    )
}

/// The arbiter's series: steps yielded per group, resource and the group
/// yielded to; changes made; its own CPU time.
fn arbiter(
    enc: &mut DescriptorEncoder<'_>,
    a: &crate::control::arbiter::Status,
) -> std::fmt::Result {
    family(
        enc,
        (
            "enforcer_arbiter_yield_steps",
            G,
            None,
            "Steps a group yields of a resource to a higher-priority group (absent: none)",
        ),
        a.yields.iter().map(|(group, resource, steps, to)| {
            (
                vec![
                    ("group", group.clone()),
                    ("resource", (*resource).to_string()),
                    ("to", to.clone()),
                ],
                u64::from(*steps),
            )
        }),
    )?;
    family(
        enc,
        (
            "enforcer_arbiter_changes",
            C,
            None,
            "Yields and restores the arbiter made",
        ),
        [(vec![], a.changes)],
    )?;
    family(
        enc,
        (
            "enforcer_arbiter_cpu",
            C,
            Some(Unit::Seconds),
            "CPU time the arbiter used",
        ),
        [(vec![], a.cpu_seconds)],
    )
}

/// Encode the current state as OpenMetrics text.
pub fn render(
    state: &Arc<RwLock<MetricsState>>,
    format: super::Format,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Export(state.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(match format {
        super::Format::OpenMetrics => out,
        super::Format::Text004 => super::exposition::to_text_004(&out),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counter;

    fn report() -> GroupReport {
        let mut r =
            GroupReport::empty("kubepods/besteffort/pod6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b");
        r.counts[Counter::EgressBytes] = 128_000;
        r.counts[Counter::EgressPackets] = 1000;
        r.counts[Counter::Syscalls] = 20;
        r.syscalls_by_name = [
            ("read".to_string(), 9),
            ("ptrace".into(), 1),
            ("getppid".into(), 5),
        ]
        .into();
        r.cpu.usage_usec = 1_500_000;
        r.counts[Counter::SyscallsKilled] = 2;
        r
    }

    fn text(syscalls: Vec<String>) -> String {
        let state = Arc::new(RwLock::new(MetricsState {
            groups: vec![report()],
            syscalls,
            agent: AgentMetrics::default(),
            arbiter: None,
        }));
        render(&state, crate::report::Format::OpenMetrics).unwrap()
    }

    #[test]
    fn base_units_hook_and_action_and_a_stable_syscall_set() {
        let t = text(syscall_labels(["ptrace".to_string()]));
        let g = "group=\"kubepods/besteffort/pod6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b\"";
        for line in [
            format!("enforcer_net_bytes_total{{{g},direction=\"egress\"}} 128000"),
            format!("enforcer_cpu_usage_seconds_total{{{g}}} 1.5"),
            format!("enforcer_denied_total{{{g},hook=\"sys_enter\",action=\"kill\"}} 2"),
            format!("enforcer_syscall_calls_total{{{g},syscall=\"read\"}} 9"),
            format!("enforcer_syscall_calls_total{{{g},syscall=\"write\"}} 0"),
            format!("enforcer_syscall_calls_total{{{g},syscall=\"ptrace\"}} 1"),
            format!("enforcer_syscall_calls_total{{{g},syscall=\"other\"}} 10"),
            "enforcer_build_info{version=\"".to_string(),
            format!(
                "enforcer_group_info{{{g},unit=\"\",runtime=\"\",container_id=\"\",container_name=\"\",pod_uid=\"6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b\",qos_class=\"besteffort\"}} 1"
            ),
        ] {
            assert!(t.contains(&line), "{line} missing:\n{t}");
        }
        assert!(!t.contains("getppid"), "not in the label set: {t}");
        assert!(!t.contains("usec"), "{t}");
        assert!(t.ends_with("# EOF\n"), "{t}");
        // The same label set whatever the group did.
        let series = |t: &str| {
            t.lines()
                .filter(|l| l.starts_with("enforcer_syscall_calls_total"))
                .count()
        };
        assert_eq!(series(&t), FIXED_SYSCALLS.len() + 2);
        assert_eq!(series(&text(Vec::new())), FIXED_SYSCALLS.len() + 1);
    }

    /// Every counter of the table is served, under its family with its
    /// labels and its value; among them the ones no hand-written family had.
    #[test]
    fn every_counter_is_a_series_of_its_family() {
        let mut r = GroupReport::empty("web");
        for (i, c) in Counter::all().enumerate() {
            r.counts[c] = 1000 + i as u64;
        }
        let state = Arc::new(RwLock::new(MetricsState {
            groups: vec![r],
            ..MetricsState::default()
        }));
        let t = render(&state, crate::report::Format::OpenMetrics).unwrap();
        for (i, d) in COUNTERS.iter().enumerate() {
            let mut labels = vec!["group=\"web\"".to_string()];
            labels.extend(d.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")));
            let line = format!("{}{{{}}} {}\n", d.metric.name, labels.join(","), 1000 + i);
            assert!(t.contains(&line), "{line} missing:\n{t}");
            assert!(
                t.contains(&format!(
                    "# TYPE {} counter",
                    d.metric.name.trim_end_matches("_total")
                )),
                "{}: one counter family:\n{t}",
                d.metric.name
            );
        }
        for name in [
            "enforcer_events_lost_total{group=\"web\"}",
            "enforcer_syscalls_logged_total{group=\"web\"}",
            "enforcer_dropped_bytes_total{group=\"web\",direction=\"egress\"}",
            "enforcer_dropped_bytes_total{group=\"web\",direction=\"ingress\"}",
        ] {
            assert!(t.contains(name), "{name} missing:\n{t}");
        }
        // One family per name: the denials' five series under one TYPE line.
        assert_eq!(
            t.matches("# TYPE enforcer_denied counter").count(),
            1,
            "{t}"
        );
    }

    #[test]
    fn arbiter_yields_changes_and_its_own_cpu() {
        let state = Arc::new(RwLock::new(MetricsState {
            groups: vec![report()],
            arbiter: Some(crate::control::arbiter::Status {
                yields: vec![("batch".into(), "cpu", 2, "web/api".into())],
                changes: 3,
                cpu_seconds: 0.5,
            }),
            ..Default::default()
        }));
        let t = render(&state, crate::report::Format::OpenMetrics).unwrap();
        for line in [
            "enforcer_arbiter_yield_steps{group=\"batch\",resource=\"cpu\",to=\"web/api\"} 2",
            "enforcer_arbiter_changes_total 3",
            "enforcer_arbiter_cpu_seconds_total 0.5",
        ] {
            assert!(t.contains(line), "{line} missing:\n{t}");
        }
    }
}
