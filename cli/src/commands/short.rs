//! `localpair host --short` and `localpair join --short`: pairing by a code read aloud.

use std::io::{BufRead as _, IsTerminal as _, Read as _};

use localpair_pairing::short::{ShortCode, verification_code};
use serde_json::json;

use super::join::MAX_LINE;
use super::{block_on, device, interrupted, load, paired_line, progress};
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
    let (joined, verification) = block_on(async {
        let device = device(settings, registry)?.saving(save);
        let spinner = Spinner::hidden(args, "looking for the host on the code's channel");
        let typing = given.is_none() && std::io::stdin().is_terminal();
        if !typing {
            spinner.show();
        }
        let after_typing = spinner.clone();
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
            code
        };
        let joined = tokio::select! {
            joined = device.join_short(code, None) => joined,
            () = interrupted() => return Err(Error::Interrupted),
        };
        spinner.clear();
        let (joined, mut link) = joined.map_err(|e| match e {
            e @ localpair_pairing::Error::BadShortCode { .. } => Error::Usage(e),
            e => Error::Pairing(e),
        })?;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut link).await;
        let verification =
            verification_code(&joined.peer.fingerprint, &device.identity().fingerprint());
        Ok((joined, verification))
    })?;
    if args.json {
        output::json(&json!({
            "paired": true,
            "peer": {
                "id": joined.peer.id,
                "name": joined.peer.name,
                "addr": joined.peer.addr,
                "fingerprint": joined.peer.fingerprint,
            },
            "via": joined.via,
            "verification": verification,
            "elapsed_ms": joined.elapsed.as_secs_f64() * 1000.0,
            "dials": joined.dials,
            "saved": save,
        }))
    } else {
        output::text(&format!(
            "{}Both devices show the same check code: {verification}\n",
            paired_line(&joined.peer, Some(&joined.via), joined.elapsed)
        ))
    }
}
