//! The DaemonSet as deployed: dist/kubernetes/daemonset.yaml's container,
//! run under podman the way a kubelet runs it (capabilities, seccomp and
//! AppArmor, read-only root, user, mounts, hostPID, the cgroup namespace
//! the runtime gives on this cgroup layout, memory limit, environment and
//! arguments), with the ConfigMap's policy as a kubelet-style volume and
//! the image kustomize would deploy (imported from the built binary: no
//! image can be pulled here). A real Prometheus (Debian's) scrapes it as
//! the PodMonitor says; every PrometheusRule expression and every Grafana
//! panel query is evaluated there in scenarios that trigger them (denials,
//! budget, OOM, reload failure, agent down).
//!
//! What is not derived: the test's own group name replaces the ConfigMap's
//! example group, and the host paths of bpffs and the audit log are
//! directories of the test's own (so runs never share pins); the scrape
//! interval is 2 s instead of 15 s, and Grafana's `$__rate_interval` a
//! window covering the scenarios. A real cluster is not: no kubelet, CNI
//! or NetworkPolicy enforcement takes part.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use enforcer_tests::layout::{has_cgroup2, host, spec};
use enforcer_tests::manifests::{at, configmap_swap, configmap_volume, dashboard, one};
use enforcer_tests::{GroupGuard, enforcer_bin, helper_bin, skipped, unique_name, wait_for};
use serde_json::Value;

