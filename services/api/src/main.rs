//! `campus`: one binary for the whole platform. See `campus --help`.

use clap::Parser;

/// mimalloc instead of glibc's malloc: under glibc, every thread's arena kept the 19 MiB
/// each Argon2 verification allocates, and a morning of sign-ins grew the process to 7 GB
/// that it never gave back; mimalloc returns freed memory to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = campus::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match runtime.block_on(campus::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    // Do not wait for background tasks (listeners, pools) to notice the end.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    std::process::exit(code);
}
