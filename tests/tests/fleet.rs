//! The fleet files in dist/: every Kubernetes manifest parses and has the
//! fields its kind requires, every metric the Grafana dashboard and the
//! alert rules name is served by a live agent, the ConfigMap-style symlink
//! swap makes the agent reload, and the systemd unit says Type=notify.

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::{AgentRun, GroupGuard, enforcer_bin, helper_bin, wait_until};
use serde::Deserialize as _;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist")
}

/// Every YAML document under dist/kubernetes, with its file.
fn manifests() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dist().join("kubernetes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = serde_json::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", f.display()));
            out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    out
}

fn s<'a>(v: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

fn need(file: &str, v: &serde_json::Value, path: &str) -> serde_json::Value {
    let x = s(v, path);
    assert!(
        !x.is_null() && x != &serde_json::json!("") && x != &serde_json::json!([]),
        "{file}: {path} is required"
    );
    x.clone()
}

#[test]
fn every_manifest_parses_and_has_what_its_kind_requires() {
    let docs = manifests();
    let kinds: BTreeSet<String> = docs
        .iter()
        .map(|(_, v)| v["kind"].as_str().unwrap_or("").to_string())
        .collect();
    for k in [
        "Namespace",
        "ConfigMap",
        "DaemonSet",
        "Service",
        "PodMonitor",
        "PrometheusRule",
        "Kustomization",
    ] {
        assert!(kinds.contains(k), "a {k}: {kinds:?}");
    }
    let mut container_ports = BTreeSet::new();
    for (file, v) in &docs {
        let file = file.as_str();
        need(file, v, "apiVersion");
        let kind = need(file, v, "kind");
        if kind != "Kustomization" {
            need(file, v, "metadata.name");
        }
        match kind.as_str().unwrap() {
            "DaemonSet" => {
                let sel = need(file, v, "spec.selector.matchLabels");
                let labels = need(file, v, "spec.template.metadata.labels");
                for (k, val) in sel.as_object().unwrap() {
                    assert_eq!(&labels[k], val, "{file}: the selector matches the pods");
                }
                assert_eq!(s(v, "spec.template.spec.hostPID"), true, "{file}: hostPID");
                let c = need(file, v, "spec.template.spec.containers.0");
                need(file, &c, "image");
                need(file, &c, "name");
                let sc = need(file, &c, "securityContext");
                assert_ne!(
                    sc["privileged"], true,
                    "{file}: capabilities, not privileged"
                );
                let caps: Vec<&str> = sc["capabilities"]["add"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                for cap in ["BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN"] {
                    assert!(caps.contains(&cap), "{file}: {cap}");
                }
                let volumes: BTreeSet<&str> = s(v, "spec.template.spec.volumes")
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["name"].as_str().unwrap())
                    .collect();
                let mounts: Vec<(String, String)> = c["volumeMounts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| {
                        (
                            m["name"].as_str().unwrap().to_string(),
                            m["mountPath"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                for (name, _) in &mounts {
                    assert!(volumes.contains(name.as_str()), "{file}: volume {name}");
                }
                // Kubernetes allows Bidirectional propagation only in
                // privileged containers.
                assert!(
                    c["volumeMounts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|m| m["mountPropagation"] != "Bidirectional"),
                    "{file}: no Bidirectional mount without privileged"
                );
                for path in [
                    "/sys/fs/cgroup",
                    "/sys/fs/bpf",
                    "/etc/enforcer",
                    "/var/log/enforcer",
                ] {
                    assert!(
                        mounts.iter().any(|(_, p)| p == path),
                        "{file}: mounts {path}"
                    );
                }
                for p in c["ports"].as_array().unwrap() {
                    container_ports.insert(p["name"].as_str().unwrap().to_string());
                }
                let args: Vec<&str> = c["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                assert!(
                    args.contains(&"/etc/enforcer/policy.toml"),
                    "{file}: the ConfigMap's policy"
                );
            }
            "ConfigMap" => {
                assert!(
                    v["data"]["policy.toml"].is_string(),
                    "{file}: data.policy.toml"
                );
            }
            "Service" => {
                need(file, v, "spec.selector");
                need(file, v, "spec.ports.0.port");
            }
            "PodMonitor" => {
                need(file, v, "spec.selector.matchLabels");
                need(file, v, "spec.podMetricsEndpoints.0.port");
            }
            "PrometheusRule" => {
                for g in need(file, v, "spec.groups").as_array().unwrap() {
                    need(file, g, "name");
                    for r in need(file, g, "rules").as_array().unwrap() {
                        need(file, r, "alert");
                        need(file, r, "expr");
                        need(file, r, "labels.severity");
                        need(file, r, "annotations.summary");
                    }
                }
            }
            "Kustomization" => {
                for r in need(file, v, "resources").as_array().unwrap() {
                    let f = dist().join("kubernetes").join(r.as_str().unwrap());
                    assert!(f.exists(), "{file}: {} exists", f.display());
                }
            }
            _ => {}
        }
    }
    // The PodMonitor scrapes a port the DaemonSet's container names.
    for (file, v) in &docs {
        if v["kind"] == "PodMonitor" {
            let port = s(v, "spec.podMetricsEndpoints.0.port").as_str().unwrap();
            assert!(container_ports.contains(port), "{file}: port {port}");
        }
    }
    // The ConfigMap's policy is one enforcer reads.
    let cm = docs.iter().find(|(_, v)| v["kind"] == "ConfigMap").unwrap();
    let text = cm.1["data"]["policy.toml"].as_str().unwrap();
    enforcer::config::parse_policy(text.as_bytes(), Path::new("policy.toml"))
        .unwrap_or_else(|e| panic!("the ConfigMap's policy: {e}"));
    // The dashboard is JSON with a query per panel.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dist().join("kubernetes/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    for p in dash["panels"].as_array().unwrap() {
        assert!(p["title"].is_string());
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{}",
            p["title"]
        );
    }
    // The systemd unit: readiness and documentation that is installed.
    let unit = std::fs::read_to_string(dist().join("enforcer.service")).unwrap();
    assert!(unit.contains("\nType=notify\n"), "{unit}");
    assert!(unit.contains("Documentation=man:enforcer(8)"), "{unit}");
}

/// `enforcer_*` names in a PromQL expression.
fn metric_names(expr: &str, into: &mut BTreeSet<String>) {
    let bytes: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while let Some(start) = expr[i..].find("enforcer_").map(|p| p + i) {
        let end = bytes[start..]
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(bytes.len(), |p| start + p);
        into.insert(expr[start..end].to_string());
        i = end;
    }
}

fn named_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, v) in manifests() {
        if v["kind"] == "PrometheusRule" {
            for g in v["spec"]["groups"].as_array().unwrap() {
                for r in g["rules"].as_array().unwrap() {
                    metric_names(r["expr"].as_str().unwrap(), &mut names);
                }
            }
        }
    }
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dist().join("kubernetes/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            metric_names(t["expr"].as_str().unwrap(), &mut names);
        }
    }
    for t in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = t["query"].as_str() {
            metric_names(q, &mut names);
        }
    }
    names
}

