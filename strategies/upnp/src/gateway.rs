//! One gateway: finding it from one local address, asking for its external address and name.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use igd_next::aio::Gateway;
use igd_next::aio::tokio::Tokio;
use igd_next::{GetExternalIpError, RequestError, SearchOptions};
use localpair_core::interfaces::same_subnet;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::SearchReport;
use crate::info::{AddressScope, GatewayInfo};
use crate::ssdp;

/// Largest device description read for the gateway's name. igd-next reads the description
/// itself with a cap of 1 MiB; the name is in the first lines, so far less is enough.
pub(crate) const MAX_DESCRIPTION: usize = 64 * 1024;

/// Longest friendly name kept (it goes into candidate reasons and reports).
pub(crate) const MAX_NAME: usize = 64;

/// How many unicast searches igd-next gets to read the chosen gateway's description.
const DESCRIPTION_ATTEMPTS: u32 = 2;

/// One local address to search from.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) interface: String,
    pub(crate) default_route: bool,
    pub(crate) local: Ipv4Addr,
    pub(crate) prefix_len: u8,
}

/// Why a probe from one address found no usable gateway.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nobody on the subnet answered.
    NoAnswer(SearchReport),
    /// A gateway answered, but igd-next could not read its description.
    Description {
        gateway: Ipv4Addr,
        reason: String,
        report: SearchReport,
    },
}

/// Searches from one address, then reads the gateway that answered.
pub(crate) async fn probe(target: Target, config: Config) -> Result<GatewayInfo, Failure> {
    let start = Instant::now();
    let local = target.local;
    let prefix_len = target.prefix_len;
    let interface = target.interface.clone();
    let (answer, tally) = ssdp::search(
        local,
        ssdp::MULTICAST,
        config.searches,
        config.search_timeout(),
        |answer| {
            let from = *answer.from.ip();
            if !same_subnet(IpAddr::V4(local), IpAddr::V4(from), prefix_len) {
                return Err(format!(
                    "not in {interface}'s subnet {}/{prefix_len}: only a gateway on the local subnet is used",
                    network(local, prefix_len)
                ));
            }
            if answer.location.ip() != answer.from.ip() {
                return Err(format!(
                    "its description is at another address, {}",
                    answer.location.ip()
                ));
            }
            Ok(())
        },
    )
    .await;
    let report = SearchReport {
        interface: target.interface.clone(),
        local_addr: local,
        searches: tally.searches,
        elapsed: tally.elapsed,
        ignored: tally.ignored,
        error: tally.error,
    };
    let Some(answer) = answer else {
        return Err(Failure::NoAnswer(report));
    };
    let gateway_ip = *answer.from.ip();
    tracing::debug!(
        interface = %target.interface, %local, gateway = %gateway_ip,
        searches = report.searches, elapsed_ms = report.elapsed.as_millis(),
        "UPnP gateway answered"
    );
    let gateway = match describe(local, gateway_ip, config.request_timeout()).await {
        Ok(gateway) => gateway,
        Err(reason) => {
            return Err(Failure::Description {
                gateway: gateway_ip,
                reason,
                report,
            });
        }
    };
    let description_url = format!("http://{}{}", gateway.addr, gateway.root_url);
    let control_url = absolute(&gateway, &gateway.control_url);
    let (external, friendly_name) = tokio::join!(
        external_ip(&gateway, config.request_timeout()),
        friendly_name(&description_url, config.request_timeout()),
    );
    let (external_ip, external_note) = match external {
        Ok(ip) if ip.is_unspecified() => (None, Some(no_external(&ip.to_string()))),
        Ok(ip) => (Some(ip), None),
        Err(reason) => (None, Some(reason)),
    };
    let external_scope = external_ip.map(AddressScope::of);
    let external_is_global = external_scope == Some(AddressScope::Global);
    let info = GatewayInfo {
        interface: target.interface,
        default_route: target.default_route,
        local_addr: local,
        prefix_len,
        gateway_addr: gateway_ip,
        description_url,
        control_url,
        service_type: gateway.service_type.clone(),
        friendly_name,
        server: answer.server,
        external_ip,
        external_scope,
        external_is_global,
        double_nat: external_ip.is_some() && !external_is_global,
        external_note,
        searches: report.searches,
        elapsed: start.elapsed(),
        gateway,
    };
    tracing::info!(
        interface = %info.interface, local = %info.local_addr, gateway = %info.name(),
        external = ?info.external_ip, double_nat = info.double_nat,
        elapsed_ms = info.elapsed.as_millis(),
        "UPnP gateway: {}", info.external_summary()
    );
    Ok(info)
}

