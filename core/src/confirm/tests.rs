//! The listener's unit tests: confirmation, observations, reachability probes.

use std::net::Ipv6Addr;

use super::*;

fn confirmer() -> Confirmer {
    let identity = Arc::new(Identity::ephemeral("test").unwrap());
    Confirmer::start(identity, ConfirmConfig::default()).unwrap()
}

#[tokio::test]
async fn loopback_confirms() {
    let c = confirmer();
    c.confirm(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
    c.confirm(IpAddr::from(Ipv6Addr::LOCALHOST), 0)
        .await
        .unwrap();
}

#[tokio::test]
async fn any_loopback_address_confirms_as_itself() {
    let c = confirmer();
    // 127.0.0.2 is ours too on Linux; the code must arrive through exactly that address.
    c.confirm(IpAddr::from([127, 0, 0, 2]), 0).await.unwrap();
}

#[tokio::test]
async fn another_devices_listener_does_not_confirm() {
    let mine = confirmer();
    let theirs = confirmer();
    // Aim our probe at the other listener's port: the pin rejects its key.
    let probe = exchange(
        &mine.shared.client,
        SocketAddr::from(([127, 0, 0, 1], theirs.port())),
        &Message::Probe {
            code: [0; CODE_LEN],
            target: ScopedIp {
                ip: IpAddr::from([127, 0, 0, 1]),
                scope: 0,
            },
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(&probe, Error::KeyMismatch { .. }), "{probe}");
}

#[tokio::test]
async fn observations_are_recorded_and_pinned() {
    let target = confirmer();
    let reporter = Identity::ephemeral("peer").unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], target.port()));
    let seen = ScopedIp {
        ip: IpAddr::from([10, 1, 2, 3]),
        scope: 0,
    };
    // Only a key heard announcing from the report's source address is believed.
    target.heard(reporter.fingerprint(), IpAddr::from([127, 0, 0, 1]));
    report_observation(
        &reporter,
        addr,
        target.identity().fingerprint(),
        seen,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let list = target.observations().borrow().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].ip, seen);
    assert_eq!(list[0].reporter, reporter.fingerprint());

    // A public address is refused: observations only ever name LAN addresses.
    let public = ScopedIp {
        ip: IpAddr::from([8, 8, 8, 8]),
        scope: 0,
    };
    assert!(
        report_observation(
            &reporter,
            addr,
            target.identity().fingerprint(),
            public,
            Duration::from_secs(2)
        )
        .await
        .is_err()
    );

    // Reporting to the wrong key fails the pin.
    let other = Identity::ephemeral("x").unwrap().fingerprint();
    assert!(
        report_observation(&reporter, addr, other, seen, Duration::from_secs(2))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn observations_from_keys_never_heard_are_refused() {
    let target = confirmer();
    let stranger = Identity::ephemeral("stranger").unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], target.port()));
    let seen = ScopedIp {
        ip: IpAddr::from([10, 1, 2, 3]),
        scope: 0,
    };
    let limit = Duration::from_secs(2);
    let fp = target.identity().fingerprint();
    // Heard, but from another address: still refused.
    target.heard(stranger.fingerprint(), IpAddr::from([10, 1, 2, 9]));
    assert!(
        report_observation(&stranger, addr, fp, seen, limit)
            .await
            .is_err()
    );
    assert!(target.observations().borrow().is_empty());
    let unheard = target.unheard_reports();
    assert_eq!(unheard.len(), 1);
    assert_eq!(unheard[0].reporter, stranger.fingerprint());
}

#[tokio::test]
async fn reach_pins_the_peer_key() {
    let peer = confirmer();
    let me = Identity::ephemeral("me").unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], peer.port()));
    let limit = Duration::from_secs(2);
    let took = reach(&me, addr, peer.identity().fingerprint(), limit)
        .await
        .unwrap();
    assert!(took < limit);
    let other = Identity::ephemeral("other").unwrap().fingerprint();
    let err = reach(&me, addr, other, limit).await.unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    // The listener keeps serving after a handshake that asked nothing.
    peer.confirm(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
    peer.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = reach(&me, addr, peer.identity().fingerprint(), limit)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[tokio::test]
async fn oversized_and_garbage_input_is_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = confirmer();
    let addr = SocketAddr::from(([127, 0, 0, 1], c.port()));
    // Not TLS at all: the listener closes the connection and keeps serving.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0xff; 4096]).await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), raw.read_to_end(&mut sink)).await;
    c.confirm(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let c = confirmer();
    let addr = SocketAddr::from(([127, 0, 0, 1], c.port()));
    c.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}
