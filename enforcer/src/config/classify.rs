//! `[[classify]]`: rules that place new processes, the TOML form of
//! cgrules.conf lines (see `classify::rules`).
//!
//! ```toml
//! [[classify]]
//! user = "alice"                  # or group = "staff"; neither: every user
//! exe = "/usr/bin/python3"        # or comm = "python3"; neither: every program
//! controllers = ["cpu", "memory"] # default: every controller ("*")
//! destination = "users/%u"        # %u %U %g %G %p %P as in cgrules.conf
//! ```
//!
//! `exe` matches the executable the kernel ran (`/proc/PID/exe`, or for a
//! script the script's path as the kernel recorded it at exec), never what
//! the process says about itself (argv[0]); `comm` matches its base name as
//! the kernel set it at exec, the name of the file execve was given, which a
//! caller chooses with a symlink: use `exe` where the rule grants anything.
//! Either may end in `*` to match a prefix. `ignore = true`
//! makes a rule that leaves matching processes where they are. The rules are
//! tried in file order after `/etc/cgrules.conf`'s; the first match wins.
//! `hold = true` (on any rule) stops each process a rule may concern at exec
//! until it is placed, so it runs nothing in its old group; see README for
//! what that costs (a parent watching its children sees the stop).
//!
//! The TOML tables are read in `toml_policy/classify.rs`.

use super::model::{Span, Spanned};

/// One `[[classify]]` table, syntax-checked (users and groups are looked
/// up when the rules are loaded).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyRule {
    /// Where the table starts.
    pub span: Span,
    pub user: Option<Spanned<String>>,
    pub group: Option<Spanned<String>>,
    pub exe: Option<Spanned<String>>,
    pub comm: Option<Spanned<String>>,
    /// Empty for every controller.
    pub controllers: Vec<String>,
    pub destination: Spanned<String>,
    pub ignore: bool,
    pub hold: bool,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::parse_toml;

    #[test]
    fn classify_tables() {
        let p = parse_toml(
            "[[classify]]\nuser = \"alice\"\nexe = \"/usr/bin/python3\"\ncontrollers = [\"cpu\"]\n\
             destination = \"u/%u\"\n\n[[classify]]\ngroup = \"staff\"\ncomm = \"make\"\ndestination = \"b\"\n",
            Path::new("p.toml"),
        )
        .unwrap();
        assert_eq!(p.classify.len(), 2);
        assert_eq!(p.classify[0].user.as_ref().unwrap().value, "alice");
        assert_eq!(p.classify[0].controllers, vec!["cpu"]);
        assert_eq!(p.classify[1].comm.as_ref().unwrap().value, "make");
        assert!(p.classify[1].controllers.is_empty());
    }

    #[test]
    fn classify_errors_point_at_the_problem() {
        let cases = [
            ("[[classify]]\nuser = \"a\"\n", "no `destination`"),
            (
                "[[classify]]\nuser = \"a\"\ngroup = \"b\"\ndestination = \"x\"\n",
                "not both",
            ),
            (
                "[[classify]]\ncomm = \"a/b\"\ndestination = \"x\"\n",
                "without `/`",
            ),
            ("[[classify]]\nuser = 3\ndestination = \"x\"\n", "string"),
            (
                "[[classify]]\nusr = \"a\"\ndestination = \"x\"\n",
                "unknown key `usr`",
            ),
            ("[classify]\nuser = \"a\"\n", "classify"),
            (
                "[[classify]]\nuser = \"a\"\ndestination = \"x/../y\"\n",
                "`..` component",
            ),
        ];
        for (text, want) in cases {
            let e = parse_toml(text, Path::new("p.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.starts_with("p.toml:"),
                "{text:?}: {e}"
            );
        }
    }
}
