//! Where a tool's output goes: stdout buffered as C's stdio buffers it
//! (flushed at exit and before `exec`), stderr unbuffered. A closed reader is
//! not an error, as for the C tools, whose `printf` results nobody checks.

use std::io::Write as _;

pub(crate) struct Io {
    /// `argv[0]` as invoked: libcgroup's messages start with it.
    pub(crate) prog: String,
    out: Vec<u8>,
}

impl Io {
    pub(crate) fn new(prog: &str) -> Self {
        Io {
            prog: prog.to_string(),
            out: Vec::new(),
        }
    }

    /// `info(...)`: to stdout, with no control character but newline and
    /// tab (a group named by someone else cannot drive the terminal).
    pub(crate) fn out(&mut self, s: &str) {
        let s = crate::escape::terminal_safe(s);
        self.out.extend_from_slice(s.as_bytes());
        if self.out.len() > 1 << 16 {
            self.flush();
        }
    }

    /// `err(...)`: to stderr, at once.
    pub(crate) fn err(&mut self, s: &str) {
        let s = crate::escape::terminal_safe(s);
        let _ = std::io::stderr().write_all(s.as_bytes());
    }

    pub(crate) fn flush(&mut self) {
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(&self.out);
        let _ = so.flush();
        self.out.clear();
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.flush();
    }
}
