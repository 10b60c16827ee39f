//! Names are data: how a name that enforcer did not choose (a group made by a
//! container runtime or a delegated user, a process's `comm`, a label taken
//! from a path) reaches a person's terminal.
//!
//! Anyone who may create a cgroup may name it `x\e[2J\e[31mRED` or put a
//! newline in it, and anyone may name an executable so; printed raw, such a
//! name rewrites an operator's screen or forges a line of a table. Two steps:
//!
//! - [`name`]: a file name read from the kernel becomes a label. Valid UTF-8
//!   stays as it is; each byte that is not valid UTF-8 becomes `\xNN`
//!   (lowercase hex), so no name is dropped or merged with another by lossy
//!   decoding, and JSON and metrics can carry every label. (A valid name that
//!   contains those four characters literally reads the same: the one
//!   ambiguity, accepted for names that are not UTF-8 at all.)
//! - [`human`]: text for a person. Control characters become visible escapes:
//!   `\n`, `\r`, `\t`, other C0 characters and DEL as `\xNN` (ESC is `\x1b`),
//!   C1 controls and the bidirectional-text controls (which reorder what a
//!   terminal shows) as `\u{NNNN}`. Everything else, backslashes included
//!   (systemd's unit names use `\x2d`), is unchanged.
//!
//! JSON output escapes per JSON (serde_json) and metrics per the exposition
//! format; both take the labels of [`name`] as they are.
//!
//! [`terminal_safe`] is the net under every human output (stdout of the
//! verbs, error messages, warnings; not JSON): what [`human`] escapes but
//! newline and tab. It cannot undo a forged line, so fields are escaped with
//! [`human`] where they are formatted; it makes sure that nothing missed
//! there reaches the terminal as a control sequence.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt as _;

/// A file name (a cgroup directory, an executable) as a label: UTF-8 as it
/// is, every other byte as `\xNN`.
pub fn name(raw: &OsStr) -> Cow<'_, str> {
    bytes(raw.as_bytes())
}

/// [`name`] for bytes (`comm`, a line of `/proc/PID/cgroup`).
pub fn bytes(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let mut out = String::with_capacity(raw.len() + 8);
            for chunk in raw.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            Cow::Owned(out)
        }
    }
}

/// Whether `c` reorders or hides text on a terminal: the Unicode
/// bidirectional formatting characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn needs_human_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

fn push_human(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if needs_human_escape(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// `s` for a person: control characters as visible escapes (see the module
/// docs). Borrowed when there is nothing to escape.
pub fn human(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_human_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_human(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`human`] of a name read as bytes: [`bytes`], then [`human`].
pub fn human_bytes(raw: &[u8]) -> String {
    human(&bytes(raw)).into_owned()
}

/// [`human`] as a `Display` value, for `format!("{}", Human(name))`.
#[derive(Debug, Clone, Copy)]
pub struct Human<'a>(pub &'a str);

impl fmt::Display for Human<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&human(self.0))
    }
}

/// The net under every human output: [`human`], but newlines and tabs stay
/// (see the module docs). Borrowed when there is nothing to escape.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    let escaped = |c: char| c != '\n' && c != '\t' && needs_human_escape(c);
    if !s.chars().any(escaped) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if escaped(c) {
            push_human(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_becomes_hex_and_valid_names_stay() {
        assert_eq!(name(OsStr::from_bytes(b"web")), "web");
        assert!(matches!(name(OsStr::from_bytes(b"web")), Cow::Borrowed(_)));
        assert_eq!(name(OsStr::from_bytes(b"bad\xff\xfeok")), "bad\\xff\\xfeok");
        // A truncated sequence is bytes too, the rest still decoded.
        assert_eq!(bytes(b"\xe2\x82x\xe2\x82\xac"), "\\xe2\\x82x\u{20ac}");
        assert_eq!(
            bytes("systemd-fsck@dev-disk-by\\x2duuid.service".as_bytes()),
            "systemd-fsck@dev-disk-by\\x2duuid.service"
        );
    }

    #[test]
    fn controls_are_visible_for_a_person() {
        assert_eq!(human("x\x1b[2J\x1b[31mRED"), "x\\x1b[2J\\x1b[31mRED");
        assert_eq!(human("a\nb\rc\td\0e\x7f"), "a\\nb\\rc\\td\\x00e\\x7f");
        assert_eq!(human("csi\u{9b}31m"), "csi\\u{009b}31m");
        assert_eq!(human("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(human("caf\u{e9} \\x2d"), "caf\u{e9} \\x2d");
        assert!(matches!(human("plain"), Cow::Borrowed(_)));
        assert_eq!(human_bytes(b"\x1b\xff"), "\\x1b\\xff");
        assert_eq!(format!("[{:<6}]", Human("a\tb")), "[a\\tb  ]");
    }

    #[test]
    fn the_net_keeps_lines() {
        assert_eq!(
            terminal_safe("a\x1b[2Jb\nc\td\r\u{9b}"),
            "a\\x1b[2Jb\nc\td\\r\\u{009b}"
        );
        assert!(matches!(terminal_safe("a\nb"), Cow::Borrowed(_)));
    }

    #[test]
    fn every_char_is_escaped_or_printable() {
        for c in (0..=0x3000u32).filter_map(char::from_u32) {
            let shown = human(c.encode_utf8(&mut [0; 4])).into_owned();
            assert!(
                !shown.chars().any(|c| c.is_control() || is_bidi_control(c)),
                "{c:?} shown as {shown:?}"
            );
        }
    }
}
