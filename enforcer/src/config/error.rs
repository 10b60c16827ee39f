//! The one error type for reading a policy file.
//!
//! Every error about the file's contents carries a [`Span`], so the user is told
//! `FILE:LINE:COL` and can jump straight to the problem.

use std::path::PathBuf;

use super::model::Span;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The path names no file: a typo, or a file not written yet.
    #[error(
        "policy file {} does not exist: check the path (a cgconfig.conf or a .toml policy; \
         examples/policy.toml is a complete example)",
        path.display()
    )]
    Missing { path: PathBuf },

    /// The path names a directory.
    #[error(
        "policy file {} is a directory: give the path of the policy file itself, \
         for example {}",
        path.display(),
        path.join("cgconfig.conf").display()
    )]
    IsDirectory { path: PathBuf },

    /// The text does not follow the grammar: at `span` we wanted `expected`.
    #[error("{span}: expected {expected}, found {found}")]
    Syntax {
        span: Span,
        expected: String,
        found: String,
    },

    /// The text is well-formed but says something we cannot accept.
    #[error("{span}: {message}")]
    Invalid { span: Span, message: String },
}

impl ConfigError {
    /// Where in the file the problem is, if it is about the file's contents.
    pub fn span(&self) -> Option<&Span> {
        match self {
            Self::Io { .. } | Self::Missing { .. } | Self::IsDirectory { .. } => None,
            Self::Syntax { span, .. } | Self::Invalid { span, .. } => Some(span),
        }
    }

    pub(crate) fn syntax(
        span: Span,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::Syntax {
            span,
            expected: expected.into(),
            found: found.into(),
        }
    }

    pub(crate) fn invalid(span: Span, message: impl Into<String>) -> Self {
        Self::Invalid {
            span,
            message: message.into(),
        }
    }
}

/// "line 4, column 7", for messages that refer back to an earlier definition.
pub(crate) fn position(span: &Span) -> String {
    format!("line {}, column {}", span.line, span.column)
}

/// A reader's error must say where: `FILE:LINE:COLUMN: ...`.
#[doc(hidden)]
pub fn check_located(file: &str, result: &Result<super::Policy, ConfigError>) {
    if let Err(err) = result {
        let span = err
            .span()
            .unwrap_or_else(|| panic!("error without a position: {err:?}"));
        assert!(span.line >= 1 && span.column >= 1, "{err}");
        let prefix = format!("{file}:{}:{}: ", span.line, span.column);
        assert!(err.to_string().starts_with(&prefix), "{err}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn span() -> Span {
        Span {
            file: Arc::new(PathBuf::from("/etc/cgconfig.conf")),
            line: 3,
            column: 14,
        }
    }

    #[test]
    fn syntax_error_display() {
        let err = ConfigError::syntax(span(), "`;`", "`}`");
        assert_eq!(
            err.to_string(),
            "/etc/cgconfig.conf:3:14: expected `;`, found `}`"
        );
        assert_eq!(err.span(), Some(&span()));
    }

    #[test]
    fn invalid_error_display() {
        let err = ConfigError::invalid(span(), "group `foo` is defined twice");
        assert_eq!(
            err.to_string(),
            "/etc/cgconfig.conf:3:14: group `foo` is defined twice"
        );
    }

    #[test]
    fn io_error_has_no_span() {
        let err = ConfigError::Io {
            path: PathBuf::from("/nope"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(err.span().is_none());
        assert!(
            err.to_string()
                .starts_with("cannot read config file /nope: ")
        );
    }
}
