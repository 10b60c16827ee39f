//! The TOML policy file as typed tables: serde reads it (with `toml`, keeping
//! the span of every key and value), unknown keys are refused by the types
//! themselves (`deny_unknown_fields`), and the JSON Schema and
//! `docs/policy.md` are generated from these same types and doc comments (see
//! `schema.rs`). Leaves whose meaning depends on the key are [`Raw`] values,
//! judged by the conversions in `convert/` with one grammar per kind of value.
//!
//! The doc comments here are the reference documentation: they say what each
//! key means, how it is written, and its default.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::raw::Raw;
use super::schema;

/// A value with its place in the file.
pub(crate) type Sp<T> = Spanned<T>;
/// An optional key with a value of any TOML type, judged by its conversion.
pub(crate) type Leaf = Option<Sp<Raw>>;

/// An enforcer policy: per group, its limits, where it may connect, how much
/// it may send, which syscalls it must never make and what to do when it
/// misbehaves; and how the agent runs.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
#[schemars(title = "enforcer policy")]
pub(crate) struct PolicyFile {
    /// How `enforcer run` behaves. Every key is optional; command-line flags
    /// override the file.
    #[schemars(with = "Option<AgentTable>")]
    pub(crate) agent: Option<Sp<AgentTable>>,
    /// The groups, one `[group."NAME"]` table each; NAME is the group's path
    /// (`web`, `web/api`), below `[agent] parent` if that is set.
    #[schemars(with = "Option<BTreeMap<String, GroupTable>>")]
    pub(crate) group: Option<Sp<Groups>>,
    /// Priorities enforced from measured usage and pressure: with this table
    /// the agent's arbiter makes lower-priority groups yield CPU, memory, IO
    /// and network to a higher-priority group that shows contention, and
    /// gives it back when the pressure is gone. Without it priorities are
    /// static (a CPU weight, a packet priority and, with a capacity, the
    /// kernel's network shares).
    #[schemars(with = "Option<ArbiterTable>")]
    pub(crate) arbiter: Option<Sp<ArbiterTable>>,
    /// Rules that place new processes in groups when they start (the TOML form
    /// of cgrules.conf lines), one `[[classify]]` table each, tried in file
    /// order after /etc/cgrules.conf's: the first match wins.
    #[schemars(with = "Option<Vec<ClassifyTable>>")]
    pub(crate) classify: Option<Vec<Sp<ClassifyTable>>>,
    /// Kernel rules for containers a runtime starts (podman, docker,
    /// containerd, CRI-O), one `[[container]]` table each: each running
    /// container that matches (the first table that does) gets the table's
    /// `network` and `syscalls` rules in its own group, within one agent
    /// interval of its start.
    #[schemars(with = "Option<Vec<ContainerTable>>")]
    pub(crate) container: Option<Vec<Sp<ContainerTable>>>,
}

/// `[[container]]`: which containers (every key given must match) and their
/// rules. At least one of `runtime`, `name` and `id`, and a
/// `[container.network]` or `[container.syscalls]` table.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct ContainerTable {
    /// The runtime that made the container's group: `"podman"`, `"docker"`,
    /// `"containerd"` or `"crio"`.
    #[schemars(with = "Option<String>")]
    pub(crate) runtime: Leaf,
    /// The container's name, where its runtime writes it down (podman, CRI-O,
    /// docker); `*` and `?` match any run of characters and any one. A
    /// container without a known name never matches a `name`.
    #[schemars(with = "Option<String>")]
    pub(crate) name: Leaf,
    /// The start of the container's id (lowercase hex).
    #[schemars(with = "Option<String>")]
    pub(crate) id: Leaf,
    /// The containers' network rules, written as a group's.
    #[schemars(with = "Option<NetworkTable>")]
    pub(crate) network: Option<Sp<NetworkTable>>,
    /// The containers' syscall rules, written as a group's.
    #[schemars(with = "Option<SyscallsTable>")]
    pub(crate) syscalls: Option<Sp<SyscallsTable>>,
}