fn which(name: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn ok(cmd: &mut Command) -> String {
    let out: Output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// None (and the skip noted) unless this host can run the test: cgroup2,
/// podman, the runtime, Prometheus.
fn can_run(test: &str, runtime: &str) -> bool {
    if !has_cgroup2() {
        skipped(test, "no cgroup2 hierarchy (pure cgroup v1)");
        return false;
    }
    for tool in ["podman", runtime, "prometheus", "promtool"] {
        if which(tool).is_none() {
            // The systemd guest's image is built with all of them: there a
            // missing one is a broken image, not a host that lacks it.
            assert!(
                std::env::var_os("ENFORCER_TEST_DIST").is_none(),
                "{tool} is missing from the systemd guest's image"
            );
            skipped(
                test,
                &format!("{tool} is not installed here (`cargo xtask test` installs it)"),
            );
            return false;
        }
    }
    if runtime == "crun"
        && let Some(why) = crun_refuses()
    {
        skipped(test, &why);
        return false;
    }
    true
}

/// crun's refusal of this host ([`enforcer_tests::layout::crun_refuses_hybrid`]).
fn crun_refuses() -> Option<String> {
    enforcer_tests::layout::crun_refuses_hybrid()
}

/// Whether the host is pure cgroup v2 (cgroup2 at /sys/fs/cgroup): where
/// kubelets' runtimes give each container its own cgroup namespace.
fn pure_v2() -> bool {
    let cg = host();
    cg.v2()
        .is_some_and(|v2| cg.hierarchy(v2).mount_point == Path::new("/sys/fs/cgroup"))
}

/// `256Mi`, `1G`, `500M`: bytes, as Kubernetes reads a quantity.
fn quantity(q: &str) -> u64 {
    let (num, unit) = q
        .find(|c: char| !c.is_ascii_digit())
        .map_or((q, ""), |i| q.split_at(i));
    let n: u64 = num.parse().unwrap_or_else(|_| panic!("quantity {q}"));
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => panic!("quantity {q}: unknown unit"),
    }
}

/// What the test puts where the manifest names host paths or volumes.
struct Volumes {
    /// hostPath path -> the test's own directory (bpffs, audit log).
    host_paths: BTreeMap<String, PathBuf>,
    /// ConfigMap name -> the kubelet-style volume directory.
    config_maps: BTreeMap<String, PathBuf>,
}

/// `podman run` arguments (before the image) for the DaemonSet's one
/// container, as a kubelet would run it; and the container's arguments.
fn derive(ds: &Value, volumes: &Volumes) -> (Vec<String>, Vec<String>) {
    let pod = at(ds, "spec.template.spec");
    let c = &pod["containers"][0];
    let mut args: Vec<String> = Vec::new();
    let mut arg = |a: String| args.push(a);
    for (k, v) in pod.as_object().unwrap() {
        match k.as_str() {
            "hostPID" if v == true => arg("--pid=host".into()),
            "hostNetwork" if v == true => arg("--network=host".into()),
            "hostIPC" if v == true => arg("--ipc=host".into()),
            "hostPID" | "hostNetwork" | "hostIPC" => {}
            // Scheduling and lifecycle: not the container's environment.
            "priorityClassName"
            | "tolerations"
            | "terminationGracePeriodSeconds"
            | "containers"
            | "volumes" => {}
            other => panic!("the test does not know how a kubelet applies pod spec `{other}`"),
        }
    }
    // The cgroup namespace is the runtime's choice, not the manifest's:
    // containerd and CRI-O give each container its own on cgroup v2 and
    // share the host's on v1 and hybrid hosts.
    arg(format!(
        "--cgroupns={}",
        if pure_v2() { "private" } else { "host" }
    ));
    let sc = &c["securityContext"];
    for (k, v) in sc.as_object().unwrap() {
        match k.as_str() {
            "privileged" => {
                if v == true {
                    arg("--privileged".into());
                }
            }
            "allowPrivilegeEscalation" => {
                if v == false {
                    arg("--security-opt=no-new-privileges".into());
                }
            }
            "readOnlyRootFilesystem" => {
                if v == true {
                    // Kubernetes adds no tmpfs of its own, as podman would.
                    arg("--read-only".into());
                    arg("--read-only-tmpfs=false".into());
                }
            }
            "runAsUser" => arg(format!("--user={v}")),
            "seccompProfile" => match v["type"].as_str() {
                Some("Unconfined") => arg("--security-opt=seccomp=unconfined".into()),
                Some("RuntimeDefault") => {}
                t => panic!("seccompProfile type {t:?}"),
            },
            "appArmorProfile" => match v["type"].as_str() {
                Some("Unconfined") => arg("--security-opt=apparmor=unconfined".into()),
                t => panic!("appArmorProfile type {t:?}"),
            },
            "capabilities" => {
                for d in v["drop"].as_array().into_iter().flatten() {
                    arg(format!("--cap-drop={}", d.as_str().unwrap()));
                }
                for a in v["add"].as_array().into_iter().flatten() {
                    arg(format!("--cap-add=CAP_{}", a.as_str().unwrap()));
                }
            }
            other => {
                panic!("the test does not know how a kubelet applies securityContext `{other}`")
            }
        }
    }
    let annotations = at(ds, "spec.template.metadata.annotations");
    let name = c["name"].as_str().unwrap();
    if let Some(p) =
        annotations[format!("container.apparmor.security.beta.kubernetes.io/{name}")].as_str()
    {
        assert_eq!(p, "unconfined", "the AppArmor annotation");
        arg("--security-opt=apparmor=unconfined".into());
    }
    for e in c["env"].as_array().into_iter().flatten() {
        arg(format!(
            "--env={}={}",
            e["name"].as_str().unwrap(),
            e["value"].as_str().unwrap()
        ));
    }
    if let Some(m) = c["resources"]["limits"]["memory"].as_str() {
        arg(format!("--memory={}", quantity(m)));
    }
    if let Some(cpu) = c["resources"]["requests"]["cpu"].as_str() {
        let milli: u64 = cpu.strip_suffix('m').map_or_else(
            || cpu.parse::<u64>().unwrap() * 1000,
            |m| m.parse().unwrap(),
        );
        arg(format!("--cpu-shares={}", (milli * 1024 / 1000).max(2)));
    }
    let vols: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    for m in c["volumeMounts"].as_array().unwrap() {
        let path = m["mountPath"].as_str().unwrap();
        let ro = if m["readOnly"] == true { ":ro" } else { "" };
        let v = vols[m["name"].as_str().unwrap()];
        if let Some(hp) = v.get("hostPath") {
            let host = hp["path"].as_str().unwrap();
            let host = match volumes.host_paths.get(host) {
                Some(p) => p.clone(),
                None => PathBuf::from(host),
            };
            match hp["type"].as_str() {
                Some("DirectoryOrCreate") => std::fs::create_dir_all(&host).unwrap(),
                Some("Directory") => assert!(host.is_dir(), "hostPath {host:?} exists"),
                t => panic!("hostPath type {t:?}"),
            }
            arg(format!("--volume={}:{path}{ro}", host.display()));
        } else if let Some(cm) = v.get("configMap") {
            let dir = &volumes.config_maps[cm["name"].as_str().unwrap()];
            arg(format!("--volume={}:{path}{ro}", dir.display()));
        } else if let Some(e) = v.get("emptyDir") {
            assert_eq!(e["medium"], "Memory", "emptyDir {v}");
            arg(format!("--tmpfs={path}"));
        } else {
            panic!("the test does not know volume {v}");
        }
    }
    let command = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    (args, command)
}

/// An image of the built binary and the libraries it loads, as the
/// Containerfile lays it out (`/usr/local/sbin/enforcer`, ENTRYPOINT).
fn import_image(scratch: &Path, reference: &str) {
    let root = scratch.join("image");
    let sbin = root.join("usr/local/sbin");
    std::fs::create_dir_all(&sbin).unwrap();
    for d in ["etc", "tmp", "proc", "sys", "dev", "run"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let bin = sbin.join("enforcer");
    // Without debug info: a fraction of the size, the same program.
    let stripped = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(enforcer_bin())
        .arg(&bin)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(enforcer_bin(), &bin).unwrap();
    }
    let ldd = ok(Command::new("ldd").arg(&bin));
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let to = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, &to).unwrap();
    }
    let tar = scratch.join("image.tar");
    ok(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    ok(Command::new("podman")
        .args([
            "import",
            "--quiet",
            "--change",
            r#"ENTRYPOINT ["/usr/local/sbin/enforcer"]"#,
            "--change",
            "ENV NO_COLOR=1",
        ])
        .arg(&tar)
        .arg(reference));
}

