//! The loopback test behind diagnostics: on each link, join the group, send one probe (which
//! every other device ignores, so nothing is announced) and see it come back through multicast
//! loopback. A probe that cannot be sent, or does not come back, means multicast is blocked on
//! this device, whatever the network does.

use std::net::IpAddr;
use std::time::Duration;

use localpair_core::check::Status;
use localpair_core::{Context, Fingerprint, SelfCheck};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::Error;
use crate::socket::{self, LinkSocket};
use crate::wire::{self, Kind, MAX_DATAGRAM, Packet};

/// The loopback test's result on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkTest {
    /// Interface name.
    pub interface: String,
    /// Whether this is the IPv6 group (over the link-local address) rather than IPv4.
    pub ipv6: bool,
    /// The local address the socket joined and sent from.
    pub local: IpAddr,
    /// Why the socket could not be opened or the probe not sent; `None` when it went out.
    pub error: Option<String>,
    /// Time until the probe came back; `None` if it did not within the limit.
    pub echo_after: Option<Duration>,
}

impl LinkTest {
    /// `eth0 (IPv4)`.
    pub fn label(&self) -> String {
        format!(
            "{} ({})",
            self.interface,
            if self.ipv6 { "IPv6" } else { "IPv4" }
        )
    }

    /// A sentence on the outcome, for reports.
    pub fn summary(&self) -> String {
        match (&self.error, self.echo_after) {
            (Some(error), _) => format!("{}: {error}", self.label()),
            (None, Some(after)) => format!(
                "{}: probe came back after {:.1} ms",
                self.label(),
                after.as_secs_f64() * 1000.0
            ),
            (None, None) => format!(
                "{}: probe sent but did not come back: multicast is filtered on this device",
                self.label()
            ),
        }
    }
}

/// Runs the test on every link the discoverer would use, all at once, waiting at most `limit`.
pub(crate) async fn loopback_test(
    ctx: &Context,
    config: &Config,
    limit: Duration,
) -> Result<Vec<LinkTest>, Error> {
    config.validate()?;
    let interfaces = ctx.interfaces()?;
    let (specs, skipped) = socket::select(&interfaces, config.ipv6);
    if specs.is_empty() {
        return Err(Error::NoInterfaces {
            detail: socket::no_link_detail(ctx, &skipped),
        });
    }
    let own = ctx.identity().fingerprint();
    let probe = Packet::new(Kind::Probe, own, 0, ctx.identity().name()).encode();
    let mut results: Vec<LinkTest> = Vec::with_capacity(specs.len());
    // Dropping the set (at the end, or when the caller gives up) aborts the waits and closes
    // every socket.
    let mut waits = JoinSet::new();
    for (index, spec) in specs.iter().enumerate() {
        let mut result = LinkTest {
            interface: spec.iface.name.clone(),
            ipv6: spec.local.is_ipv6(),
            local: spec.local,
            error: None,
            echo_after: None,
        };
        match socket::open(spec, config) {
            Ok(socket) => {
                let sent = Instant::now();
                match socket.send_to(&probe, spec.group(config)) {
                    Ok(_) => {
                        waits.spawn(async move {
                            let echo = tokio::time::timeout(limit, echo(&socket, own)).await;
                            (index, echo.ok().map(|()| sent.elapsed()))
                        });
                    }
                    Err(error) => result.error = Some(format!("send refused: {error}")),
                }
            }
            Err(error) => result.error = Some(format!("cannot open the socket: {error}")),
        }
        results.push(result);
    }
    while let Some(done) = waits.join_next().await {
        if let Ok((index, after)) = done
            && let Some(result) = results.get_mut(index)
        {
            result.echo_after = after;
        }
    }
    Ok(results)
}

/// The diagnostics hook: the loopback test within two thirds of the caller's limit (it cuts us
/// off at the limit), as a pass / warn / fail line with the numbers in `details`.
pub(crate) async fn self_check(ctx: &Context, config: &Config, limit: Duration) -> SelfCheck {
    let limit = (limit * 2 / 3).max(Duration::from_millis(50));
    let groups = json!({
        "ipv4": format!("{}:{}", config.group_v4, config.port),
        "ipv6": config.ipv6.then(|| format!("[{}]:{}", config.group_v6, config.port)),
    });
    let links = match loopback_test(ctx, config, limit).await {
        Ok(links) => links,
        Err(error) => {
            return SelfCheck::new(
                Status::Fail,
                format!("cannot test multicast: {error}"),
                json!({ "groups": groups }),
            )
            .with_error(error.to_string());
        }
    };
    let (back, lost): (Vec<&LinkTest>, Vec<&LinkTest>) =
        links.iter().partition(|l| l.echo_after.is_some());
    let status = match (back.is_empty(), lost.is_empty()) {
        (false, true) => Status::Pass,
        (false, false) => Status::Warn,
        (true, _) => Status::Fail,
    };
    let came_back: Vec<String> = back
        .iter()
        .filter_map(|l| {
            l.echo_after
                .map(|d| format!("{} after {:.1} ms", l.label(), d.as_secs_f64() * 1000.0))
        })
        .collect();
    let failed: Vec<String> = lost.iter().map(|l| l.summary()).collect();
    let summary = match status {
        Status::Pass => format!("our own probe came back on {}", came_back.join(", ")),
        Status::Warn => format!(
            "our own probe came back on {}, but not everywhere: {}",
            came_back.join(", "),
            failed.join("; ")
        ),
        _ => format!("no probe came back: {}", failed.join("; ")),
    };
    let details = json!({
        "groups": groups,
        "limit_ms": u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        "links": links.iter().map(|l| json!({
            "interface": l.interface,
            "family": if l.ipv6 { "ipv6" } else { "ipv4" },
            "local": l.local.to_string(),
            "error": l.error,
            "echo_ms": l.echo_after.map(|d| d.as_secs_f64() * 1000.0),
        })).collect::<Vec<_>>(),
    });
    failed.into_iter().fold(
        SelfCheck::new(status, summary, details),
        SelfCheck::with_error,
    )
}

/// Waits for our own probe on `socket`; everything else is skipped.
async fn echo(socket: &LinkSocket, own: Fingerprint) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    loop {
        let Ok((len, _)) = socket.recv.recv_from(&mut buf).await else {
            // A receive error is not an echo; the caller's limit ends the wait.
            std::future::pending::<()>().await;
            return;
        };
        if len <= MAX_DATAGRAM
            && let Ok(packet) = wire::parse(&buf[..len])
            && packet.fingerprint == own
            && packet.kind == Kind::Probe
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(error: Option<&str>, echo: Option<u64>) -> LinkTest {
        LinkTest {
            interface: "eth0".into(),
            ipv6: false,
            local: "10.0.0.2".parse().unwrap(),
            error: error.map(str::to_owned),
            echo_after: echo.map(Duration::from_millis),
        }
    }

    #[test]
    fn summaries_say_what_happened() {
        assert_eq!(
            test(None, Some(2)).summary(),
            "eth0 (IPv4): probe came back after 2.0 ms"
        );
        assert!(
            test(None, None)
                .summary()
                .contains("filtered on this device")
        );
        assert_eq!(
            test(Some("send refused: Operation not permitted"), None).summary(),
            "eth0 (IPv4): send refused: Operation not permitted"
        );
    }
}
