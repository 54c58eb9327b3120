//! `carelog`: parses the command line and hands over to the library.

use clap::Parser;

/// jemalloc serves every allocation of the process: Rust's, and through the
/// unprefixed `malloc` it exports, SQLite's and the other C libraries' too.
/// Measured against glibc's allocator on a 100,000-patient store
/// (docs/performance.md, "Memory and the allocator"): a family's detail at
/// 32 clients twice the throughput, the lists a fifth more, and a peak
/// resident size of 127-132 MB where glibc's per-thread arenas held 153 MB.
/// `background_thread:true` raised the peak to 165-197 MB in the same run.
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation; `MALLOC_CONF` set by an
/// operator is read after them and wins. One arena per CPU
/// (`percpu_arena:percpu`) instead of four: memory a task frees on one thread
/// is reused by the next on another instead of staying with an arena nobody
/// asks again. Measured at 1,000,000 patients (docs/performance.md, "A
/// follower's batch by bytes, and an arena per CPU"): the first start's peak
/// fell from 147-158 MB to 120-128 MB; `POST /families` at 32 clients did not
/// change, a recorder's list at 32 clients lost 2-7 %.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[export_name = "malloc_conf"]
static MALLOC_CONF: MallocConf = MallocConf(c"percpu_arena:percpu".as_ptr());

/// A C string pointer jemalloc reads once, before `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[repr(transparent)]
struct MallocConf(*const std::ffi::c_char);

// SAFETY: the pointer is to a static string that is never written.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe impl Sync for MallocConf {}

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
