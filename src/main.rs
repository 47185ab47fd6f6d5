//! The `bulk-invite` command: parse the command line and hand over.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = bulk_invite::cli::Cli::parse();
    match bulk_invite::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bulk-invite: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
