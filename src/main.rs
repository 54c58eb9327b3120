//! `carelog`: parses the command line and hands over to the library.

use clap::Parser;

/// jemalloc serves every allocation of the process: Rust's, and through the
/// unprefixed `malloc` it exports, SQLite's and the other C libraries' too.
/// Measured against glibc's allocator on a 100,000-patient store
/// (docs/performance.md, "Memory and the allocator"): a family's detail at
/// 32 clients twice the throughput, the lists a fifth more, and a peak
/// resident size of 127-132 MB where glibc's per-thread arenas held 153 MB.
/// Its options are its defaults (an operator may set `MALLOC_CONF`):
/// `background_thread:true` raised the peak to 165-197 MB in the same run.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    carelog::telemetry::init();
    let cli = carelog::cli::Cli::parse();
    match carelog::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carelog: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
