//! One module per command; this one holds what they share.

mod config;
mod connect;
mod diagnose;
mod discover;
mod docs;
mod firewall;
mod host;
mod join;
mod listen;
mod peers;
mod resolve;
mod short;
mod strategies;
mod stream;

use localpair_core::config::{Settings, Source};
use localpair_core::{Context, Registry};
use localpair_pairing::Device;

use crate::args::{Args, Command};
use crate::error::Error;

pub(crate) fn execute(args: &Args) -> Result<(), Error> {
    match &args.command {
        Command::Strategies => strategies::run(args),
        Command::Config => config::run(args),
        Command::Resolve => resolve::run(args),
        Command::Discover {
            timeout,
            watch: true,
            ..
        } => discover::watch(args, *timeout),
        Command::Discover { timeout, count, .. } => discover::run(args, *timeout, *count),
        Command::Host {
            short: true,
            no_save,
            ..
        } => short::host(args, !no_save),
        Command::Host {
            flow,
            qr,
            keep_qr,
            no_save,
            ..
        } => host::run(args, *flow, qr, *keep_qr, !no_save),
        Command::Join {
            short: Some(code),
            no_save,
            ..
        } => short::join(
            args,
            Some(code.as_str()).filter(|c| !c.is_empty()),
            !no_save,
        ),
        Command::Join {
            code,
            code_file,
            no_save,
            ..
        } => join::run(args, code.as_deref(), code_file.as_deref(), !no_save),
        Command::Listen { once } => listen::run(args, *once),
        Command::Connect { peer } => connect::run(args, peer),
        Command::Peers => peers::list(args),
        Command::Forget { peer } => peers::forget(args, peer),
        Command::Firewall { shell } => firewall::run(args, *shell),
        Command::Completions { shell } => docs::completions(*shell),
        Command::Man => docs::man(),
        Command::Diagnose {
            out,
            redact,
            window,
        } => diagnose::run(args, out.as_deref(), *redact, *window),
    }
}

/// Settings and registry, checked: any problem here is a configuration error (exit 2).
pub(crate) fn load(args: &Args) -> Result<(Settings, Registry), Error> {
    let source = match &args.config {
        Some(path) => Source::File(path.clone()),
        None => Source::Discover,
    };
    let mut settings = Settings::load(source).map_err(Error::Config)?;
    if let Some(dir) = &args.state_dir {
        settings = settings
            .with_flag("device.state_dir", dir, "--state-dir")
            .map_err(Error::Config)?;
    }
    if args.ephemeral {
        settings = settings
            .with_flag("device.ephemeral", true, "--ephemeral")
            .map_err(Error::Config)?;
    }
    let registry = Registry::linked().map_err(Error::Config)?;
    registry.check_tables(&settings).map_err(Error::Config)?;
    Ok((settings, registry))
}

/// Runs `operation` on a multi-threaded runtime sized for a small machine, then shuts the runtime
/// down without waiting for a blocked stdin reader (a `join` that timed out waiting for its code).
pub(crate) fn block_on<T>(operation: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(operation);
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    result
}

/// Identity, listener and context for an operation.
pub(crate) fn context(settings: Settings) -> Result<Context, Error> {
    Context::start(settings).map_err(Error::Setup)
}

/// The device (identity, trust store, listener) for a pairing command. A broken key file, trust
/// store or section is a configuration error (exit 2): nothing was tried yet.
pub(crate) fn device(settings: Settings, registry: Registry) -> Result<Device, Error> {
    Device::open(settings, registry).map_err(|error| match error {
        localpair_pairing::Error::Core(e @ localpair_core::Error::Random) => Error::Setup(e),
        localpair_pairing::Error::Core(localpair_core::Error::Io { op, source }) => {
            Error::Setup(localpair_core::Error::Io { op, source })
        }
        other => Error::Usage(other),
    })
}

/// Resolves on Ctrl-C, or on SIGTERM on Unix (never, if no handler can be installed): both ask
/// for a clean stop, so what the command made for its run (a QR file, a port mapping) is removed.
pub(crate) async fn interrupted() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// One line on stderr: progress, not output.
pub(crate) fn progress(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A peer in one line, for progress output.
pub(crate) fn describe_peer(peer: &localpair_core::Peer) -> String {
    let addrs: Vec<String> = peer.addrs.iter().map(ToString::to_string).collect();
    let name = if peer.name.is_empty() {
        "(unnamed)"
    } else {
        peer.name.as_str()
    };
    format!(
        "{name} [{}] at {} via {} after {:.0} ms",
        peer.id,
        addrs.join(", "),
        peer.strategy,
        peer.found_after.as_secs_f64() * 1000.0
    )
}

/// "Paired with …" for people, from either side.
pub(crate) fn paired_line(
    peer: &localpair_pairing::PairedPeer,
    via: Option<&str>,
    elapsed: std::time::Duration,
) -> String {
    let via = via.map(|v| format!(" via {v}")).unwrap_or_default();
    format!(
        "Paired with {} [{}] at {}{via} (key {}) after {:.0} ms\n",
        peer.name,
        peer.id,
        peer.addr,
        peer.fingerprint,
        elapsed.as_secs_f64() * 1000.0
    )
}