/// igd-next's search pointed at one gateway (a unicast `M-SEARCH`), so it reads that gateway's
/// description and control service and never talks to another device.
async fn describe(
    local: Ipv4Addr,
    gateway: Ipv4Addr,
    timeout: Duration,
) -> Result<Gateway<Tokio>, String> {
    let mut last = String::new();
    for attempt in 1..=DESCRIPTION_ATTEMPTS {
        let mut options = SearchOptions::default();
        options.bind_addr = SocketAddr::from((local, 0));
        options.broadcast_address = SocketAddr::from((gateway, ssdp::PORT));
        options.timeout = Some(timeout);
        options.single_search_timeout = Some(timeout);
        options.gateway_ip_version = igd_next::GatewayIpVersion::V4;
        // igd-next applies `timeout` to the whole search, description fetches included; the outer
        // timeout is a second fence in case that ever changes.
        let found = tokio::time::timeout(
            timeout + Duration::from_millis(100),
            igd_next::aio::tokio::search_gateway(options),
        )
        .await;
        match found {
            Ok(Ok(found)) if found.addr.ip() == IpAddr::V4(gateway) => return Ok(found),
            Ok(Ok(found)) => {
                last = format!("igd-next answered with another device, {}", found.addr);
            }
            Ok(Err(error)) => last = short(&error.to_string()),
            Err(_) => last = format!("no description within {} ms", timeout.as_millis()),
        }
        tracing::debug!(%gateway, attempt, reason = %last, "reading the gateway's description");
    }
    Err(last)
}

