//! End to end: the `count_egress` cgroup_skb program counts exactly the bytes and
//! packets a process in a cgroup sends, and the embedded object loads. Needs root,
//! a cgroup2 mount and bpffs.
//!
//! The test creates its own cgroup2 directory and pin directory, attaches only
//! there, and removes both afterwards (also on panic). The fuller accounting
//! tests are in `accounting_kernel.rs`.

mod accounting_support;

use std::net::UdpSocket;
use std::path::Path;

use accounting_support::{PinDir, TestCgroup, group};
use enforcer::bpf::{Kernel, cgroup_id};
use enforcer_tests::layout::skip_without_cgroup2;

const DATAGRAMS: u64 = 1000;
const PAYLOAD: u64 = 100;
/// IPv4 header (20) + UDP header (8), counted by `skb->len` at the egress hook.
const HEADERS: u64 = 28;

#[test]
fn counts_udp_egress_of_a_cgroup_exactly() {
    if skip_without_cgroup2("counts_udp_egress_of_a_cgroup_exactly") {
        return;
    }
    // Declared before the kernel so they are dropped after it.
    let cgroup = TestCgroup::create("egress");
    let pins = PinDir::new();
    let id = cgroup.id();

    let mut kernel = Kernel::open(&pins.path).expect("load the eBPF object");
    assert_eq!(kernel.attach_group(&cgroup.path).expect("attach"), 6);
    // Attaching twice must not double-count.
    assert_eq!(kernel.attach_group(&cgroup.path).expect("attach again"), 0);

    let before = kernel.snapshot().expect("snapshot");
    assert_eq!(
        group(&before, id).egress,
        Default::default(),
        "a fresh cgroup has sent nothing"
    );

    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind UDP receiver");
    let addr = receiver.local_addr().expect("receiver address").to_string();
    cgroup.run_helper(&[
        "udp-send",
        &addr,
        &DATAGRAMS.to_string(),
        &PAYLOAD.to_string(),
    ]);

    let counts = group(&kernel.snapshot().expect("snapshot"), id).egress;
    assert_eq!(counts.packets, DATAGRAMS, "packets counted for cgroup {id}");
    assert_eq!(
        counts.bytes,
        DATAGRAMS * (PAYLOAD + HEADERS),
        "bytes counted for cgroup {id}"
    );

    // The test process itself is not in the group: its traffic is not charged to it.
    let self_send = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    self_send
        .send_to(&[0u8; 10], &addr)
        .expect("send from the test process");
    let after = group(&kernel.snapshot().expect("snapshot"), id).egress;
    assert_eq!(
        after, counts,
        "traffic from outside the group must not be counted"
    );

    kernel.forget(&[id]).expect("forget the group's counts");
    let forgotten = kernel.snapshot().expect("snapshot");
    assert!(!forgotten.groups.contains_key(&id));
}

#[test]
fn probe_reports_every_program_and_map() {
    let report = enforcer::bpf::probe().expect("probe the embedded eBPF object");
    assert!(report.object_bytes > 0);
    // Counting programs, enforce_syscalls, the level-1 copies of the
    // per-group enforcement programs, and exec classification; BPF-LSM ones
    // only where the kernel loads them (listed as unavailable otherwise).
    let lsm = [
        "enforce_bprm_check_1",
        "enforce_socket_accept_1",
        "enforce_socket_listen_1",
    ];
    let mut expected = vec![
        "cgroup_migrated",
        "cgroup_removed",
        "classify_exec",
        "classify_fork",
        "count_bind4",
        "count_bind6",
        "count_connect4",
        "count_connect6",
        "count_egress",
        "count_ingress",
        "count_syscalls",
        "enforce_bind4_1",
        "enforce_bind6_1",
        "enforce_connect4_1",
        "enforce_connect6_1",
        "enforce_egress_1",
        "enforce_ingress_1",
        "enforce_sendmsg4_1",
        "enforce_sendmsg6_1",
        "enforce_setsockopt_1",
        "enforce_sock_create_1",
        "enforce_syscalls",
        "oom_kill",
    ];
    if report.unavailable.is_empty() {
        expected.extend(lsm);
        expected.sort_unstable();
    } else {
        let names: Vec<&str> = report
            .unavailable
            .iter()
            .map(|u| u.split(' ').next().unwrap_or_default())
            .collect();
        assert_eq!(names, lsm, "only BPF-LSM programs may be unavailable");
    }
    assert_eq!(report.programs, expected);
    assert_eq!(
        report.maps,
        [
            "CGROUP_MIGRATIONS",
            "COUNT_ADMITTED",
            "COUNT_FOLDED",
            "COUNT_FOLDS",
            "COUNT_OWNERS",
            "COUNT_TAKEN",
            "ENFORCE_COUNTS",
            "ENFORCE_SCOPE",
            "EVENTS",
            "EXEC_CONF",
            "EXEC_EVENTS",
            "EXEC_GIDS",
            "EXEC_NAMES",
            "EXEC_PENDING",
            "EXEC_STATS",
            "EXEC_STICKY",
            "EXEC_UIDS",
            "GROUP_RULES",
            "MAP_FULL",
            "NET_EGRESS",
            "NET_INGRESS",
            "NET_LIMIT_STATE",
            "NET_RULES",
            "NET_SHARE_CONF",
            "NET_SHARE_STATE",
            "SOCK_ATTEMPTS",
            "SYSCALLS",
            "SYSCALL_CACHE",
            "SYSCALL_GROUPS",
            "SYSCALL_OWNERS",
            "SYSCALL_OWNER_CACHE",
            "SYSCALL_SCOPE"
        ]
    );
}

#[test]
fn refuses_directories_outside_cgroup2() {
    let err = cgroup_id(Path::new("/proc")).expect_err("/proc is not a cgroup2 directory");
    assert!(
        matches!(err, enforcer::bpf::BpfError::NotCgroup2 { .. }),
        "{err}"
    );
}

#[test]
fn refuses_a_pin_dir_outside_bpffs() {
    let dir = std::env::temp_dir().join(format!("enforcer-not-bpffs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let err = Kernel::open(&dir).expect_err("a tmpfs directory is not bpffs");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    assert!(
        matches!(err, enforcer::bpf::BpfError::NotBpffs { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("mount -t bpf"), "{err}");
}
