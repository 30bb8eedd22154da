//! The address-resolution concern: which of my addresses can a peer reach?

use async_trait::async_trait;

use crate::candidate::Candidate;
use crate::context::Context;
use crate::error::StrategyError;

/// Finds addresses of this device that peers may reach.
///
/// Implementations answer once: an empty list means "nothing found here", an error says why and
/// whether the chain should go on ([`StrategyError::try_next`]) or stop ([`StrategyError::stop`]).
/// The chain runner drops the future when the strategy times out or loses a race, so hold sockets
/// in locals that close on drop.
#[async_trait]
pub trait AddressResolver: Send + Sync + 'static {
    /// Resolves candidates, best first.
    async fn resolve(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError>;

    /// A richer look at what this resolver depends on, for `localpair diagnose` (a UPnP resolver
    /// reports its gateway, external address and double NAT). `None` (the default): the
    /// diagnostics run [`resolve`](Self::resolve) and report its candidates instead.
    async fn self_check(&self, _ctx: &Context) -> Option<crate::diagnostics::SelfCheck> {
        None
    }
}
