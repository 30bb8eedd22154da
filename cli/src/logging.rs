//! Log output on stderr: `-v`/`-q` pick the level, `RUST_LOG` overrides. `diagnose` also keeps
//! the log in memory for its report ([`capture`]).

use std::sync::OnceLock;

use localpair_diagnostics::LogCapture;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// The report's log, once `diagnose` asked for it; until then events pass it by.
static CAPTURE: OnceLock<LogCapture> = OnceLock::new();

pub(crate) fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // A log redirected to a file, or read with NO_COLOR set, stays plain text.
        .with_ansi(crate::progress::colour_stderr())
        .with_target(verbose >= 2)
        .with_filter(filter);
    // Installed for every command, because the subscriber is set before the command is known;
    // it records nothing until `capture` is called.
    let report = Deferred.with_filter(LogCapture::filter());
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(report)
        .try_init();
}

/// Starts keeping the log (at most `capacity` entries) for a report, whatever the stderr level.
pub(crate) fn capture(capacity: usize) -> LogCapture {
    CAPTURE.get_or_init(|| LogCapture::new(capacity)).clone()
}

struct Deferred;

impl<S: Subscriber> Layer<S> for Deferred {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if let Some(capture) = CAPTURE.get() {
            capture.unfiltered_layer().on_event(event, ctx);
        }
    }
}
