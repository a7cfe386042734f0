//! The `socklab` command: parses arguments, runs a feature from the library, prints, exits.
#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
