//! The measure every table the network can fill evicts by.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

/// The length of a round: something heard several times within one round counts once.
///
/// A forged identity costs the attacker one packet (or a quick burst); a device that keeps
/// announcing is heard in round after round (its start-up burst alone spans two, 0 to 1.5 s).
/// Counting rounds rather than packets means a flood of new identities cannot look established
/// by sending each one twice in a row: it would have to keep each one announcing, second after
/// second, which is what a real device does.
pub const ROUND: Duration = Duration::from_secs(1);

/// In how many distinct [`ROUND`]s something was heard. Tables that must stay bounded keep the
/// entries with the most rounds (ties: the one heard most recently) and evict the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rounds {
    count: u32,
    last: Option<u64>,
}

impl Rounds {
    /// Notes a hearing at `elapsed` (time since any fixed origin the table keeps); returns
    /// `true` when that began a new round (the count went up).
    pub fn heard(&mut self, elapsed: Duration) -> bool {
        let round = (elapsed.as_millis() / ROUND.as_millis()) as u64;
        if self.last == Some(round) {
            return false;
        }
        self.last = Some(round);
        self.count = self.count.saturating_add(1);
        true
    }

    /// Rounds heard in so far.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// Removes the entry of `table` whose `rank` is least — fewest rounds first, then the oldest
/// (the second part, e.g. when it was last heard) — and returns its key: the eviction rule of
/// every table bounded by [`Rounds`].
pub fn evict_least<K, V, T>(table: &mut HashMap<K, V>, rank: impl Fn(&V) -> (u32, T)) -> Option<K>
where
    K: Copy + Eq + Hash,
    T: Ord,
{
    let victim = table.iter().min_by_key(|(_, v)| rank(v)).map(|(k, _)| *k)?;
    table.remove(&victim);
    Some(victim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_within_a_round_count_once() {
        let mut r = Rounds::default();
        assert!(r.heard(Duration::from_millis(10)));
        assert!(!r.heard(Duration::from_millis(900)));
        assert!(r.heard(Duration::from_millis(1000)));
        assert!(r.heard(Duration::from_millis(5500)));
        assert_eq!(r.count(), 3);
    }

    #[test]
    fn the_least_heard_oldest_entry_goes() {
        let mut table = HashMap::from([(1, (2, 10)), (2, (1, 30)), (3, (1, 20))]);
        assert_eq!(evict_least(&mut table, |v| *v), Some(3));
        assert_eq!(evict_least(&mut table, |v| *v), Some(2));
        assert_eq!(table.len(), 1);
    }
}
