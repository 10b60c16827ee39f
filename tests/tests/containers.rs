//! Containers as users run them (root, real kernel, podman with runc and
//! crun, the cgroupfs manager: this host has no systemd as PID 1). No image
//! can be pulled here: each test imports one built from a directory (the
//! test helper with its libraries, and busybox-static) with `tar` and
//! `podman import`, under a unique name removed afterwards.
//!
//! - A container's traffic and syscalls are counted exactly, under its own
//!   group, labelled with the runtime, its id and its name.
//! - crun starts containers after the suite's kind of operations: no
//!   enforcer path enables a controller in the cgroup2 root of a hybrid host
//!   (crun refuses such a host: "cgroups in hybrid mode not supported").

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use enforcer_tests::layout::{
    restore_v2_root_controllers, skip_without_cgroup2, spec, v2_root_controllers,
};
use enforcer_tests::{AgentRun, GroupGuard, enforcer_ok, helper_bin, unique_name, wait_until};

fn podman(args: &[&str]) -> Output {
    Command::new("podman").args(args).output().unwrap()
}

fn have_podman(test: &str) -> bool {
    let ok = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        enforcer_tests::skipped(
            test,
            "podman is not installed (cargo xtask setup installs it)",
        );
    }
    ok
}

/// Whether `runtime` can run a container here: crun refuses a hybrid host
/// whose cgroup2 root has a controller enabled; the test says why it skips.
fn runtime_usable(test: &str, runtime: &str) -> bool {
    if runtime == "crun"
        && let Some(why) = enforcer_tests::layout::crun_refuses_hybrid()
    {
        enforcer_tests::skipped(test, &why);
        return false;
    }
    let found = Command::new(runtime).arg("--version").output().is_ok();
    if !found {
        enforcer_tests::skipped(test, &format!("{runtime} is not installed"));
    }
    found
}

/// An image built from a directory: the test helper (with its libraries)
/// and busybox; removed when dropped.
struct Image {
    name: String,
}

impl Image {
    fn build() -> Image {
        let name = format!("localhost/{}:1", unique_name("img"));
        let root = std::env::temp_dir().join(unique_name("rootfs"));
        let copy = |from: &Path, to: &str| {
            let dest = root.join(to.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(from, &dest).unwrap();
        };
        copy(&helper_bin(), "/helper");
        // The helper's shared libraries at the same paths (ldd).
        let ldd = Command::new("ldd").arg(helper_bin()).output().unwrap();
        for line in String::from_utf8_lossy(&ldd.stdout).lines() {
            let path = line
                .split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from);
            if let Some(p) = path {
                copy(&p, p.to_str().unwrap());
            }
        }
        if Path::new("/bin/busybox").exists() {
            copy(Path::new("/bin/busybox"), "/bin/busybox");
            std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
        }
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", "."])
            .output()
            .unwrap();
        assert!(tar.status.success());
        let mut import = Command::new("podman")
            .args(["import", "-", &name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut import.stdin.take().unwrap(), &tar.stdout).unwrap();
        let out = import.wait_with_output().unwrap();
        let _ = std::fs::remove_dir_all(&root);
        assert!(out.status.success(), "podman import: {out:?}");
        Image { name }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = podman(&["rmi", "--force", &self.name]);
    }
}

/// `podman run` with this host's limits (no CAP_SYS_RESOURCE: podman's
/// default rlimits cannot be set), the host's network (loopback), below
/// `parent` (cgroupfs manager), named `name`.
fn run_in(
    runtime: &str,
    image: &Image,
    parent: &str,
    name: &str,
    opts: &[&str],
    cmd: &[&str],
) -> Output {
    // SAFETY: getrlimit writes into the struct we pass.
    let nofile = unsafe {
        let mut l = std::mem::zeroed::<libc::rlimit>();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur
    };
    Command::new("podman")
        .args(["--runtime", runtime, "--cgroup-manager", "cgroupfs", "run"])
        .args(["--name", name, "--network", "host"])
        .arg(format!("--ulimit=nofile={nofile}:{nofile}"))
        .arg("--ulimit=nproc=4096:4096")
        .arg(format!("--cgroup-parent=/{parent}"))
        .args(opts)
        .arg(&image.name)
        .args(cmd)
        .output()
        .unwrap()
}

/// Removes the container when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", &self.0]);
    }
}

