//! `localpair discover`.

use std::time::Duration;

use localpair_core::{DiscovererChain, DiscoveryGoal};
use localpair_pairing::{Change, Nearby};
use serde_json::json;
use tokio::sync::mpsc;

use super::{block_on, context, describe_peer, device, interrupted, load, progress};
use crate::args::Args;
use crate::error::Error;
use crate::output;

pub(super) fn run(
    args: &Args,
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    let mut chain = DiscovererChain::from_settings(&registry, &settings).map_err(Error::Config)?;
    if let Some(window) = timeout {
        let plan = chain.plan().with_deadline(window);
        chain = chain.with_plan(plan);
    }
    let window = chain.plan().deadline;
    let report = block_on(async {
        let ctx = context(settings)?;
        let (live_tx, mut live_rx) = mpsc::channel(64);
        let printer = tokio::spawn(async move {
            while let Some(peer) = live_rx.recv().await {
                progress(&format!("found {}", describe_peer(&peer)));
            }
        });
        let goal = DiscoveryGoal {
            count,
            ..DiscoveryGoal::default()
        };
        let report = tokio::select! {
            report = chain.discover(&ctx, goal, Some(live_tx)) => report,
            () = interrupted() => return Err(Error::Interrupted),
        };
        let _ = printer.await;
        Ok(report)
    })?;
    if args.json {
        // A failure is one error object instead (it carries the attempts).
        if !report.peers.is_empty() {
            output::json(&report)?;
        }
    } else {
        let mut text = format!(
            "{} peer(s) in {:.0} ms:\n",
            report.peers.len(),
            report.elapsed.as_secs_f64() * 1000.0
        );
        for peer in &report.peers {
            text.push_str(&format!(
                "  {}\n    key {}\n",
                describe_peer(peer),
                peer.fingerprint
            ));
        }
        text.push_str(&format!(
            "Attempts:\n{}",
            output::attempts_table(&report.attempts)
        ));
        output::text(&text)?;
    }
    if report.peers.is_empty() {
        return Err(Error::NoPeers {
            seconds: window.as_secs_f64(),
            attempts: report.attempts,
        });
    }
    Ok(())
}

/// `discover --watch`: the devices nearby as they come, change and go, until Ctrl-C or the
/// timeout.
pub(super) fn watch(args: &Args, timeout: Option<Duration>) -> Result<(), Error> {
    let (settings, registry) = load(args)?;
    block_on(async {
        let device = device(settings, registry)?;
        let watched = watch_until(args, &device, timeout).await;
        device.close().await;
        watched
    })
}

async fn watch_until(
    args: &Args,
    device: &localpair_pairing::Device,
    timeout: Option<Duration>,
) -> Result<(), Error> {
    let mut watching = device.watch().map_err(Error::Pairing)?;
    progress("Watching for devices nearby; Ctrl-C to stop");
    let until = async {
        match timeout {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);
    loop {
        let nearby = tokio::select! {
            nearby = watching.next() => nearby,
            () = interrupted() => break,
            () = &mut until => break,
        };
        let Some(nearby) = nearby else {
            progress("discovery ended: no discoverer is running");
            break;
        };
        print_change(args.json, &nearby)?;
    }
    Ok(())
}

fn print_change(as_json: bool, nearby: &Nearby) -> Result<(), Error> {
    if as_json {
        return output::json(&json!({
            "event": nearby.change,
            "peer": nearby.peer,
            "known": nearby.known,
        }));
    }
    let what = match nearby.change {
        Change::Found => "found",
        Change::Updated => "updated",
        Change::Lost => "lost",
        _ => "changed",
    };
    let known = match &nearby.known {
        Some(known) if !known.alias.is_empty() => format!(" (known as {:?})", known.alias),
        Some(_) => " (known)".to_owned(),
        None => String::new(),
    };
    output::text(&format!(
        "{what:<7} {}{known}\n",
        describe_peer(&nearby.peer)
    ))
}
