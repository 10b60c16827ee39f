//! Rendering results as text (libcgroup-like) or JSON.

use anyhow::Result;

use crate::cgroup::units::human_bytes;
use crate::cgroup::{Applied, GroupValues, Listed, Membership, SetOutcome, ps_format};

fn json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(super) fn set_outcomes(o: &[SetOutcome], as_json: bool) -> Result<()> {
    if as_json {
        return json(&o);
    }
    for s in o {
        let via = if s.key == s.file {
            String::new()
        } else {
            format!(" (as {})", s.key)
        };
        println!(
            "{} {}:{} = {}{via}; reads back {}",
            s.group, s.hierarchy, s.file, s.written, s.effective
        );
    }
    Ok(())
}

pub(super) fn group_values(v: &[GroupValues], as_json: bool) -> Result<()> {
    if as_json {
        return json(&v);
    }
    for g in v {
        println!("{}:", g.group);
        for kv in &g.values {
            let mut lines = kv.value.lines();
            let first = lines.next().unwrap_or("");
            if kv.key == kv.file {
                println!("{}: {first}", kv.file);
            } else {
                println!("{} ({}): {first}", kv.file, kv.key);
            }
            for l in lines {
                println!("\t{l}");
            }
        }
        if let Some(m) = &g.memory {
            println!(
                "memory summary: usage {}, peak {}, limit {}, failcnt {}, oom_kills {}",
                human_bytes(m.usage_bytes),
                m.peak_bytes.map_or("-".into(), human_bytes),
                m.limit_bytes.map_or("max".into(), human_bytes),
                m.failcnt,
                m.oom_kills
            );
        }
        println!();
    }
    Ok(())
}

pub(super) fn listed(l: &[Listed], as_json: bool) -> Result<()> {
    if as_json {
        return json(&l);
    }
    for x in l {
        println!("{}:{}", x.controllers, x.path);
    }
    Ok(())
}

pub(super) fn memberships(m: &[Membership], as_json: bool) -> Result<()> {
    if as_json {
        return json(&m);
    }
    println!("{}", ps_format(m));
    Ok(())
}

pub(super) fn applied(a: &Applied, as_json: bool) -> Result<()> {
    if as_json {
        return json(a);
    }
    println!("created {} group directories", a.created.len());
    set_outcomes(&a.writes, false)
}
