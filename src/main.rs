//! The `zerotouch` binary: parse arguments, set up logging, run a command, and turn its
//! outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    zerotouch::datadir::private_umask();
    let args: zerotouch::cli::Args = argh::from_env();
    if !matches!(args.command, Some(zerotouch::cli::Command::Serve(_))) {
        default_sigpipe();
    }
    match zerotouch::cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` prints the whole chain on one line: "reading config.toml: ...: ...".
            eprintln!("zerotouch: {err:#}");
            if let Some(zerotouch::Error::NeedsConfirmation { phones, .. }) =
                err.downcast_ref::<zerotouch::Error>()
            {
                for p in phones {
                    eprintln!("  {}: {}", p.mac, p.reason);
                }
                eprintln!("zerotouch: nothing was changed; run again with --yes to go ahead");
            }
            ExitCode::from(1)
        }
    }
}

/// glibc gives each busy thread its own malloc arena, up to eight per core; with a thread
/// per connection, thousands of phones leave memory spread over many arenas that are never
/// given back (measured: 5,000 idle connections during a 10,000-phone storm, 353 MB with
/// the default, 323 MB with two arenas, same throughput). One arena per core, at least two.
/// One of the two `unsafe` blocks of the program: plain libc calls with no pointers.
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

/// Output piped into a reader that stops early (`zerotouch device list | head -1`) ends the
/// command quietly, as it ends `cat` or `ls`, instead of a panic on the failed write: Rust
/// ignores SIGPIPE, so every `println!` after the reader is gone would panic. Not for
/// `serve`, which must never die because a client hung up (a `sendfile` to a closed socket
/// raises SIGPIPE). Writes already committed stay committed; a write under way is a
/// transaction, whole or absent.
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: sets one signal's disposition back to the default; no handler, no pointers,
    // called before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