/// `[[classify]]`: one rule. A process matches when its user (or group) and
/// its program match; it is then moved to `destination`.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct ClassifyTable {
    /// A user name (or `%`-less cgrules.conf form); neither `user` nor
    /// `group`: every user.
    #[schemars(with = "Option<String>")]
    pub(crate) user: Leaf,
    /// A group name: its members match. Not together with `user`.
    #[schemars(with = "Option<String>")]
    pub(crate) group: Leaf,
    /// The program's path (or a script's), optionally ending in `*` for a
    /// prefix; neither `exe` nor `comm`: every program.
    #[schemars(with = "Option<String>")]
    pub(crate) exe: Leaf,
    /// The program's base name, without `/`, optionally ending in `*`. Not
    /// together with `exe`.
    #[schemars(with = "Option<String>")]
    pub(crate) comm: Leaf,
    /// The controllers whose groups the process goes to, such as `["cpu",
    /// "memory"]`; default every controller.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) controllers: Leaf,
    /// The group to move matching processes to; `%u %U %g %G %p %P` expand
    /// as in cgrules.conf (user, uid, group, gid, program name, pid).
    #[schemars(with = "Option<String>")]
    pub(crate) destination: Leaf,
    /// `true`: matching processes stay where they are (later rules are not
    /// tried for them).
    #[schemars(with = "Option<bool>")]
    pub(crate) ignore: Leaf,
    /// `true` (on any rule): each process a rule may concern is stopped at
    /// exec until it is placed, so it runs nothing in its old group.
    #[schemars(with = "Option<bool>")]
    pub(crate) hold: Leaf,
}

/// `[agent]`: how `enforcer run` behaves.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct AgentTable {
    /// Where to serve Prometheus metrics (`http://ADDR:PORT/metrics`), such as
    /// `"127.0.0.1:9750"` (the default) or `"[::1]:9750"`. Port 0 is refused.
    #[schemars(with = "Option<String>")]
    pub(crate) metrics: Leaf,
    /// How often counters are read, rules evaluated and the summary printed: a
    /// duration of at least `"10ms"` (default `"1s"`).
    #[schemars(schema_with = "schema::duration")]
    pub(crate) interval: Leaf,
    /// What happens to programs and counters when the agent stops: `"keep"`
    /// (the default: enforcement and counting go on, the next start adopts
    /// them) or `"detach"` (a clean stop removes everything it attached).
    #[schemars(schema_with = "schema::on_exit")]
    pub(crate) on_exit: Leaf,
    /// The audit log, one JSON line per event: an absolute path (default
    /// `"/var/log/enforcer/audit.jsonl"`).
    #[schemars(with = "Option<String>")]
    pub(crate) audit_log: Leaf,
    /// A group (from /etc/group) that may read the audit log: it is then mode
    /// 0640 with that group; without it 0600, root's alone.
    #[schemars(with = "Option<String>")]
    pub(crate) audit_group: Leaf,
    /// Also account every other group on the host (attach at the cgroup2 root
    /// as well). Observing never denies anything. Default `false`.
    #[schemars(with = "Option<bool>")]
    pub(crate) observe: Leaf,
    /// Create the policy's groups below this group (a subtree delegated to
    /// enforcer, such as systemd's `Delegate=yes` gives:
    /// `"system.slice/enforcer-groups.service"`, as dist/enforcer.service
    /// passes it) instead of at the top of each hierarchy.
    #[schemars(with = "Option<String>")]
    pub(crate) parent: Leaf,
    /// What the node can send, written as `egress_rate` (`"1Gbit"`): the
    /// policy's groups share it by priority in the kernel. Each priority
    /// level in use is assured a share in proportion to its weight (`high`
    /// 4 times `low`) on top of its groups' `min_egress`, and may borrow what
    /// the other levels leave idle, higher levels first; a burst over the
    /// share is held back per packet. Traffic of groups outside the policy
    /// is not counted against it. Unset: no shares.
    #[schemars(schema_with = "schema::rate")]
    pub(crate) egress_capacity: Leaf,
    /// What the node can receive, shared by priority as `egress_capacity`.
    #[schemars(schema_with = "schema::rate")]
    pub(crate) ingress_capacity: Leaf,
    /// Groups deeper than this are summed into their ancestor at this depth
    /// in the metrics (the policy's groups always keep their own series), so
    /// a host with thousands of containers does not flood Prometheus. A
    /// whole number; default 3.
    #[schemars(with = "Option<u64>")]
    pub(crate) metrics_depth: Leaf,
    /// At most this many groups besides the policy's get metric series (the
    /// busiest first); at least 1, default 500.
    #[schemars(with = "Option<u64>")]
    pub(crate) metrics_max_groups: Leaf,
    /// Rotate the audit log (to `.1` ... `.5`) when it grows past this size:
    /// a size of at least `"4K"`, such as `"100M"` (the default).
    #[schemars(schema_with = "schema::audit_size")]
    pub(crate) audit_max_size: Leaf,
}

