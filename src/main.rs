//! The `bulk-invite` command: parse the command line and hand over.

use clap::Parser;

/// mimalloc instead of glibc's allocator: a read answer is many small
/// allocations (rows, strings, JSON) freed at once, where glibc spent 15 %
/// of a report page's CPU (perf, issue 12).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
