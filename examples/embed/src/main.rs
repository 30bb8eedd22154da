//! localpair as a library: build chains from a config string, resolve, discover, and pair — no CLI.
//!
//! ```text
//! cargo run -p localpair-example-embed                # resolve, then pair two in-process devices over loopback
//! cargo run -p localpair-example-embed -- --discover  # also a 3 s discovery session: multicast and mDNS on
//!                                                     # your network, so run it on a LAN you own (or a lab netns)
//! ```
#![allow(
    clippy::print_stdout,
    reason = "an example program reports on the terminal"
)]

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::config::{Settings, Source};
use localpair_core::{Context, DiscovererChain, DiscoveryGoal, Registry, ResolverChain};
use localpair_pairing::code::{Flow, PairingCode};
use localpair_pairing::{HostOptions, JoinConfig, JoinOptions, PairingHost, join};

// Link the strategies this program uses; they register themselves.
use localpair_direct as _;
use localpair_interface_sweep as _;
use localpair_mdns as _;
use localpair_outbound_route as _;
use localpair_udp_multicast as _;

const CONFIG: &str = r#"
[resolve]
order = ["outbound-route", "interface-sweep"]
mode = "all"

[discover]
order = ["udp-multicast", "mdns"]
deadline_ms = 3000

# The in-process joiner below only needs the code's own address.
[join]
order = ["direct"]
deadline_ms = 5000
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let settings = Settings::load(Source::Toml(CONFIG.to_owned()))?;
    let registry = Registry::linked()?;

    // Which of my addresses can a peer reach?
    let ctx = Context::start(settings.clone())?;
    let report = ResolverChain::from_settings(&registry, &settings)?
        .resolve(&ctx)
        .await;
    for candidate in &report.candidates {
        println!(
            "address {} via {}: {}",
            candidate.ip, candidate.strategy, candidate.reason
        );
    }
    for attempt in &report.attempts {
        println!("resolver {} {}", attempt.strategy, attempt.outcome.as_str());
    }

    // Where are the other devices?
    if std::env::args().any(|a| a == "--discover") {
        let found = DiscovererChain::from_settings(&registry, &settings)?
            .discover(&ctx, DiscoveryGoal::default(), None)
            .await;
        for peer in &found.peers {
            println!("peer {} [{}] via {}", peer.name, peer.id, peer.strategy);
        }
    }

    // Pairing: a host and a joiner in this one process, over loopback.
    let mut options = HostOptions::default();
    options.flow = Flow::Pre;
    options.listen_on = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    options.candidates = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    options.ttl = Duration::from_secs(30);
    let host = PairingHost::start(Arc::clone(ctx.identity()), options)?;
    let code = host.code().encode();
    println!("code {code}");

    let joiner = Context::start(settings.clone())?;
    let join_chain = JoinConfig::from_settings(&settings)?.chain(&registry, &settings)?;
    let parsed = PairingCode::parse(&code)?;
    let (joined, paired) = tokio::join!(
        join(
            &joiner,
            &join_chain,
            async { Ok(parsed) },
            JoinOptions::default()
        ),
        host.wait()
    );
    let (joined, paired) = (joined?, paired?);
    println!(
        "joiner paired with {} via {} in {:.1} ms",
        joined.peer.fingerprint.short(),
        joined.via,
        joined.elapsed.as_secs_f64() * 1000.0
    );
    println!("host paired with {}", paired.peer.fingerprint.short());
    Ok(())
}
