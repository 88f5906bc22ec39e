//! The `guidesmith` command line: a thin layer that parses arguments, calls the library and prints.
//!
//! Exit codes: 0 success, 1 input error (bad file, failed check), 2 usage error (clap's own).

#[cfg(feature = "gui")]
mod app;
mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Panics of third-party pixel codecs on damaged files are caught by the library and become "damaged file"
    // errors; say so in one line instead of a backtrace. Any other panic is a bug and still ends the program.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic: {info} (a decoder's panic is reported as a damaged file below; any other is a bug)");
    }));
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
