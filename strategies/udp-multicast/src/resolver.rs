//! The `peer-observed` resolver: our address as a peer saw it, self-confirmed.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use localpair_core::candidate::is_link_local;
use localpair_core::config::ChainConfig;
use localpair_core::confirm::Observation;
use localpair_core::interfaces::Interface;
use localpair_core::{
    AddressResolver, Candidate, Confirmation, Confirmer, Context, StrategyError, async_trait,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, ObserveConfig};
use crate::engine::Engine;
use crate::error::Error;
use crate::summary::Summary;

/// Registry name of the resolver.
pub const RESOLVER_NAME: &str = "peer-observed";

localpair_core::register_resolver! {
    name: RESOLVER_NAME,
    summary: "announces over udp-multicast and takes the address a peer reports seeing us at, self-confirmed",
    build: |table| {
        let config = table.extract()?;
        // The group, port and timing are the discoverer's: read its table now, not per resolve.
        let shared = table.settings().strategy_table(crate::NAME).extract()?;
        Ok(Arc::new(PeerObserved::new(config, shared)))
    },
}

/// After the first confirmed address, how long to wait for more (other interfaces, other
/// peers) before answering.
const SETTLE: Duration = Duration::from_millis(250);
/// The same when only an IPv6 link-local address is confirmed yet: a peer sends one report a
/// second in all (`report::PER_SECOND`), so the IPv4 one may be a second behind it.
const SETTLE_LINK_LOCAL: Duration = Duration::from_millis(1250);
/// How long self-confirmations still running at the end of the wait may take.
const CHECK_GRACE: Duration = Duration::from_millis(1500);

/// Announces like the discoverer (with the `[strategies.udp-multicast]` options, so both use
/// one group) and waits for peers to report the source address they saw our packets come from;
/// each reported address is one of ours only if a self-confirmation through it succeeds.
#[derive(Debug, Clone, Default)]
pub struct PeerObserved {
    config: ObserveConfig,
    shared: Config,
}

impl PeerObserved {
    /// A resolver with these options, announcing with the discoverer's `shared` options.
    pub fn new(config: ObserveConfig, shared: Config) -> Self {
        Self { config, shared }
    }

    /// Its options.
    pub fn config(&self) -> &ObserveConfig {
        &self.config
    }
}

#[async_trait]
impl AddressResolver for PeerObserved {
    async fn resolve(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        let confirmer = ctx.confirmer()?;
        self.config.validate()?;
        Ok(Run::new(ctx, confirmer, self.shared.clone(), &self.config)?
            .wait()
            .await?)
    }
}

type Check = (Observation, Candidate, Result<(), localpair_core::Error>);

