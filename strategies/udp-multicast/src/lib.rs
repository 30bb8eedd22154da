//! `udp-multicast`: devices announce themselves on a UDP multicast group and list each other;
//! `peer-observed`: a device learns its own LAN address from a peer that heard it.
//!
//! ```no_run
//! use std::sync::Arc;
//! use localpair_core::config::{Settings, Source};
//! use localpair_core::{Context, DiscovererChain, DiscoveryGoal, Plan};
//! use localpair_udp_multicast::{Config, NAME, UdpMulticast};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = Settings::load(Source::Toml(
//!     "[strategies.udp-multicast]\nsteady_interval_ms = 3000\n".into(),
//! ))?;
//! let config: Config = settings.strategy_table(NAME).extract()?;
//! let ctx = Context::start(settings.clone())?;
//! let chain = DiscovererChain::new(Plan::from_config(&settings.config().discover))
//!     .with(NAME, Arc::new(UdpMulticast::new(config)));
//! let goal = DiscoveryGoal { count: Some(1), ..DiscoveryGoal::default() };
//! let report = chain.discover(&ctx, goal, None).await;
//! for peer in &report.peers {
//!     tracing::info!(name = %peer.name, addrs = ?peer.addrs, "found");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Discovery
//!
//! One socket per usable interface (up, not loopback, permitted by `[interfaces]`) and address
//! family: IPv4 joins `group_v4` on the interface's address, IPv6 joins the link-scoped
//! `group_v6` on its index. TTL and hop limit are 1, so nothing leaves the link;
//! `IP_MULTICAST_ALL` is off so each socket hears only its own interface; multicast loopback is
//! on, so our own packets coming back tell "this device filters multicast" apart from "nobody
//! else is here". Packets are in the format of [`wire`]; anything else at the port is dropped
//! with a debug line.
//!
//! Timing: a burst at start (0, 100, 500, 1500 ms, flagged *starting*), then back-off 2 s, 4 s,
//! ... up to the steady interval (5 s; never more than one a second). A listener that hears a
//! new peer, or a *starting* one, answers on the group at once (at most one answer per 250 ms
//! per interface), so a newcomer finds everyone in about one round trip. Nothing is ever sent
//! unicast in reply to a datagram; packets from outside the receiving interface's subnet are
//! ignored. A change of [`Context::advert`](localpair_core::Context::advert) is announced at
//! once. Peers silent for 3 steady intervals are forgotten; a device heard on several interfaces
//! is one [`Peer`](localpair_core::Peer) with several addresses.
//!
//! # Peer-observed addresses
//!
//! When the discoverer hears a peer at a new address it tells the peer's confirmation listener
//! (TLS pinned to the fingerprint it announced) the source address it saw. The `peer-observed`
//! resolver announces the same way, waits for such reports, self-confirms each reported address
//! through our own listener, and returns it as a [`Confirmation::Peer`] candidate.
//!
//! An announcement is an unverified datagram, so the reports it triggers are bounded: none until
//! the key has been heard twice from the same source address, at most one offered to the same
//! address and port per 30 s whatever key names it, and at most one started per second in
//! total, one at a time. Every key heard is passed to our own listener
//! ([`Confirmer::heard`](localpair_core::Confirmer::heard)), which believes observations only
//! from keys heard announcing from the address they report from.
//!
//! # Bounds
//!
//! Everything the network can fill is bounded: 256 peers (the one heard in the fewest one-second
//! rounds, longest ago, goes first), one address per peer and link, 1024 counted (key, source)
//! pairs and 1024 recent report targets, 32 queued reports and 1024 report states. A peer heard
//! in 2, 4, 8... rounds is reported to the chain again, so the chain, when full, also keeps the
//! devices that keep announcing.
//!
//! # Loopback test
//!
//! [`UdpMulticast::loopback_test`] joins the group on each link, sends one probe (a packet kind
//! every other device ignores, so nothing is announced) and reports whether it came back through
//! multicast loopback: the part of "multicast works" that this device alone decides.
//!
//! [`Confirmation::Peer`]: localpair_core::Confirmation::Peer

mod config;
mod discoverer;
mod engine;
mod error;
mod gate;
mod link;
mod peers;
mod probe;
mod report;
mod resolver;
mod schedule;
mod socket;
mod summary;
pub mod wire;

pub use config::{Config, ObserveConfig};
pub use discoverer::{NAME, UdpMulticast};
pub use error::Error;
pub use probe::LinkTest;
pub use resolver::{PeerObserved, RESOLVER_NAME};
