//! Closed-loop rules: a threshold on a counter or rate, held for a duration,
//! fires graduated actions; once the condition has been false for the cool-down
//! (`until`), reversible actions are undone.
//!
//! Pure logic over reports and a clock, acting through [`Effects`], so every
//! transition is unit-tested without a kernel.
//!
//! A rule acts on what happens after it is armed, never on history: a
//! cumulative metric (`egress_bytes`, `ingress_bytes`, `oom_kills`) only
//! satisfies a rule once it has grown since the rule first saw it, so an OOM
//! kill from before a restart or reload does not fire `oom_kills above 0`
//! again. A reload keeps the state of every rule it leaves unchanged (an
//! active throttle stays, a fired rule does not fire again), and undoes what
//! rules it removes had done.

use std::time::{Duration, Instant};

use crate::collect::GroupReport;
use crate::plan::{Action, Compare, ControlRule, Direction, Metric};

/// What the engine needs the host to do. Each call returns how to undo it, or
/// None when there is nothing to undo.
pub trait Effects {
    fn set_key(&mut self, group: &str, key: &str, value: &str) -> Result<Option<Undo>, String>;
    fn throttle(
        &mut self,
        group: &str,
        dir: Direction,
        bytes_per_sec: u64,
    ) -> Result<Option<Undo>, String>;
    fn freeze(&mut self, group: &str) -> Result<Option<Undo>, String>;
    fn kill(&mut self, group: &str) -> Result<(), String>;
    fn undo(&mut self, group: &str, undo: &Undo) -> Result<(), String>;
}

/// How to take back one action.
#[derive(Debug, Clone, PartialEq)]
pub enum Undo {
    /// Write the value the key had before.
    SetKey {
        key: String,
        old: String,
    },
    /// Lift the throttle (the policy's own rate, if any, stays).
    Throttle {
        dir: Direction,
    },
    Thaw,
}

/// One thing the engine did, for the audit log and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub group: String,
    pub rule: String,
    /// `fired` or `undone`.
    pub phase: &'static str,
    pub action: String,
    pub value: f64,
    pub result: Result<(), String>,
}

#[derive(Debug, Default)]
struct RuleState {
    true_since: Option<Instant>,
    false_since: Option<Instant>,
    fired: bool,
    undo: Vec<Undo>,
    /// A cumulative metric's value when the rule first saw the group.
    baseline: Option<f64>,
}

/// Whether `metric` only ever grows (a total since counting began), so its
/// past must not fire a rule.
fn is_cumulative(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::EgressBytes | Metric::IngressBytes | Metric::OomKills
    )
}

struct Armed {
    group: String,
    rule: ControlRule,
    state: RuleState,
}

/// The value of `metric` in a group's report. Rates are absent on the first
/// collection: a rate rule cannot fire before the second.
pub fn metric_value(metric: Metric, r: &GroupReport) -> Option<f64> {
    let rate = |f: fn(&crate::collect::Rates) -> f64| r.rates.as_ref().map(f);
    match metric {
        Metric::EgressBytes => Some(r.net.egress_bytes as f64),
        Metric::IngressBytes => Some(r.net.ingress_bytes as f64),
        Metric::EgressBytesPerSec => rate(|x| x.egress_bytes_per_sec),
        Metric::IngressBytesPerSec => rate(|x| x.ingress_bytes_per_sec),
        Metric::EgressPacketsPerSec => rate(|x| x.egress_packets_per_sec),
        Metric::IngressPacketsPerSec => rate(|x| x.ingress_packets_per_sec),
        Metric::ConnectAttemptsPerSec => rate(|x| x.connect_attempts_per_sec),
        Metric::SyscallsPerSec => rate(|x| x.syscalls_per_sec),
        Metric::MemoryUsageBytes => Some(r.memory.usage_bytes as f64),
        Metric::OomKills => Some(r.memory.oom_kills as f64),
        Metric::CpuUsagePercent => rate(|x| x.cpu_percent),
    }
}

fn describe(a: &Action) -> String {
    match a {
        Action::Log => "log".into(),
        Action::SetKey { key, value } => format!("set {key}={value}"),
        Action::Throttle { dir, bytes_per_sec } => format!(
            "throttle {} {bytes_per_sec} B/s",
            match dir {
                Direction::Egress => "egress",
                Direction::Ingress => "ingress",
            }
        ),
        Action::Freeze => "freeze".into(),
        Action::Kill => "kill".into(),
    }
}