/// An HTTP/1.0 GET on loopback or the pod network: status and body.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The node's name, as `spec.nodeName` would give it.
fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

/// One deployment: the container, Prometheus, and what they use; all of it
/// removed when dropped (also on panic).
struct Deployment {
    name: String,
    image: String,
    scratch: PathBuf,
    pins: PathBuf,
    configmap: PathBuf,
    group: GroupGuard,
    /// Where podman puts the container on a cgroupfs-managed host.
    pods: GroupGuard,
    pod_ip: String,
    prometheus: Option<Child>,
    prom_addr: String,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "--force", "--time", "0", &self.name])
            .output();
        if let Some(mut p) = self.prometheus.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        // on_exit = "keep" left the programs pinned: enforcer stop removes them.
        let _ = Command::new(enforcer_bin())
            .args(["stop", "--pin-dir"])
            .arg(self.pins.join("enforcer"))
            .arg("--pid-file")
            .arg(self.scratch.join("no.pid"))
            .output();
        let _ = std::fs::remove_dir_all(&self.pins);
        let _ = Command::new("podman")
            .args(["rmi", "--force", &self.image])
            .output();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The ConfigMap's policy with the test's group name for its example group.
fn configmap_policy(group: &str) -> String {
    let cm = one("ConfigMap");
    let policy = cm["data"]["policy.toml"].as_str().unwrap();
    let renamed = policy.replace("\"enforcer-example\"", &format!("\"{group}\""));
    assert_ne!(
        renamed, policy,
        "the ConfigMap's example group is `enforcer-example` (the test runs it under its own name)"
    );
    renamed
}