fn counted_and_labelled(runtime: &str) {
    let test = format!("a_podman_container_is_counted_and_labelled ({runtime})");
    if skip_without_cgroup2(&test) || !have_podman(&test) || !runtime_usable(&test, runtime) {
        return;
    }
    let image = Image::build();
    let p = GroupGuard::new(&format!("ctr-{runtime}"));
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"256M\"\n",
            p.name
        ),
    )
    .unwrap();
    run.start(&policy);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = rx.local_addr().unwrap().to_string();
    let name = unique_name(&format!("web-{runtime}"));
    let c = Container(name.clone());
    // Sends, then stays (its group goes when it ends).
    let script = format!("/helper udp-send {addr} 1000 1000 && echo sent && exec /helper sleep 60");
    let out = run_in(
        runtime,
        &image,
        &p.name,
        &name,
        &["-d"],
        &["/bin/sh", "-c", &script],
    );
    assert!(out.status.success(), "podman run ({runtime}): {out:?}");
    wait_until("the container to have sent", || {
        String::from_utf8_lossy(&podman(&["logs", &name]).stdout).contains("sent")
    });
    let id = String::from_utf8_lossy(&podman(&["inspect", "--format", "{{.Id}}", &c.0]).stdout)
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let group = format!("{}/libpod-{id}", p.name);
    let stats = run.stats(&group);
    assert_eq!(
        (
            stats["net"]["egress_packets"].as_u64(),
            stats["net"]["egress_bytes"].as_u64()
        ),
        (Some(1000), Some(1000 * 1028)),
        "the container's traffic, once: {stats}"
    );
    let w = &stats["workload"];
    assert_eq!(w["runtime"], "podman", "{stats}");
    assert_eq!(w["container_id"], id.as_str(), "{stats}");
    assert_eq!(w["container_name"], name.as_str(), "{stats}");
    // The metrics carry the same labels; top shows the name.
    wait_until("the container's info series", || {
        run.metrics().is_some_and(|m| {
            m.lines().any(|l| {
                l.starts_with("enforcer_group_info{")
                    && l.contains(&format!("container_name=\"{name}\""))
                    && l.contains(&format!("container_id=\"{id}\""))
                    && l.contains("runtime=\"podman\"")
            })
        })
    });
    let top = enforcer_ok(&[
        "top",
        "--once",
        "--interval",
        "100ms",
        "--pin-dir",
        run.pin(),
        "--filter",
        &id[..12],
    ]);
    assert!(top.contains(&format!("podman {name}")), "{top}");
}

#[test]
fn a_podman_container_is_counted_and_labelled_runc() {
    counted_and_labelled("runc");
}

#[test]
fn a_podman_container_is_counted_and_labelled_crun() {
    counted_and_labelled("crun");
}

/// The suite's kind of operations (groups for every controller, mirrored
/// into cgroup2, an agent with a policy, the compat tools), then crun: the
/// cgroup2 root's subtree_control is as it was before, and a crun
/// container starts when it was clean.
#[test]
fn crun_runs_after_the_suites_operations() {
    let test = "crun_runs_after_the_suites_operations";
    if skip_without_cgroup2(test) || !have_podman(test) {
        return;
    }
    let before = v2_root_controllers();
    let g = GroupGuard::new("crun-star");
    let h = GroupGuard::new("crun-mem");
    enforcer_ok(&["create", "-g", &format!("*:{}", g.name)]);
    enforcer_ok(&["create", "-g", &format!("*:{}/sub", g.name)]);
    enforcer_ok(&["create", "-g", &spec(&h.name)]);
    let mut run = AgentRun::new();
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{0}/a\"]\n\"memory.limit_in_bytes\" = \"64M\"\n\n[group.\"{0}/a\".network]\negress_budget = \"1G/1h\"\n",
            h.name
        ),
    )
    .unwrap();
    run.start(&policy);
    let compat = enforcer_tests::compat::command(
        enforcer_tests::compat::Side::Ours,
        "cgcreate",
        &["-g".into(), format!("*:{}/c", g.name)],
    )
    .output()
    .unwrap();
    assert!(compat.status.success(), "{compat:?}");
    let added = restore_v2_root_controllers(&before);
    assert!(
        added.is_empty(),
        "enforcer enabled {added:?} in the cgroup2 root's subtree_control (taken back)"
    );
    if !runtime_usable(test, "crun") {
        return;
    }
    let image = Image::build();
    let name = unique_name("crun");
    let _c = Container(name.clone());
    let out = run_in(
        "crun",
        &image,
        &g.name,
        &name,
        &[],
        &["/helper", "getppid", "10"],
    );
    assert!(
        out.status.success(),
        "crun after enforcer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `[[container]]` rules: a running podman container whose name matches gets
/// the table's network rules in its own group within an interval of its
/// start; one that does not match is left alone.
#[test]
fn container_rules_select_podman_containers_by_name() {
    let test = "container_rules_select_podman_containers_by_name";
    if skip_without_cgroup2(test) || !have_podman(test) || !runtime_usable(test, "runc") {
        return;
    }
    let image = Image::build();
    let p = GroupGuard::new("ctr-rules");
    let mut run = AgentRun::new();
    let prefix = unique_name("sel");
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"256M\"\n\n\
             [[container]]\nruntime = \"podman\"\nname = \"{prefix}-web-*\"\n\n\
             [container.network]\nconnect_deny = [\"127.0.0.2/32\"]\n",
            p.name
        ),
    )
    .unwrap();
    run.start(&policy);
    let web = Container(format!("{prefix}-web-1"));
    let db = Container(format!("{prefix}-db-1"));
    for c in [&web, &db] {
        let out = run_in(
            "runc",
            &image,
            &p.name,
            &c.0,
            &["-d"],
            &["/helper", "sleep", "60"],
        );
        assert!(out.status.success(), "podman run: {out:?}");
    }
    wait_until("the rules on the matching container", || {
        run.audit_lines().iter().any(|l| {
            l["kind"] == "container_rules"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&web.0) && m.contains("in force"))
        })
    });
    let connect = |c: &Container| {
        let out = podman(&["exec", &c.0, "/helper", "try-connect", "tcp", "127.0.0.2:9"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(
        connect(&web),
        "err EPERM",
        "the matching container is denied"
    );
    assert_ne!(connect(&db), "err EPERM", "the other one is not");
    assert!(
        !run.audit_lines()
            .iter()
            .any(|l| l["kind"] == "container_rules"
                && l["message"].as_str().is_some_and(|m| m.contains(&db.0))),
        "no rule for the other container"
    );
}
