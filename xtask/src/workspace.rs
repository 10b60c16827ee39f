//! Where the workspace is: every task reads and writes under it, whatever
//! directory `cargo xtask` was started from.

use std::path::PathBuf;

/// The workspace's root (the parent of `xtask/`).
pub(crate) fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}