impl Deployment {
    /// The DaemonSet's container under `runtime`, ready (its readiness
    /// probe answers).
    fn start(runtime: &str) -> Deployment {
        let name = unique_name(&format!("ds-{runtime}"));
        let scratch = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&scratch).unwrap();
        let pins = PathBuf::from("/sys/fs/bpf").join(&name);
        std::fs::create_dir(&pins).unwrap();
        std::fs::set_permissions(&pins, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let group = GroupGuard::new("ds");
        let configmap = scratch.join("configmap");
        configmap_volume(&configmap, &configmap_policy(&group.name));
        let cm = one("ConfigMap");
        let image = format!(
            "{}-{name}",
            enforcer_tests::manifests::deployed_image()
                .expect("kustomization.yaml sets the DaemonSet's image")
        );
        let mut d = Deployment {
            name,
            image,
            scratch,
            pins,
            configmap,
            group,
            pods: GroupGuard::new("ds-pods"),
            pod_ip: String::new(),
            prometheus: None,
            prom_addr: String::new(),
        };
        import_image(&d.scratch, &d.image);
        let volumes = Volumes {
            host_paths: [
                ("/sys/fs/bpf".to_string(), d.pins.clone()),
                ("/var/log/enforcer".to_string(), d.scratch.join("audit")),
            ]
            .into(),
            config_maps: [(
                cm["metadata"]["name"].as_str().unwrap().to_string(),
                d.configmap.clone(),
            )]
            .into(),
        };
        let ds = one("DaemonSet");
        let (args, command) = derive(&ds, &volumes);
        let mut cmd = Command::new("podman");
        cmd.args(["run", "--detach", "--name", &d.name])
            .arg(format!("--runtime={runtime}"))
            .args(&args);
        // Without CAP_SYS_RESOURCE (this host) podman's default rlimits
        // (1048576 files) cannot be set: the limits this test runs with.
        // SAFETY: getrlimit writes into the struct we pass.
        let nofile = unsafe {
            let mut l = std::mem::zeroed::<libc::rlimit>();
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
            l.rlim_cur
        };
        cmd.arg(format!("--ulimit=nofile={nofile}:{nofile}"))
            .arg("--ulimit=nproc=4096:4096");
        if podman_info("{{.Host.CgroupManager}}") == "cgroupfs" {
            // Below a group of the test's, so nothing is left at the top.
            cmd.arg(format!("--cgroup-parent=/{}", d.pods.name));
        }
        cmd.arg(&d.image).args(&command);
        ok(&mut cmd);
        d.pod_ip = ok(Command::new("podman").args([
            "inspect",
            "--format",
            "{{.NetworkSettings.IPAddress}}",
            &d.name,
        ]))
        .trim()
        .to_string();
        assert!(
            !d.pod_ip.is_empty(),
            "the pod has an IP on podman's network"
        );
        let probe = &ds["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"];
        let path = probe["path"].as_str().unwrap().to_string();
        let addr = d.metrics_addr();
        wait_for("the readiness probe", Duration::from_secs(60), || {
            if !d.running() {
                panic!("the container stopped:\n{}", d.logs());
            }
            http_get(&addr, &path).is_some_and(|(s, _)| s == 200)
        });
        d
    }

    /// The pod IP and the container's metrics port.
    fn metrics_addr(&self) -> String {
        let ds = one("DaemonSet");
        let port = at(&ds, "spec.template.spec.containers.0.ports.0.containerPort");
        format!("{}:{port}", self.pod_ip)
    }

    fn running(&self) -> bool {
        Command::new("podman")
            .args(["inspect", "--format", "{{.State.Running}}", &self.name])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
    }

