//! `localpair listen`: accept known peers; what they send goes to stdout.

use serde_json::json;
use tokio::io::AsyncWriteExt as _;

use super::stream::copy;
use super::{block_on, device, interrupted, load, progress};
use crate::args::Args;
use crate::error::Error;
use crate::output;

pub(super) fn run(args: &Args, once: bool) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    block_on(async {
        let device = device(settings, registry)?;
        let served = serve(args, &device, once).await;
        device.close().await;
        served
    })
}

async fn serve(args: &Args, device: &localpair_pairing::Device, once: bool) -> Result<(), Error> {
    let listening = device.listen().await.map_err(Error::Pairing)?;
    progress(&format!(
        "Listening for known peers on port {} ({} known); Ctrl-C to stop",
        listening.port(),
        device.peers().map(|p| p.len()).unwrap_or(0)
    ));
    let mut received = 0u64;
    let mut connections = Vec::new();
    super::stream::widen_std_pipes();
    loop {
        let link = tokio::select! {
            link = listening.accept() => link.map_err(Error::Pairing)?,
            () = interrupted() => break,
        };
        let peer = link.peer().clone();
        progress(&format!(
            "connected: {} [{}] from {}",
            peer.name, peer.id, peer.addr
        ));
        let (mut reader, mut writer) = tokio::io::split(link);
        let mut stdout = tokio::io::stdout();
        let copied = tokio::select! {
            copied = copy(&mut reader, &mut stdout) => copied,
            () = interrupted() => break,
        };
        // The peer closed its side: close ours, so its `connect` ends.
        let _ = writer.shutdown().await;
        let _ = stdout.flush().await;
        // One connection that breaks (a peer killed mid-stream, or the losing one of the parallel
        // dials a `connect` makes, dropped as soon as another won) ends that connection only:
        // the next one, perhaps already waiting, is served, and `--once` waits for one that ends
        // cleanly.
        let copied = match copied {
            Ok(copied) => copied,
            Err(error) => {
                progress(&format!(
                    "{} [{}]: the connection broke: {error}",
                    peer.name, peer.id
                ));
                continue;
            }
        };
        received += copied;
        progress(&format!(
            "{} [{}] closed after {copied} bytes",
            peer.name, peer.id
        ));
        connections.push(json!({ "peer": peer, "bytes": copied }));
        if once {
            break;
        }
    }
    if args.json {
        output::json(&json!({ "connections": connections, "bytes": received }))?;
    }
    Ok(())
}
