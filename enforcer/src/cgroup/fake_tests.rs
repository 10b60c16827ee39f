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

/// The cgroupfs part of a policy's plan on `cg` (kernel features unchecked).
fn plan_of(cg: &Cgroups, policy: &crate::config::Policy) -> Result<Plan, crate::plan::PlanError> {
    crate::plan::validate(cg, policy.clone(), None, crate::plan::Kernel::Unchecked)
        .map(|plan| plan.cgroups)
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
        ("cpu.weight", "10")
    );
    // A real group has the io controller's files; the fake needs it made.
    let err = set_one(&cg, "foo", "blkio.weight", "500").unwrap_err();
    assert!(
        err.to_string().contains("none of io.weight, io.bfq.weight"),
        "{err}"
    );
    fs::write(t.path().join("cg/foo/io.weight"), "default 100\n").unwrap();
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
        ("cpu.shares", "1024")
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
    let plan = plan_of(&cg, &policy).unwrap();
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
    let err = plan_of(&cg, &policy).unwrap_err().to_string();
    assert!(err.starts_with("seed.conf:3:19: "), "{err}");
    assert!(err.contains("online CPUs are 0-1"), "{err}");

    let wrong_block = "group foo {\n  memory {\n    cpu.shares = 1;\n  }\n}\n";
    let policy = crate::config::parse_cgconfig(wrong_block, Path::new("x.conf")).unwrap();
    let err = plan_of(&cg, &policy).unwrap_err().to_string();
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

/// On a hybrid host the cgroup2 tree is the mirror eBPF counts by: `*`
/// creates a group there but enables no controller in its root or any
/// ancestor (a controller in the hybrid cgroup2 root's subtree_control makes
/// crun refuse every container: "cgroups in hybrid mode not supported"); only
/// a controller named for the group is enabled.
#[test]
fn hybrid_star_enables_no_cgroup2_controller() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    touch(&t.join("cpu/cpu.shares"), "1024\n");
    touch(&t.join("unified/cgroup.controllers"), "hugetlb\n");
    touch(&t.join("unified/cgroup.subtree_control"), "\n");
    let mi = format!(
        "1 0 0:1 / {} rw - cgroup cgroup rw,cpu\n2 0 0:2 / {} rw - cgroup2 cgroup2 rw\n",
        t.join("cpu").display(),
        t.join("unified").display()
    );
    let cg = Cgroups::from_mountinfo(&mi).unwrap();
    assert_eq!(cg.layout(), Layout::Hybrid);
    let root = t.join("unified/cgroup.subtree_control");
    let targets = cg.targets(&["*".into()]).unwrap();
    assert!(targets.v2_enable.is_empty(), "{:?}", targets.v2_enable);
    cg.create_in(
        &targets,
        &g("a/b"),
        &Ownership::default(),
        &mut Created::default(),
    )
    .unwrap();
    assert!(t.join("unified/a/b").is_dir() && t.join("cpu/a/b").is_dir());
    assert_eq!(fs::read_to_string(&root).unwrap(), "\n");
    assert!(!t.join("unified/a/cgroup.subtree_control").exists());
    // Asked for by name: enabled where the group needs it.
    let targets = cg.targets(&["hugetlb".into()]).unwrap();
    assert_eq!(targets.v2_enable, ["hugetlb"]);
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

/// A v1 host with a blkio hierarchy. `cfq`: the kernel has CFQ's `blkio.weight`
/// (on the root too); otherwise only BFQ's `blkio.bfq.weight` (not on the root),
/// as on kernels since 5.0.
fn fake_v1_blkio(cfq: bool) -> (tempfile::TempDir, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path().join("blkio");
    touch(&b.join("blkio.reset_stats"), "");
    if cfq {
        touch(&b.join("blkio.weight"), "500\n");
        touch(&b.join("foo/blkio.weight"), "500\n");
    } else {
        touch(&b.join("foo/blkio.bfq.weight"), "100\n");
    }
    let mi = format!("1 0 0:1 / {} rw - cgroup cgroup rw,blkio\n", b.display());
    (tmp, Cgroups::from_mountinfo(&mi).unwrap())
}

/// What `get -r KEY foo` reports: (file, value).
fn get_one(cg: &Cgroups, key: &str) -> (String, String) {
    let v = cg.get(&g("foo"), &[key.to_string()], &[]).unwrap();
    (v.values[0].file.clone(), v.values[0].value.clone())
}

