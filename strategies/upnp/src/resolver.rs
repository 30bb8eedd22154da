//! The resolver, the probe API diagnostics use, and port mapping entry points.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::config::Settings;
use localpair_core::interfaces::{DEFAULT_ROUTE_PROBES, Interface, default_route_interfaces};
use localpair_core::registry::Facts;
use localpair_core::{
    AddressResolver, Candidate, Confirmation, Context, InterfaceClass, StrategyError, async_trait,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use localpair_core::check::{SelfCheck, Status};

use crate::config::Config;
use crate::error::Error;
use crate::gateway::{self, Failure, Target};
use crate::info::GatewayInfo;
use crate::mapping::{Mapper, Mapping, Request};

/// Registry name.
pub const NAME: &str = "upnp";

/// Once one interface found its gateway, the others get this much longer before they are
/// abandoned: a Docker bridge or a VPN without a gateway must not hold up the answer for the whole
/// search timeout.
pub const OTHERS_GRACE: Duration = Duration::from_millis(250);

localpair_core::register_resolver! {
    name: NAME,
    summary: "the address facing the UPnP IGD gateway (SSDP search on each interface), with the gateway's external address; double NAT flagged",
    facts: |_| Ok(Facts::new().udp_port(crate::ssdp::PORT, "SSDP").self_check()),
    build: |table| Ok(Arc::new(Upnp::new(table.extract()?))),
}

/// See the crate docs.
#[derive(Debug, Clone, Default)]
pub struct Upnp {
    config: Config,
}

impl Upnp {
    /// A resolver with these options.
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// A resolver with the options of `[strategies.upnp]` in `settings`.
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        Ok(Self::new(settings.strategy_table(NAME).extract()?))
    }

    /// The options.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Finds the UPnP gateway: the first one found, the default-route interface's first.
    ///
    /// Searches on every permitted interface that is up with an IPv4 address (not loopback), in
    /// parallel; only a gateway inside the subnet of the address searched from is used. Sends only
    /// SSDP and UPnP requests to that gateway; confirms nothing.
    pub async fn probe(&self, ctx: &Context) -> Result<GatewayInfo, Error> {
        let mut gateways = self.probe_all(ctx).await?;
        // `probe_all` never returns an empty list.
        Ok(gateways.swap_remove(0))
    }

    /// Like [`probe`](Self::probe), but every gateway that answered in time, best first (at least
    /// one).
    pub async fn probe_all(&self, ctx: &Context) -> Result<Vec<GatewayInfo>, Error> {
        self.config.validate()?;
        let interfaces = ctx.interfaces()?;
        self.run_probes(targets(&interfaces, None)).await
    }

    /// Maps external TCP port `external_port` of the gateway to `local` for as long as the returned
    /// [`Mapping`] lives, described as `localpair <device name>`.
    ///
    /// With an unspecified `local` address (`0.0.0.0:port`, a listener on every address) the
    /// address facing the first gateway found is used; otherwise only the interface holding
    /// `local`'s address is searched.
    pub async fn map(
        &self,
        ctx: &Context,
        local: SocketAddrV4,
        external_port: u16,
    ) -> Result<Mapping, Error> {
        self.config.validate()?;
        let interfaces = ctx.interfaces()?;
        let only = (!local.ip().is_unspecified()).then_some(*local.ip());
        let targets = targets(&interfaces, only);
        if let (Some(ip), true) = (only, targets.is_empty()) {
            return Err(Error::UnknownLocalAddr { ip });
        }
        let gateways = self.run_probes(targets).await?;
        let gateway = gateways.first().ok_or(Error::NoInterface)?;
        self.map_via(ctx, gateway, local.port(), external_port)
            .await
    }

    /// Maps external TCP port `external_port` of a gateway found earlier to `local_port` on the
    /// address facing it (see [`map`](Self::map)).
    pub async fn map_via(
        &self,
        ctx: &Context,
        gateway: &GatewayInfo,
        local_port: u16,
        external_port: u16,
    ) -> Result<Mapping, Error> {
        self.config.validate()?;
        let external_ip = match gateway.external_ip {
            Some(IpAddr::V4(ip)) => Some(ip),
            _ => None,
        };
        let mapper: Arc<dyn Mapper> = Arc::new(gateway.gateway.clone());
        Mapping::add(
            mapper,
            Request {
                gateway: gateway.gateway_addr,
                external_ip,
                external_port,
                local: SocketAddrV4::new(gateway.local_addr, local_port),
                description: format!("localpair {}", ctx.identity().name()),
                lease_secs: self.config.lease_secs,
                request_timeout: self.config.request_timeout(),
            },
        )
        .await
    }

    async fn run_probes(&self, targets: Vec<Target>) -> Result<Vec<GatewayInfo>, Error> {
        if targets.is_empty() {
            return Err(Error::NoInterface);
        }
        let mut probes = JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let config = self.config.clone();
            probes.spawn(async move { (index, gateway::probe(target, config).await) });
        }
        let mut found: Vec<(usize, GatewayInfo)> = Vec::new();
        let mut failures: Vec<(usize, Failure)> = Vec::new();
        let mut grace_end: Option<Instant> = None;
        loop {
            let next = match grace_end {
                Some(end) => match tokio::time::timeout_at(end, probes.join_next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => probes.join_next().await,
            };
            let Some(joined) = next else {
                break;
            };
            match joined {
                Ok((index, Ok(info))) => {
                    found.push((index, info));
                    grace_end.get_or_insert_with(|| Instant::now() + OTHERS_GRACE);
                }
                Ok((index, Err(failure))) => failures.push((index, failure)),
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => {}
            }
        }
        // Searches still running after the grace are abandoned: their sockets close with them.
        probes.abort_all();
        if !found.is_empty() {
            found.sort_by_key(|(index, _)| *index);
            return Ok(found.into_iter().map(|(_, info)| info).collect());
        }
        failures.sort_by_key(|(index, _)| *index);
        let mut searched = Vec::new();
        let mut unreadable = None;
        for (_, failure) in failures {
            match failure {
                Failure::NoAnswer(report) => searched.push(report),
                Failure::Description {
                    gateway,
                    reason,
                    report,
                } => {
                    searched.push(report);
                    unreadable.get_or_insert(Error::Description { gateway, reason });
                }
            }
        }
        Err(unreadable.unwrap_or(Error::NoGateway { searched }))
    }

    async fn run(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        let confirmer = if self.config.confirm {
            Some(ctx.confirmer()?)
        } else {
            None
        };
        self.config.validate()?;
        let interfaces = ctx.interfaces().map_err(Error::from)?;
        let gateways = self.run_probes(targets(&interfaces, None)).await?;
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut last_error = None;
        for info in gateways {
            let ip = IpAddr::V4(info.local_addr);
            if candidates.iter().any(|c| c.ip == ip) {
                continue;
            }
            let mut candidate = match interfaces.iter().find(|i| i.name == info.interface) {
                Some(interface) => Candidate::on_interface(ip, interface),
                None => Candidate::new(ip),
            };
            candidate.default_route = info.default_route;
            if let Some(confirmer) = confirmer {
                if let Err(source) = confirmer.confirm(ip, 0).await {
                    tracing::debug!(%ip, %source, "address facing the UPnP gateway not confirmed");
                    last_error = Some(Error::NotConfirmed {
                        ip: info.local_addr,
                        gateway: info.gateway_addr,
                        source,
                    });
                    continue;
                }
                candidate.confirmed = Confirmation::Local;
            }
            candidate.reason = reason(&info, candidate.confirmed, &candidate.placement());
            candidates.push(candidate);
        }
        match (candidates.is_empty(), last_error) {
            (true, Some(error)) => Err(error.into()),
            _ => Ok(candidates),
        }
    }
}

