//! The address-resolution concern: which of my addresses can a peer reach?

use async_trait::async_trait;

use crate::candidate::Candidate;
use crate::context::Context;
use crate::error::StrategyError;

/// Finds addresses of this device that peers may reach.
///
/// Implementations answer once: an empty list means "nothing found here", an error says why and
/// how specific the failure is ([`StrategyError::new`] with a [`FailureKind`](crate::FailureKind)),
/// from which the chain decides whether to go on or stop.
/// The chain runner drops the future when the strategy times out or loses a race, so hold sockets
/// in locals that close on drop.
#[async_trait]
pub trait AddressResolver: Send + Sync + 'static {
    /// Resolves candidates, best first.
    async fn resolve(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError>;

    /// A richer look at what this resolver depends on, for `localpair diagnose` (a UPnP resolver
    /// reports its gateway, external address and double NAT). `None` (the default): the
    /// diagnostics run [`resolve`](Self::resolve) and report its candidates instead.
    ///
    /// It must finish within `limit` (the caller cuts it off there). Declare it in the
    /// registration's [`Facts`](crate::registry::Facts) so tools know to ask.
    async fn self_check(
        &self,
        _ctx: &Context,
        _limit: std::time::Duration,
    ) -> Option<crate::check::SelfCheck> {
        None
    }
}
