//! The `localpair` binary: the CLI with every built-in strategy.

fn main() -> std::process::ExitCode {
    localpair_cli::main()
}