#[async_trait]
impl AddressResolver for Upnp {
    async fn resolve(&self, ctx: &Context) -> Result<Vec<Candidate>, StrategyError> {
        self.run(ctx).await
    }

    async fn self_check(&self, ctx: &Context, _limit: Duration) -> Option<SelfCheck> {
        let check = match self.probe(ctx).await {
            Ok(info) => {
                let status = if info.double_nat || info.external_ip.is_none() {
                    Status::Warn
                } else {
                    Status::Pass
                };
                SelfCheck::new(status, info.to_string(), gateway_details(&info))
            }
            Err(error) => SelfCheck::new(Status::Warn, error.to_string(), serde_json::Value::Null)
                .with_error(error.to_string()),
        };
        Some(check)
    }
}

/// Maps the pairing port (TCP, same port outside and inside) when `[strategies.upnp] map_port`
/// is on; `Ok(None)` when it is off.
///
/// For programs that host a pairing: keep the [`Mapping`] while the pairing listener runs and
/// call [`Mapping::shutdown`] when it stops.
pub async fn map_pairing_port(ctx: &Context, port: u16) -> Result<Option<Mapping>, Error> {
    let upnp = Upnp::from_settings(ctx.settings())?;
    if !upnp.config.map_port {
        return Ok(None);
    }
    upnp.map(ctx, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port), port)
        .await
        .map(Some)
}

