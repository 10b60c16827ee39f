//! `enforcer completions SHELL` (clap_complete) and `enforcer man [VERB]`
//! (clap_mangen): generated from the same clap definitions as the parser, so
//! they never disagree with it.

use std::io::{IsTerminal as _, Write as _};
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory as _;

use super::args::Cli;
use super::print::{self, outln};

/// Manual section of every page: enforcer is an administration tool.
const SECTION: &str = "8";

pub(super) fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "enforcer", &mut buf);
    print::out(format_args!("{}", String::from_utf8_lossy(&buf)))
}

fn page(cmd: clap::Command, name: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.name(name.to_string()))
        .section(SECTION)
        .manual("enforcer")
        .source(format!("enforcer {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)
        .context("rendering the manual page")?;
    Ok(buf)
}

/// Every page: `enforcer` and `enforcer-VERB`, with their file names.
fn pages() -> Result<Vec<(String, Vec<u8>)>> {
    let root = Cli::command();
    let mut out = vec![(
        format!("enforcer.{SECTION}"),
        page(root.clone(), "enforcer")?,
    )];
    for sub in root.get_subcommands() {
        let name = format!("enforcer-{}", sub.get_name());
        out.push((format!("{name}.{SECTION}"), page(sub.clone(), &name)?));
    }
    Ok(out)
}

pub(super) fn man(verb: Option<&str>, out_dir: Option<&Path>) -> Result<()> {
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let pages = pages()?;
        for (file, roff) in &pages {
            let path = dir.join(file);
            std::fs::write(&path, roff).with_context(|| format!("writing {}", path.display()))?;
        }
        return outln!("wrote {} manual pages to {}", pages.len(), dir.display());
    }
    let root = Cli::command();
    let roff = match verb {
        None => page(root, "enforcer")?,
        Some(v) => {
            let Some(sub) = root.find_subcommand(v) else {
                let verbs: Vec<&str> = root.get_subcommands().map(|s| s.get_name()).collect();
                return Err(crate::cgroup::CgroupError::Usage(format!(
                    "no verb {v:?}: choose one of {}",
                    verbs.join(", ")
                ))
                .into());
            };
            page(sub.clone(), &format!("enforcer-{v}"))?
        }
    };
    // On a terminal, show it as man(1) would; into a pipe, the roff source.
    if std::io::stdout().is_terminal()
        && let Ok(mut child) = std::process::Command::new("man")
            .args(["-l", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
    {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(&roff);
        }
        let _ = child.wait();
        return Ok(());
    }
    print::out(format_args!("{}", String::from_utf8_lossy(&roff)))
}
