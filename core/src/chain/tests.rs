//! The runner against fake strategies, on a paused clock so timings are exact.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::*;
use crate::config::{ChainMode, Settings, Source};
use crate::error::FailureKind;
use crate::{
    AddressResolver, Candidate, Context, Identity, Peer, PeerDiscoverer, PeerSink, StrategyError,
};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Fake(&'static str);

#[derive(Clone)]
enum Act {
    Answer(&'static str),
    /// An answer on a VPN tunnel: weak, the chain goes on.
    AnswerVpn(&'static str),
    Nothing,
    Fail(FailureKind),
    Stop,
    Hang,
}

struct FakeResolver {
    delay: Duration,
    act: Act,
    log: Arc<Mutex<Vec<(String, u64)>>>,
    name: &'static str,
    origin: Instant,
}

#[async_trait]
impl AddressResolver for FakeResolver {
    async fn resolve(&self, _ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        let started = self.origin.elapsed().as_millis() as u64;
        self.log
            .lock()
            .unwrap()
            .push((self.name.to_owned(), started));
        tokio::time::sleep(self.delay).await;
        match self.act.clone() {
            Act::Answer(ip) => Ok(vec![Candidate::new(ip.parse().unwrap())]),
            Act::AnswerVpn(ip) => {
                let mut candidate = Candidate::new(ip.parse().unwrap());
                candidate.class = crate::InterfaceClass::Vpn;
                candidate.default_route = true;
                Ok(vec![candidate])
            }
            Act::Nothing => Ok(vec![]),
            Act::Fail(kind) => Err(StrategyError::new(kind, Fake(self.name))),
            Act::Stop => Err(StrategyError::new(FailureKind::Config, Fake(self.name))),
            Act::Hang => std::future::pending().await,
        }
    }
}

fn ctx() -> Context {
    Context::new(
        Settings::load(Source::Toml(String::new())).unwrap(),
        Arc::new(Identity::ephemeral("t").unwrap()),
        None,
    )
    .unwrap()
}

fn plan(mode: ChainMode) -> Plan {
    Plan {
        mode,
        stagger: Duration::from_millis(250),
        strategy_timeout: Some(Duration::from_millis(1000)),
        deadline: Duration::from_millis(5000),
    }
}

struct Harness {
    log: Arc<Mutex<Vec<(String, u64)>>>,
    origin: Instant,
    chain: ResolverChain,
}

impl Harness {
    fn new(plan: Plan) -> Self {
        Self {
            log: Arc::default(),
            origin: Instant::now(),
            chain: ResolverChain::new(plan),
        }
    }

    fn add(mut self, name: &'static str, delay_ms: u64, act: Act) -> Self {
        let resolver = FakeResolver {
            delay: Duration::from_millis(delay_ms),
            act,
            log: Arc::clone(&self.log),
            name,
            origin: self.origin,
        };
        self.chain = self.chain.with(name, Arc::new(resolver));
        self
    }

    async fn run(&self) -> ResolveReport {
        self.chain.resolve(&ctx()).await
    }

    fn starts(&self) -> Vec<(String, u64)> {
        self.log.lock().unwrap().clone()
    }
}

fn outcomes(report: &ResolveReport) -> Vec<Outcome> {
    report.attempts.iter().map(|a| a.outcome).collect()
}

#[tokio::test(start_paused = true)]
async fn sequential_runs_in_order_and_stops_at_first_answer() {
    let h = Harness::new(plan(ChainMode::Sequential))
        .add("a", 100, Act::Fail(FailureKind::Network))
        .add("b", 100, Act::Nothing)
        .add("c", 100, Act::Answer("10.0.0.3"))
        .add("d", 100, Act::Answer("10.0.0.4"));
    let report = h.run().await;
    assert_eq!(
        h.starts(),
        [("a".into(), 0), ("b".into(), 100), ("c".into(), 200)]
    );
    assert_eq!(
        outcomes(&report),
        [
            Outcome::Error,
            Outcome::Empty,
            Outcome::Ok,
            Outcome::Skipped
        ]
    );
    assert_eq!(report.candidates.len(), 1);
    assert_eq!(report.candidates[0].strategy, "c");
    assert_eq!(report.attempts[0].error.as_deref(), Some("a"));
    assert_eq!(
        report.attempts[3].error.as_deref(),
        Some("an earlier strategy answered")
    );
    assert_eq!(report.attempts[2].started_ms, Some(200));
    assert_eq!(report.attempts[2].elapsed_ms, 100);
}

#[tokio::test(start_paused = true)]
async fn a_vpn_only_answer_is_weak_the_chain_goes_on_and_ranks_the_lan_first() {
    let h = Harness::new(plan(ChainMode::Sequential))
        .add("route", 10, Act::AnswerVpn("100.64.0.2"))
        .add("sweep", 10, Act::Answer("10.84.0.2"))
        .add("third", 10, Act::Answer("10.84.0.9"));
    let report = h.run().await;
    assert_eq!(
        outcomes(&report),
        [Outcome::Ok, Outcome::Ok, Outcome::Skipped]
    );
    let order: Vec<String> = report.candidates.iter().map(|c| c.ip.to_string()).collect();
    assert_eq!(order, ["10.84.0.2", "100.64.0.2"]);
    assert!(
        report.attempts[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("VPN"))
    );
    assert_eq!(report.attempts[1].note, None);
}

#[tokio::test(start_paused = true)]
async fn staggered_weak_answer_starts_the_next_at_once() {
    let h = Harness::new(plan(ChainMode::Staggered))
        .add("route", 10, Act::AnswerVpn("100.64.0.2"))
        .add("sweep", 10, Act::Answer("10.84.0.2"));
    let report = h.run().await;
    assert_eq!(h.starts(), [("route".into(), 0), ("sweep".into(), 10)]);
    assert_eq!(report.candidates[0].ip.to_string(), "10.84.0.2");
}

#[tokio::test(start_paused = true)]
async fn strategy_timeout_falls_through() {
    let h = Harness::new(plan(ChainMode::Sequential))
        .add("slow", 0, Act::Hang)
        .add("fast", 10, Act::Answer("10.0.0.2"));
    let report = h.run().await;
    assert_eq!(outcomes(&report), [Outcome::Timeout, Outcome::Ok]);
    assert_eq!(report.attempts[0].elapsed_ms, 1000);
    assert_eq!(
        report.attempts[0].error.as_deref(),
        Some("no answer within 1000 ms")
    );
    assert_eq!(h.starts()[1], ("fast".into(), 1000));
}

#[tokio::test(start_paused = true)]
async fn staggered_starts_after_delay_and_first_answer_wins() {
    let h = Harness::new(plan(ChainMode::Staggered))
        .add("slow", 600, Act::Answer("10.0.0.1"))
        .add("quick", 100, Act::Answer("10.0.0.2"))
        .add("late", 10, Act::Answer("10.0.0.3"));
    let report = h.run().await;
    // "quick" started at 250 ms and answered at 350 ms, before "slow" (600 ms) and before
    // "late" was due (500 ms).
    assert_eq!(h.starts(), [("slow".into(), 0), ("quick".into(), 250)]);
    assert_eq!(
        outcomes(&report),
        [Outcome::Cancelled, Outcome::Ok, Outcome::Skipped]
    );
    assert_eq!(
        report.candidates[0].ip,
        "10.0.0.2".parse::<IpAddr>().unwrap()
    );
    assert_eq!(report.elapsed, Duration::from_millis(350));
}

#[tokio::test(start_paused = true)]
async fn staggered_failure_starts_the_next_at_once() {
    let h = Harness::new(plan(ChainMode::Staggered))
        .add("broken", 50, Act::Fail(FailureKind::Io))
        .add("next", 10, Act::Answer("10.0.0.2"));
    let report = h.run().await;
    assert_eq!(h.starts(), [("broken".into(), 0), ("next".into(), 50)]);
    assert_eq!(outcomes(&report), [Outcome::Error, Outcome::Ok]);
}

#[tokio::test(start_paused = true)]
async fn all_mode_merges_every_answer() {
    let h = Harness::new(plan(ChainMode::All))
        .add("a", 100, Act::Answer("10.0.0.1"))
        .add("b", 300, Act::Answer("10.0.0.2"))
        .add("c", 200, Act::Fail(FailureKind::Network));
    let report = h.run().await;
    assert_eq!(
        h.starts(),
        [("a".into(), 0), ("b".into(), 0), ("c".into(), 0)]
    );
    assert_eq!(
        outcomes(&report),
        [Outcome::Ok, Outcome::Ok, Outcome::Error]
    );
    assert_eq!(report.candidates.len(), 2);
    assert_eq!(report.elapsed, Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn most_specific_error_is_reported() {
    let h = Harness::new(plan(ChainMode::Sequential))
        .add("a", 10, Act::Fail(FailureKind::NothingFound))
        .add("b", 10, Act::Fail(FailureKind::Protocol))
        .add("c", 10, Act::Fail(FailureKind::Network));
    let report = h.run().await;
    let (strategy, error) = report.failures.most_specific().unwrap();
    assert_eq!(strategy, "b");
    assert_eq!(error.kind(), FailureKind::Protocol);
    assert!(report.candidates.is_empty());
    assert_eq!(
        explain(&report.attempts),
        "a: error (a); b: error (b); c: error (c)"
    );
}

#[tokio::test(start_paused = true)]
async fn stop_error_ends_the_chain() {
    let h = Harness::new(plan(ChainMode::Sequential))
        .add("impostor", 10, Act::Stop)
        .add("never", 10, Act::Answer("10.0.0.2"));
    let report = h.run().await;
    assert_eq!(outcomes(&report), [Outcome::Error, Outcome::Skipped]);
    assert_eq!(report.failures.stopped_by().unwrap().0, "impostor");
    assert_eq!(
        report.attempts[1].error.as_deref(),
        Some("chain stopped by an earlier error")
    );
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_the_whole_chain() {
    let mut p = plan(ChainMode::Sequential);
    p.deadline = Duration::from_millis(1500);
    let h = Harness::new(p)
        .add("a", 0, Act::Hang)
        .add("b", 0, Act::Hang)
        .add("c", 0, Act::Hang);
    let report = h.run().await;
    assert_eq!(
        outcomes(&report),
        [Outcome::Timeout, Outcome::Timeout, Outcome::Skipped]
    );
    assert_eq!(report.elapsed, Duration::from_millis(1500));
    assert_eq!(
        report.attempts[1].error.as_deref(),
        Some("chain deadline of 1500 ms reached")
    );
    assert_eq!(
        report.attempts[2].error.as_deref(),
        Some("chain deadline reached")
    );
}

// ---- discoverers ----

struct FakeDiscoverer {
    /// (delay from start, peer name) sightings.
    sightings: Vec<(u64, u8)>,
    /// Error to return when stopped with nothing found.
    silent_error: Option<&'static str>,
    stopped_cleanly: Arc<Mutex<bool>>,
}

fn fake_peer(n: u8) -> Peer {
    let fingerprint = crate::Fingerprint::from_bytes([n; 32]);
    Peer::new(
        fingerprint,
        format!("peer-{n}"),
        vec![SocketAddr::from(([10, 0, 0, n], 4000))],
    )
}

#[async_trait]
impl PeerDiscoverer for FakeDiscoverer {
    async fn discover(&self, _ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        let start = Instant::now();
        let mut found = 0;
        for (at, n) in &self.sightings {
            tokio::select! {
                () = tokio::time::sleep_until(start + Duration::from_millis(*at)) => {}
                () = sink.stopped() => break,
            }
            if !sink.found(fake_peer(*n)).await {
                break;
            }
            found += 1;
        }
        sink.stopped().await;
        *self.stopped_cleanly.lock().unwrap() = true;
        match self.silent_error {
            Some(e) if found == 0 => Err(StrategyError::new(FailureKind::NothingFound, Fake(e))),
            _ => Ok(()),
        }
    }
}

fn discoverer(
    sightings: &[(u64, u8)],
    silent_error: Option<&'static str>,
) -> (Arc<FakeDiscoverer>, Arc<Mutex<bool>>) {
    let flag = Arc::new(Mutex::new(false));
    (
        Arc::new(FakeDiscoverer {
            sightings: sightings.to_vec(),
            silent_error,
            stopped_cleanly: Arc::clone(&flag),
        }),
        flag,
    )
}

#[tokio::test(start_paused = true)]
async fn discovery_stops_at_count_and_dedupes() {
    let (mc, mc_stopped) = discoverer(&[(100, 1), (200, 1), (900, 2)], None);
    let (md, md_stopped) = discoverer(&[(300, 1), (400, 3)], None);
    let chain = DiscovererChain::new(plan(ChainMode::Staggered))
        .with("multicast", mc)
        .with("mdns", md);
    let (live_tx, mut live_rx) = tokio::sync::mpsc::channel(8);
    let goal = DiscoveryGoal {
        count: Some(2),
        ..DiscoveryGoal::default()
    };
    let report = chain.discover(&ctx(), goal, Some(live_tx)).await;
    let names: Vec<&str> = report.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["peer-1", "peer-3"]);
    assert_eq!(report.peers[0].strategy, "multicast");
    assert_eq!(report.peers[0].found_after, Duration::from_millis(100));
    // mdns started at 250 ms; its second sighting at +400 ms completes the goal at 650 ms.
    assert_eq!(report.peers[1].strategy, "mdns");
    assert_eq!(report.peers[1].found_after, Duration::from_millis(650));
    assert_eq!(report.elapsed, Duration::from_millis(650));
    assert!(*mc_stopped.lock().unwrap() && *md_stopped.lock().unwrap());
    assert_eq!(live_rx.recv().await.unwrap().name, "peer-1");
    assert_eq!(live_rx.recv().await.unwrap().name, "peer-3");
}

#[tokio::test(start_paused = true)]
async fn silent_discoverer_is_empty_with_its_reason() {
    let (quiet, _) = discoverer(&[], Some("sent 4 announcements, heard nothing"));
    let (other, _) = discoverer(&[(100, 7)], None);
    let mut p = plan(ChainMode::Staggered);
    p.strategy_timeout = None;
    p.deadline = Duration::from_millis(2000);
    let chain = DiscovererChain::new(p)
        .with("udp", quiet)
        .with("mdns", other);
    let report = chain.discover(&ctx(), DiscoveryGoal::default(), None).await;
    assert_eq!(
        report
            .attempts
            .iter()
            .map(|a| a.outcome)
            .collect::<Vec<_>>(),
        [Outcome::Empty, Outcome::Ok]
    );
    assert_eq!(
        report.attempts[0].error.as_deref(),
        Some("sent 4 announcements, heard nothing")
    );
    assert_eq!(report.peers.len(), 1);
    assert_eq!(report.elapsed, Duration::from_millis(2000));
}

#[tokio::test(start_paused = true)]
async fn own_announcements_are_ignored_and_matching_filters() {
    let me = Identity::ephemeral("me").unwrap();
    let own = Peer::new(me.fingerprint(), "me".into(), vec![]);
    struct Echo(Peer);
    #[async_trait]
    impl PeerDiscoverer for Echo {
        async fn discover(&self, _ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
            sink.found(self.0.clone()).await;
            sink.found(fake_peer(5)).await;
            let mut tagged = fake_peer(6);
            tagged.session_tag = Some([1; 8]);
            sink.found(tagged).await;
            sink.stopped().await;
            Ok(())
        }
    }
    let ctx = Context::new(
        Settings::load(Source::Toml(String::new())).unwrap(),
        Arc::new(me),
        None,
    )
    .unwrap();
    let chain = DiscovererChain::new(plan(ChainMode::Sequential)).with("echo", Arc::new(Echo(own)));
    let goal = DiscoveryGoal {
        count: Some(1),
        matching: Some(Arc::new(|p: &Peer| p.session_tag == Some([1; 8]))),
        ..DiscoveryGoal::default()
    };
    let report = chain.discover(&ctx, goal, None).await;
    let names: Vec<&str> = report.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["peer-5", "peer-6"]);
    assert_eq!(report.elapsed, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn stubborn_discoverer_is_aborted_after_grace() {
    struct Deaf;
    #[async_trait]
    impl PeerDiscoverer for Deaf {
        async fn discover(&self, _ctx: &Context, _sink: PeerSink) -> Result<(), StrategyError> {
            std::future::pending().await
        }
    }
    let mut p = plan(ChainMode::Sequential);
    p.deadline = Duration::from_millis(500);
    let chain = DiscovererChain::new(p).with("deaf", Arc::new(Deaf));
    let report = chain.discover(&ctx(), DiscoveryGoal::default(), None).await;
    assert_eq!(report.attempts[0].outcome, Outcome::Empty);
    assert_eq!(report.elapsed, Duration::from_millis(800));
    assert!(
        report.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("aborted")
    );
}

#[tokio::test(start_paused = true)]
async fn until_token_ends_the_session_and_new_addresses_go_live() {
    struct TwoHomes;
    #[async_trait]
    impl PeerDiscoverer for TwoHomes {
        async fn discover(&self, _ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
            sink.found(fake_peer(3)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut again = fake_peer(3);
            again.addrs = vec![SocketAddr::from(([192, 168, 9, 3], 4000))];
            sink.found(again).await;
            sink.found(fake_peer(3)).await;
            sink.stopped().await;
            Ok(())
        }
    }
    let chain = DiscovererChain::new(plan(ChainMode::All)).with("two", Arc::new(TwoHomes));
    let stop = tokio_util::sync::CancellationToken::new();
    let (live_tx, mut live_rx) = tokio::sync::mpsc::channel(8);
    let ctx = ctx();
    let session = chain.discover(
        &ctx,
        DiscoveryGoal {
            until: Some(stop.clone()),
            ..DiscoveryGoal::default()
        },
        Some(live_tx),
    );
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    };
    let (report, ()) = tokio::join!(session, stopper);
    assert_eq!(report.elapsed, Duration::from_millis(300));
    assert_eq!(report.peers.len(), 1);
    assert_eq!(report.peers[0].addrs.len(), 2);
    assert_eq!(report.attempts[0].outcome, Outcome::Ok);
    // The first sighting, then the one that added 192.168.9.3; the repeat adds nothing.
    assert_eq!(live_rx.recv().await.unwrap().addrs[0].port(), 4000);
    let second = live_rx.recv().await.unwrap();
    assert_eq!(second.addrs, [SocketAddr::from(([192, 168, 9, 3], 4000))]);
    assert_eq!(second.found_after, Duration::from_millis(100));
    assert!(live_rx.try_recv().is_err());
}
