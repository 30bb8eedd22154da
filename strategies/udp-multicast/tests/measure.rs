//! Measurements in the lab, printed rather than asserted (a loaded machine would make any bound
//! flaky): run with
//! `cargo test -p localpair-udp-multicast --test measure -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{barrier, if_index, settings};
use localpair_core::{Context, PeerDiscoverer, Registry, ResolverChain, StrategyError};
use localpair_lab::discovery::{Node, sink};
use localpair_lab::stats::Summary;
use localpair_lab::{Host, NsThread, lab_or_skip, runtime};
use localpair_udp_multicast::{Config, UdpMulticast};
use tokio_util::sync::CancellationToken;

const RUNS: usize = 30;

/// Runs the discoverer on the calling runtime until `stop`, or until the first peer and then
/// `linger` more; returns the time from the call to the first peer.
async fn until_first_peer(
    ctx: &Context,
    linger: Duration,
    stop: CancellationToken,
) -> (Option<Duration>, Result<(), StrategyError>) {
    let (sink, mut sightings) = sink(stop.clone());
    let discoverer = UdpMulticast::new(Config::default());
    let started = Instant::now();
    let session = discoverer.discover(ctx, sink);
    let watch = async {
        let first = tokio::select! {
            got = sightings.recv() => got.map(|_| started.elapsed()),
            () = tokio::time::sleep(Duration::from_secs(10)) => None,
        };
        tokio::time::sleep(linger).await;
        stop.cancel();
        while sightings.recv().await.is_some() {}
        first
    };
    let (result, first) = tokio::join!(session, watch);
    (first, result)
}

/// A discoverer that runs until stopped (its outcome is not part of the measurement).
fn background(host: &Host, name: &str) -> Node {
    Node::start(host, name, "", UdpMulticast::new(Config::default())).unwrap()
}

