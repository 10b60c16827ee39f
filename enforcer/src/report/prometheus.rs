//! Prometheus (OpenMetrics text) exposition of the latest collection, encoded
//! with the `prometheus-client` crate. One series per group and counter, labelled
//! with the group path; syscall series limited to each group's top N so the
//! number of series stays bounded.

use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::collect::GroupReport;

/// What the metrics endpoint serves: the agent replaces it after each collection.
#[derive(Debug, Default)]
pub struct MetricsState {
    pub groups: Vec<GroupReport>,
    /// Events that found a counting map full, per map.
    pub map_full: std::collections::BTreeMap<&'static str, u64>,
    pub events: u64,
    pub top_syscalls: usize,
    /// The arbiter's yields, when it runs.
    pub arbiter: Option<crate::control::arbiter::Status>,
}

#[derive(Debug)]
struct Export(Arc<RwLock<MetricsState>>);

type Labels = Vec<(&'static str, String)>;

fn counters(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, unit, ConstCounter::new(0u64).metric_type())?;
    for (labels, v) in series {
        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauges(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: &[(Labels, i64)],
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, unit, ConstGauge::new(0i64).metric_type())?;
    for (labels, v) in series {
        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn g(group: &str) -> Labels {
    vec![("group", group.to_string())]
}

fn with(group: &str, k: &'static str, v: &str) -> Labels {
    vec![("group", group.to_string()), (k, v.to_string())]
}

impl Collector for Export {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let state = self.0.read().map_err(|_| std::fmt::Error)?;
        let gs = &state.groups;
        let mut bytes = Vec::new();
        let mut packets = Vec::new();
        let mut connects = Vec::new();
        let mut binds = Vec::new();
        let mut sys_total = Vec::new();
        let mut sys_by = Vec::new();
        let mut mem = Vec::new();
        let mut limit = Vec::new();
        let mut ooms = Vec::new();
        let mut cpu = Vec::new();
        let mut denied = Vec::new();
        let mut dropped = Vec::new();
        let mut lost = Vec::new();
        for r in gs {
            let e = &r.enforcement;
            for (what, v) in [
                ("connect", e.connect_denied),
                ("bind", e.bind_denied),
                ("sendmsg", e.sendmsg_denied),
                ("syscall_denied", e.syscalls_denied),
                ("syscall_killed", e.syscalls_killed),
            ] {
                denied.push((with(&r.group, "what", what), v));
            }
            dropped.push((
                with(&r.group, "direction", "egress"),
                e.egress_dropped_packets,
            ));
            dropped.push((
                with(&r.group, "direction", "ingress"),
                e.ingress_dropped_packets,
            ));
            if e.events_lost > 0 {
                lost.push((g(&r.group), e.events_lost));
            }
            let n = &r.net;
            bytes.push((with(&r.group, "direction", "egress"), n.egress_bytes));
            bytes.push((with(&r.group, "direction", "ingress"), n.ingress_bytes));
            packets.push((with(&r.group, "direction", "egress"), n.egress_packets));
            packets.push((with(&r.group, "direction", "ingress"), n.ingress_packets));
            connects.push((g(&r.group), n.connect_attempts));
            binds.push((g(&r.group), n.bind_attempts));
            sys_total.push((g(&r.group), r.syscalls.total));
            let mut top: Vec<(&String, &u64)> = r.syscalls.by_name.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (name, v) in top.into_iter().take(state.top_syscalls) {
                sys_by.push((with(&r.group, "syscall", name), *v));
            }
            mem.push((g(&r.group), r.memory.usage_bytes as i64));
            if r.memory.limit_bytes > 0 {
                limit.push((g(&r.group), r.memory.limit_bytes as i64));
            }
            ooms.push((g(&r.group), r.memory.oom_kills));
            cpu.push((g(&r.group), r.cpu.usage_usec));
        }
        counters(
            &mut enc,
            "enforcer_net",
            "Bytes sent or received by sockets of the group",
            Some(&Unit::Bytes),
            &bytes,
        )?;
        counters(
            &mut enc,
            "enforcer_net_packets",
            "Packets sent or received by sockets of the group",
            None,
            &packets,
        )?;
        counters(
            &mut enc,
            "enforcer_connect_attempts",
            "connect() calls made in the group",
            None,
            &connects,
        )?;
        counters(
            &mut enc,
            "enforcer_bind_attempts",
            "bind() calls made in the group",
            None,
            &binds,
        )?;
        counters(
            &mut enc,
            "enforcer_syscalls",
            "System calls entered by processes of the group",
            None,
            &sys_total,
        )?;
        counters(
            &mut enc,
            "enforcer_syscall_calls",
            "Calls of each of the group's most frequent syscalls (top N)",
            None,
            &sys_by,
        )?;
        gauges(
            &mut enc,
            "enforcer_memory_usage",
            "Memory charged to the group",
            Some(&Unit::Bytes),
            &mem,
        )?;
        gauges(
            &mut enc,
            "enforcer_memory_limit",
            "Memory limit of the group",
            Some(&Unit::Bytes),
            &limit,
        )?;
        counters(
            &mut enc,
            "enforcer_oom_kills",
            "Processes of the group killed by the OOM killer",
            None,
            &ooms,
        )?;
        counters(
            &mut enc,
            "enforcer_cpu_usage_usec",
            "CPU time used by the group in microseconds",
            None,
            &cpu,
        )?;
        let full: Vec<(Labels, u64)> = state
            .map_full
            .iter()
            .map(|(m, n)| (vec![("map", (*m).to_string())], *n))
            .collect();
        counters(
            &mut enc,
            "enforcer_map_full",
            "Events that went uncounted because a counting map was full (raise its capacity)",
            None,
            &full,
        )?;
        counters(
            &mut enc,
            "enforcer_events_lost",
            "Events of the group the kernel could not queue (ring buffer full): missing from the audit log",
            None,
            &lost,
        )?;
        counters(
            &mut enc,
            "enforcer_denied",
            "Operations refused (or processes killed) by the group's rules",
            None,
            &denied,
        )?;
        counters(
            &mut enc,
            "enforcer_dropped_packets",
            "Packets dropped by the group's rate limits and budgets",
            None,
            &dropped,
        )?;
        counters(
            &mut enc,
            "enforcer_events",
            "Events read from the kernel ring buffer",
            None,
            &[(vec![], state.events)],
        )?;
        if let Some(a) = &state.arbiter {
            arbiter(&mut enc, a)?;
        }
        Ok(())
    }
}

/// The arbiter's series: steps yielded per group, resource and the group
/// yielded to; changes made; its own CPU time.
fn arbiter(
    enc: &mut DescriptorEncoder<'_>,
    a: &crate::control::arbiter::Status,
) -> Result<(), std::fmt::Error> {
    let steps: Vec<(Labels, i64)> = a
        .yields
        .iter()
        .map(|(group, resource, steps, to)| {
            (
                vec![
                    ("group", group.clone()),
                    ("resource", (*resource).to_string()),
                    ("to", to.clone()),
                ],
                i64::from(*steps),
            )
        })
        .collect();
    gauges(
        enc,
        "enforcer_arbiter_yield_steps",
        "Steps a group yields of a resource to a higher-priority group (absent: none)",
        None,
        &steps,
    )?;
    counters(
        enc,
        "enforcer_arbiter_changes",
        "Yields and restores the arbiter made",
        None,
        &[(vec![], a.changes)],
    )?;
    counters(
        enc,
        "enforcer_arbiter_cpu_usec",
        "CPU time the arbiter used, in microseconds",
        None,
        &[(vec![], (a.cpu_seconds * 1e6) as u64)],
    )
}

/// Encode the current state as OpenMetrics text.
pub fn render(state: &Arc<RwLock<MetricsState>>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Export(state.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{GroupReport, NetReport, SyscallReport};

    #[test]
    fn exposition_has_one_series_per_group_and_counter() {
        let mut by_name = std::collections::BTreeMap::new();
        by_name.insert("getppid".to_string(), 5);
        by_name.insert("read".to_string(), 9);
        by_name.insert("write".to_string(), 1);
        let report = GroupReport {
            group: "web/api".into(),
            cgroup_id: 7,
            net: NetReport {
                egress_bytes: 128_000,
                egress_packets: 1000,
                ..Default::default()
            },
            syscalls: SyscallReport { total: 15, by_name },
            memory: Default::default(),
            cpu: Default::default(),
            enforcement: Default::default(),
            rates: None,
        };
        let state = Arc::new(RwLock::new(MetricsState {
            groups: vec![report],
            events: 0,
            top_syscalls: 2,
            map_full: [("SYSCALLS", 7)].into_iter().collect(),
            arbiter: Some(crate::control::arbiter::Status {
                yields: vec![("batch".into(), "cpu", 2, "web/api".into())],
                changes: 3,
                cpu_seconds: 0.5,
            }),
        }));
        let text = render(&state).unwrap();
        assert!(
            text.contains(
                "enforcer_arbiter_yield_steps{group=\"batch\",resource=\"cpu\",to=\"web/api\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("enforcer_arbiter_cpu_usec_total 500000"),
            "{text}"
        );
        assert!(
            text.contains(
                "enforcer_net_bytes_total{group=\"web/api\",direction=\"egress\"} 128000"
            ),
            "{text}"
        );
        assert!(
            text.contains("enforcer_map_full_total{map=\"SYSCALLS\"} 7"),
            "{text}"
        );
        assert!(
            text.contains(
                "enforcer_net_packets_total{group=\"web/api\",direction=\"egress\"} 1000"
            ),
            "{text}"
        );
        assert!(
            text.contains("enforcer_syscall_calls_total{group=\"web/api\",syscall=\"read\"} 9"),
            "{text}"
        );
        assert!(
            !text.contains("syscall=\"write\""),
            "top N must bound the series: {text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
