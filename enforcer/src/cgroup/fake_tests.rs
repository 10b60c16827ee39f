//! The control plane against fake cgroupfs trees in a temp dir: pure v1 and pure
//! v2 layouts, which this hybrid build host cannot show for real.

use std::fs;
use std::path::Path;

use super::*;

fn touch(p: &Path, content: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// A pure v2 host: cgroup2 at <tmp>/cg with four controllers and CPUs 0-3.
fn fake_v2() -> (tempfile::TempDir, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("cg");
    touch(
        &root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    touch(&root.join("cgroup.subtree_control"), "\n");
    touch(&root.join("cgroup.procs"), "");
    touch(&root.join("cpuset.cpus.effective"), "0-3\n");
    touch(&root.join("cpuset.mems.effective"), "0\n");
    let mi = format!(
        "29 1 0:26 / {} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        root.display()
    );
    let cg = Cgroups::from_mountinfo(&mi).unwrap();
    (tmp, cg)
}

/// A pure v1 host: memory, cpu+cpuacct co-mounted, cpuset with CPUs 0-1.
fn fake_v1() -> (tempfile::TempDir, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    touch(
        &t.join("memory/memory.limit_in_bytes"),
        "9223372036854771712\n",
    );
    touch(&t.join("memory/memory.swappiness"), "60\n");
    touch(&t.join("cpu,cpuacct/cpu.shares"), "1024\n");
    touch(&t.join("cpuset/cpuset.cpus"), "0-1\n");
    touch(&t.join("cpuset/cpuset.mems"), "0\n");
    let mi = format!(
        "1 0 0:1 / {m} rw - cgroup cgroup rw,memory\n\
         2 0 0:2 / {c} rw - cgroup cgroup rw,cpu,cpuacct\n\
         3 0 0:3 / {s} rw - cgroup cgroup rw,cpuset\n",
        m = t.join("memory").display(),
        c = t.join("cpu,cpuacct").display(),
        s = t.join("cpuset").display(),
    );
    let cg = Cgroups::from_mountinfo(&mi).unwrap();
    (tmp, cg)
}

fn g(s: &str) -> GroupPath {
    GroupPath::parse(s).unwrap()
}

fn set_one(
    cg: &Cgroups,
    path: &str,
    key: &str,
    value: &str,
) -> Result<Vec<SetOutcome>, CgroupError> {
    cg.set(
        &[g(path)],
        &[(key.to_string(), value.to_string())],
        &mut Vec::new(),
    )
}

#[test]
fn v2_discovery_and_targets() {
    let (_t, cg) = fake_v2();
    assert_eq!(cg.layout(), Layout::V2);
    assert_eq!(cg.mirror(), None);
    assert_eq!(cg.facts().online_cpus, vec![0, 1, 2, 3]);
    let t = cg
        .targets(&["memory".into(), "blkio".into(), "cpuacct".into()])
        .unwrap();
    assert_eq!(t.hiers.len(), 1);
    assert_eq!(t.v2_enable, vec!["memory", "io", "cpu"]);
    assert!(matches!(
        cg.targets(&["devices".into()]),
        Err(CgroupError::UnknownController { .. })
    ));
}

#[test]
fn v2_create_enables_controllers_in_ancestors() {
    let (t, cg) = fake_v2();
    let targets = cg.targets(&["memory".into(), "cpu".into()]).unwrap();
    let mut created = Created::default();
    cg.create_in(&targets, &g("web/api"), &Ownership::default(), &mut created)
        .unwrap();
    let root = t.path().join("cg");
    assert!(root.join("web/api").is_dir());
    assert_eq!(created.dirs, vec![root.join("web"), root.join("web/api")]);
    assert_eq!(
        fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
        "+memory +cpu"
    );
    assert_eq!(
        fs::read_to_string(root.join("web/cgroup.subtree_control")).unwrap(),
        "+memory +cpu"
    );
    assert!(!root.join("web/api/cgroup.subtree_control").exists());
    // Real cgroupfs directories can be removed with their files; a fake cannot.
    fs::remove_file(root.join("web/cgroup.subtree_control")).unwrap();
    assert_eq!(created.rollback().len(), 2);
    assert!(!root.join("web").exists());
}

#[test]
fn v2_translates_v1_keys() {
    let (t, cg) = fake_v2();
    fs::create_dir(t.path().join("cg/foo")).unwrap();
    let out = set_one(&cg, "foo", "memory.limit_in_bytes", "50M").unwrap();
    assert_eq!(out[0].file, "memory.max");
    assert_eq!(out[0].effective, "52428800");
    let out = set_one(&cg, "foo", "cpu.shares", "100").unwrap();
    assert_eq!(
        (out[0].file.as_str(), out[0].effective.as_str()),
        ("cpu.weight", "4")
    );
    let out = set_one(&cg, "foo", "blkio.weight", "500").unwrap();
    assert_eq!(out[0].effective, "default 4950");
    fs::write(t.path().join("cg/foo/cpu.max"), "max 100000\n").unwrap();
    set_one(&cg, "foo", "cpu.cfs_quota_us", "50000").unwrap();
    let out = set_one(&cg, "foo", "cpu.cfs_period_us", "200000").unwrap();
    // A fake file keeps what was last written: the quota is carried over.
    assert_eq!(out[0].written, "50000 200000");
    let err = set_one(&cg, "foo", "cpuset.cpus", "0-5").unwrap_err();
    assert!(err.to_string().contains("online CPUs are 0-3"), "{err}");
    let err = set_one(&cg, "nosuch", "memory.max", "1G").unwrap_err();
    assert!(matches!(err, CgroupError::NotFound { .. }), "{err}");
}

#[test]
fn v2_get_translates_and_summarises_memory() {
    let (t, cg) = fake_v2();
    let d = t.path().join("cg/foo");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("memory.max"), "4096\n").unwrap();
    fs::write(d.join("memory.current"), "8192\n").unwrap();
    fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n",
    )
    .unwrap();
    let v = cg
        .get(&g("foo"), &["memory.limit_in_bytes".into()], &[])
        .unwrap();
    assert_eq!(v.values[0].file, "memory.max");
    assert_eq!(v.values[0].value, "4096");
    let m = v.memory.unwrap();
    assert_eq!(
        (m.usage_bytes, m.limit_bytes, m.failcnt, m.oom_kills),
        (8192, Some(4096), 7, 2)
    );
}