struct Run<'a> {
    ctx: &'a Context,
    confirmer: &'a Confirmer,
    engine: Engine,
    wait: Duration,
    alone: Duration,
    checks: JoinSet<Check>,
    tried: HashSet<IpAddr>,
    found: Vec<Candidate>,
    failed: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(
        ctx: &'a Context,
        confirmer: &'a Confirmer,
        shared: Config,
        config: &ObserveConfig,
    ) -> Result<Self, Error> {
        Ok(Self {
            engine: Engine::start(ctx, shared)?,
            wait: capped_wait(config.wait(), &ctx.config().resolve),
            alone: config.alone(),
            ctx,
            confirmer,
            checks: JoinSet::new(),
            tried: HashSet::new(),
            found: Vec::new(),
            failed: Vec::new(),
        })
    }

    async fn wait(mut self) -> Result<Vec<Candidate>, Error> {
        let started = Instant::now();
        let deadline = started + self.wait;
        // The limit that ends the wait is named in the error: `alone` unless a peer was heard.
        let alone_until = started + self.alone;
        let give_up = deadline + CHECK_GRACE;
        let mut heard_anyone = false;
        let mut observations = self.confirmer.observations();
        // Reports that arrived before we started (an earlier discovery in this context) count.
        self.take(observations.borrow_and_update().clone());
        let mut open = true;
        let mut settle: Option<Instant> = None;
        loop {
            let mut end = settle.map_or(deadline, |s| s.min(deadline));
            if !heard_anyone && self.tried.is_empty() {
                end = end.min(alone_until);
            }
            let now = Instant::now();
            if now >= end && self.checks.is_empty() {
                break;
            }
            let checking = !self.checks.is_empty();
            tokio::select! {
                // Keeps announcing and answering; the peers themselves are not our answer.
                _ = self.engine.next() => heard_anyone = true,
                changed = observations.changed(), if open => match changed {
                    Ok(()) => {
                        let list = observations.borrow_and_update().clone();
                        self.take(list);
                    }
                    Err(_) => open = false,
                },
                Some(done) = self.checks.join_next(), if checking => {
                    if let Ok(check) = done {
                        let wait = if is_link_local(check.1.ip) { SETTLE_LINK_LOCAL } else { SETTLE };
                        if self.checked(check) {
                            let at = Instant::now() + wait;
                            settle = Some(settle.map_or(at, |s| s.min(at)));
                        }
                    }
                }
                () = tokio::time::sleep_until(end), if now < end => {}
                () = tokio::time::sleep_until(give_up) => break,
                () = self.ctx.cancellation().cancelled() => break,
            }
        }
        self.checks.shutdown().await;
        let port = self.confirmer.port();
        let summary = self.engine.shutdown().await;
        if !self.found.is_empty() {
            return Ok(self.found);
        }
        if !self.failed.is_empty() {
            return Err(Error::NotConfirmed {
                count: self.tried.len(),
                detail: self.failed.join("; "),
            });
        }
        Err(Error::NotObserved {
            waited_ms: u64::try_from(if heard_anyone { self.wait } else { self.alone }.as_millis())
                .unwrap_or(u64::MAX),
            summary: format!("{}: {}", summary.counts(), silence(&summary, port)),
        })
    }

    /// Starts a self-confirmation for every observation of an address not tried yet.
    fn take(&mut self, observations: Vec<Observation>) {
        if observations.is_empty() {
            return;
        }
        let interfaces = self.interfaces();
        for observation in observations {
            let ip = observation.ip.ip;
            if !self.tried.insert(ip) {
                continue;
            }
            let who = self.reporter(&observation);
            match candidate(&observation, &interfaces) {
                Ok(candidate) => {
                    let confirmer = self.confirmer.clone();
                    let scope = candidate.scope();
                    tracing::debug!(%ip, reporter = %who, "peer saw us; self-confirming");
                    self.checks.spawn(async move {
                        let result = confirmer.confirm(ip, scope).await;
                        (observation, candidate, result)
                    });
                }
                Err(why) => {
                    tracing::debug!(%ip, reporter = %who, %why, "ignored a peer observation");
                    self.failed.push(format!("{ip} (from {who}): {why}"));
                }
            }
        }
    }

    /// Records a finished self-confirmation; `true` if it confirmed the address.
    fn checked(&mut self, (observation, mut candidate, result): Check) -> bool {
        let who = self.reporter(&observation);
        match result {
            Ok(()) => {
                candidate.confirmed = Confirmation::Peer;
                candidate.reason = format!(
                    "peer {who} saw our packets come from this address; self-confirmed, {}",
                    candidate.placement()
                );
                self.found.push(candidate);
                true
            }
            Err(error) => {
                self.failed
                    .push(format!("{} (from {who}): {error}", observation.ip.ip));
                false
            }
        }
    }

    /// The reporter as people know it: name (if heard), short fingerprint and address.
    fn reporter(&self, observation: &Observation) -> String {
        let short = observation.reporter.short();
        let at = observation.reporter_addr.ip();
        match self.engine.peer_name(&observation.reporter) {
            Some(name) if !name.is_empty() => format!("\"{name}\" ({short}) at {at}"),
            _ => format!("{short} at {at}"),
        }
    }

    fn interfaces(&self) -> Vec<Interface> {
        match self.ctx.interfaces() {
            Ok(list) => list,
            Err(error) => {
                tracing::debug!(%error, "cannot list interfaces; using the announcing ones");
                self.engine.interfaces()
            }
        }
    }
}

/// The wait, shortened to end before the resolver chain's per-strategy timeout or deadline
/// (with a margin for the answer), so the resolver explains a silence itself instead of being
/// cut off by the chain.
fn capped_wait(wait: Duration, chain: &ChainConfig) -> Duration {
    const MARGIN: Duration = Duration::from_millis(400);
    let mut limit = chain.deadline();
    if let Some(timeout) = chain.strategy_timeout() {
        limit = limit.min(timeout);
    }
    wait.min(limit.saturating_sub(MARGIN))
        .max(Duration::from_millis(100))
}

