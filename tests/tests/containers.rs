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
//! - `[[container]]` rules go with a removed container's group (its rules,
//!   enforcement pins and metric series), a reload swaps the tables on every
//!   container, a restart applies them again, and a rule dropped while the
//!   agent was down stays on its container until `enforcer stop`.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use enforcer_tests::layout::{
    restore_v2_root_controllers, skip_without_cgroup2, spec, v2_dir, v2_id, v2_root_controllers,
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

/// Lines of the audit log saying a `[[container]]` table went on the
/// container named `name`.
fn rules_in_force(run: &AgentRun, name: &str) -> usize {
    run.audit_lines()
        .iter()
        .filter(|l| {
            l["kind"] == "container_rules"
                && l["message"].as_str().is_some_and(|m| {
                    m.contains(&format!("container {name} (")) && m.contains("in force")
                })
        })
        .count()
}

/// `try-connect tcp ADDR` from inside the running container `name`.
fn connect_from(name: &str, addr: &str) -> String {
    let out = podman(&["exec", name, "/helper", "try-connect", "tcp", addr]);
    assert!(out.status.success(), "podman exec {name}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The container's full id and its cgroup2 group (below `parent`), with
/// that group's id.
fn container_group(parent: &str, name: &str) -> (String, String, u64) {
    let out = podman(&["inspect", "--format", "{{.Id}}", name]);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "podman inspect {name}: {out:?}");
    let group = format!("{parent}/libpod-{id}");
    let cg = v2_id(&group);
    (id, group, cg)
}

/// The egress budget (bytes) the kernel's rule map holds for cgroup `cg`,
/// if it holds rules with limits for it.
fn egress_budget(run: &AgentRun, cg: u64) -> Option<u64> {
    let limits = enforcer::bpf::limits_pinned(&run.pin_dir).expect("the pinned rule maps");
    limits
        .get(&cg)?
        .iter()
        .find(|l| l.direction == "egress")
        .and_then(|l| l.budget.as_ref())
        .map(|b| b.bytes)
}

/// The directory of the enforcement links pinned for cgroup `cg`.
fn enforce_pins(run: &AgentRun, cg: u64) -> PathBuf {
    run.pin_dir.join("enforce").join(cg.to_string())
}

fn pinned_links(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn start_container(image: &Image, parent: &str, name: &str) {
    let out = run_in(
        "runc",
        image,
        parent,
        name,
        &["-d"],
        &["/helper", "sleep", "120"],
    );
    assert!(out.status.success(), "podman run {name}: {out:?}");
}

const GIB: u64 = 1 << 30;

/// README, `[[container]]`: "a removed container's rules go with its group".
/// A container that got a table's rules is removed (`podman rm -f`): within
/// a few intervals of its group's going, the agent keeps nothing of it (no
/// rules in the kernel's map for its cgroup id, no enforcement links pinned
/// for it, no metric series); a new container of the same name gets the
/// rules again, in its own new group.
#[test]
fn a_removed_containers_rules_go_with_its_group() {
    let test = "a_removed_containers_rules_go_with_its_group";
    if skip_without_cgroup2(test) || !have_podman(test) || !runtime_usable(test, "runc") {
        return;
    }
    let image = Image::build();
    let p = GroupGuard::new("ctr-gone");
    let mut run = AgentRun::new();
    let name = unique_name("gone-web");
    let policy = run.file("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"256M\"\n\n\
             [[container]]\nruntime = \"podman\"\nname = \"{name}\"\n\n\
             [container.network]\nconnect_deny = [\"127.0.0.2/32\"]\n\
             egress_budget = \"1G/1h\"\n",
            p.name
        ),
    )
    .unwrap();
    run.start(&policy);
    // One guard for both containers of that name (the second replaces the
    // first): whichever is left goes, also on panic.
    let _c = Container(name.clone());

    start_container(&image, &p.name, &name);
    wait_until("the rules on the container", || {
        rules_in_force(&run, &name) == 1
    });
    let (id, group, cg) = container_group(&p.name, &name);
    assert_eq!(connect_from(&name, "127.0.0.2:9"), "err EPERM");
    assert_eq!(
        egress_budget(&run, cg),
        Some(GIB),
        "the table's rules in the kernel's map for the container's group"
    );
    assert!(
        pinned_links(&enforce_pins(&run, cg)) > 0,
        "enforcement links pinned for the container's group"
    );
    let has_series = |m: &str| m.lines().any(|l| l.contains(&id));
    wait_until("the container's metric series", || {
        run.metrics().is_some_and(|m| has_series(&m))
    });

    let rm = podman(&["rm", "--force", &name]);
    assert!(rm.status.success(), "podman rm: {rm:?}");
    wait_until("the container's group to go", || !v2_dir(&group).exists());
    // The agent hears of a removed group as it goes (or finds it gone at a
    // later walk): a few intervals are enough.
    run.wait_collections(3);
    assert_eq!(
        egress_budget(&run, cg),
        None,
        "the removed container's rules are still in the kernel's map"
    );
    assert!(
        !enforce_pins(&run, cg).exists(),
        "the removed container's enforcement links are still pinned: {:?}",
        std::fs::read_dir(enforce_pins(&run, cg)).map(|d| d.count())
    );
    assert!(
        !run.pin_dir.join("links").join(cg.to_string()).exists(),
        "no counting links for it"
    );
    let m = run.metrics().expect("metrics");
    assert!(
        !has_series(&m),
        "the removed container's series are still served:\n{}",
        m.lines()
            .filter(|l| l.contains(&id))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The same name again: a new container, a new group, the rules again.
    start_container(&image, &p.name, &name);
    wait_until("the rules on the new container", || {
        rules_in_force(&run, &name) == 2
    });
    let (id2, _, cg2) = container_group(&p.name, &name);
    assert_ne!((id2.as_str(), cg2), (id.as_str(), cg), "a new container");
    assert_eq!(connect_from(&name, "127.0.0.2:9"), "err EPERM");
    assert_eq!(egress_budget(&run, cg2), Some(GIB));
    assert!(pinned_links(&enforce_pins(&run, cg2)) > 0);
}

/// README, `[[container]]`: "A reload takes the old tables off every
/// container and applies the new ones at the next interval; a restart
/// applies them again (a container that matched a rule removed while the
/// agent was down keeps it until `enforcer stop`)."
///
/// `web` and `db` each match a table. A reload to a policy where `web`'s
/// table has other rules and `db` matches none: `web` has the new rules
/// only, `db` none. A restart (after SIGKILL) with that policy applies
/// `web`'s again. A restart with a policy that no longer matches `web`
/// leaves it its rules, which go with `enforcer stop`; the next start
/// applies them again.
#[test]
fn a_reload_replaces_container_tables_and_a_restart_applies_them_again() {
    let test = "a_reload_replaces_container_tables_and_a_restart_applies_them_again";
    if skip_without_cgroup2(test) || !have_podman(test) || !runtime_usable(test, "runc") {
        return;
    }
    let image = Image::build();
    let p = GroupGuard::new("ctr-reload");
    let mut run = AgentRun::new();
    let prefix = unique_name("swap");
    let web = format!("{prefix}-web");
    let db = format!("{prefix}-db");
    let table = |name: &str, deny: &str, budget: &str| {
        format!(
            "\n[[container]]\nruntime = \"podman\"\nname = \"{name}\"\n\n\
             [container.network]\nconnect_deny = [\"{deny}/32\"]\negress_budget = \"{budget}\"\n"
        )
    };
    let head = format!(
        "[group.\"{}\"]\n\"memory.limit_in_bytes\" = \"256M\"\n",
        p.name
    );
    let policy = run.file("policy.toml");
    let first = format!(
        "{head}{}{}",
        table(&web, "127.0.0.2", "1G/1h"),
        table(&db, "127.0.0.2", "5G/1h")
    );
    // web's table with other rules; none for db.
    let second = format!("{head}{}", table(&web, "127.0.0.3", "2G/1h"));
    // db's table only: web matches nothing.
    let third = format!("{head}{}", table(&db, "127.0.0.2", "5G/1h"));
    std::fs::write(&policy, &first).unwrap();
    run.start(&policy);
    let _w = Container(web.clone());
    let _d = Container(db.clone());
    start_container(&image, &p.name, &web);
    start_container(&image, &p.name, &db);
    wait_until("the first tables on both containers", || {
        rules_in_force(&run, &web) == 1 && rules_in_force(&run, &db) == 1
    });
    let (_, _, web_cg) = container_group(&p.name, &web);
    let (_, _, db_cg) = container_group(&p.name, &db);
    let state = |run: &AgentRun| {
        (
            connect_from(&web, "127.0.0.2:9"),
            connect_from(&web, "127.0.0.3:9"),
            egress_budget(run, web_cg),
            connect_from(&db, "127.0.0.2:9"),
            egress_budget(run, db_cg),
        )
    };
    let (eperm, refused) = ("err EPERM".to_string(), "err ECONNREFUSED".to_string());
    assert_eq!(
        state(&run),
        (
            eperm.clone(),
            refused.clone(),
            Some(GIB),
            eperm.clone(),
            Some(5 * GIB)
        ),
        "(web to .2, web to .3, web's budget, db to .2, db's budget) under the first tables"
    );
    let second_tables = (
        refused.clone(),
        eperm.clone(),
        Some(2 * GIB),
        refused.clone(),
        None,
    );

    // A reload: the old tables off both, the new one on web.
    std::fs::write(&policy, &second).unwrap();
    enforcer_ok(&["reload", "--pid-file", run.pid_file().to_str().unwrap()]);
    wait_until("the reload and web's new table", || {
        run.audit_lines().iter().any(|l| l["kind"] == "reload") && rules_in_force(&run, &web) == 2
    });
    assert_eq!(
        state(&run),
        second_tables,
        "(web to .2, web to .3, web's budget, db to .2, db's budget) after the reload"
    );
    assert!(
        !enforce_pins(&run, db_cg).exists(),
        "db's enforcement links are pinned still, with no table for it"
    );
    run.wait_collections(3);
    assert_eq!(rules_in_force(&run, &db), 1, "no table went on db again");

    // A restart with the same policy applies web's table again.
    run.sigkill();
    run.start(&policy);
    wait_until("web's table applied again by the restarted agent", || {
        rules_in_force(&run, &web) == 3
    });
    assert_eq!(
        state(&run),
        second_tables,
        "(web to .2, web to .3, web's budget, db to .2, db's budget) after the restart"
    );
    assert_eq!(rules_in_force(&run, &db), 1);

    // Down, web's table removed: restarted, the agent does not know web had
    // it, and web keeps it.
    run.sigkill();
    std::fs::write(&policy, &third).unwrap();
    run.start(&policy);
    // db's table going on shows the restarted agent has looked at both.
    wait_until("db's table applied by the restarted agent", || {
        rules_in_force(&run, &db) == 2
    });
    run.wait_collections(2);
    assert_eq!(
        (
            connect_from(&web, "127.0.0.3:9"),
            egress_budget(&run, web_cg),
            rules_in_force(&run, &web)
        ),
        (eperm.clone(), Some(2 * GIB), 3),
        "web keeps the rules of a table removed while the agent was down"
    );
    assert!(pinned_links(&enforce_pins(&run, web_cg)) > 0);
    assert_eq!(connect_from(&db, "127.0.0.2:9"), eperm);

    // Until `enforcer stop`.
    run.sigkill();
    enforcer_ok(&[
        "stop",
        "--pin-dir",
        run.pin(),
        "--pid-file",
        run.pid_file().to_str().unwrap(),
    ]);
    assert_eq!(
        (
            connect_from(&web, "127.0.0.3:9"),
            connect_from(&db, "127.0.0.2:9")
        ),
        (refused.clone(), refused.clone()),
        "nothing in force after enforcer stop"
    );
    assert!(!enforce_pins(&run, web_cg).exists());

    // Started again with web's table: applied again.
    std::fs::write(&policy, &second).unwrap();
    run.start(&policy);
    wait_until("web's table applied after the stop", || {
        rules_in_force(&run, &web) == 4
    });
    assert_eq!(
        state(&run),
        second_tables,
        "(web to .2, web to .3, web's budget, db to .2, db's budget) after stop and start"
    );
}
