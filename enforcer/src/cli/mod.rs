//! The thin command-line layer: parse with clap, call the library, print.

mod args;
mod commands;
mod print;

pub use args::{Cli, Command};
pub use commands::{error_text, exit_code, run};