/// `[arbiter]`: every `interval` the arbiter reads each policy group's usage
/// and pressure (PSI `some` over the last interval, from the `total`
/// counters of `cpu.pressure`, `memory.pressure` and `io.pressure`; for the
/// network, the share of a level's demand the kernel held back). When a group
/// is contended and lower-priority groups use the resource, they yield one
/// step per interval: `cpu.weight` and the `cpu.max` quota (from what they
/// use), `memory.high` (v1: `memory.soft_limit_in_bytes`; never below the
/// working set minus `memory_step`, never `memory.max`), `io.weight`, and
/// their sending or receiving rate and share, never below their floors
/// (`min_cpu`, ...). Once no higher group has shown pressure above half the
/// threshold for `restore_after` and those it yielded to are idle, everything
/// is restored; while they stay busy but calm, one step every `probe_after`.
/// Every change is audited; a clean stop, a reload and a restart after a
/// crash put the original values back.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct ArbiterTable {
    /// Set to `false` to keep the table but switch the arbiter off (static
    /// priorities). Default `true`.
    #[schemars(with = "Option<bool>")]
    pub(crate) enabled: Leaf,
    /// How often the arbiter reads usage and pressure and acts: a duration of
    /// at least `"10ms"` (default `"250ms"`).
    #[schemars(schema_with = "schema::duration")]
    pub(crate) interval: Leaf,
    /// What lower-priority groups yield: any of `"cpu"`, `"memory"`, `"io"`,
    /// `"egress"` and `"ingress"` (default all; the network ones need
    /// `[agent] egress_capacity` / `ingress_capacity`).
    #[schemars(schema_with = "schema::resources")]
    pub(crate) resources: Leaf,
    /// CPU pressure of a group (the share of the interval some of its tasks
    /// waited for a CPU) at which lower groups yield CPU: `"10%"` (default).
    #[schemars(schema_with = "schema::percent")]
    pub(crate) cpu_pressure: Leaf,
    /// Memory pressure (time stalled on memory) at which lower groups yield
    /// memory: default `"5%"`.
    #[schemars(schema_with = "schema::percent")]
    pub(crate) memory_pressure: Leaf,
    /// IO pressure (time stalled on IO) at which lower groups yield IO:
    /// default `"10%"`.
    #[schemars(schema_with = "schema::percent")]
    pub(crate) io_pressure: Leaf,
    /// The share of a group's network demand its level's share held back
    /// while the node was saturated at which lower groups yield the network:
    /// default `"1%"`.
    #[schemars(schema_with = "schema::percent")]
    pub(crate) network_pressure: Leaf,
    /// How much each step takes away of what a yielding group uses (its CPU
    /// time, weight, rate and share): default `"50%"`.
    #[schemars(schema_with = "schema::percent")]
    pub(crate) step: Leaf,
    /// How much each memory step takes off a yielding group's working set
    /// for its `memory.high`: default `"10%"`.
    #[schemars(schema_with = "schema::percent")]
    pub(crate) memory_step: Leaf,
    /// How long every higher group must have been calm (below half the
    /// threshold) and those yielded to idle before a group gets everything
    /// back: default `"1s"`.
    #[schemars(schema_with = "schema::duration")]
    pub(crate) restore_after: Leaf,
    /// While the groups yielded to stay busy but calm, one step is given
    /// back every this long (and taken again if their pressure returns):
    /// default `"10s"`.
    #[schemars(schema_with = "schema::duration")]
    pub(crate) probe_after: Leaf,
}

