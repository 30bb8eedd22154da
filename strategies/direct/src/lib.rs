//! `direct`: the addresses written in the pairing code, offered to the joiner the moment the code
//! is known — no network traffic of its own; the joiner's dial is the test.
//!
//! IPv6 link-local addresses in a code carry no scope (an interface index means nothing on another
//! device), so each is offered once per local interface that has a link-local address.
//! Outside a join (plain `localpair discover`) there is no code, and `direct` says so.
//!
//! ```
//! use localpair_core::config::{Settings, Source};
//!
//! let settings = Settings::load(Source::Toml("[strategies.direct]\nlink_local = false\n".into()))?;
//! let config: localpair_direct::Config = settings.strategy_table(localpair_direct::NAME).extract()?;
//! let discoverer = localpair_direct::Direct::new(config);
//! # let _ = discoverer;
//! # Ok::<(), localpair_core::Error>(())
//! ```

mod config;
mod discoverer;
mod error;

pub use config::Config;
pub use discoverer::{Direct, NAME};
pub use error::Error;
