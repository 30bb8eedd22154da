//! What the user sees while a command waits: one spinner line on stderr when stderr is a
//! terminal (never on a pipe or a file, never with `--json` or `-q`), and whether colour may be
//! used at all.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::Args;

/// Whether text for a stream may carry colours and other ANSI escapes: the stream is a
/// terminal and `NO_COLOR` is unset or empty (<https://no-color.org>).
pub(crate) fn colour(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stderr may carry colours.
pub(crate) fn colour_stderr() -> bool {
    colour(std::io::stderr().is_terminal())
}

/// One line on stderr that says what is being tried, ticking while it waits; nothing at all
/// when stderr is not a terminal. Cleared when dropped.
#[derive(Clone)]
pub(crate) struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// A spinner saying `message`, when `args` and stderr allow one.
    pub(crate) fn start(args: &Args, message: &str) -> Self {
        let spinner = Self::hidden(args, message);
        spinner.show();
        spinner
    }

    /// A spinner that draws nothing until [`Spinner::show`] (while the user types on the same
    /// terminal, say).
    pub(crate) fn hidden(args: &Args, message: &str) -> Self {
        let allowed = !args.json && !args.quiet && std::io::stderr().is_terminal();
        Self(allowed.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(message.to_owned());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        }))
    }

    /// Starts drawing.
    pub(crate) fn show(&self) {
        if let Some(bar) = &self.0 {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Says what is being tried now.
    pub(crate) fn say(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    /// Restarts the elapsed time (a new step began).
    pub(crate) fn restart(&self) {
        if let Some(bar) = &self.0 {
            bar.reset_elapsed();
        }
    }

    /// A line of its own on stderr, above the spinner.
    pub(crate) fn line(&self, line: &str) {
        match &self.0 {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => crate::commands::progress(line),
        }
    }

    /// Removes the spinner line.
    pub(crate) fn clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