/// The `group` table: groups in file order, each name with its span.
#[derive(Debug, Default)]
pub(crate) struct Groups(pub(crate) Vec<(Sp<String>, Sp<GroupTable>)>);

impl<'de> Deserialize<'de> for Groups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Groups;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of groups: a `[group.\"NAME\"]` header per group")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Groups, A::Error> {
                let mut groups = Vec::new();
                while let Some(name) = map.next_key::<Sp<String>>()? {
                    groups.push((name, map.next_value()?));
                }
                Ok(Groups(groups))
            }
        }
        d.deserialize_map(V)
    }
}

/// `[group."NAME"]`: a group's controller settings (`"CONTROLLER.FILE" =
/// VALUE`, as for `apply`; `memory.max = "1G"` and a `[group."NAME".memory]`
/// table with `max = "1G"` mean the same) and its enforcement.
#[derive(Debug, Default, JsonSchema)]
// Every key is optional (`schema_with` alone would make a key required).
#[schemars(default)]
pub(crate) struct GroupTable {
    /// Controllers to create the group in even without settings, such as
    /// `["cpuset"]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) controllers: Leaf,
    /// Owners and modes, as cgconfig.conf's `perm` block.
    #[schemars(with = "Option<PermTable>")]
    pub(crate) perm: Option<Sp<PermTable>>,
    /// The group's place among the others: `"high"`, `"normal"` or `"low"`,
    /// or a level from 1 to 100 (the names are 75, 50 and 25; default
    /// `normal`). It sets the cpu weight (200, 100 or 50; doubling every 25
    /// levels) unless the group sets one itself, gives outgoing packets
    /// `skb->priority` 6 (TC_PRIO_INTERACTIVE) above `normal` or 1
    /// (TC_PRIO_BULK) below it, is the group's level in the network shares,
    /// and decides for the `[arbiter]` who yields to whom.
    #[schemars(schema_with = "schema::priority")]
    pub(crate) priority: Leaf,
    /// The least CPU the arbiter leaves the group when it yields, as a share
    /// of one CPU: its `cpu.max` quota never goes below it. Default `"10%"`.
    #[schemars(schema_with = "schema::percent")]
    pub(crate) min_cpu: Leaf,
    /// The arbiter never sets the group's `memory.high` below this size
    /// (`"256M"`). Default: no floor but the working set minus one step.
    #[schemars(schema_with = "schema::size")]
    pub(crate) min_memory: Leaf,
    /// The arbiter never sets the group's `io.weight` below this (1 to
    /// 10000). Default 1.
    #[schemars(with = "Option<u64>")]
    pub(crate) min_io_weight: Leaf,
    /// The arbiter never holds the group's sending rate below this (written
    /// as `egress_rate`); also assured to it within `[agent]
    /// egress_capacity`. Default 1% of the capacity.
    #[schemars(schema_with = "schema::rate")]
    pub(crate) min_egress: Leaf,
    /// As `min_egress`, for receiving.
    #[schemars(schema_with = "schema::rate")]
    pub(crate) min_ingress: Leaf,
    /// Where the group may connect and bind, how fast and how much it may send
    /// and receive.
    #[schemars(with = "Option<NetworkTable>")]
    pub(crate) network: Option<Sp<NetworkTable>>,
    /// Syscalls the group must not make.
    #[schemars(with = "Option<SyscallsTable>")]
    pub(crate) syscalls: Option<Sp<SyscallsTable>>,
    /// Closed-loop rules, one `[[group."NAME".when]]` table each.
    #[schemars(with = "Option<Vec<WhenTable>>")]
    pub(crate) when: Option<Sp<WhenRules>>,
    /// Controller settings in file order (every key not named above).
    #[schemars(skip)]
    pub(crate) settings: Vec<(Sp<String>, Sp<Raw>)>,
}

