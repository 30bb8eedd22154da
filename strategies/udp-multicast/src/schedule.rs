//! When to send: the start-up burst with back-off to a steady interval, and the rate limit on
//! answers. Pure logic over instants handed in, so it is tested without sockets or sleeping.

use std::time::Duration;

use tokio::time::Instant;

/// First back-off step after the burst; doubled until it reaches the steady interval.
const FIRST_BACKOFF: Duration = Duration::from_secs(2);

/// Announcement times of one interface.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    burst: Vec<Duration>,
    steady: Duration,
    started: Instant,
    fired: usize,
    backoff: Duration,
    next: Instant,
    initial: bool,
}

impl Schedule {
    /// Starts with the burst; `burst` are sorted offsets from `now` (empty means one at once).
    pub(crate) fn new(now: Instant, burst: Vec<Duration>, steady: Duration) -> Self {
        let burst = if burst.is_empty() {
            vec![Duration::ZERO]
        } else {
            burst
        };
        let next = now + burst[0];
        Self {
            burst,
            steady,
            started: now,
            fired: 0,
            backoff: FIRST_BACKOFF.min(steady),
            next,
            initial: true,
        }
    }

    /// When the next announcement is due.
    pub(crate) fn due(&self) -> Instant {
        self.next
    }

    /// Records an announcement sent at `now` and plans the next; returns whether it belongs to
    /// the start-up burst (which asks listeners to answer). `jitter` is in `0.0..1.0`.
    pub(crate) fn fire(&mut self, now: Instant, jitter: f64) -> bool {
        if self.fired < self.burst.len() {
            self.fired += 1;
            self.next = match self.burst.get(self.fired) {
                // A late wake-up does not bunch the rest of the burst together.
                Some(offset) => (self.started + *offset).max(now),
                None => now + self.backoff,
            };
            return self.initial;
        }
        // Jitter only lengthens, so the steady rate never exceeds one per interval.
        self.backoff = (self.backoff * 2).min(self.steady);
        self.next = now + stretch(self.backoff, jitter);
        false
    }

    /// Runs the burst again (the advert changed), this time without asking for answers: peers
    /// learn the change at once, and the repeats cover loss.
    pub(crate) fn restart(&mut self, now: Instant) {
        self.started = now;
        self.fired = 0;
        self.backoff = FIRST_BACKOFF.min(self.steady);
        self.next = now + self.burst[0];
        self.initial = false;
    }
}

/// `d` lengthened by up to 10 %: hosts started together drift apart instead of announcing in
/// lockstep.
fn stretch(d: Duration, jitter: f64) -> Duration {
    d + d.mul_f64(0.1 * jitter.clamp(0.0, 1.0))
}

/// At most one answer per interval on one interface; a request inside the interval is kept and
/// sent when the interval ends, so no newcomer goes unanswered.
#[derive(Debug, Clone)]
pub(crate) struct AnswerLimiter {
    interval: Duration,
    last: Option<Instant>,
    pending: bool,
}

impl AnswerLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            pending: false,
        }
    }

    /// A new peer wants an answer: `true` means send one now.
    pub(crate) fn request(&mut self, now: Instant) -> bool {
        if self.last.is_none_or(|last| now >= last + self.interval) {
            self.last = Some(now);
            self.pending = false;
            true
        } else {
            self.pending = true;
            false
        }
    }

    /// When a postponed answer is due.
    pub(crate) fn due(&self) -> Option<Instant> {
        match (self.pending, self.last) {
            (true, Some(last)) => Some(last + self.interval),
            _ => None,
        }
    }

    /// Whether a postponed answer should go out now (and records it as sent).
    pub(crate) fn take_due(&mut self, now: Instant) -> bool {
        if self.due().is_some_and(|due| now >= due) {
            self.pending = false;
            self.last = Some(now);
            true
        } else {
            false
        }
    }

    /// A scheduled announcement just went out and carries the same information.
    pub(crate) fn covered(&mut self) {
        self.pending = false;
    }
}

