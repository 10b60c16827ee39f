//! GNU `getopt_long` as glibc implements it, for the libcgroup tool names.
//!
//! Why not clap: scripts and people compare these tools' stderr and exit codes
//! with libcgroup's, which come from glibc's getopt (argument permutation,
//! clustered short options, unique-prefix long options, `--name=value`, and
//! messages such as `cgset: invalid option -- 'x'`). clap parses a different
//! grammar and words its errors differently, so the compat layer parses as
//! glibc does and leaves clap to the native `enforcer` interface.

/// How an option takes an argument (`has_arg` in `struct option`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HasArg {
    No,
    Required,
    Optional,
}

/// One `struct option` entry: a long name and the code it returns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongOpt {
    pub(crate) name: &'static str,
    pub(crate) has_arg: HasArg,
    pub(crate) code: char,
}

pub(crate) const fn long(name: &'static str, has_arg: HasArg, code: char) -> LongOpt {
    LongOpt {
        name,
        has_arg,
        code,
    }
}

/// What one step of parsing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// An option's code and its argument, if it has one.
    Opt(char, Option<String>),
    /// getopt's `'?'`: the message glibc prints (without the trailing newline).
    Error(String),
}

/// A parser over `args` (without the program name), following `optstring`
/// (`"r:hnvg:"`, a leading `+` stops at the first operand) and `longopts`.
pub(crate) struct Getopt<'a> {
    prog: String,
    args: Vec<String>,
    short: Vec<(char, HasArg)>,
    longopts: &'a [LongOpt],
    stop_at_operand: bool,
    pos: usize,
    /// Inside a cluster of short options (`-nv`): the rest still to read.
    cluster: Vec<char>,
    operands: Vec<String>,
    done: bool,
}

fn parse_optstring(optstring: &str) -> (bool, Vec<(char, HasArg)>) {
    let mut chars = optstring.chars().peekable();
    let stop = chars.peek() == Some(&'+');
    if stop {
        chars.next();
    }
    let mut out = Vec::new();
    while let Some(c) = chars.next() {
        let mut kind = HasArg::No;
        if chars.peek() == Some(&':') {
            chars.next();
            kind = HasArg::Required;
            if chars.peek() == Some(&':') {
                chars.next();
                kind = HasArg::Optional;
            }
        }
        out.push((c, kind));
    }
    (stop, out)
}

impl<'a> Getopt<'a> {
    pub(crate) fn new(
        prog: &str,
        args: &[String],
        optstring: &str,
        longopts: &'a [LongOpt],
    ) -> Self {
        let (stop_at_operand, short) = parse_optstring(optstring);
        Getopt {
            prog: prog.to_string(),
            args: args.to_vec(),
            short,
            longopts,
            stop_at_operand,
            pos: 0,
            cluster: Vec::new(),
            operands: Vec::new(),
            done: false,
        }
    }

    /// The operands: every non-option argument in order (glibc permutes them
    /// behind the options), or everything from the first operand on with `+`.
    /// Call after the iterator is exhausted.
    pub(crate) fn operands(&self) -> &[String] {
        &self.operands
    }

    /// The argument after the last one consumed (C's `argv[optind]`), if any.
    pub(crate) fn peek_arg(&self) -> Option<String> {
        self.args.get(self.pos).cloned()
    }

    fn short_kind(&self, c: char) -> Option<HasArg> {
        self.short.iter().find(|(s, _)| *s == c).map(|(_, k)| *k)
    }

    fn next_short(&mut self) -> Item {
        let c = self.cluster.remove(0);
        // ':' in the optstring marks arguments; it is never an option itself.
        let kind = if c == ':' { None } else { self.short_kind(c) };
        match kind {
            None => Item::Error(format!("{}: invalid option -- '{c}'", self.prog)),
            Some(HasArg::No) => Item::Opt(c, None),
            Some(HasArg::Optional) => {
                let rest: String = self.cluster.drain(..).collect();
                Item::Opt(c, (!rest.is_empty()).then_some(rest))
            }
            Some(HasArg::Required) => {
                if !self.cluster.is_empty() {
                    let rest: String = self.cluster.drain(..).collect();
                    return Item::Opt(c, Some(rest));
                }
                match self.args.get(self.pos) {
                    Some(a) => {
                        let a = a.clone();
                        self.pos += 1;
                        Item::Opt(c, Some(a))
                    }
                    None => Item::Error(format!(
                        "{}: option requires an argument -- '{c}'",
                        self.prog
                    )),
                }
            }
        }
    }

