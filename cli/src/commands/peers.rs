//! `localpair peers` and `localpair forget PEER`: the trust store.

use localpair_pairing::trust::{KnownPeer, TrustStore};
use serde_json::{Value, json};

use super::load;
use crate::args::Args;
use crate::error::Error;
use crate::output;

fn row(peer: &KnownPeer) -> Value {
    json!({
        "id": peer.id(),
        "fingerprint": peer.fingerprint,
        "name": peer.name,
        "alias": peer.alias,
        "paired_at": humantime::format_rfc3339_seconds(peer.paired_at).to_string(),
        "last_seen": humantime::format_rfc3339_seconds(peer.last_seen).to_string(),
        "addrs": peer.last_addrs,
        "link_port": peer.link_port,
        "how": peer.how,
    })
}

/// The trust store alone: listing and forgetting open no socket and need no key.
fn open(args: &Args) -> Result<TrustStore, Error> {
    let (settings, _) = load(args)?;
    TrustStore::from_settings(&settings).map_err(Error::Usage)
}

fn location(trust: &TrustStore) -> String {
    trust.path().map_or_else(
        || "(in memory: --ephemeral)".to_owned(),
        |p| p.display().to_string(),
    )
}

pub(super) fn list(args: &Args) -> Result<(), Error> {
    let trust = open(args)?;
    let peers = trust.peers().map_err(Error::Usage)?;
    if args.json {
        let rows: Vec<Value> = peers.iter().map(row).collect();
        return output::json(&json!({ "peers": rows }));
    }
    let mut out = format!("{} known peer(s) in {}\n", peers.len(), location(&trust));
    for peer in &peers {
        let addrs: Vec<String> = peer.last_addrs.iter().map(ToString::to_string).collect();
        let alias = if peer.alias.is_empty() {
            String::new()
        } else {
            format!(" ({})", peer.alias)
        };
        out.push_str(&format!(
            "  {}{alias} [{}] key {}\n    paired {}, last seen {}, at {}\n",
            peer.name,
            peer.id(),
            peer.fingerprint,
            humantime::format_rfc3339_seconds(peer.paired_at),
            humantime::format_rfc3339_seconds(peer.last_seen),
            if addrs.is_empty() {
                "-".to_owned()
            } else {
                addrs.join(", ")
            }
        ));
    }
    output::text(&out)
}

pub(super) fn forget(args: &Args, who: &str) -> Result<(), Error> {
    let peer = open(args)?.forget(who).map_err(Error::Usage)?;
    if args.json {
        output::json(&json!({ "forgotten": row(&peer) }))
    } else {
        output::text(&format!(
            "Forgot {} [{}]: it can no longer connect to this device, nor be connected to.\n",
            peer.label(),
            peer.id()
        ))
    }
}
