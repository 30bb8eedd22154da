//! The udp-multicast discoverer and the peer-observed resolver on a virtual LAN of network
//! namespaces (nothing here touches a real network).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Noise, discover, discover_all, forged, ips, send_to_groups, settings};
use localpair_core::chain::Outcome;
use localpair_core::{
    Advert, Confirmation, Context, Fingerprint, PeerDiscoverer, Registry, ResolverChain,
};
use localpair_lab::discovery::sink;
use localpair_lab::{HostSpec, lab_or_skip, runtime};
use localpair_udp_multicast::{Config, UdpMulticast};
use tokio_util::sync::CancellationToken;

/// A context and a discoverer built from the same settings.
fn node(settings: &localpair_core::Settings) -> (Context, UdpMulticast) {
    let config: Config = settings.strategy_table("udp-multicast").extract().unwrap();
    (
        Context::start(settings.clone()).unwrap(),
        UdpMulticast::new(config),
    )
}

/// The chain notes the deadline that ended the window; anything else (notably "did not stop
/// within 300 ms; aborted") means the discoverer failed to wind down when told to.
fn stopped_cleanly(attempt: &localpair_core::chain::Attempt) -> bool {
    attempt
        .error
        .as_deref()
        .is_none_or(|e| e.starts_with("chain deadline"))
}

#[test]
fn three_hosts_find_each_other() {
    let lab = lab_or_skip!("three_hosts_find_each_other");
    let hosts = lab.add_hosts(3).unwrap();
    let window = Duration::from_secs(4);
    let sessions = discover_all(&hosts, window);
    for (i, session) in sessions.iter().enumerate() {
        assert_eq!(
            session.attempts[0].outcome,
            Outcome::Ok,
            "{:?}",
            session.attempts[0]
        );
        assert!(
            stopped_cleanly(&session.attempts[0]),
            "{:?}",
            session.attempts[0]
        );
        assert!(session.found(session.me).is_none(), "found itself");
        for (j, other) in sessions.iter().enumerate() {
            if i == j {
                continue;
            }
            let peer = session
                .found(other.me)
                .unwrap_or_else(|| panic!("host {i} did not find host {j}: {:?}", session.peers));
            assert_eq!(peer.name, format!("host-{j}"));
            // Its IPv4 LAN address (with its listener port) and its IPv6 link-local address:
            // one peer, both families. (The chain keeps the order of the first report.)
            let addrs = ips(peer);
            assert!(addrs.contains(&IpAddr::V4(hosts[j].addr())), "{peer:?}");
            assert!(peer.addrs.iter().all(|a| a.port() != 0), "{peer:?}");
            assert!(
                addrs
                    .iter()
                    .any(|ip| matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())),
                "{peer:?}"
            );
            assert_eq!(peer.strategy, "udp-multicast");
        }
        assert_eq!(session.peers.len(), 2, "{:?}", session.peers);
    }
}

#[test]
fn host_with_multicast_dropped_is_not_found_and_says_why() {
    let lab = lab_or_skip!("multicast_dropped");
    let hosts = lab.add_hosts(3).unwrap();
    hosts[2].drop_multicast().unwrap();
    let window = Duration::from_secs(3);
    let sessions = discover_all(&hosts, window);
    let dropped = &sessions[2];
    assert!(sessions[0].found(sessions[1].me).is_some());
    assert!(sessions[1].found(sessions[0].me).is_some());
    assert!(sessions[0].found(dropped.me).is_none());
    assert!(sessions[1].found(dropped.me).is_none());
    assert!(dropped.peers.is_empty());
    assert_eq!(
        dropped.attempts[0].outcome,
        Outcome::Empty,
        "{:?}",
        dropped.attempts[0]
    );
    let why = dropped.attempts[0].error.as_deref().unwrap();
    // The counts and the cause: the local firewall refused every send.
    assert!(why.contains("sent 0 announcements on eth0 (IPv4)"), "{why}");
    assert!(
        why.contains("sends refused on eth0 (IPv4) (Operation not permitted"),
        "{why}"
    );
    assert!(
        why.contains("heard 0 packets from 0 peers and 0 of our own"),
        "{why}"
    );
    assert!(
        why.contains("firewall on this device blocks multicast"),
        "{why}"
    );
}

