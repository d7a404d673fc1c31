//! The `flightrec` binary.
use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(flightrec_cli::main_with_args(std::env::args_os()))
}
