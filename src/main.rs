//! The `guidesmith` command line: a thin layer that parses arguments, calls the library and prints.
//!
//! Exit codes: 0 success, 1 input error (bad file, failed check), 2 usage error (clap's own).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (e.g. `guidesmith info ... | head`) is not an error worth reporting.
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
