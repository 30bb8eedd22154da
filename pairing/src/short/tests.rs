//! Short-code pairing over loopback: the exchange, wrong codes and the end of a code, and a
//! joiner that tries only the hosts on its channel.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::chain::{DiscovererChain, Plan};
use localpair_core::config::{ChainMode, Settings, Source};
use localpair_core::{
    Context, Identity, Peer, PeerDiscoverer, PeerSink, StrategyError, async_trait,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::{Error, JoinOptions, Refusal};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const SECRET: u32 = 3_928_150;

fn options() -> ShortHostOptions {
    ShortHostOptions {
        listen_on: vec![LOOPBACK],
        port: 0,
        ..ShortHostOptions::default()
    }
}

fn host(channel: u8) -> ShortHost {
    let desk = Arc::new(Identity::ephemeral("desk").unwrap());
    ShortHost::with_code(desk, options(), ShortCode::new(channel, SECRET).unwrap()).unwrap()
}

fn phone() -> Arc<Identity> {
    Arc::new(Identity::ephemeral("phone").unwrap())
}

fn refusal(error: &Error) -> Option<Refusal> {
    match error {
        Error::Refused { refusal, .. } => Some(*refusal),
        _ => None,
    }
}

#[tokio::test]
async fn the_right_code_pairs_and_both_keys_are_the_ones_in_tls() {
    let host = host(47);
    let phone = phone();
    let code = ShortCode::parse("47 392 8150").unwrap();
    let (joined, hosted) = tokio::join!(
        dial_short(Arc::clone(&phone), code, host.local_addrs()[0]),
        host.wait()
    );
    let mut joined = joined.unwrap();
    let (paired, mut hosted) = hosted.unwrap();
    assert_eq!(joined.peer().name, "desk");
    assert_eq!(paired.peer.name, "phone");
    assert_eq!(paired.peer.fingerprint, phone.fingerprint());
    assert_eq!(
        verification_code(&joined.peer().fingerprint, &phone.fingerprint()),
        verification_code(&phone.fingerprint(), &joined.peer().fingerprint),
    );
    joined.write_all(b"hi").await.unwrap();
    let mut buf = [0u8; 2];
    hosted.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hi");
    assert_eq!(host.failures(), 0);
}

#[tokio::test]
async fn two_wrong_codes_then_the_right_one_pairs() {
    let host = host(47);
    let addr = host.local_addrs()[0];
    for wrong in [SECRET + 1, 1] {
        let code = ShortCode::new(47, wrong).unwrap();
        let error = dial_short(phone(), code, addr).await.unwrap_err();
        assert_eq!(refusal(&error), Some(Refusal::WrongCode), "{error}");
        assert!(error.to_string().contains("wrong"), "{error}");
    }
    assert_eq!(host.failures(), 2);
    let code = ShortCode::new(47, SECRET).unwrap();
    let (joined, hosted) = tokio::join!(dial_short(phone(), code, addr), host.wait());
    joined.unwrap();
    hosted.unwrap();
}

#[tokio::test]
async fn the_third_wrong_code_ends_it_for_everyone() {
    let host = host(47);
    let addr = host.local_addrs()[0];
    let wrong = ShortCode::new(47, SECRET ^ 1).unwrap();
    for expected in [Refusal::WrongCode, Refusal::WrongCode, Refusal::CodeEnded] {
        let error = dial_short(phone(), wrong, addr).await.unwrap_err();
        assert_eq!(refusal(&error), Some(expected), "{error}");
    }
    let ended = host.wait().await.unwrap_err();
    assert!(matches!(ended, Error::CodeEnded { failures: 3 }), "{ended}");
    assert!(ended.to_string().contains("wrong code"), "{ended}");
    // Even the right code is too late now.
    let right = ShortCode::new(47, SECRET).unwrap();
    let error = dial_short(phone(), right, addr).await.unwrap_err();
    assert_eq!(refusal(&error), Some(Refusal::CodeEnded), "{error}");
    assert_eq!(host.failures(), 3);
}

#[tokio::test]
async fn an_exchange_abandoned_after_the_hosts_message_counts() {
    use localpair_core::tls;
    let host = host(47);
    let addr = host.local_addrs()[0];
    let config = tls::client_config_unpinned(&phone(), ALPN).unwrap();
    let mut stream = tls::connect(config, addr).await.unwrap();
    let (_, hello) = pake::Pake::start(
        crate::code::Role::Joiner,
        ShortCode::new(47, 1).unwrap().secret,
    );
    crate::send(&mut stream, &crate::wire::Message::ShortHello(hello))
        .await
        .unwrap();
    let reply = crate::read_message(&mut stream).await.unwrap();
    assert!(matches!(reply, crate::wire::Message::ShortReply { .. }));
    drop(stream);
    tokio::time::timeout(Duration::from_secs(5), async {
        while host.failures() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

/// Announces fixed peers, like a discoverer hearing two hosts.
struct Heard(Vec<Peer>);

#[async_trait]
impl PeerDiscoverer for Heard {
    async fn discover(&self, _ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        for peer in &self.0 {
            sink.found(peer.clone()).await;
        }
        sink.stopped().await;
        Ok(())
    }
}

fn announced(host: &ShortHost, name: &str) -> Peer {
    let mut peer = Peer::new(
        localpair_core::Fingerprint::from_bytes([name.len() as u8; 32]),
        name.to_owned(),
        vec![SocketAddr::new(LOOPBACK, 1)],
    );
    peer.pairing_port = Some(host.local_addrs()[0].port());
    peer.session_tag = Some(host.nonce());
    peer.short_channel = Some(host.code().channel);
    peer
}

#[tokio::test]
async fn a_joiner_tries_only_the_hosts_on_its_channel() {
    let ours = host(47);
    let other = host(52);
    let chain = DiscovererChain::new(Plan::new(
        ChainMode::All,
        Duration::ZERO,
        None,
        Duration::from_secs(10),
    ))
    .with(
        "heard",
        Arc::new(Heard(vec![
            announced(&other, "other"),
            announced(&ours, "ours"),
        ])),
    );
    let ctx = Context::new(
        Settings::load(Source::Toml(String::new())).unwrap(),
        phone(),
        None,
    )
    .unwrap();
    let wrong = ShortCode::new(47, SECRET + 7).unwrap();
    let error = join_short(&ctx, &chain, async { Ok(wrong) }, JoinOptions::default())
        .await
        .unwrap_err();
    assert_eq!(refusal(&error), Some(Refusal::WrongCode), "{error}");
    assert_eq!(ours.failures(), 1);
    assert_eq!(
        other.failures(),
        0,
        "the host on another channel was not tried"
    );
    let right = ShortCode::new(47, SECRET).unwrap();
    let (joined, hosted) = tokio::join!(
        join_short(&ctx, &chain, async { Ok(right) }, JoinOptions::default()),
        ours.wait()
    );
    let (joined, _link) = joined.unwrap();
    assert_eq!(joined.peer.addr.port(), ours.local_addrs()[0].port());
    hosted.unwrap();
    assert_eq!(other.failures(), 0);
}
