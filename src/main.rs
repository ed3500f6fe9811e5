//! The `zerotouch` binary: parse arguments, set up logging, run a command, and turn its
//! outcome into an exit code. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
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
