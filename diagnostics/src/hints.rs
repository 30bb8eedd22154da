//! Hints: likely causes with their fixes, derived from the checks' records alone, so a saved
//! JSON report gives the same hints when read back.

use serde_json::Value;

use super::report::{Check, Hint, Status};

fn find<'a>(checks: &'a [Check], name: &str) -> Option<&'a Check> {
    checks.iter().find(|c| c.name == name)
}

fn status(checks: &[Check], name: &str) -> Option<Status> {
    find(checks, name).map(|c| c.status)
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strings(value: &Value, key: &str) -> Vec<String> {
    array(value, key)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A peer's name, or its id in brackets when it announced none.
fn peer_label(peer: &Value) -> String {
    match text(peer, "name") {
        "" => format!("[{}]", text(peer, "id")),
        name => name.to_owned(),
    }
}

/// "UDP 5353 (mDNS) and 19536 (udp-multicast)", from a check's `udp_ports` (protocol → port, as
/// the discoverers declared them).
fn udp_ports(checks: &[Check]) -> String {
    let ports = ["peer-discovery", "multicast"]
        .iter()
        .filter_map(|n| find(checks, n))
        .find_map(|c| c.details.get("udp_ports").and_then(Value::as_object));
    let list: Vec<String> = ports
        .map(|p| {
            p.iter()
                .filter_map(|(protocol, port)| Some(format!("{} ({protocol})", port.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "the discoverers' UDP ports".to_owned()
    } else {
        format!("UDP {}", list.join(" and "))
    }
}

/// The strategies whose self-test failed, e.g. "udp-multicast and mdns".
fn failed_self_tests(check: Option<&Check>) -> String {
    let names: Vec<&str> = check
        .map(|c| array(&c.details, "by_strategy"))
        .unwrap_or_default()
        .iter()
        .filter(|s| text(s, "status") == "fail")
        .map(|s| text(s, "strategy"))
        .collect();
    if names.is_empty() {
        "the discoverers".to_owned()
    } else {
        names.join(" and ")
    }
}

/// Every hint the checks support, most basic first (no network at all before a firewall).
pub fn derive(checks: &[Check]) -> Vec<Hint> {
    let mut hints = Vec::new();
    environment(checks, &mut hints);
    local(checks, &mut hints);
    multicast(checks, &mut hints);
    reachability(checks, &mut hints);
    hints
}

fn environment(checks: &[Check], hints: &mut Vec<Hint>) {
    let Some(env) = find(checks, "environment") else {
        return;
    };
    for c in array(&env.details, "conditions") {
        if text(c, "severity") == "info" {
            continue;
        }
        let what = text(c, "text");
        let interfaces = strings(c, "interfaces");
        let first = interfaces.first().map_or("wlan0", String::as_str);
        let (id, cause, fix) = match text(c, "id") {
            "no-permitted-interface" => (
                "no-permitted-interface",
                format!("{what}: localpair has no network to work on"),
                "connect to a network, or loosen [interfaces] allow/deny".to_owned(),
            ),
            "no-private-address" => (
                "no-private-address",
                format!("{what} (only {})", strings(c, "addresses").join(", ")),
                "connect to the same Wi-Fi or Ethernet network as the other device; a mobile-data \
                 or public connection cannot reach devices at home or in the office"
                    .to_owned(),
            ),
            "link-local-only" => (
                "link-local-only",
                format!("{what} on {}", interfaces.join(", ")),
                "reconnect to the network, or check the router's DHCP server; a direct cable \
                 between two devices does work with these addresses"
                    .to_owned(),
            ),
            "several-private-subnets" => (
                "several-private-subnets",
                format!("{what}: localpair may pick one the other device is not on"),
                format!(
                    "keep localpair on the network the other device uses, e.g. [interfaces] \
                     allow = [\"{first}\"]"
                ),
            ),
            "vpn-default-route" => (
                "vpn-default-route",
                format!("{what}: devices on the local network may be unreachable while it is up"),
                "allow local network access (split tunnelling) in the VPN client, or pause the \
                 VPN while pairing"
                    .to_owned(),
            ),
            "default-route-excluded" => (
                "default-route-excluded",
                what.to_owned(),
                format!(
                    "permit {first} in [interfaces], or make sure the interface you allow is on \
                     the other device's network"
                ),
            ),
            _ => continue,
        };
        hints.push(Hint::new(id, cause, fix, &["environment"]));
    }
}

fn local(checks: &[Check], hints: &mut Vec<Hint>) {
    if let Some(routes) = find(checks, "routes")
        && routes.details.get("no_default_route") == Some(&Value::Bool(true))
    {
        hints.push(Hint::new(
            "no-default-route",
            "no default route: the outbound-route resolver cannot pick an address (fine on a LAN \
             without internet: interface-sweep finds the LAN address instead)",
            "nothing to do on an isolated LAN; elsewhere check the network settings (DHCP, \
             gateway), or set [resolve] order = [\"interface-sweep\"] to skip the lookup",
            &["routes"],
        ));
    }
    if let Some(listener) = find(checks, "listener")
        && listener.status == Status::Fail
    {
        hints.push(Hint::new(
            "listener-failed",
            format!(
                "the confirmation listener does not work: {}",
                listener.summary
            ),
            "make sure this program may open listening TCP sockets (sandbox, SELinux/AppArmor \
             policy, file descriptor limit)",
            &["listener"],
        ));
    }
    if let Some(own) = find(checks, "self-reachability")
        && matches!(own.status, Status::Fail | Status::Warn)
        && status(checks, "listener") == Some(Status::Pass)
    {
        // Addresses still in IPv6 duplicate address detection fail too, but no firewall is to
        // blame: they get their own hint.
        let not_ready: Vec<&str> = array(&own.details, "not_ready")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let filtered: Vec<&str> = own
            .errors
            .iter()
            .map(String::as_str)
            .filter(|e| !not_ready.contains(e))
            .collect();
        let port = own.details.get("port").and_then(Value::as_u64);
        let port = port.map_or_else(|| "its port".to_owned(), |p| format!("TCP {p}"));
        if !filtered.is_empty() {
            hints.push(Hint::new(
                "self-unreachable",
                format!(
                    "our own listener did not answer on some of our addresses ({}): something \
                     on this device filters connections to {port}",
                    filtered.join("; ")
                ),
                format!(
                    "allow incoming {port} (or the localpair program) in this device's firewall: \
                     `localpair firewall` prints the exact rules"
                ),
                &["self-reachability"],
            ));
        }
        if !not_ready.is_empty() {
            hints.push(Hint::new(
                "address-not-ready",
                format!(
                    "some addresses are not usable yet ({}): IPv6 duplicate address detection \
                     runs for about a second after a link comes up",
                    not_ready.join("; ")
                ),
                "run the check again in a few seconds; an address whose detection failed is used \
                 by another device on the link: give one of them another address",
                &["self-reachability"],
            ));
        }
    }
    if status(checks, "resolver-chain") == Some(Status::Fail) {
        let summary = find(checks, "resolver-chain").map_or("", |c| c.summary.as_str());
        hints.push(Hint::new(
            "no-address",
            format!("no resolver found an address a peer could use: {summary}"),
            "connect to the other device's network; the interfaces and environment checks show \
             what is missing",
            &["resolver-chain"],
        ));
    }
}

fn multicast(checks: &[Check], hints: &mut Vec<Hint>) {
    let ports = udp_ports(checks);
    let self_test = find(checks, "multicast");
    let Some(discovery) = find(checks, "peer-discovery") else {
        return;
    };
    let details = &discovery.details;
    for missing in array(details, "unavailable") {
        hints.push(Hint::new(
            "discoverer-unavailable",
            format!(
                "discoverer {} could not be built: {}",
                text(missing, "strategy"),
                text(missing, "error")
            ),
            "fix [discover] order or the strategy's [strategies.<name>] table",
            &["peer-discovery"],
        ));
    }
    let found = details.get("found").and_then(Value::as_u64).unwrap_or(0);
    let peers = array(details, "peers");
    let unseen: Vec<String> = peers
        .iter()
        .filter(|p| array(p, "found_by").is_empty())
        .map(peer_label)
        .collect();
    let fix_multicast = format!(
        "allow {ports} to and from the multicast groups (224.0.0.0/4, ff02::/16) in this \
         device's firewall, and check that the interface shows the MULTICAST flag"
    );
    match self_test.map(|c| c.status) {
        Some(Status::Fail) => hints.push(Hint::new(
            "multicast-blocked",
            format!(
                "our own multicast packets do not come back (self-test of {} failed): a firewall \
                 on this device drops multicast, or the interface cannot send it",
                failed_self_tests(self_test)
            ),
            format!("{fix_multicast}; meanwhile pair with the QR code: joining dials the code's addresses directly"),
            &["multicast", "peer-discovery"],
        )),
        Some(Status::Pass) if found == 0 && unseen.is_empty() => hints.push(Hint::new(
            "isolated-or-alone",
            "nobody found although multicast works on this device: Wi-Fi client (AP) isolation \
             keeps devices apart (guest networks, \"isolate clients\"), or no other device is \
             running localpair right now",
            "run `localpair diagnose` on the other device at the same time; if it finds nobody \
             either, turn off client isolation on the router or leave the guest network",
            &["multicast", "peer-discovery"],
        )),
        _ if found == 0 && unseen.is_empty() && discovery.status == Status::Fail => {
            hints.push(Hint::new(
                "multicast-blocked",
                format!(
                    "multicast discovery heard nothing back: a firewall dropping {ports} on this \
                     device or on the network, or Wi-Fi client (AP) isolation"
                ),
                format!(
                    "{fix_multicast}; turn off client isolation on the router; meanwhile pair \
                     with the QR code: joining dials the code's addresses directly"
                ),
                &["peer-discovery"],
            ));
        }
        _ => {}
    }
    if !unseen.is_empty() {
        hints.push(Hint::new(
            "inbound-multicast-blocked",
            format!(
                "{} heard our announcements, but we heard nothing from {}: incoming multicast \
                 is dropped on this device",
                unseen.join(", "),
                if unseen.len() == 1 { "it" } else { "them" }
            ),
            format!(
                "allow incoming {ports} in this device's firewall: `localpair firewall` prints \
                 the exact rules"
            ),
            &["peer-discovery"],
        ));
    }
    let deaf: Vec<String> = peers
        .iter()
        .filter(|p| p.get("heard_us") == Some(&Value::Bool(false)))
        .map(peer_label)
        .collect();
    if !deaf.is_empty() {
        let listener = details
            .get("listener_port")
            .and_then(Value::as_u64)
            .map_or_else(|| "our listener's port".to_owned(), |p| format!("TCP {p}"));
        hints.push(Hint::new(
            "one-way",
            format!(
                "we hear {} but {} did not report hearing us: our announcements do not reach it \
                 (its firewall drops incoming {ports}), or its report could not reach us (a \
                 firewall here blocks incoming {listener})",
                deaf.join(", "),
                if deaf.len() == 1 { "it" } else { "they" }
            ),
            "allow the discovery ports on the other device, and incoming connections to \
             localpair on this one",
            &["peer-discovery"],
        ));
    }
}

fn reachability(checks: &[Check], hints: &mut Vec<Hint>) {
    let Some(reach) = find(checks, "peer-reachability") else {
        return;
    };
    if !matches!(reach.status, Status::Fail | Status::Warn) {
        return;
    }
    let missed: Vec<&Value> = array(&reach.details, "peers")
        .iter()
        .filter(|p| p.get("reachable") != Some(&Value::Bool(true)))
        .collect();
    let impostor = reach
        .errors
        .iter()
        .any(|e| e.contains("does not match the pinned key"));
    if impostor {
        hints.push(Hint::new(
            "peer-key-mismatch",
            "another device answered at an address a peer announced: two devices share an \
             address, or the announcement is stale",
            "look for duplicate IP addresses on the network; run discovery again",
            &["peer-reachability"],
        ));
    }
    if missed.is_empty() {
        return;
    }
    let names: Vec<String> = missed.iter().map(|p| peer_label(p)).collect();
    let first_error = reach.errors.first().map_or("", String::as_str);
    hints.push(Hint::new(
        "peers-unreachable",
        format!(
            "{} found but {} listener did not answer ({first_error}): a firewall on that device \
             blocks incoming TCP, or the network's client isolation lets multicast through but \
             blocks traffic between devices",
            names.join(", "),
            if names.len() == 1 { "its" } else { "their" }
        ),
        "allow incoming connections to localpair on the other device (`localpair firewall` \
         there prints the exact rules), or turn off client/AP isolation on the router",
        &["peer-reachability"],
    ));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(name: &str, status: Status, details: Value) -> Check {
        Check::new(name, status, format!("{name} summary"), details)
    }

    fn ids(hints: &[Hint]) -> Vec<&str> {
        hints.iter().map(|h| h.id.as_str()).collect()
    }

    fn discovery(status: Status, found: u64, peers: &Value) -> Check {
        check(
            "peer-discovery",
            status,
            json!({
                "found": found,
                "peers": peers,
                "udp_ports": {"udp-multicast": 19536, "mDNS": 5353},
                "listener_port": 40000,
            }),
        )
    }

    #[test]
    fn a_healthy_report_has_no_hints() {
        let checks = [
            check("routes", Status::Pass, json!({"no_default_route": false})),
            check("listener", Status::Pass, json!({})),
            check("multicast", Status::Pass, json!({})),
            discovery(
                Status::Pass,
                1,
                &json!([{"id": "00", "name": "h2", "found_by": ["udp-multicast"], "heard_us": true}]),
            ),
            check(
                "peer-reachability",
                Status::Pass,
                json!({"peers": [{"reachable": true}]}),
            ),
            check(
                "environment",
                Status::Pass,
                json!({"conditions": [
                    {"id": "virtual-bridges", "severity": "info", "text": "docker0", "interfaces": ["docker0"]}
                ]}),
            ),
        ];
        assert!(derive(&checks).is_empty(), "{:?}", derive(&checks));
    }

    #[test]
    fn multicast_failing_here_names_the_ports() {
        let checks = [
            check(
                "multicast",
                Status::Fail,
                json!({"by_strategy": [
                    {"strategy": "udp-multicast", "status": "fail"},
                    {"strategy": "mdns", "status": "pass"},
                ]}),
            ),
            discovery(Status::Fail, 0, &json!([])),
        ];
        let hints = derive(&checks);
        assert_eq!(ids(&hints), ["multicast-blocked"]);
        assert!(
            hints[0]
                .cause
                .contains("do not come back (self-test of udp-multicast failed)"),
            "{}",
            hints[0].cause
        );
        assert!(
            hints[0]
                .fix
                .contains("UDP 5353 (mDNS) and 19536 (udp-multicast)"),
            "{}",
            hints[0].fix
        );
    }

    #[test]
    fn silence_without_a_self_test_still_points_at_multicast() {
        let checks = [
            check("multicast", Status::Skip, json!({})),
            discovery(Status::Fail, 0, &json!([])),
        ];
        let hints = derive(&checks);
        assert_eq!(ids(&hints), ["multicast-blocked"]);
        assert!(hints[0].cause.contains("isolation"));
    }

    #[test]
    fn silence_with_working_multicast_means_isolation_or_alone() {
        let checks = [
            check("multicast", Status::Pass, json!({})),
            discovery(Status::Fail, 0, &json!([])),
        ];
        assert_eq!(ids(&derive(&checks)), ["isolated-or-alone"]);
    }

    #[test]
    fn one_way_hearing_either_direction() {
        let checks = [
            check("multicast", Status::Pass, json!({})),
            discovery(
                Status::Warn,
                1,
                &json!([
                    {"id": "01", "name": "laptop", "found_by": ["udp-multicast"], "heard_us": false},
                    {"id": "02", "name": "", "found_by": [], "heard_us": true},
                    {"id": "03", "name": "phone", "found_by": ["mdns"], "heard_us": null},
                ]),
            ),
        ];
        let hints = derive(&checks);
        assert_eq!(ids(&hints), ["inbound-multicast-blocked", "one-way"]);
        assert!(hints[0].cause.starts_with("[02] heard our announcements"));
        assert!(hints[1].cause.contains("we hear laptop but it did not"));
        assert!(hints[1].cause.contains("TCP 40000"));
    }

    #[test]
    fn unreachable_peers_and_impostors() {
        let mut reach = check(
            "peer-reachability",
            Status::Warn,
            json!({"peers": [
                {"id": "01", "name": "h2", "reachable": false},
                {"id": "02", "name": "h3", "reachable": true},
            ]}),
        );
        reach.errors = vec![
            "h2 at 10.0.0.2:4000: connect 10.0.0.2:4000: Connection refused".to_owned(),
            "h3 at 10.0.0.3:4000: the device there presented key ab, which does not match the pinned key cd".to_owned(),
        ];
        let hints = derive(&[reach]);
        assert_eq!(ids(&hints), ["peer-key-mismatch", "peers-unreachable"]);
        assert!(hints[1].cause.starts_with("h2 found but its listener"));
        assert!(hints[1].cause.contains("Connection refused"));
    }

    #[test]
    fn environment_and_routes() {
        let checks = [
            check("routes", Status::Warn, json!({"no_default_route": true})),
            check(
                "environment",
                Status::Warn,
                json!({"conditions": [
                    {"id": "vpn-default-route", "severity": "warn",
                     "text": "the default route goes through wg0, a VPN tunnel", "interfaces": ["wg0"]},
                    {"id": "several-private-subnets", "severity": "warn",
                     "text": "several private subnets: 10.0.0.5/24 on eth0, 192.168.1.7/24 on wlan0",
                     "interfaces": ["eth0", "wlan0"]},
                    {"id": "link-local-only", "severity": "warn", "text": "only link-local",
                     "interfaces": ["eth1"]},
                    {"id": "no-private-address", "severity": "fail", "text": "no private address",
                     "addresses": ["203.0.113.9/24"]},
                ]}),
            ),
        ];
        let hints = derive(&checks);
        assert_eq!(
            ids(&hints),
            [
                "vpn-default-route",
                "several-private-subnets",
                "link-local-only",
                "no-private-address",
                "no-default-route"
            ]
        );
        assert!(
            hints[1].fix.contains("allow = [\"eth0\"]"),
            "{}",
            hints[1].fix
        );
        assert!(hints[3].cause.contains("203.0.113.9/24"));
    }

    #[test]
    fn listener_and_self_reachability() {
        let mut own = check("self-reachability", Status::Warn, json!({"port": 41000}));
        own.errors = vec!["fe80::1%eth0: timed out".to_owned()];
        let hints = derive(&[check("listener", Status::Pass, json!({})), own.clone()]);
        assert_eq!(ids(&hints), ["self-unreachable"]);
        assert!(hints[0].fix.contains("TCP 41000"));
        // Without a listener, the listener is the news, not the addresses.
        let hints = derive(&[check("listener", Status::Fail, json!({})), own]);
        assert_eq!(ids(&hints), ["listener-failed"]);
    }
}
