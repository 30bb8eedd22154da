//! Pairing over loopback: both flows' handshake, refusals, limits. No discovery beyond a stand-in
//! for `direct` that offers the code's own addresses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::{
    Context, Identity, Peer, PeerDiscoverer, PeerSink, StrategyError, async_trait, tls,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::wire::{Message, Refusal};
use super::*;
use crate::code::{PairingCode, Role, Secret};
use localpair_core::chain::{DiscovererChain, Plan};
use localpair_core::config::{ChainMode, Settings, Source};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Offers the code's candidates once the join target is known, like the `direct` discoverer.
struct CodeAddresses;

#[async_trait]
impl PeerDiscoverer for CodeAddresses {
    async fn discover(&self, ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        if let Some(t) = ctx.wait_join_target(&sink).await {
            let addrs = t
                .candidates
                .iter()
                .map(|ip| SocketAddr::new(*ip, t.port))
                .collect();
            sink.found(Peer::new(t.fingerprint, String::new(), addrs))
                .await;
        }
        sink.stopped().await;
        Ok(())
    }
}

fn ctx(name: &str) -> Context {
    Context::new(
        Settings::load(Source::Toml(String::new())).unwrap(),
        Arc::new(Identity::ephemeral(name).unwrap()),
        None,
    )
    .unwrap()
}

fn chain() -> DiscovererChain {
    DiscovererChain::new(Plan::new(
        ChainMode::All,
        Duration::ZERO,
        None,
        Duration::from_secs(10),
    ))
    .with("direct", Arc::new(CodeAddresses))
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "callers build the options inline"
)]
fn host(options: HostOptions) -> (Context, PairingHost) {
    let ctx = ctx("host");
    let host = PairingHost::start(
        Arc::clone(ctx.identity()),
        HostOptions {
            listen_on: vec![LOOPBACK],
            candidates: vec![LOOPBACK],
            ..options
        },
    )
    .unwrap();
    (ctx, host)
}

fn quick() -> JoinOptions {
    JoinOptions {
        deadline: Duration::from_secs(2),
        ..JoinOptions::default()
    }
}

async fn join_with(code: PairingCode) -> Result<Joined, Error> {
    join(&ctx("joiner"), &chain(), async { Ok(code) }, quick())
        .await
        .map(|(joined, _link)| joined)
}

/// Why the host refused, when it did.
fn refusal(error: &Error) -> Option<Refusal> {
    match error {
        Error::Refused { refusal, .. } => Some(*refusal),
        _ => None,
    }
}

fn with_secret(code: &PairingCode, secret: [u8; 16]) -> PairingCode {
    PairingCode::new(
        code.flow,
        code.port,
        code.fingerprint,
        Secret::from_bytes(secret),
        code.candidates.clone(),
    )
}

#[tokio::test]
async fn pairs_and_both_sides_learn_each_other() {
    let (host_ctx, host) = host(HostOptions::default());
    let joiner = ctx("joiner");
    let code = host.code().clone();
    let chain = chain();
    let (joined, paired) = tokio::join!(
        join(&joiner, &chain, async { Ok(code) }, quick()),
        host.wait()
    );
    let (joined, mut joiner_link) = joined.unwrap();
    let (paired, mut host_link) = paired.unwrap();
    assert_eq!(joined.peer.fingerprint, host_ctx.identity().fingerprint());
    assert_eq!(joined.peer.name, "host");
    assert_eq!(joined.via, "direct");
    assert_eq!(paired.peer.fingerprint, joiner.identity().fingerprint());
    assert_eq!(paired.peer.id, joiner.identity().device_id());
    assert_eq!(paired.peer.name, "joiner");
    assert_eq!(
        joiner_link.peer().fingerprint,
        host_ctx.identity().fingerprint()
    );
    assert_eq!(
        host_link.peer().fingerprint,
        joiner.identity().fingerprint()
    );

    // The pairing's stream stays open for the application, both ways, with half-close.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    joiner_link.write_all(b"hello host").await.unwrap();
    joiner_link.shutdown().await.unwrap();
    let mut got = Vec::new();
    host_link.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello host");
    host_link.write_all(b"bye").await.unwrap();
    host_link.shutdown().await.unwrap();
    let mut back = Vec::new();
    joiner_link.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, b"bye");

    // Single use.
    let again = join_with(host.code().clone()).await.unwrap_err();
    assert_eq!(refusal(&again), Some(Refusal::Used), "{again}");
}

#[tokio::test]
async fn wrong_code_is_refused_and_host_keeps_waiting() {
    let (_ctx, host) = host(HostOptions::default());
    let wrong = with_secret(host.code(), [0x55; 16]);
    let err = join_with(wrong).await.unwrap_err();
    assert_eq!(refusal(&err), Some(Refusal::WrongProof), "{err}");
    assert!(err.to_string().contains("not the one it shows"), "{err}");
    assert_eq!(host.wrong_proofs(), 1);
    // This source made a wrong proof: its next is looked at after the back-off.
    tokio::time::sleep(HostOptions::default().wrong_proof_backoff).await;
    let code = host.code().clone();
    let (joined, paired) = tokio::join!(join_with(code), host.wait());
    joined.unwrap();
    paired.unwrap();
}

