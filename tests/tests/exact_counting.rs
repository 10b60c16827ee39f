//! Counting is exact whatever is attached (root, real kernel): every packet
//! and syscall is counted once, in the counters of the cgroup that made it,
//! with observe mode at the cgroup2 root beside policy groups, with nested
//! policy groups, with a process in a subgroup (a container) below a policy
//! group, and across agent restarts that adopt the pins (switching observe
//! mode on and off). Budgets, `stats`, `top` (subtree totals) and the metrics
//! agree.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Command;

use enforcer_tests::layout::{skip_without_cgroup2, spec, v2_dir, v2_id};
use enforcer_tests::{AgentRun, enforcer_bin, enforcer_ok, helper_bin, unique_name, wait_until};

/// Datagrams of this payload: 1,028 bytes on the wire (IPv4 + UDP headers).
const PAYLOAD: u64 = 1000;
const WIRE: u64 = PAYLOAD + 28;
/// A budget no test reaches: nothing is dropped, so what is charged to it is
/// exactly what left.
const BUDGET: u64 = 1 << 30;

/// A test's groups: a unique top-level name, removed (with everything below
/// it) when dropped.
struct Tree {
    top: enforcer_tests::GroupGuard,
}

impl Tree {
    fn new(what: &str) -> Self {
        Tree {
            top: enforcer_tests::GroupGuard {
                name: unique_name(what),
            },
        }
    }

    /// The group path of `sub` below the top (`""`: the top itself).
    fn at(&self, sub: &str) -> String {
        if sub.is_empty() {
            self.top.name.clone()
        } else {
            format!("{}/{sub}", self.top.name)
        }
    }
}

fn policy(run: &AgentRun, observe: bool, groups: &[String]) -> PathBuf {
    let mut text = String::new();
    if observe {
        text.push_str("[agent]\nobserve = true\n\n");
    }
    for g in groups {
        text.push_str(&format!(
            "[group.\"{g}\"]\n\"memory.limit_in_bytes\" = \"200M\"\n\n\
             [group.\"{g}\".network]\negress_budget = \"{BUDGET}/1h\"\n\n"
        ));
    }
    let p = run.file("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn helper_in(group: &str, args: &[&str]) {
    let out = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(group), "--"])
        .arg(helper_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helper {args:?} in {group}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a test may put a process into `group`: not where its cgroup2
/// directory hands controllers to its children (pure cgroup2's "no internal
/// processes"; a hybrid host's cgroup2 mirror hands none).
fn holds_processes(group: &str) -> bool {
    std::fs::read_to_string(v2_dir(group).join("cgroup.subtree_control"))
        .unwrap_or_default()
        .trim()
        .is_empty()
}

/// `count` datagrams of [`PAYLOAD`] bytes from a process in `group`.
fn send(group: &str, to: &UdpSocket, count: u64) {
    let addr = to.local_addr().unwrap().to_string();
    helper_in(
        group,
        &["udp-send", &addr, &count.to_string(), &PAYLOAD.to_string()],
    );
}

fn stats(run: &AgentRun, group: &str) -> serde_json::Value {
    run.stats(group)
}

fn egress(run: &AgentRun, group: &str) -> (u64, u64) {
    let s = stats(run, group);
    (
        s["net"]["egress_packets"].as_u64().unwrap_or(0),
        s["net"]["egress_bytes"].as_u64().unwrap_or(0),
    )
}

fn getppid(run: &AgentRun, group: &str) -> u64 {
    stats(run, group)["syscalls"]["by_name"]["getppid"]
        .as_u64()
        .unwrap_or(0)
}

/// What the group's egress budget has charged in this window.
fn budget_used(run: &AgentRun, group: &str) -> u64 {
    let s = stats(run, group);
    s["limits"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["direction"] == "egress"))
        .and_then(|l| l["budget"]["used_bytes"].as_u64())
        .unwrap_or_else(|| panic!("{group} has no egress budget in stats: {s}"))
}

