//! `localpair discover`.

use std::time::Duration;

use localpair_core::chain::explain;
use localpair_core::{DiscovererChain, DiscoveryGoal};
use tokio::sync::mpsc;

use super::{block_on, context, describe_peer, interrupted, load, progress};
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
        output::json(&report)?;
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
            attempts: explain(&report.attempts),
        });
    }
    Ok(())
}
