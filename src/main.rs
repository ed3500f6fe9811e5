//! The `zerotouch` binary: parse arguments, set up logging, run a command, and turn its
//! outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args: zerotouch::cli::Args = argh::from_env();
    match zerotouch::cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole chain on one line: "reading config.toml: ...: ...".
            eprintln!("zerotouch: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// glibc gives each busy thread its own malloc arena, up to eight per core; with a thread
/// per connection, thousands of phones leave memory spread over many arenas that are never
/// given back (measured: 5,000 idle connections during a 10,000-phone storm, 353 MB with
/// the default, 323 MB with two arenas, same throughput). One arena per core, at least two.
/// The only `unsafe` in the program: a plain libc call with no pointers.
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    // An admin's (or a benchmark's) own setting wins.
    if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max")) {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}