/// The value of the sample `family{labels...}` in a scrape (labels in any
/// order), if there is one.
fn sample(scrape: &str, family: &str, labels: &[(&str, &str)]) -> Option<u64> {
    scrape.lines().find_map(|l| {
        let rest = l.strip_prefix(family)?.strip_prefix('{')?;
        let (set, value) = rest.rsplit_once("} ")?;
        let all = labels
            .iter()
            .all(|(k, v)| set.split(',').any(|p| p == format!("{k}=\"{v}\"")));
        all.then(|| value.trim().parse::<f64>().ok().map(|v| v as u64))
            .flatten()
    })
}

/// Waits until the agent's metrics show `bytes` of egress for `group`, and
/// its budget `BUDGET - budget_used` remaining; then they must be exactly so.
fn metrics_agree(run: &AgentRun, group: &str, bytes: u64, budget_used: u64) {
    let read = || {
        let m = run.metrics().unwrap_or_default();
        (
            sample(
                &m,
                "enforcer_net_bytes_total",
                &[("group", group), ("direction", "egress")],
            ),
            sample(
                &m,
                "enforcer_budget_remaining_bytes",
                &[("group", group), ("direction", "egress")],
            ),
        )
    };
    let want = (Some(bytes), Some(BUDGET - budget_used));
    let mut last = (None, None);
    let agreed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until("the metrics to show the counts", || {
            last = read();
            last == want
        })
    }));
    assert!(
        agreed.is_ok(),
        "metrics of {group}: (egress bytes, budget remaining) {last:?}, want {want:?}"
    );
}

/// `top --once --json`'s rows: in the tree view (`tree` levels deep) each
/// counts its whole subtree; in the flat table (0) each its own.
fn top_rows(run: &AgentRun, tree: usize) -> Vec<serde_json::Value> {
    let tree = tree.to_string();
    let out = enforcer_ok(&[
        "top",
        "--once",
        "--json",
        "--pin-dir",
        run.pin(),
        "--interval",
        "100ms",
        "--tree",
        &tree,
    ]);
    serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap()
}

fn top_egress(rows: &[serde_json::Value], group: &str) -> u64 {
    rows.iter()
        .find(|r| r["group"] == group)
        .and_then(|r| r["egress_bytes"].as_u64())
        .unwrap_or(0)
}

