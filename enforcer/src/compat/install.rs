//! `enforcer compat install|uninstall`: the symlinks that make this binary
//! answer as libcgroup's tools.
//!
//! Install checks every link first and changes nothing if one of the names
//! is taken by something that is not already a link to enforcer (a real
//! libcgroup tool, say); uninstall removes only links that point at an
//! enforcer binary and leaves everything else alone.

use std::path::{Path, PathBuf};

use super::{Dir, TOOLS};

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error(
        "{} exists and is not a link to enforcer; nothing was changed. Remove or rename it \
         (it may be libcgroup's own tool), or install elsewhere with --prefix",
        path.display()
    )]
    Taken { path: PathBuf },
    #[error("cannot find this program's own path: {0}")]
    SelfPath(#[source] std::io::Error),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl InstallError {
    /// True when the user's setup is the problem (exit 2), not the host.
    pub fn is_user_error(&self) -> bool {
        matches!(self, InstallError::Taken { .. })
    }
}

/// Where each tool's link goes under `prefix` (`bin/` or `sbin/`).
pub fn link_paths(prefix: &Path) -> Vec<PathBuf> {
    TOOLS
        .iter()
        .map(|(name, dir)| {
            prefix
                .join(match dir {
                    Dir::Bin => "bin",
                    Dir::Sbin => "sbin",
                })
                .join(name)
        })
        .collect()
}

/// Whether `link` is a symlink to an enforcer binary (this one, or any file
/// named `enforcer`).
fn points_at_enforcer(link: &Path, me: &Path) -> bool {
    let Ok(target) = std::fs::read_link(link) else {
        return false;
    };
    let resolved = if target.is_absolute() {
        target
    } else {
        link.parent().unwrap_or(Path::new("/")).join(target)
    };
    std::fs::canonicalize(&resolved).is_ok_and(|t| t == me)
        || resolved.file_name().is_some_and(|n| n == "enforcer")
}

fn me() -> Result<PathBuf, InstallError> {
    std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(InstallError::SelfPath)
}

/// Create the links; returns those made (existing links to enforcer are kept).
pub fn install(prefix: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let me = me()?;
    let links = link_paths(prefix);
    for l in &links {
        if l.symlink_metadata().is_ok() && !points_at_enforcer(l, &me) {
            return Err(InstallError::Taken { path: l.clone() });
        }
    }
    let mut made = Vec::new();
    for l in links {
        if l.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(dir) = l.parent() {
            std::fs::create_dir_all(dir).map_err(|source| InstallError::Io {
                op: "creating",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        std::os::unix::fs::symlink(&me, &l).map_err(|source| InstallError::Io {
            op: "linking",
            path: l.clone(),
            source,
        })?;
        made.push(l);
    }
    Ok(made)
}

/// Remove the links that point at enforcer; returns those removed.
pub fn uninstall(prefix: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let me = me()?;
    let mut removed = Vec::new();
    for l in link_paths(prefix) {
        if points_at_enforcer(&l, &me) {
            std::fs::remove_file(&l).map_err(|source| InstallError::Io {
                op: "removing",
                path: l.clone(),
                source,
            })?;
            removed.push(l);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_refuses_foreign_files_and_uninstalls_only_its_links() {
        let d = tempfile::tempdir().unwrap();
        let made = install(d.path()).unwrap();
        assert_eq!(made.len(), TOOLS.len());
        assert!(d.path().join("sbin/cgrulesengd").symlink_metadata().is_ok());
        assert!(install(d.path()).unwrap().is_empty(), "idempotent");
        std::fs::remove_file(d.path().join("bin/cgget")).unwrap();
        std::fs::write(d.path().join("bin/cgget"), "#!/bin/sh\n").unwrap();
        let e = install(d.path()).unwrap_err();
        assert!(
            e.is_user_error() && e.to_string().contains("bin/cgget"),
            "{e}"
        );
        let removed = uninstall(d.path()).unwrap();
        assert_eq!(removed.len(), TOOLS.len() - 1);
        assert!(d.path().join("bin/cgget").exists(), "a foreign file stays");
    }
}