#[test]
fn packets_from_another_subnet_are_ignored() {
    let lab = lab_or_skip!("other_subnet");
    // Same switch, different IPv4 subnets: the IPv4 announcements arrive but are not believed.
    let a = lab.add_host(HostSpec::new()).unwrap();
    let b = lab.add_host(HostSpec::new().addr("10.78.0.12/24")).unwrap();
    let window = Duration::from_secs(3);
    // With IPv6, both are on the link all the same: found, but only at the link-local address.
    let runs = [discover(&a, "a", window, ""), discover(&b, "b", window, "")];
    let [sa, sb] = runs.map(|r| r.join());
    let peer = sa.found(sb.me).expect("found over IPv6 link-local");
    assert!(
        ips(peer)
            .iter()
            .all(|ip| matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())),
        "{peer:?}"
    );
    // IPv4 only: nothing, and the error names the cause.
    let v4_only = "[strategies.udp-multicast]\nipv6 = false\n";
    let runs = [
        discover(&a, "a", window, v4_only),
        discover(&b, "b", window, v4_only),
    ];
    let [sa, _] = runs.map(|r| r.join());
    assert!(sa.peers.is_empty(), "{:?}", sa.peers);
    let why = sa.attempts[0].error.as_deref().unwrap();
    assert!(why.contains("from outside the interface's subnet"), "{why}");
    assert!(why.contains("different network"), "{why}");
}

#[test]
fn discovery_survives_thirty_percent_udp_loss() {
    let lab = lab_or_skip!("udp_loss");
    let hosts = lab.add_hosts(3).unwrap();
    for h in &hosts {
        h.udp_loss(30).unwrap();
    }
    // About half of the datagrams survive a sender's and a receiver's 30 % each; a 10 s window
    // gives every pair over a dozen announcements per family.
    let window = Duration::from_secs(10);
    let sessions = discover_all(&hosts, window);
    for (i, session) in sessions.iter().enumerate() {
        for (j, other) in sessions.iter().enumerate() {
            if i != j {
                let peer = session.found(other.me);
                assert!(
                    peer.is_some(),
                    "host {i} missed host {j}: {:?}",
                    session.attempts[0]
                );
            }
        }
    }
}

#[test]
fn a_flood_of_malformed_packets_does_not_stop_discovery() {
    let lab = lab_or_skip!("flood");
    let hosts = lab.add_hosts(3).unwrap();
    let window = Duration::from_secs(6);
    let runs: Vec<_> = hosts[..2]
        .iter()
        .enumerate()
        .map(|(i, h)| discover(h, &format!("host-{i}"), window, ""))
        .collect();
    let template = forged(Fingerprint::from_bytes([0x33; 32]), "template");
    let mut noise = Noise::new(0x5eed);
    let mut packets: Vec<Vec<u8>> = (0..4000).map(|_| noise.hostile(&template)).collect();
    // Last come valid packets of a made-up device: hearing it proves the flood arrived and that
    // the receivers were still listening afterwards.
    let after = Fingerprint::from_bytes([0x77; 32]);
    packets.extend((0..6).map(|_| forged(after, "after-the-flood")));
    let sent = send_to_groups(&hosts[2], packets).join();
    assert!(sent > 3000, "the flood itself failed: {sent} sent");
    let sessions: Vec<_> = runs.into_iter().map(|r| r.join()).collect();
    for (i, session) in sessions.iter().enumerate() {
        let other = &sessions[1 - i];
        assert!(
            session.found(other.me).is_some(),
            "host {i} lost its peer: {:?}",
            session.peers
        );
        assert!(
            session.found(after.device_id()).is_some(),
            "host {i} stopped listening during the flood: {:?}",
            session.attempts[0]
        );
        assert_eq!(session.attempts[0].outcome, Outcome::Ok);
        assert!(
            stopped_cleanly(&session.attempts[0]),
            "{:?}",
            session.attempts[0]
        );
    }
}