/// A small xorshift generator for jitter; seeded from the OS, quality is irrelevant.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        let seed = match localpair_core::identity::random_bytes::<8>() {
            Ok(seed) => u64::from_le_bytes(seed),
            // Without OS randomness, the clock still differs between hosts.
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64),
        };
        Self(seed | 1)
    }

    /// A value in `0.0..1.0`.
    pub(crate) fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives a schedule through `until` and returns (offset ms, burst flag) of every send.
    fn sends(mut s: Schedule, start: Instant, until: Duration, jitter: f64) -> Vec<(u128, bool)> {
        let mut out = Vec::new();
        while s.due() <= start + until {
            let at = s.due();
            let starting = s.fire(at, jitter);
            out.push(((at - start).as_millis(), starting));
        }
        out
    }

    #[test]
    fn burst_then_backoff_then_steady() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, vec![ms(0), ms(100), ms(500), ms(1500)], ms(5000));
        let got = sends(s, t0, ms(20_000), 0.0);
        assert_eq!(
            got,
            [
                (0, true),
                (100, true),
                (500, true),
                (1500, true),
                (3500, false),
                (7500, false),
                (12_500, false),
                (17_500, false),
            ]
        );
    }

    #[test]
    fn steady_rate_never_exceeds_one_per_interval_with_jitter() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, vec![ms(0)], ms(1000));
        let got = sends(s, t0, ms(60_000), 0.99);
        for pair in got.windows(2).skip(1) {
            let gap = pair[1].0 - pair[0].0;
            assert!((1000..=1100).contains(&gap), "{gap}");
        }
    }

    #[test]
    fn late_wakeups_do_not_bunch_the_burst() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, vec![ms(0), ms(100), ms(500)], ms(5000));
        // The first send happens 300 ms late: the 100 ms slot is overdue, so it goes next...
        s.fire(t0 + ms(300), 0.0);
        assert_eq!(s.due(), t0 + ms(300));
        s.fire(t0 + ms(300), 0.0);
        // ...but the 500 ms slot keeps its time.
        assert_eq!(s.due(), t0 + ms(500));
    }

    #[test]
    fn restart_repeats_the_burst_without_asking_for_answers() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0, vec![ms(0), ms(100)], ms(5000));
        for _ in 0..5 {
            let at = s.due();
            s.fire(at, 0.0);
        }
        let t1 = s.due() - ms(1000);
        s.restart(t1);
        assert_eq!(s.due(), t1);
        let got = sends(s, t1, ms(200), 0.0);
        assert_eq!(got, [(0, false), (100, false)]);
    }

    #[test]
    fn empty_burst_still_announces_at_once() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Vec::new(), ms(5000));
        assert_eq!(s.due(), t0);
    }

    #[test]
    fn answers_are_rate_limited_but_not_lost() {
        let t0 = Instant::now();
        let mut a = AnswerLimiter::new(ms(250));
        assert!(a.request(t0));
        assert_eq!(a.due(), None);
        assert!(!a.request(t0 + ms(10)));
        assert!(!a.request(t0 + ms(20)));
        assert_eq!(a.due(), Some(t0 + ms(250)));
        assert!(!a.take_due(t0 + ms(249)));
        assert!(a.take_due(t0 + ms(250)));
        assert_eq!(a.due(), None);
        assert!(!a.request(t0 + ms(300)));
        a.covered();
        assert_eq!(a.due(), None);
        assert!(a.request(t0 + ms(600)));
    }

    #[test]
    fn answers_per_second_are_bounded() {
        let t0 = Instant::now();
        let mut a = AnswerLimiter::new(ms(250));
        let mut sent = 0;
        for i in 0..1000u64 {
            let now = t0 + ms(i);
            if a.request(now) {
                sent += 1;
            }
            if a.take_due(now) {
                sent += 1;
            }
        }
        assert!(sent <= 4, "{sent}");
    }

    #[test]
    fn jitter_is_in_range() {
        let mut j = Jitter::new();
        for _ in 0..1000 {
            let x = j.next();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
