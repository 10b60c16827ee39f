//! Property tests for the control plane's input parsers (group paths and specs,
//! sizes, CPU lists, owners, keys and their values, the kernel's own mountinfo
//! and /proc/PID/cgroup text). Validating whole policies against a fake host
//! is tested with the fuzz entry points (`fuzzing/proptests.rs`).

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;

use super::keys::{self, HostFacts};
use super::mounts::{self, Version, parse_mountinfo};
use super::*;
use crate::units::{Size, format_list, parse_limit, parse_list};

/// Lines shaped like mountinfo and /proc/PID/cgroup, with noise.
fn kernel_text_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[0-9]{1,3} [0-9]{1,3} 0:[0-9]{1,2} / /sys/fs/cgroup/[a-z]{1,8}(\\\\040x)? rw - cgroup(2)? cgroup rw(,cpu|,memory|,name=systemd|,xattr){0,3}",
        "[0-9]{1,2}:(cpu|memory|name=systemd|cpu,cpuacct|)?:/[a-z/]{0,12}",
        "[ -~]{0,30}",
    ];
    prop::collection::vec(line, 0..8).prop_map(|ls| ls.join("\n"))
}

/// Text shaped like group paths: path characters, dots, and control-file names.
fn path_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-z0-9._-]{0,12}",
            select(
                &[
                    "..",
                    ".",
                    "",
                    "memory.max",
                    "cgroup.procs",
                    "tasks",
                    "io.x",
                    "ü",
                    " "
                ][..]
            )
            .prop_map(str::to_owned),
        ],
        0..6,
    )
    .prop_map(|parts| parts.join("/"))
}

fn facts() -> HostFacts {
    HostFacts {
        online_cpus: vec![0, 1],
        online_mems: vec![0],
        page_size: 4096,
    }
}

/// Every key with a translation of its own, and a few that pass through.
fn key_like() -> impl Strategy<Value = String> {
    let mut keys: Vec<&str> = keys::TRANSLATED_KEYS.to_vec();
    keys.extend([
        "memory.swappiness",
        "cgroup.procs",
        "tasks",
        "nodot",
        ".x",
        "io.",
    ]);
    prop_oneof![select(keys).prop_map(str::to_owned), any::<String>()]
}

fn value_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(default )?[-+ ]?[0-9]{0,22}[ ]?([kKmMgGtTpPeE]i?[bB]?|max)?( [0-9]{0,9})?",
        "[0-9]{0,6}(-[0-9]{0,6})?(,[0-9]{0,6}(-[0-9]{0,6})?){0,3}",
    ]
}