impl GroupTable {
    /// The keys above, which are never controller settings. A unit test checks
    /// that this is what the schema lists.
    pub(crate) const KEYS: [&'static str; 11] = [
        "controllers",
        "perm",
        "priority",
        "min_cpu",
        "min_memory",
        "min_io_weight",
        "min_egress",
        "min_ingress",
        "network",
        "syscalls",
        "when",
    ];
}

impl<'de> Deserialize<'de> for GroupTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GroupTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a group table: a `[group.\"NAME\"]` header followed by its settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupTable, A::Error> {
                let mut g = GroupTable::default();
                while let Some(key) = map.next_key::<Sp<String>>()? {
                    // One arm per entry of `GroupTable::KEYS`.
                    match key.get_ref().as_str() {
                        "controllers" => g.controllers = Some(map.next_value()?),
                        "perm" => g.perm = Some(map.next_value()?),
                        "priority" => g.priority = Some(map.next_value()?),
                        "min_cpu" => g.min_cpu = Some(map.next_value()?),
                        "min_memory" => g.min_memory = Some(map.next_value()?),
                        "min_io_weight" => g.min_io_weight = Some(map.next_value()?),
                        "min_egress" => g.min_egress = Some(map.next_value()?),
                        "min_ingress" => g.min_ingress = Some(map.next_value()?),
                        "network" => g.network = Some(map.next_value()?),
                        "syscalls" => g.syscalls = Some(map.next_value()?),
                        "when" => g.when = Some(map.next_value()?),
                        _ => g.settings.push((key, map.next_value()?)),
                    }
                }
                Ok(g)
            }
        }
        d.deserialize_map(V)
    }
}

/// `[group."NAME".perm]`: who owns the group's files, as cgconfig.conf's `perm`.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct PermTable {
    /// Owner and mode of the `tasks`/`cgroup.procs` files (who may move
    /// processes in): `{ uid = "root", gid = "root", fperm = "660" }`.
    #[schemars(with = "Option<OwnerTable>")]
    pub(crate) task: Option<Sp<OwnerTable>>,
    /// Owner and modes of the group's directory (`dperm`) and other files
    /// (`fperm`).
    #[schemars(with = "Option<OwnerTable>")]
    pub(crate) admin: Option<Sp<OwnerTable>>,
}

/// A user and group (names or numeric ids) and octal modes.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct OwnerTable {
    /// A user name or numeric id.
    #[schemars(schema_with = "schema::name_or_id")]
    pub(crate) uid: Leaf,
    /// A group name or numeric id.
    #[schemars(schema_with = "schema::name_or_id")]
    pub(crate) gid: Leaf,
    /// Mode of the directory, octal (`admin` only).
    #[schemars(schema_with = "schema::mode")]
    pub(crate) dperm: Leaf,
    /// Mode of the files, octal: `"660"` (or `660`, or TOML's `0o660`).
    #[schemars(schema_with = "schema::mode")]
    pub(crate) fperm: Leaf,
}

/// `[group."NAME".network]`: which addresses the group may connect to or
/// bind, and how fast and how much it may send and receive.
///
/// An address rule is `CIDR[:PORT|:LO-HI][/tcp|/udp]`: `"10.0.0.0/8"`,
/// `"127.0.0.1:8080/udp"`, `"::1/128:9000-9100"` or `"[::1]:80"` (IPv6 ports
/// after a prefix or in brackets). An allow list denies everything it does
/// not list; a hook has an allow list or a deny list, not both.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct NetworkTable {
    /// Destinations `connect(2)` (and UDP `sendmsg`) may reach; all others
    /// are refused with EPERM.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) connect_allow: Leaf,
    /// Destinations `connect(2)` (and UDP `sendmsg`) may not reach.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) connect_deny: Leaf,
    /// Local addresses and ports `bind(2)` may use; all others are refused.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) bind_allow: Leaf,
    /// Local addresses and ports `bind(2)` may not use.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) bind_deny: Leaf,
    /// Sending rate limit: bits per second in tc's decimal units (`"10Mbit"`;
    /// `Kibit`... binary) or bytes per second (`"12.5MB/s"` decimal,
    /// `"10MiB/s"` binary). Packets over it are dropped.
    #[schemars(schema_with = "schema::rate")]
    pub(crate) egress_rate: Leaf,
    /// Receiving rate limit, written as `egress_rate`.
    #[schemars(schema_with = "schema::rate")]
    pub(crate) ingress_rate: Leaf,
    /// At most this many bytes sent per window: `"SIZE/WINDOW"` such as
    /// `"10G/1d"` (sizes binary as memory limits; a window of at least `1s`).
    #[schemars(schema_with = "schema::budget")]
    pub(crate) egress_budget: Leaf,
    /// At most this many bytes received per window, written as `egress_budget`.
    #[schemars(schema_with = "schema::budget")]
    pub(crate) ingress_budget: Leaf,
}

