//! What runs in a group, read from its cgroup path: the systemd unit, the
//! container (docker, containerd, CRI-O, podman) and the Kubernetes pod (QoS
//! class, pod UID) that systemd, the container runtimes and the kubelet name
//! their groups after. Pure string work: nothing is asked of a runtime.
//!
//! The layouts recognised (anywhere in the path, so a test can build them
//! below a group of its own):
//!
//! ```text
//! system.slice/nginx.service                                unit nginx.service
//! system.slice/docker-<id>.scope   docker/<id>              docker container
//! .../cri-containerd-<id>.scope    .../<pod dir>/<id>       containerd (CRI)
//! .../crio-<id>.scope              libpod-<id>.scope        CRI-O, podman
//! kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/...
//! kubepods/besteffort/pod<uid>/<id>     kubepods/pod<uid>/<id> (guaranteed)
//! ```

use serde::Serialize;

/// Labels derived from a group's path; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// The innermost systemd unit (`nginx.service`, `docker-<id>.scope`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `docker`, `containerd`, `crio` or `podman`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// The container id (64 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// The container's name, where its runtime writes it down (podman,
    /// CRI-O and buildah in containers/storage, docker in its config); not
    /// from the path (see `containers.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// The Kubernetes pod UID, with dashes (`6f1c...-...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The pod's QoS class: `guaranteed`, `burstable` or `besteffort`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos_class: Option<String>,
}

impl Workload {
    pub fn is_empty(&self) -> bool {
        *self == Workload::default()
    }

    /// A short name for tables: the container (12 digits) or pod, else the unit.
    pub fn short(&self) -> String {
        match (&self.container_id, &self.pod_uid, &self.unit) {
            (Some(c), Some(p), _) => format!("pod {} ctr {}", short_id(p), short_id(c)),
            (Some(c), None, _) => format!(
                "{} {}",
                self.runtime.as_deref().unwrap_or("container"),
                self.container_name.as_deref().unwrap_or(short_id(c))
            ),
            (None, Some(p), _) => format!(
                "pod {} ({})",
                short_id(p),
                self.qos_class.as_deref().unwrap_or("?")
            ),
            (None, None, Some(u)) => u.clone(),
            (None, None, None) => String::new(),
        }
    }
}

fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A pod UID as the kubelet writes it in a directory name: with dashes
/// (cgroupfs driver) or underscores (systemd driver).
fn pod_uid(s: &str) -> Option<String> {
    let uid = s.replace('_', "-");
    let ok = uid.len() == 36
        && uid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    ok.then_some(uid)
}

const RUNTIME_SCOPES: [(&str, &str); 5] = [
    ("docker-", "docker"),
    ("cri-containerd-", "containerd"),
    ("crio-", "crio"),
    ("libpod-", "podman"),
    ("containerd-", "containerd"),
];

const QOS: [&str; 2] = ["burstable", "besteffort"];

/// The labels of the group at `path` (`/`-separated, below the cgroup2 root).
pub fn classify(path: &str) -> Workload {
    let mut w = Workload::default();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut in_kubepods = false;
    let mut prev: Option<&str> = None;
    for part in &parts {
        if let Some(unit) = [".service", ".scope", ".socket", ".mount"]
            .iter()
            .find(|s| part.ends_with(*s))
            .map(|_| part.to_string())
        {
            w.unit = Some(unit);
        }
        // kubepods (cgroupfs driver) / kubepods.slice (systemd driver).
        if *part == "kubepods" || *part == "kubepods.slice" {
            in_kubepods = true;
            w.qos_class = Some("guaranteed".into());
        }
        if in_kubepods {
            let bare = part.trim_end_matches(".slice");
            for q in QOS {
                if bare == q || bare == format!("kubepods-{q}") {
                    w.qos_class = Some(q.into());
                }
            }
            let pod = bare
                .rsplit_once("pod")
                .filter(|(head, _)| head.is_empty() || head.ends_with('-'))
                .and_then(|(_, uid)| pod_uid(uid));
            if let Some(uid) = pod {
                w.pod_uid = Some(uid);
            }
        }
        let scope = part.trim_end_matches(".scope");
        for (prefix, runtime) in RUNTIME_SCOPES {
            if let Some(id) = scope.strip_prefix(prefix).filter(|id| is_container_id(id)) {
                w.container_id = Some(id.into());
                w.runtime = Some(runtime.into());
                break;
            }
        }
        // cgroupfs drivers: `docker/<id>`, `kubepods/.../pod<uid>/<id>`.
        if w.container_id.is_none() && is_container_id(part) {
            w.container_id = Some(part.to_string());
            w.runtime = match prev {
                Some("docker") => Some("docker".into()),
                _ => None,
            };
        }
        prev = Some(part);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "6f1c2b3a-1d2e-4f50-8a9b-0c1d2e3f4a5b";

    #[test]
    fn systemd_units() {
        let w = classify("system.slice/nginx.service");
        assert_eq!(w.unit.as_deref(), Some("nginx.service"));
        assert_eq!(w.container_id, None);
        assert!(classify("user.slice").is_empty());
        assert!(classify("/").is_empty());
    }

    #[test]
    fn docker_both_drivers() {
        let w = classify(&format!("system.slice/docker-{ID}.scope"));
        assert_eq!(w.runtime.as_deref(), Some("docker"));
        assert_eq!(w.container_id.as_deref(), Some(ID));
        assert_eq!(w.unit, Some(format!("docker-{ID}.scope")));
        let w = classify(&format!("docker/{ID}"));
        assert_eq!(
            (w.runtime.as_deref(), w.container_id.as_deref()),
            (Some("docker"), Some(ID))
        );
    }

    #[test]
    fn kubepods_systemd_driver() {
        let uid_ = UID.replace('-', "_");
        let w = classify(&format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(w.qos_class.as_deref(), Some("burstable"));
        assert_eq!(w.pod_uid.as_deref(), Some(UID));
        assert_eq!(w.runtime.as_deref(), Some("containerd"));
        assert_eq!(w.container_id.as_deref(), Some(ID));
        // Guaranteed pods sit right below kubepods.
        let w = classify(&format!(
            "kubepods.slice/kubepods-pod{uid_}.slice/crio-{ID}.scope"
        ));
        assert_eq!(w.qos_class.as_deref(), Some("guaranteed"));
        assert_eq!(w.runtime.as_deref(), Some("crio"));
        assert!(w.short().starts_with("pod 6f1c2b3a-1d2 ctr 0123456789ab"));
    }

    #[test]
    fn kubepods_cgroupfs_driver_below_a_test_group() {
        let w = classify(&format!("enf-test-x/kubepods/besteffort/pod{UID}/{ID}"));
        assert_eq!(w.qos_class.as_deref(), Some("besteffort"));
        assert_eq!(w.pod_uid.as_deref(), Some(UID));
        assert_eq!(w.container_id.as_deref(), Some(ID));
        let w = classify(&format!("kubepods/besteffort/pod{UID}"));
        assert_eq!(w.container_id, None);
        assert_eq!(w.short(), "pod 6f1c2b3a-1d2 (besteffort)");
    }

    #[test]
    fn podman_scopes() {
        let w = classify(&format!("machine.slice/libpod-{ID}.scope"));
        assert_eq!(
            (w.runtime.as_deref(), w.container_id.as_deref()),
            (Some("podman"), Some(ID))
        );
    }

    #[test]
    fn lookalikes_are_not_containers() {
        assert!(classify("docker-short.scope").container_id.is_none());
        assert!(classify("podcast/x").pod_uid.is_none());
        assert!(classify("kubepods/podnotauid").pod_uid.is_none());
    }
}