/// Why no report came, for the error.
fn silence(summary: &Summary, listener_port: u16) -> String {
    if summary.peers == 0 {
        return summary.silence().to_owned();
    }
    format!(
        "heard {} peer{} but none reported where it saw us: reports may be blocked on the way \
         to our confirmation listener (TCP port {listener_port}), or the peers run with \
         report_observations = false",
        summary.peers,
        if summary.peers == 1 { "" } else { "s" },
    )
}

/// The candidate an observation names, if it is plausible: an address of a permitted interface
/// of ours, reported by a peer on that interface's subnet (a peer elsewhere cannot have seen our
/// packets there).
fn candidate(observation: &Observation, interfaces: &[Interface]) -> Result<Candidate, String> {
    let ip = observation.ip.ip;
    let reporter = observation.reporter_addr.ip().to_canonical();
    let Some(iface) = interfaces.iter().find(|i| i.has_addr(ip)) else {
        return Err("not an address of an interface we may use".to_owned());
    };
    if !iface.contains(reporter) {
        return Err(format!(
            "the reporter is not on {}'s subnet, so it cannot have seen us there",
            iface.name
        ));
    }
    Ok(Candidate::on_interface(ip, iface))
}

#[cfg(test)]
mod tests {
    use super::*;
    use localpair_core::interfaces::InterfaceAddr;

    fn iface() -> Interface {
        Interface::new(
            "eth0",
            Some(2),
            vec![
                InterfaceAddr::new("10.0.0.2".parse().unwrap(), 24),
                InterfaceAddr::new("fe80::2".parse().unwrap(), 64),
            ],
        )
    }

    #[test]
    fn plausible_observations_become_candidates_on_their_interface() {
        let c = candidate_for("10.0.0.2", "10.0.0.7:5000").unwrap();
        assert_eq!(c.interface.as_deref(), Some("eth0"));
        assert_eq!(c.prefix_len, Some(24));
        let c = candidate_for("fe80::2", "[fe80::7]:5000").unwrap();
        // Link-local: confirmed through our interface index, whatever the reporter sent.
        assert_eq!(c.scope(), 2);
    }

    #[test]
    fn the_wait_ends_before_the_chain_cuts_it_off() {
        let chain = |timeout: u64, deadline: u64| {
            let toml =
                format!("[resolve]\nstrategy_timeout_ms = {timeout}\ndeadline_ms = {deadline}\n");
            localpair_core::config::Settings::load(localpair_core::config::Source::Toml(toml))
                .unwrap()
                .config()
                .resolve
                .clone()
        };
        let wait = Duration::from_millis(3000);
        assert_eq!(
            capped_wait(wait, &chain(2000, 5000)),
            Duration::from_millis(1600)
        );
        assert_eq!(
            capped_wait(wait, &chain(0, 2500)),
            Duration::from_millis(2100)
        );
        assert_eq!(capped_wait(wait, &chain(0, 60_000)), wait);
        assert_eq!(
            capped_wait(wait, &chain(100, 60_000)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn implausible_observations_are_refused() {
        let err = candidate_for("10.0.0.9", "10.0.0.7:5000").unwrap_err();
        assert!(err.contains("not an address"), "{err}");
        let err = candidate_for("10.0.0.2", "192.168.1.7:5000").unwrap_err();
        assert!(err.contains("subnet"), "{err}");
    }

    fn candidate_for(ip: &str, reporter: &str) -> Result<Candidate, String> {
        let observation = observation(ip.parse().unwrap(), reporter.parse().unwrap());
        candidate(&observation, &[iface()])
    }

    /// `Observation` is non-exhaustive; get a real one through the listener on loopback.
    fn observation(ip: IpAddr, reporter_addr: std::net::SocketAddr) -> Observation {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let me = Arc::new(localpair_core::Identity::ephemeral("me").unwrap());
            let confirmer = Confirmer::start(Arc::clone(&me), Default::default()).unwrap();
            let peer = localpair_core::Identity::ephemeral("peer").unwrap();
            let listener = std::net::SocketAddr::from(([127, 0, 0, 1], confirmer.port()));
            let seen = localpair_core::confirm::ScopedIp { ip, scope: 0 };
            // The listener believes only keys heard announcing from the report's address.
            confirmer.heard(peer.fingerprint(), IpAddr::from([127, 0, 0, 1]));
            localpair_core::confirm::report_observation(
                &peer,
                listener,
                me.fingerprint(),
                seen,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            let mut observation = confirmer.observations().borrow().last().unwrap().clone();
            observation.reporter_addr = reporter_addr;
            observation
        })
    }
}