#[test]
fn v1_discovery_and_translation() {
    let (t, cg) = fake_v1();
    assert_eq!(cg.layout(), Layout::V1);
    assert_eq!(cg.mirror(), None);
    assert_eq!(cg.facts().online_cpus, vec![0, 1]);
    let targets = cg
        .targets(&["memory".into(), "cpuacct".into(), "cpuset".into()])
        .unwrap();
    assert_eq!(targets.hiers.len(), 3);
    assert!(targets.v2_enable.is_empty());
    let mut created = Created::default();
    cg.create_in(&targets, &g("foo"), &Ownership::default(), &mut created)
        .unwrap();
    // A new v1 cpuset group starts with its parent's CPUs and nodes.
    assert_eq!(
        fs::read_to_string(t.path().join("cpuset/foo/cpuset.cpus")).unwrap(),
        "0-1"
    );
    let out = set_one(&cg, "foo", "memory.max", "1G").unwrap();
    assert_eq!(
        (out[0].file.as_str(), out[0].effective.as_str()),
        ("memory.limit_in_bytes", "1073741824")
    );
    let out = set_one(&cg, "foo", "cpu.weight", "100").unwrap();
    assert_eq!(
        (out[0].file.as_str(), out[0].effective.as_str()),
        ("cpu.shares", "2597")
    );
    let out = set_one(&cg, "foo", "cpu.max", "50000 100000").unwrap();
    let files: Vec<&str> = out.iter().map(|o| o.file.as_str()).collect();
    assert_eq!(files, vec!["cpu.cfs_period_us", "cpu.cfs_quota_us"]);
    // Raw keys pass through when the hierarchy has the file.
    let out = set_one(&cg, "foo", "memory.swappiness", "10").unwrap();
    assert_eq!(out[0].file, "memory.swappiness");
    let err = set_one(&cg, "foo", "memory.bogus", "1").unwrap_err();
    assert!(matches!(err, CgroupError::UnknownKey { .. }), "{err}");
    let err = set_one(&cg, "foo", "memory.high", "1G").unwrap_err();
    assert!(err.to_string().contains("no equivalent"), "{err}");
    assert!(matches!(
        cg.targets(&["io".into()]),
        Err(CgroupError::UnknownController { .. })
    ));
}

