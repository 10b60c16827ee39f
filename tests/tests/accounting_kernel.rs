//! End to end, against the real kernel (root): enforcer's eBPF accounting counts
//! exactly what processes in a group do.
//!
//! Every test creates its own cgroup2 directories and its own pin directory
//! under /sys/fs/bpf, attaches only to those groups, uses loopback only, and
//! removes everything through guards (also on panic).

mod accounting_support;

use std::net::UdpSocket;
use std::os::fd::AsRawFd as _;
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::time::Duration;

use accounting_support::{PinDir, TestCgroup, group};
use enforcer::arch::SyscallId;
use enforcer::bpf::{BpfError, Event, Kernel, SyscallScope, cgroup_id, snapshot_pinned, unpin_all};
use enforcer_tests::layout::{self, skip_without_cgroup2};
use enforcer_tests::{GroupGuard, enforcer_ok, helper_bin};

const DATAGRAMS: u64 = 1000;
const PAYLOAD: u64 = 100;
/// IPv4 (20) + UDP (8) headers, part of `skb->len` at the cgroup_skb hooks.
const V4_HEADERS: u64 = 28;
/// IPv6 (40) + UDP (8).
const V6_HEADERS: u64 = 48;
/// getppid(2) on x86_64.
#[cfg(target_arch = "x86_64")]
const NR_GETPPID: u32 = 110;
#[cfg(target_arch = "aarch64")]
const NR_GETPPID: u32 = 173;

/// A kernel opened on a fresh pin dir, attached to `groups`.
fn kernel_for(pins: &PinDir, groups: &[&TestCgroup]) -> Kernel {
    let mut kernel = Kernel::open(&pins.path).expect("open the eBPF object with pinned maps");
    for g in groups {
        assert_eq!(
            kernel
                .attach_group(&g.path)
                .expect("attach to a test group"),
            6,
            "six fresh links on {}",
            g.path.display()
        );
    }
    kernel
}

/// `DATAGRAMS` UDP datagrams from a process in `a` to a receiver process in
/// `b` over `bind` (a loopback address with port 0); returns nothing, asserts
/// the receiver got all of them.
fn udp_a_to_b(a: &TestCgroup, b: &TestCgroup, bind: &str) {
    let receiver = b.start_server(&["udp-recv", bind, &DATAGRAMS.to_string()]);
    a.run_helper(&[
        "udp-send",
        &receiver.addr,
        &DATAGRAMS.to_string(),
        &PAYLOAD.to_string(),
    ]);
    let last = receiver.finish();
    assert_eq!(
        last,
        format!(
            "received {DATAGRAMS} datagrams {} bytes",
            DATAGRAMS * PAYLOAD
        )
    );
}

fn udp_exact(bind: &str, headers: u64) {
    let a = TestCgroup::create("udp-a");
    let b = TestCgroup::create("udp-b");
    let pins = PinDir::new();
    let mut kernel = kernel_for(&pins, &[&a, &b]);
    // Attaching again adopts the pinned links instead of doubling them.
    assert_eq!(kernel.attach_group(&a.path).expect("re-attach"), 0);

    udp_a_to_b(&a, &b, bind);

    let snap = kernel.snapshot().expect("snapshot");
    let (ga, gb) = (group(&snap, a.id()), group(&snap, b.id()));
    let want = (DATAGRAMS, DATAGRAMS * (PAYLOAD + headers));
    assert_eq!(
        (ga.egress.packets, ga.egress.bytes),
        want,
        "sender's egress"
    );
    assert_eq!(
        (gb.ingress.packets, gb.ingress.bytes),
        want,
        "receiver's ingress"
    );
    assert_eq!(ga.ingress.packets, 0, "the sender received nothing");
    assert_eq!(gb.egress.packets, 0, "the receiver sent nothing");

    // Traffic of a process outside both groups is charged to neither.
    let outside = UdpSocket::bind(bind).expect("bind outside");
    outside
        .send_to(&[0u8; 10], outside.local_addr().expect("addr"))
        .expect("send outside the groups");
    let again = kernel.snapshot().expect("snapshot");
    assert_eq!(group(&again, a.id()), ga);
    assert_eq!(group(&again, b.id()), gb);

    // forget drops the counters and the groups' pinned links.
    kernel.forget(&[a.id(), b.id()]).expect("forget");
    let after = kernel.snapshot().expect("snapshot");
    assert!(!after.groups.contains_key(&a.id()) && !after.groups.contains_key(&b.id()));
    assert!(!pins.path.join(format!("links/{}", a.id())).exists());
}

