//! The files of dist/ (Kubernetes manifests, the dashboard, the systemd
//! units, install.sh, the default policy), embedded at build time (build.rs):
//! a `cargo xtask vmtest` guest has the test executables but not the source
//! tree. Shared by the tests that read the manifests (fleet.rs) and those
//! that run them (daemonset.rs).

use std::path::Path;

use serde::Deserialize as _;

include!(concat!(env!("OUT_DIR"), "/dist.rs"));

/// The file `path` of dist/ (`kubernetes/service.yaml`).
pub fn dist(path: &str) -> &'static str {
    DIST.iter()
        .find(|(p, _)| *p == path)
        .unwrap_or_else(|| panic!("dist/{path} is not in dist/"))
        .1
}

/// Whether dist/ has the file `path`.
pub fn has(path: &str) -> bool {
    DIST.iter().any(|(p, _)| *p == path)
}

/// Every YAML document under dist/kubernetes, with its file name.
pub fn manifests() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for (path, text) in DIST {
        let Some(name) = path.strip_prefix("kubernetes/") else {
            continue;
        };
        if !name.ends_with(".yaml") {
            continue;
        }
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let v = serde_json::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("dist/{path} does not parse: {e}"));
            out.push((name.to_string(), v));
        }
    }
    out
}

/// The one manifest of `kind`.
pub fn one(kind: &str) -> serde_json::Value {
    let mut found: Vec<serde_json::Value> = manifests()
        .into_iter()
        .filter(|(_, v)| v["kind"] == kind)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(found.len(), 1, "dist/kubernetes has one {kind}");
    found.remove(0)
}

/// `v` at a dotted path (`spec.template.spec.containers.0`); null if absent.
pub fn at<'a>(v: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

/// The Grafana dashboard.
pub fn dashboard() -> serde_json::Value {
    serde_json::from_str(dist("kubernetes/grafana-dashboard.json"))
        .expect("grafana-dashboard.json is JSON")
}

/// The image reference the DaemonSet's container runs once kustomize has
/// applied the kustomization's `images:` (as `kubectl apply -k` does):
/// the entry whose `name` is the container's image name gives the new name
/// and tag. None if no entry names it.
pub fn deployed_image() -> Option<String> {
    let ds = one("DaemonSet");
    let image = at(&ds, "spec.template.spec.containers.0.image")
        .as_str()
        .expect("the DaemonSet's container has an image");
    // A name, optionally with a tag or digest, as kustomize matches it.
    let name = image.split('@').next().unwrap_or(image);
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    let k = one("Kustomization");
    let entry = k["images"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?
        .clone();
    let new_name = entry["newName"].as_str().unwrap_or(name);
    let tag = entry["newTag"].as_str()?;
    Some(format!("{new_name}:{tag}"))
}

/// What the kubelet does to a ConfigMap volume in `dir`: the files in a new
/// timestamped directory, then `..data` swapped to it with one rename (the
/// files themselves are links through `..data`, made once by
/// [`configmap_volume`]).
pub fn configmap_swap(dir: &Path, version: &str, policy: &str) {
    let v = dir.join(format!("..{version}"));
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("policy.toml"), policy).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

/// A ConfigMap volume as the kubelet lays it out in `dir`, holding `policy`
/// as `policy.toml`.
pub fn configmap_volume(dir: &Path, policy: &str) {
    std::fs::create_dir_all(dir).unwrap();
    configmap_swap(dir, "v1", policy);
    std::os::unix::fs::symlink("..data/policy.toml", dir.join("policy.toml")).unwrap();
}
