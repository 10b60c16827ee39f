//! Mending a torn last line of the audit log.
//!
//! A line goes out in one `write(2)`, but a full disk can take part of it
//! (the write returns what fit, the rest fails with ENOSPC), and a log may
//! come from elsewhere already ending in a fragment. A line appended after a
//! fragment would be glued to it and neither would parse. So the fragment is
//! cut off: when the log is opened, and right after a write that failed.
//! What was cut was never a whole record; the caller says how many bytes.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};

/// How far back from the end a line's start is looked for; audit lines are
/// far shorter.
const LOOK_BACK: u64 = 64 * 1024;

/// Makes `file` end with a whole line: a last line without its newline is
/// cut off (or, if its start is further back than any line could be, ended
/// with a newline instead). Returns the bytes cut (or 1 for a newline
/// added), `None` if it already ended well.
pub(super) fn mend(file: &mut File) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(LOOK_BACK);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(None);
    }
    match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => {
            let keep = start + i as u64 + 1;
            file.set_len(keep)?;
            Ok(Some(len - keep))
        }
        None if start == 0 => {
            file.set_len(0)?;
            Ok(Some(len))
        }
        None => {
            // Not ours to cut that much: end it, so the next line is whole.
            file.write_all(b"\n")?;
            Ok(Some(1))
        }
    }
}

/// A line that could not be appended whole.
#[derive(Debug)]
pub(super) struct Failed {
    pub(super) error: io::Error,
    /// Where the fragment it left begins, if it could not be cut off (cut
    /// there before the next line).
    pub(super) fragment_at: Option<u64>,
}

/// Appends `line` (the file is opened with `O_APPEND`) in one `write(2)`
/// when it fits. A write the disk takes only part of leaves a fragment,
/// which is cut off again at once: the file ends as it did before. Only a
/// failure costs an `fstat`.
pub(super) fn append(file: &mut File, line: &[u8]) -> Result<(), Failed> {
    let mut written = 0;
    while written < line.len() {
        match file.write(&line[written..]) {
            Ok(0) => {
                return Err(cut_fragment(
                    file,
                    written,
                    io::Error::from(io::ErrorKind::WriteZero),
                ));
            }
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(cut_fragment(file, written, e)),
        }
    }
    Ok(())
}

/// The last `written` bytes (the part of a line that got out) go again.
fn cut_fragment(file: &File, written: usize, error: io::Error) -> Failed {
    if written == 0 {
        return Failed {
            error,
            fragment_at: None,
        };
    }
    let at = file
        .metadata()
        .map(|m| m.len().saturating_sub(written as u64));
    let cut = at.as_ref().ok().map(|&at| (at, cut_to(file, at)));
    Failed {
        error,
        fragment_at: match cut {
            Some((_, Ok(()))) => None,
            Some((at, Err(_))) => Some(at),
            // Where it began is unknown: the next line starts on a new line.
            None => Some(0),
        },
    }
}

/// Cuts the file back to `len` bytes (no longer than it is).
pub(super) fn cut_to(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() > len {
        file.set_len(len)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(text: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        io::Write::write_all(&mut t, text).unwrap();
        let f = File::options()
            .read(true)
            .append(true)
            .open(t.path())
            .unwrap();
        (t, f)
    }

    #[test]
    fn a_fragment_is_cut_and_whole_lines_stay() {
        let (t, mut f) = log(b"{\"a\":1}\n{\"b\":");
        assert_eq!(mend(&mut f).unwrap(), Some(5));
        assert_eq!(std::fs::read(t.path()).unwrap(), b"{\"a\":1}\n");
        assert_eq!(mend(&mut f).unwrap(), None);
        let (t, mut f) = log(b"{\"only\":");
        assert_eq!(mend(&mut f).unwrap(), Some(8));
        assert!(std::fs::read(t.path()).unwrap().is_empty());
        let (_t, mut f) = log(b"");
        assert_eq!(mend(&mut f).unwrap(), None);
    }

    #[test]
    fn a_fragment_longer_than_any_line_is_ended_instead() {
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', LOOK_BACK as usize + 10));
        let (t, mut f) = log(&text);
        assert_eq!(mend(&mut f).unwrap(), Some(1));
        let after = std::fs::read(t.path()).unwrap();
        assert_eq!(after.len(), text.len() + 1);
        assert!(after.ends_with(b"x\n"));
    }

    #[test]
    fn cut_to_drops_what_a_failed_write_left() {
        let (t, mut f) = log(b"{\"a\":1}\n");
        io::Write::write_all(&mut f, b"{\"half").unwrap();
        cut_to(&f, 8).unwrap();
        assert_eq!(std::fs::read(t.path()).unwrap(), b"{\"a\":1}\n");
        cut_to(&f, 100).unwrap();
        assert_eq!(std::fs::read(t.path()).unwrap().len(), 8);
        append(&mut f, b"{\"b\":2}\n").unwrap();
        assert_eq!(std::fs::read(t.path()).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
    }
}