#[test]
fn v1_io_weight_writes_the_weight_file_the_kernel_has() {
    // CFQ: runc's conversion onto blkio.weight [10, 1000].
    let (_t, cg) = fake_v1_blkio(true);
    // v2's controller name means blkio here (a policy's `io { }` block).
    assert_eq!(cg.locate("io").unwrap(), (0, None));
    let out = set_one(&cg, "foo", "io.weight", "500").unwrap();
    assert_eq!(
        (out[0].file.as_str(), out[0].written.as_str()),
        ("blkio.weight", "59")
    );
    assert_eq!(
        get_one(&cg, "io.weight"),
        ("blkio.weight".into(), "59".into())
    );

    // BFQ only: blkio.bfq.weight [1, 1000]; io.weight by systemd's mapping
    // (1..100 unchanged, 100..10000 onto 100..1000), blkio.weight as is.
    let (t, cg) = fake_v1_blkio(false);
    let bfq = t.path().join("blkio/foo/blkio.bfq.weight");
    for (key, value, expect) in [
        ("io.weight", "500", "136"),
        ("io.weight", "default 100", "100"),
        ("io.weight", "1", "1"),
        ("io.weight", "10000", "1000"),
        ("blkio.weight", "300", "300"),
        ("blkio.bfq.weight", "5", "5"),
    ] {
        let out = set_one(&cg, "foo", key, value).unwrap();
        assert_eq!(
            (out[0].file.as_str(), out[0].effective.as_str()),
            ("blkio.bfq.weight", expect),
            "{key}={value}"
        );
        assert_eq!(fs::read_to_string(&bfq).unwrap(), expect);
        // get reads the file set wrote, whichever spelling is asked for.
        for k in ["io.weight", "blkio.weight", "blkio.bfq.weight"] {
            assert_eq!(get_one(&cg, k), ("blkio.bfq.weight".into(), expect.into()));
        }
    }
    assert!(!t.path().join("blkio/foo/blkio.weight").exists());
    for (key, value) in [
        ("io.weight", "0"),
        ("io.weight", "10001"),
        ("blkio.weight", "5"),
        ("blkio.bfq.weight", "1001"),
        ("blkio.bfq.weight", "0"),
    ] {
        let err = set_one(&cg, "foo", key, value).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidValue { .. }),
            "{key}={value}: {err}"
        );
    }
}

#[test]
fn v2_io_weight_falls_back_to_io_bfq_weight() {
    let (t, cg) = fake_v2();
    let foo = t.path().join("cg/foo");
    touch(&foo.join("io.bfq.weight"), "default 100\n");
    let out = set_one(&cg, "foo", "io.weight", "500").unwrap();
    assert_eq!(
        (out[0].file.as_str(), out[0].written.as_str()),
        ("io.bfq.weight", "default 136")
    );
    assert!(!foo.join("io.weight").exists());
    assert_eq!(
        get_one(&cg, "io.weight"),
        ("io.bfq.weight".into(), "default 136".into())
    );
    let out = set_one(&cg, "foo", "blkio.weight", "300").unwrap();
    assert_eq!(out[0].written, "default 300");

    // With iocost's io.weight present, that file is used.
    touch(&foo.join("io.weight"), "default 100\n");
    let out = set_one(&cg, "foo", "io.weight", "500").unwrap();
    assert_eq!(
        (out[0].file.as_str(), out[0].written.as_str()),
        ("io.weight", "default 500")
    );
    assert_eq!(
        get_one(&cg, "io.weight"),
        ("io.weight".into(), "default 500".into())
    );
}

#[test]
fn v2_copy_from_leaves_out_cpu_weight_nice() {
    let (t, cg) = fake_v2();
    let src = t.path().join("cg/src");
    touch(&src.join("cpu.weight"), "50\n");
    // The kernel's nearest nice level to weight 50; written back it would
    // make the weight 51.
    touch(&src.join("cpu.weight.nice"), "3\n");
    touch(&src.join("cpu.max"), "25000 100000\n");
    touch(&src.join("memory.max"), "50331648\n");
    let copied = cg.settings_of(&g("src")).unwrap();
    let files: Vec<&str> = copied.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files, ["cpu.max", "cpu.weight", "memory.max"]);
    assert!(copied.contains(&("cpu.weight".to_string(), "50".to_string())));
}

