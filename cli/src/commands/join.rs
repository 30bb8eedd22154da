//! `localpair join`.

use std::io::{BufRead as _, IsTerminal as _, Read as _};
use std::path::Path;

use localpair_pairing::code::PairingCode;

use serde_json::json;
use tokio::sync::mpsc;

use super::{block_on, describe_peer, device, interrupted, load, paired_line, progress};
use crate::args::Args;
use crate::error::Error;
use crate::output;
use crate::progress::Spinner;

/// A code longer than this on stdin or in a code file is not a code; stop reading there.
pub(super) const MAX_LINE: u64 = 4096;

/// `--code-file`: the whole file (whitespace and line breaks are forgiven by the parser), at most
/// [`MAX_LINE`] bytes. A file other users can read is used, with a warning: the code is single
/// use and short-lived, the file was most likely just written under a default umask, and refusing
/// would only push people back to the command line, which every local user can read anyway.
fn read_code_file(path: &Path) -> Result<PairingCode, Error> {
    let refuse = |reason: String| Error::CodeFile {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| refuse(e.to_string()))?;
    #[cfg(unix)]
    if let Ok(meta) = file.metadata() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            let warning = format!(
                "{} can be read by other users (mode {mode:03o}) and holds the code's secret \
                 until it is used or expires; `chmod 600 {}` next time, or pipe the code to stdin",
                path.display(),
                path.display()
            );
            tracing::warn!("{warning}");
            progress(&format!("warning: {warning}"));
        }
    }
    let mut bytes = Vec::new();
    file.take(MAX_LINE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(e.to_string()))?;
    if bytes.len() as u64 > MAX_LINE {
        return Err(refuse(format!(
            "is longer than {MAX_LINE} bytes: not a pairing code"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| refuse("is not text".to_owned()))?;
    PairingCode::parse(&text).map_err(Error::Usage)
}

fn read_code_line() -> Result<PairingCode, localpair_pairing::Error> {
    if std::io::stdin().is_terminal() {
        progress("Enter the pairing code shown on the host (discovery is already running):");
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().take(MAX_LINE).read_line(&mut line);
    match read {
        Ok(0) => Err(localpair_pairing::Error::CorruptedCode {
            reason: "stdin closed before a code was entered",
        }),
        Ok(_) => PairingCode::parse(&line),
        Err(_) => Err(localpair_pairing::Error::CorruptedCode {
            reason: "stdin is not readable text",
        }),
    }
}

pub(super) fn run(
    args: &Args,
    code: Option<&str>,
    code_file: Option<&Path>,
    save: bool,
) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    let given = match (code, code_file) {
        (Some(code), _) => Some(PairingCode::parse(code).map_err(Error::Usage)?),
        (None, Some(path)) => Some(read_code_file(path)?),
        (None, None) => None,
    };
    let joined = block_on(async {
        let device = device(settings, registry)?.saving(save);
        let (seen_tx, mut seen_rx) = mpsc::channel(64);
        // While a code is typed on this terminal, nothing else draws on it.
        let typing = given.is_none() && std::io::stdin().is_terminal();
        let spinner = Spinner::hidden(args, "looking for devices and for the host");
        if !typing {
            spinner.show();
        }
        let after_typing = spinner.clone();
        let shown = spinner.clone();
        let printer = tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while let Some(peer) = seen_rx.recv().await {
                shown.line(&format!("found {}", describe_peer(&peer)));
                seen.insert(peer.fingerprint);
                shown.say(format!(
                    "trying every address found for the host ({} device(s) seen)",
                    seen.len()
                ));
            }
        });
        let code = async move {
            let code = match given {
                Some(code) => Ok(code),
                None => tokio::task::spawn_blocking(read_code_line)
                    .await
                    .unwrap_or(Err(localpair_pairing::Error::CorruptedCode {
                        reason: "the stdin reader failed",
                    })),
            };
            after_typing.show();
            code
        };
        let joined = tokio::select! {
            joined = device.join(code, Some(seen_tx)) => joined,
            () = interrupted() => return Err(Error::Interrupted),
        };
        printer.abort();
        spinner.clear();
        let (joined, mut link) = joined.map_err(|e| match e {
            e @ (localpair_pairing::Error::CorruptedCode { .. }
            | localpair_pairing::Error::NewerCode { .. }) => Error::Usage(e),
            e => Error::Pairing(e),
        })?;
        // The command line only pairs: close the stream an application would keep.
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut link).await;
        Ok(joined)
    })?;
    if args.json {
        output::json(&joined_object(&joined, save))
    } else {
        output::text(&paired_line(
            &joined.peer,
            Some(&joined.via),
            joined.elapsed,
        ))
    }
}

/// The `--json` object of a finished join (QR code or short code).
pub(super) fn joined_object(joined: &localpair_pairing::Joined, save: bool) -> serde_json::Value {
    json!({
        "paired": true,
        "peer": {
            "id": joined.peer.id,
            "name": joined.peer.name,
            "addr": joined.peer.addr,
            "fingerprint": joined.peer.fingerprint,
        },
        "via": joined.via,
        "elapsed_ms": joined.elapsed.as_secs_f64() * 1000.0,
        "dials": joined.dials,
        "saved": save,
    })
}
