//! The fleet files in dist/: every Kubernetes manifest parses, has the
//! fields its kind requires and validates against Kubernetes 1.27 to the
//! newest (kubernetes-validate), the kustomization sets the DaemonSet's
//! image, only Prometheus may read the metrics, every metric the Grafana
//! dashboard and the alert rules name is served by a live agent, the
//! ConfigMap-style symlink swap makes the agent reload; the systemd units
//! keep the policy's groups out of the agent's own unit and score at most
//! 4.5 in `systemd-analyze security`, and the default policy starts on a
//! kernel without BPF-LSM. (The manifests run under podman in
//! daemonset.rs, the units under systemd in systemd_unit.rs.)

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;

use enforcer_tests::layout::{skip_without_cgroup2, spec};
use enforcer_tests::{AgentRun, GroupGuard, enforcer_bin, helper_bin, wait_until};

use enforcer_tests::manifests::{DIST, at as s, configmap_swap, dist, manifests};

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
                    let f = format!("kubernetes/{}", r.as_str().unwrap());
                    assert!(DIST.iter().any(|(p, _)| *p == f), "{file}: dist/{f} exists");
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
    let dash: serde_json::Value =
        serde_json::from_str(dist("kubernetes/grafana-dashboard.json")).unwrap();
    for p in dash["panels"].as_array().unwrap() {
        assert!(p["title"].is_string());
        assert!(
            !p["targets"].as_array().unwrap().is_empty(),
            "{}",
            p["title"]
        );
    }
    // The systemd unit: readiness and documentation that is installed.
    let unit = dist("enforcer.service");
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
    let dash: serde_json::Value =
        serde_json::from_str(dist("kubernetes/grafana-dashboard.json")).unwrap();
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
    // Created after the group's own process has exited: on cgroup v2 a
    // group whose children have controllers holds no processes itself.
    let unit = format!("{}/fleet-test.service", g.name);
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
        if *group == unit {
            enforcer_tests::enforcer_ok(&["create", "-g", &spec(&unit)]);
        }
        let st = Command::new(enforcer_bin())
            .args(["exec", "-g", &spec(group), "--"])
            .arg(helper_bin())
            .args(&args)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let mut missing = names.clone();
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(15) * enforcer_tests::time_scale();
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

#[test]
fn the_kustomization_sets_the_image_the_daemonset_runs() {
    let ds = enforcer_tests::manifests::one("DaemonSet");
    let image = s(&ds, "spec.template.spec.containers.0.image");
    let deployed = enforcer_tests::manifests::deployed_image().unwrap_or_else(|| {
        panic!(
            "kustomization.yaml has no `images:` entry naming the DaemonSet's image {image}: \
             `kubectl apply -k` would deploy it unchanged"
        )
    });
    assert!(
        deployed.ends_with(&format!(":{}", env!("CARGO_PKG_VERSION"))),
        "the deployed image {deployed} is this release's"
    );
}

