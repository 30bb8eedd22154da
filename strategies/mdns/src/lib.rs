//! `mdns`: a [`PeerDiscoverer`](localpair_core::PeerDiscoverer) over mDNS/DNS-SD (RFC 6762/6763),
//! built on [mdns-sd](https://docs.rs/mdns-sd): announces this device as `_localpair._tcp.local.`
//! and reports every other device that does.
//!
//! ```
//! use std::sync::Arc;
//! use localpair_core::config::{Settings, Source};
//! use localpair_core::PeerDiscoverer;
//!
//! let settings = Settings::load(Source::Toml("[strategies.mdns]\nipv6 = false\n".into()))?;
//! let config: localpair_mdns::Config =
//!     settings.strategy_table(localpair_mdns::NAME).extract()?;
//! assert!(!config.ipv6);
//! let discoverer: Arc<dyn PeerDiscoverer> = Arc::new(localpair_mdns::Mdns::new(config));
//! // A `DiscovererChain` runs it: `discoverer.discover(&ctx, sink)` is one session.
//! # let _ = discoverer;
//! # Ok::<(), localpair_core::Error>(())
//! ```
//!
//! Each session starts one mdns-sd daemon restricted to the interfaces `[interfaces]` permits
//! (every other interface is disabled before anything is registered or browsed), registers this
//! device and browses the same type. Every resolved instance with a valid TXT record becomes a
//! [`Peer`](localpair_core::Peer) whose addresses are its A/AAAA records that lie inside a
//! permitted interface's subnet (IPv6 link-local ones with that interface as scope), at the SRV
//! port (the peer's confirmation listener). A peer is reported again when its record changes (its
//! advert, another address). When the session stops, the service is withdrawn (goodbye packets)
//! and the daemon shut down, also when the session future is dropped. A session that found nobody
//! returns an error whose message carries the numbers ("browsed … on eth0 for 3.0 s (3 queries
//! sent): 0 other services seen, 0 rejected, …; our own announcement was not even heard back:
//! multicast may be filtered …").
//!
//! Standard DNS-SD tools see us, and a service of our type published by a standard responder is
//! found when its TXT record is valid; an invalid one is ignored with one log line (info) per
//! instance. Tested both ways in the lab (`tests/lab.rs`) with python-zeroconf 0.47 and avahi 0.8
//! (`avahi-browse -r _localpair._tcp`; a static avahi service file). Bonjour (`dns-sd -B
//! _localpair._tcp`) is expected to work, as nothing here is specific to one implementation, but
//! it is not tested.
//!
//! | Record | Value |
//! |---|---|
//! | service type | `_localpair._tcp.local.` |
//! | instance name | `<device name> <device id>`, e.g. `Kitchen laptop 3f2a9c0d11b2e4f5` (name cut to 46 bytes, control characters replaced) |
//! | host name | `lp-<device id>.local.` (A/AAAA: this device's addresses on the permitted interfaces) |
//! | SRV port | the confirmation listener's port |
//!
//! TXT keys (RFC 6763 `key=value` strings; keys are case-insensitive and the first occurrence
//! wins; unknown keys are ignored, so later versions can add some):
//!
//! | Key | Required | Value |
//! |---|---|---|
//! | `v` | yes | protocol version: `1`; records of another version are ignored |
//! | `id` | yes | device id: 16 hex digits; must equal the first 8 bytes of `fp`, or the record is rejected |
//! | `fp` | yes | key fingerprint: 64 hex digits, SHA-256 of the DER SubjectPublicKeyInfo (pinned when connecting) |
//! | `name` | no | device name, UTF-8, at most 63 bytes (longer is cut, control characters become U+FFFD) |
//! | `pp` | no | pairing listener port, decimal 1–65535; present while the device hosts a pairing |
//! | `tag` | no | session tag of the hosted pairing: 16 hex digits; present with `pp` when the host has one |
//!
//! We emit lower-case hex and accept either case. A record over [`txt::MAX_ENTRIES`] entries or
//! [`txt::MAX_BYTES`] bytes is not read.
//!
//! Options (`[strategies.mdns]`, see [`Config`]):
//!
//! ```toml
//! [strategies.mdns]
//! # Also announce and browse over IPv6 and report peers' IPv6 addresses
//! # (link-local ones scoped to their interface).
//! ipv6 = true
//! # Probe for name conflicts before announcing (RFC 6762 §8.1): about 750 ms before our first
//! # announcement. Off: peers starting together find each other at once, but a second process
//! # using the same device key is not detected.
//! probe = true
//! ```

mod addrs;
mod config;
mod daemon;
mod discoverer;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod session;
pub mod txt;

pub use config::Config;
pub use discoverer::{Mdns, NAME, SERVICE_TYPE};
pub use error::{Error, Silence};
pub use txt::Txt;