#[test]
fn udp_over_ipv4_is_charged_exactly_to_both_ends() {
    if skip_without_cgroup2("udp_over_ipv4_is_charged_exactly_to_both_ends") {
        return;
    }
    udp_exact("127.0.0.1:0", V4_HEADERS);
}

#[test]
fn udp_over_ipv6_is_charged_exactly_to_both_ends() {
    if skip_without_cgroup2("udp_over_ipv6_is_charged_exactly_to_both_ends") {
        return;
    }
    udp_exact("[::1]:0", V6_HEADERS);
}

#[test]
fn tcp_transfer_is_charged_to_both_ends_within_header_overhead() {
    if skip_without_cgroup2("tcp_transfer_is_charged_to_both_ends_within_header_overhead") {
        return;
    }
    const BYTES: u64 = 4 << 20;
    /// Most a TCP/IP header can add per packet: IPv4 20 + TCP 60 (options).
    const MAX_HEADER: u64 = 80;
    let a = TestCgroup::create("tcp-a");
    let b = TestCgroup::create("tcp-b");
    let pins = PinDir::new();
    let kernel = kernel_for(&pins, &[&a, &b]);

    let receiver = b.start_server(&["tcp-recv", "127.0.0.1:0"]);
    let sent = a.run_helper(&["tcp-send", &receiver.addr, &BYTES.to_string()]);
    assert_eq!(receiver.finish(), format!("received {BYTES} bytes"));
    // Segments the sender had to send again (a busy loopback drops too) pass the
    // hooks again: they are traffic, and the bound allows for them.
    let retrans: u64 = sent
        .lines()
        .find_map(|l| l.strip_prefix("retransmitted "))
        .and_then(|n| n.trim().parse().ok())
        .expect("tcp-send reports retransmitted bytes");

    let snap = kernel.snapshot().expect("snapshot");
    let (ga, gb) = (group(&snap, a.id()), group(&snap, b.id()));
    eprintln!("sender {ga:?}\nreceiver {gb:?}");
    for (what, c) in [
        ("sender egress", ga.egress),
        ("receiver ingress", gb.ingress),
    ] {
        assert!(
            c.bytes >= BYTES && c.bytes <= BYTES + retrans + c.packets * MAX_HEADER,
            "{what}: {} bytes in {} packets for {BYTES} payload bytes ({retrans} retransmitted)",
            c.bytes,
            c.packets
        );
    }
    // Not equal in general: a GSO packet of the sender can reach the receiver's
    // socket as several segments, each with its own headers.
    // The other direction carries only ACKs (and the handshake).
    assert!(gb.egress.packets > 0 && gb.egress.bytes <= gb.egress.packets * MAX_HEADER);
}

#[test]
fn connect_and_bind_attempts_are_counted() {
    if skip_without_cgroup2("connect_and_bind_attempts_are_counted") {
        return;
    }
    const K: u64 = 25;
    let a = TestCgroup::create("sock-a");
    let b = TestCgroup::create("sock-b");
    let pins = PinDir::new();
    let mut kernel = kernel_for(&pins, &[&a, &b]);

    a.run_helper(&["sockaddr", &K.to_string()]);

    let snap = kernel.snapshot().expect("snapshot");
    let s = group(&snap, a.id()).sock;
    assert_eq!(
        (s.connect4, s.connect6, s.bind4, s.bind6),
        (K, K, K, K),
        "attempts of group A"
    );
    assert_eq!(
        group(&snap, b.id()).sock,
        Default::default(),
        "B did nothing"
    );

    // Detached, the group is no longer counted; its counters stay.
    assert_eq!(kernel.detach_group(&a.path).expect("detach"), 6);
    a.run_helper(&["sockaddr", &K.to_string()]);
    assert_eq!(group(&kernel.snapshot().expect("snapshot"), a.id()).sock, s);
    assert_eq!(kernel.attach_group(&a.path).expect("attach again"), 6);
}