/// A peer that names someone: a non-empty selector, not an address block.
fn names_someone(peer: &serde_json::Value) -> bool {
    let selects = |k: &str| {
        peer[k]["matchLabels"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
            || peer[k]["matchExpressions"]
                .as_array()
                .is_some_and(|m| !m.is_empty())
    };
    peer.get("ipBlock").is_none() && (selects("podSelector") || selects("namespaceSelector"))
}

/// The metrics name every group on the node (units, container ids, pod
/// UIDs): on the pod network they must not be open to every pod.
#[test]
fn only_prometheus_may_read_the_agents_metrics() {
    let ds = enforcer_tests::manifests::one("DaemonSet");
    let pod_labels = s(&ds, "spec.template.metadata.labels").clone();
    let c = s(&ds, "spec.template.spec.containers.0").clone();
    let metrics_port = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("the container names its metrics port")
        .clone();
    let policies: Vec<serde_json::Value> = manifests()
        .into_iter()
        .filter(|(_, v)| v["kind"] == "NetworkPolicy")
        .map(|(_, v)| v)
        .collect();
    let guard = policies
        .iter()
        .find(|p| {
            p["metadata"]["namespace"] == ds["metadata"]["namespace"]
                && p["spec"]["podSelector"]["matchLabels"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty() && m.iter().all(|(k, v)| &pod_labels[k] == v))
        })
        .unwrap_or_else(|| {
            panic!(
                "no NetworkPolicy selects the agents' pods ({pod_labels}): every pod can read \
                 their metrics on {metrics_port}"
            )
        });
    let types: Vec<&str> = guard["spec"]["policyTypes"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    assert!(types.contains(&"Ingress"), "{guard}: policyTypes Ingress");
    let rules = guard["spec"]["ingress"].as_array().expect("ingress rules");
    assert!(!rules.is_empty(), "{guard}: some ingress is allowed");
    for r in rules {
        let from = r["from"].as_array().map(Vec::as_slice).unwrap_or_default();
        assert!(
            !from.is_empty() && from.iter().all(names_someone),
            "{r}: every ingress rule names who may connect (an empty `from` is everybody)"
        );
        let ports = r["ports"].as_array().expect("each rule names its ports");
        for p in ports {
            assert!(
                p["port"] == metrics_port["name"] || p["port"] == metrics_port["containerPort"],
                "{r}: only the metrics port is opened"
            );
        }
    }
    let k = enforcer_tests::manifests::one("Kustomization");
    let file = manifests()
        .into_iter()
        .find(|(_, v)| v == guard)
        .map(|(f, _)| f)
        .unwrap();
    assert!(
        k["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == &file),
        "kustomization.yaml deploys {file}"
    );
}

/// kubernetes-validate: `ENFORCER_TEST_KUBERNETES_VALIDATE`, or on PATH.
fn kubernetes_validate() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("ENFORCER_TEST_KUBERNETES_VALIDATE") {
        return Some(p.into());
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("kubernetes-validate"))
        .find(|p| p.is_file())
}

/// The Kubernetes versions kubernetes-validate has schemas for, asked of
/// the Python it runs under.
fn known_kubernetes_versions(tool: &Path) -> Vec<(u32, u32)> {
    let python = tool.with_file_name("python3");
    let python = if python.exists() {
        python
    } else {
        "python3".into()
    };
    let out = Command::new(&python)
        .args([
            "-c",
            "import kubernetes_validate.utils as u; print(' '.join(u.all_versions()))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(out.status.success(), "{out:?}");
    let mut versions: Vec<(u32, u32)> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|v| {
            let mut p = v.split('.');
            Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
        })
        .collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

/// Every manifest of a built-in kind against each Kubernetes version from
/// 1.27 (the oldest still in the major clouds' support windows) to the
/// newest kubernetes-validate knows, strictly (unknown fields refused).
/// PodMonitor and PrometheusRule are the Prometheus Operator's: no schema
/// here (promtool checks the rules in daemonset.rs); the Kustomization is
/// kustomize's input, not a resource.
#[test]
fn manifests_are_valid_for_kubernetes_1_27_to_the_newest() {
    let Some(tool) = kubernetes_validate() else {
        enforcer_tests::skipped(
            "manifests_are_valid_for_kubernetes_1_27_to_the_newest",
            "kubernetes-validate is not installed here (`cargo xtask test` installs it)",
        );
        return;
    };
    let dir = std::env::temp_dir().join(enforcer_tests::unique_name("k8s"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (i, (file, v)) in manifests().into_iter().enumerate() {
        let kind = v["kind"].as_str().unwrap_or("");
        if ["Kustomization", "PodMonitor", "PrometheusRule"].contains(&kind) {
            continue;
        }
        let path = dir.join(format!("{i}-{file}"));
        std::fs::write(&path, serde_yaml_ng::to_string(&v).unwrap()).unwrap();
        files.push(path);
    }
    let versions: Vec<(u32, u32)> = known_kubernetes_versions(&tool)
        .into_iter()
        .filter(|&v| v >= (1, 27))
        .collect();
    assert!(versions.len() >= 4, "versions known: {versions:?}");
    let mut failures = Vec::new();
    for (major, minor) in &versions {
        let out = Command::new(&tool)
            .args(["--strict", "--quiet", "-k", &format!("{major}.{minor}.0")])
            .args(&files)
            .output()
            .unwrap();
        if !out.status.success() {
            failures.push(format!(
                "Kubernetes {major}.{minor}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `ExecStart=`'s `--parent` of a unit file.
fn exec_parent(unit: &str) -> Option<String> {
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    let mut words = exec.split_whitespace();
    words.find(|w| *w == "--parent")?;
    words.next().map(String::from)
}

/// systemd stops (SIGKILL after KillMode's SIGTERM) everything in a unit's
/// cgroup on `systemctl stop`/`restart` and before a crash-restart: the
/// policy's groups must live in a unit of their own, delegated, that the
/// agent's unit starts but never stops.
#[test]
fn the_units_keep_the_policys_groups_out_of_the_agents_unit() {
    let agent = dist("enforcer.service");
    let parent = exec_parent(agent).expect("the unit places the policy's groups (--parent)");
    let holder = parent
        .strip_prefix("system.slice/")
        .unwrap_or_else(|| panic!("--parent {parent} is a unit in system.slice"));
    assert_ne!(
        holder, "enforcer.service",
        "--parent {parent} is the agent's own unit: stopping it kills the workloads"
    );
    let unit = dist(holder);
    assert!(
        unit.contains("\nDelegate=yes\n"),
        "{holder} is delegated:\n{unit}"
    );
    for dep in ["Wants", "After"] {
        assert!(
            agent.contains(&format!("\n{dep}={holder}\n")),
            "enforcer.service has {dep}={holder}"
        );
    }
    for tie in ["PartOf=", "BindsTo=", "Requires="] {
        assert!(
            !unit.contains(&format!("\n{tie}enforcer.service")),
            "{holder} must not stop with the agent ({tie})"
        );
    }
}

/// `systemd-analyze security`'s verdict on the unit file (offline: this
/// host runs no systemd; systemd_unit.rs asks the real one in a guest).
#[test]
fn the_agents_unit_is_hardened() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        enforcer_tests::skipped(
            "the_agents_unit_is_hardened",
            "systemd-analyze is not installed here (`cargo xtask setup` installs systemd)",
        );
        return;
    };
    let dir = std::env::temp_dir().join(enforcer_tests::unique_name("unit"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("enforcer.service");
    std::fs::write(&file, dist("enforcer.service")).unwrap();
    let out = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure = enforcer_tests::exposure(&text)
        .unwrap_or_else(|| panic!("no overall exposure in:\n{text}{out:?}"));
    assert!(exposure <= 4.5, "exposure {exposure} > 4.5:\n{text}");
}

/// The policy install.sh puts in place must start on every kernel
/// enforcer supports: no rule that needs BPF-LSM, which this host lacks
/// (it refuses BPF trampolines), as do most distributions' kernels.
#[test]
fn the_default_policy_starts_without_bpf_lsm() {
    if skip_without_cgroup2("the_default_policy_starts_without_bpf_lsm") {
        return;
    }
    assert!(
        enforcer_tests::manifests::has("policy.toml"),
        "dist/policy.toml: the default policy install.sh installs"
    );
    let parent = GroupGuard::new("default-policy");
    let mut run = AgentRun::new();
    let p = run.file("policy.toml");
    std::fs::write(&p, dist("policy.toml")).unwrap();
    // Below a group of this test's, as the unit puts them below its own.
    run.start_with(&p, &["--parent", &parent.name]);
    let m = run.metrics().unwrap();
    assert!(
        m.contains("enforcer_rules_loaded{kind=\"network\"} 1"),
        "{m}"
    );
}
