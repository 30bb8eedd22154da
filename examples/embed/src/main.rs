//! localpair as a library: two devices pair once, restart, and reconnect without a code — no CLI.
//!
//! ```text
//! cargo run -p localpair-example-embed
//! ```
//!
//! Both devices live in this one process and talk over loopback only: the resolver is a
//! stand-in that answers 127.0.0.1, no discoverer announces anything, and joining and
//! reconnecting dial the addresses they know (`direct`). On real devices the same calls run with
//! `Source::Discover` and the built-in strategies.
#![allow(
    clippy::print_stdout,
    reason = "an example program reports on the terminal"
)]

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use localpair_core::config::{Settings, Source};
use localpair_core::registry::{Factory, no_facts};
use localpair_core::{
    AddressResolver, Candidate, Context, InterfaceClass, Registry, StrategyError, async_trait,
};
use localpair_pairing::Device;
use localpair_pairing::code::Flow;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

// Link the strategy this program uses; it registers itself.
use localpair_direct as _;

/// Answers 127.0.0.1: keeps this example on loopback.
struct Loopback;

#[async_trait]
impl AddressResolver for Loopback {
    async fn resolve(&self, _ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        Ok(vec![
            Candidate::new(IpAddr::V4(Ipv4Addr::LOCALHOST)).with_class(InterfaceClass::Loopback),
        ])
    }
}

fn settings(name: &str, state: &Path) -> Result<Settings, localpair_core::Error> {
    Settings::load(Source::Toml(format!(
        r#"
[device]
name = "{name}"
state_dir = "{}"

[resolve]
order = ["loopback"]

[discover]
order = []

[join]
order = ["direct"]
deadline_ms = 5000

[connect]
order = ["direct"]
deadline_ms = 5000
"#,
        state.display()
    )))
}

fn open(name: &str, state: &Path, registry: &Registry) -> Result<Device, Box<dyn Error>> {
    Ok(Device::open(settings(name, state)?, registry.clone())?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut registry = Registry::linked()?;
    registry.add_resolver(Factory {
        name: "loopback",
        crate_name: env!("CARGO_PKG_NAME"),
        summary: "127.0.0.1 (this example only)",
        facts: no_facts,
        build: |_| Ok(Arc::new(Loopback)),
    })?;
    let root: PathBuf =
        std::env::temp_dir().join(format!("localpair-embed-{}", std::process::id()));
    let (desk_dir, phone_dir) = (root.join("desk"), root.join("phone"));

    // Day one: pair by code. Both sides save each other and get the open link.
    let (desk_key, phone_key) = {
        let desk = open("desk", &desk_dir, &registry)?;
        let phone = open("phone", &phone_dir, &registry)?;
        let hosting = desk.host(Flow::Pre).await?;
        let code = hosting.code().clone();
        println!("code {}", code.encode());
        let (joined, hosted) = tokio::join!(phone.join(async { Ok(code) }, None), hosting.wait());
        let ((joined, mut phone_link), (_, mut desk_link)) = (joined?, hosted?);
        phone_link.write_all(b"hello from the phone").await?;
        phone_link.shutdown().await?;
        let mut got = String::new();
        desk_link.read_to_string(&mut got).await?;
        println!(
            "paired with {} via {} in {:.1} ms; the desk read {got:?}",
            joined.peer.name,
            joined.via,
            joined.elapsed.as_secs_f64() * 1000.0
        );
        (
            desk.identity().fingerprint(),
            phone.identity().fingerprint(),
        )
    };

    // Day two: both programs restarted. Same keys, same trust stores, no code.
    let desk = open("desk", &desk_dir, &registry)?;
    let phone = open("phone", &phone_dir, &registry)?;
    assert_eq!(desk.identity().fingerprint(), desk_key);
    assert_eq!(phone.identity().fingerprint(), phone_key);
    println!(
        "after the restart the phone knows {:?}",
        phone
            .peers()?
            .iter()
            .map(|p| p.label().to_owned())
            .collect::<Vec<_>>()
    );
    let listening = desk.listen().await?;
    let (connected, accepted) = tokio::join!(phone.connect("desk"), listening.accept());
    let ((connected, mut phone_link), mut desk_link) = (connected?, accepted?);
    phone_link.write_all(b"hello again").await?;
    phone_link.shutdown().await?;
    let mut got = String::new();
    desk_link.read_to_string(&mut got).await?;
    println!(
        "reconnected to {} via {} in {:.1} ms; the desk read {got:?}",
        phone_link.peer().name,
        connected.via,
        connected.elapsed.as_secs_f64() * 1000.0
    );
    drop(listening);
    drop((desk, phone));
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
