//! The framework of localpair: devices on one local network find each other and learn which of
//! their addresses a peer can reach. Applications (pairing, diagnostics) are crates built on it.
//!
//! Two questions, each answered by a chain of pluggable strategies:
//!
//! 1. *Which of my addresses can a peer reach?* — [`AddressResolver`], run by a [`ResolverChain`].
//! 2. *Where are the other devices?* — [`PeerDiscoverer`], run by a [`DiscovererChain`].
//!
//! Strategy crates register factories with [`register_resolver!`] / [`register_discoverer!`];
//! the [`Registry`] builds chains from the `[resolve]` / `[discover]` sections of the
//! [`Settings`]. Every attempt is recorded, so a failure explains itself.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use localpair_core::{
//!     AddressResolver, Candidate, Context, Identity, Plan, ResolverChain, Settings,
//!     StrategyError,
//! };
//!
//! struct Fixed;
//!
//! #[async_trait]
//! impl AddressResolver for Fixed {
//!     async fn resolve(&self, _ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
//!         Ok(vec![Candidate::new("192.168.1.20".parse().unwrap())])
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), localpair_core::Error> {
//! let settings = Settings::load(localpair_core::config::Source::Toml(String::new()))?;
//! let identity = Arc::new(Identity::ephemeral("docs")?);
//! let ctx = Context::new(settings.clone(), identity, None)?;
//! let chain = ResolverChain::new(Plan::from_config(&settings.config().resolve))
//!     .with("fixed", Arc::new(Fixed));
//! let report = chain.resolve(&ctx).await;
//! assert_eq!(report.candidates[0].ip.to_string(), "192.168.1.20");
//! assert_eq!(report.candidates[0].strategy, "fixed");
//! # Ok(())
//! # }
//! ```

pub mod bind;
pub mod bytes;
pub mod candidate;
pub mod chain;
pub mod check;
pub mod classify;
pub mod config;
pub mod confirm;
mod context;
mod discoverer;
mod error;
pub mod frame;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod interfaces;
pub mod peer;
pub mod registry;
mod resolver;
pub mod serve;
pub mod state;
pub mod tls;

pub use candidate::{Candidate, Confirmation, InterfaceClass};
pub use chain::{
    Attempt, DiscoverReport, DiscovererChain, DiscoveryGoal, Outcome, Plan, ResolveReport,
    ResolverChain,
};
pub use check::SelfCheck;
pub use config::{ChainMode, Config, Settings};
pub use confirm::Confirmer;
pub use context::{Advert, Context, JoinTarget, NoListener};
pub use discoverer::{PeerDiscoverer, PeerSink};
pub use error::{Classify, Error, FailureKind, OnError, StrategyError};
pub use identity::{DeviceId, Fingerprint, Identity};
pub use peer::Peer;
pub use peer::{Offer, OfferTo};
pub use registry::Registry;
pub use resolver::AddressResolver;

#[doc(hidden)]
pub use inventory as __inventory;

/// Re-exported so strategy crates implement the traits with the same macro version.
pub use async_trait::async_trait;

/// Serializes a duration as milliseconds with two decimals (`elapsed_ms` in JSON).
pub fn serde_millis<S: serde::Serializer>(
    duration: &std::time::Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    // Hundredths of a millisecond: a resolve over loopback takes about one.
    serializer.serialize_f64((duration.as_secs_f64() * 100_000.0).round() / 100.0)
}
