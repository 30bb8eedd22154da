//! The resolver.

use std::net::IpAddr;
use std::sync::Arc;

use localpair_core::interfaces::{Interface, default_route_interfaces, is_private};
use localpair_core::{
    AddressResolver, Candidate, Confirmation, Context, InterfaceClass, StrategyError, async_trait,
};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::error::Error;

/// Registry name.
pub const NAME: &str = "interface-sweep";

localpair_core::register_resolver! {
    name: NAME,
    summary: "every private address of every permitted interface, self-confirmed and ranked",
    build: |table| Ok(Arc::new(InterfaceSweep::new(table.extract()?))),
}

/// See the crate docs.
#[derive(Debug, Clone)]
pub struct InterfaceSweep {
    config: Config,
}

impl InterfaceSweep {
    /// A resolver with these options.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    fn wanted(&self, ip: IpAddr) -> bool {
        is_private(ip)
            && (self.config.ipv6 || ip.is_ipv4())
            && (self.config.link_local || !localpair_core::candidate::is_link_local(ip))
    }

    /// Private addresses of the permitted interfaces, and a note of what was passed over.
    fn gather(
        &self,
        interfaces: &[Interface],
        default_route: &[String],
    ) -> (Vec<Candidate>, Vec<String>) {
        let mut candidates = Vec::new();
        let mut passed_over = Vec::new();
        for interface in interfaces {
            if interface.class == InterfaceClass::Loopback {
                continue;
            }
            let mut kept = 0;
            for addr in &interface.addrs {
                if self.wanted(addr.ip) {
                    let mut candidate = Candidate::on_interface(addr.ip, interface);
                    candidate.default_route = default_route.contains(&interface.name);
                    candidates.push(candidate);
                    kept += 1;
                }
            }
            if kept == 0 {
                let addrs: Vec<String> = interface.addrs.iter().map(|a| a.ip.to_string()).collect();
                passed_over.push(format!("{}: {}", interface.name, addrs.join(", ")));
            }
        }
        (candidates, passed_over)
    }

    async fn run(&self, ctx: &Context) -> Result<Vec<Candidate>, Error> {
        let interfaces = ctx.interfaces()?;
        let default_route = default_route_interfaces(
            &localpair_core::interfaces::list_all()?,
            &self.config.route_probes,
        );
        let (candidates, passed_over) = self.gather(&interfaces, &default_route);
        if candidates.is_empty() {
            let seen = if passed_over.is_empty() {
                ctx.why_no_interfaces()
            } else {
                format!("seen only {}", passed_over.join("; "))
            };
            return Err(Error::NoPrivateAddress { seen });
        }
        let confirmer = ctx
            .confirmer()
            .map_err(|_| Error::Core(localpair_core::Error::ListenerClosed))?
            .clone();
        // All at once: each probe waits at most the confirm timeout, so the sweep takes one
        // timeout however many addresses there are.
        let mut probes = JoinSet::new();
        for (slot, candidate) in candidates.iter().enumerate() {
            let confirmer = confirmer.clone();
            let (ip, scope) = (candidate.ip, candidate.scope());
            probes.spawn(async move { (slot, confirmer.confirm(ip, scope).await) });
        }
        let mut results: Vec<Option<Result<(), localpair_core::Error>>> =
            (0..candidates.len()).map(|_| None).collect();
        while let Some(joined) = probes.join_next().await {
            if let Ok((slot, result)) = joined {
                results[slot] = Some(result);
            }
        }
        let mut confirmed = Vec::new();
        let mut failures = Vec::new();
        for (mut candidate, result) in candidates.into_iter().zip(results) {
            match result {
                Some(Ok(())) => {
                    candidate.confirmed = Confirmation::Local;
                    candidate.reason = format!("reached our listener {}", candidate.placement());
                    confirmed.push(candidate);
                }
                Some(Err(error)) => failures.push(format!("{}: {error}", candidate.ip)),
                None => failures.push(format!("{}: probe task failed", candidate.ip)),
            }
        }
        if confirmed.is_empty() {
            return Err(Error::NoneConfirmed {
                failures: failures.join("; "),
            });
        }
        for failure in &failures {
            tracing::debug!(%failure, "address not confirmed");
        }
        Ok(localpair_core::candidate::rank_candidates(confirmed))
    }
}

#[async_trait]
impl AddressResolver for InterfaceSweep {
    async fn resolve(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        Ok(self.run(ctx).await?)
    }
}

#[cfg(test)]
mod tests {
    use localpair_core::interfaces::InterfaceAddr;

    use super::*;

    fn iface(name: &str, addrs: &[(&str, u8)]) -> Interface {
        let addrs = addrs
            .iter()
            .map(|(ip, prefix)| InterfaceAddr::new(ip.parse().unwrap(), *prefix))
            .collect();
        Interface::new(name, Some(2), addrs)
    }

    #[test]
    fn gathers_private_addresses_and_notes_the_rest() {
        let sweep = InterfaceSweep::new(Config::default());
        let interfaces = [
            iface("lo", &[("127.0.0.1", 8)]),
            iface("eth0", &[("10.0.0.2", 24), ("fe80::1", 64)]),
            iface("docker0", &[("172.17.0.1", 16)]),
            iface("wan0", &[("203.0.113.5", 24)]),
        ];
        let (candidates, passed_over) = sweep.gather(&interfaces, &["eth0".to_owned()]);
        let ips: Vec<String> = candidates.iter().map(|c| c.ip.to_string()).collect();
        assert_eq!(ips, ["10.0.0.2", "fe80::1", "172.17.0.1"]);
        assert!(candidates[0].default_route && !candidates[2].default_route);
        assert_eq!(passed_over, ["wan0: 203.0.113.5"]);

        let v4_only = InterfaceSweep::new(Config {
            link_local: false,
            ipv6: false,
            ..Config::default()
        });
        let (candidates, _) = v4_only.gather(&interfaces, &[]);
        assert_eq!(candidates.len(), 2);
    }
}
