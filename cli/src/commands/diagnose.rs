//! `localpair diagnose`: the diagnostics report, as text or JSON, optionally saved and redacted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use localpair_core::interfaces::InterfaceFilter;
use localpair_diagnostics::{
    self as diagnostics, DiagnosticsConfig, Options, ProgressEvent, Report,
};

use super::{block_on, interrupted, load, progress};
use crate::args::Args;
use crate::error::Error;
use crate::progress::Spinner;
use crate::{logging, output};

pub(super) fn run(
    args: &Args,
    out: Option<&Path>,
    redact: bool,
    window: Option<Duration>,
) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    // A bad glob would keep the listener from starting; like any bad value it is a usage error.
    InterfaceFilter::new(&settings.config().interfaces).map_err(Error::Config)?;
    let config = DiagnosticsConfig::from_settings(&settings).map_err(Error::Config)?;
    let capture = logging::capture(config.log_capacity);
    let mut options = Options::default().with_capture(capture);
    if let Some(window) = window {
        options = options.with_window(window);
    }
    let spinner = Spinner::start(args, "starting");
    options = options.with_progress(show_progress(spinner.clone()));
    let report = block_on(async {
        tokio::select! {
            report = diagnostics::run_with_settings(settings, &registry, options) => Ok(report),
            () = interrupted() => Err(Error::Interrupted),
        }
    });
    spinner.clear();
    let report = report?;
    let report = if redact { report.redacted(&[]) } else { report };
    if args.json {
        output::json(&report)?;
    } else {
        output::text(&report.to_text())?;
    }
    if let Some(path) = out {
        save(&report, path)?;
        if !args.json {
            progress(&format!("report saved to {}", path.display()));
        }
    }
    Ok(())
}

fn save(report: &Report, path: &Path) -> Result<(), Error> {
    let file_error = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    let mut text = serde_json::to_string_pretty(report).map_err(|e| file_error(e.into()))?;
    text.push('\n');
    // The report names this machine's addresses, interfaces and peers: 0600, written atomically
    // and never through a symbolic link, like every file localpair writes.
    localpair_core::state::write_private(path, text.as_bytes()).map_err(file_error)
}

fn show_progress(bar: Spinner) -> diagnostics::Progress {
    Arc::new(move |event: &ProgressEvent| {
        if let ProgressEvent::Started {
            name,
            index,
            total,
            expected,
            ..
        } = event
        {
            let wait = expected
                .map(|d| format!(" (announcing and listening for {:.0} s)", d.as_secs_f64()))
                .unwrap_or_default();
            bar.restart();
            bar.say(format!("[{index}/{total}] {name}{wait}"));
        }
    })
}
