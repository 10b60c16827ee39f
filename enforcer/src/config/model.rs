//! The validated-syntax policy model that both config formats produce.
//!
//! It holds what the file *says*, with a source span on everything, so that checks
//! made later against the host (unknown controller, bad value) can still point at
//! `file:line:column`. Host-dependent validation lives in `cgroup::plan`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A position in a config file: 1-based line and column (column counts characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub file: Arc<PathBuf>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// A whole policy: the groups to create and configure, in file order.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub groups: Vec<GroupSpec>,
    /// Things that were accepted but have no effect (for example a cgconfig.conf
    /// `mount` block: hierarchies are discovered from mountinfo instead).
    pub warnings: Vec<(Span, String)>,
}

#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The group path exactly as written (`foo`, `web/api`); validated later.
    pub name: String,
    pub span: Span,
    pub perm: Perm,
    /// Controller blocks in file order. A block may be empty: the group is then
    /// created in that controller with no settings, as in cgconfig.conf.
    pub controllers: Vec<ControllerSpec>,
}

#[derive(Debug, Clone)]
pub struct ControllerSpec {
    /// Controller name as written (`memory`, `cpu`, `cpuset`, `blkio`, ...).
    pub name: String,
    pub span: Span,
    pub settings: Vec<Setting>,
}

/// One `key = value` line. `value` has quotes removed; units are not yet parsed.
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub span: Span,
    pub value_span: Span,
}

/// cgconfig.conf's `perm { task { ... } admin { ... } }`.
#[derive(Debug, Clone, Default)]
pub struct Perm {
    pub task: Option<Owner>,
    pub admin: Option<Owner>,
}

/// User and group names or numeric ids as written, and octal modes.
#[derive(Debug, Clone)]
pub struct Owner {
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub fperm: Option<u32>,
    pub dperm: Option<u32>,
    pub span: Span,
}
