//! Links over loopback: known peers in, strangers and impostors out.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use localpair_core::Identity;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::link::{LinkListener, dial};
use crate::trust::{KnownPeer, PairedHow, TrustStore};
use crate::{Error, Refusal};

fn trusting(peers: &[&Identity]) -> TrustStore {
    let store = TrustStore::in_memory();
    for peer in peers {
        store
            .save(KnownPeer::new(
                peer.fingerprint(),
                peer.name(),
                None,
                PairedHow::QrPre,
            ))
            .unwrap();
    }
    store
}

fn at(listener: &LinkListener) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, listener.port()))
}

#[tokio::test]
async fn a_known_peer_gets_a_link_both_ways() {
    let desk = Arc::new(Identity::ephemeral("desk").unwrap());
    let phone = Identity::ephemeral("phone").unwrap();
    let listener = LinkListener::start(Arc::clone(&desk), trusting(&[&phone]), 0).unwrap();
    let (dialled, accepted) = tokio::join!(
        dial(&phone, desk.fingerprint(), at(&listener)),
        listener.accept()
    );
    let (mut dialled, mut accepted) = (dialled.unwrap(), accepted.unwrap());
    assert_eq!(dialled.peer().name, "desk");
    assert_eq!(accepted.peer().fingerprint, phone.fingerprint());
    dialled.write_all(b"ping").await.unwrap();
    dialled.shutdown().await.unwrap();
    let mut got = Vec::new();
    accepted.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ping");
}

#[tokio::test]
async fn a_stranger_is_refused_and_told_why() {
    let desk = Arc::new(Identity::ephemeral("desk").unwrap());
    let stranger = Identity::ephemeral("stranger").unwrap();
    let listener = LinkListener::start(Arc::clone(&desk), trusting(&[]), 0).unwrap();
    let refused = dial(&stranger, desk.fingerprint(), at(&listener))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Refused {
                refusal: Refusal::UnknownPeer,
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("does not know"), "{refused}");
}

#[tokio::test]
async fn an_impostor_at_the_peers_address_fails_the_pin() {
    let desk = Identity::ephemeral("desk").unwrap();
    let impostor = Arc::new(Identity::ephemeral("impostor").unwrap());
    let phone = Identity::ephemeral("phone").unwrap();
    let listener = LinkListener::start(impostor, trusting(&[&phone]), 0).unwrap();
    let error = dial(&phone, desk.fingerprint(), at(&listener))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Core(localpair_core::Error::KeyMismatch { .. })
        ),
        "{error}"
    );
}
