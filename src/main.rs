//! The `bulk-invite` command: parse the command line and hand over.

use clap::Parser;

/// mimalloc instead of glibc's allocator: a read answer is many small
/// allocations (rows, strings, JSON) freed at once, where glibc spent 15 %
/// of a report page's CPU (perf, issue 12).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option (`mi_option_purge_delay` in mimalloc.h,
/// not among the constants the Rust binding names).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Freed memory goes back to the system at once, not after mimalloc's
    // delay: the heap of a thread that has ended (the second thread of an
    // import, which held a million addresses' keys) kept its freed pages
    // until another thread took it over, 60-90 MB more at the next large
    // import's peak. MIMALLOC_PURGE_DELAY still overrides it.
    // SAFETY: sets one of mimalloc's options before any thread starts; it
    // takes no pointers.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, 0) };
    let cli = bulk_invite::cli::Cli::parse();
    match bulk_invite::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bulk-invite: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
