//! The model printed back as a TOML policy, in one canonical spelling per value
//! (bytes, milliseconds, the canonical address rule), so that reading the text
//! gives the same model: the property tests check exactly that.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::model::{
    Access, AccessList, Action, AgentSpec, ArbiterSpec, Compare, Direction, Floors, GroupSpec,
    MetricUnit, NetworkSpec, OnExit, Owner, Policy, SyscallAction, SyscallSpec, WhenRule,
};

/// `"NAME"` as a TOML basic string (names and values here need no escapes
/// but quotes and backslashes).
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn millis(d: Duration) -> String {
    quoted(&format!("{}ms", d.as_millis()))
}

/// The policy as TOML text.
pub fn to_toml(policy: &Policy) -> String {
    let mut out = String::new();
    if let Some(agent) = &policy.agent {
        agent_table(agent, &mut out);
    }
    if let Some(arbiter) = &policy.arbiter {
        arbiter_table(arbiter, &mut out);
    }
    for g in &policy.groups {
        group(g, &mut out);
    }
    out
}

fn agent_table(a: &AgentSpec, out: &mut String) {
    out.push_str("[agent]\n");
    if let Some(m) = &a.metrics {
        let _ = writeln!(out, "metrics = {}", quoted(&m.value.to_string()));
    }
    if let Some(i) = &a.interval {
        let _ = writeln!(out, "interval = {}", millis(i.value));
    }
    if let Some(o) = &a.on_exit {
        let word = match o.value {
            OnExit::Keep => "keep",
            OnExit::Detach => "detach",
        };
        let _ = writeln!(out, "on_exit = \"{word}\"");
    }
    if let Some(l) = &a.audit_log {
        let _ = writeln!(out, "audit_log = {}", quoted(&l.value.to_string_lossy()));
    }
    if let Some(g) = &a.audit_group
        && let Ok(Some(group)) = nix::unistd::Group::from_gid(g.value.into())
    {
        let _ = writeln!(out, "audit_group = {}", quoted(&group.name));
    }
    if let Some(o) = &a.observe {
        let _ = writeln!(out, "observe = {}", o.value);
    }
    if let Some(p) = &a.parent {
        let _ = writeln!(out, "parent = {}", quoted(&p.value));
    }
    for (key, rate) in [
        ("egress_capacity", &a.egress_capacity),
        ("ingress_capacity", &a.ingress_capacity),
    ] {
        if let Some(r) = rate {
            let _ = writeln!(out, "{key} = \"{}B/s\"", r.value);
        }
    }
    out.push('\n');
}

fn arbiter_table(a: &ArbiterSpec, out: &mut String) {
    out.push_str("[arbiter]\n");
    if let Some(e) = &a.enabled {
        let _ = writeln!(out, "enabled = {}", e.value);
    }
    if let Some(i) = &a.interval {
        let _ = writeln!(out, "interval = {}", millis(i.value));
    }
    if let Some(r) = &a.resources {
        let names: Vec<String> = r.value.iter().map(|r| quoted(r.name())).collect();
        let _ = writeln!(out, "resources = [{}]", names.join(", "));
    }
    for (key, value) in [
        ("cpu_pressure", &a.cpu_pressure),
        ("memory_pressure", &a.memory_pressure),
        ("io_pressure", &a.io_pressure),
        ("network_pressure", &a.network_pressure),
        ("step", &a.step),
        ("memory_step", &a.memory_step),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "{key} = {:?}", v.value);
        }
    }
    for (key, value) in [
        ("restore_after", &a.restore_after),
        ("probe_after", &a.probe_after),
    ] {
        if let Some(v) = value {
            let _ = writeln!(out, "{key} = {}", millis(v.value));
        }
    }
    out.push('\n');
}

fn floors(f: &Floors, out: &mut String) {
    if let Some(c) = &f.cpu {
        let _ = writeln!(out, "min_cpu = {:?}", c.value);
    }
    if let Some(m) = &f.memory {
        let _ = writeln!(out, "min_memory = {}", m.value);
    }
    if let Some(w) = &f.io_weight {
        let _ = writeln!(out, "min_io_weight = {}", w.value);
    }
    for (key, rate) in [("min_egress", &f.egress), ("min_ingress", &f.ingress)] {
        if let Some(r) = rate {
            let _ = writeln!(out, "{key} = \"{}B/s\"", r.value);
        }
    }
}

