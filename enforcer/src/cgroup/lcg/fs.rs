//! How libcgroup reads and writes cgroupfs, kept exact where the tools'
//! output depends on it: `cgget -r` reads with `fgets` into 100-byte buffers
//! (a longer line is shown in 99-byte pieces), `cgget -g` reads the whole
//! file (4095 bytes at most) and indents every further line, directory
//! entries come in the kernel's order (never sorted), and a write sends each
//! line of a value with its own `write(2)`.

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use super::error::{Ecg, LcgError};
use super::model::{Controller, Group, VALUE_MAX};
use super::table::{CgVersion, Table};

/// `fgets(buf, 100, fp)` over `text`: pieces of at most 99 bytes, each ending
/// at a newline or at the limit, newline removed.
fn fgets_pieces(text: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let limit = rest.len().min(99);
        let end = rest[..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(limit, |i| i + 1);
        let piece = &rest[..end];
        let cut = piece
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(piece.len());
        out.push(String::from_utf8_lossy(&piece[..cut]).into_owned());
        rest = &rest[end..];
    }
    out
}

/// `cgget -r`'s read of one value (`get_cv_value`): the value and, if it
/// spans more than one `fgets` piece, its `"\n\t"`-joined display form.
pub(crate) fn read_value_lines(
    table: &Table,
    group: &str,
    controller: &str,
    file: &str,
) -> Result<(String, Option<String>), LcgError> {
    let dir = table
        .group_dir(group, controller)
        .ok_or(LcgError::errno(0))?;
    if table.is_mirror(&dir) {
        return Err(LcgError::errno(libc::ENOENT));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join(file))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| LcgError::os(&e))?;
    let pieces = fgets_pieces(&bytes);
    match pieces.len() {
        0 => Ok((String::new(), None)),
        1 => Ok((pieces[0].clone(), None)),
        _ => Ok((String::new(), Some(pieces.join("\n\t")))),
    }
}

