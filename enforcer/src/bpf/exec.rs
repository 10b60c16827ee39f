//! Exec classification's kernel side, as userspace sees it: load
//! `classify_exec` and `classify_fork` (`enforcer-ebpf/src/exec.rs`), tell
//! them which execs to report, keep the sticky processes, read the events.
//!
//! Nothing here is pinned: the programs, their links and maps belong to the
//! process that classifies (the agent or `cgrulesengd`) and go when it does,
//! so a stopped rules engine leaves nothing attached and nothing held.

use std::collections::BTreeSet;
use std::os::fd::{AsFd as _, AsRawFd as _, RawFd};

use aya::Ebpf;
use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::TracePoint;
use enforcer_common::exec::{ExecEvent, ExecName, STICKY_CHILDREN, exec_conf, exec_stats};

use super::btf::member_offset;
use super::layout::EXEC_PROGRAMS;
use super::object::{LogReader, load};
use super::tracefs::ensure_tracefs;

/// What could not be set up or changed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("loading the eBPF object for exec classification: {0}")]
    Load(#[source] Box<super::BpfError>),
    #[error(
        "the eBPF object has no {0}: the binary was built without exec classification; rebuild it"
    )]
    Missing(&'static str),
    #[error("loading {name} into the kernel: {source} (see `enforcer status`)")]
    Program {
        name: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("updating {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error(
        "tracepoint task/task_newtask has an unexpected layout on this kernel ({0}); \
         sticky children cannot be followed, so exec classification is refused"
    )]
    Layout(String),
}

/// Which execs the kernel reports: those of these effective users or
/// groups, of programs with these base names, or every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecFilter {
    pub match_all: bool,
    pub uids: BTreeSet<u32>,
    pub gids: BTreeSet<u32>,
    /// Base names (cut to 15 bytes by the kernel's rules for comms).
    pub names: BTreeSet<Vec<u8>>,
}

/// The kernel program's counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecStats {
    pub seen: u64,
    pub reported: u64,
    pub lost: u64,
    pub sticky: u64,
    /// New processes of pending ones that could not be marked pending.
    pub pending_lost: u64,
}

/// The loaded and attached exec programs.
pub struct ExecWatch {
    ebpf: Ebpf,
    _logs: Option<LogReader>,
    events: RingBuf<MapData>,
    filter: ExecFilter,
}

impl std::fmt::Debug for ExecWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecWatch")
            .field("filter", &self.filter)
            .finish()
    }
}

/// `task_newtask`'s `pid` and `clone_flags` offsets as the program assumes.
fn check_newtask(tracefs: &std::path::Path) -> Result<(), ExecError> {
    let path = tracefs.join("events/task/task_newtask/format");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ExecError::Layout(format!("{}: {e}", path.display())))?;
    newtask_layout_ok(&text)
}

/// Whether the `sched_process_exec` record has `filename` where the program
/// reads it; if not, events carry no path (a script is then matched by its
/// interpreter) rather than classification being refused.
fn process_exec_layout_ok(tracefs: &std::path::Path) -> bool {
    let path = tracefs.join("events/sched/sched_process_exec/format");
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines().any(|l| {
            l.contains("__data_loc char[] filename;")
                && l.contains(&format!(
                    "offset:{};",
                    enforcer_common::exec::process_exec::FILENAME_OFFSET
                ))
                && l.contains("size:4;")
        })
    })
}