/// A hybrid host whose kernel has no v1 memory controller (6.12 without
/// CONFIG_MEMCG_V1): cpu on v1, memory only in the cgroup2 tree, which is
/// also the mirror of every group.
fn fake_hybrid_memory_on_v2() -> (tempfile::TempDir, Cgroups) {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    touch(&t.join("cpu/cpu.shares"), "1024\n");
    touch(&t.join("unified/cgroup.controllers"), "memory\n");
    touch(&t.join("unified/cgroup.subtree_control"), "\n");
    let mi = format!(
        "1 0 0:1 / {} rw - cgroup cgroup rw,cpu\n2 0 0:2 / {} rw - cgroup2 cgroup2 rw\n",
        t.join("cpu").display(),
        t.join("unified").display()
    );
    let cg = Cgroups::from_mountinfo(&mi).unwrap();
    assert_eq!(cg.layout(), Layout::Hybrid);
    assert_eq!(cg.locate("memory").unwrap(), (1, Some("memory".into())));
    (tmp, cg)
}

#[test]
fn hybrid_with_memory_on_cgroup2_deletes_and_copies_there() {
    let (t, cg) = fake_hybrid_memory_on_v2();
    let v2 = t.path().join("unified");
    let targets = cg.targets(&["memory".into(), "cpu".into()]).unwrap();
    for p in ["foo", "foo/child"] {
        cg.create_in(
            &targets,
            &g(p),
            &Ownership::default(),
            &mut Created::default(),
        )
        .unwrap();
    }
    let memory = vec!["memory".to_string()];
    assert!(!cg.only_mirror(1, &memory));
    assert!(cg.only_mirror(1, &["cpu".to_string()]));
    assert!(cg.only_mirror(1, &["*".to_string()]));

    // memory's hierarchy is cgroup2: a group with subgroups is refused there...
    let spec = |p: &str| GroupSpec {
        controllers: memory.clone(),
        path: g(p),
    };
    assert!(matches!(
        cg.delete(&[spec("foo")], false),
        Err(CgroupError::HasChildren { .. })
    ));
    // ...and a leaf is removed from it, staying in cpu's.
    let removed = cg.delete(&[spec("foo/child")], false).unwrap();
    assert_eq!(removed, vec![v2.join("foo/child")]);
    assert!(t.path().join("cpu/foo/child").is_dir());
    // Processes cannot go to a memory group that does not exist.
    assert!(matches!(
        cg.classify(&[spec("foo/none")], &[std::process::id() as i32]),
        Err(CgroupError::NotFound { .. })
    ));

    // apply --dry-run does not call memory's hierarchy a mere mirror.
    let policy =
        crate::config::parse_cgconfig("group bar { memory { } }\n", Path::new("x.conf")).unwrap();
    let plan = crate::plan::validate(&cg, policy, None, crate::plan::Kernel::Unchecked).unwrap();
    let text = crate::plan::Diff::new(&cg, &plan, &crate::plan::InForce::default()).render();
    assert!(
        text.contains("create bar in cgroup2  [") && !text.contains("mirror"),
        "{text}"
    );

    // copy-from copies memory's files from the cgroup2 tree.
    touch(&v2.join("foo/memory.max"), "50331648\n");
    let copied = cg.settings_of(&g("foo")).unwrap();
    assert!(
        copied.contains(&("memory.max".to_string(), "50331648".to_string())),
        "{copied:?}"
    );
}

