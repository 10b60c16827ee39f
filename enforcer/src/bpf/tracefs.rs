//! tracefs: where it is (mounting it if needed) and the `oom/mark_victim`
//! record layout check.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use enforcer_common::mark_victim;

use super::BpfError;

/// Where tracefs is mounted when we mount it (the kernel's documented place).
const MOUNT_POINT: &str = "/sys/kernel/tracing";

/// Where aya looks for tracefs (in this order) when attaching a tracepoint.
const TRACEFS_DIRS: [&str; 2] = [MOUNT_POINT, "/sys/kernel/debug/tracing"];

fn is_populated(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// A tracefs directory aya will find, mounting tracefs at `/sys/kernel/tracing`
/// if none is mounted (it is not at boot on some hosts). Mounting it changes
/// nothing else: tracefs is a view of the kernel's trace events. Must run before
/// aya's first tracepoint attach in this process, which caches its lookup.
pub(super) fn ensure_tracefs(tracepoint: &'static str) -> Result<PathBuf, BpfError> {
    // Two threads finding tracefs missing at once would stack two mounts.
    static MOUNTING: Mutex<()> = Mutex::new(());
    let _guard = MOUNTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(dir) = TRACEFS_DIRS.iter().map(Path::new).find(|d| is_populated(d)) {
        return Ok(dir.to_path_buf());
    }
    let target = Path::new(MOUNT_POINT);
    nix::mount::mount(
        Some("tracefs"),
        target,
        Some("tracefs"),
        nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV
            | nix::mount::MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|errno| BpfError::Tracefs {
        tracepoint,
        source: io::Error::from(errno),
    })?;
    tracing::info!(path = %target.display(), "mounted tracefs to attach {tracepoint}");
    Ok(target.to_path_buf())
}

/// One `field:` line of a tracepoint format file.
#[derive(Debug, PartialEq, Eq)]
struct Field<'a> {
    decl: &'a str,
    offset: usize,
    size: usize,
}

/// Parses lines like
/// `\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;`.
fn fields(format: &str) -> Vec<Field<'_>> {
    format
        .lines()
        .filter_map(|line| {
            let mut decl = None;
            let mut offset = None;
            let mut size = None;
            for part in line.split(';').map(str::trim) {
                if let Some(d) = part.strip_prefix("field:") {
                    decl = Some(d.trim());
                } else if let Some(o) = part.strip_prefix("offset:") {
                    offset = o.trim().parse().ok();
                } else if let Some(s) = part.strip_prefix("size:") {
                    size = s.trim().parse().ok();
                }
            }
            Some(Field {
                decl: decl?,
                offset: offset?,
                size: size?,
            })
        })
        .collect()
}

/// Checks a `mark_victim` format against the offsets `oom_kill` hard-codes.
fn check_mark_victim_format(format: &str) -> Result<(), String> {
    let fields = fields(format);
    let find = |name: &str| {
        fields
            .iter()
            .find(|f| f.decl.rsplit(' ').next() == Some(name))
    };
    match find("pid") {
        Some(f) if f.offset == mark_victim::PID_OFFSET && f.size == 4 => {}
        Some(f) => {
            return Err(format!(
                "pid is at offset {} size {}, expected offset {} size 4",
                f.offset,
                f.size,
                mark_victim::PID_OFFSET
            ));
        }
        None => return Err("no pid field".into()),
    }
    match find("comm") {
        Some(f)
            if f.decl.starts_with("__data_loc")
                && f.offset == mark_victim::COMM_LOC_OFFSET
                && f.size == 4 => {}
        Some(f) => {
            return Err(format!(
                "comm is `{}` at offset {} size {}, expected `__data_loc char[] comm` at offset {} size 4",
                f.decl,
                f.offset,
                f.size,
                mark_victim::COMM_LOC_OFFSET
            ));
        }
        None => return Err("no comm field".into()),
    }
    Ok(())
}