/// `[group."NAME".syscalls]`: system calls the group must not make.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct SyscallsTable {
    /// Syscall names from this architecture's table (`ptrace`, `accept4`, ...;
    /// lower case, no `sys_` prefix), each once.
    #[schemars(with = "Option<Vec<String>>")]
    pub(crate) deny: Leaf,
    /// What happens when a listed syscall is made: `"log"` (allow it, record
    /// it), `"kill"` (SIGKILL the caller before the call runs) or `"deny"`
    /// (the call fails with EPERM; only socket, connect, bind, listen, accept,
    /// accept4, execve, execveat and setsockopt, some of which need BPF-LSM).
    /// Required when `deny` lists anything.
    #[schemars(schema_with = "schema::syscall_action")]
    pub(crate) action: Leaf,
}

/// The `when` rules of a group, each with its span.
#[derive(Debug, Default)]
pub(crate) struct WhenRules(pub(crate) Vec<Sp<WhenTable>>);

impl<'de> Deserialize<'de> for WhenRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WhenRules;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an array of rules: write each rule under its own `[[group.\"NAME\".when]]` \
                     header (double brackets)",
                )
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<WhenRules, A::Error> {
                let mut rules = Vec::new();
                while let Some(rule) = seq.next_element()? {
                    rules.push(rule);
                }
                Ok(WhenRules(rules))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `[[group."NAME".when]]`: when `metric` is above (or below) a threshold for
/// `for`, run `then`; with `until`, undo what can be undone once the condition
/// has been false that long. Every firing and undo goes to the audit log.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(default)]
pub(crate) struct WhenTable {
    /// What the rule watches (required).
    #[schemars(schema_with = "schema::metric")]
    pub(crate) metric: Leaf,
    /// Fire while the metric is above this (a size such as `"1G"` for bytes, a
    /// rate such as `"50M"` or `"400Mbit"` for bytes per second, a number for
    /// counts and per-second metrics, `80` or `"80%"` for percent). One of
    /// `above` and `below` is required.
    #[schemars(schema_with = "schema::threshold")]
    pub(crate) above: Leaf,
    /// Fire while the metric is below this, written as `above`.
    #[schemars(schema_with = "schema::threshold")]
    pub(crate) below: Leaf,
    /// How long the condition must hold first, such as `"5s"` (default: the
    /// first evaluation that sees it).
    #[serde(rename = "for")]
    #[schemars(rename = "for", schema_with = "schema::duration")]
    pub(crate) hold: Leaf,
    /// What to do, in order (required; a single action may be written without
    /// brackets): `"log"`, `"kill"` (every process of the group), `"freeze"`,
    /// `"set KEY=VALUE"` (a controller file, checked as a `[group]` setting),
    /// `"throttle egress RATE"` or `"throttle ingress RATE"`.
    #[schemars(schema_with = "schema::actions")]
    pub(crate) then: Leaf,
    /// Once the condition has been false this long, undo `set` (the old value
    /// is written back), `throttle` (lifted) and `freeze` (thawed).
    #[schemars(schema_with = "schema::duration")]
    pub(crate) until: Leaf,
}
