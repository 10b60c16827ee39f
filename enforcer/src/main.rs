//! The `enforcer` binary: clap parsing and nothing else (see `cli`). Invoked
//! under a libcgroup tool's name (a symlink such as `cgget`), it is that tool
//! (see `compat`).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    if let Some(tool) = enforcer::compat::tool_name(&argv0) {
        // libcgroup's tools take bytes; a name that is not UTF-8 is passed
        // on lossily rather than refused, as the C would have used it.
        let args: Vec<String> = argv.map(|a| a.to_string_lossy().into_owned()).collect();
        return ExitCode::from(enforcer::compat::main(
            tool,
            &argv0.to_string_lossy(),
            &args,
        ));
    }
    // journald's fields under systemd; stderr, coloured only on a terminal
    // without NO_COLOR, otherwise.
    enforcer::logging::init();
    let cli = enforcer::cli::Cli::parse();
    match enforcer::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr must not turn an error into a panic.
            let _ = writeln!(
                std::io::stderr(),
                "enforcer: error: {}",
                enforcer::escape::terminal_safe(&enforcer::cli::error_message(&e))
            );
            ExitCode::from(enforcer::cli::exit_code(&e))
        }
    }
}
