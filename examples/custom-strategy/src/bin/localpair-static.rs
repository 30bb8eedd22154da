//! The whole `localpair` CLI, plus this crate's strategies.

// Naming the crate keeps it linked, and its registrations with it.
use localpair_example_static as _;

fn main() -> std::process::ExitCode {
    localpair_cli::main()
}
