//! `upnp`: the address facing the UPnP IGD gateway, the gateway's external address, and an
//! optional port mapping for the pairing port (igd-next with tokio).
//!
//! ```
//! use localpair_core::config::{Settings, Source};
//!
//! let settings = Settings::load(Source::Toml(
//!     "[strategies.upnp]\nsearches = 2\nsearch_timeout_ms = 1000\n".into(),
//! ))?;
//! let upnp = localpair_upnp::Upnp::from_settings(&settings)?;
//! assert_eq!(upnp.config().searches, 2);
//! assert!(!upnp.config().map_port);
//! // As a resolver: `order = ["upnp"]` in `[resolve]`, or directly:
//! // let candidates = upnp.resolve(&ctx).await?;
//! // For diagnostics (no confirmation):
//! // let gateway = upnp.probe(&ctx).await?;
//! // println!("{gateway}"); // UPnP gateway 192.168.1.1 (FRITZ!Box 7590) on eth0, ...
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **Search.** On every permitted interface that is up with an IPv4 address (loopback excluded),
//! a UDP socket bound to that address sends SSDP `M-SEARCH` requests to 239.255.255.250:1900,
//! `searches` rounds spread over `search_timeout_ms` (one igd-next search sends one round and a
//! lost datagram would end it). Interfaces are searched in parallel; once one found its gateway
//! the others get [`OTHERS_GRACE`] more. Only an answer from inside the subnet of the address
//! searched from, whose description is at that same address, is used: the others are listed in
//! the error. igd-next is then pointed at that one gateway (a unicast `M-SEARCH`), reads its
//! description and control service, and asks `GetExternalIPAddress`; the root device's
//! `friendlyName` is read separately (hyper, 64 KiB cap).
//!
//! **Answer.** A [`Candidate`](localpair_core::Candidate) for our address facing the gateway
//! (self-confirmed, [`Confirmation::Local`](localpair_core::Confirmation::Local)), whose reason
//! says "faces the UPnP gateway 192.168.1.1 (FRITZ!Box 7590)" and gives the external address. The
//! external address is reported (reason, log, [`GatewayInfo`]), never a LAN candidate; one that is
//! not public (RFC 1918, 100.64/10 carrier-grade NAT, ...) is flagged as double NAT. Diagnostics
//! call [`Upnp::probe`] for the same facts without a confirmation.
//!
//! **Port mapping** (`map_port = true`, off by default): [`map_pairing_port`] or [`Upnp::map`]
//! asks the gateway to forward a TCP port, described as `localpair <device name>`, with a lease of
//! `lease_secs` (3600) renewed at half, or a permanent one when the gateway only supports those
//! (UPnP error 725). [`Mapping::shutdown`] removes it; dropping the mapping removes it on a
//! best-effort basis.
//!
//! **Limits of what is read from the network.** SSDP answers: 2 KiB (longer ones are ignored).
//! Friendly name: 64 KiB of description, 64 characters kept. Everything igd-next reads
//! (description, service description, SOAP answers): its own cap of 1 MiB per body and 64 levels
//! of XML nesting, and every exchange within `request_timeout_ms`.

mod config;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod info;
mod mapping;
mod resolver;
mod ssdp;

pub use config::Config;
pub use error::{Error, SearchReport};
pub use info::{AddressScope, GatewayInfo};
pub use mapping::Mapping;
pub use resolver::{NAME, OTHERS_GRACE, Upnp, map_pairing_port};
