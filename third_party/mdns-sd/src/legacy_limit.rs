//! Rate limit for legacy unicast responses (RFC 6762 §6.7).
//!
//! A query from a source port other than 5353 is answered by unicast to that source address and
//! port. The source of a UDP datagram is whatever its sender wrote, so without a limit every
//! small query becomes a larger response aimed at an address of the sender's choosing
//! (reflection with amplification: a 39-byte query gets a 241-byte answer). Real legacy
//! resolvers ask a few questions at a time (A and AAAA, a retry), so a small per-source budget
//! costs them nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Length of one counting window.
pub(crate) const LEGACY_WINDOW: Duration = Duration::from_secs(1);
/// Legacy unicast responses per source address per window: A and AAAA and a retry of each.
pub(crate) const LEGACY_PER_SOURCE: u32 = 4;
/// Legacy unicast responses per window in total, whatever the sources: bounds what the
/// daemon sends on behalf of spoofed sources (and the size of the per-source table, since a
/// source is only counted when it gets a response).
pub(crate) const LEGACY_TOTAL: u32 = 32;

/// Counts legacy unicast responses in fixed windows of [`LEGACY_WINDOW`].
#[derive(Debug)]
pub(crate) struct LegacyLimit {
    window_start: Instant,
    total: u32,
    per_source: HashMap<IpAddr, u32>,
}

impl LegacyLimit {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            total: 0,
            per_source: HashMap::new(),
        }
    }

    /// Whether a legacy unicast response to `source` may be sent now; counts it if so.
    pub(crate) fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= LEGACY_WINDOW {
            self.window_start = now;
            self.total = 0;
            self.per_source.clear();
        }
        if self.total >= LEGACY_TOTAL {
            return false;
        }
        let count = self.per_source.entry(source).or_insert(0);
        if *count >= LEGACY_PER_SOURCE {
            return false;
        }
        *count += 1;
        self.total += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_and_total_budgets() {
        let t0 = Instant::now();
        let mut limit = LegacyLimit::new(t0);
        let one = IpAddr::from([10, 0, 0, 1]);
        let allowed = (0..100).filter(|_| limit.allow(one, t0)).count();
        assert_eq!(allowed, LEGACY_PER_SOURCE as usize);
        let others = (2..=255u8)
            .filter(|n| limit.allow(IpAddr::from([10, 0, 0, *n]), t0))
            .count();
        assert_eq!(others as u32, LEGACY_TOTAL - LEGACY_PER_SOURCE);
        // A new window starts afresh.
        assert!(limit.allow(one, t0 + LEGACY_WINDOW));
    }
}
