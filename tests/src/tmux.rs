//! Driving a full-screen program in tmux: start it in a detached session of a
//! fixed size, type keys, read the screen. The session is killed when the
//! guard is dropped, also on panic. `cargo xtask setup` installs tmux.

use std::process::Command;
use std::time::Duration;

use crate::{unique_name, wait_for};

pub struct Tmux {
    pub session: String,
}

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running tmux (`cargo xtask setup` installs it): {e}"))
}

impl Tmux {
    /// Runs `command` (a shell command line) in a new 220x50 session with
    /// `env` set. The pane stays after the command ends (remain-on-exit).
    pub fn start(command: &str, env: &[(&str, &str)]) -> Tmux {
        let session = unique_name("tmux");
        let mut args = vec![
            "new-session".to_string(),
            "-d".into(),
            "-s".into(),
            session.clone(),
            "-x".into(),
            "220".into(),
            "-y".into(),
            "50".into(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(command.to_string());
        let out = tmux(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "tmux new-session: {out:?}");
        let t = Tmux { session };
        tmux(&["set-option", "-t", &t.session, "remain-on-exit", "on"]);
        t
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &self.session]).stdout)
            .into_owned()
    }

    /// The visible screen with its escape sequences (colours, attributes).
    pub fn screen_with_escapes(&self) -> String {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-e", "-t", &self.session]).stdout)
            .into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        assert!(tmux(&args).status.success());
    }

    /// Literal text (no key names).
    pub fn type_text(&self, text: &str) {
        assert!(
            tmux(&["send-keys", "-l", "-t", &self.session, text])
                .status
                .success()
        );
    }

    /// A format variable of the pane, such as `alternate_on` or `pane_dead`.
    pub fn pane(&self, var: &str) -> String {
        String::from_utf8_lossy(
            &tmux(&[
                "display-message",
                "-p",
                "-t",
                &self.session,
                &format!("#{{{var}}}"),
            ])
            .stdout,
        )
        .trim()
        .to_string()
    }

    /// Waits until the screen satisfies `f`; the last screen in the panic.
    pub fn wait_screen(&self, what: &str, mut f: impl FnMut(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(what, Duration::from_secs(30), || {
                last = self.screen();
                f(&last)
            })
        }));
        if ok.is_err() {
            panic!("timed out waiting for {what}; the screen:\n{last}");
        }
        last
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.session]);
    }
}
