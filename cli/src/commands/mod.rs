//! One module per command; this one holds what they share.

mod resolve;
mod strategies;

use localpair_core::config::{Settings, Source};
use localpair_core::{Context, Registry};

use crate::args::{Args, Command};
use crate::error::Error;

pub(crate) fn execute(args: &Args) -> Result<(), Error> {
    match &args.command {
        Command::Strategies => strategies::run(args),
        Command::Resolve => resolve::run(args),
    }
}

/// Settings and registry, checked: any problem here is a configuration error (exit 2).
pub(crate) fn load(args: &Args) -> Result<(Settings, Registry), Error> {
    let source = match &args.config {
        Some(path) => Source::File(path.clone()),
        None => Source::Discover,
    };
    let settings = Settings::load(source).map_err(Error::Config)?;
    let registry = Registry::linked().map_err(Error::Config)?;
    registry.check_tables(&settings).map_err(Error::Config)?;
    Ok((settings, registry))
}

/// A multi-threaded runtime sized for a small machine.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

/// Identity, listener and context for an operation.
pub(crate) fn context(settings: Settings) -> Result<Context, Error> {
    Context::start(settings).map_err(Error::Setup)
}