    fn next_long(&mut self, body: &str) -> Item {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let exact = self.longopts.iter().find(|o| o.name == name);
        let chosen = match exact {
            Some(o) => *o,
            None => {
                let matches: Vec<&LongOpt> = self
                    .longopts
                    .iter()
                    .filter(|o| !name.is_empty() && o.name.starts_with(name))
                    .collect();
                // Several prefixes naming the same option are not ambiguous.
                let distinct = matches
                    .iter()
                    .any(|o| o.code != matches[0].code || o.has_arg != matches[0].has_arg);
                match matches.first() {
                    // glibc repeats the whole argument, `=value` included.
                    None => {
                        return Item::Error(format!(
                            "{}: unrecognized option '--{body}'",
                            self.prog
                        ));
                    }
                    Some(_) if distinct => {
                        let list: String =
                            matches.iter().map(|o| format!(" '--{}'", o.name)).collect();
                        return Item::Error(format!(
                            "{}: option '--{name}' is ambiguous; possibilities:{list}",
                            self.prog
                        ));
                    }
                    Some(o) => **o,
                }
            }
        };
        match (chosen.has_arg, inline) {
            (HasArg::No, Some(_)) => Item::Error(format!(
                "{}: option '--{}' doesn't allow an argument",
                self.prog, chosen.name
            )),
            (HasArg::No, None) => Item::Opt(chosen.code, None),
            (HasArg::Optional, v) => Item::Opt(chosen.code, v),
            (HasArg::Required, Some(v)) => Item::Opt(chosen.code, Some(v)),
            (HasArg::Required, None) => match self.args.get(self.pos) {
                Some(a) => {
                    let a = a.clone();
                    self.pos += 1;
                    Item::Opt(chosen.code, Some(a))
                }
                None => Item::Error(format!(
                    "{}: option '--{}' requires an argument",
                    self.prog, chosen.name
                )),
            },
        }
    }
}

impl Iterator for Getopt<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if !self.cluster.is_empty() {
            return Some(self.next_short());
        }
        while !self.done {
            let Some(arg) = self.args.get(self.pos).cloned() else {
                self.done = true;
                break;
            };
            self.pos += 1;
            if arg == "--" {
                self.operands.extend(self.args[self.pos..].iter().cloned());
                self.pos = self.args.len();
                self.done = true;
                break;
            }
            if let Some(body) = arg.strip_prefix("--") {
                return Some(self.next_long(body));
            }
            if arg.len() > 1 && arg.starts_with('-') {
                self.cluster = arg[1..].chars().collect();
                return Some(self.next_short());
            }
            self.operands.push(arg);
            if self.stop_at_operand {
                self.operands.extend(self.args[self.pos..].iter().cloned());
                self.pos = self.args.len();
                self.done = true;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const LONG: &[LongOpt] = &[
        long("variable", HasArg::Required, 'r'),
        long("values-only", HasArg::No, 'v'),
        long("verbose", HasArg::No, 'V'),
        long("syslog", HasArg::Optional, 's'),
    ];

    fn all(optstring: &str, v: &[&str]) -> (Vec<Item>, Vec<String>) {
        let a = args(v);
        let mut g = Getopt::new("cgget", &a, optstring, LONG);
        let items: Vec<Item> = g.by_ref().collect();
        (items, g.operands().to_vec())
    }

    fn opt(c: char, a: Option<&str>) -> Item {
        Item::Opt(c, a.map(str::to_string))
    }

    #[test]
    fn permutes_clusters_and_attached_arguments() {
        let (items, ops) = all(
            "r:nvs::",
            &["G", "-nv", "-rcpu.shares", "H", "-r", "x", "-sD"],
        );
        assert_eq!(
            items,
            vec![
                opt('n', None),
                opt('v', None),
                opt('r', Some("cpu.shares")),
                opt('r', Some("x")),
                opt('s', Some("D")),
            ]
        );
        assert_eq!(ops, args(&["G", "H"]));
    }

    #[test]
    fn plus_stops_at_the_first_operand() {
        let (items, ops) = all("+g:", &["-g", "cpu:G", "sh", "-c", "-g"]);
        assert_eq!(items, vec![opt('g', Some("cpu:G"))]);
        assert_eq!(ops, args(&["sh", "-c", "-g"]));
        let (_, ops) = all("g:", &["-g", "a", "--", "-x", "y"]);
        assert_eq!(ops, args(&["-x", "y"]));
    }

    #[test]
    fn long_options_with_prefixes_and_glibc_messages() {
        let (items, _) = all(
            "r:v",
            &[
                "--variable=a",
                "--var",
                "b",
                "--values",
                "--sys",
                "--syslog=1",
            ],
        );
        assert_eq!(
            items,
            vec![
                opt('r', Some("a")),
                opt('r', Some("b")),
                opt('v', None),
                opt('s', None),
                opt('s', Some("1")),
            ]
        );
        let (items, _) = all("r:", &["--nope=3"]);
        assert_eq!(
            items,
            vec![Item::Error("cgget: unrecognized option '--nope=3'".into())]
        );
        let (items, _) = all("r:", &["-x", "-r", "--nope", "--values-only=1", "--v"]);
        let msgs: Vec<String> = items
            .into_iter()
            .map(|i| match i {
                Item::Error(m) => m,
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            msgs,
            vec![
                "cgget: invalid option -- 'x'".to_string(),
                "Opt('r', Some(\"--nope\"))".to_string(),
                "cgget: option '--values-only' doesn't allow an argument".to_string(),
                "cgget: option '--v' is ambiguous; possibilities: '--variable' '--values-only' '--verbose'"
                    .to_string(),
            ]
        );
        let (items, _) = all("r:", &["-r"]);
        assert_eq!(
            items,
            vec![Item::Error(
                "cgget: option requires an argument -- 'r'".into()
            )]
        );
        let (items, _) = all("r:", &["--variable"]);
        assert_eq!(
            items,
            vec![Item::Error(
                "cgget: option '--variable' requires an argument".into()
            )]
        );
    }

    #[test]
    fn a_lone_dash_is_an_operand() {
        let (items, ops) = all("f:", &["-f", "-", "-"]);
        assert_eq!(items, vec![opt('f', Some("-"))]);
        assert_eq!(ops, args(&["-"]));
    }
}