proptest! {
    #[test]
    fn group_paths_never_escape_the_hierarchy(text in prop_oneof![any::<String>(), path_like()]) {
        let mount = Path::new("/sys/fs/cgroup/memory");
        if let Ok(p) = GroupPath::parse(&text) {
            let dir = p.dir_in(mount);
            prop_assert!(dir.starts_with(mount), "{:?} -> {}", text, dir.display());
            for comp in p.as_str().split('/').filter(|c| !c.is_empty()) {
                prop_assert!(comp != "." && comp != "..", "{:?}", text);
                prop_assert!(
                    comp.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
                    "{:?}", text
                );
                prop_assert!(GroupPath::parse(comp).is_ok());
            }
            // The printed form reads back as the same group.
            prop_assert_eq!(GroupPath::parse(&p.to_string()).unwrap(), p.clone());
            for a in p.ancestors() {
                prop_assert!(p.as_str().starts_with(a.as_str()));
            }
        }
        let _ = GroupSpec::parse(&text);
        let _ = GroupSpec::parse(&format!("memory,cpu:{text}"));
    }

    #[test]
    fn sizes_and_lists_take_any_text(text in any::<String>()) {
        let _ = parse_limit(&text);
        if let Ok(list) = parse_list(&text) {
            // Sorted, deduplicated, and its kernel spelling reads back the same.
            prop_assert!(list.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(parse_list(&format_list(&list)), Ok(list));
        }
    }

    #[test]
    fn cpu_lists_read_back(mut cpus in prop::collection::vec(0u32..300, 0..40)) {
        cpus.sort_unstable();
        cpus.dedup();
        prop_assert_eq!(parse_list(&format_list(&cpus)), Ok(cpus));
    }

    #[test]
    fn sizes_read_back(n in 0u64..(1 << 40), unit in 0usize..5) {
        let (suffix, shift) = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40)][unit];
        let want = n.checked_mul(1 << shift).map(Size::Bytes);
        prop_assert_eq!(parse_limit(&format!("{n}{suffix}")).ok(), want);
    }

    #[test]
    fn owners_take_any_text(text in prop_oneof![any::<String>(), "[a-z0-9]{0,8}:[a-z0-9]{0,8}"]) {
        if let Ok((uid, gid)) = parse_owner(&text) {
            // Numbers are taken as they are.
            if let Some((u, g)) = text.split_once(':')
                && let (Ok(u), Ok(g)) = (u.parse::<u32>(), g.parse::<u32>())
            {
                prop_assert_eq!((uid.as_raw(), gid.as_raw()), (u, g));
            }
        }
    }

    #[test]
    fn every_key_takes_any_value(
        key in key_like(),
        value in value_like(),
    ) {
        for version in [Version::V1, Version::V2] {
            if let Ok(t) = keys::translate(&key, &value, version, &facts()) {
                prop_assert!(!t.writes.is_empty());
                for w in &t.writes {
                    prop_assert!(!w.file.is_empty());
                }
            }
            let _ = keys::read_files_for(&key, version);
        }
    }

    #[test]
    fn kernel_text_readers_take_any_text(
        text in prop_oneof![any::<String>(), kernel_text_like()]
    ) {
        // Each mount found is a cgroup line of the text, its mount point that
        // line's fifth field (unescaped), its v1 controllers among its options.
        // A mount point may be mounted over, so several lines can name it:
        // one of them must carry the controllers.
        for m in parse_mountinfo(&text) {
            let lines: Vec<&str> = text.lines().filter(|l| {
                let (pre, post) = l.split_once(" - ").unwrap_or(("", ""));
                pre.split(' ').nth(4).map(mounts::unescape).as_deref()
                    == m.mount_point.to_str()
                    && post.split(' ').next() == Some(if m.version == Version::V1 { "cgroup" } else { "cgroup2" })
            }).collect();
            prop_assert!(!lines.is_empty(), "{:?} from {:?}", m.mount_point, text);
            prop_assert!(
                lines.iter().any(|l| m.v1_controllers.iter().all(|c| l.contains(c.as_str()))),
                "{:?} not in one of {:?}", m.v1_controllers, lines
            );
        }
        // Each membership is a line of the text; ps's form lists exactly the
        // ones not at the root.
        let members = parse_proc_cgroup(&text);
        let lines: Vec<&str> = text.lines().collect();
        for m in &members {
            let tail = format!(":{}:{}", m.controllers, m.path);
            prop_assert!(
                lines.iter().any(|l| l.ends_with(&tail)
                    && l.split(':').next().and_then(|n| n.parse().ok()) == Some(m.hierarchy_id)),
                "{:?} not in {:?}", m, text
            );
        }
        let ps = ps_format(&members);
        let shown = members.iter().filter(|m| m.path != "/").count();
        if shown == 0 {
            prop_assert_eq!(ps, "-");
        } else {
            prop_assert!(ps.split(',').count() >= shown, "{} for {:?}", ps, members);
        }
    }

    /// What the fuzz target `values` checks, on text shaped like values.
    #[test]
    fn value_parsers_hold_their_invariants(
        text in prop_oneof![any::<String>(), value_like(), path_like()],
        key in key_like(),
    ) {
        super::run_value_parsers(&text);
        super::run_value_parsers(&format!("{key}={text}"));
    }
}
