//! The `enforcer` binary: clap parsing and nothing else (see `cli`).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
                enforcer::cli::error_message(&e)
            );
            ExitCode::from(enforcer::cli::exit_code(&e))
        }
    }
}