/// The candidate's reason: which gateway it faces, the external address, and where it sits.
pub(crate) fn reason(info: &GatewayInfo, confirmed: Confirmation, placement: &str) -> String {
    let confirmed = if confirmed == Confirmation::Local {
        "; reached our listener"
    } else {
        ""
    };
    format!(
        "faces the UPnP gateway {}; {}{confirmed}, {placement}",
        info.name(),
        info.external_summary()
    )
}

/// The addresses to search from: every IPv4 address of every permitted interface that is up and
/// not loopback (only `only`, when given), default-route interfaces first.
pub(crate) fn targets(interfaces: &[Interface], only: Option<Ipv4Addr>) -> Vec<Target> {
    let probes: Vec<SocketAddr> = DEFAULT_ROUTE_PROBES
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    let defaults = default_route_interfaces(interfaces, &probes);
    let mut targets: Vec<Target> = interfaces
        .iter()
        .filter(|i| i.up && i.class != InterfaceClass::Loopback)
        .flat_map(|i| {
            i.addrs.iter().filter_map(|a| match a.ip {
                IpAddr::V4(v4)
                    if !v4.is_loopback()
                        && !v4.is_unspecified()
                        && only.is_none_or(|o| o == v4) =>
                {
                    Some(Target {
                        interface: i.name.clone(),
                        default_route: defaults.contains(&i.name),
                        local: v4,
                        prefix_len: a.prefix_len,
                    })
                }
                _ => None,
            })
        })
        .collect();
    targets.sort_by_key(|t| !t.default_route);
    targets
}