#[test]
fn advert_changes_are_announced_at_once() {
    let lab = lab_or_skip!("advert_change");
    let hosts = lab.add_hosts(2).unwrap();
    // A long steady interval and a one-packet burst: after 7 s the next scheduled announcement
    // would be at 14 s, so an update seen well before that came from the prompt re-announce.
    let extra = "[strategies.udp-multicast]\nburst_ms = [0]\nsteady_interval_ms = 20000\n";
    let change_at = Duration::from_secs(7);
    let tag = [4u8; 8];
    let host = hosts[0].clone();
    let settings_b = settings("host-b", Duration::from_secs(30), extra);
    let hosting = host
        .spawn(move || {
            runtime().block_on(async move {
                let (ctx, discoverer) = node(&settings_b);
                let stop = CancellationToken::new();
                let (sink, mut sightings) = sink(stop.clone());
                let session = discoverer.discover(&ctx, sink);
                let driver = async {
                    tokio::time::sleep(change_at).await;
                    ctx.set_advert(Advert::pairing(7777, Some(tag)));
                    tokio::time::sleep(Duration::from_secs(6)).await;
                    stop.cancel();
                    while sightings.recv().await.is_some() {}
                };
                let (result, ()) = tokio::join!(session, driver);
                (
                    ctx.identity().device_id(),
                    result.map_err(|e| e.to_string()),
                )
            })
        })
        .unwrap();
    let settings_a = settings("host-a", Duration::from_secs(30), extra);
    let watcher = hosts[1]
        .spawn(move || {
            runtime().block_on(async move {
                let (ctx, discoverer) = node(&settings_a);
                let stop = CancellationToken::new();
                let (sink, mut sightings) = sink(stop.clone());
                let started = Instant::now();
                let session = discoverer.discover(&ctx, sink);
                let watch = async {
                    let mut seen = Vec::new();
                    let limit = tokio::time::sleep(Duration::from_secs(13));
                    tokio::pin!(limit);
                    loop {
                        tokio::select! {
                            got = sightings.recv() => match got {
                                Some(peer) => seen.push((started.elapsed(), peer)),
                                None => break,
                            },
                            () = &mut limit => break,
                        }
                    }
                    stop.cancel();
                    seen
                };
                let (result, seen) = tokio::join!(session, watch);
                (seen, result.map_err(|e| e.to_string()))
            })
        })
        .unwrap();
    let (seen, result) = watcher.join();
    let (b_id, b_result) = hosting.join();
    result.unwrap();
    b_result.unwrap();
    let first = seen.iter().find(|(_, p)| p.id == b_id).expect("B found");
    assert_eq!(first.1.pairing_port, None);
    let (at, updated) = seen
        .iter()
        .find(|(_, p)| p.id == b_id && p.pairing_port == Some(7777))
        .unwrap_or_else(|| panic!("the new advert never arrived: {seen:?}"));
    assert_eq!(updated.session_tag, Some(tag));
    // Generous for a loaded machine, yet well before the scheduled announcement at ~14 s.
    assert!(
        *at < change_at + Duration::from_secs(5),
        "advert arrived only after {at:?}"
    );
}

#[test]
fn peer_observed_learns_the_lan_address_from_a_peer() {
    let lab = lab_or_skip!("peer_observed");
    let a = lab.add_host(HostSpec::new()).unwrap();
    let b = lab.add_host(HostSpec::new()).unwrap();
    let peer = discover(&b, "host-b", Duration::from_secs(8), "");
    let a_settings = settings(
        "host-a",
        Duration::from_secs(5),
        "[resolve]\norder = [\"peer-observed\"]\nstrategy_timeout_ms = 8000\ndeadline_ms = 9000\n\
         [strategies.peer-observed]\nwait_ms = 5000\n",
    );
    let (report, elapsed) = a
        .run(move || {
            runtime().block_on(async move {
                let ctx = Context::start(a_settings.clone()).unwrap();
                let chain = ResolverChain::from_settings(&Registry::linked().unwrap(), &a_settings)
                    .unwrap();
                let started = Instant::now();
                let report = chain.resolve(&ctx).await;
                (report, started.elapsed())
            })
        })
        .unwrap();
    let b_session = peer.join();
    assert!(
        b_session.peers.iter().any(|p| p.name == "host-a"),
        "B must have heard A: {:?}",
        b_session.peers
    );
    assert_eq!(
        report.attempts[0].outcome,
        Outcome::Ok,
        "{:?}",
        report.attempts
    );
    let lan = report
        .candidates
        .iter()
        .find(|c| c.ip == IpAddr::V4(a.addr()))
        .unwrap_or_else(|| panic!("A's LAN address missing: {:?}", report.candidates));
    assert_eq!(
        report.candidates[0].ip, lan.ip,
        "IPv4 LAN address ranks first"
    );
    assert_eq!(lan.confirmed, Confirmation::Peer);
    assert_eq!(lan.strategy, "peer-observed");
    assert_eq!(lan.interface.as_deref(), Some("eth0"));
    assert!(lan.reason.contains("\"host-b\""), "{}", lan.reason);
    assert!(lan.reason.contains("saw our packets"), "{}", lan.reason);
    // Answered after the first report plus a short settle, not at the end of the wait.
    assert!(elapsed < Duration::from_millis(4900), "{elapsed:?}");
}

