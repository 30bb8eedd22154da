//! `localpair connect PEER`: stdin to a known peer, what it sends to stdout.

use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use super::stream::copy;
use super::{block_on, device, interrupted, load, progress};
use crate::args::Args;
use crate::error::Error;
use crate::output;
use crate::progress::Spinner;

pub(super) fn run(args: &Args, who: &str) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    block_on(async {
        let device = device(settings, registry)?;
        // An unknown or ambiguous name is bad usage (exit 2), found before dialling.
        device.trust().find(who).map_err(Error::Usage)?;
        let spinner = Spinner::start(args, &format!("looking for {who} and dialling it"));
        let connected = tokio::select! {
            connected = device.connect(who) => connected,
            () = interrupted() => return Err(Error::Interrupted),
        };
        spinner.clear();
        let (connected, link) = connected.map_err(Error::Pairing)?;
        let peer = link.peer().clone();
        progress(&format!(
            "connected to {} [{}] at {} via {} after {:.1} ms",
            peer.name,
            peer.id,
            peer.addr,
            connected.via,
            connected.elapsed.as_secs_f64() * 1000.0
        ));
        super::stream::widen_std_pipes();
        let (mut reader, mut writer) = tokio::io::split(link);
        let sending = async {
            let mut stdin = tokio::io::stdin();
            let sent = copy(&mut stdin, &mut writer).await?;
            // Half-close: the peer reads our end, then closes its side.
            writer.shutdown().await?;
            Ok::<u64, std::io::Error>(sent)
        };
        let receiving = async {
            let mut stdout = tokio::io::stdout();
            let got = copy(&mut reader, &mut stdout).await?;
            stdout.flush().await?;
            Ok::<u64, std::io::Error>(got)
        };
        let (sent, received) = tokio::select! {
            both = async { tokio::join!(sending, receiving) } => both,
            () = interrupted() => return Err(Error::Interrupted),
        };
        let sent = sent.map_err(|e| Error::Pairing(e.into()))?;
        let received = received.map_err(|e| Error::Pairing(e.into()))?;
        if args.json {
            output::json(&json!({
                "connected": true,
                "peer": peer,
                "via": connected.via,
                "elapsed_ms": connected.elapsed.as_secs_f64() * 1000.0,
                "sent": sent,
                "received": received,
                "dials": connected.dials,
            }))?;
        }
        Ok(())
    })
}
