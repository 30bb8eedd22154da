//! The discoverer: one mdns-sd daemon per session, announcing us and browsing for the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use localpair_core::check::{SelfCheck, Status};
use localpair_core::interfaces::Interface;
use localpair_core::registry::Facts;
use localpair_core::{Context, PeerDiscoverer, PeerSink, StrategyError, async_trait};
use mdns_sd::{ServiceEvent, ServiceInfo};

use crate::config::Config;
use crate::daemon::Daemon;
use crate::error::Error;
use crate::session::Session;

/// Registry name.
pub const NAME: &str = "mdns";

/// The DNS-SD service type every localpair device registers and browses.
pub const SERVICE_TYPE: &str = "_localpair._tcp.local.";

/// The service type of the self-test: not ours, so browsers of [`SERVICE_TYPE`] never see it.
const SELF_TEST_TYPE: &str = "_lp-selftest._udp.local.";

/// How long the self-test waits for its own announcement. Multicast loopback returns it within
/// milliseconds; the rest is margin for a loaded machine, inside diagnostics' 1.5 s default.
const SELF_TEST_WAIT: Duration = Duration::from_millis(1000);

/// The mDNS port (RFC 6762 §3); mdns-sd always uses it.
const MDNS_PORT: u16 = 5353;

localpair_core::register_discoverer! {
    name: NAME,
    summary: "mDNS/DNS-SD: announces and browses _localpair._tcp.local. (mdns-sd; tested with avahi and python-zeroconf)",
    facts: |_| Ok(Facts::new().udp_port(MDNS_PORT, "mDNS").self_check()),
    build: |table| Ok(Arc::new(Mdns::new(table.extract()?))),
}

/// See the crate docs.
#[derive(Debug, Clone, Default)]
pub struct Mdns {
    config: Config,
}

impl Mdns {
    /// A discoverer with these options.
    pub fn new(config: Config) -> Self {
        Self { config }
    }
}

#[async_trait]
impl PeerDiscoverer for Mdns {
    async fn discover(&self, ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        let interfaces =
            usable_interfaces(ctx.interfaces().map_err(Error::Core)?, self.config.ipv6);
        if interfaces.is_empty() {
            return Err(Error::NoInterfaces {
                detail: ctx.why_no_interfaces(),
                ipv6: self.config.ipv6,
            }
            .into());
        }
        let port = ctx.confirmer()?.port();
        Ok(Session::new(&self.config, ctx, interfaces, port)
            .run(&sink)
            .await?)
    }

    /// Registers a throwaway service of another type on the permitted interfaces (no probing),
    /// browses that type, and waits for our own announcement to come back through multicast
    /// loopback: it proves the mDNS group is joined and sending is not filtered on this device,
    /// not that other devices hear it.
    async fn self_check(&self, ctx: &Context, _limit: Duration) -> Option<SelfCheck> {
        Some(self_test(ctx, self.config.ipv6).await)
    }
}

async fn self_test(ctx: &Context, ipv6: bool) -> SelfCheck {
    let interfaces = match ctx.interfaces() {
        Ok(all) => usable_interfaces(all, ipv6),
        Err(error) => {
            return SelfCheck::new(
                Status::Fail,
                "cannot list interfaces",
                serde_json::Value::Null,
            )
            .with_error(error.to_string());
        }
    };
    let names: Vec<String> = interfaces.iter().map(|i| i.name.clone()).collect();
    let mut details = serde_json::json!({
        "service_type": SELF_TEST_TYPE,
        "group": if ipv6 { "224.0.0.251 and ff02::fb, UDP 5353" } else { "224.0.0.251, UDP 5353" },
        "interfaces": names,
        "wait_ms": SELF_TEST_WAIT.as_millis() as u64,
    });
    if names.is_empty() {
        return SelfCheck::new(
            Status::Fail,
            "no interface to run mDNS on (none permitted that is up with an address)",
            details,
        );
    }
    let started = Instant::now();
    let mut daemon = match Daemon::start(&names, ipv6) {
        Ok(daemon) => daemon,
        Err(error) => {
            return SelfCheck::new(Status::Fail, "cannot start the mDNS daemon", details)
                .with_error(error.to_string());
        }
    };
    let instance = format!(
        "selftest {} {}",
        ctx.identity().device_id(),
        std::process::id()
    );
    let heard = echo(&mut daemon, &names, &instance).await;
    daemon.close().await;
    let on = names.join(", ");
    match heard {
        Ok(Some((after, addresses))) => {
            details["came_back_ms"] = serde_json::json!(after.as_secs_f64() * 1000.0);
            details["addresses"] = serde_json::json!(addresses);
            SelfCheck::new(
                Status::Pass,
                format!(
                    "our own mDNS announcement came back after {:.0} ms (announced on {on})",
                    after.as_secs_f64() * 1000.0
                ),
                details,
            )
        }
        Ok(None) => SelfCheck::new(
            Status::Fail,
            format!(
                "our own mDNS announcement did not come back within {} ms on {on}: multicast \
                 (UDP 5353) is dropped on this device",
                SELF_TEST_WAIT.as_millis()
            ),
            details,
        ),
        Err(error) => SelfCheck::new(
            Status::Fail,
            format!(
                "the mDNS self-test could not run ({:.0} ms)",
                started.elapsed().as_secs_f64() * 1000.0
            ),
            details,
        )
        .with_error(error.to_string()),
    }
}

/// Announces `instance` and waits for it to resolve; the caller closes the daemon.
async fn echo(
    daemon: &mut Daemon,
    names: &[String],
    instance: &str,
) -> Result<Option<(Duration, Vec<String>)>, Error> {
    let host = format!("lp-selftest-{}.local.", std::process::id());
    let mut info = ServiceInfo::new(SELF_TEST_TYPE, instance, &host, (), 9, &[("v", "1")][..])
        .map_err(Error::daemon("describe the self-test service"))?
        .enable_addr_auto();
    info.set_interfaces(names.iter().map(mdns_sd::IfKind::from).collect());
    info.set_requires_probe(false);
    let fullname = info.get_fullname().to_owned();
    let started = Instant::now();
    daemon.register(info)?;
    let events = daemon.browse(SELF_TEST_TYPE)?;
    let deadline = tokio::time::Instant::now() + SELF_TEST_WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv_async()).await {
            Err(_) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(ServiceEvent::ServiceResolved(service)))
                if service.fullname.eq_ignore_ascii_case(&fullname) =>
            {
                let addresses = service
                    .addresses
                    .iter()
                    .map(|a| a.to_ip_addr().to_string())
                    .collect();
                return Ok(Some((started.elapsed(), addresses)));
            }
            Ok(Ok(other)) => tracing::trace!(?other, "mdns self-test: event"),
        }
    }
}

/// Interfaces worth running on: up, with an address of a family we use.
fn usable_interfaces(all: Vec<Interface>, ipv6: bool) -> Vec<Interface> {
    all.into_iter()
        .filter(|i| i.up && i.addrs.iter().any(|a| ipv6 || a.ip.is_ipv4()))
        .collect()
}