#[test]
fn peer_observed_alone_explains_the_silence() {
    let lab = lab_or_skip!("peer_observed_alone");
    let a = lab.add_host(HostSpec::new()).unwrap();
    let a_settings = Arc::new(settings(
        "host-a",
        Duration::from_secs(5),
        "[resolve]\norder = [\"peer-observed\"]\nstrategy_timeout_ms = 0\ndeadline_ms = 5000\n\
         [strategies.peer-observed]\nwait_ms = 1500\n",
    ));
    let report = a
        .run(move || {
            runtime().block_on(async move {
                let ctx = Context::start((*a_settings).clone()).unwrap();
                ResolverChain::from_settings(&Registry::linked().unwrap(), &a_settings)
                    .unwrap()
                    .resolve(&ctx)
                    .await
            })
        })
        .unwrap();
    assert!(report.candidates.is_empty());
    let attempt = &report.attempts[0];
    assert_eq!(attempt.outcome, Outcome::Error);
    let why = attempt.error.as_deref().unwrap();
    assert!(
        // Nobody answered the start-up burst: it gives up after alone_ms, not the whole wait.
        why.starts_with("no peer reported seeing us within 500 ms"),
        "{why}"
    );
    assert!(why.contains("announcements on eth0 (IPv4)"), "{why}");
    assert!(why.contains("no peer answered"), "{why}");
    // Multicast works here (our own packets came back), so the cause named is the absence of
    // peers, not a filter.
    assert!(!why.contains(" 0 of our own"), "{why}");
}

#[test]
fn loopback_test_sees_its_probe_and_announces_nothing() {
    let lab = lab_or_skip!("loopback_test");
    let hosts = lab.add_hosts(3).unwrap();
    hosts[2].drop_multicast().unwrap();
    // A discoverer listens on the second host the whole time: a probe must not look like a peer.
    let listening = discover(&hosts[1], "listener", Duration::from_secs(4), "");
    std::thread::sleep(Duration::from_millis(500));
    let probe = |host: &localpair_lab::Host| {
        let s = settings("prober", Duration::from_secs(5), "");
        host.run(move || {
            runtime().block_on(async move {
                let ctx = Context::start(s).unwrap();
                let discoverer = UdpMulticast::default();
                let links = discoverer
                    .loopback_test(&ctx, Duration::from_secs(2))
                    .await
                    .unwrap();
                // The diagnostics hook is the same test, summarised.
                let check = discoverer
                    .self_check(&ctx, Duration::from_millis(1500))
                    .await
                    .unwrap();
                (links, check)
            })
        })
        .unwrap()
    };
    let (clear, check) = probe(&hosts[0]);
    assert_eq!(check.status.as_str(), "pass", "{check:?}");
    assert!(
        check
            .summary
            .starts_with("our own probe came back on eth0 (IPv4) after"),
        "{check:?}"
    );
    assert!(check.errors.is_empty());
    assert_eq!(check.details["links"].as_array().unwrap().len(), 2);
    assert_eq!(clear.len(), 2, "{clear:?}");
    for link in &clear {
        assert!(
            link.error.is_none() && link.echo_after.is_some(),
            "{}",
            link.summary()
        );
    }
    assert!(
        clear[0]
            .summary()
            .starts_with("eth0 (IPv4): probe came back after")
    );
    let (blocked, check) = probe(&hosts[2]);
    assert_eq!(check.status.as_str(), "fail", "{check:?}");
    assert!(check.summary.starts_with("no probe came back"), "{check:?}");
    assert_eq!(check.errors.len(), 2);
    for link in &blocked {
        assert!(link.echo_after.is_none(), "{}", link.summary());
        assert!(
            link.summary()
                .contains("send refused: Operation not permitted"),
            "{}",
            link.summary()
        );
    }
    let session = listening.join();
    assert!(
        session.peers.is_empty(),
        "probes were taken for peers: {:?}",
        session.peers
    );
}
