use std::process::ExitCode;

use clap::Parser;
use kinetick::cli::{self, Cli};

/// jemalloc rather than glibc's malloc: allocating and freeing are a large part of the hot path,
/// and jemalloc makes them much cheaper (docs/performance.md has the figures).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options (`_RJEM_MALLOC_CONF` in the environment overrides them): one arena per
/// CPU instead of four per CPU, so fewer arenas keep freed pages for reuse: a lower peak RSS at
/// the same speed.
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_OPTIONS: &u8 = &b"percpu_arena:percpu\0"[0];

fn main() -> ExitCode {
    let cli = Cli::parse();
    kinetick::telemetry::init(
        cli.log_format,
        cli.command.log_target(),
        cli.command.default_log_level(),
    );
    // A panic on any actor thread is a bug: end the process rather than leave a shard silently
    // dead; the orchestrator restarts it and it resumes from the last checkpoint.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    match actix::System::new().block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => cli::fail(&error),
    }
}
