//! The `enforcer` binary: clap parsing and nothing else (see `cli`). Invoked
//! under a libcgroup tool's name (a symlink such as `cgget`), it is that tool
//! (see `compat`).

use std::io::{IsTerminal, Write as _};
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