async fn external_ip(gateway: &Gateway<Tokio>, timeout: Duration) -> Result<IpAddr, String> {
    match tokio::time::timeout(timeout, gateway.get_external_ip()).await {
        Ok(Ok(ip)) => Ok(ip),
        // igd-next cannot parse an empty address and puts the whole SOAP answer in the error.
        Ok(Err(GetExternalIpError::RequestError(RequestError::InvalidResponse(body))))
            if body.contains("<NewExternalIPAddress></NewExternalIPAddress>")
                || body.contains("<NewExternalIPAddress/>") =>
        {
            Err(no_external("empty"))
        }
        Ok(Err(error)) => Err(format!(
            "GetExternalIPAddress failed: {}",
            short(&error.to_string())
        )),
        Err(_) => Err(format!(
            "GetExternalIPAddress got no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

fn no_external(what: &str) -> String {
    format!(
        "the gateway reports no external address ({what}): it is not connected, or its own WAN \
         address is private (double NAT behind another router; miniupnpd answers so)"
    )
}

/// Longest piece of a gateway-provided error text kept in messages.
const MAX_ERROR_TEXT: usize = 160;

/// An error text from igd-next, which may quote a whole answer of the gateway (up to its 1 MiB
/// cap): control characters removed, cut at [`MAX_ERROR_TEXT`] characters.
pub(crate) fn short(text: &str) -> String {
    let clean = ssdp::printable(text, MAX_ERROR_TEXT + 1);
    if clean.chars().count() > MAX_ERROR_TEXT {
        let cut: String = clean.chars().take(MAX_ERROR_TEXT).collect();
        format!("{cut}...")
    } else {
        clean
    }
}

/// Best effort: the root device's `friendlyName` from its description, read with a cap and a
/// timeout through hyper (the HTTP client igd-next uses). `None` on any failure.
async fn friendly_name(url: &str, timeout: Duration) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    // No idle connections kept: the client and its connection end with this function.
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let fetch = async {
        let response = client.get(uri).await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = Limited::new(response.into_body(), MAX_DESCRIPTION)
            .collect()
            .await
            .ok()?
            .to_bytes();
        parse_friendly_name(&body)
    };
    let name = tokio::time::timeout(timeout, fetch).await.ok().flatten();
    if name.is_none() {
        tracing::debug!(%url, "no friendly name from the gateway's description");
    }
    name
}

/// The first `<friendlyName>` (the root device's), unescaped, without control characters.
pub(crate) fn parse_friendly_name(description: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(description);
    let start = text.find("<friendlyName>")? + "<friendlyName>".len();
    let len = text[start..].find("</friendlyName>")?;
    let raw = &text[start..start + len];
    let unescaped = raw
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let name = ssdp::printable(&unescaped, MAX_NAME);
    (!name.is_empty()).then_some(name)
}

/// igd-next keeps the control URL as a path when it is on the description's host.
fn absolute(gateway: &Gateway<Tokio>, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else {
        format!("http://{}{url}", gateway.addr)
    }
}

/// The network address of `ip/prefix_len`.
pub(crate) fn network(ip: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let bits = u32::from(prefix_len.min(32));
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    Ipv4Addr::from(u32::from(ip) & mask)
}

/// A gateway as the probe would report it, for unit tests of what is built from one.
#[cfg(test)]
pub(crate) fn sample(external_ip: Option<IpAddr>, friendly_name: Option<&str>) -> GatewayInfo {
    let external_scope = external_ip.map(AddressScope::of);
    let external_is_global = external_scope == Some(AddressScope::Global);
    GatewayInfo {
        interface: "eth0".into(),
        default_route: true,
        local_addr: Ipv4Addr::new(10, 77, 0, 11),
        prefix_len: 24,
        gateway_addr: Ipv4Addr::new(10, 77, 0, 254),
        description_url: "http://10.77.0.254:5000/rootDesc.xml".into(),
        control_url: "http://10.77.0.254:5000/ctl/IPConn".into(),
        service_type: "urn:schemas-upnp-org:service:WANIPConnection:2".into(),
        friendly_name: friendly_name.map(str::to_owned),
        server: None,
        external_ip,
        external_scope,
        external_is_global,
        double_nat: external_ip.is_some() && !external_is_global,
        external_note: external_ip
            .is_none()
            .then(|| "GetExternalIPAddress failed: 501".to_owned()),
        searches: 1,
        elapsed: Duration::from_millis(120),
        // With igd-next's `ipv6` feature this literal would need one more field; nothing here
        // enables it.
        gateway: Gateway {
            addr: SocketAddr::from(([10, 77, 0, 254], 5000)),
            root_url: "/rootDesc.xml".into(),
            control_url: "/ctl/IPConn".into(),
            control_schema_url: "/WANIPCn.xml".into(),
            control_schema: std::collections::HashMap::new(),
            service_type: "urn:schemas-upnp-org:service:WANIPConnection:2".into(),
            provider: Tokio,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(ip: &str) -> AddressScope {
        AddressScope::of(ip.parse().unwrap())
    }

    #[test]
    fn external_address_scopes() {
        assert_eq!(scope("203.0.114.2"), AddressScope::Global);
        assert_eq!(scope("8.8.8.8"), AddressScope::Global);
        assert_eq!(scope("100.63.255.255"), AddressScope::Global);
        assert_eq!(scope("100.128.0.1"), AddressScope::Global);
        assert_eq!(scope("192.168.1.1"), AddressScope::Private);
        assert_eq!(scope("172.16.0.1"), AddressScope::Private);
        assert_eq!(scope("10.1.2.3"), AddressScope::Private);
        assert_eq!(scope("100.64.0.1"), AddressScope::SharedCgnat);
        assert_eq!(scope("100.127.255.254"), AddressScope::SharedCgnat);
        assert_eq!(scope("169.254.3.4"), AddressScope::LinkLocal);
        assert_eq!(scope("127.0.0.1"), AddressScope::Loopback);
        assert_eq!(scope("203.0.113.7"), AddressScope::Documentation);
        assert_eq!(scope("198.51.100.7"), AddressScope::Documentation);
        assert_eq!(scope("198.18.0.1"), AddressScope::Reserved);
        assert_eq!(scope("192.0.0.8"), AddressScope::Reserved);
        assert_eq!(scope("240.0.0.1"), AddressScope::Reserved);
        assert_eq!(scope("0.1.2.3"), AddressScope::Reserved);
        assert_eq!(scope("2a00:1450::1"), AddressScope::Global);
        assert_eq!(scope("fd00::1"), AddressScope::Private);
        assert_eq!(scope("fe80::1"), AddressScope::LinkLocal);
        assert_eq!(scope("2001:db8::1"), AddressScope::Documentation);
        assert_eq!(scope("::ffff:100.64.1.1"), AddressScope::SharedCgnat);
        assert_eq!(scope("ff02::1"), AddressScope::Reserved);
    }

    #[test]
    fn friendly_name_is_the_root_devices_unescaped_and_capped() {
        let xml = b"<?xml version=\"1.0\"?><root><device><deviceType>urn:x</deviceType>\
            <friendlyName>Tom &amp; Jerry&apos;s\x1b[2J router</friendlyName>\
            <deviceList><device><friendlyName>WANDevice</friendlyName></device></deviceList></device></root>";
        assert_eq!(
            parse_friendly_name(xml).as_deref(),
            Some("Tom & Jerry's[2J router")
        );
        assert_eq!(
            parse_friendly_name(b"<friendlyName>  </friendlyName>"),
            None
        );
        assert_eq!(parse_friendly_name(b"<root/>"), None);
        let long = format!("<friendlyName>{}</friendlyName>", "n".repeat(1000));
        assert_eq!(
            parse_friendly_name(long.as_bytes()).map(|n| n.len()),
            Some(MAX_NAME)
        );
    }

    #[test]
    fn gateway_error_texts_are_cut() {
        let long = format!("Invalid response: {}", "<x>\n".repeat(500));
        let cut = short(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_TEXT + 3);
        assert!(cut.ends_with("..."));
        assert!(!cut.contains('\n'));
        assert_eq!(short("fine"), "fine");
    }

    #[test]
    fn networks() {
        assert_eq!(
            network(Ipv4Addr::new(10, 77, 0, 11), 24),
            Ipv4Addr::new(10, 77, 0, 0)
        );
        assert_eq!(
            network(Ipv4Addr::new(10, 77, 0, 11), 0),
            Ipv4Addr::UNSPECIFIED
        );
        assert_eq!(
            network(Ipv4Addr::new(10, 77, 0, 11), 32),
            Ipv4Addr::new(10, 77, 0, 11)
        );
    }
}