/// Calls of `nr` by group `id`.
fn calls(kernel: &Kernel, id: u64, nr: u32) -> u64 {
    let snap = kernel.snapshot().expect("snapshot");
    group(&snap, id)
        .syscalls
        .get(&SyscallId::native(nr))
        .copied()
        .unwrap_or(0)
}

#[test]
fn syscalls_are_counted_for_groups_in_scope_only() {
    if skip_without_cgroup2("syscalls_are_counted_for_groups_in_scope_only") {
        return;
    }
    const K: u64 = 20_000;
    let a = TestCgroup::create("sys-a");
    let b = TestCgroup::create("sys-b");
    let pins = PinDir::new();
    let mut kernel = Kernel::open(&pins.path).expect("open");
    assert_eq!(kernel.attach_tracing().expect("attach tracing"), 4);
    kernel
        .set_syscall_scope(SyscallScope::Groups(vec![a.id()]))
        .expect("scope: A");

    a.run_helper(&["getppid", &K.to_string()]);
    b.run_helper(&["getppid", &K.to_string()]);
    let in_a = calls(&kernel, a.id(), NR_GETPPID);
    assert!(
        (K..=K + 100).contains(&in_a),
        "A made {K} getppid calls, counted {in_a}"
    );
    let snap = kernel.snapshot().expect("snapshot");
    assert!(
        group(&snap, b.id()).syscalls.is_empty(),
        "B is not in scope: {:?}",
        group(&snap, b.id()).syscalls
    );

    // All: B is counted too (and every other process on the host).
    kernel
        .set_syscall_scope(SyscallScope::All)
        .expect("scope: all");
    b.run_helper(&["getppid", &K.to_string()]);
    let in_b = calls(&kernel, b.id(), NR_GETPPID);
    assert!((K..=K + 100).contains(&in_b), "B counted {in_b}");

    // Back to A only: B's counts stop moving (the per-CPU caches are invalidated).
    kernel
        .set_syscall_scope(SyscallScope::Groups(vec![a.id()]))
        .expect("scope: A again");
    b.run_helper(&["getppid", &K.to_string()]);
    assert_eq!(
        calls(&kernel, b.id(), NR_GETPPID),
        in_b,
        "B out of scope again"
    );
    a.run_helper(&["getppid", &K.to_string()]);
    let in_a2 = calls(&kernel, a.id(), NR_GETPPID);
    assert!(
        (in_a + K..=in_a + K + 100).contains(&in_a2),
        "A counted {in_a2} after {in_a} + {K}"
    );
}