/// `cg_rd_ctrl_file`: at most 4095 bytes, one trailing newline removed.
/// None if the file cannot be opened (`ECGROUPVALUENOTEXIST`).
fn read_whole(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    let _ = f.by_ref().take(VALUE_MAX as u64).read_to_end(&mut buf);
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    // fread stops at nothing, but the C string stops at the first NUL.
    if let Some(nul) = buf.iter().position(|&b| b == 0) {
        buf.truncate(nul);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Regular files of a directory in the kernel's readdir order.
pub(crate) fn dir_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type().is_ok_and(|t| t.is_file()) {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// Subdirectories in readdir order.
pub(crate) fn dir_subdirs(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The groups under `dir` (itself first) in the order `fts_read` visits
/// them (pre-order, children in readdir order), as paths relative to `dir`
/// ("" for `dir` itself).
pub(crate) fn walk_preorder(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn rec(dir: &Path, rel: &str, out: &mut Vec<String>) {
        out.push(rel.to_string());
        for d in dir_subdirs(dir) {
            let r = if rel.is_empty() {
                d.clone()
            } else {
                format!("{rel}/{d}")
            };
            rec(&dir.join(&d), &r, out);
        }
    }
    rec(dir, "", &mut out);
    out
}

/// `cgroup_fill_cgc` for one file: `Ok(None)` for a file of another
/// controller, the value otherwise. The error is what the C returns for the
/// file (the last file's result is the caller's result).
fn fill_one(dir: &Path, file: &str, controller: &str) -> Result<Option<String>, Ecg> {
    if std::fs::metadata(dir.join(file)).is_err() {
        return Err(Ecg::Fail);
    }
    let mut parts = file.split('.').filter(|p| !p.is_empty());
    let Some(prefix) = parts.next() else {
        return Err(Ecg::Fail);
    };
    if parts.next().is_none() {
        return Err(Ecg::Inval);
    }
    if prefix != controller {
        return Ok(None);
    }
    match read_whole(&dir.join(file)) {
        Some(v) => Ok(Some(v)),
        None => Err(Ecg::ValueNotExist),
    }
}

/// Fill `ctl` with every file of its controller in `dir`, as
/// `cgroup_get_cgroup` and cgget's `fill_empty_controller` do. `indent`:
/// cgget's display form for multi-line values. Returns the result of the
/// last file, as the C does (`Fail` stops at once).
pub(crate) fn fill_controller(
    dir: &Path,
    ctl: &mut Controller,
    indent: bool,
) -> Result<(), LcgError> {
    let files = dir_files(dir).map_err(|e| LcgError::os(&e))?;
    let mut last: Result<(), LcgError> = Ok(());
    for f in files {
        last = match fill_one(dir, &f, &ctl.name) {
            Ok(None) => Ok(()),
            Ok(Some(v)) => match ctl.add_value(&f, Some(&v)) {
                Ok(()) => {
                    if let Some(val) = ctl.values.last_mut() {
                        val.dirty = false;
                        if indent && val.value.contains('\n') {
                            val.multiline = Some(indent_lines(&val.value));
                        }
                    }
                    Ok(())
                }
                Err(_) => return Err(LcgError::new(Ecg::Fail)),
            },
            Err(Ecg::Fail) => return Err(LcgError::new(Ecg::Fail)),
            Err(code) => Err(LcgError::new(code)),
        };
    }
    last
}

/// `indent_multiline_value`: lines (empty ones dropped, as strtok does)
/// joined by `"\n\t"`.
pub(crate) fn indent_lines(v: &str) -> String {
    let mut s: String = v
        .split('\n')
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n\t");
    s.truncate(VALUE_MAX);
    s
}

/// `cgroup_get_cgroup`: every controller of the table the group exists in
/// (or only those already in `g`), with all their values. cgroup v2
/// controllers not enabled for the group are skipped when listing all.
pub(crate) fn get_cgroup(table: &Table, g: &mut Group) -> Result<(), LcgError> {
    let wanted: Vec<String> = g.controllers.iter().map(|c| c.name.clone()).collect();
    let mut count = 0;
    let mut found: Vec<Controller> = Vec::new();
    for e in &table.entries {
        if !wanted.is_empty() && !wanted.contains(&e.name) {
            continue;
        }
        let dir = super::table::join_group(&e.path, &g.name);
        if !dir.exists() || table.is_mirror(&dir) {
            continue;
        }
        if e.version == CgVersion::V1 {
            std::fs::metadata(dir.join("tasks")).map_err(|err| LcgError::os(&err))?;
        } else if e.name != super::table::CGRP_PSEUDO
            && !v2_listed(&dir, &e.name)
            && wanted.is_empty()
        {
            // Not enabled for this group: hidden unless asked for by name.
            count += 1;
            continue;
        }
        let mut ctl = match g.controller(&e.name) {
            Some(c) => c.clone(),
            None => Controller {
                name: e.name.clone(),
                version: e.version,
                values: Vec::new(),
            },
        };
        count += 1;
        let files = dir_files(&dir).map_err(|err| LcgError::os(&err))?;
        for f in files {
            match fill_one(&dir, &f, &ctl.name) {
                Ok(Some(v)) if ctl.add_value(&f, Some(&v)).is_err() => {
                    return Err(LcgError::new(Ecg::Fail));
                }
                Err(Ecg::Fail) => return Err(LcgError::new(Ecg::Fail)),
                _ => {}
            }
        }
        for v in &mut ctl.values {
            v.dirty = false;
        }
        if ctl.name == "memory" {
            let memsw = ctl
                .values
                .iter()
                .position(|v| v.name == "memory.memsw.limit_in_bytes");
            let mem = ctl
                .values
                .iter()
                .position(|v| v.name == "memory.limit_in_bytes");
            if let (Some(a), Some(b)) = (memsw, mem)
                && a < b
            {
                ctl.values.swap(a, b);
            }
        }
        found.push(ctl);
    }
    if count == 0 {
        g.controllers.clear();
        return Err(LcgError::new(Ecg::NotExist));
    }
    g.controllers = found;
    Ok(())
}

/// Whether a cgroup v2 controller is listed in the group's `cgroup.controllers`.
fn v2_listed(dir: &Path, controller: &str) -> bool {
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().any(|c| c == controller))
        .unwrap_or(false)
}

/// `cg_set_control_value`: each line of `value` written with its own
/// `write(2)` to the opened file.
pub(crate) fn set_control_value(path: &Path, value: &str) -> Result<(), LcgError> {
    use std::io::Write as _;
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            let tasks = path.with_file_name("tasks");
            return Err(match std::fs::File::open(&tasks) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    LcgError::new(Ecg::SubsysNotMounted)
                }
                _ => LcgError::new(Ecg::NotAllowed),
            });
        }
        Err(_) => return Err(LcgError::new(Ecg::ValueNotExist)),
    };
    for line in value.split('\n') {
        if !line.is_empty() {
            f.write(line.as_bytes()).map_err(|e| LcgError::os(&e))?;
        }
    }
    Ok(())
}

