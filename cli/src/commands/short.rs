//! `localpair host --short` and `localpair join --short`: pairing by a code read aloud.

use std::io::{BufRead as _, IsTerminal as _, Read as _};

use localpair_pairing::short::{ShortCode, verification_code};
use serde_json::json;

use super::join::MAX_LINE;
use super::{block_on, describe_peer, device, interrupted, load, paired_line, progress};
use crate::args::Args;
use crate::error::Error;
use crate::output;
use crate::progress::Spinner;

pub(super) fn host(args: &Args, save: bool) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    block_on(async {
        let device = device(settings, registry)?.saving(save);
        let hosting = device.host_short().await.map_err(Error::Pairing)?;
        let code = hosting.code();
        let ttl = hosting.ttl();
        if args.json {
            output::json(&json!({
                "short_code": code.to_string(),
                "channel": code.channel,
                "expires_in_s": ttl.as_secs(),
            }))?;
        } else {
            output::text(&format!(
                "Short code (valid {} s; 3 wrong tries end it):\n\n    {code}\n\nOn the other \
                 device: localpair join --short\n",
                ttl.as_secs()
            ))?;
        }
        progress("Waiting for a device to join…");
        let outcome = tokio::select! {
            outcome = hosting.wait() => outcome.map_err(Error::Pairing),
            () = interrupted() => Err(Error::Interrupted),
        };
        drop(hosting);
        let own = device.identity().fingerprint();
        device.close().await;
        let (paired, mut link) = outcome?;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut link).await;
        let verification = verification_code(&paired.peer.fingerprint, &own);
        if args.json {
            output::json(&json!({
                "paired": true,
                "peer": paired.peer,
                "saved": save,
                "verification": verification,
                "elapsed_ms": paired.elapsed.as_secs_f64() * 1000.0,
            }))
        } else {
            output::text(&format!(
                "{}Both devices show the same check code: {verification}\n",
                paired_line(&paired.peer, None, paired.elapsed)
            ))
        }
    })
}

fn read_line() -> Result<ShortCode, localpair_pairing::Error> {
    let unreadable = |reason| localpair_pairing::Error::BadShortCode { reason };
    if std::io::stdin().is_terminal() {
        progress("Enter the short code shown on the host (like 47-392-8150):");
    }
    let mut line = String::new();
    match std::io::stdin().lock().take(MAX_LINE).read_line(&mut line) {
        Ok(0) => Err(unreadable("stdin closed before a code was entered")),
        Ok(_) => ShortCode::parse(line.trim()),
        Err(_) => Err(unreadable("stdin is not readable text")),
    }
}

pub(super) fn join(args: &Args, code: Option<&str>, save: bool) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    let given = code
        .map(|c| ShortCode::parse(c.trim()).map_err(Error::Usage))
        .transpose()?;
    let (joined, verification, after_code) = block_on(async {
        let device = device(settings, registry)?.saving(save);
        let spinner = Spinner::hidden(args, "looking for the host on the code's channel");
        let typing = given.is_none() && std::io::stdin().is_terminal();
        if !typing {
            spinner.show();
        }
        // The devices found while the code is typed, as `join` lists them.
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel(64);
        let shown = spinner.clone();
        let printer = tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while let Some(peer) = seen_rx.recv().await {
                let peer: localpair_core::Peer = peer;
                if seen.insert(peer.fingerprint) {
                    shown.line(&format!("found {}", describe_peer(&peer)));
                }
            }
        });
        let after_typing = spinner.clone();
        let (typed_tx, typed_rx) = tokio::sync::oneshot::channel();
        let code = async move {
            let code = match given {
                Some(code) => Ok(code),
                None => tokio::task::spawn_blocking(read_line).await.unwrap_or(Err(
                    localpair_pairing::Error::BadShortCode {
                        reason: "the stdin reader failed",
                    },
                )),
            };
            after_typing.show();
            // From here on the time is the exchange's, not the person's.
            let _ = typed_tx.send(std::time::Instant::now());
            code
        };
        let joined = tokio::select! {
            joined = device.join_short(code, Some(seen_tx)) => joined,
            () = interrupted() => return Err(Error::Interrupted),
        };
        printer.abort();
        spinner.clear();
        let after_code = typed_rx.await.ok().map(|typed| typed.elapsed());
        let (joined, mut link) = joined.map_err(|e| match e {
            e @ localpair_pairing::Error::BadShortCode { .. } => Error::Usage(e),
            e => Error::Pairing(e),
        })?;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut link).await;
        let verification =
            verification_code(&joined.peer.fingerprint, &device.identity().fingerprint());
        Ok((joined, verification, after_code))
    })?;
    if args.json {
        let mut object = super::join::joined_object(&joined, save);
        object["verification"] = json!(verification);
        object["code_to_paired_ms"] = json!(after_code.map(|d| d.as_secs_f64() * 1000.0));
        output::json(&object)
    } else {
        output::text(&format!(
            "{}Both devices show the same check code: {verification}\n",
            paired_line(&joined.peer, Some(&joined.via), joined.elapsed)
        ))
    }
}
