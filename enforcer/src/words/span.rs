//! Where a value was written in the policy: plan errors carry it so that a
//! refusal made against the host still points at `file:line:column`.

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

/// A value from the file with the place it was written (for a string, its opening
/// quote; for an array element, that element).
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}
