//! Reading a policy file from disk and deciding which format it is in.

use std::path::Path;

use super::cgconfig::parse_cgconfig;
use super::error::ConfigError;
use super::model::Policy;
use super::position::SourceMap;
use super::toml_policy::parse_toml;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Cgconfig,
    Toml,
}

/// Reads and parses a policy file. `*.toml` is TOML; anything else (usually
/// `cgconfig.conf`) is sniffed, so existing libcgroup files work unchanged.
/// A path that names no file, or a directory, is the user's mistake
/// ([`ConfigError::Missing`], [`ConfigError::IsDirectory`]); any other failure to
/// read is [`ConfigError::Io`].
pub fn load(path: &Path) -> Result<Policy, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| {
        let path = path.to_owned();
        match source.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing { path },
            std::io::ErrorKind::IsADirectory => ConfigError::IsDirectory { path },
            _ if path.is_dir() => ConfigError::IsDirectory { path },
            _ => ConfigError::Io { path, source },
        }
    })?;
    parse_policy(&bytes, path)
}

/// Parses a policy file's contents as [`load`] does once it has read them:
/// UTF-8 checked, the format told by `path`'s extension or sniffed.
pub fn parse_policy(bytes: &[u8], path: &Path) -> Result<Policy, ConfigError> {
    let text = decode(bytes, path)?;
    match detect_format(path, text) {
        Format::Toml => parse_toml(text, path),
        Format::Cgconfig => parse_cgconfig(text, path),
    }
}

/// Not-UTF-8 is reported at the first bad byte rather than as a bare I/O error.
fn decode<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        // `valid` is UTF-8 by definition of `valid_up_to`.
        let valid = std::str::from_utf8(valid).unwrap_or_default();
        ConfigError::invalid(
            SourceMap::new(valid, path).span(valid.len()),
            "the file is not valid UTF-8 text: save it as UTF-8",
        )
    })
}

fn detect_format(path: &Path, text: &str) -> Format {
    let is_toml = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"));
    if is_toml { Format::Toml } else { sniff(text) }
}

/// cgconfig.conf if the first word (after blank lines and `#` comments, which both
/// formats share) is one of its top-level keywords, else TOML. A keyword directly
/// followed by `=` or `.` is a TOML key (`group.foo.x = 1`), and so is a line with
/// an `=` before any `{`; `group ../x {` is a cgconfig.conf block (whose name is
/// then judged as a group path, rather than read as broken TOML).
fn sniff(text: &str) -> Format {
    const KEYWORDS: [&str; 5] = ["group", "mount", "default", "template", "namespace"];
    let Some(line) = text
        .lines()
        .map(str::trim_start)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
    else {
        return Format::Toml;
    };
    let word_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let (word, rest) = line.split_at(word_end);
    let dotted = rest.starts_with('.');
    let rest = rest.trim_start();
    let assignment = match (rest.find('='), rest.find('{')) {
        (Some(eq), Some(brace)) => eq < brace,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if KEYWORDS.contains(&word) && !dotted && !assignment {
        Format::Cgconfig
    } else {
        Format::Toml
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const CGCONFIG: &str = "#\n# Copyright IBM Corporation. 2007\n#\ngroup foo {\ncpu {\n\
                            cpu.shares = 100;\n}\n}\n";
    const TOML: &str = "# a comment\n[group.\"foo\"]\n\"cpu.shares\" = 100\n";

    fn write(suffix: &str, text: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
        file.write_all(text).unwrap();
        file
    }

    #[test]
    fn sniffs_the_format() {
        assert_eq!(sniff(CGCONFIG), Format::Cgconfig);
        assert_eq!(sniff("\n  mount {\n"), Format::Cgconfig);
        assert_eq!(sniff("default{"), Format::Cgconfig);
        assert_eq!(sniff("template users/%u {"), Format::Cgconfig);
        assert_eq!(sniff("group\nfoo {"), Format::Cgconfig);
        assert_eq!(sniff(TOML), Format::Toml);
        assert_eq!(sniff("group.foo.\"cpu.shares\" = 1"), Format::Toml);
        assert_eq!(sniff("group = { }"), Format::Toml);
        assert_eq!(sniff("groups = 1"), Format::Toml);
        assert_eq!(sniff("group ../relesc {"), Format::Cgconfig);
        assert_eq!(sniff("group . foo = 1"), Format::Toml);
        assert_eq!(sniff(""), Format::Toml);
    }

    #[test]
    fn loads_both_formats_by_content() {
        for suffix in [".conf", ".cfg", ""] {
            let file = write(suffix, CGCONFIG.as_bytes());
            let policy = load(file.path()).unwrap();
            assert_eq!(policy.groups[0].name, "foo");
            assert_eq!(policy.groups[0].controllers[0].settings[0].value, "100");
            assert_eq!(policy.groups[0].span.file.as_path(), file.path());

            let file = write(suffix, TOML.as_bytes());
            let policy = load(file.path()).unwrap();
            assert_eq!(
                policy.groups[0].controllers[0].settings[0].key,
                "cpu.shares"
            );
        }
    }

    #[test]
    fn toml_extension_is_always_toml() {
        // Would be sniffed as cgconfig.conf, but the extension decides.
        let file = write(".toml", CGCONFIG.as_bytes());
        let err = load(file.path()).unwrap_err();
        let span = err.span().unwrap();
        assert_eq!((span.line, span.column), (4, 7));
        assert!(
            err.to_string()
                .starts_with(&format!("{}:4:7: ", file.path().display()))
        );
    }

    #[test]
    fn errors_carry_the_file_name() {
        let file = write(".conf", b"group foo {\n  cpu { cpu.shares = 1 }\n}\n");
        let message = load(file.path()).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "{}:2:24: expected `;` after the value of `cpu.shares`, found `}}`",
                file.path().display()
            )
        );
    }

    #[test]
    fn missing_file_or_directory_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.conf");
        let err = load(&path).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { .. }), "{err:?}");
        assert!(err.span().is_none());
        let message = err.to_string();
        assert!(
            message.contains(&path.display().to_string())
                && message.contains("does not exist")
                && message.contains("check the path"),
            "{message}"
        );

        let err = load(dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::IsDirectory { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&dir.path().display().to_string())
                && message.contains("is a directory")
                && message.contains("give the path of the policy file"),
            "{message}"
        );
    }

    #[test]
    fn invalid_utf8_is_located() {
        let file = write(".conf", b"group foo {\n  cpu { cpu.shares = \xff; }\n}\n");
        let err = load(file.path()).unwrap_err();
        let span = err.span().unwrap();
        assert_eq!((span.line, span.column), (2, 22));
        assert!(err.to_string().contains("not valid UTF-8"));
    }
}
