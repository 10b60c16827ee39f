//! Running libcgroup's tools both ways: Debian's `cgroup-tools` (2.0.2) and
//! enforcer under the same names, with the same arguments, on the same
//! host state, and comparing output, messages, exit status and the state
//! left behind.
//!
//! Every case uses its own uniquely named groups (removed by guards, even
//! on panic); nothing here touches a group it did not create.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::{GroupGuard, enforcer_bin};

/// The directory of links named like libcgroup's tools, pointing at enforcer.
fn links() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("enf-compat-links-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for t in enforcer::compat::TOOLS.iter().map(|(n, _)| *n) {
            let l = dir.join(t);
            let _ = std::fs::remove_file(&l);
            std::os::unix::fs::symlink(enforcer_bin(), &l).expect("linking a compat name");
        }
        dir
    })
}

/// Whether libcgroup's tools are here to compare with: `cargo xtask setup`
/// installs Debian's cgroup-tools; a VM guest of `cargo xtask vmtest` has
/// none, and says so.
pub fn have_real_tools(test: &str) -> bool {
    if Path::new("/usr/bin/cgget").exists() {
        return true;
    }
    crate::skipped(
        test,
        "no libcgroup tools to compare with (`cargo xtask setup` installs Debian's cgroup-tools)",
    );
    false
}

/// Where Debian's cgroup-tools keeps `tool` (installed by `cargo xtask
/// setup`, never by a test).
pub fn real_tool(tool: &str) -> PathBuf {
    ["/usr/bin", "/usr/sbin"]
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/usr/bin").join(tool))
}

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Real,
    Ours,
}

/// What a run printed and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub status: i32,
    pub out: String,
    pub err: String,
}

/// `tool ARGS` with argv[0] = the tool's bare name, as a script calls it.
pub fn command(side: Side, tool: &str, args: &[String]) -> Command {
    let path = match side {
        Side::Real => real_tool(tool),
        Side::Ours => links().join(tool),
    };
    let mut c = Command::new(path);
    c.arg0(tool).args(args).env_remove("CGROUP_LOGLEVEL");
    c
}

pub fn run(side: Side, tool: &str, args: &[String]) -> Run {
    let before = (side == Side::Real).then(crate::layout::v2_root_controllers);
    let out = command(side, tool, args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {tool} ({side:?}): {e}"));
    if let Some(before) = before {
        // libcgroup's own tools enable a hybrid host's cgroup2 controllers
        // (hugetlb here) in the cgroup2 root for `*`, which makes crun refuse
        // every container afterwards: what this run enabled is taken back.
        crate::layout::restore_v2_root_controllers(&before);
    }
    Run {
        status: out.status.code().unwrap_or(128 + 9),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A sleeping process to move around; killed when dropped.
pub struct Sleeper(pub Child);

impl Sleeper {
    pub fn start() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("300")
                .stdin(Stdio::null())
                .spawn()
                .expect("starting sleep"),
        )
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The process's v1 memberships (`N:controller:/path`), sorted.
    pub fn v1_groups(&self) -> String {
        let text =
            std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid())).unwrap_or_default();
        let mut l: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("0::") && !l.contains("name=systemd"))
            .collect();
        l.sort();
        l.join("\n")
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The v1 hierarchies' mount points (from mountinfo).
pub fn v1_mounts() -> Vec<PathBuf> {
    let h = crate::layout::host();
    h.hierarchies()
        .iter()
        .filter(|x| x.version == enforcer::cgroup::Version::V1)
        .map(|x| x.mount_point.clone())
        .collect()
}

/// Every v1 directory of `name` and below, with owner and mode of the
/// directory and its tasks and cgroup.procs files, as text.
pub fn v1_state(name: &str) -> String {
    let mut out = Vec::new();
    for m in v1_mounts() {
        let dir = m.join(name);
        if !dir.is_dir() {
            continue;
        }
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for f in ["", "tasks", "cgroup.procs"] {
                let p = if f.is_empty() { d.clone() } else { d.join(f) };
                if let Ok(md) = std::fs::metadata(&p) {
                    use std::os::unix::fs::MetadataExt as _;
                    out.push(format!(
                        "{} {}:{} {:o}",
                        p.display(),
                        md.uid(),
                        md.gid(),
                        md.mode() & 0o7777
                    ));
                }
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(e.path());
                    }
                }
            }
        }
    }
    out.sort();
    out.join("\n")
}

/// A fresh guard for a group that does not exist yet.
pub fn fresh(what: &str) -> GroupGuard {
    GroupGuard::new(what)
}

/// Create `spec` (CONTROLLERS:PATH) with libcgroup's own cgcreate, so no
/// enforcer mirror exists for it (with enforcer's where libcgroup's is not
/// to be had).
pub fn real_create(spec: &str) {
    let side = if Path::new("/usr/bin/cgcreate").exists() {
        Side::Real
    } else {
        Side::Ours
    };
    let r = run(side, "cgcreate", &["-g".to_string(), spec.to_string()]);
    assert_eq!(r.status, 0, "cgcreate -g {spec}: {r:?}");
}

/// `text` with `name` replaced by `as_`.
pub fn norm(text: &str, name: &str, as_: &str) -> String {
    text.replace(name, as_)
}