/// Whether a `task_newtask` format has `pid` (4 bytes) at 8 and
/// `clone_flags` (8 bytes) at 32. The field's declared type is not
/// compared: 6.1 declares `unsigned long clone_flags`, later kernels
/// `u64 clone_flags`, the same 8 bytes on x86-64.
fn newtask_layout_ok(text: &str) -> Result<(), ExecError> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let mut decl = None;
            let (mut offset, mut size) = (None, None);
            for part in l.split(';').map(str::trim) {
                if let Some(d) = part.strip_prefix("field:") {
                    decl = d.rsplit(' ').next();
                } else if let Some(o) = part.strip_prefix("offset:") {
                    offset = o.parse::<usize>().ok();
                } else if let Some(s) = part.strip_prefix("size:") {
                    size = s.parse::<usize>().ok();
                }
            }
            (decl == Some(name)).then_some((offset, size))
        })
    };
    if field("pid") == Some((Some(8), Some(4))) && field("clone_flags") == Some((Some(32), Some(8)))
    {
        Ok(())
    } else {
        Err(ExecError::Layout(
            "expected a 4-byte pid at 8 and an 8-byte clone_flags at 32".into(),
        ))
    }
}

/// The kernel structure offsets the program follows, from the running
/// kernel's BTF: `(index, offset)` pairs; missing ones stay 0 (unused).
fn btf_offsets() -> Vec<(u32, u64)> {
    let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        return Vec::new();
    };
    let off = |s: &str, m: &str| member_offset(&btf, s, m).map(u64::from);
    let mut out = Vec::new();
    if let (Some(cred), Some(euid), Some(egid)) = (
        off("task_struct", "cred"),
        off("cred", "euid"),
        off("cred", "egid"),
    ) {
        out.extend([
            (exec_conf::OFF_TASK_CRED, cred),
            (exec_conf::OFF_CRED_EUID, euid),
            (exec_conf::OFF_CRED_EGID, egid),
        ]);
    }
    if let (Some(mm), Some(exe), Some(fpath), Some(dentry), Some(dname), Some(qname)) = (
        off("task_struct", "mm"),
        off("mm_struct", "exe_file"),
        off("file", "f_path"),
        off("path", "dentry"),
        off("dentry", "d_name"),
        off("qstr", "name"),
    ) {
        out.extend([
            (exec_conf::OFF_TASK_MM, mm),
            (exec_conf::OFF_MM_EXE, exe),
            (exec_conf::OFF_FILE_DENTRY, fpath + dentry),
            (exec_conf::OFF_DENTRY_NAME, dname + qname),
        ]);
    }
    out
}

fn map_err(map: &'static str) -> impl Fn(aya::maps::MapError) -> ExecError {
    move |source| ExecError::Map {
        map,
        source: Box::new(source),
    }
}

fn prog_err(name: &'static str) -> impl Fn(aya::programs::ProgramError) -> ExecError {
    move |source| ExecError::Program {
        name,
        source: Box::new(source),
    }
}

impl ExecWatch {
    /// Load and attach the programs, reporting nothing until [`Self::set_filter`].
    pub fn open(hold: bool) -> Result<Self, ExecError> {
        let (mut ebpf, logs) = load(None).map_err(|e| ExecError::Load(Box::new(e)))?;
        let tracefs =
            ensure_tracefs("sched/sched_process_exec").map_err(|e| ExecError::Load(Box::new(e)))?;
        check_newtask(&tracefs)?;
        {
            let mut conf: Array<&mut MapData, u64> = Array::try_from(
                ebpf.map_mut("EXEC_CONF")
                    .ok_or(ExecError::Missing("EXEC_CONF"))?,
            )
            .map_err(map_err("EXEC_CONF"))?;
            for (i, v) in btf_offsets() {
                conf.set(i, v, 0).map_err(map_err("EXEC_CONF"))?;
            }
            conf.set(exec_conf::HOLD, u64::from(hold), 0)
                .map_err(map_err("EXEC_CONF"))?;
            conf.set(
                exec_conf::PATH_OK,
                u64::from(process_exec_layout_ok(&tracefs)),
                0,
            )
            .map_err(map_err("EXEC_CONF"))?;
        }
        for spec in EXEC_PROGRAMS {
            let super::layout::Hook::Tracepoint(category, name) = spec.hook else {
                continue;
            };
            let p: &mut TracePoint = ebpf
                .program_mut(spec.name)
                .ok_or(ExecError::Missing(spec.name))?
                .try_into()
                .map_err(prog_err(spec.name))?;
            p.load().map_err(prog_err(spec.name))?;
            p.attach(category, name).map_err(prog_err(spec.name))?;
        }
        let events = RingBuf::try_from(
            ebpf.take_map("EXEC_EVENTS")
                .ok_or(ExecError::Missing("EXEC_EVENTS"))?,
        )
        .map_err(map_err("EXEC_EVENTS"))?;
        Ok(ExecWatch {
            ebpf,
            _logs: logs,
            events,
            filter: ExecFilter::default(),
        })
    }

