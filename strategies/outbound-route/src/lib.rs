//! `outbound-route`: the seed's stage 1 — the address the OS would send from to reach the
//! outside world, then a self-confirmation through the confirmation listener.
//!
//! A UDP socket is *connected* to each target (default: documentation addresses 192.0.2.1 and
//! 2001:db8::1, which follow the default route like any public address); connecting a UDP socket
//! makes the kernel choose a route and a source address and sends nothing. The source address is
//! then confirmed by sending a random code to it through our own listener, which proves it is ours
//! ([`Confirmation::Local`](localpair_core::Confirmation::Local)), not that peers can reach it.
//!
//! ```
//! use localpair_core::config::{Settings, Source};
//!
//! let settings = Settings::load(Source::Toml(
//!     "[strategies.outbound-route]\ntargets = [\"192.0.2.1:9\"]\n".into(),
//! ))?;
//! let config: localpair_outbound_route::Config =
//!     settings.strategy_table(localpair_outbound_route::NAME).extract()?;
//! let resolver = localpair_outbound_route::OutboundRoute::new(config);
//! # let _ = resolver;
//! # Ok::<(), localpair_core::Error>(())
//! ```

mod config;
mod error;
mod resolver;

pub use config::Config;
pub use error::Error;
pub use resolver::{NAME, OutboundRoute};
