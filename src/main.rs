//! The `mlsize` binary: parse arguments, run, print the one error, exit.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match mlsize::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match mlsize::app::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`mlsize analyze x | head`) is not an error.
            if err
                .chain()
                .filter_map(|c| c.downcast_ref::<io::Error>())
                .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(io::stderr(), "mlsize: {err:#}");
            ExitCode::from(2)
        }
    }
}