#[test]
fn every_metric_the_dashboard_and_alerts_name_is_served() {
    if skip_without_cgroup2("every_metric_the_dashboard_and_alerts_name_is_served") {
        return;
    }
    let names = named_metrics();
    assert!(names.len() >= 15, "{names:?}");
    let g = GroupGuard::new("fleet");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(
        &p,
        format!(
            "[group.\"{n}\"]\n\"memory.max\" = \"64M\"\n[group.\"{n}\".network]\n\
             connect_deny = [\"127.0.0.2/32\"]\negress_budget = \"10M/1d\"\n",
            n = g.name
        ),
    )
    .unwrap();
    run.start_with(&p, &["--observe"]);
    // A systemd unit's group (enforcer_group_info names its unit).
    let unit = format!("{}/fleet-test.service", g.name);
    enforcer_tests::enforcer_ok(&["create", "-g", &spec(&unit)]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (group, args) in [
        (
            &g.name,
            vec![
                "try-connect".to_string(),
                "tcp".into(),
                "127.0.0.2:9".into(),
            ],
        ),
        (
            &unit,
            vec![
                "udp-send".into(),
                rx.local_addr().unwrap().to_string(),
                "10".into(),
                "100".into(),
            ],
        ),
    ] {
        let st = Command::new(enforcer_bin())
            .args(["exec", "-g", &spec(group), "--"])
            .arg(helper_bin())
            .args(&args)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let mut missing = names.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let Some(body) = run.metrics() else {
            continue;
        };
        let served: BTreeSet<String> = body
            .lines()
            .filter(|l| l.starts_with("enforcer_"))
            .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
            .collect();
        missing = names.difference(&served).cloned().collect();
        if missing.is_empty() {
            break;
        }
    }
    assert!(missing.is_empty(), "named but not served: {missing:?}");
}

/// What the kubelet does to a ConfigMap volume: a new timestamped directory,
/// then `..data` swapped to it with one rename.
fn configmap_swap(dir: &Path, version: &str, policy: &str) {
    let v = dir.join(format!("..{version}"));
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("policy.toml"), policy).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[test]
fn a_configmap_symlink_swap_makes_the_agent_reload() {
    if skip_without_cgroup2("a_configmap_symlink_swap_makes_the_agent_reload") {
        return;
    }
    let a = GroupGuard::new("cma");
    let b = GroupGuard::new("cmb");
    let mut run = AgentRun::new();
    let cm = run.file("configmap");
    std::fs::create_dir_all(&cm).unwrap();
    configmap_swap(&cm, "2026_12_01_v1", &format!("[group.\"{}\"]\n", a.name));
    std::os::unix::fs::symlink("..data/policy.toml", cm.join("policy.toml")).unwrap();
    run.start(&cm.join("policy.toml"));
    let layout_dir = enforcer_tests::layout::v2_dir(&b.name);
    assert!(!layout_dir.exists());
    configmap_swap(
        &cm,
        "2026_12_01_v2",
        &format!("[group.\"{}\"]\n[group.\"{}\"]\n", a.name, b.name),
    );
    std::fs::remove_dir_all(cm.join("..2026_12_01_v1")).unwrap();
    wait_until("the reload after the swap", || {
        run.audit_lines().iter().any(|l| l["kind"] == "reload")
    });
    assert!(layout_dir.exists(), "the new policy's group was created");
    wait_until("the reload counted", || {
        run.metrics()
            .is_some_and(|m| m.contains("enforcer_reloads_total{result=\"success\"} 1"))
    });
    // `reload --config` names the same file through the link.
    let out = enforcer_tests::enforcer(&[
        "reload",
        "--config",
        cm.join("policy.toml").to_str().unwrap(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
}
