//! `localpair host`.

use std::io::IsTerminal as _;
use std::time::Duration;

use localpair_pairing::code::Flow;
use serde_json::json;

use super::{block_on, device, interrupted, load, paired_line, progress};
use crate::args::{Args, FlowArg};
use crate::error::Error;
use crate::output;
use crate::qr::{self, QrTarget};

pub(super) fn run(
    args: &Args,
    flow: FlowArg,
    target: &QrTarget,
    keep_qr: bool,
    save: bool,
) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    let flow = match flow {
        FlowArg::Pre => Flow::Pre,
        _ => Flow::Post,
    };
    block_on(async {
        let device = device(settings, registry)?.saving(save);
        let hosting = device.host(flow).await.map_err(|error| match error {
            localpair_pairing::Error::NoAddress { attempts } => Error::NoCandidates { attempts },
            other => Error::Pairing(other),
        })?;
        if let Some(warning) = hosting.warning() {
            tracing::warn!("{warning}");
            progress(&format!("warning: {warning}"));
        }
        let code = hosting.code().clone();
        // Only with [strategies.upnp] map_port = true: reachable from beyond the LAN while hosting.
        let mapping = match localpair_upnp::map_pairing_port(device.context(), code.port).await {
            Ok(mapping) => mapping,
            Err(error) => {
                tracing::warn!(%error, "UPnP port mapping failed; pairing on the LAN only");
                None
            }
        };
        let qr_file = show_code(args, &code, hosting.ttl(), target, keep_qr)?;
        let outcome = tokio::select! {
            outcome = hosting.wait() => outcome.map_err(Error::Pairing),
            () = interrupted() => Err(Error::Interrupted),
        };
        drop(hosting);
        // The code is over, whatever ended it: its QR file goes too (unless --keep-qr).
        drop(qr_file);
        if let Some(mapping) = mapping
            && let Err(error) = mapping.shutdown().await
        {
            tracing::warn!(%error, "removing the UPnP port mapping");
        }
        device.close().await;
        let (paired, mut link) = outcome?;
        // The command line only pairs: close the stream an application would keep.
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut link).await;
        if args.json {
            output::json(&json!({
                "paired": true,
                "peer": paired.peer,
                "saved": save,
                "elapsed_ms": paired.elapsed.as_secs_f64() * 1000.0,
            }))
        } else {
            output::text(&paired_line(&paired.peer, None, paired.elapsed))
        }
    })
}

fn show_code(
    args: &Args,
    code: &localpair_pairing::code::PairingCode,
    ttl: Duration,
    target: &QrTarget,
    keep_qr: bool,
) -> Result<Option<qr::QrFile>, Error> {
    let text = code.encode();
    if args.json {
        output::json(&json!({
            "code": text,
            "flow": code.flow,
            "port": code.port,
            "candidates": code.candidates,
            "expires_in_s": ttl.as_secs(),
        }))?;
    } else {
        let addrs: Vec<String> = code.candidates.iter().map(ToString::to_string).collect();
        output::text(&format!(
            "Pairing code (valid {} s, port {}, addresses {}):\n{text}\n",
            ttl.as_secs(),
            code.port,
            if addrs.is_empty() {
                "none".to_owned()
            } else {
                addrs.join(", ")
            }
        ))?;
    }
    let file = match target {
        QrTarget::Terminal => {
            // With --json the drawing goes to stderr, beside the progress lines.
            let to_terminal = if args.json {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
            let drawing = qr::terminal(&text, crate::progress::colour(to_terminal))?;
            if args.json {
                progress(&drawing);
            } else {
                output::text(&drawing)?;
            }
            None
        }
        QrTarget::Png(path) => {
            qr::png(&text, path, 8)?;
            Some(qr::QrFile::new(path, keep_qr))
        }
        QrTarget::Svg(path) => {
            qr::svg(&text, path)?;
            Some(qr::QrFile::new(path, keep_qr))
        }
        QrTarget::None => None,
    };
    progress("Waiting for a device to join…");
    Ok(file)
}