    fn conf(&mut self) -> Result<Array<&mut MapData, u64>, ExecError> {
        Array::try_from(
            self.ebpf
                .map_mut("EXEC_CONF")
                .ok_or(ExecError::Missing("EXEC_CONF"))?,
        )
        .map_err(map_err("EXEC_CONF"))
    }

    /// Report the execs `f` describes from now on (the old filter's keys are
    /// removed, the new ones added, then reporting is switched on).
    pub fn set_filter(&mut self, f: &ExecFilter) -> Result<(), ExecError> {
        fn sync<K: aya::Pod + Ord + Copy>(
            ebpf: &mut Ebpf,
            name: &'static str,
            old: &BTreeSet<K>,
            new: &BTreeSet<K>,
        ) -> Result<(), ExecError> {
            let mut m: HashMap<&mut MapData, K, u8> =
                HashMap::try_from(ebpf.map_mut(name).ok_or(ExecError::Missing(name))?)
                    .map_err(map_err(name))?;
            for k in old.difference(new) {
                let _ = m.remove(k);
            }
            for k in new.difference(old) {
                m.insert(k, 1, 0).map_err(map_err(name))?;
            }
            Ok(())
        }
        let names = |s: &BTreeSet<Vec<u8>>| -> BTreeSet<[u8; 16]> {
            s.iter().map(|n| ExecName::from_name(n).name).collect()
        };
        let old = std::mem::take(&mut self.filter);
        sync(&mut self.ebpf, "EXEC_UIDS", &old.uids, &f.uids)?;
        sync(&mut self.ebpf, "EXEC_GIDS", &old.gids, &f.gids)?;
        sync(
            &mut self.ebpf,
            "EXEC_NAMES",
            &names(&old.names),
            &names(&f.names),
        )?;
        let mut conf = self.conf()?;
        conf.set(exec_conf::MATCH_ALL, u64::from(f.match_all), 0)
            .map_err(map_err("EXEC_CONF"))?;
        conf.set(exec_conf::ENABLED, 1, 0)
            .map_err(map_err("EXEC_CONF"))?;
        self.filter = f.clone();
        Ok(())
    }

    /// Stop (or resume) reporting, keeping the filter.
    pub fn set_enabled(&mut self, on: bool) -> Result<(), ExecError> {
        self.conf()?
            .set(exec_conf::ENABLED, u64::from(on), 0)
            .map_err(map_err("EXEC_CONF"))
    }

    fn sticky_map(&mut self) -> Result<HashMap<&mut MapData, u32, u32>, ExecError> {
        HashMap::try_from(
            self.ebpf
                .map_mut("EXEC_STICKY")
                .ok_or(ExecError::Missing("EXEC_STICKY"))?,
        )
        .map_err(map_err("EXEC_STICKY"))
    }

    /// Leave `pid` where it is on exec (and its future children, with `children`).
    pub fn add_sticky(&mut self, pid: u32, children: bool) -> Result<(), ExecError> {
        let flags = if children { STICKY_CHILDREN } else { 0 };
        self.sticky_map()?
            .insert(pid, flags, 0)
            .map_err(map_err("EXEC_STICKY"))
    }

