//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Find devices on the local network and pair with them securely.
#[derive(Debug, Clone, Parser)]
#[command(name = "localpair", version, about)]
#[non_exhaustive]
pub struct Args {
    /// Read this config file (it must exist) instead of ./localpair.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print exactly one JSON object on stdout; progress goes to stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// List registered strategies (name, kind, crate).
    Strategies,
    /// Run the resolver chain: which of my addresses can a peer reach?
    Resolve,
}