/// What the diagnostics report shows of a gateway.
fn gateway_details(info: &GatewayInfo) -> serde_json::Value {
    serde_json::json!({
        "interface": info.interface,
        "local_addr": info.local_addr.to_string(),
        "gateway": info.gateway_addr.to_string(),
        "name": info.name(),
        "server": info.server,
        "external_ip": info.external_ip.map(|ip| ip.to_string()),
        "external_is_global": info.external_is_global,
        "double_nat": info.double_nat,
        "external_note": info.external_note,
        "control_url": info.control_url,
        "searches": info.searches,
        "elapsed_ms": info.elapsed.as_secs_f64() * 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::sample;
    use localpair_core::config::Source;
    use localpair_core::interfaces::InterfaceAddr;

    fn iface(name: &str, addrs: &[(&str, u8)]) -> Interface {
        Interface::new(
            name,
            Some(1),
            addrs
                .iter()
                .map(|(ip, len)| InterfaceAddr::new(ip.parse().unwrap(), *len))
                .collect(),
        )
    }

    #[test]
    fn targets_are_ipv4_addresses_of_usable_interfaces() {
        let mut down = iface("eth1", &[("192.168.5.2", 24)]);
        down.up = false;
        let mut lo = iface("lo", &[("127.0.0.1", 8)]);
        lo.class = InterfaceClass::Loopback;
        let interfaces = vec![
            lo,
            iface(
                "eth0",
                &[("10.77.0.11", 24), ("fe80::1", 64), ("10.78.0.11", 16)],
            ),
            down,
            iface("docker0", &[("172.17.0.1", 16)]),
        ];
        let all: Vec<(String, String)> = targets(&interfaces, None)
            .into_iter()
            .map(|t| (t.interface, format!("{}/{}", t.local, t.prefix_len)))
            .collect();
        assert_eq!(
            all,
            [
                ("eth0".to_owned(), "10.77.0.11/24".to_owned()),
                ("eth0".to_owned(), "10.78.0.11/16".to_owned()),
                ("docker0".to_owned(), "172.17.0.1/16".to_owned()),
            ]
        );
        let only = targets(&interfaces, Some(Ipv4Addr::new(172, 17, 0, 1)));
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].interface, "docker0");
        assert!(targets(&interfaces, Some(Ipv4Addr::new(1, 2, 3, 4))).is_empty());
    }

    #[test]
    fn config_defaults_and_unknown_keys() {
        let settings = Settings::load(Source::Toml(String::new())).unwrap();
        let upnp = Upnp::from_settings(&settings).unwrap();
        assert_eq!(upnp.config(), &Config::default());
        let settings =
            Settings::load(Source::Toml("[strategies.upnp]\nlease = 5\n".into())).unwrap();
        let err = Upnp::from_settings(&settings).unwrap_err().to_string();
        assert!(err.contains("strategies.upnp"), "{err}");
        let settings = Settings::load(Source::Toml(
            "[strategies.upnp]\nsearches = 0\nmap_port = true\n".into(),
        ))
        .unwrap();
        let upnp = Upnp::from_settings(&settings).unwrap();
        assert!(upnp.config().map_port);
        let err = upnp.config().validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid `strategies.upnp.searches`: must be at least 1"
        );
    }

    #[test]
    fn registered_as_upnp() {
        let registry = localpair_core::Registry::linked().unwrap();
        let info = registry
            .list()
            .into_iter()
            .find(|s| s.name == NAME)
            .expect("upnp is registered");
        assert_eq!(info.crate_name, "localpair-upnp");
    }

    #[test]
    fn reasons_name_the_gateway_and_the_external_address() {
        let placement = "on physical interface eth0, which holds the default route";
        let public = sample(Some("203.0.114.2".parse().unwrap()), Some("Box"));
        assert_eq!(
            reason(&public, Confirmation::Local, placement),
            "faces the UPnP gateway 10.77.0.254 (Box); external address 203.0.114.2 (public; \
             reported only, not a LAN address); reached our listener, on physical interface eth0, \
             which holds the default route"
        );
        let cgnat = sample(Some("100.64.7.1".parse().unwrap()), None);
        assert!(cgnat.double_nat);
        let text = reason(&cgnat, Confirmation::None, placement);
        assert!(
            text.starts_with(
                "faces the UPnP gateway 10.77.0.254; external address 100.64.7.1 is not public \
                 (shared address space, RFC 6598: carrier-grade NAT): double NAT"
            ),
            "{text}"
        );
        assert!(!text.contains("reached our listener"), "{text}");
        let private = sample(Some("192.168.178.2".parse().unwrap()), None);
        assert!(private.double_nat);
        assert!(
            reason(&private, Confirmation::None, placement).contains("private, RFC 1918"),
            "{private}"
        );
        let unknown = sample(None, None);
        assert!(!unknown.double_nat);
        assert!(
            reason(&unknown, Confirmation::None, placement)
                .contains("external address unknown: GetExternalIPAddress failed: 501"),
        );
    }

    #[tokio::test]
    async fn mapping_from_a_foreign_address_is_refused_before_searching() {
        let settings = Settings::load(Source::Toml(String::new())).unwrap();
        let identity = Arc::new(localpair_core::Identity::ephemeral("t").unwrap());
        let ctx = Context::new(settings, identity, None).unwrap();
        // 192.0.2.77 (documentation range) is on no interface: nothing is searched or sent.
        let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 77), 7000);
        let err = Upnp::default().map(&ctx, local, 7000).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "192.0.2.77 is not an address of a permitted interface"
        );
    }

    #[tokio::test]
    async fn no_interface_is_not_applicable() {
        let err = Upnp::default().run_probes(Vec::new()).await.unwrap_err();
        assert!(matches!(err, Error::NoInterface), "{err}");
        let err: StrategyError = err.into();
        assert_eq!(err.kind(), localpair_core::FailureKind::NotApplicable);
    }
}