    /// What to say when Prometheus lacks data: the scrape's state, the
    /// container's, and the end of the agent's log.
    fn diagnose(&self) -> String {
        let state = Command::new("podman")
            .args([
                "inspect",
                "--format",
                "{{.State.Status}} exit {{.State.ExitCode}} oom-killed {{.State.OOMKilled}}",
                &self.name,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let up: Vec<String> = ["up", "scrape_duration_seconds"]
            .iter()
            .flat_map(|q| self.query(q))
            .map(|s| format!("{} {}", s["metric"]["__name__"], s["value"][1]))
            .collect();
        let logs = self.logs();
        let tail: Vec<&str> = logs.lines().rev().take(15).collect();
        format!(
            "up {up:?}; the container: {state}; the agent's log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }

    fn logs(&self) -> String {
        let out = Command::new("podman")
            .args(["logs", &self.name])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `helper ARGS` run in the policy's group, from the host (as a pod's
    /// process would be there): its stdout.
    fn in_group(&self, args: &[&str]) -> String {
        ok(Command::new(enforcer_bin())
            .args(["exec", "-g", &spec(&self.group.name), "--"])
            .arg(helper_bin())
            .args(args))
    }

    /// Prometheus on loopback, scraping the pod as the PodMonitor says
    /// (every 2 s, for the test), with the PrometheusRule's rules.
    fn start_prometheus(&mut self) {
        let rules = one("PrometheusRule");
        let rules_file = self.scratch.join("rules.yml");
        std::fs::write(
            &rules_file,
            serde_yaml_ng::to_string(&serde_json::json!({ "groups": rules["spec"]["groups"] }))
                .unwrap(),
        )
        .unwrap();
        ok(Command::new("promtool")
            .args(["check", "rules"])
            .arg(&rules_file));
        let pm = one("PodMonitor");
        let ep = &pm["spec"]["podMetricsEndpoints"][0];
        // The PodMonitor's relabelings give `node` from the pod's node name.
        let relabels_node = ep["relabelings"].as_array().is_some_and(|r| {
            r.iter().any(|l| {
                l["targetLabel"] == "node"
                    && l["sourceLabels"][0] == "__meta_kubernetes_pod_node_name"
            })
        });
        let mut labels = serde_json::json!({
            "namespace": pm["metadata"]["namespace"],
            "pod": self.name,
            "container": "enforcer",
        });
        if relabels_node {
            labels["node"] = node_name().into();
        }
        let config = serde_json::json!({
            // 2 s, not the PodMonitor's 15 s: the test's scenarios are short;
            // not 1 s either: a debug build on a loaded host may take longer
            // to answer, and a timed-out scrape makes every series stale.
            "global": { "scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "2s" },
            "rule_files": [rules_file],
            "scrape_configs": [{
                // The job label the Prometheus Operator gives a PodMonitor's targets.
                "job_name": format!("{}/{}", pm["metadata"]["namespace"].as_str().unwrap(),
                                    pm["metadata"]["name"].as_str().unwrap()),
                "metrics_path": ep["path"],
                "static_configs": [{ "targets": [self.metrics_addr()], "labels": labels }],
            }],
        });
        let config_file = self.scratch.join("prometheus.yml");
        std::fs::write(&config_file, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
        ok(Command::new("promtool")
            .args(["check", "config"])
            .arg(&config_file));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        self.prom_addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(self.scratch.join("prometheus.log")).unwrap();
        self.prometheus = Some(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config_file.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    self.scratch.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address={}", self.prom_addr))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let addr = self.prom_addr.clone();
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            http_get(&addr, "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        wait_for("the first scrape", Duration::from_secs(60), || {
            self.query("up").iter().any(|s| s["value"][1] == "1")
        });
    }

    /// An instant query; panics if Prometheus refuses it (it does not parse).
    fn query(&self, expr: &str) -> Vec<Value> {
        let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
        let (status, body) = http_get(&self.prom_addr, &format!("/api/v1/query?query={q}"))
            .unwrap_or_else(|| panic!("Prometheus did not answer {expr}"));
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert!(
            status == 200 && v["status"] == "success",
            "Prometheus refused `{expr}`: {body}"
        );
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `expr` until it returns a series; on timeout says what the
    /// expression without its threshold returns, and the agent's log.
    fn wait_for_data(&self, what: &str, expr: &str) -> Vec<Value> {
        let deadline =
            std::time::Instant::now() + Duration::from_secs(60) * enforcer_tests::time_scale();
        loop {
            let got = self.query(expr);
            if !got.is_empty() {
                return got;
            }
            if std::time::Instant::now() > deadline {
                let base = without_threshold(expr);
                let served = http_get(&self.metrics_addr(), "/metrics").map(|(_, b)| b);
                panic!(
                    "no data for {what} (`{expr}`); `{base}` returns {:?}, up {:?}\n\
                     the agent serves:\n{}\nthe agent's log:\n{}",
                    self.query(base),
                    self.query("up"),
                    served.unwrap_or_default(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn podman_info(format: &str) -> String {
    ok(Command::new("podman").args(["info", "--format", format]))
        .trim()
        .to_string()
}

/// The dashboard's queries with its variables replaced as Grafana would
/// for "All": the variable's allValue (or `.*`); `$__rate_interval` by a
/// window that covers the scenarios.
fn panel_queries() -> Vec<(String, String)> {
    let d = dashboard();
    let mut vars: Vec<(String, String)> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["allValue"].as_str().unwrap_or(".*").to_string(),
            )
        })
        .collect();
    vars.push(("__rate_interval".into(), "10m".into()));
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let mut expr = t["expr"].as_str().unwrap().to_string();
            for (name, value) in &vars {
                expr = expr
                    .replace(&format!("${{{name}}}"), value)
                    .replace(&format!("${name}"), value);
            }
            out.push((
                format!("{} / {}", p["title"].as_str().unwrap(), t["refId"]),
                expr,
            ));
        }
    }
    out
}

/// Each alert: its name and expression.
fn alert_rules() -> Vec<(String, String)> {
    let r = one("PrometheusRule");
    r["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["expr"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The expression without its final threshold (`A > 0.9` -> `A`).
fn without_threshold(expr: &str) -> &str {
    [" > ", " < ", " == "]
        .iter()
        .filter_map(|op| expr.rfind(op))
        .max()
        .map_or(expr, |i| &expr[..i])
}

/// Alerts no scenario here can trigger in a test's time: a counting map
/// 90% full (65536 groups), and events lost (a full ring buffer). Their
/// expressions must parse, and what they compare must have data.
const NOT_TRIGGERED: &[&str] = &["EnforcerMapNearlyFull", "EnforcerEventsLost"];

#[test]
fn the_daemonset_runs_under_runc_scraped_by_prometheus() {
    let test = "the_daemonset_runs_under_runc_scraped_by_prometheus";
    if !can_run(test, "runc") {
        return;
    }
    let mut d = Deployment::start("runc");
    d.start_prometheus();
    let node = node_name();

    // The dashboard's node variable lists node names, not pod addresses.
    for v in dashboard()["templating"]["list"].as_array().unwrap() {
        let Some(q) = v["query"].as_str() else {
            continue;
        };
        let Some(args) = q
            .strip_prefix("label_values(")
            .and_then(|a| a.strip_suffix(')'))
        else {
            continue;
        };
        let (metric, label) = args.split_once(',').unwrap();
        let (metric, label) = (metric.trim(), label.trim());
        let series = d.wait_for_data(&format!("variable {}", v["name"]), metric);
        let values: Vec<&str> = series
            .iter()
            .filter_map(|s| s["metric"][label].as_str())
            .collect();
        assert_eq!(
            values,
            [node.as_str()],
            "the dashboard's `{}` variable ({q}) lists the nodes",
            v["name"]
        );
    }

    // Traffic and syscalls in the policy's group.
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap().to_string();
    d.in_group(&["udp-send", &to, "20", "100"]);
    d.in_group(&["sockaddr", "3"]);
    // Denials: the ConfigMap denies the cloud metadata address.
    let out = d.in_group(&["connect-loop", "169.254.169.254:80", "3000"]);
    assert_eq!(out.trim(), "ok 0 eperm 3000 other 0");

    // The budget: a new ConfigMap version (as `kubectl edit` makes the
    // kubelet write) with a budget small enough to spend here.
    let policy = configmap_policy(&d.group.name);
    let tight = policy.replace("egress_budget = \"10G/1d\"", "egress_budget = \"64K/1h\"");
    assert!(tight.contains("64K/1h"), "{policy}");
    configmap_swap(&d.configmap, "v2", &tight);
    d.wait_for_data(
        "the new budget",
        &format!(
            "enforcer_budget_bytes{{group=\"{}\"}} == 65536",
            d.group.name
        ),
    );
    d.in_group(&["udp-blast", &to, "200", "1000"]);
    // The OOM: more than the ConfigMap's memory.max (256M).
    let oom = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&d.group.name), "--"])
        .arg(helper_bin())
        .args(["alloc", "400000000"])
        .status()
        .unwrap();
    assert!(!oom.success(), "the allocation over memory.max was killed");
    // A reload failure: an invalid version; the previous one stays.
    configmap_swap(&d.configmap, "v3", "[group.x]\n\"memory.max\" = \"lots\"\n");
    d.wait_for_data(
        "the failed reload",
        "enforcer_reloads_total{result=\"failure\"} > 0",
    );
    d.wait_for_data(
        "the OOM kill",
        &format!("enforcer_oom_kills_total{{group=\"{}\"}} > 0", d.group.name),
    );

    // Every panel query parses and has data.
    let mut empty = Vec::new();
    for (what, expr) in panel_queries() {
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while got.is_empty() && std::time::Instant::now() < deadline {
            got = d.query(&expr);
            if got.is_empty() {
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        if got.is_empty() {
            empty.push(format!("{what}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "panels without data:\n{}\n{}",
        empty.join("\n"),
        d.diagnose()
    );

    // Every alert but the agent's absence fires in these scenarios.
    let alerts = alert_rules();
    let mut silent = Vec::new();
    for (name, expr) in &alerts {
        if name == "EnforcerAgentDown" {
            assert!(d.query(expr).is_empty(), "{name} while the agent is up");
            continue;
        }
        let expr = if NOT_TRIGGERED.contains(&name.as_str()) {
            without_threshold(expr)
        } else {
            expr.as_str()
        };
        if d.query(expr).is_empty() {
            silent.push(format!("{name}: {expr}"));
        }
    }
    assert!(
        silent.is_empty(),
        "alerts without data:\n{}\n{}",
        silent.join("\n"),
        d.diagnose()
    );
    // Prometheus evaluated every rule without an error.
    let (_, body) = http_get(&d.prom_addr, "/api/v1/rules").unwrap();
    let rules: Value = serde_json::from_str(&body).unwrap();
    for g in rules["data"]["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            assert_eq!(r["health"], "ok", "{r}");
        }
    }

    // The agent down: one series for the node, named.
    let (name, expr) = alerts
        .iter()
        .find(|(n, _)| n == "EnforcerAgentDown")
        .expect("an EnforcerAgentDown alert");
    ok(Command::new("podman").args(["kill", &d.name]));
    let down = d.wait_for_data(name, "up == 0");
    assert_eq!(down.len(), 1);
    let series = d.wait_for_data(name, expr);
    assert_eq!(
        series.len(),
        1,
        "{name} yields one series per node: {series:?}"
    );
    assert_eq!(series[0]["metric"]["node"], node.as_str(), "{series:?}");
}

#[test]
fn the_daemonset_runs_under_crun() {
    let test = "the_daemonset_runs_under_crun";
    if !can_run(test, "crun") {
        return;
    }
    let mut d = Deployment::start("crun");
    d.start_prometheus();
    let out = d.in_group(&["connect-loop", "169.254.169.254:80", "10"]);
    assert_eq!(out.trim(), "ok 0 eperm 10 other 0");
    d.wait_for_data(
        "the denials counted",
        &format!(
            "enforcer_denied_total{{group=\"{}\",hook=\"connect\"}} == 10",
            d.group.name
        ),
    );
    // SIGTERM within the grace period, as the kubelet stops a pod.
    let grace = at(
        &one("DaemonSet"),
        "spec.template.spec.terminationGracePeriodSeconds",
    )
    .as_u64()
    .unwrap();
    ok(Command::new("podman").args(["stop", "--time", &grace.to_string(), &d.name]));
    let code =
        ok(Command::new("podman").args(["inspect", "--format", "{{.State.ExitCode}}", &d.name]));
    assert_eq!(code.trim(), "0", "a clean stop:\n{}", d.logs());
    // on_exit = "keep": the rule stays while no agent runs.
    let out = d.in_group(&["connect-loop", "169.254.169.254:80", "10"]);
    assert_eq!(out.trim(), "ok 0 eperm 10 other 0");
}

#[test]
fn quantities_read_as_kubernetes_reads_them() {
    assert_eq!(quantity("256Mi"), 256 << 20);
    assert_eq!(quantity("64"), 64);
    assert_eq!(quantity("1G"), 1_000_000_000);
    assert_eq!(
        without_threshold("sum by (x) (rate(a[5m])) > 10"),
        "sum by (x) (rate(a[5m]))"
    );
}