/// Counts datagrams per source address arriving at both groups on `host` between `from` and
/// `to` after the call.
fn monitor(host: &Host, from: Duration, to: Duration) -> NsThread<HashMap<IpAddr, u64>> {
    host.spawn(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let config = Config::default();
        let index = if_index("eth0");
        let v4 = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        v4.set_reuse_address(true).unwrap();
        v4.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port)).into())
            .unwrap();
        let local = localpair_core::interfaces::list_all()
            .unwrap()
            .into_iter()
            .find(|i| i.name == "eth0")
            .and_then(|i| {
                i.addrs.iter().find_map(|a| match a.ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
            })
            .unwrap();
        v4.join_multicast_v4(&config.group_v4, &local).unwrap();
        let v6 = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        v6.set_only_v6(true).unwrap();
        v6.set_reuse_address(true).unwrap();
        v6.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, config.port)).into())
            .unwrap();
        v6.join_multicast_v6(&config.group_v6, index).unwrap();
        let sockets: Vec<std::net::UdpSocket> = vec![v4.into(), v6.into()];
        for s in &sockets {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let start = Instant::now();
        let mut counts: HashMap<IpAddr, u64> = HashMap::new();
        let mut buf = [0u8; 2048];
        while start.elapsed() < to {
            for s in &sockets {
                while let Ok((_, src)) = s.recv_from(&mut buf) {
                    let at = start.elapsed();
                    if at >= from && at < to {
                        *counts.entry(src.ip()).or_default() += 1;
                    }
                }
            }
        }
        counts
    })
    .unwrap()
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn measure_udp_multicast() {
    let lab = lab_or_skip!("measure_udp_multicast");
    let hosts = lab.add_hosts(4).unwrap();
    let mut out = String::new();

    // 1. A newcomer joins while a peer is already running.
    let running = background(&hosts[1], "responder");
    std::thread::sleep(Duration::from_secs(2));
    let newcomer = hosts[0]
        .spawn(|| {
            runtime().block_on(async {
                let mut samples = Vec::new();
                for run in 0..RUNS {
                    let ctx = Context::start(settings(
                        &format!("new-{run}"),
                        Duration::from_secs(60),
                        "",
                    ))
                    .unwrap();
                    let (first, _) =
                        until_first_peer(&ctx, Duration::ZERO, CancellationToken::new()).await;
                    samples.push(first.expect("the running peer answers"));
                    // Past the responder's answer rate limit (250 ms), as for a real newcomer.
                    tokio::time::sleep(Duration::from_millis(600)).await;
                }
                samples
            })
        })
        .unwrap();
    let samples = newcomer.join();
    let _ = running.stop();
    let _ = writeln!(
        out,
        "time to first peer, peer already running: {}",
        Summary::of_durations(&samples)
    );

    // 2. Two devices start at the same moment.
    let mut together = Vec::new();
    for run in 0..RUNS {
        let gate = barrier(2);
        let threads: Vec<_> = hosts[..2]
            .iter()
            .map(|h| {
                let gate = Arc::clone(&gate);
                let settings = settings(&format!("pair-{run}"), Duration::from_secs(60), "");
                h.spawn(move || {
                    runtime().block_on(async move {
                        let ctx = Context::start(settings).unwrap();
                        gate.wait();
                        // Keep announcing a little after the first peer, so the other side is
                        // not left with a peer that fell silent at once.
                        until_first_peer(&ctx, Duration::from_millis(300), CancellationToken::new())
                            .await
                            .0
                    })
                })
                .unwrap()
            })
            .collect();
        for t in threads {
            together.push(t.join().expect("both find each other"));
        }
    }
    let _ = writeln!(
        out,
        "time to first peer, both starting together: {}",
        Summary::of_durations(&together)
    );

    // 3. The peer-observed resolver on a host whose peer is already discovering.
    let running = background(&hosts[1], "reporter");
    std::thread::sleep(Duration::from_secs(2));
    let resolving = hosts[0]
        .spawn(|| {
            runtime().block_on(async {
                let mut samples = Vec::new();
                for run in 0..RUNS {
                    let s = settings(
                        &format!("observed-{run}"),
                        Duration::from_secs(60),
                        "[resolve]\norder = [\"peer-observed\"]\nstrategy_timeout_ms = 0\ndeadline_ms = 10000\n",
                    );
                    let ctx = Context::start(s.clone()).unwrap();
                    let chain = ResolverChain::from_settings(&Registry::linked().unwrap(), &s).unwrap();
                    let started = Instant::now();
                    let report = chain.resolve(&ctx).await;
                    assert!(!report.candidates.is_empty(), "{:?}", report.attempts);
                    samples.push(started.elapsed());
                }
                samples
            })
        })
        .unwrap();
    let observed = resolving.join();
    let _ = running.stop();
    let _ = writeln!(
        out,
        "peer-observed resolve (includes the 250 ms settle), peer already running: {}",
        Summary::of_durations(&observed)
    );

    // 4. Steady state: three hosts discovering for 45 s, a fourth counting what arrives between
    //    20 s and 40 s (after the burst and the back-off).
    let window = (Duration::from_secs(20), Duration::from_secs(40));
    let counting = monitor(&hosts[3], window.0, window.1);
    let runners: Vec<_> = hosts[..3]
        .iter()
        .enumerate()
        .map(|(i, h)| background(h, &format!("steady-{i}")))
        .collect();
    let counts = counting.join();
    for r in runners {
        let _ = r.stop();
    }
    let secs = (window.1 - window.0).as_secs_f64();
    for (i, h) in hosts[..3].iter().enumerate() {
        let v4 = counts.get(&IpAddr::V4(h.addr())).copied().unwrap_or(0);
        let v6 = h
            .link_local_v6()
            .unwrap()
            .and_then(|ll| counts.get(&IpAddr::V6(ll)).copied())
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "steady state, host {i}: {:.2} packets/s ({v4} over IPv4 and {v6} over IPv6 in {secs:.0} s)",
            (v4 + v6) as f64 / secs,
        );
    }
    let total: u64 = counts.values().sum();
    let _ = writeln!(
        out,
        "steady state, all families: {:.2} packets/s per host (3 hosts, {total} datagrams in {secs:.0} s)",
        total as f64 / secs / 3.0
    );
    println!("{out}");
}