fn describe_undo(u: &Undo) -> String {
    match u {
        Undo::SetKey { key, old } => format!("restore {key}={old}"),
        Undo::Throttle { .. } => "lift throttle".into(),
        Undo::Thaw => "thaw".into(),
    }
}

fn rule_name(r: &ControlRule) -> String {
    let cmp = match r.compare {
        Compare::Above => ">",
        Compare::Below => "<",
    };
    format!("{} {cmp} {} for {:?}", r.metric.name(), r.threshold, r.hold)
}

/// All rules of a policy and their state.
#[derive(Default)]
pub struct Engine {
    rules: Vec<Armed>,
}

impl Engine {
    /// Rules per group label (as in reports: `web/api`).
    pub fn new(rules: impl IntoIterator<Item = (String, ControlRule)>) -> Self {
        Engine {
            rules: rules
                .into_iter()
                .map(|(group, rule)| Armed {
                    group,
                    rule,
                    state: RuleState::default(),
                })
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The engine for a reloaded policy: rules unchanged since the old one
    /// (same group, same rule) keep their state; what the rules that are gone
    /// had done is undone now (returned as decisions for the audit log).
    ///
    /// New rules on cumulative metrics take their baseline from `now` (each
    /// group's report at this moment; a group without one takes it at its
    /// first report).
    pub fn reload(
        &mut self,
        rules: impl IntoIterator<Item = (String, ControlRule)>,
        now: &[GroupReport],
        fx: &mut dyn Effects,
    ) -> Vec<Decision> {
        let mut old: Vec<Option<Armed>> = std::mem::take(&mut self.rules)
            .into_iter()
            .map(Some)
            .collect();
        for (group, rule) in rules {
            let kept = old
                .iter_mut()
                .find_map(|slot| slot.take_if(|a| a.group == group && a.rule.same_as(&rule)));
            let state = kept.map(|a| a.state).unwrap_or_else(|| RuleState {
                baseline: now
                    .iter()
                    .find(|r| r.group == group)
                    .filter(|_| is_cumulative(rule.metric))
                    .and_then(|r| metric_value(rule.metric, r)),
                ..RuleState::default()
            });
            self.rules.push(Armed { group, rule, state });
        }
        let mut out = Vec::new();
        for mut gone in old.into_iter().flatten() {
            let name = rule_name(&gone.rule);
            while let Some(u) = gone.state.undo.pop() {
                out.push(Decision {
                    group: gone.group.clone(),
                    rule: name.clone(),
                    phase: "undone",
                    action: describe_undo(&u),
                    value: f64::NAN,
                    result: fx.undo(&gone.group, &u),
                });
            }
        }
        out
    }

    /// Evaluate every rule against this collection.
    pub fn step(
        &mut self,
        now: Instant,
        reports: &[GroupReport],
        fx: &mut dyn Effects,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        for armed in &mut self.rules {
            let Some(report) = reports.iter().find(|r| r.group == armed.group) else {
                continue;
            };
            let Some(value) = metric_value(armed.rule.metric, report) else {
                continue;
            };
            let st = &mut armed.state;
            let grew = if is_cumulative(armed.rule.metric) {
                let baseline = *st.baseline.get_or_insert(value);
                value > baseline
            } else {
                true
            };
            let holds = grew
                && match armed.rule.compare {
                    Compare::Above => value > armed.rule.threshold,
                    Compare::Below => value < armed.rule.threshold,
                };
            let name = rule_name(&armed.rule);
            if holds {
                st.false_since = None;
                let since = *st.true_since.get_or_insert(now);
                if !st.fired && now.duration_since(since) >= armed.rule.hold {
                    st.fired = true;
                    for a in &armed.rule.then {
                        let result = match a {
                            Action::Log => Ok(None),
                            Action::SetKey { key, value } => fx.set_key(&armed.group, key, value),
                            Action::Throttle { dir, bytes_per_sec } => {
                                fx.throttle(&armed.group, *dir, *bytes_per_sec)
                            }
                            Action::Freeze => fx.freeze(&armed.group),
                            Action::Kill => fx.kill(&armed.group).map(|()| None),
                        };
                        let result = result.map(|u| {
                            if let Some(u) = u {
                                st.undo.push(u);
                            }
                        });
                        out.push(Decision {
                            group: armed.group.clone(),
                            rule: name.clone(),
                            phase: "fired",
                            action: describe(a),
                            value,
                            result,
                        });
                    }
                }
            } else {
                st.true_since = None;
                if st.fired {
                    let since = *st.false_since.get_or_insert(now);
                    let cool = armed.rule.until.unwrap_or(Duration::ZERO);
                    if now.duration_since(since) >= cool {
                        // Without `until` the actions stay; the rule re-arms.
                        if armed.rule.until.is_some() {
                            while let Some(u) = st.undo.pop() {
                                out.push(Decision {
                                    group: armed.group.clone(),
                                    rule: name.clone(),
                                    phase: "undone",
                                    action: describe_undo(&u),
                                    value,
                                    result: fx.undo(&armed.group, &u),
                                });
                            }
                        }
                        st.undo.clear();
                        st.fired = false;
                        st.false_since = None;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::{NetReport, Rates};

    fn rule(threshold: f64, hold: u64, then: Vec<Action>, until: Option<u64>) -> ControlRule {
        ControlRule {
            origin: "p.toml:1:1".into(),
            metric: Metric::EgressBytesPerSec,
            compare: Compare::Above,
            threshold,
            hold: Duration::from_secs(hold),
            then,
            until: until.map(Duration::from_secs),
        }
    }

    fn report(rate: f64) -> Vec<GroupReport> {
        vec![GroupReport {
            group: "web".into(),
            cgroup_id: 9,
            net: NetReport::default(),
            syscalls: Default::default(),
            memory: Default::default(),
            cpu: Default::default(),
            enforcement: Default::default(),
            rates: Some(Rates {
                egress_bytes_per_sec: rate,
                ..Default::default()
            }),
            workload: Default::default(),
            limits: Vec::new(),
        }]
    }

    #[derive(Default)]
    struct Fake {
        log: Vec<String>,
    }

    impl Effects for Fake {
        fn set_key(&mut self, g: &str, k: &str, v: &str) -> Result<Option<Undo>, String> {
            self.log.push(format!("{g} set {k}={v}"));
            Ok(Some(Undo::SetKey {
                key: k.into(),
                old: "100".into(),
            }))
        }
        fn throttle(&mut self, g: &str, _: Direction, r: u64) -> Result<Option<Undo>, String> {
            self.log.push(format!("{g} throttle {r}"));
            Ok(Some(Undo::Throttle {
                dir: Direction::Egress,
            }))
        }
        fn freeze(&mut self, g: &str) -> Result<Option<Undo>, String> {
            self.log.push(format!("{g} freeze"));
            Ok(Some(Undo::Thaw))
        }
        fn kill(&mut self, g: &str) -> Result<(), String> {
            self.log.push(format!("{g} kill"));
            Ok(())
        }
        fn undo(&mut self, g: &str, u: &Undo) -> Result<(), String> {
            self.log.push(format!("{g} undo {}", describe_undo(u)));
            Ok(())
        }
    }

    #[test]
    fn fires_after_hold_and_undoes_after_cool_down() {
        let then = vec![
            Action::Throttle {
                dir: Direction::Egress,
                bytes_per_sec: 625_000,
            },
            Action::SetKey {
                key: "cpu.weight".into(),
                value: "50".into(),
            },
        ];
        let mut e = Engine::new([("web".to_string(), rule(1000.0, 5, then, Some(30)))]);
        let mut fx = Fake::default();
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        assert!(
            e.step(s(0), &report(5000.0), &mut fx).is_empty(),
            "held 0s of 5s"
        );
        assert!(
            e.step(s(4), &report(5000.0), &mut fx).is_empty(),
            "held 4s of 5s"
        );
        let fired = e.step(s(5), &report(5000.0), &mut fx);
        assert_eq!(fired.len(), 2);
        assert!(fired.iter().all(|d| d.phase == "fired" && d.result.is_ok()));
        assert!(
            e.step(s(6), &report(5000.0), &mut fx).is_empty(),
            "fires once per episode"
        );
        assert!(
            e.step(s(7), &report(10.0), &mut fx).is_empty(),
            "cool-down starts"
        );
        assert!(
            e.step(s(36), &report(10.0), &mut fx).is_empty(),
            "29s of 30s"
        );
        let undone = e.step(s(37), &report(10.0), &mut fx);
        assert_eq!(undone.len(), 2);
        assert_eq!(
            fx.log,
            vec![
                "web throttle 625000",
                "web set cpu.weight=50",
                "web undo restore cpu.weight=100",
                "web undo lift throttle"
            ]
        );
        // Re-armed: a new episode fires again after its own hold.
        assert!(e.step(s(40), &report(5000.0), &mut fx).is_empty());
        assert_eq!(e.step(s(45), &report(5000.0), &mut fx).len(), 2);
    }

    #[test]
    fn a_dip_restarts_the_hold() {
        let mut e = Engine::new([(
            "web".to_string(),
            rule(1000.0, 5, vec![Action::Freeze], None),
        )]);
        let mut fx = Fake::default();
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        e.step(s(0), &report(5000.0), &mut fx);
        e.step(s(3), &report(10.0), &mut fx);
        assert!(e.step(s(6), &report(5000.0), &mut fx).is_empty());
        assert_eq!(e.step(s(11), &report(5000.0), &mut fx).len(), 1);
        // No `until`: nothing is undone, the rule re-arms.
        assert!(e.step(s(12), &report(10.0), &mut fx).is_empty());
        assert_eq!(fx.log, vec!["web freeze"]);
    }

    fn ooms(n: u64) -> Vec<GroupReport> {
        let mut r = report(0.0);
        r[0].memory.oom_kills = n;
        r
    }

    fn oom_rule() -> ControlRule {
        ControlRule {
            metric: Metric::OomKills,
            ..rule(0.0, 0, vec![Action::Kill], None)
        }
    }

    #[test]
    fn history_never_fires_a_rule() {
        // One OOM kill before the rule was armed (a restart, a reload).
        let mut e = Engine::new([("web".to_string(), oom_rule())]);
        let mut fx = Fake::default();
        let t = Instant::now();
        assert!(e.step(t, &ooms(1), &mut fx).is_empty(), "armed at 1");
        assert!(e.step(t, &ooms(1), &mut fx).is_empty(), "no change");
        assert_eq!(e.step(t, &ooms(2), &mut fx).len(), 1, "a new kill fires");
        assert_eq!(fx.log, vec!["web kill"]);
    }

    #[test]
    fn a_reload_keeps_unchanged_rules_and_undoes_removed_ones() {
        let throttle = vec![Action::Throttle {
            dir: Direction::Egress,
            bytes_per_sec: 1000,
        }];
        let mut e = Engine::new([
            ("web".to_string(), oom_rule()),
            ("web".to_string(), rule(100.0, 0, throttle, Some(5))),
        ]);
        let mut fx = Fake::default();
        let t = Instant::now();
        let mut r = ooms(1);
        r[0].rates.as_mut().unwrap().egress_bytes_per_sec = 500.0;
        assert_eq!(e.step(t, &r, &mut fx).len(), 1, "the throttle fires");
        // Reloaded with the OOM rule only (moved to another line): it keeps its
        // baseline, and the removed throttle is lifted.
        let mut moved = oom_rule();
        moved.origin = "p.toml:40:1".into();
        let undone = e.reload([("web".to_string(), moved)], &[], &mut fx);
        assert_eq!(undone.len(), 1);
        assert_eq!(undone[0].phase, "undone");
        assert!(e.step(t, &r, &mut fx).is_empty(), "history does not fire");
        assert_eq!(fx.log, vec!["web throttle 1000", "web undo lift throttle"]);
    }

    #[test]
    fn rates_wait_for_a_second_sample_and_other_groups_do_not_match() {
        let mut e = Engine::new([("web".to_string(), rule(0.0, 0, vec![Action::Kill], None))]);
        let mut fx = Fake::default();
        let mut r = report(5.0);
        r[0].rates = None;
        assert!(e.step(Instant::now(), &r, &mut fx).is_empty());
        r[0].group = "db".into();
        r[0].rates = Some(Rates::default());
        assert!(e.step(Instant::now(), &r, &mut fx).is_empty());
    }
}
