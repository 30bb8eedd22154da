//! Two custom strategies for localpair, and (in `src/bin`) a `localpair` binary that includes them.
//! See README.md next to this file for the tutorial.
//!
//! - `static-peers` (discoverer): peers written in the config, for networks where nothing else
//!   works (multicast filtered, mDNS blocked) but addresses are known.
//! - `static-address` (resolver): addresses written in the config, for devices behind a fixed
//!   port forward or with a known static lease.
//!
//! ```
//! use localpair_core::config::{Settings, Source};
//!
//! let settings = Settings::load(Source::Toml(
//!     "[strategies.static-address]\naddresses = [\"192.168.1.50\"]\n".into(),
//! ))?;
//! let config: localpair_example_static::AddressConfig =
//!     settings.strategy_table("static-address").extract()?;
//! assert_eq!(config.addresses.len(), 1);
//! # Ok::<(), localpair_core::Error>(())
//! ```

mod config;
mod discoverer;
mod error;
mod resolver;

pub use config::{AddressConfig, PeerEntry, PeersConfig};
pub use discoverer::StaticPeers;
pub use error::Error;
pub use resolver::StaticAddress;