#[tokio::test]
async fn wrong_proofs_slow_their_source_down_and_never_end_the_code() {
    let backoff = Duration::from_millis(300);
    let (_ctx, host) = host(HostOptions {
        wrong_proof_backoff: backoff,
        ..HostOptions::default()
    });
    let err = join_with(with_secret(host.code(), [1; 16]))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err), Some(Refusal::WrongProof), "{err}");
    // At once again: not even looked at.
    let other = with_secret(host.code(), [2; 16]).secret;
    let early = other.proof(Role::Joiner, &[0u8; 32]);
    assert_eq!(
        send_proof(host.code(), early).await,
        Message::Refused(Refusal::TooManyAttempts)
    );
    assert_eq!(host.wrong_proofs(), 1);
    // A joiner told to wait tries again after the back-off, and its proof is looked at then.
    let started = std::time::Instant::now();
    let err = join_with(with_secret(host.code(), [2; 16]))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err), Some(Refusal::WrongProof), "{err}");
    assert!(started.elapsed() >= backoff / 2, "{:?}", started.elapsed());
    assert_eq!(host.wrong_proofs(), 2);
    // The code is alive: after the (doubled) back-off the right one pairs.
    tokio::time::sleep(backoff * 2).await;
    let code = host.code().clone();
    let (joined, paired) = tokio::join!(join_with(code), host.wait());
    joined.unwrap();
    paired.unwrap();
}

#[tokio::test]
async fn expired_code_is_refused() {
    let (_ctx, host) = host(HostOptions {
        ttl: Duration::from_millis(300),
        ..HostOptions::default()
    });
    let ended = host.wait().await;
    assert!(matches!(ended, Err(Error::CodeExpired { .. })), "{ended:?}");
    let err = join_with(host.code().clone()).await.unwrap_err();
    assert_eq!(refusal(&err), Some(Refusal::Expired), "{err}");
}

#[tokio::test]
async fn impostor_with_another_key_is_refused() {
    let (_ctx, real) = host(HostOptions::default());
    let (_ctx2, impostor) = host(HostOptions::default());
    // The real code, but the impostor's address: the pin rejects the impostor's key.
    let mut code = real.code().clone();
    code.port = impostor.code().port;
    let err = join_with(code).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("does not match the pinned key"), "{text}");
    assert!(text.contains("impostor"), "{text}");
    assert_eq!(
        impostor.wrong_proofs(),
        0,
        "no proof may reach an unpinned host"
    );
}

/// Sends `proof` as the joiner's proof on a fresh connection and returns the host's answer.
async fn send_proof(code: &PairingCode, proof: [u8; 32]) -> Message {
    let identity = Identity::ephemeral("replayer").unwrap();
    let tcp = TcpStream::connect((LOOPBACK, code.port)).await.unwrap();
    let config = tls::client_config(&identity, code.fingerprint, ALPN).unwrap();
    let mut stream = TlsConnector::from(config)
        .connect(tls::server_name(), tcp)
        .await
        .unwrap();
    send(&mut stream, &Message::JoinerProof(proof))
        .await
        .unwrap();
    read_message(&mut stream).await.unwrap()
}

#[tokio::test]
async fn a_proof_from_another_session_is_useless() {
    // No back-off: both proofs must be looked at (and fail on their own).
    let (_ctx, host) = host(HostOptions {
        wrong_proof_backoff: Duration::ZERO,
        ..HostOptions::default()
    });
    // A proof computed with the right secret but another session's exporter value.
    let replayed = host.code().secret.proof(Role::Joiner, &[7u8; 32]);
    assert_eq!(
        send_proof(host.code(), replayed).await,
        Message::Refused(Refusal::WrongProof)
    );
    // The host's proof never verifies as a joiner's.
    let host_side = host.code().secret.proof(Role::Host, &[7u8; 32]);
    assert_eq!(
        send_proof(host.code(), host_side).await,
        Message::Refused(Refusal::WrongProof)
    );
}

#[tokio::test]
async fn unauthenticated_connections_are_capped_per_source() {
    use tokio::io::AsyncReadExt;
    let (_ctx, host) = host(HostOptions {
        max_per_source: 2,
        handshake_timeout: Duration::from_secs(3),
        ..HostOptions::default()
    });
    let addr = SocketAddr::new(LOOPBACK, host.code().port);
    // From another loopback address: a connection from the host's own address is never closed.
    let connect = || async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from(([127, 0, 0, 2], 0))).unwrap();
        socket.connect(addr).await.unwrap()
    };
    let mut first = connect().await;
    let mut second = connect().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = connect().await;
    // Over the cap: the oldest from this source is closed at once to make room for the newest.
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(1), first.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    for open in [&mut second, &mut third] {
        let read = tokio::time::timeout(Duration::from_millis(200), open.read(&mut buf)).await;
        assert!(read.is_err(), "still waiting for its handshake: {read:?}");
    }
}