/// The cgroup ids that have counting links pinned under the agent's pins.
fn counting_link_ids(run: &AgentRun) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(run.pin_dir.join("links"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids
}

fn root_id() -> u64 {
    enforcer::bpf::cgroup_id(&enforcer_tests::layout::v2_mount()).unwrap()
}

#[test]
fn observe_beside_a_policy_group_counts_each_packet_once() {
    if skip_without_cgroup2("observe_beside_a_policy_group_counts_each_packet_once") {
        return;
    }
    let t = Tree::new("exact-observe");
    let p = t.at("");
    let mut run = AgentRun::new();
    run.start(&policy(&run, true, std::slice::from_ref(&p)));
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send(&p, &rx, 1000);
    assert_eq!(egress(&run, &p), (1000, 1000 * WIRE), "stats of {p}");
    assert_eq!(budget_used(&run, &p), 1000 * WIRE, "budget of {p}");
    metrics_agree(&run, &p, 1000 * WIRE, 1000 * WIRE);
    const K: u64 = 20_000;
    helper_in(&p, &["getppid", &K.to_string()]);
    let n = getppid(&run, &p);
    assert!((K..K + 100).contains(&n), "getppid counted {n}, made {K}");
    // One antichain of attach points: the root alone covers the group.
    assert_eq!(counting_link_ids(&run), vec![root_id()]);
}

#[test]
fn nested_policy_groups_and_a_container_below_them_count_once() {
    if skip_without_cgroup2("nested_policy_groups_and_a_container_below_them_count_once") {
        return;
    }
    let t = Tree::new("exact-nested");
    let (p, q, c, idle) = (t.at(""), t.at("q"), t.at("c"), t.at("idle"));
    let mut run = AgentRun::new();
    run.start(&policy(&run, false, &[p.clone(), q.clone(), idle.clone()]));
    // A container-like group below the policy group, made by someone else.
    enforcer_ok(&["create", "-g", &spec(&c)]);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    // On a pure cgroup2 host the groups below p enabled p's controllers for
    // them, and the kernel keeps processes out of such an inner group (EBUSY):
    // p's own traffic is then none, and its subtree is what is below it.
    let own = if holds_processes(&p) { 200 } else { 0 };
    if own > 0 {
        send(&p, &rx, own);
    }
    send(&q, &rx, 1000);
    send(&c, &rx, 500);
    assert_eq!(egress(&run, &p), (own, own * WIRE), "stats of {p}");
    assert_eq!(egress(&run, &q), (1000, 1000 * WIRE), "stats of {q}");
    assert_eq!(egress(&run, &c), (500, 500 * WIRE), "stats of {c}");
    // Budgets nest as cgroup limits do: a group's covers its subtree.
    assert_eq!(budget_used(&run, &p), (own + 1500) * WIRE, "budget of {p}");
    assert_eq!(budget_used(&run, &q), 1000 * WIRE, "budget of {q}");
    // A budgeted group where nothing was counted is reported all the same.
    assert_eq!(budget_used(&run, &idle), 0, "budget of {idle}");
    assert_eq!(egress(&run, &idle), (0, 0), "stats of {idle}");
    // top's tree shows subtree totals: the budget's figure; its flat table
    // each group's own, as stats.
    let rows = top_rows(&run, 8);
    assert_eq!(
        top_egress(&rows, &p),
        (own + 1500) * WIRE,
        "top's tree row of {p}"
    );
    assert_eq!(top_egress(&rows, &q), 1000 * WIRE, "top's tree row of {q}");
    // The root's row is its own traffic plus all below it.
    assert!(top_egress(&rows, "/") >= (own + 1500) * WIRE);
    let rows = top_rows(&run, 0);
    assert_eq!(top_egress(&rows, &p), own * WIRE, "top's row of {p}");
    assert_eq!(top_egress(&rows, &c), 500 * WIRE, "top's row of {c}");
    // Metrics are per group (deeper ones folded into their ancestor only
    // past metrics_depth): each group's own traffic, as `stats`.
    metrics_agree(&run, &q, 1000 * WIRE, 1000 * WIRE);
    metrics_agree(&run, &p, own * WIRE, (own + 1500) * WIRE);
    // Syscalls: counted once, in the group that made them, also below a
    // policy group.
    const K: u64 = 20_000;
    for g in [&q, &c] {
        helper_in(g, &["getppid", &K.to_string()]);
        let n = getppid(&run, g);
        assert!(
            (K..K + 100).contains(&n),
            "getppid in {g} counted {n}, made {K}"
        );
    }
    // One attach point covers the nested group and the container.
    assert_eq!(counting_link_ids(&run), vec![v2_id(&p)]);
}

#[test]
fn restarts_that_switch_observe_mode_keep_counting_once() {
    if skip_without_cgroup2("restarts_that_switch_observe_mode_keep_counting_once") {
        return;
    }
    let t = Tree::new("exact-restart");
    let p = t.at("");
    let mut run = AgentRun::new();
    let plain = policy(&run, false, std::slice::from_ref(&p));
    run.start(&plain);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    send(&p, &rx, 100);
    assert_eq!(egress(&run, &p), (100, 100 * WIRE));
    assert_eq!(counting_link_ids(&run), vec![v2_id(&p)]);

    // Killed; back with observe mode: the root's link covers the group, the
    // group's own adopted link goes.
    run.sigkill();
    run.start_with(&plain, &["--observe"]);
    send(&p, &rx, 100);
    assert_eq!(egress(&run, &p), (200, 200 * WIRE), "after observe on");
    assert_eq!(counting_link_ids(&run), vec![root_id()]);

    // And back without observe mode: the root's link goes.
    run.sigkill();
    run.start(&plain);
    send(&p, &rx, 100);
    assert_eq!(egress(&run, &p), (300, 300 * WIRE), "after observe off");
    assert_eq!(counting_link_ids(&run), vec![v2_id(&p)]);
    // The budget (enforcement, never double) saw every byte of all three.
    assert_eq!(budget_used(&run, &p), 300 * WIRE);
    metrics_agree(&run, &p, 300 * WIRE, 300 * WIRE);
}

/// README: when the attach points move, new links go on before old ones
/// come off, so a packet in flight may be counted twice and none is lost.
/// A sender streams from the group while a restart moves its counting from
/// the group's link to the root's (observe on) and back: every datagram is
/// counted, and only those of the moment both links were on twice.
#[test]
fn traffic_across_a_move_of_the_attach_points_is_counted_once() {
    if skip_without_cgroup2("traffic_across_a_move_of_the_attach_points_is_counted_once") {
        return;
    }
    let t = Tree::new("exact-move");
    let p = t.at("");
    let mut run = AgentRun::new();
    let plain = policy(&run, false, std::slice::from_ref(&p));
    run.start(&plain);
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = rx.local_addr().unwrap().to_string();
    let stop = run.file("stop-sending");
    // Rounds of 100 datagrams until told to stop; says how many rounds
    // completed (a failed round fails the test: its count is unknown).
    let script = format!(
        "n=0; while [ ! -e '{stop}' ]; do '{helper}' udp-send {addr} 100 {PAYLOAD} || exit 3; \
         n=$((n+1)); done; echo $n",
        stop = stop.display(),
        helper = helper_bin().display(),
    );
    let sender = Command::new(enforcer_bin())
        .args(["exec", "-g", &spec(&p), "--", "/bin/sh", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let counted = |run: &AgentRun| egress(run, &p).0;
    wait_until("the sender's first datagrams", || counted(&run) > 0);
    for observe in [true, false] {
        run.sigkill();
        if observe {
            run.start_with(&plain, &["--observe"]);
        } else {
            run.start(&plain);
        }
        let want = if observe { root_id() } else { v2_id(&p) };
        assert_eq!(counting_link_ids(&run), vec![want], "observe {observe}");
        // The move happened while the sender ran: it is still sending.
        let after = counted(&run);
        wait_until("datagrams after the move", || counted(&run) >= after + 1000);
    }
    std::fs::write(&stop, "").unwrap();
    let out = sender.wait_with_output().unwrap();
    assert!(out.status.success(), "the sender: {out:?}");
    let sent: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<u64>()
        .unwrap()
        * 100;
    wait_until("every datagram counted", || counted(&run) >= sent);
    // Twice: only what was sent while both links were on (a millisecond or
    // two per move in a stream of seconds).
    let n = counted(&run);
    eprintln!("sent {sent} datagrams across two moves, counted {n}");
    assert!(
        (sent..=sent + sent / 50).contains(&n),
        "sent {sent} datagrams across two moves of the attach point, counted {n}"
    );
    assert_eq!(egress(&run, &p).1, n * WIRE);
}

/// README: a subgroup below a policy group is counted under its own path,
/// syscalls included, at any depth (the kernel program looks 16 ancestor
/// levels down from the root for a listed group, so the policy group must be
/// within those). A container 16 levels down is counted as its own; so is
/// one 17 levels down.
#[test]
fn syscalls_of_subgroups_sixteen_and_seventeen_levels_down_are_their_own() {
    if skip_without_cgroup2("syscalls_of_subgroups_sixteen_and_seventeen_levels_down_are_their_own")
    {
        return;
    }
    let t = Tree::new("exact-deep");
    let p = t.at("");
    // p is 1 level below the root; d2 .. d16 go down to level 16, d17 one more.
    let chain: Vec<String> = (2..=17).map(|l| format!("d{l}")).collect();
    let at = |level: usize| t.at(&chain[..level - 1].join("/"));
    let (deep, deeper) = (at(16), at(17));
    assert_eq!(deep.matches('/').count(), 15, "{deep} is 16 levels down");
    let mut run = AgentRun::new();
    run.start(&policy(&run, false, std::slice::from_ref(&p)));
    const K: u64 = 10_000;
    // Made one after the other: on pure cgroup2 a group with a child holds
    // no processes.
    for g in [&deep, &deeper] {
        enforcer_ok(&["create", "-g", &spec(g)]);
        helper_in(g, &["getppid", &K.to_string()]);
        wait_until("the deep group's calls counted", || getppid(&run, g) >= K);
        let n = getppid(&run, g);
        assert!(
            (K..K + 100).contains(&n),
            "getppid in {g} counted {n}, made {K}"
        );
    }
    assert!(getppid(&run, &p) < 100, "nothing folded into {p}");
}