#[test]
fn v1_plan_from_seed_cgconfig() {
    let (_t, cg) = fake_v1();
    let text = "group foo {\n  cpu {\n    cpu.shares = 100;\n  }\n  memory {\n    memory.limit_in_bytes = 5000000;\n  }\n}\n";
    let policy = crate::config::parse_cgconfig(text, Path::new("seed.conf")).unwrap();
    let plan = cg.plan(&policy).unwrap();
    assert_eq!(plan.groups.len(), 1);
    let files: Vec<&str> = plan.groups[0]
        .writes
        .iter()
        .map(|w| w.file.as_str())
        .collect();
    assert_eq!(files, vec!["cpu.shares", "memory.limit_in_bytes"]);
    let applied = cg.apply(&plan).unwrap();
    assert_eq!(applied.created.len(), 2);

    let bad = "group foo {\n  cpuset {\n    cpuset.cpus = \"0-5\";\n  }\n}\n";
    let policy = crate::config::parse_cgconfig(bad, Path::new("seed.conf")).unwrap();
    let err = cg.plan(&policy).unwrap_err().to_string();
    assert!(err.starts_with("seed.conf:3:19: "), "{err}");
    assert!(err.contains("online CPUs are 0-1"), "{err}");

    let wrong_block = "group foo {\n  memory {\n    cpu.shares = 1;\n  }\n}\n";
    let policy = crate::config::parse_cgconfig(wrong_block, Path::new("x.conf")).unwrap();
    let err = cg.plan(&policy).unwrap_err().to_string();
    assert!(
        err.starts_with("x.conf:3:5: ") && err.contains("not the memory block"),
        "{err}"
    );
}

#[test]
fn hybrid_mirrors_into_cgroup2() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    touch(&t.join("memory/memory.limit_in_bytes"), "1\n");
    touch(&t.join("unified/cgroup.controllers"), "\n");
    let mi = format!(
        "1 0 0:1 / {} rw - cgroup cgroup rw,memory\n2 0 0:2 / {} rw - cgroup2 cgroup2 rw\n",
        t.join("memory").display(),
        t.join("unified").display()
    );
    let cg = Cgroups::from_mountinfo(&mi).unwrap();
    assert_eq!(cg.layout(), Layout::Hybrid);
    let targets = cg.targets(&["memory".into()]).unwrap();
    assert_eq!(targets.hiers.len(), 2, "memory plus the cgroup2 mirror");
    let mut created = Created::default();
    cg.create_in(&targets, &g("foo"), &Ownership::default(), &mut created)
        .unwrap();
    assert!(t.join("unified/foo").is_dir() && t.join("memory/foo").is_dir());
    // The v2 freezer is part of the core even when no controller is enabled.
    assert_eq!(cg.locate("freezer").unwrap(), (1, None));
}

#[test]
fn set_refuses_the_root_group_before_writing() {
    let (t, cg) = fake_v2();
    fs::create_dir(t.path().join("cg/foo")).unwrap();
    let err = cg
        .set(
            &[g("foo"), g("/")],
            &[("pids.max".into(), "5".into())],
            &mut Vec::new(),
        )
        .unwrap_err();
    assert!(matches!(err, CgroupError::RootForbidden { .. }), "{err}");
    assert!(err.is_user_error());
    assert!(
        !t.path().join("cg/foo/pids.max").exists(),
        "foo was written"
    );
    assert!(
        !t.path().join("cg/pids.max").exists(),
        "the root was written"
    );
    let err = cg.settings_of(&g("/")).unwrap_err();
    assert!(matches!(err, CgroupError::RootForbidden { .. }), "{err}");
}
