//! Writing results: one JSON object, or text for people.

use std::io::Write as _;

use localpair_core::Attempt;
use serde::Serialize;

use crate::error::Error;

/// The version of every JSON object's shape (`"schema"` in each): raised when a field changes
/// meaning or goes away; new fields may appear without it.
pub(crate) const SCHEMA: u32 = 1;

/// Prints one JSON object (with `"schema"`) and a newline on stdout, flushed.
pub(crate) fn json<T: Serialize>(value: &T) -> Result<(), Error> {
    let mut value = serde_json::to_value(value).map_err(|e| Error::Output(e.into()))?;
    if let serde_json::Value::Object(object) = &mut value {
        object.insert("schema".to_owned(), SCHEMA.into());
    }
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &value).map_err(|e| Error::Output(e.into()))?;
    out.write_all(b"\n")
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

/// Prints text on stdout.
pub(crate) fn text(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

/// The one-line error on stderr.
pub(crate) fn error_line(error: &Error) {
    let _ = writeln!(std::io::stderr(), "error: {error}");
}

/// A command line that does not parse, as the one JSON object on stdout (clap printed the
/// details on stderr).
pub(crate) fn usage_json(message: &str) {
    let first = message.lines().next().unwrap_or(message);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let _ = json(&serde_json::json!({ "error": {
        "kind": "usage",
        "message": first,
        "hint": "`localpair --help` lists the commands and options",
        "exit_code": 2,
    }}));
}

/// The error as the one JSON object on stdout: `{"schema":1,"error":{...}}`.
pub(crate) fn error_json(error: &Error) {
    let _ = json(&serde_json::json!({ "error": error.to_json() }));
}

/// The attempts as an aligned table.
pub(crate) fn attempts_table(attempts: &[Attempt]) -> String {
    let width = attempts.iter().map(|a| a.strategy.len()).max().unwrap_or(0);
    let mut out = String::new();
    for a in attempts {
        let timing = match a.started_ms {
            Some(_) => format!("{:>6} ms", a.elapsed_ms),
            None => "        -".to_owned(),
        };
        out.push_str(&format!(
            "  {:<width$}  {:<9} {}",
            a.strategy,
            a.outcome.as_str(),
            timing
        ));
        if let Some(error) = &a.error {
            out.push_str(&format!("  {error}"));
        }
        if let Some(note) = &a.note {
            out.push_str(&format!("  ({note})"));
        }
        out.push('\n');
    }
    out
}