#[tokio::test]
async fn silent_connection_is_dropped_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let (_ctx, host) = host(HostOptions {
        handshake_timeout: Duration::from_millis(300),
        ..HostOptions::default()
    });
    let mut idle = TcpStream::connect((LOOPBACK, host.code().port))
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

#[tokio::test]
async fn code_arriving_late_still_pairs_with_addresses_found_earlier() {
    let (_ctx, host) = host(HostOptions::default());
    let code = host.code().clone();
    let late = async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(code)
    };
    let (joiner, chain) = (ctx("joiner"), chain());
    let (joined, paired) = tokio::join!(join(&joiner, &chain, late, quick()), host.wait());
    assert!(joined.unwrap().0.elapsed >= Duration::from_millis(300));
    paired.unwrap();
}

#[tokio::test]
async fn nothing_listening_fails_with_what_was_tried() {
    let (_ctx, host) = host(HostOptions::default());
    let code = host.code().clone();
    drop(host);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = join(
        &ctx("joiner"),
        &chain(),
        async { Ok(code) },
        JoinOptions {
            deadline: Duration::from_secs(1),
            ..JoinOptions::default()
        },
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("tried 127.0.0.1:"), "{text}");
    assert!(text.contains("(from direct)"), "{text}");
    assert!(text.contains("Likely: nothing listens"), "{text}");
}

/// A joiner's offer of the other direction, as the host's discovery would see it.
fn offering_peer(joiner: &Identity, port: u16, to: localpair_core::OfferTo) -> Peer {
    let mut peer = Peer::new(
        joiner.fingerprint(),
        "phone".into(),
        vec![SocketAddr::new(LOOPBACK, 1)],
    );
    peer.offer = Some(localpair_core::Offer::new(port, to));
    peer
}

fn joiner_side(joiner: &Identity, code: &PairingCode) -> Arc<join::JoinerSide> {
    Arc::new(join::JoinerSide {
        name: joiner.name().to_owned(),
        code: code.clone(),
        link_port: Some(4242),
        turn: join::ProofTurn::default(),
    })
}

#[tokio::test]
async fn the_host_dials_a_joiner_that_offers_the_other_direction() {
    let (_ctx, host) = host(HostOptions::default());
    let joiner = Identity::ephemeral("phone").unwrap();
    let side = joiner_side(&joiner, host.code());
    let mut offer = offer::OfferListener::for_host(&joiner, side, 0).unwrap();
    let tag = localpair_core::OfferTo::Session(host.code().session_tag());
    // Offers for another pairing are not this host's business.
    let other = localpair_core::OfferTo::Session([0; 8]);
    let inbox = host.offer_inbox();
    inbox
        .send(offering_peer(&joiner, offer.port(), other))
        .await
        .unwrap();
    inbox
        .send(offering_peer(&joiner, offer.port(), tag))
        .await
        .unwrap();
    let (inbound, hosted) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(10), offer.next()),
        tokio::time::timeout(Duration::from_secs(10), host.wait()),
    );
    let (_, joined) = inbound.unwrap().unwrap();
    let link = joined.unwrap();
    assert_eq!(link.peer().name, "host");
    assert_eq!(link.peer().fingerprint, host.code().fingerprint);
    let (paired, _link) = hosted.unwrap().unwrap();
    assert_eq!(paired.peer.name, "phone");
    assert_eq!(paired.peer.fingerprint, joiner.fingerprint());
    assert_eq!(paired.peer.link_port, Some(4242));
}

#[tokio::test]
async fn an_offer_listener_refuses_anyone_but_the_host_of_the_code() {
    let (_ctx, host) = host(HostOptions::default());
    let joiner = Identity::ephemeral("phone").unwrap();
    let mut offer =
        offer::OfferListener::for_host(&joiner, joiner_side(&joiner, host.code()), 0).unwrap();
    // Another device (not the code's key) dials the offer: the TLS handshake fails.
    let stranger = Identity::ephemeral("stranger").unwrap();
    let config = tls::client_config(&stranger, joiner.fingerprint(), ALPN).unwrap();
    let dialled = tls::connect(config, SocketAddr::new(LOOPBACK, offer.port())).await;
    let (_, outcome) = tokio::time::timeout(Duration::from_secs(5), offer.next())
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.is_err(), "a stranger got through");
    drop(dialled);
    assert_eq!(host.wrong_proofs(), 0);
}