/// `cgroup_set_values_recursive`: write the controller's (dirty) values
/// into `dir`, skipping multi-line and read-only ones and ignoring
/// EOPNOTSUPP (deprecated files).
pub(crate) fn set_values(
    dir: &Path,
    ctl: &mut Controller,
    only_dirty: bool,
) -> Result<(), LcgError> {
    for v in &mut ctl.values {
        if only_dirty && !v.dirty {
            continue;
        }
        // strcspn(value, "\n") < strlen(value) - 1: a newline before the last byte.
        if v.value.len() >= 2 && v.value[..v.value.len() - 1].contains('\n') {
            continue;
        }
        let path = dir.join(&v.name);
        let md = std::fs::metadata(&path).map_err(|e| LcgError {
            code: Ecg::ValueNotExist,
            errno: e.raw_os_error().unwrap_or(0),
        })?;
        if md.mode() & 0o200 == 0 {
            continue;
        }
        match set_control_value(&path, &v.value) {
            Ok(()) => v.dirty = false,
            Err(e) if e.code == Ecg::Other && e.errno == libc::EOPNOTSUPP => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `cgroup_modify_cgroup`: write the group's dirty values.
pub(crate) fn modify_cgroup(table: &Table, g: &mut Group) -> Result<(), LcgError> {
    if g.controllers.iter().any(|c| !table.subsys_mounted(&c.name)) {
        return Err(LcgError::new(Ecg::SubsysNotMounted));
    }
    let name = g.name.clone();
    for c in &mut g.controllers {
        let Some(dir) = table.group_dir(&name, &c.name) else {
            continue;
        };
        if table.is_mirror(&dir) {
            return Err(LcgError::new(Ecg::ValueNotExist));
        }
        set_values(&dir, c, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fgets_splits_long_lines_at_99_bytes() {
        assert_eq!(fgets_pieces(b"a\nb\n"), vec!["a", "b"]);
        assert_eq!(fgets_pieces(b"x"), vec!["x"]);
        let long = format!("{}\n", "y".repeat(150));
        let p = fgets_pieces(long.as_bytes());
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].len(), 99);
        assert_eq!(p[1].len(), 51);
        assert!(fgets_pieces(b"").is_empty());
    }

    #[test]
    fn indent_drops_empty_lines() {
        assert_eq!(indent_lines("a\n\nb\nc"), "a\n\tb\n\tc");
    }

    #[test]
    fn fill_reads_only_the_controllers_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("cpu.shares"), "1024\n").unwrap();
        std::fs::write(d.path().join("cpu.stat"), "a 1\nb 2\n").unwrap();
        std::fs::write(d.path().join("cpuacct.usage"), "5\n").unwrap();
        std::fs::write(d.path().join("cgroup.procs"), "").unwrap();
        let mut c = Controller {
            name: "cpu".into(),
            version: CgVersion::V1,
            values: Vec::new(),
        };
        fill_controller(d.path(), &mut c, true).unwrap();
        let mut names: Vec<&str> = c.values.iter().map(|v| v.name.as_str()).collect();
        names.sort();
        assert_eq!(names, vec!["cpu.shares", "cpu.stat"]);
        assert_eq!(c.value("cpu.stat").unwrap().shown(), "a 1\n\tb 2");
        assert_eq!(c.value("cpu.shares").unwrap().shown(), "1024");
    }
}
