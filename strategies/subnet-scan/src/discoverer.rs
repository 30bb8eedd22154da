//! The discoverer.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use localpair_core::interfaces::Interface;
use localpair_core::tls;
use localpair_core::{Context, Peer, PeerDiscoverer, PeerSink, StrategyError, async_trait};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::error::Error;

/// Registry name.
pub const NAME: &str = "subnet-scan";

localpair_core::register_discoverer! {
    name: NAME,
    summary: "connect to the code's port across our private /24s after a grace period (joining only)",
    build: |table| Ok(Arc::new(SubnetScan::new(table.extract()?))),
}

/// See the crate docs.
#[derive(Debug, Clone)]
pub struct SubnetScan {
    config: Config,
}

/// The addresses to scan: every host address of each permitted interface's private IPv4 subnet,
/// narrowed to `min_prefix` around our own address, without our own addresses. Returns the
/// addresses and a description of the subnets.
pub fn scan_targets(interfaces: &[Interface], min_prefix: u8) -> (Vec<Ipv4Addr>, Vec<String>) {
    let mut targets = Vec::new();
    let mut subnets = Vec::new();
    let own: Vec<IpAddr> = interfaces
        .iter()
        .flat_map(|i| i.addrs.iter().map(|a| a.ip))
        .collect();
    for interface in interfaces {
        for addr in &interface.addrs {
            let IpAddr::V4(v4) = addr.ip else { continue };
            if !v4.is_private() || v4.is_loopback() {
                continue;
            }
            let prefix = addr.prefix_len.max(min_prefix).min(30);
            let mask = u32::MAX << (32 - u32::from(prefix));
            let network = u32::from(v4) & mask;
            let broadcast = network | !mask;
            subnets.push(format!(
                "{} {}/{prefix}",
                interface.name,
                Ipv4Addr::from(network)
            ));
            for n in (network + 1)..broadcast {
                let ip = Ipv4Addr::from(n);
                if !own.contains(&IpAddr::V4(ip)) && !targets.contains(&ip) {
                    targets.push(ip);
                }
            }
        }
    }
    (targets, subnets)
}

impl SubnetScan {
    /// A discoverer with these options.
    pub fn new(config: Config) -> Self {
        Self { config }
    }
}

#[async_trait]
impl PeerDiscoverer for SubnetScan {
    async fn discover(&self, ctx: &Context, sink: PeerSink) -> Result<(), StrategyError> {
        let Some(target) = ctx.wait_join_target(&sink).await else {
            return Err(Error::NoCode.into());
        };
        // Whether there is anything to scan is known at once: say so now, not after the grace.
        let interfaces = ctx.interfaces().map_err(|_| Error::NoSubnet)?;
        let (addresses, subnets) = scan_targets(&interfaces, self.config.min_prefix);
        if addresses.is_empty() {
            return Err(Error::NoSubnet.into());
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(self.config.grace_ms)) => {}
            () = sink.stopped() => return Err(Error::NotStarted { grace_ms: self.config.grace_ms }.into()),
        }
        tracing::info!(count = addresses.len(), subnets = %subnets.join(", "), port = target.port, "subnet scan started");
        let slots = Arc::new(Semaphore::new(self.config.parallel.max(1)));
        let pinned = tls::client_config(ctx.identity(), target.fingerprint, target.alpn)?;
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        // Dropping the set (on stop) aborts every probe still running.
        let mut probes = JoinSet::new();
        for ip in &addresses {
            let addr = SocketAddr::from((*ip, target.port));
            let slots = Arc::clone(&slots);
            let pinned = Arc::clone(&pinned);
            probes.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let open = matches!(
                    tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
                    Ok(Ok(_))
                );
                if !open {
                    return (addr, false, false);
                }
                // A TLS handshake pinned to the target's key: the port is its listener, not
                // another program's.
                let keyed = tokio::time::timeout(timeout * 4, tls::probe(pinned, addr)).await;
                (addr, true, matches!(keyed, Ok(Ok(()))))
            });
        }
        let mut open = 0;
        loop {
            tokio::select! {
                joined = probes.join_next() => match joined {
                    Some(Ok((addr, was_open, keyed))) => {
                        open += usize::from(was_open);
                        if keyed {
                            let mut peer = Peer::new(target.fingerprint, String::new(), vec![addr]);
                            peer.pairing_port = Some(target.port);
                            tracing::info!(%addr, "subnet scan found the host");
                            if !sink.found(peer).await {
                                return Ok(());
                            }
                        }
                    }
                    Some(Err(_)) => {}
                    None => break,
                },
                () = sink.stopped() => return Ok(()),
            }
        }
        Err(Error::NotFound {
            scanned: addresses.len(),
            subnets: subnets.join(", "),
            port: target.port,
            open,
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use localpair_core::interfaces::InterfaceAddr;

    use super::*;

    #[test]
    fn scans_the_24_around_us_without_ourselves() {
        let eth = Interface::new(
            "eth0",
            Some(2),
            vec![
                InterfaceAddr::new("10.1.2.3".parse().unwrap(), 16),
                InterfaceAddr::new("8.8.4.4".parse().unwrap(), 24),
            ],
        );
        let small = Interface::new(
            "wlan0",
            Some(3),
            vec![InterfaceAddr::new("192.168.5.17".parse().unwrap(), 29)],
        );
        let (targets, subnets) = scan_targets(&[eth, small], 24);
        assert_eq!(subnets, ["eth0 10.1.2.0/24", "wlan0 192.168.5.16/29"]);
        assert_eq!(targets.len(), 253 + 5);
        assert!(!targets.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!targets.contains(&"10.1.2.0".parse().unwrap()));
        assert!(!targets.contains(&"10.1.2.255".parse().unwrap()));
        assert!(targets.contains(&"192.168.5.22".parse().unwrap()));
    }
}
