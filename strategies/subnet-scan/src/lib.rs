//! `subnet-scan`: the fallback when nothing else finds the host — connect to the pairing port on
//! every address of the private subnets this device is on, LocalSend style.
//!
//! It waits for the pairing code (it needs the port and the key), then for a grace period so the
//! cheaper strategies get their chance, then tries each address of each permitted interface's
//! private IPv4 subnet (at most a /24 around our own address) with bounded concurrency and a short
//! connect timeout. An open port counts only when a TLS handshake there presents the code's key;
//! the probe closes without a proof, which the host does not count as a wrong attempt.
//!
//! ```
//! use localpair_core::config::{Settings, Source};
//!
//! let settings = Settings::load(Source::Toml("[strategies.subnet-scan]\ngrace_ms = 0\n".into()))?;
//! let config: localpair_subnet_scan::Config =
//!     settings.strategy_table(localpair_subnet_scan::NAME).extract()?;
//! assert_eq!(config.grace_ms, 0);
//! # Ok::<(), localpair_core::Error>(())
//! ```

mod config;
mod discoverer;
mod error;

pub use config::Config;
pub use discoverer::{NAME, SubnetScan, scan_targets};
pub use error::Error;
