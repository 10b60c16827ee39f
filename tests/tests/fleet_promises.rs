//! What README's Kubernetes section lists of dist/kubernetes, checked item by
//! item: the ConfigMap's policy (observe mode, metrics on the pod IP, depth
//! 4), the DaemonSet's host paths, capabilities and profiles, a headless
//! Service, the six alerts and the dashboard's ConfigMap label.

use std::collections::BTreeSet;

use serde::Deserialize as _;

// dist/'s files, embedded at build time (build.rs).
include!(concat!(env!("OUT_DIR"), "/dist.rs"));

/// Every YAML document under dist/kubernetes, by kind.
fn of_kind(kind: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (path, text) in DIST {
        if !path.starts_with("kubernetes/") || !path.ends_with(".yaml") {
            continue;
        }
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let v = serde_json::Value::deserialize(doc).unwrap();
            if v["kind"] == kind {
                out.push(v);
            }
        }
    }
    out
}

#[test]
fn the_manifests_hold_what_readme_lists() {
    assert_eq!(of_kind("Namespace").len(), 1);
    // The policy: observe mode, metrics on every address of the pod, depth 4.
    let cm = of_kind("ConfigMap")
        .into_iter()
        .find(|c| c["data"]["policy.toml"].is_string())
        .expect("the policy's ConfigMap");
    let policy: toml::Table = cm["data"]["policy.toml"].as_str().unwrap().parse().unwrap();
    let agent = policy["agent"].as_table().unwrap();
    assert_eq!(agent["observe"].as_bool(), Some(true));
    assert_eq!(agent["metrics_depth"].as_integer(), Some(4));
    assert!(
        agent["metrics"].as_str().unwrap().starts_with("0.0.0.0:"),
        "the pod IP: {:?}",
        agent["metrics"]
    );

    let ds = of_kind("DaemonSet").pop().expect("a DaemonSet");
    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostPID"], true);
    let host_paths: BTreeSet<&str> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["hostPath"]["path"].as_str())
        .collect();
    for p in [
        "/sys/fs/cgroup",
        "/sys/fs/bpf",
        "/sys/kernel/btf",
        "/sys/kernel/tracing",
        "/var/log/enforcer",
    ] {
        assert!(host_paths.contains(p), "{p} from the host: {host_paths:?}");
    }
    let sc = &spec["containers"][0]["securityContext"];
    assert_ne!(sc["privileged"], true);
    let caps: BTreeSet<&str> = sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    // README's list, read from README: the manifest and the prose move together.
    let readme_text = include_str!("../../README.md");
    let start = readme_text
        .find("the ConfigMap read-only; capabilities ")
        .expect("README lists the DaemonSet's capabilities")
        + "the ConfigMap read-only; capabilities ".len();
    let end = start
        + readme_text[start..]
            .find(" instead of `privileged`")
            .expect("README's capability list ends with `instead of privileged`");
    let listed = readme_text[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let listed = listed.replace(" (for `[[classify]]`)", "");
    let readme: BTreeSet<&str> = listed
        .split(", ")
        .flat_map(|c| c.split(" and "))
        .map(str::trim)
        .collect();
    assert!(readme.len() >= 8, "README's list parsed: {readme:?}");
    assert_eq!(caps, readme);
    assert_eq!(sc["seccompProfile"]["type"], "Unconfined");
    // AppArmor by the annotation every Kubernetes version reads (the field
    // exists only from 1.30 on, and older API servers refuse it).
    assert!(sc["appArmorProfile"].is_null(), "no appArmorProfile field");
    assert_eq!(
        ds["spec"]["template"]["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/enforcer"],
        "unconfined"
    );

    let svc = of_kind("Service").pop().expect("a Service");
    assert_eq!(svc["spec"]["clusterIP"], "None", "headless");
    assert_eq!(of_kind("PodMonitor").len(), 1);
    let alerts: BTreeSet<String> = of_kind("PrometheusRule")
        .iter()
        .flat_map(|r| r["spec"]["groups"].as_array().unwrap().clone())
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| r["alert"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = [
        "EnforcerAgentDown",
        "EnforcerDenialsSpike",
        "EnforcerBudgetNearlySpent",
        "EnforcerMapNearlyFull",
        "EnforcerEventsLost",
        "EnforcerReloadFailed",
    ]
    .map(String::from)
    .into();
    assert_eq!(alerts, want);

    let k = of_kind("Kustomization").pop().expect("a kustomization");
    let dash = k["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| {
            g["files"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f == "grafana-dashboard.json"))
        })
        .expect("the dashboard as a ConfigMap");
    assert_eq!(dash["options"]["labels"]["grafana_dashboard"], "1");
    assert!(
        DIST.iter()
            .any(|(p, _)| *p == "kubernetes/grafana-dashboard.json")
    );
}