    pub fn remove_sticky(&mut self, pid: u32) -> Result<(), ExecError> {
        let _ = self.sticky_map()?.remove(&pid);
        Ok(())
    }

    /// The sticky pids (for pruning those that exited).
    pub fn sticky(&mut self) -> Result<Vec<u32>, ExecError> {
        Ok(self.sticky_map()?.keys().filter_map(Result::ok).collect())
    }

    fn pending_map(&mut self) -> Result<HashMap<&mut MapData, u32, u32>, ExecError> {
        HashMap::try_from(
            self.ebpf
                .map_mut("EXEC_PENDING")
                .ok_or(ExecError::Missing("EXEC_PENDING"))?,
        )
        .map_err(map_err("EXEC_PENDING"))
    }

    /// Processes reported at exec and their descendants not yet released:
    /// `(pid, root)`, root being the reported process each descends from
    /// (itself for a reported one).
    pub fn pending(&mut self) -> Result<Vec<(u32, u32)>, ExecError> {
        Ok(self.pending_map()?.iter().filter_map(Result::ok).collect())
    }

    /// Stop following these processes' descendants.
    pub fn release_pending(&mut self, pids: &[u32]) -> Result<(), ExecError> {
        let mut m = self.pending_map()?;
        for p in pids {
            let _ = m.remove(p);
        }
        Ok(())
    }

    /// The ring buffer's fd, readable when events are waiting.
    pub fn as_raw_fd(&self) -> RawFd {
        self.events.as_fd().as_raw_fd()
    }

    /// Move every waiting event into `out`.
    pub fn read_events(&mut self, out: &mut Vec<ExecEvent>) {
        while let Some(item) = self.events.next() {
            if item.len() >= std::mem::size_of::<ExecEvent>() {
                // SAFETY: the kernel wrote an ExecEvent (its size, checked
                // above); read_unaligned copes with any alignment.
                out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ExecEvent>()) });
            }
        }
    }

    /// The program's counters.
    pub fn stats(&mut self) -> ExecStats {
        let Some(map) = self.ebpf.map_mut("EXEC_STATS") else {
            return ExecStats::default();
        };
        let Ok(a) = PerCpuArray::<&mut MapData, u64>::try_from(map) else {
            return ExecStats::default();
        };
        let sum = |i: u32| a.get(&i, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
        ExecStats {
            seen: sum(exec_stats::SEEN),
            reported: sum(exec_stats::REPORTED),
            lost: sum(exec_stats::LOST),
            sticky: sum(exec_stats::STICKY),
            pending_lost: sum(exec_stats::PENDING_LOST),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::newtask_layout_ok;

    const FORMAT_6_12: &str = "name: task_newtask
format:
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:pid_t pid;\toffset:8;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:12;\tsize:16;\tsigned:0;
\tfield:u64 clone_flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:short oom_score_adj;\toffset:40;\tsize:2;\tsigned:1;
";

    /// Debian 12's 6.1 declares the same 8 bytes as `unsigned long`: exec
    /// classification was refused there for the spelling.
    #[test]
    fn the_6_1_spelling_of_clone_flags_is_accepted() {
        assert!(newtask_layout_ok(FORMAT_6_12).is_ok());
        let v61 = FORMAT_6_12.replace("u64 clone_flags", "unsigned long clone_flags");
        assert!(newtask_layout_ok(&v61).is_ok());
    }

    #[test]
    fn another_offset_or_size_is_refused() {
        let moved = FORMAT_6_12.replace("offset:32;\tsize:8", "offset:40;\tsize:8");
        assert!(newtask_layout_ok(&moved).is_err());
        let narrow = FORMAT_6_12.replace("offset:32;\tsize:8", "offset:32;\tsize:4");
        assert!(newtask_layout_ok(&narrow).is_err());
        let pidless = FORMAT_6_12.replace("pid_t pid;", "pid_t tid;");
        assert!(newtask_layout_ok(&pidless).is_err());
    }
}
