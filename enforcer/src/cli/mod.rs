//! The thin command-line layer: parse with clap, call the library, print.

mod args;
mod cgroupfs;
mod commands;
mod docs;
mod events;
mod policy;
mod print;
mod run;
mod stats;
mod status;
mod top;

pub use args::{Cli, Command};
pub use commands::{exit_code, run};

/// An error with its causes for the user, each said once: many errors already
/// end with their source (`file:3:1: unknown key ...`), which `{:#}` would
/// repeat.
pub fn error_message(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_says_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let text = io.to_string();
        let err = anyhow::Error::new(crate::cgroup::CgroupError::Io {
            op: "reading",
            path: "/x".into(),
            source: io,
        });
        assert_eq!(error_message(&err), format!("reading /x: {text}"));
        let err = anyhow::Error::new(std::io::Error::other("inner")).context("outer");
        assert_eq!(error_message(&err), "outer: inner");
    }
}
