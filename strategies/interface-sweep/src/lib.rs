//! `interface-sweep`: the seed's stage 2 — every private address of every permitted interface,
//! each self-confirmed through the confirmation listener, ranked, and explained.
//!
//! Each address is dialled in parallel with the target address inside the probe, so the listener
//! can tell which addresses work. Addresses are ranked: the interface holding the default route
//! first, physical links before VPN tunnels, virtual bridges (Docker, VMs) last, and each candidate
//! says why it sits where it does. Confirmation is labelled
//! [`Confirmation::Local`](localpair_core::Confirmation::Local): a connection to one's own address
//! goes through loopback, so it proves the address is ours, not that peers can reach it.
//!
//! ```
//! use localpair_core::config::{Settings, Source};
//!
//! let settings = Settings::load(Source::Toml(
//!     "[strategies.interface-sweep]\nlink_local = false\n".into(),
//! ))?;
//! let config: localpair_interface_sweep::Config =
//!     settings.strategy_table(localpair_interface_sweep::NAME).extract()?;
//! assert!(!config.link_local);
//! let resolver = localpair_interface_sweep::InterfaceSweep::new(config);
//! # let _ = resolver;
//! # Ok::<(), localpair_core::Error>(())
//! ```

mod config;
mod error;
mod resolver;

pub use config::Config;
pub use error::Error;
pub use resolver::{InterfaceSweep, NAME};