/// Issue 11: one size grammar. `512MB` was a MiB count as a memory limit but
/// ambiguous as a budget; both now refuse it the same way, at the value.
#[test]
fn sizes_read_alike_in_limits_and_budgets() {
    let (_t, cg) = fake_v2();
    let limit = "[group.a]\n\"memory.max\" = \"512MB\"\n";
    let policy = crate::config::parse_toml(limit, Path::new("p.toml")).unwrap();
    let err = plan_of(&cg, &policy).unwrap_err().to_string();
    assert!(err.starts_with("p.toml:2:16: "), "{err}");
    assert!(err.contains("`512MB` is ambiguous"), "{err}");
    assert!(err.contains("`512M` or `512MiB`"), "{err}");

    let budget = "[group.a.network]\negress_budget = \"512MB/1d\"\n";
    let err = crate::config::parse_toml(budget, Path::new("p.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("p.toml:2:17: "), "{err}");
    assert!(err.contains("`512MB` is ambiguous"), "{err}");

    let policy = crate::config::parse_toml(
        "[group.a]\n\"memory.max\" = \"512M\"\n[group.a.network]\negress_budget = \"512M/1d\"\n",
        Path::new("p.toml"),
    )
    .unwrap();
    let plan = plan_of(&cg, &policy).unwrap();
    assert_eq!(
        plan.groups[0].writes[0].write.to_string(),
        (512u64 << 20).to_string()
    );
    let budget = policy.groups[0].network.as_ref().unwrap();
    assert_eq!(budget.egress_budget.as_ref().unwrap().bytes, 512 << 20);
}

/// Issue 18, finding 15: on v1 `low` wrote cpu.shares 1286 and `high` 5219
/// (runc's weight-to-shares mapping puts weight 100 at 2597), so a `low`
/// group outweighed every group enforcer does not manage (1024). On every
/// layout `low` is below an unmanaged group's weight, `normal` equal to it,
/// `high` above it.
#[test]
fn priorities_rank_against_unmanaged_groups_on_every_layout() {
    for (layout, (_t, cg), file, default) in [
        ("v1", fake_v1(), "cpu.shares", 1024u64),
        ("v2", fake_v2(), "cpu.weight", 100),
    ] {
        let text = "[group.hi]\npriority = \"high\"\n\n[group.mid]\npriority = \"normal\"\n\n\
                    [group.lo]\npriority = \"low\"\n\n[group.least]\npriority = 1\n";
        let policy = crate::config::parse_toml(text, Path::new("p.toml")).unwrap();
        let plan = plan_of(&cg, &policy).unwrap();
        cg.apply(&plan).unwrap();
        let (h, _) = cg.locate("cpu").unwrap();
        let weight = |name: &str| -> u64 {
            let p = cg.dir(h, &g(name)).join(file);
            fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("{layout}: {}: {e}", p.display()))
                .trim()
                .parse()
                .unwrap()
        };
        assert!(
            weight("lo") < default,
            "{layout}: low {} vs {default}",
            weight("lo")
        );
        assert!(weight("least") < weight("lo"), "{layout}");
        assert_eq!(weight("mid"), default, "{layout}: normal is the default");
        assert!(weight("hi") > default, "{layout}: high {}", weight("hi"));
        // The ratios the scheduler sees are the same on both layouts.
        assert_eq!(weight("hi") / weight("lo"), 4, "{layout}");
    }
}

/// The usage readers on both layouts: cgroup2's `cpu.stat`, `io.stat` and
/// PSI files; v1's `cpuacct.usage` (nanoseconds) where cgroup2 is absent.
#[test]
fn usage_readers_read_each_layouts_files() {
    let (_tmp, cg) = fake_v2();
    let dir = cg.dir(cg.v2().unwrap(), &g("web"));
    touch(&dir.join("cpu.stat"), "usage_usec 4200\nuser_usec 4000\n");
    touch(&dir.join("io.stat"), "8:0 rbytes=10 wbytes=5 rios=1\n");
    touch(
        &dir.join("memory.pressure"),
        "some avg10=50.00 avg60=0.00 avg300=0.00 total=900\n",
    );
    assert_eq!(cg.cpu_usage_usec(&g("web")), Some(4200));
    assert_eq!(cg.io_bytes(&g("web")), 15);
    let psi = cg.pressure(&g("web"), PsiResource::Memory).unwrap();
    assert_eq!((psi.some_avg10, psi.some_total), (0.5, 900));
    assert_eq!(cg.pressure(&g("web"), PsiResource::Cpu), None);
    assert_eq!(cg.cpu_usage_usec(&g("absent")), None);

    let (tmp, cg) = fake_v1();
    touch(
        &tmp.path().join("cpu,cpuacct/web/cpuacct.usage"),
        "7000000\n",
    );
    assert_eq!(cg.cpu_usage_usec(&g("web")), Some(7000));
    assert_eq!(cg.io_bytes(&g("web")), 0, "no blkio hierarchy here");
    assert_eq!(cg.pressure(&g("web"), PsiResource::Io), None, "no cgroup2");
}
