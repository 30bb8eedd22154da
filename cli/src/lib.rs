//! The `localpair` command line, as a library so a custom binary can add strategy crates and
//! reuse the whole CLI.
//!
//! Strategies register themselves when their crate is linked; this crate links every built-in
//! one. A custom binary links its own crate too and calls [`main`]:
//!
//! ```no_run
//! // use my_strategy as _; // the crate that calls localpair_core::register_resolver!
//! fn main() -> std::process::ExitCode {
//!     localpair_cli::main()
//! }
//! ```
//!
//! Exit status: 0 on success, 1 when the operation failed (one line on stderr says why), 2 on bad
//! usage or configuration. With `--json` every command prints exactly one JSON object on stdout.

mod args;
mod commands;
mod error;
mod logging;
mod output;
mod progress;
mod qr;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use args::{Args, Command};
pub use error::Error;

// The linker drops a crate nobody references, and its registrations with it.
use localpair_direct as _;
use localpair_interface_sweep as _;
use localpair_mdns as _;
use localpair_outbound_route as _;
use localpair_subnet_scan as _;
use localpair_udp_multicast as _;
use localpair_upnp as _;

/// Runs the CLI on the process arguments.
pub fn main() -> ExitCode {
    run(std::env::args_os())
}

/// Runs the CLI on the given arguments (the first one is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let parsed = match Args::try_parse_from(&args) {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = error.print();
            if !error.use_stderr() {
                return ExitCode::SUCCESS;
            }
            if args.iter().any(|a| a == "--json") {
                output::usage_json(&error.to_string());
            }
            return ExitCode::from(2);
        }
    };
    logging::init(parsed.verbose, parsed.quiet);
    match commands::execute(&parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output::error_line(&error);
            if parsed.json {
                output::error_json(&error);
            }
            ExitCode::from(error.exit_code())
        }
    }
}