fn group(g: &GroupSpec, out: &mut String) {
    let name = quoted(&g.name);
    let _ = writeln!(out, "[group.{name}]");
    let bare: Vec<String> = g
        .controllers
        .iter()
        .filter(|c| c.settings.is_empty())
        .map(|c| quoted(&c.name))
        .collect();
    if !bare.is_empty() {
        let _ = writeln!(out, "controllers = [{}]", bare.join(", "));
    }
    for c in &g.controllers {
        for s in &c.settings {
            let _ = writeln!(out, "{} = {}", quoted(&s.key), quoted(&s.value));
        }
    }
    if let Some(p) = &g.priority {
        match p.value.name() {
            Some(word) => {
                let _ = writeln!(out, "priority = \"{word}\"");
            }
            None => {
                let _ = writeln!(out, "priority = {}", p.value.level());
            }
        }
    }
    floors(&g.floors, out);
    out.push('\n');
    if g.perm.task.is_some() || g.perm.admin.is_some() {
        let _ = writeln!(out, "[group.{name}.perm]");
        for (key, owner) in [("task", &g.perm.task), ("admin", &g.perm.admin)] {
            if let Some(o) = owner {
                let _ = writeln!(out, "{key} = {{ {} }}", owner_fields(o));
            }
        }
        out.push('\n');
    }
    if let Some(n) = &g.network {
        let _ = writeln!(out, "[group.{name}.network]");
        network(n, out);
        out.push('\n');
    }
    if let Some(s) = &g.syscalls {
        let _ = writeln!(out, "[group.{name}.syscalls]");
        syscalls(s, out);
        out.push('\n');
    }
    for w in &g.when {
        let _ = writeln!(out, "[[group.{name}.when]]");
        when(w, out);
        out.push('\n');
    }
}

fn owner_fields(o: &Owner) -> String {
    let mut fields = Vec::new();
    if let Some(u) = &o.uid {
        fields.push(format!("uid = {}", quoted(u)));
    }
    if let Some(g) = &o.gid {
        fields.push(format!("gid = {}", quoted(g)));
    }
    if let Some(m) = o.dperm {
        fields.push(format!("dperm = \"{m:o}\""));
    }
    if let Some(m) = o.fperm {
        fields.push(format!("fperm = \"{m:o}\""));
    }
    fields.join(", ")
}

fn list(hook: &str, l: &AccessList, out: &mut String) {
    let mode = match l.mode {
        Access::Allow => "allow",
        Access::Deny => "deny",
    };
    let rules: Vec<String> = l.rules.iter().map(|r| quoted(&r.to_string())).collect();
    let _ = writeln!(out, "{hook}_{mode} = [{}]", rules.join(", "));
}

fn network(n: &NetworkSpec, out: &mut String) {
    if let Some(l) = &n.connect {
        list("connect", l, out);
    }
    if let Some(l) = &n.bind {
        list("bind", l, out);
    }
    for (key, rate) in [
        ("egress_rate", &n.egress_rate),
        ("ingress_rate", &n.ingress_rate),
    ] {
        if let Some(r) = rate {
            let _ = writeln!(out, "{key} = \"{}B/s\"", r.value);
        }
    }
    for (key, budget) in [
        ("egress_budget", &n.egress_budget),
        ("ingress_budget", &n.ingress_budget),
    ] {
        if let Some(b) = budget {
            let _ = writeln!(out, "{key} = \"{}/{}ms\"", b.bytes, b.window.as_millis());
        }
    }
}

fn syscalls(s: &SyscallSpec, out: &mut String) {
    let names: Vec<String> = s.deny.iter().map(|d| quoted(d.value.name())).collect();
    let _ = writeln!(out, "deny = [{}]", names.join(", "));
    let action = match s.action.value {
        SyscallAction::Log => "log",
        SyscallAction::Kill => "kill",
        SyscallAction::Deny => "deny",
    };
    let _ = writeln!(out, "action = \"{action}\"");
}

fn action(a: &Action) -> String {
    match a {
        Action::Log => "log".to_owned(),
        Action::Kill => "kill".to_owned(),
        Action::Freeze => "freeze".to_owned(),
        Action::SetKey { key, value } => format!("set {key}={value}"),
        Action::Throttle { dir, bytes_per_sec } => {
            let dir = match dir {
                Direction::Egress => "egress",
                Direction::Ingress => "ingress",
            };
            format!("throttle {dir} {bytes_per_sec}B/s")
        }
    }
}

fn when(w: &WhenRule, out: &mut String) {
    let _ = writeln!(out, "metric = \"{}\"", w.metric.value);
    let key = match w.compare {
        Compare::Above => "above",
        Compare::Below => "below",
    };
    // Byte thresholds are whole bytes, written as a size; others as numbers.
    let threshold = match w.metric.value.unit() {
        MetricUnit::Bytes | MetricUnit::BytesPerSec => quoted(&format!("{}", w.threshold.value)),
        _ => format!("{:?}", w.threshold.value),
    };
    let _ = writeln!(out, "{key} = {threshold}");
    let _ = writeln!(out, "for = {}", millis(w.hold.value));
    let then: Vec<String> = w.then.iter().map(|a| quoted(&action(&a.value))).collect();
    let _ = writeln!(out, "then = [{}]", then.join(", "));
    if let Some(u) = &w.until {
        let _ = writeln!(out, "until = {}", millis(u.value));
    }
}