#[test]
fn pinned_state_survives_a_killed_loader_without_duplicate_links() {
    if skip_without_cgroup2("pinned_state_survives_a_killed_loader_without_duplicate_links") {
        return;
    }
    const K: u64 = 5_000;
    let a = TestCgroup::create("restart");
    let pins = PinDir::new();
    let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
    let addr = receiver.local_addr().expect("addr").to_string();

    // The "agent": loads, attaches, counts its own traffic, and dies by SIGKILL.
    let out = Command::new(helper_bin())
        .args([
            "bpf-attach-and-die",
            pins.path.to_str().expect("utf-8 pin dir"),
            a.path.to_str().expect("utf-8 cgroup path"),
            &addr,
            &DATAGRAMS.to_string(),
            &PAYLOAD.to_string(),
            &K.to_string(),
        ])
        .output()
        .expect("run the loader child");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "the child should kill itself: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "attached 6 4");

    // Another process reads the pinned counters without loading anything.
    let pinned = snapshot_pinned(&pins.path).expect("snapshot from pins");
    let counted = group(&pinned, a.id());
    assert_eq!(
        (counted.egress.packets, counted.egress.bytes),
        (DATAGRAMS, DATAGRAMS * (PAYLOAD + V4_HEADERS))
    );
    let getppids = counted
        .syscalls
        .get(&SyscallId::native(NR_GETPPID))
        .copied()
        .unwrap_or(0);
    assert!(
        (K..=K + 100).contains(&getppids),
        "getppid counted {getppids}"
    );

    // A new loader re-uses maps and links: nothing is attached twice...
    let mut kernel = Kernel::open(&pins.path).expect("reopen");
    // Kernels without BPF_MAP_LOOKUP_BATCH get the entry-by-entry reader:
    // it must read the same.
    assert_eq!(
        kernel
            .snapshot_per_entry()
            .expect("snapshot entry by entry"),
        pinned,
        "batch and per-entry reads agree"
    );
    assert_eq!(kernel.attach_group(&a.path).expect("re-attach"), 0);
    assert_eq!(kernel.attach_tracing().expect("re-attach tracing"), 0);
    assert_eq!(
        kernel.snapshot().expect("snapshot"),
        pinned,
        "same maps as the pins"
    );
    // ...so new traffic is counted exactly once, on top of the old counts.
    a.run_helper(&["udp-send", &addr, "10", &PAYLOAD.to_string()]);
    let after = group(&kernel.snapshot().expect("snapshot"), a.id());
    assert_eq!(after.egress.packets, DATAGRAMS + 10);
    assert_eq!(
        after.egress.bytes,
        (DATAGRAMS + 10) * (PAYLOAD + V4_HEADERS)
    );
    drop(receiver);

    // unpin_all removes the 21 maps (9 counting, 5 of the counting maps'
    // subtree quotas, 7 enforcement, the node's network shares among them)
    // and the 6 + 4 links; then nothing is left.
    drop(kernel);
    assert_eq!(unpin_all(&pins.path).expect("unpin_all"), 31);
    assert_eq!(
        std::fs::read_dir(&pins.path)
            .expect("the pin dir stays")
            .count(),
        0,
        "nothing is left in the pin dir"
    );
    let err = snapshot_pinned(&pins.path).expect_err("nothing pinned any more");
    assert!(matches!(err, BpfError::NotRunning { .. }), "{err}");
    assert!(err.to_string().contains("enforcer run"), "{err}");
    // The links are gone: traffic is no longer counted anywhere we can see,
    // and a fresh kernel attaches six new links.
    let mut fresh = Kernel::open(&pins.path).expect("open afresh");
    assert_eq!(fresh.attach_group(&a.path).expect("attach"), 6);
    assert_eq!(
        fresh.snapshot().expect("snapshot").groups.get(&a.id()),
        None
    );
}

/// The OOM kills of `cgroup` seen within `timeout` (waits it out, so a second
/// event would be seen too).
fn oom_kills_of(kernel: &mut Kernel, cgroup: u64, timeout: Duration) -> Vec<Event> {
    accounting_support::events_of(kernel, cgroup, timeout, |_| false)
        .into_iter()
        .filter(|e| matches!(e, Event::OomKill { .. }))
        .collect()
}

#[test]
fn an_oom_kill_produces_one_event() {
    const TEST: &str = "an_oom_kill_produces_one_event";
    if skip_without_cgroup2(TEST) || layout::skip_without(TEST, &["memory"]) {
        return;
    }
    let guard = GroupGuard::new("oom");
    let name = guard.name.clone();
    enforcer_ok(&["create", "-g", &format!("memory:{name}")]);
    enforcer_ok(&["set", "-r", "memory.limit_in_bytes=20M", &name]);
    // The mirror on a hybrid host, the group itself on pure v2.
    let id = cgroup_id(&layout::v2_dir(&name)).expect("the group's cgroup2 directory");

    let pins = PinDir::new();
    let mut kernel = Kernel::open(&pins.path).expect("open");
    assert_eq!(kernel.attach_tracing().expect("attach tracing"), 4);
    assert_eq!(kernel.as_raw_fd(), kernel.events_fd());

    let mut child = Command::new(enforcer_tests::enforcer_bin())
        .args(["exec", "-g", &format!("memory:{name}"), "--"])
        .arg(helper_bin())
        .args(["alloc", "104857600"])
        .spawn()
        .expect("run the allocating helper");
    let pid = child.id();
    let status = child.wait().expect("wait");
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "100 MiB under a 20 MiB limit is OOM-killed: {status}"
    );

    let kills = oom_kills_of(&mut kernel, id, Duration::from_secs(2));
    assert_eq!(kills.len(), 1, "{kills:?}");
    let Event::OomKill {
        pid: victim, comm, ..
    } = &kills[0]
    else {
        panic!("not an OOM kill: {:?}", kills[0]);
    };
    assert_eq!(
        *victim, pid,
        "the victim is the helper (enforcer exec keeps the pid)"
    );
    assert_eq!(comm, "enforcer-test-h", "comm is truncated to 15 bytes");

    enforcer_ok(&["delete", "-g", &format!("memory:{name}")]);
}
