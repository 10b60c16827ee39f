//! The `enforcer` binary: clap parsing and nothing else (see `cli`).

use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENFORCER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // No escape codes into pipes and files, nor where NO_COLOR is set.
        .with_ansi(
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
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
