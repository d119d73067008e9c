#![deny(clippy::unwrap_used)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cdw::commands::run(cdw::commands::Cli::parse())
}