fn check_cgroup_rmdir_format(format: &str) -> Result<(), String> {
    use enforcer_common::cgroup_rmdir as r;
    let fields = fields(format);
    for (name, offset, size) in [
        ("root", r::ROOT_OFFSET, 4),
        ("level", r::LEVEL_OFFSET, 4),
        ("id", r::ID_OFFSET, 8),
    ] {
        match fields
            .iter()
            .find(|f| f.decl.rsplit(' ').next() == Some(name))
        {
            Some(f) if f.offset == offset && f.size == size => {}
            Some(f) => {
                return Err(format!(
                    "{name} is at offset {} size {}, expected offset {offset} size {size}",
                    f.offset, f.size
                ));
            }
            None => return Err(format!("no {name} field")),
        }
    }
    Ok(())
}

/// Reads `<tracefs>/events/cgroup/cgroup_rmdir/format` and checks it.
pub(super) fn check_cgroup_rmdir(tracefs: &Path) -> Result<(), BpfError> {
    const TRACEPOINT: &str = "cgroup/cgroup_rmdir";
    let path = tracefs.join("events/cgroup/cgroup_rmdir/format");
    let format = fs::read_to_string(&path).map_err(|e| BpfError::TracepointLayout {
        tracepoint: TRACEPOINT,
        format: path.clone(),
        detail: format!("cannot read the format file: {e}"),
    })?;
    check_cgroup_rmdir_format(&format).map_err(|detail| BpfError::TracepointLayout {
        tracepoint: TRACEPOINT,
        format: path,
        detail,
    })
}

/// Reads `<tracefs>/events/oom/mark_victim/format` and checks it.
pub(super) fn check_mark_victim(tracefs: &Path) -> Result<(), BpfError> {
    const TRACEPOINT: &str = "oom/mark_victim";
    let path = tracefs.join("events/oom/mark_victim/format");
    let format = fs::read_to_string(&path).map_err(|e| BpfError::TracepointLayout {
        tracepoint: TRACEPOINT,
        format: path.clone(),
        detail: format!("cannot read the format file: {e}"),
    })?;
    check_mark_victim_format(&format).map_err(|detail| BpfError::TracepointLayout {
        tracepoint: TRACEPOINT,
        format: path,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/sys/kernel/tracing/events/cgroup/cgroup_rmdir/format` on Linux 6.18.
    const RMDIR_6_18: &str = "name: cgroup_rmdir
ID: 543
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int root;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int level;\toffset:12;\tsize:4;\tsigned:1;
\tfield:u64 id;\toffset:16;\tsize:8;\tsigned:0;
\tfield:__data_loc char[] path;\toffset:24;\tsize:4;\tsigned:0;
";

    #[test]
    fn cgroup_rmdir_layout_is_checked() {
        assert_eq!(check_cgroup_rmdir_format(RMDIR_6_18), Ok(()));
        let old = RMDIR_6_18.replace(
            "field:u64 id;\toffset:16;\tsize:8",
            "field:int id;\toffset:16;\tsize:4",
        );
        assert!(check_cgroup_rmdir_format(&old).unwrap_err().contains("id"));
    }

    /// `/sys/kernel/tracing/events/oom/mark_victim/format` on Linux 6.18.
    const FORMAT_6_18: &str = "name: mark_victim
ID: 609
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;
\tfield:__data_loc char[] comm;\toffset:12;\tsize:4;\tsigned:0;
\tfield:unsigned long total_vm;\toffset:16;\tsize:8;\tsigned:0;
\tfield:uid_t uid;\toffset:48;\tsize:4;\tsigned:0;

print fmt: \"pid=%d comm=%s\", REC->pid, __get_str(comm)
";

    #[test]
    fn accepts_the_6_18_layout() {
        assert_eq!(check_mark_victim_format(FORMAT_6_18), Ok(()));
    }

    #[test]
    fn rejects_other_layouts() {
        // Before Linux 6.1 the record had only the pid.
        let old = "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\tfield:int pid;\toffset:8;\tsize:4;\tsigned:1;\n";
        assert_eq!(
            check_mark_victim_format(old),
            Err("no comm field".to_string())
        );
        let moved = FORMAT_6_18.replace("pid;\toffset:8;", "pid;\toffset:16;");
        assert!(check_mark_victim_format(&moved).is_err());
    }
}
