//! The live list against scripted discoverers, on a paused clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::chain::{Chain, Plan};
use crate::config::{ChainMode, Settings, Source};
use crate::{Identity, PeerDiscoverer, PeerSink, StrategyError};

#[derive(Clone, Copy)]
enum Line {
    /// Peer `n` at the address ending in `host`.
    Found(u8, u8),
    Lost(u8),
    /// The discoverer returns.
    End,
}

struct Script(Vec<(u64, Line)>);

fn peer(n: u8, host: u8) -> Peer {
    Peer::new(
        Fingerprint::from_bytes([n; 32]),
        format!("peer-{n}"),
        vec![SocketAddr::from(([10, 0, 0, host], 4000))],
    )
}

#[async_trait]
impl PeerDiscoverer for Script {
    async fn discover(&self, _ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        for (at_ms, line) in &self.0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(*at_ms)) => {}
                () = sink.stopped() => return Ok(()),
            }
            match *line {
                Line::Found(n, host) => {
                    sink.found(peer(n, host)).await;
                }
                Line::Lost(n) => {
                    sink.lost(Fingerprint::from_bytes([n; 32])).await;
                }
                Line::End => return Ok(()),
            }
        }
        sink.stopped().await;
        Ok(())
    }
}

fn watch(scripts: Vec<Vec<(u64, Line)>>) -> Watch {
    let ctx = Context::new(
        Settings::load(Source::Toml(String::new())).unwrap_or_else(|e| panic!("{e}")),
        Arc::new(Identity::ephemeral("t").unwrap_or_else(|e| panic!("{e}"))),
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let plan = Plan::new(
        ChainMode::All,
        Duration::ZERO,
        Some(Duration::from_millis(1)),
        Duration::from_millis(1),
    );
    let mut chain = Chain::<dyn PeerDiscoverer>::new(plan);
    for (i, script) in scripts.into_iter().enumerate() {
        chain = chain.with(format!("s{i}"), Arc::new(Script(script)));
    }
    chain.watch(&ctx)
}

async fn next(sub: &mut Subscription) -> Option<(Change, u8, usize)> {
    let event = tokio::time::timeout(Duration::from_secs(60), sub.next())
        .await
        .unwrap_or_else(|_| panic!("no event within a minute"))?;
    Some((
        event.change,
        event.peer.fingerprint.as_bytes()[0],
        event.peer.addrs.len(),
    ))
}

#[tokio::test(start_paused = true)]
async fn found_updated_and_lost_only_when_no_discoverer_sees_it() {
    let watch = watch(vec![
        vec![(10, Line::Found(1, 1)), (100, Line::Lost(1))],
        vec![(20, Line::Found(1, 2)), (200, Line::Lost(1))],
    ]);
    let mut sub = watch.subscribe();
    assert_eq!(next(&mut sub).await, Some((Change::Found, 1, 1)));
    assert_eq!(next(&mut sub).await, Some((Change::Updated, 1, 2)));
    // The first discoverer lost it at 110 ms; the second still sees it until 220 ms.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(watch.peers().len(), 1);
    assert_eq!(next(&mut sub).await, Some((Change::Lost, 1, 2)));
    assert!(watch.peers().is_empty());
    // The deadline and per-strategy limit of the plan (1 ms) did not end the session.
    let report = watch.stop().await.unwrap_or_else(|| panic!("did not stop"));
    assert!(report.elapsed >= Duration::from_millis(220));
}

#[tokio::test(start_paused = true)]
async fn a_discoverer_that_ends_no_longer_holds_its_peers() {
    let watch = watch(vec![vec![(10, Line::Found(2, 2)), (50, Line::End)]]);
    let mut sub = watch.subscribe();
    assert_eq!(next(&mut sub).await, Some((Change::Found, 2, 1)));
    assert_eq!(next(&mut sub).await, Some((Change::Lost, 2, 1)));
    // Every step ended: so did the session.
    assert_eq!(next(&mut sub).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_late_reader_gets_the_net_change() {
    let watch = watch(vec![vec![
        (10, Line::Found(1, 1)),
        (10, Line::Lost(1)),
        (10, Line::Found(2, 2)),
        (10, Line::Found(2, 3)),
    ]]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Subscribed late: one Found for what is there now, nothing for what came and went.
    let mut sub = watch.subscribe();
    assert_eq!(next(&mut sub).await, Some((Change::Found, 2, 2)));
    let quiet = tokio::time::timeout(Duration::from_secs(1), sub.next()).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

#[tokio::test(start_paused = true)]
async fn stopping_says_every_peer_was_lost_then_ends() {
    let watch = watch(vec![vec![(10, Line::Found(1, 1)), (10, Line::Found(2, 2))]]);
    let mut sub = watch.subscribe();
    assert_eq!(next(&mut sub).await, Some((Change::Found, 1, 1)));
    assert_eq!(next(&mut sub).await, Some((Change::Found, 2, 1)));
    watch.stop().await;
    let mut lost = vec![next(&mut sub).await, next(&mut sub).await];
    lost.sort_by_key(|event| event.map(|(_, n, _)| n));
    assert_eq!(
        lost,
        vec![Some((Change::Lost, 1, 1)), Some((Change::Lost, 2, 1))]
    );
    assert_eq!(next(&mut sub).await, None);
}
